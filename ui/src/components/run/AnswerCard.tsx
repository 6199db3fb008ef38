/** One side's answer, token by token: each token's probability on hover; on the edited side the
 * tokens from where it departs from the original are marked. */
import type { Answer } from "../../bindings";
import { formatProb, type Piece } from "../../lib/run/run";

const STOP: Record<string, string> = {
  end: "the model ended its turn",
  length: "max tokens reached",
  context: "context full",
  canceled: "stopped",
  stop: "stop string",
};

export function AnswerCard({
  side,
  pieces,
  answer,
  from,
  running,
}: {
  side: "edited" | "original";
  pieces: Piece[];
  answer: Answer | null;
  /** Index of the first token that differs from the other side (-1: none). */
  from: number;
  running: boolean;
}) {
  const title = side === "edited" ? "Edited model" : "Original model";
  return (
    <section className={`card answer-card answer-${side}`} data-testid={`run-answer-${side}`}>
      <header className="card-head">
        <h3>{title}</h3>
        <span className="muted">{side === "edited" ? "with the session's edits" : "as opened"}</span>
        {answer && (
          <span className="badge" data-testid={`run-stop-${side}`} title={STOP[answer.stop] ?? answer.stop}>
            {answer.tokens} tok · {answer.tokensPerSecond.toFixed(1)} tok/s · {STOP[answer.stop] ?? answer.stop}
          </span>
        )}
      </header>
      <div className="answer-text" data-testid={`run-text-${side}`} aria-live="polite">
        {pieces.map((p, i) => (
          <span
            key={i}
            className={`piece${side === "edited" && from >= 0 && i >= from ? " diverged" : ""}`}
            title={`token ${p.token} · p = ${formatProb(p.prob)}`}
          >
            {p.text}
          </span>
        ))}
        {running && <span className="caret-blink" aria-hidden>▍</span>}
        {!running && pieces.length === 0 && <span className="muted">No answer yet.</span>}
      </div>
    </section>
  );
}
