/** The status bar: the running job (label, progress bar, Cancel) or the last outcome, and model facts. */
import { formatBytes } from "../lib/format";
import { useJobs } from "../lib/jobs";
import { useSession } from "../lib/session";

export function StatusBar() {
  const { summary, failure } = useSession();
  const { job, cancelJob, note } = useJobs();
  const p = job?.progress ?? null;
  const pct = p && p.total > 0 ? Math.min(100, (p.done / p.total) * 100) : 0;
  const message = job ? (p?.message ?? job.label) : (note?.text ?? "ready");
  const count = job ? job.messages : (note?.messages ?? 0);
  return (
    <footer className="statusbar">
      <span className={`dot ${job ? "busy" : failure ? "error" : summary ? "ok" : ""}`} />
      <span className="status-message" data-testid="status-message" data-progress-count={count}>
        {message}
      </span>
      {job && (
        <>
          <span className="progress" data-testid="job-progress" role="progressbar" aria-valuenow={Math.round(pct)} aria-valuemin={0} aria-valuemax={100}>
            <span style={{ width: `${pct}%` }} />
          </span>
          <button type="button" className="ghost small" data-testid="job-cancel" onClick={cancelJob} disabled={job.canceling}>
            {job.canceling ? "Canceling…" : "Cancel"}
          </button>
        </>
      )}
      <span className="spacer" />
      {summary && (
        <>
          <span>{summary.tensorCount} tensors</span>
          <span>{summary.metadataCount} keys</span>
          <span>{formatBytes(summary.fileSize)}</span>
        </>
      )}
    </footer>
  );
}
