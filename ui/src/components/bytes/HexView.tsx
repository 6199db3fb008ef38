/**
 * The hex view: offset, 16 bytes in hex, ASCII, and the GGUF structure label of each row, with
 * colour bands per span. Virtualized: only the visible rows exist in the DOM, and the parent
 * fetches only their bytes. Select by dragging (or Shift+click / Shift+arrows); type two hex
 * digits to overwrite the byte at the cursor.
 */
import { useEffect, useMemo, useRef, type KeyboardEvent as ReactKeyboardEvent } from "react";
import type { ProtectedRange, SpanView } from "../../bindings";
import {
  asciiChar,
  formatOffset,
  hexByte,
  ROW_BYTES,
  rowCount,
  scrollFromTopRow,
  scrollGeometry,
  spanIndexAt,
  topRowFromScroll,
} from "../../lib/bytes/hex";

export const ROW_PX = 20;

export interface HexViewProps {
  size: number;
  spans: SpanView[];
  protections: ProtectedRange[];
  /** Bytes of the visible window, starting at `windowStart` (may lag one frame behind). */
  data: Uint8Array | null;
  windowStart: number;
  topRow: number;
  onTopRow: (row: number) => void;
  viewPx: number;
  onViewPx: (px: number) => void;
  cursor: number;
  anchor: number;
  onCursor: (offset: number, extend: boolean) => void;
  /** The current search match, highlighted. */
  match: { offset: number; len: number } | null;
  /** A pending high nibble typed at the cursor. */
  pending: number | null;
  onHexDigit: (digit: number) => void;
  onEscape: () => void;
}

/** The label the structure column shows for a span. */
export function spanLabel(s: SpanView): string {
  switch (s.class) {
    case "header":
      return "GGUF header";
    case "metadata":
      return s.label;
    case "tensorInfo":
      return `info · ${s.label}`;
    case "tensorData":
      return `${s.label} · ${s.tensor?.ty ?? "?"}`;
    case "padding":
      return "padding";
    default:
      return "trailing bytes";
  }
}

