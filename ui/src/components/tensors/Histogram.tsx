/**
 * The histogram of a tensor's values (binned in Rust: `tensor_histogram`), as SVG bars with a
 * linear or log count axis, the range's edges and the hovered bin's range and count.
 */
import { useMemo, useState } from "react";
import { formatValue } from "../../lib/heatmap/format";
import { diverging } from "../../lib/heatmap/colormap";

export interface HistogramData {
  lo: number;
  hi: number;
  counts: number[];
}

const W = 300;
const H = 96;

export function Histogram({ data, scale }: { data: HistogramData; scale: number }) {
  const [log, setLog] = useState(true);
  const [hover, setHover] = useState<number | null>(null);
  const n = data.counts.length;
  const heights = useMemo(() => {
    const f = (c: number) => (log ? Math.log10(1 + c) : c);
    const max = Math.max(1e-9, ...data.counts.map(f));
    return data.counts.map((c) => (f(c) / max) * (H - 2));
  }, [data.counts, log]);
  const bw = W / Math.max(1, n);
  const edge = (k: number) => data.lo + ((data.hi - data.lo) * k) / n;
  const zeroX = data.lo < 0 && data.hi > 0 ? ((0 - data.lo) / (data.hi - data.lo)) * W : null;
  return (
    <div className="histogram" data-testid="histogram">
      <div className="hist-head">
        <span className="panel-title">Histogram</span>
        <span className="muted small">{n} bins</span>
        <span className="spacer" />
        <label className="check">
          <input type="checkbox" checked={log} onChange={(e) => setLog(e.target.checked)} /> log counts
        </label>
      </div>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" className="hist-svg" onMouseLeave={() => setHover(null)}>
        {heights.map((h, k) => {
          const mid = (edge(k) + edge(k + 1)) / 2;
          const [r, g, b] = diverging(scale > 0 ? mid / scale : 0);
          return (
            <rect
              key={k}
              x={k * bw}
              y={H - h}
              width={Math.max(0.5, bw - 0.4)}
              height={Math.max(h, data.counts[k]! > 0 ? 1 : 0)}
              fill={hover === k ? "var(--accent)" : `rgb(${r}, ${g}, ${b})`}
              stroke="rgba(0,0,0,0.15)"
              strokeWidth={0.3}
              onMouseEnter={() => setHover(k)}
            />
          );
        })}
        {/* Invisible full-height hit areas so tiny bars are easy to hover. */}
        {heights.map((_, k) => (
          <rect key={`hit${k}`} x={k * bw} y={0} width={bw} height={H} fill="transparent" onMouseEnter={() => setHover(k)} />
        ))}
        {zeroX !== null && <line x1={zeroX} x2={zeroX} y1={0} y2={H} stroke="var(--muted)" strokeDasharray="2 2" strokeWidth={0.6} />}
      </svg>
      <div className="hist-axis mono">
        <span>{formatValue(data.lo)}</span>
        <span className="hist-hover" data-testid="histogram-hover">
          {hover !== null
            ? `[${formatValue(edge(hover))}, ${formatValue(edge(hover + 1))}${hover === n - 1 ? "]" : ")"}: ${data.counts[hover]!.toLocaleString()}`
            : ""}
        </span>
        <span>{formatValue(data.hi)}</span>
      </div>
    </div>
  );
}
