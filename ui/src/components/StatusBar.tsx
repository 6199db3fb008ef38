import type { ModelSummary, Progress } from "../lib/ipc";
import { formatBytes } from "../lib/format";

interface Props {
  summary: ModelSummary | null;
  progress: Progress | null;
  progressCount: number;
  /** Overrides the last progress message (e.g. after a failed open). */
  note: string | null;
  busy: boolean;
}

export function StatusBar({ summary, progress, progressCount, note, busy }: Props) {
  const pct = progress && progress.total > 0 ? Math.min(100, (progress.done / progress.total) * 100) : 0;
  return (
    <footer className="statusbar">
      <span className={`dot ${busy ? "busy" : note ? "error" : summary ? "ok" : ""}`} />
      <span className="status-message" data-testid="status-message" data-progress-count={progressCount}>
        {note ?? progress?.message ?? "ready"}
      </span>
      {busy && (
        <span className="progress">
          <span style={{ width: `${pct}%` }} />
        </span>
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
