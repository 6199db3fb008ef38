/**
 * Copy from B into A (the open model) as a patch: the whole tensor, the rows the maps show, or
 * typed rows / columns / elements. It goes through the session, so it is one undo step,
 * recorded, and exported in configurations (as a `lerp` with t = 1 towards model B's file).
 * Same-type blocks are copied byte for byte; across types B's values are re-encoded in A's type.
 */
import { useEffect, useState } from "react";
import type { CopyRange, CopyResult } from "../../lib/diff/types";
import { commands, describeFailure, unwrap } from "../../lib/ipc";
import { formatBytes, formatCount } from "../../lib/format";
import { parseRange, type MatrixShape } from "../../lib/diff/sync";
import { InlineError } from "../InlineError";

type Kind = "all" | "visible" | "rows" | "columns" | "elements";

export interface CopyPanelProps {
  tensor: string;
  shape: MatrixShape;
  /** The rows the maps show now (for "visible rows"). */
  visible: { start: number; end: number };
  /** A row picked on a map (pre-fills the row range). */
  pickedRow: number | null;
  typeA: string;
  typeB: string;
  disabledReason: string | null;
  onCopied: (r: CopyResult) => void;
}

export function CopyPanel(props: CopyPanelProps) {
  const { tensor, shape, visible, pickedRow, typeA, typeB, disabledReason, onCopied } = props;
  const [kind, setKind] = useState<Kind>("all");
  const [start, setStart] = useState("0");
  const [end, setEnd] = useState("1");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  useEffect(() => {
    setError(null);
    setDone(null);
  }, [tensor]);
  useEffect(() => {
    if (pickedRow === null) return;
    setKind("rows");
    setStart(String(pickedRow));
    setEnd(String(pickedRow + 1));
  }, [pickedRow]);

  const n = shape.rows * shape.cols;
  const range = (): CopyRange | string => {
    switch (kind) {
      case "all":
        return { kind: "all" };
      case "visible":
        return { kind: "rows", start: visible.start, end: visible.end };
      case "rows":
      case "columns":
      case "elements": {
        const what = kind === "rows" ? "row" : kind === "columns" ? "column" : "element";
        const limit = kind === "rows" ? shape.rows : kind === "columns" ? shape.cols : n;
        const r = parseRange(start, end, limit, what);
        if (!r.ok) return r.error;
        return { kind, start: r.start, end: r.end };
      }
    }
  };

  const copy = async () => {
    const r = range();
    if (typeof r === "string") {
      setError(r);
      setDone(null);
      return;
    }
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const res = unwrap(await commands.copyFromB(tensor, r));
      setDone(
        res.change === null
          ? `Nothing to copy: A already holds B's values there (${formatCount(res.elements)} elements).`
          : `Copied ${formatCount(res.elements)} elements (${formatCount(res.changed)} changed, ${formatBytes(res.bytesChanged)} of A written${
              res.blocksRequantized > 0 ? `, ${formatCount(res.blocksRequantized)} blocks re-encoded as ${typeA}` : ""
            }). Undo with Ctrl+Z.`,
      );
      onCopied(res);
    } catch (e) {
      const d = describeFailure(e);
      setError(`${d.title}: ${d.detail}`);
    } finally {
      setBusy(false);
    }
  };

  const typed = kind === "rows" || kind === "columns" || kind === "elements";
  return (
    <section className="diff-copy" data-testid="diff-copy">
      <div className="panel-head">
        <h3>Copy B → A</h3>
        <span className="muted">{typeA === typeB ? `${typeA}: blocks copied byte for byte` : `${typeB} values re-encoded as ${typeA}`}</span>
      </div>
      <div className="copy-form">
        <select value={kind} onChange={(e) => setKind(e.target.value as Kind)} aria-label="What to copy" data-testid="diff-copy-kind">
          <option value="all">whole tensor</option>
          <option value="visible">
            visible rows ({formatCount(visible.start)}…{formatCount(visible.end)})
          </option>
          <option value="rows">rows…</option>
          <option value="columns">columns…</option>
          <option value="elements">elements…</option>
        </select>
        {typed && (
          <>
            <input className="num-input mono" value={start} onChange={(e) => setStart(e.target.value)} aria-label="Range start" data-testid="diff-copy-start" />
            <span className="muted">to</span>
            <input className="num-input mono" value={end} onChange={(e) => setEnd(e.target.value)} aria-label="Range end (excluded)" data-testid="diff-copy-end" />
          </>
        )}
        <button className="primary" onClick={() => void copy()} disabled={busy || disabledReason !== null} title={disabledReason ?? "Write B's values into the open model (staged, undoable)"} data-testid="diff-copy-go">
          {busy ? "Copying…" : "Copy into A"}
        </button>
      </div>
      {disabledReason && <div className="muted small">{disabledReason}</div>}
      <InlineError error={error} testId="diff-copy-error" />
      {done && (
        <div className="ok-note" data-testid="diff-copy-done">
          {done}
        </div>
      )}
    </section>
  );
}
