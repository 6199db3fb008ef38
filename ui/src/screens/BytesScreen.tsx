/**
 * The Bytes screen: the open model's bytes in a virtualized hex view labelled with the GGUF
 * structure (outline to jump, go-to-offset), wildcard search over the whole file, every
 * byte operation on a selected range, and an inspector for the bytes at the cursor. Reads go
 * through the session (staged edits show); every edit is journaled and undoable.
 */
import { useCallback, useMemo, useRef, useState } from "react";
import type { SpanView } from "../bindings";
import { HexView, ROW_PX } from "../components/bytes/HexView";
import { Inspector } from "../components/bytes/Inspector";
import { OpsPanel } from "../components/bytes/OpsPanel";
import { SearchPanel } from "../components/bytes/SearchPanel";
import { StructureOutline } from "../components/bytes/StructureOutline";
import { readBytes } from "../lib/binary";
import { formatOffset, hexByte, parseOffset, revealRow, rowCount, rowsWindow, scrollGeometry, spanIndexAt } from "../lib/bytes/hex";
import { commands, describeFailure, unwrap } from "../lib/ipc";
import { InlineError } from "../components/InlineError";
import { useQuery } from "../lib/query";
import { useSession } from "../lib/session";
import { NoModel } from "./NoModel";
import "./bytes.css";

export function BytesScreen() {
  const { summary } = useSession();
  const [file, setFile] = useState({ path: "", shard: 0 });
  if (!summary) return <NoModel screen="bytes" />;
  // A split model's files are shown one at a time; another model starts at its first file.
  const shard = file.path === summary.path ? Math.min(file.shard, summary.shards - 1) : 0;
  return (
    <BytesWorkspace
      key={`${summary.path}#${shard}`}
      shard={shard}
      files={summary.shards}
      onShard={(s) => setFile({ path: summary.path, shard: s })}
    />
  );
}

/** The file picker of a split model: which shard the hex view, search and operations work on. */
function FilePicker({ shard, files, onShard }: { shard: number; files: number; onShard: (s: number) => void }) {
  // The files' names (the picker still works without them).
  const shards = useQuery(async () => unwrap(await commands.modelShards()).map((s) => s.fileName), [], { on: [files] });
  const names = shards.data ?? [];
  return (
    <label className="file-picker">
      <span className="muted small">File</span>
      <select data-testid="bytes-file" value={shard} onChange={(e) => onShard(Number(e.target.value))}>
        {Array.from({ length: files }, (_, i) => (
          <option key={i} value={i}>
            {i + 1} of {files}
            {names[i] ? ` · ${names[i]}` : ""}
          </option>
        ))}
      </select>
    </label>
  );
}

