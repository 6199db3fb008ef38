/**
 * Run: the model inside the studio. A prompt (or a chat message through the model's own chat
 * template) answered by the original model and by the edited one side by side, streamed token
 * by token and stoppable; the next-token top-k of both and what the edit moved; and the
 * behaviour diff over a text. The engine (embedded llama.cpp) follows the session: an edit on
 * any screen, staged or live, shows in the next run with no reload; undo brings the original
 * answer back exactly.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { Channel } from "@tauri-apps/api/core";
import type { EngineView_Serialize as EngineView, RunToken } from "../bindings";
import { AnswerCard } from "../components/run/AnswerCard";
import { BehaviourCard } from "../components/run/BehaviourCard";
import { NextTokenCard } from "../components/run/NextTokenCard";
import { InlineError, InputError } from "../components/InlineError";
import { formatBytes } from "../lib/format";
import { commands, unwrap } from "../lib/ipc";
import { appendToken, checkRunInput, firstDivergence, keepRunState, restoreRunState, type RunState } from "../lib/run/run";
import { newJobId, useSession } from "../lib/session";
import "./ops.css";
import "./run.css";
import { useQuery } from "../lib/query";

export function RunScreen() {
  const { summary, revision, bumpRevision } = useSession();
  const modelPath = summary?.path ?? null;
  const [st, setSt] = useState<RunState>(() => restoreRunState(modelPath));
  const [running, setRunning] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const engineQ = useQuery(() => commands.engineStatus(), []);
  const engine = engineQ.data;
  const stopping = useRef(false);

  const update = useCallback((patch: Partial<RunState> | ((s: RunState) => Partial<RunState>)) => {
    setSt((s) => {
      const next = { ...s, ...(typeof patch === "function" ? patch(s) : patch) };
      keepRunState(next);
      return next;
    });
  }, []);

  useEffect(() => {
    if (st.model !== modelPath) setSt(restoreRunState(modelPath));
  }, [modelPath, st.model]);

  const refreshEngine = engineQ.reload;

  const run = async () => {
    const input = checkRunInput(st.prompt, st.maxTokens);
    if ("error" in input) {
      setError(new InputError(input.error));
      return;
    }
    setError(null);
    await bumpRevision();
    const job = newJobId();
    stopping.current = false;
    const channel = new Channel<RunToken>();
    channel.onmessage = (t) => update((s) => ({ streams: appendToken(s.streams, t) }));
    update({ streams: { job, edited: [], original: [] }, result: null });
    setRunning(job);
    try {
      const r = unwrap(
        await commands.runPrompt(
          { prompt: st.prompt, chat: st.chat, maxTokens: input.maxTokens, topK: 10, temperature: 0, seed: 0 },
          job,
          channel,
        ),
      );
      update({ result: r });
    } catch (e) {
      setError(e);
    } finally {
      setRunning(null);
      refreshEngine();
    }
  };

  const stop = () => {
    if (running === null) return;
    stopping.current = true;
    void commands.cancelJob(running);
  };

  if (!summary) {
    return (
      <div className="screen ops run-screen" data-testid="screen-run">
        <section className="card">
          <h3>No model open</h3>
          <p className="muted">Open a model on the Model screen to run it here.</p>
        </section>
      </div>
    );
  }

  const { streams, result } = st;
  const from = firstDivergence(streams.edited, streams.original);
  const stale = result !== null && revision !== result.revision;
  const staleDiff = st.behaviour !== null && st.behaviourRevision !== undefined && st.behaviourRevision !== revision;
  return (
    <div className="screen ops run-screen" data-testid="screen-run">
      <section className="card prompt-card">
        <header className="card-head">
          <h3>Prompt</h3>
          <EngineLine engine={engine} running={running !== null} />
        </header>
        <textarea
          data-testid="run-prompt"
          className="prompt-box"
          rows={3}
          value={st.prompt}
          onChange={(e) => update({ prompt: e.target.value })}
          onKeyDown={(e) => {
            if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              if (running === null) void run();
            }
          }}
          placeholder="Type a prompt (Ctrl+Enter runs)"
          spellCheck={false}
        />
        <div className="row wrap prompt-controls">
          <div className="segmented" role="radiogroup" aria-label="Prompt mode">
            <button role="radio" aria-checked={!st.chat} className={!st.chat ? "on" : ""} data-testid="run-mode-text" onClick={() => update({ chat: false })}>
              Text
            </button>
            <button
              role="radio"
              aria-checked={st.chat}
              className={st.chat ? "on" : ""}
              data-testid="run-mode-chat"
              onClick={() => update({ chat: true })}
              title="Send the prompt as one user message through the model's own chat template"
            >
              Chat
            </button>
          </div>
          <label className="inline" htmlFor="run-max">
            Max tokens
          </label>
          <input id="run-max" className="w-num" data-testid="run-max-tokens" value={st.maxTokens} onChange={(e) => update({ maxTokens: e.target.value })} inputMode="numeric" />
          <span className="muted small">greedy · both models side by side</span>
          <span className="grow" />
          {running !== null ? (
            <button className="danger" onClick={stop} data-testid="run-stop">
              Stop
            </button>
          ) : (
            <button className="primary" onClick={() => void run()} data-testid="run-go" title="Ctrl+Enter">
              Run
            </button>
          )}
        </div>
        <InlineError error={error} testId="run-error" />
        {result && st.chat && (
          <details className="prompt-text">
            <summary className="muted small">What the model read ({result.promptTokens} tokens, chat template applied)</summary>
            <pre className="mono">{result.promptText}</pre>
          </details>
        )}
        {stale && (
          <p className="note warn" data-testid="run-stale">
            The session changed since this answer (an edit, undo or save): Run again to see what the model does now.
          </p>
        )}
        {result && !stale && (
          <p className={`note ${result.same ? "" : "warn"}`} data-testid="run-verdict" data-same={result.same}>
            {result.same
              ? "Both models give the same answer."
              : `The answers part at token ${from + 1}${result.next.top1Changed ? " — the edit changed the very next token" : ""}.`}
          </p>
        )}
      </section>
      <div className="answers">
        <AnswerCard side="original" pieces={streams.original} answer={result?.original ?? null} from={-1} running={running !== null} />
        <AnswerCard side="edited" pieces={streams.edited} answer={result?.edited ?? null} from={from} running={running !== null} />
      </div>
      {result && <NextTokenCard next={result.next} />}
      <BehaviourCard
        textPath={st.textPath}
        setTextPath={(p) => update({ textPath: p })}
        evalTokens={st.evalTokens}
        setEvalTokens={(v) => update({ evalTokens: v })}
        report={st.behaviour}
        setReport={(r) => update({ behaviour: r, behaviourRevision: revision })}
        stale={staleDiff}
      />
    </div>
  );
}

function EngineLine({ engine, running }: { engine: EngineView | null; running: boolean }) {
  if (!engine) return null;
  if (!engine.loaded || engine.path === null) {
    return <span className="muted" data-testid="run-engine">{running ? "loading the engine (embedded llama.cpp)…" : "engine loads on the first run (embedded llama.cpp, CPU)"}</span>;
  }
  return (
    <span className="muted" data-testid="run-engine" title={engine.build}>
      llama.cpp · {engine.mode} · not repacked (every edit visible) · ctx {engine.nCtx} · {engine.threads} threads · loaded in {engine.loadSeconds.toFixed(2)} s ·{" "}
      {formatBytes(engine.privateBytes)} private for edits
    </span>
  );
}
