/** The live patch-event log: every change any layer made, newest first; undo back to an entry. */
import { useState } from "react";
import type { PatchEventView_Serialize as PatchEventView } from "../../bindings";
import { formatBytes } from "../../lib/format";
import { commands, unwrap } from "../../lib/ipc";
import { canUndo, formatClock, undoSteps } from "../../lib/patches/report";
import { InlineError } from "../server/InlineError";

interface Props {
  events: readonly PatchEventView[];
  undoable: readonly number[];
  onChanged: () => void;
}

export function EventLog({ events, undoable, onChanged }: Props) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const live = new Set(undoable);

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
      {events.length === 0 ? (
        <p className="empty">No changes yet. Edits from every screen, imports and presets appear here as they happen.</p>
      ) : (
        <div className="table-scroll">
          <table className="table events-table" data-testid="patch-events">
            <thead>
              <tr>
                <th>#</th>
                <th>Time</th>
                <th>Layer</th>
                <th>Operation</th>
                <th>Target</th>
                <th className="num">Changed</th>
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
                    <td className="mono">{formatClock(e.timeUnixMs)}</td>
                    <td>
                      <span className={`badge layer-${e.layer}`}>{e.layer}</span>
                    </td>
                    <td>
                      {e.operation}
                      {e.source && <div className="muted small">{e.source}</div>}
                    </td>
                    <td className="mono target" title={e.target}>
                      {e.target}
                    </td>
                    <td className="num mono">{formatBytes(e.bytesChanged)}</td>
                    <td className="row-actions">
                      {undoHere ? (
                        <button
                          className="ghost small"
                          disabled={busy}
                          onClick={() => void undo(e.change!)}
                          title={steps > 1 ? `Undo this change and the ${steps - 1} made after it` : "Undo this change"}
                          data-testid="event-undo"
                        >
                          Undo{steps > 1 ? ` (${steps} steps)` : ""}
                        </button>
                      ) : e.undoable ? (
                        <span className="muted small">{e.operation === "undo" || e.operation === "redo" ? "" : "undone"}</span>
                      ) : (
                        <span className="muted small" title="not recorded in the undo journal">final</span>
                      )}
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
