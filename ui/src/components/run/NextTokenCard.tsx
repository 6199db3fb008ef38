/** The next token after the prompt: each side's top-k with probabilities, and what the edit
 * moved (every token of either top-k, largest change first), with the KL of the whole
 * distribution and the largest logit change. */
import type { NextView } from "../../bindings";
import { formatDelta, formatKl, formatProb, showToken } from "../../lib/run/run";

export function NextTokenCard({ next }: { next: NextView }) {
  const rows = Math.max(next.edited.length, next.original.length);
  const moved = next.shifts.filter((s) => Math.abs(s.pEdited - s.pOriginal) >= 0.00005);
  return (
    <section className="card next-card" data-testid="run-next">
      <header className="card-head">
        <h3>Next token after the prompt</h3>
        <span className="muted">top {rows}, original vs edited</span>
        <span className={`pill ${next.top1Changed ? "pill-warn" : "pill-ok"}`} data-testid="run-top1" data-changed={next.top1Changed}>
          {next.top1Changed ? "top-1 changed" : "same top-1"}
        </span>
      </header>
      <dl className="run-stats">
        <div>
          <dt>KL(edited ‖ original)</dt>
          <dd data-testid="run-kld">{formatKl(next.kld)} nats</dd>
        </div>
        <div>
          <dt>max |Δ logit|</dt>
          <dd data-testid="run-dlogit">{next.maxAbsLogitChange.toFixed(3)}</dd>
        </div>
      </dl>
      <div className="next-grid">
        <table className="next-table" data-testid="run-topk">
          <thead>
            <tr>
              <th className="num">#</th>
              <th>Original</th>
              <th className="num">p</th>
              <th>Edited</th>
              <th className="num">p</th>
            </tr>
          </thead>
          <tbody>
            {Array.from({ length: rows }, (_, i) => {
              const o = next.original[i];
              const e = next.edited[i];
              return (
                <tr key={i} data-testid="run-topk-row">
                  <td className="num muted">{i + 1}</td>
                  <td className="mono tok">{o ? showToken(o.text) : ""}</td>
                  <td className="num">
                    <ProbBar p={o?.prob ?? 0} />
                  </td>
                  <td className={`mono tok${e && o && e.token !== o.token ? " changed" : ""}`}>{e ? showToken(e.text) : ""}</td>
                  <td className="num">
                    <ProbBar p={e?.prob ?? 0} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        <div>
          <h4>What changed</h4>
          {moved.length === 0 ? (
            <p className="muted small" data-testid="run-no-shift">
              No probability moved: the edit does not reach this prediction (or there is no edit).
            </p>
          ) : (
            <table className="shift-table" data-testid="run-shifts">
              <thead>
                <tr>
                  <th>Token</th>
                  <th className="num">original</th>
                  <th className="num">edited</th>
                  <th className="num">Δ</th>
                </tr>
              </thead>
              <tbody>
                {moved.slice(0, 12).map((s) => (
                  <tr key={s.token} data-testid="run-shift">
                    <td className="mono tok">{showToken(s.text)}</td>
                    <td className="num">{formatProb(s.pOriginal)}</td>
                    <td className="num">{formatProb(s.pEdited)}</td>
                    <td className={`num ${s.pEdited > s.pOriginal ? "up" : "down"}`}>{formatDelta(s.pEdited, s.pOriginal)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </div>
    </section>
  );
}

function ProbBar({ p }: { p: number }) {
  return (
    <span className="prob">
      <span className="prob-bar" style={{ width: `${Math.max(0, Math.min(1, p)) * 48}px` }} />
      {formatProb(p)}
    </span>
  );
}
