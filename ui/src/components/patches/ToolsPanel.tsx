/** The manager's one-click tools: safety scan (progress + Cancel, optional repair) and boost. */
import { useState } from "react";
import type { Channel } from "@tauri-apps/api/core";
import type { BoostView_Serialize as BoostView, Progress, SafetyView_Serialize as SafetyView } from "../../bindings";
import { formatBytes, formatCount } from "../../lib/format";
import { commands, unwrap } from "../../lib/ipc";
import { boostSummary, formatFraction, safetySummary } from "../../lib/patches/report";
import { useSession } from "../../lib/session";
import { InlineError, InputError } from "../InlineError";
import { TransformTable } from "./PreviewPanel";

export function ToolsPanel({ onChanged }: { onChanged: () => void }) {
  const { runJob } = useSession();
  const [threshold, setThreshold] = useState("");
  const [repair, setRepair] = useState(false);
  const [replacement, setReplacement] = useState("0");
  const [filters, setFilters] = useState(false);
  const [scan, setScan] = useState<SafetyView | null>(null);
  const [scanError, setScanError] = useState<unknown>(null);
  const [lock, setLock] = useState(false);
  const [boost, setBoost] = useState<BoostView | null>(null);
  const [boostError, setBoostError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function runScan() {
    setScanError(null);
    setScan(null);
    const num = (s: string, what: string) => {
      const t = s.trim();
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) throw new InputError(`${what}: "${t}" is not a number.`);
      return Number(t);
    };
    setBusy(true);
    try {
      const outlierThreshold = threshold.trim() === "" ? null : num(threshold, "Outlier threshold");
      if (outlierThreshold !== null && outlierThreshold <= 0) throw new InputError(`Outlier threshold: ${outlierThreshold} must be above 0.`);
      const settings = { outlierThreshold, repair, replacement: num(replacement, "Replacement"), responseFilters: filters };
      const view = await runJob("safety scan", async (jobId: number, channel: Channel<Progress>) =>
        unwrap(await commands.safetyScan(settings, jobId, channel)),
      );
      setScan(view);
      if (view.change != null) onChanged();
    } catch (e) {
      setScanError(e);
    } finally {
      setBusy(false);
    }
  }

  async function runBoost() {
    setBoostError(null);
    setBusy(true);
    try {
      setBoost(unwrap(await commands.boostInference(lock)));
    } catch (e) {
      setBoostError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card tools-panel">
      <header className="card-head">
        <h3>Safety scan</h3>
        <span className="muted">NaN, ±Inf, subnormals and outliers in every tensor</span>
      </header>
      <div className="row wrap">
        <label className="inline">
          Outliers above |x| &gt;
          <input className="w-num" placeholder="off" value={threshold} onChange={(e) => setThreshold(e.target.value)} data-testid="safety-threshold" />
        </label>
        <label className="check">
          <input type="checkbox" checked={repair} onChange={(e) => setRepair(e.target.checked)} data-testid="safety-repair" />
          Repair (one undo step)
        </label>
        <label className="inline">
          NaN/Inf →
          <input className="w-num" value={replacement} onChange={(e) => setReplacement(e.target.value)} disabled={!repair} data-testid="safety-replacement" />
        </label>
        <label className="check">
          <input type="checkbox" checked={filters} onChange={(e) => setFilters(e.target.checked)} />
          Turn on response filters
        </label>
        <button className="primary" onClick={runScan} disabled={busy} data-testid="safety-run">
          Scan
        </button>
      </div>
      <InlineError error={scanError} testId="safety-error" />
      {scan && (
        <div className="result" data-testid="safety-report" data-total={scan.totalHits}>
          <p className={`note ${scan.totalHits === 0 && !scan.canceled ? "ok" : "warn"}`}>{safetySummary(scan)}</p>
          {scan.flagged.length > 0 && (
            <div className="table-scroll short">
              <table className="table">
                <thead>
                  <tr>
                    <th>Tensor</th>
                    <th>Type</th>
                    <th className="num">NaN</th>
                    <th className="num">±Inf</th>
                    <th className="num">Subnormal</th>
                    <th className="num">Outliers</th>
                    <th>Note</th>
                  </tr>
                </thead>
                <tbody>
                  {scan.flagged.map((t) => (
                    <tr key={t.tensor} data-testid="safety-row">
                      <td className="mono">{t.tensor}</td>
                      <td>{t.ty}</td>
                      <td className="num mono">{formatCount(t.nan)}</td>
                      <td className="num mono">{formatCount(t.inf)}</td>
                      <td className="num mono">{formatCount(t.subnormal)}</td>
                      <td className="num mono">{formatCount(t.outliers)}</td>
                      <td className="muted small">{t.skipped ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {scan.hits.length > 0 && (
            <details>
              <summary>
                First {scan.hits.length} of {formatCount(scan.totalHits)} values
              </summary>
              <div className="table-scroll short">
                <table className="table">
                  <thead>
                    <tr>
                      <th>Tensor</th>
                      <th className="num">Index</th>
                      <th className="num">Value</th>
                      <th>Kind</th>
                    </tr>
                  </thead>
                  <tbody>
                    {scan.hits.map((h) => (
                      <tr key={`${h.tensor}:${h.index}`}>
                        <td className="mono">{h.tensor}</td>
                        <td className="num mono">{formatCount(h.index)}</td>
                        <td className="num mono">{h.value}</td>
                        <td>{h.class}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </details>
          )}
          {scan.repairs.length > 0 && <TransformTable rows={scan.repairs} />}
        </div>
      )}

      <header className="card-head sub">
        <h3>Boost</h3>
        <span className="muted">read the model's pages into RAM ahead of inference, turn the response cache on</span>
      </header>
      <div className="row wrap">
        <label className="check">
          <input type="checkbox" checked={lock} onChange={(e) => setLock(e.target.checked)} />
          Pin pages in RAM (mlock)
        </label>
        <button className="primary" onClick={runBoost} disabled={busy} data-testid="boost-run">
          Boost
        </button>
      </div>
      <InlineError error={boostError} testId="boost-error" />
      {boost && (
        <div className="result" data-testid="boost-report">
          <p className="note ok">{boostSummary(boost)}</p>
          <table className="table compact">
            <tbody>
              <tr>
                <th>Resident before</th>
                <td className="num mono">{formatFraction(boost.residentBefore)}</td>
              </tr>
              <tr>
                <th>Resident after</th>
                <td className="num mono">{formatFraction(boost.residentAfter)}</td>
              </tr>
              <tr>
                <th>Prefetched</th>
                <td className="num mono">{formatBytes(boost.prefetchedBytes)}</td>
              </tr>
              <tr>
                <th>Pinned</th>
                <td className="num mono">{boost.pinnedPages != null ? `${formatCount(boost.pinnedPages)} pages` : (boost.pinError ?? "not asked")}</td>
              </tr>
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
