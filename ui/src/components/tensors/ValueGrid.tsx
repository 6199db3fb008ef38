/**
 * The exact-value grid: every element of a tensor (seen as a `rows × cols` matrix) with its
 * dequantized value, row and column headers. Virtualized: only the visible cells are rendered
 * and only their values are fetched (as binary, a window at a time, with a margin to scroll
 * into). A click selects an element; the selection scrolls into view when it changes elsewhere
 * (a click on the heatmap). Arrow keys move the selection, Enter asks to edit it. With
 * `rowLabel` (rows that are token ids) each row header shows the token's text beside the id.
 */
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { describeFailure } from "../../lib/ipc";
import { colorOf } from "../../lib/heatmap/colormap";
import { exactF32 } from "../../lib/heatmap/format";
import { contains, extent, firstVisible, flatIndex, grow, scrollFor, visibleWindow, type GridWindow } from "../../lib/tensors/grid";
import { InlineError } from "../InlineError";

const CELL = { w: 108, h: 22 };
const BASE_HEAD = { w: 64, h: 22 };
/** Row-header width with a label (token text) beside the row number. */
const LABELLED_HEAD_W = 170;

interface Props {
  rows: number;
  cols: number;
  /** Exact values of a window, row-major. */
  fetchWindow: (w: GridWindow) => Promise<Float32Array>;
  /** Refetch when this changes (tensor + session revision). */
  version: string;
  /** Half-width of the tint scale (the tensor's max |x|), 0 for no tint. */
  scale: number;
  selected: { row: number; col: number } | null;
  onSelect: (row: number, col: number) => void;
  /** Enter on the selected cell. */
  onEdit?: () => void;
  /** A label shown beside a row's number (the token text of an embedding row). */
  rowLabel?: (row: number) => string | undefined;
}

interface Fetched {
  win: GridWindow;
  values: Float32Array;
  version: string;
}

