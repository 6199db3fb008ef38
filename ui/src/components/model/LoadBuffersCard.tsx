/**
 * What an external llama.cpp with default settings copies at load, on this machine — measured,
 * not from a table: the embedded llama.cpp loads the model the default way (repacking on) and
 * reads which backend buffer holds every weight (`CPU_REPACK`: a copy an edit of the file does
 * not reach until a reload). And how to make llama-server see every edit (`--no-repack`).
 */
import { useEffect, useMemo, useState } from "react";
import { InlineError } from "../InlineError";
import { commands, unwrap } from "../../lib/ipc";
import { useQuery } from "../../lib/query";
import { useSession } from "../../lib/session";

/** Models up to this size are measured when the screen opens; bigger ones on request (the
 * measurement is a default load: repacked tensors are copied into RAM). */
const AUTO_BYTES = 2 * 1024 ** 3;

export function LoadBuffersCard({ path, fileSize }: { path: string; fileSize: number }) {
  const { runJob } = useSession();
  const [all, setAll] = useState(false);
  const [asked, setAsked] = useState(fileSize <= AUTO_BYTES);

  useEffect(() => setAsked(fileSize <= AUTO_BYTES), [path, fileSize]);

  const { data: view, error } = useQuery(
    () =>
      asked
        ? runJob(`measure what llama.cpp copies at load of ${path.split(/[\\/]/).pop() ?? path}`, async (job, channel) => unwrap(await commands.loadBuffers(job, channel)), { quietMs: 400 })
        : null,
    [path, runJob, asked],
  );

  const copiedTypes = useMemo(() => [...new Set((view?.rows ?? []).filter((r) => r.copied).map((r) => r.ty))].sort(), [view]);
  const rows = useMemo(() => (view?.rows ?? []).filter((r) => all || r.copied), [view, all]);
  const file = path.split(/[\\/]/).pop() ?? path;

  return (
    <section className="card load-buffers" data-testid="load-buffers">
      <div className="card-title">
        <h3>Default llama.cpp load</h3>
        {view && (
          <span className={`chip ${view.copied > 0 ? "warn" : "added"}`} data-testid="load-buffers-count" data-copied={view.copied}>
            {view.copied} of {view.rows.length} copied at load
          </span>
        )}
      </div>
      {!asked && (
        <p className="small-text">
          Which tensors does a llama.cpp with default settings copy at load (so that live edits miss them)?{" "}
          <button className="link" onClick={() => setAsked(true)} data-testid="load-buffers-measure">
            Measure
          </button>{" "}
          <span className="muted">(one default load of the model by the embedded llama.cpp)</span>
        </p>
      )}
      {asked && !view && error == null && <p className="muted small-text">Measuring with the embedded llama.cpp…</p>}
      <InlineError error={error} testId="load-buffers-error" />
      {view && (
        <>
          <p className="small-text" data-testid="load-buffers-summary">
            {view.copied > 0 ? (
              <>
                Measured on this machine: a llama.cpp loading this file with default settings repacks{" "}
                <strong>
                  {view.copied} tensor{view.copied === 1 ? "" : "s"} ({copiedTypes.join(", ")})
                </strong>{" "}
                into its own buffers; live edits of those reach it only after a reload. The other {view.rows.length - view.copied} it reads from the mapped file.
              </>
            ) : (
              <>Measured on this machine: a llama.cpp loading this file with default settings copies nothing; it reads every tensor from the mapped file and sees every live edit.</>
            )}
          </p>
          <p className="small-text" data-testid="load-buffers-hint">
            To make an external server see every edit, start it with <code className="nowrap">--no-repack</code> (and mmap on, the default):{" "}
            <code className="nowrap">llama-server -m {file} --no-repack</code>. The Run screen's engine always runs this way.
          </p>
          <p className="muted small-text" title={view.systemInfo}>
            Exact for this llama.cpp build on this CPU ({view.systemInfo.split("|").slice(0, 4).join("|")}…); another build or CPU may repack other types.
          </p>
          {(view.copied > 0 || all) && (
            <div className="live-table-wrap">
              <table className="live-table" data-testid="load-buffers-table">
                <thead>
                  <tr>
                    <th>Tensor</th>
                    <th>Type</th>
                    <th>Buffer</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((r) => (
                    <tr key={r.name} data-testid="load-buffers-row" data-name={r.name} data-copied={r.copied} data-buffer={r.buffer ?? ""}>
                      <td className="mono">{r.name}</td>
                      <td className="mono">{r.ty}</td>
                      <td className="mono">{r.buffer ?? <span className="muted">not read</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <button className="link" onClick={() => setAll((a) => !a)} data-testid="load-buffers-all">
            {all ? "Show only the copied tensors" : `Show all ${view.rows.length} tensors`}
          </button>
        </>
      )}
    </section>
  );
}
