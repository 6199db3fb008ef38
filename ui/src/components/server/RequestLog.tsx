/** The live request log, newest first, bounded. */
import type { RequestLogEntry_Serialize as RequestLogEntry } from "../../bindings";
import { formatClock } from "../../lib/patches/report";

export function RequestLog({ entries, onClear }: { entries: readonly RequestLogEntry[]; onClear: () => void }) {
  return (
    <section className="card request-log">
      <header className="card-head">
        <h3>Requests</h3>
        <span className="muted">newest first · last {entries.length}</span>
        <button className="ghost small" onClick={onClear} disabled={entries.length === 0}>
          Clear
        </button>
      </header>
      {entries.length === 0 ? (
        <p className="empty">No requests yet. Send one to the proxy's address.</p>
      ) : (
        <div className="table-scroll">
          <table className="table log-table" data-testid="request-log">
            <thead>
              <tr>
                <th>#</th>
                <th>Time</th>
                <th>Request</th>
                <th className="num">Status</th>
                <th className="num">Latency</th>
                <th>Rules applied</th>
                <th>Cache</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.id} data-testid="log-row" data-cache={e.cache} data-path={e.path} data-rules={e.rulesApplied.join(",")}>
                  <td className="mono muted">{e.id}</td>
                  <td className="mono">{formatClock(e.timeUnixMs)}</td>
                  <td className="mono path" title={e.path}>
                    <span className="method">{e.method}</span> {e.path}
                    {e.error && <div className="log-error">{e.error}</div>}
                  </td>
                  <td className={`num mono ${e.status >= 400 ? "bad" : ""}`}>
                    {e.status}
                    {e.blocked && <span className="badge warn">blocked</span>}
                  </td>
                  <td className="num mono" title={`headers after ${e.latencyMs.toFixed(1)} ms, done after ${e.durationMs.toFixed(1)} ms`}>
                    {e.durationMs.toFixed(1)} ms
                  </td>
                  <td>{e.rulesApplied.length ? e.rulesApplied.map((r) => <span key={r} className="badge">{r}</span>) : <span className="muted">—</span>}</td>
                  <td>
                    {e.cache === "hit" ? (
                      <span className="badge ok">CACHE HIT</span>
                    ) : e.cache === "miss" ? (
                      <span className="muted">miss</span>
                    ) : (
                      <span className="muted">pass-through</span>
                    )}
                    {e.streamed && <span className="badge">SSE</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
