/**
 * Staged / live mode: switch (live asks for confirmation: writes reach the file, and a running
 * llama.cpp, at once) and the tensors a running llama.cpp on this machine will see live, with
 * the reasons (`hotpatch_core::live`: the verdicts depend on the CPU, which the panel names).
 */
import { useMemo, useState } from "react";
import { commands, describeFailure, unwrap } from "../../lib/ipc";
import type { ModelMode } from "../../bindings";
import type { EditState } from "../../lib/editState";
import { formatBytes } from "../../lib/format";
import { InlineError } from "../InlineError";
import { useQuery } from "../../lib/query";

interface Props {
  state: EditState | null;
  onChanged: (s: EditState) => void;
}

const ORDER: Record<string, number> = { copied: 0, unknown: 1, live: 2 };

export function ModePanel({ state, onChanged }: Props) {
  const [confirm, setConfirm] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [filter, setFilter] = useState<"all" | "live" | "copied" | "unknown">("all");
  const mode = state?.mode ?? null;

  // Which tensors a running llama.cpp sees live, read again for another model.
  const path = state?.path ?? null;
  const live = useQuery(async () => (path ? unwrap(await commands.liveTensors()) : null), [path]);
  const report = live.data;

  const rows = useMemo(() => report?.rows ?? [], [report]);
  const counts = useMemo(() => {
    const c = { live: 0, copied: 0, unknown: 0 };
    for (const r of rows) c[r.visibility as keyof typeof c] += 1;
    return c;
  }, [rows]);
  // One line per distinct verdict and reason (type, CPU feature or role), listing its types.
  const byVerdict = useMemo(() => {
    const m = new Map<string, { key: string; visibility: string; reason: string; types: Set<string> }>();
    for (const r of rows) {
      const key = `${r.visibility}\u0000${r.reason}`;
      const e = m.get(key) ?? { key, visibility: r.visibility, reason: r.reason, types: new Set<string>() };
      e.types.add(r.ty);
      m.set(key, e);
    }
    return [...m.values()].sort((a, b) => (ORDER[a.visibility] ?? 3) - (ORDER[b.visibility] ?? 3));
  }, [rows]);
  const shown = useMemo(
    () => rows.filter((r) => filter === "all" || r.visibility === filter).sort((a, b) => (ORDER[a.visibility] ?? 3) - (ORDER[b.visibility] ?? 3)),
    [rows, filter],
  );

  const switchTo = async (m: ModelMode) => {
    setError(null);
    setConfirm(false);
    try {
      onChanged(unwrap(await commands.setModelMode(m)));
    } catch (e) {
      setError(describeFailure(e).detail);
    }
  };

  return (
    <section className="card mode-panel" data-testid="mode-panel">
      <div className="card-title">
        <h3>Mode</h3>
        <div className="segmented" role="radiogroup" aria-label="Edit mode">
          <button role="radio" aria-checked={mode === "staged"} className={mode === "staged" ? "on" : ""} data-testid="mode-staged" onClick={() => mode !== "staged" && void switchTo("staged")}>
            Staged
          </button>
          <button role="radio" aria-checked={mode === "live"} className={mode === "live" ? "on live" : ""} data-testid="mode-live" onClick={() => mode !== "live" && setConfirm(true)}>
            Live
          </button>
        </div>
      </div>
      <p className="muted small-text mode-help">
        {mode === "live"
          ? "Live: every edit is written into the file at once; a llama.cpp that has the file mapped sees it at its next token for the tensors marked live below."
          : "Staged: edits stay in a private copy until Save; nothing touches the file before."}
      </p>
      {confirm && (
        <div className="confirm" data-testid="mode-confirm" role="alertdialog" aria-label="Switch to live mode">
          <strong>Switch to live mode?</strong>
          <p>Every later edit is written into {state?.path ?? "the file"} immediately — there is no Save step. Undo still works, by writing the old bytes back.</p>
          <div className="editor-buttons">
            <button className="tool danger" data-testid="mode-confirm-live" onClick={() => void switchTo("live")}>
              Go live
            </button>
            <button className="ghost" onClick={() => setConfirm(false)}>
              Stay staged
            </button>
          </div>
        </div>
      )}
      <InlineError error={error ?? live.error} testId="mode-error" />
      <table className="why-table" data-testid="live-reasons">
        <tbody>
          {byVerdict.map((v) => (
            <tr key={v.key} data-testid="live-reason" data-visibility={v.visibility}>
              <td>
                <span className={`chip tiny vis-${v.visibility}`}>{v.visibility === "copied" ? "after reload" : v.visibility}</span>
              </td>
              <td>
                <span className="mono types-list">{[...v.types].sort().join(", ")}</span>
                <span className="muted reason">{v.reason}</span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {report && (
        <p className="muted small-text" data-testid="live-cpu">
          Verdicts for this machine's CPU ({report.cpu}) and llama.cpp's CPU backend; other CPUs and llama.cpp builds copy other types. To see every edit: {report.hint}.
        </p>
      )}
      <div className="live-head">
        <span className="small-text">What a running llama.cpp (CPU, mmap) sees of live edits:</span>
        <div className="segmented small">
          {(["all", "live", "copied", "unknown"] as const).map((f) => (
            <button key={f} className={filter === f ? "on" : ""} onClick={() => setFilter(f)} data-testid={`live-filter-${f}`}>
              {f === "all" ? `all ${rows.length}` : `${f} ${counts[f]}`}
            </button>
          ))}
        </div>
      </div>
      <div className="live-table-wrap">
        <table className="live-table" data-testid="live-table">
          <thead>
            <tr>
              <th>Tensor</th>
              <th>Type</th>
              <th className="num">Size</th>
              <th>Live?</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((r) => (
              <tr key={r.name} data-testid="live-row" data-name={r.name} data-visibility={r.visibility} title={`${r.ty}: ${r.reason}`}>
                <td className="mono">{r.name}</td>
                <td className="mono">{r.ty}</td>
                <td className="num muted">{formatBytes(r.nbytes)}</td>
                <td>
                  <span className={`chip tiny vis-${r.visibility}`}>{r.visibility === "copied" ? "after reload" : r.visibility}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