function BytesWorkspace({ shard, files, onShard }: { shard: number; files: number; onShard: (s: number) => void }) {
  const { revision, bumpRevision } = useSession();
  const [topRow, setTopRow] = useState(0);
  const [viewPx, setViewPx] = useState(600);
  const [cursor, setCursor] = useState(0);
  const [anchor, setAnchor] = useState(0);
  const [littleEndian, setLittleEndian] = useState(true);
  const [match, setMatch] = useState<{ offset: number; len: number } | null>(null);
  const [pending, setPending] = useState<number | null>(null);
  const [gotoText, setGotoText] = useState("");
  const [gotoError, setGotoError] = useState<string | null>(null);
  const [editError, setEditError] = useState<string | null>(null);

  // Structure: on open and after every change (a header edit moves labels).
  const structureQ = useQuery(async () => unwrap(await commands.bytesStructure(shard)), [shard], { on: [revision] });
  const structure = structureQ.data;
  const size = structure?.fileSize ?? 0;
  const spans = structure?.spans ?? [];
  const g = scrollGeometry(rowCount(size), ROW_PX, viewPx);

  // The visible rows' bytes (only those), refetched when the view moves or the model changes;
  // the rows shown stay until the next ones arrive.
  const visibleRows = g.visibleRows;
  const rowsQ = useQuery(
    async () => {
      if (!size) return null;
      const w = rowsWindow(topRow, visibleRows + 1, size);
      return { start: w.start, bytes: await readBytes(shard, w.start, w.end - w.start) };
    },
    [topRow, visibleRows, size, shard],
    { keep: true, on: [revision] },
  );
  const data = rowsQ.data;
  const loadError = structureQ.error ?? rowsQ.error;

  // The inspector's 8 bytes at the cursor (none when they cannot be read).
  const inspQ = useQuery(async () => (size ? await readBytes(shard, cursor, Math.min(8, size - cursor)) : null), [cursor, size, shard], {
    keep: true,
    on: [revision],
  });
  const inspBytes = inspQ.error == null ? inspQ.data : null;

  const reveal = useCallback(
    (offset: number) => {
      setTopRow((t) => revealRow(offset, t, g));
    },
    [g],
  );

  const moveCursor = useCallback(
    (offset: number, extend: boolean) => {
      setPending(null);
      setCursor(offset);
      if (!extend) setAnchor(offset);
      reveal(offset);
    },
    [reveal],
  );

  const jumpTo = useCallback(
    (offset: number, len = 1) => {
      setPending(null);
      // The cursor at the start (the inspector reads it), the selection over the range.
      setCursor(offset);
      setAnchor(Math.min(size - 1, offset + Math.max(1, len) - 1));
      // Show the start of the range near the top.
      setTopRow(Math.min(g.maxTop, Math.max(0, Math.floor(offset / 16) - 2)));
    },
    [g.maxTop, size],
  );

  // Typed bytes are written one by one, in order (a fast typist must not race the writes).
  // Keys can arrive faster than renders: the pending nibble and the cursor are read from refs.
  const writes = useRef<Promise<void>>(Promise.resolve());
  const pendingRef = useRef<number | null>(null);
  const cursorRef = useRef(0);
  cursorRef.current = cursor;
  pendingRef.current = pending;
  const onHexDigit = (d: number) => {
    const high = pendingRef.current;
    if (high === null) {
      pendingRef.current = d;
      setPending(d);
      return;
    }
    const value = (high << 4) | d;
    const at = cursorRef.current;
    pendingRef.current = null;
    setPending(null);
    if (at + 1 < size) {
      cursorRef.current = at + 1;
      moveCursor(at + 1, false);
    }
    writes.current = writes.current.then(async () => {
      try {
        unwrap(await commands.bytesApply(shard, { op: "write", offset: at, hex: hexByte(value) }));
        setEditError(null);
        await bumpRevision();
      } catch (e) {
        setEditError(`${formatOffset(at)}: ${describeFailure(e).detail}`);
      }
    });
  };

  const goto = () => {
    const r = parseOffset(gotoText, Math.max(0, size - 1));
    if (!r.ok) {
      setGotoError(r.error);
      return;
    }
    setGotoError(null);
    jumpTo(r.value);
  };

  const selStart = Math.min(cursor, anchor);
  const selLen = Math.abs(cursor - anchor) + 1;
  const curSpanIdx = spanIndexAt(spans, cursor);
  const curSpan: SpanView | null = curSpanIdx >= 0 ? (spans[curSpanIdx] ?? null) : null;
  const legend = useMemo(
    () =>
      [
        ["header", "header"],
        ["metadata", "metadata"],
        ["tensorInfo", "tensor info"],
        ["tensorData", "tensor data"],
        ["padding", "padding"],
      ] as const,
    [],
  );

  if (!structure) {
    return (
      <div className="screen empty-state" data-testid="screen-bytes">
        {loadError != null ? <InlineError error={loadError} /> : <p className="muted">Reading the structure…</p>}
      </div>
    );
  }

  return (
    <div className="screen bytes-screen" data-testid="screen-bytes">
      <StructureOutline spans={spans} current={curSpan} onJump={(s) => jumpTo(s.start, s.end - s.start)} error={structure.ggufError} />
      <div className="bytes-main">
        <div className="bytes-toolbar">
          {files > 1 && <FilePicker shard={shard} files={files} onShard={onShard} />}
          <form
            className="row-form"
            onSubmit={(e) => {
              e.preventDefault();
              goto();
            }}
          >
            <input
              className={`filter mono goto ${gotoError ? "invalid" : ""}`}
              placeholder="go to offset: 0x1f40 or 8000"
              value={gotoText}
              onChange={(e) => setGotoText(e.target.value)}
              data-testid="goto-input"
              aria-invalid={gotoError !== null}
            />
            <button className="ghost" data-testid="goto-button">
              Go
            </button>
          </form>
          <InlineError error={gotoError} testId="goto-error" inline />
          <span className="sel-info mono" data-testid="selection">
            {selLen > 1 ? `${formatOffset(selStart)} +${selLen}` : formatOffset(cursor)}
          </span>
          <span className="legend">
            {legend.map(([c, l]) => (
              <span key={c} className="legend-item">
                <span className={`dot sp-${c}`} />
                {l}
              </span>
            ))}
            <span className="legend-item">
              <span className="dot prot-dot" />
              protected
            </span>
          </span>
        </div>
        <InlineError error={editError} testId="edit-error" className="edit-error" />
        {structure.ggufError && <InlineError error={`The header no longer parses: ${structure.ggufError}`} className="edit-error" />}
        <HexView
          size={size}
          spans={spans}
          protections={structure.protections}
          data={data?.bytes ?? null}
          windowStart={data?.start ?? 0}
          topRow={topRow}
          onTopRow={setTopRow}
          viewPx={viewPx}
          onViewPx={setViewPx}
          cursor={cursor}
          anchor={anchor}
          onCursor={moveCursor}
          match={match}
          pending={pending}
          onHexDigit={onHexDigit}
          onEscape={() => setPending(null)}
        />
        <p className="muted small hex-hint">
          Drag to select · Shift+arrows extend · type two hex digits to overwrite the byte at the cursor · Ctrl+Z undoes
        </p>
      </div>
      <div className="bytes-side">
        <Inspector cursor={cursor} bytes={inspBytes} span={curSpan} littleEndian={littleEndian} onEndian={setLittleEndian} />
        <SearchPanel
          shard={shard}
          spans={spans}
          onMatch={(m) => {
            setMatch(m);
            if (m) jumpTo(m.offset, m.len);
          }}
        />
        <OpsPanel
          shard={shard}
          size={size}
          selStart={selStart}
          selLen={selLen}
          onRange={(o, l) => {
            setAnchor(o);
            setCursor(o + l - 1);
            reveal(o);
          }}
          onApplied={() => void bumpRevision()}
        />
      </div>
    </div>
  );
}
