/** The inspector: the bytes at the cursor as every integer and float type, and where they sit. */
import type { SpanView } from "../../bindings";
import { formatOffset } from "../../lib/bytes/hex";
import { inspect, locateInTensor } from "../../lib/bytes/inspect";
import { spanLabel } from "./HexView";

export interface InspectorProps {
  cursor: number;
  bytes: Uint8Array | null;
  span: SpanView | null;
  littleEndian: boolean;
  onEndian: (le: boolean) => void;
}

export function Inspector({ cursor, bytes, span, littleEndian, onEndian }: InspectorProps) {
  const rows = bytes ? inspect(bytes, littleEndian) : [];
  const loc = span?.tensor ? locateInTensor(span.tensor, span.start, cursor) : null;
  return (
    <section className="card bytes-card" data-testid="inspector">
      <div className="card-title">
        <h3>Inspector</h3>
        <span className="mono muted" data-testid="inspector-offset">
          {formatOffset(cursor)}
        </span>
        <div className="seg" role="group" aria-label="byte order">
          <button className={littleEndian ? "on" : ""} onClick={() => onEndian(true)} data-testid="endian-le">
            LE
          </button>
          <button className={!littleEndian ? "on" : ""} onClick={() => onEndian(false)} data-testid="endian-be">
            BE
          </button>
        </div>
      </div>
      <div className="insp-where" data-testid="inspector-span">
        {span ? (
          <>
            <span className={`dot sp-${span.class}`} /> {spanLabel(span)}{" "}
            <span className="muted">
              +{cursor - span.start} of {span.end - span.start} B
            </span>
          </>
        ) : (
          <span className="muted">no structure here</span>
        )}
      </div>
      {loc && (
        <dl className="facts compact insp-loc" data-testid="inspector-tensor">
          <dt>tensor byte</dt>
          <dd className="mono">{loc.byte}</dd>
          {loc.element !== null && (
            <>
              <dt>element</dt>
              <dd className="mono">
                {loc.element} {loc.coords && <span className="muted">[{loc.coords.join(", ")}]</span>}
              </dd>
            </>
          )}
          {loc.block !== null && (
            <>
              <dt>block</dt>
              <dd className="mono">
                {loc.block} <span className="muted">byte {loc.byteInBlock} of the block</span>
              </dd>
              <dt>elements</dt>
              <dd className="mono">
                {loc.elements?.[0]}…{loc.elements?.[1]}
              </dd>
            </>
          )}
        </dl>
      )}
      <table className="insp-table">
        <tbody>
          {rows.map((r) => (
            <tr key={r.label} data-testid={`insp-${r.label}`}>
              <th>{r.label}</th>
              <td className="mono">{r.value ?? <span className="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
