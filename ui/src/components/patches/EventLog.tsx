/**
 * The live patch-event log: every change any layer made, newest first, each with the file it
 * changed; undo back to an entry. Metadata edits (staged beside the byte journal, written by
 * Save) are listed above the events with their state.
 */
import { useState } from "react";
import type { HistoryRow, PatchEventView_Serialize as PatchEventView } from "../../bindings";
import { formatBytes } from "../../lib/format";
import { commands, unwrap } from "../../lib/ipc";
import { canUndo, formatClock, undoSteps } from "../../lib/patches/report";
import { InlineError } from "../InlineError";

interface Props {
  events: readonly PatchEventView[];
  undoable: readonly number[];
  redoable: readonly number[];
  /** The session's metadata steps (the edit state's history rows of kind `metadata`). */
  metadata?: readonly HistoryRow[];
  onChanged: () => void;
}

export function EventLog({ events, undoable, redoable, metadata = [], onChanged }: Props) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const live = new Set(undoable);
  const redone = new Set(redoable);

  async function undo(change: number) {
    setBusy(true);
    setError(null);
    try {
      unwrap(await commands.undoThrough(change));
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card event-log">
      <header className="card-head">
        <h3>Patch events</h3>
        <span className="muted">
          newest first · {events.length} event{events.length === 1 ? "" : "s"} · {undoable.length} undoable change{undoable.length === 1 ? "" : "s"}
        </span>
      </header>
      <InlineError error={error} testId="event-error" />
      {metadata.length > 0 && (
        <div className="meta-steps" data-testid="meta-steps">
          <div className="muted small">
            Metadata edits · {metadata.filter((m) => !m.undone).length} pending until Save
          </div>
          <ul>
            {metadata.map((m) => (
              <li key={m.id} data-testid="meta-step" data-undone={m.undone ? "true" : "false"}>
                <span className="layer layer-metadata">metadata</span>
                <span className="mono meta-step-label">{m.label}</span>
                <span className="muted small">{m.undone ? "undone: redo brings it back" : "pending until Save"}</span>
              </li>
            ))}
          </ul>
        </div>
      )}
      {events.length === 0 && metadata.length === 0 ? (
        <p className="empty">No changes yet. Edits from every screen, imports and presets appear here as they happen.</p>
      ) : events.length === 0 ? null : (
        <div className="table-scroll">
          <table className="table events-table" data-testid="patch-events">
            <colgroup>
              <col className="c-id" />
              <col className="c-time" />
              <col />
              <col className="c-target" />
              <col className="c-bytes" />
              <col className="c-act" />
            </colgroup>
            <thead>
              <tr>
                <th>#</th>
                <th>Time</th>
                <th>Change</th>
                <th>Target · file</th>
                <th className="num">Bytes</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {events.map((e) => {
                const undoHere = canUndo(e, live) && e.change != null;
                const steps = e.change != null ? undoSteps(e.change, undoable) : 0;
                return (
                  <tr key={e.id} data-testid="event-row" data-operation={e.operation} data-change={e.change ?? ""}>
                    <td className="mono muted">{e.id}</td>
                    <td className="mono" title={formatClock(e.timeUnixMs)}>
                      {formatClock(e.timeUnixMs).slice(0, 8)}
                    </td>
                    <td title={e.source ? `${e.operation} — ${e.source}` : e.operation}>
                      <div className="ellipsis">{e.operation}</div>
                      <div className="muted small ellipsis">
                        <span className={`layer layer-${e.layer}`}>{e.layer}</span>
                        {e.source && ` · ${e.source}`}
                      </div>
                    </td>
                    <td className="mono" title={e.file ? `${e.target} — ${e.file}` : e.target}>
                      <div className="ellipsis">{e.target}</div>
                      {e.file && e.file !== e.target && (
                        <div className="muted small ellipsis" data-testid="event-file">
                          {e.file}
                        </div>
                      )}
                    </td>
                    <td className="num mono" title={`${e.bytesChanged} bytes changed of ${e.bytesWritten} written`}>
                      {formatBytes(e.bytesChanged)}
                    </td>
                    <td className="row-actions">
                      {undoHere ? (
                        <button
                          className="ghost small"
                          disabled={busy}
                          onClick={() => void undo(e.change!)}
                          title={steps > 1 ? `Undo this change and the ${steps - 1} made after it` : "Undo this change"}
                          data-testid="event-undo"
                        >
                          {steps > 1 ? `Undo ×${steps}` : "Undo"}
                        </button>
                      ) : e.change != null && redone.has(e.change) && e.operation !== "undo" ? (
                        <span className="muted small" title="undone: redo brings it back">
                          undone
                        </span>
                      ) : !e.undoable ? (
                        <span className="muted small" title="not recorded in the undo journal">
                          final
                        </span>
                      ) : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
