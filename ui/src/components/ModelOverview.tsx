import type { ModelSummary } from "../lib/ipc";
import { formatBytes, formatCount, formatOffset, typeFamily } from "../lib/format";

export function ModelOverview({ summary }: { summary: ModelSummary }) {
  const max = Math.max(1, ...summary.types.map((t) => t.bytes));
  return (
    <section className="card overview" data-testid="model-overview">
      <div className="card-title">
        <h3>Model</h3>
      </div>
      <div className="overview-grid">
        <dl className="facts compact">
          <div>
            <dt>{summary.shards > 1 ? "Size" : "File size"}</dt>
            <dd data-testid="overview-size">
              {formatBytes(summary.fileSize)}
              {summary.shards > 1 && <span className="muted"> in {summary.shards} files</span>}
            </dd>
          </div>
          <div>
            <dt>Tensors</dt>
            <dd>{formatCount(summary.tensorCount)}</dd>
          </div>
          <div>
            <dt>Metadata keys</dt>
            <dd>{formatCount(summary.metadataCount)}</dd>
          </div>
          <div>
            <dt>Alignment</dt>
            <dd>{summary.alignment} B</dd>
          </div>
          <div>
            <dt>Data offset</dt>
            <dd className="mono">{formatOffset(summary.dataOffset)}</dd>
          </div>
          <div>
            <dt>Weights</dt>
            <dd>{formatBytes(summary.tensorBytes)}</dd>
          </div>
        </dl>
        <table className="types">
          <tbody>
            {summary.types.map((t) => (
              <tr key={t.ty}>
                <td>
                  <span className={`badge ${typeFamily(t.ty)}`}>{t.ty}</span>
                </td>
                <td className="num">{t.count}</td>
                <td className="bar-cell">
                  <span className={`bar ${typeFamily(t.ty)}`} style={{ width: `${(t.bytes / max) * 100}%` }} />
                </td>
                <td className="num muted">{formatBytes(t.bytes)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
