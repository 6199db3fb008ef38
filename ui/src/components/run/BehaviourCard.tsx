/** A behaviour diff over a text (the bundled public-domain sample or a file the user picks):
 * the Run screen's edited vs original, or the Diff screen's A vs B — perplexity of each, KL
 * mean and p99, top-1 agreement, the text coloured by KL token by token, and the positions of
 * largest KL. */
import { useState } from "react";
import type { Channel } from "@tauri-apps/api/core";
import type { BehaviourView, IpcError, Progress } from "../../bindings";
import { pickOpenFile } from "../../lib/dialog";
import { commands, unwrap, type Result } from "../../lib/ipc";
import { checkEvalTokens, formatKl, formatPpl, klHeat, showToken } from "../../lib/run/run";
import { useSession } from "../../lib/session";
import { InlineError, InputError } from "../InlineError";

/** Tokens the per-token view draws (the backend sends at most 4096). */
const VIEW_TOKENS = 4096;

/** The measuring command: (text file or null for the sample, tokens, job, channel). */
export type Measure = (path: string | null, maxTokens: number, job: number, channel: Channel<Progress>) => Promise<Result<BehaviourView, IpcError>>;

/** The two models' names in the labels: A is the `*Edited` side of the report, B the `*Original`. */
export interface Names {
  a: string;
  b: string;
}

const RUN_NAMES: Names = { a: "edited", b: "original" };

export function BehaviourCard({
  textPath,
  setTextPath,
  evalTokens,
  setEvalTokens,
  report,
  setReport,
  stale,
  measure = commands.behaviourDiff,
  names = RUN_NAMES,
  subtitle = "edited vs original over a text: what llama-perplexity --kl-divergence measures",
}: {
  textPath: string;
  setTextPath: (p: string) => void;
  evalTokens: string;
  setEvalTokens: (v: string) => void;
  report: BehaviourView | null;
  setReport: (r: BehaviourView | null) => void;
  stale: boolean;
  measure?: Measure;
  names?: Names;
  subtitle?: string;
}) {
  const { runJob } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const go = async () => {
    const n = checkEvalTokens(evalTokens);
    if ("error" in n) {
      setError(new InputError(n.error));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const path = textPath.trim() === "" ? null : textPath.trim();
      const r = await runJob(`behaviour diff, ${names.a} vs ${names.b}`, async (job, channel) => unwrap(await measure(path, n.maxTokens, job, channel)));
      setReport(r);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const browse = async () => {
    const p = await pickOpenFile([{ name: "Text", extensions: ["txt", "md", "text"] }]);
    if (p) setTextPath(p);
  };

  const maxKl = report ? Math.max(report.kldMax, 1e-3) : 1;
  return (
    <section className="card behaviour-card" data-testid="behaviour">
      <header className="card-head">
        <h3>Behaviour diff</h3>
        <span className="muted">{subtitle}</span>
      </header>
      <div className="row wrap">
        <label className="inline" htmlFor="behaviour-text">
          Text
        </label>
        <input
          id="behaviour-text"
          className="grow2"
          data-testid="behaviour-text"
          placeholder="bundled sample (Declaration of Independence, public domain) — or a UTF-8 file path"
          value={textPath}
          onChange={(e) => setTextPath(e.target.value)}
          spellCheck={false}
        />
        <button className="ghost" onClick={() => void browse()} disabled={busy}>
          Browse…
        </button>
        <label className="inline" htmlFor="behaviour-tokens">
          Tokens
        </label>
        <input
          id="behaviour-tokens"
          className="w-num"
          data-testid="behaviour-tokens"
          value={evalTokens}
          onChange={(e) => setEvalTokens(e.target.value)}
          inputMode="numeric"
          title="How many tokens of the text to score (empty or 0: all)"
        />
        <button className="primary" onClick={() => void go()} disabled={busy} data-testid="behaviour-run">
          {busy ? "Measuring…" : "Measure"}
        </button>
      </div>
      <InlineError error={error} testId="behaviour-error" />
      {report && (
        <>
          {stale && (
            <p className="note warn" data-testid="behaviour-stale">
              The session changed since this measurement: Measure again to see the edit.
            </p>
          )}
          <dl className="run-stats six" data-testid="behaviour-stats">
            <div>
              <dt>PPL {names.b}</dt>
              <dd data-testid="behaviour-ppl-original">{formatPpl(report.pplOriginal, report.nllOriginal)}</dd>
            </div>
            <div>
              <dt>PPL {names.a}</dt>
              <dd data-testid="behaviour-ppl-edited">{formatPpl(report.pplEdited, report.nllEdited)}</dd>
            </div>
            <div>
              <dt>KL mean</dt>
              <dd data-testid="behaviour-kld-mean">{formatKl(report.kldMean)}</dd>
            </div>
            <div>
              <dt>KL p99</dt>
              <dd data-testid="behaviour-kld-p99">{formatKl(report.kldP99)}</dd>
            </div>
            <div>
              <dt>top-1 agreement</dt>
              <dd data-testid="behaviour-top1">{(report.top1Agreement * 100).toFixed(1)} %</dd>
            </div>
            <div>
              <dt>tokens</dt>
              <dd>
                {report.tokens} <span className="muted small">({report.tokensPerSecond.toFixed(0)} tok/s)</span>
              </dd>
            </div>
          </dl>
          <p className="muted small">
            {report.source === "sample" ? "Bundled sample" : report.source} · windows of {report.window} tokens · each token coloured by KL({names.a} ‖ {names.b}) at its
            prediction; underlined where the most likely token differs.
          </p>
          <div className="token-heat" data-testid="behaviour-tokens-view">
            {report.perToken.slice(0, VIEW_TOKENS).map((t) => {
              const h = klHeat(t.kld, maxKl);
              return (
                <span
                  key={t.position}
                  className={`heat-tok${t.agree ? "" : " disagree"}`}
                  style={h > 0 ? { background: `color-mix(in srgb, var(--danger) ${Math.round(h * 55)}%, transparent)` } : undefined}
                  title={`#${t.position} · KL ${formatKl(t.kld)}${t.agree ? "" : " · top-1 differs"}`}
                >
                  {t.text}
                </span>
              );
            })}
          </div>
          {report.worst.some((w) => w.kld > 0) && (
            <>
              <h4>Where they disagree most</h4>
              <table className="worst-table" data-testid="behaviour-worst">
                <thead>
                  <tr>
                    <th className="num">#</th>
                    <th>Context → actual</th>
                    <th className="num">KL</th>
                    <th>top of {names.b}</th>
                    <th>top of {names.a}</th>
                  </tr>
                </thead>
                <tbody>
                  {report.worst
                    .filter((w) => w.kld > 0)
                    .slice(0, 10)
                    .map((w) => (
                      <tr key={w.position}>
                        <td className="num muted">{w.position}</td>
                        <td className="mono ctx">
                          <span className="muted">…{showToken(w.context)}</span>
                          <strong>{showToken(w.actual)}</strong>
                        </td>
                        <td className="num">{formatKl(w.kld)}</td>
                        <td className="mono tok">{showToken(w.topOriginal)}</td>
                        <td className={`mono tok${w.topEdited !== w.topOriginal ? " changed" : ""}`}>{showToken(w.topEdited)}</td>
                      </tr>
                    ))}
                </tbody>
              </table>
            </>
          )}
        </>
      )}
    </section>
  );
}