export function HexView(p: HexViewProps) {
  const scroller = useRef<HTMLDivElement>(null);
  const dragging = useRef(false);
  const rows = rowCount(p.size);
  const viewPx = p.viewPx;
  const topRow = p.topRow;
  const g = useMemo(() => scrollGeometry(rows, ROW_PX, viewPx), [rows, viewPx]);

  // Measure the view (once: the observer calls the latest onViewPx).
  const onViewPx = useRef(p.onViewPx);
  useEffect(() => {
    onViewPx.current = p.onViewPx;
  });
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => onViewPx.current(el.clientHeight));
    ro.observe(el);
    onViewPx.current(el.clientHeight);
    return () => ro.disconnect();
  }, []);

  // Keep the native scrollbar where the first row says.
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const want = scrollFromTopRow(topRow, g, viewPx);
    if (Math.abs(el.scrollTop - want) > 1) el.scrollTop = want;
  }, [topRow, g, viewPx]);

  // The wheel moves whole rows (exact at any file size; a capped track would jump).
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const px = e.deltaMode === 1 ? e.deltaY * ROW_PX : e.deltaMode === 2 ? e.deltaY * p.viewPx : e.deltaY;
      const step = Math.sign(px) * Math.max(1, Math.round(Math.abs(px) / ROW_PX));
      p.onTopRow(Math.min(g.maxTop, Math.max(0, p.topRow + step)));
    };
    el.addEventListener("wheel", onWheel, { passive: false });
    return () => el.removeEventListener("wheel", onWheel);
  });

  useEffect(() => {
    const up = () => (dragging.current = false);
    window.addEventListener("mouseup", up);
    return () => window.removeEventListener("mouseup", up);
  }, []);

  const selStart = Math.min(p.cursor, p.anchor);
  const selEnd = Math.max(p.cursor, p.anchor);
  const protectedAt = (o: number) => p.protections.some((r) => o >= r.start && o < r.end);

  const onKey = (e: ReactKeyboardEvent) => {
    const move = (d: number) => {
      e.preventDefault();
      p.onCursor(Math.min(p.size - 1, Math.max(0, p.cursor + d)), e.shiftKey);
    };
    switch (e.key) {
      case "ArrowLeft":
        return move(-1);
      case "ArrowRight":
        return move(1);
      case "ArrowUp":
        return move(-ROW_BYTES);
      case "ArrowDown":
        return move(ROW_BYTES);
      case "PageUp":
        return move(-ROW_BYTES * Math.max(1, g.visibleRows - 1));
      case "PageDown":
        return move(ROW_BYTES * Math.max(1, g.visibleRows - 1));
      case "Home":
        return move(e.ctrlKey ? -p.cursor : -(p.cursor % ROW_BYTES));
      case "End":
        return move(e.ctrlKey ? p.size - 1 - p.cursor : ROW_BYTES - 1 - (p.cursor % ROW_BYTES));
      case "Escape":
        return p.onEscape();
    }
    if (!e.ctrlKey && !e.metaKey && !e.altKey && /^[0-9a-fA-F]$/.test(e.key)) {
      e.preventDefault();
      p.onHexDigit(parseInt(e.key, 16));
    }
  };

  const visible = Math.min(g.visibleRows + 1, Math.max(0, rows - p.topRow));
  const rowEls = [];
  let si = p.spans.length ? spanIndexAt(p.spans, p.topRow * ROW_BYTES) : -1;
  for (let r = 0; r < visible; r++) {
    const rowStart = (p.topRow + r) * ROW_BYTES;
    const n = Math.min(ROW_BYTES, p.size - rowStart);
    while (si >= 0 && si < p.spans.length && p.spans[si]!.end <= rowStart) si++;
    const first = (si >= 0 && p.spans[si]) || null;
    const starting: SpanView[] = [];
    const hexCells = [];
    const ascCells = [];
    let sj = si;
    for (let i = 0; i < ROW_BYTES; i++) {
      const off = rowStart + i;
      if (i >= n) {
        hexCells.push(<span key={i} className="hx-cell hx-empty" />);
        ascCells.push(<span key={i} className="hx-asc hx-empty" />);
        continue;
      }
      while (sj >= 0 && sj < p.spans.length && p.spans[sj]!.end <= off) sj++;
      const span = (sj >= 0 && p.spans[sj]) || null;
      if (span && span.start === off) starting.push(span);
      const rel = off - p.windowStart;
      const b = p.data && rel >= 0 && rel < p.data.length ? p.data[rel]! : null;
      const cls = [
        "hx-cell",
        span ? `sp-${span.class}` : "",
        span && sj % 2 ? "sp-alt" : "",
        span && span.start === off ? "sp-start" : "",
        off >= selStart && off <= selEnd && selEnd > selStart ? "sel" : "",
        off === p.cursor ? "cur" : "",
        p.match && off >= p.match.offset && off < p.match.offset + p.match.len ? "hit" : "",
        protectedAt(off) ? "prot" : "",
      ]
        .filter(Boolean)
        .join(" ");
      const text = off === p.cursor && p.pending !== null ? p.pending.toString(16) + "_" : b === null ? "··" : hexByte(b);
      hexCells.push(
        <span
          key={i}
          className={cls}
          data-off={off}
          title={span ? `${formatOffset(off)} · ${spanLabel(span)}` : formatOffset(off)}
          onMouseDown={(e) => {
            e.preventDefault();
            (e.currentTarget.closest(".hexview") as HTMLElement | null)?.focus();
            dragging.current = true;
            p.onCursor(off, e.shiftKey);
          }}
          onMouseEnter={() => dragging.current && p.onCursor(off, true)}
        >
          {text}
        </span>,
      );
      ascCells.push(
        <span key={i} className={cls.replace("hx-cell", "hx-asc")} data-off={off} onMouseDown={(e) => { e.preventDefault(); p.onCursor(off, e.shiftKey); }}>
          {b === null ? " " : asciiChar(b)}
        </span>,
      );
    }
    // The label: the first span starting in this row, else (first row only) the one covering it.
    const shown = starting[0] ?? (r === 0 ? first : null);
    const more = Math.max(0, starting.length - 1);
    rowEls.push(
      <div className="hx-row" key={rowStart} data-row={rowStart}>
        <span className="hx-off">{formatOffset(rowStart)}</span>
        <span className="hx-bytes">{hexCells}</span>
        <span className="hx-ascii">{ascCells}</span>
        <span className={`hx-label ${shown ? `lb-${shown.class}` : ""}`} title={shown ? spanLabel(shown) : first ? spanLabel(first) : ""}>
          {shown ? spanLabel(shown) : first ? <span className={`hx-cont sp-${first.class}`} /> : null}
          {more > 0 && <span className="muted"> +{more} more</span>}
        </span>
      </div>,
    );
  }

  return (
    <div className="hexview" tabIndex={0} onKeyDown={onKey} data-testid="hexview">
      <div className="hx-row hx-head">
        <span className="hx-off">offset</span>
        <span className="hx-bytes">
          {Array.from({ length: ROW_BYTES }, (_, i) => (
            <span key={i} className="hx-cell">
              {hexByte(i)}
            </span>
          ))}
        </span>
        <span className="hx-ascii">ascii</span>
        <span className="hx-label">structure</span>
      </div>
      <div
        className="hx-scroller"
        ref={scroller}
        onScroll={(e) => {
          const row = topRowFromScroll(e.currentTarget.scrollTop, g, p.viewPx);
          if (row !== p.topRow) p.onTopRow(row);
        }}
      >
        <div className="hx-rows" style={{ height: p.viewPx }}>
          {rowEls}
        </div>
        <div style={{ height: Math.max(0, g.trackPx - p.viewPx) }} />
      </div>
    </div>
  );
}
