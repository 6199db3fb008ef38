/**
 * "Jump to the largest differences": the k elements of the selected tensor with the largest
 * |A − B| (computed in Rust, `diff_top`), as a list; clicking one centres all three maps on it.
 */
import { formatCount } from "../../lib/format";
import type { DiffPointRow } from "../../lib/diff/types";
import { InlineError } from "../InlineError";

export interface TopDifferencesProps {
  points: DiffPointRow[] | null;
  loading: boolean;
  /** The failure to find them (shown with the backend's words). */
  error: unknown;
  k: number;
  onK: (k: number) => void;
  active: { row: number; col: number } | null;
  onJump: (p: DiffPointRow) => void;
}

/** A value as text from Rust (`NaN`, `Infinity` included) shown with 6 significant digits. */
function show(text: string): string {
  const x = Number(text);
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "+∞" : "−∞";
  return Number(x.toPrecision(6)).toString();
}

export function TopDifferences({ points, loading, error, k, onK, active, onJump }: TopDifferencesProps) {
  return (
    <section className="diff-top" data-testid="diff-top">
      <div className="panel-head">
        <h3>Largest differences</h3>
        <label className="muted">
          top{" "}
          <select value={k} onChange={(e) => onK(Number(e.target.value))} aria-label="How many differences to list" data-testid="diff-top-k">
            {[20, 50, 200, 1000].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
      </div>
      <InlineError error={error} testId="diff-top-error" />
      {error == null && points && points.length === 0 && <div className="empty muted">A and B hold the same values here.</div>}
      {error == null && points && points.length > 0 && (
        <div className="diff-top-scroll">
          <table className="diff-top-table">
            <thead>
              <tr>
                <th className="num">row</th>
                <th className="num">col</th>
                <th className="num">A</th>
                <th className="num">B</th>
                <th className="num">A − B</th>
              </tr>
            </thead>
            <tbody>
              {points.map((p) => (
                <tr
                  key={p.index}
                  onClick={() => onJump(p)}
                  className={active && active.row === p.row && active.col === p.col ? "selected" : ""}
                  data-testid="diff-top-row"
                  data-row={p.row}
                  data-col={p.col}
                  title={`element ${formatCount(p.index)} — click to centre the maps on it`}
                >
                  <td className="num mono">{formatCount(p.row)}</td>
                  <td className="num mono">{formatCount(p.col)}</td>
                  <td className="num mono">{show(p.a)}</td>
                  <td className="num mono">{show(p.b)}</td>
                  <td className="num mono delta">{show(p.delta)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {loading && !points && <div className="empty muted">Finding the largest differences…</div>}
    </section>
  );
}