export function ValueGrid({ rows, cols, fetchWindow, version, scale, selected, onSelect, onEdit, rowLabel }: Props) {
  const headW = rowLabel ? LABELLED_HEAD_W : BASE_HEAD.w;
  const HEAD = { w: headW, h: BASE_HEAD.h };
  const scrollRef = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState({ top: 0, left: 0 });
  const [view, setView] = useState({ w: 0, h: 0 });
  const [data, setData] = useState<Fetched | null>(null);
  const [error, setError] = useState<string | null>(null);

  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    const measure = () => setView({ w: Math.max(0, el.clientWidth - headW), h: Math.max(0, el.clientHeight - BASE_HEAD.h) });
    measure();
    const ro = typeof ResizeObserver !== "undefined" ? new ResizeObserver(measure) : null;
    ro?.observe(el);
    return () => ro?.disconnect();
  }, [headW]);

  // A new tensor: back to the top-left corner.
  useEffect(() => {
    const el = scrollRef.current;
    if (el) {
      el.scrollTop = 0;
      el.scrollLeft = 0;
    }
    setScroll({ top: 0, left: 0 });
    setData(null);
  }, [rows, cols]);

  const total = useMemo(() => ({ rows, cols }), [rows, cols]);
  const win = useMemo(() => visibleWindow(scroll, view, CELL, total, 1), [scroll, view, total]);

  // Fetch the visible window (plus a margin) when it is not already held.
  const latest = useRef(0);
  useEffect(() => {
    if (win.rows === 0 || win.cols === 0) return;
    if (data && data.version === version && contains(data.win, win)) return;
    const want = grow(win, { rows: win.rows, cols: Math.ceil(win.cols / 2) }, total);
    const my = ++latest.current;
    fetchWindow(want).then(
      (values) => {
        if (my !== latest.current) return;
        setData({ win: want, values, version });
        setError(null);
      },
      (e) => {
        if (my !== latest.current) return;
        const d = describeFailure(e);
        setError(d.detail || d.title);
      },
    );
  }, [win, data, version, fetchWindow, total]);

  // Bring the selection into view when it changes. Only a change of selection scrolls (the
  // user's own scrolling, a resize, does not snap back): the layout is read from a ref.
  const layout = useRef({ view, rows, cols });
  useEffect(() => {
    layout.current = { view, rows, cols };
  });
  const selRow = selected?.row ?? null;
  const selCol = selected?.col ?? null;
  useEffect(() => {
    const el = scrollRef.current;
    const { view, rows, cols } = layout.current;
    if (!el || selRow === null || selCol === null || view.h === 0) return;
    const r = firstVisible(el.scrollTop, view.h, rows, CELL.h);
    const c = firstVisible(el.scrollLeft, view.w, cols, CELL.w);
    const vr = Math.floor(view.h / CELL.h);
    const vc = Math.floor(view.w / CELL.w);
    if (selRow < r || selRow >= r + vr) el.scrollTop = scrollFor(Math.max(0, selRow - Math.floor(vr / 2)), view.h, rows, CELL.h);
    if (selCol < c || selCol >= c + vc) el.scrollLeft = scrollFor(Math.max(0, selCol - Math.floor(vc / 2)), view.w, cols, CELL.w);
  }, [selRow, selCol]);

  const onScroll = () => {
    const el = scrollRef.current;
    if (el) setScroll({ top: el.scrollTop, left: el.scrollLeft });
  };

  const onKey = useCallback(
    (e: React.KeyboardEvent) => {
      if (!selected) return;
      const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
      const m = moves[e.key];
      if (m) {
        e.preventDefault();
        onSelect(Math.min(rows - 1, Math.max(0, selected.row + m[0])), Math.min(cols - 1, Math.max(0, selected.col + m[1])));
      } else if (e.key === "Enter" && onEdit) {
        e.preventDefault();
        onEdit();
      }
    },
    [selected, rows, cols, onSelect, onEdit],
  );

  // Positions: linear scrolling below the cap (sub-cell offsets), row-snapped above it.
  const r0 = firstVisible(scroll.top, view.h, rows, CELL.h);
  const c0 = firstVisible(scroll.left, view.w, cols, CELL.w);
  const dy = rows * CELL.h <= extent(rows, CELL.h) ? r0 * CELL.h - scroll.top : 0;
  const dx = cols * CELL.w <= extent(cols, CELL.w) ? c0 * CELL.w - scroll.left : 0;
  const top = (r: number) => HEAD.h + (r - r0) * CELL.h + dy;
  const left = (c: number) => HEAD.w + (c - c0) * CELL.w + dx;

  const value = (r: number, c: number): number | null => {
    if (!data || data.version !== version) return null;
    const w = data.win;
    if (r < w.row0 || c < w.col0 || r >= w.row0 + w.rows || c >= w.col0 + w.cols) return null;
    return data.values[(r - w.row0) * w.cols + (c - w.col0)] ?? null;
  };

  const cells: React.ReactNode[] = [];
  const rowHeads: React.ReactNode[] = [];
  const colHeads: React.ReactNode[] = [];
  for (let c = win.col0; c < win.col0 + win.cols; c++) {
    colHeads.push(
      <div key={`c${c}`} className="vg-colhead" style={{ left: left(c), width: CELL.w }}>
        {c}
      </div>,
    );
  }
  for (let r = win.row0; r < win.row0 + win.rows; r++) {
    const label = rowLabel?.(r);
    rowHeads.push(
      <div
        key={`r${r}`}
        className={`vg-rowhead${rowLabel ? " labelled" : ""}`}
        style={{ top: top(r), height: CELL.h, width: headW }}
        data-testid="grid-rowhead"
        data-row={r}
        title={label !== undefined ? `row ${r}: token ${r} ${label}` : undefined}
      >
        <span className="vg-rownum">{r}</span>
        {label !== undefined && <span className="vg-rowlabel" data-testid="grid-token">{label}</span>}
      </div>,
    );
    for (let c = win.col0; c < win.col0 + win.cols; c++) {
      const v = value(r, c);
      const sel = selected !== null && selected.row === r && selected.col === c;
      let bg: string | undefined;
      if (v !== null && scale > 0) {
        // Tint strength follows |x| (zero stays untinted), so the tint reads on both themes.
        const [cr, cg, cb] = colorOf(v, scale);
        const a = Number.isFinite(v) ? 0.55 * Math.min(1, Math.abs(v) / scale) : 0.8;
        bg = `rgba(${cr}, ${cg}, ${cb}, ${a.toFixed(3)})`;
      }
      cells.push(
        <div
          key={`${r}:${c}`}
          className={`vg-cell${sel ? " selected" : ""}`}
          style={{ top: top(r), left: left(c), width: CELL.w, height: CELL.h, background: bg }}
          data-testid="grid-cell"
          data-row={r}
          data-col={c}
          title={v === null ? undefined : `row ${r}, col ${c} (element ${flatIndex(r, c, cols)}) = ${exactF32(v)}`}
          onClick={() => onSelect(r, c)}
          onDoubleClick={() => {
            onSelect(r, c);
            onEdit?.();
          }}
        >
          {v === null ? "…" : exactF32(v)}
        </div>,
      );
    }
  }

  return (
    <div className="value-grid" data-testid="value-grid">
      <div className="vg-scroll" ref={scrollRef} onScroll={onScroll} tabIndex={0} onKeyDown={onKey} aria-label="Exact values">
        <div className="vg-layer">
          {cells}
          <div className="vg-colheads" style={{ width: HEAD.w + view.w }}>
            {colHeads}
          </div>
          <div className="vg-rowheads" style={{ height: HEAD.h + view.h, width: headW }}>
            {rowHeads}
          </div>
          <div className="vg-corner" style={{ width: headW }}>
            {rowLabel ? "token \\ col" : "row\\col"}
          </div>
        </div>
        <div className="vg-spacer" style={{ width: HEAD.w + extent(cols, CELL.w), height: HEAD.h + extent(rows, CELL.h) }} />
      </div>
      <InlineError error={error} testId="grid-error" className="vg-error" />
    </div>
  );
}
