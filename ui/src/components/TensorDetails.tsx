import type { ModelSummary, TensorRow } from "../lib/ipc";
import { bitsPerWeight, formatBytes, formatCount, formatDims, formatOffset, typeFamily } from "../lib/format";

export function TensorDetails({ tensor, summary }: { tensor: TensorRow | null; summary: ModelSummary }) {
  if (!tensor) {
    return (
      <section className="card">
        <p className="muted">Select a tensor on the left.</p>
      </section>
    );
  }
  const share = summary.tensorBytes > 0 ? (tensor.nbytes / summary.tensorBytes) * 100 : 0;
  return (
    <section className="card details" data-testid="tensor-details">
      <div className="card-title">
        <h2 data-testid="detail-name">{tensor.name}</h2>
        <span className={`badge big ${typeFamily(tensor.ty)}`} data-testid="detail-type">
          {tensor.ty}
        </span>
      </div>
      <dl className="facts">
        <div>
          <dt>Shape</dt>
          <dd data-testid="detail-dims">{formatDims(tensor.dims)}</dd>
        </div>
        <div>
          <dt>Elements</dt>
          <dd>{formatCount(tensor.nElements)}</dd>
        </div>
        <div>
          <dt>Size</dt>
          <dd data-testid="detail-size">
            {formatBytes(tensor.nbytes)} <span className="muted">({formatCount(tensor.nbytes)} B)</span>
          </dd>
        </div>
        <div>
          <dt>Bits / weight</dt>
          <dd>{bitsPerWeight(tensor.nbytes, tensor.nElements).toFixed(2)}</dd>
        </div>
        <div>
          <dt>Offset</dt>
          <dd className="mono" data-testid="detail-offset">
            {formatOffset(tensor.offset)} <span className="muted">({formatCount(tensor.offset)})</span>
          </dd>
        </div>
        <div>
          <dt>Share of weights</dt>
          <dd>{share.toFixed(2)} %</dd>
        </div>
        <div>
          <dt>Index</dt>
          <dd>
            #{tensor.index} <span className="muted">type id {tensor.typeId}</span>
          </dd>
        </div>
        <div>
          <dt>Block</dt>
          <dd>{tensor.block === null ? "—" : `blk.${tensor.block}`}</dd>
        </div>
      </dl>
    </section>
  );
}
