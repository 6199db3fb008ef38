/** Upstream and listening address, start/stop (on an external upstream or the built-in engine), and what the proxy is doing. */
import { useEffect, useState } from "react";
import type { ServerView_Serialize as ServerView, UpstreamCheck_Serialize as UpstreamCheck } from "../../bindings";
import { commands, unwrap } from "../../lib/ipc";
import { InlineError, InputError } from "../InlineError";

export function ProxyPanel({ view, onView }: { view: ServerView; onView: (v: ServerView) => void }) {
  const [upstream, setUpstream] = useState(view.upstream ?? "");
  const [bind, setBind] = useState(view.bind);
  const [port, setPort] = useState(String(view.port));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [check, setCheck] = useState<UpstreamCheck | null>(null);
  const running = view.status.running;

  useEffect(() => {
    setUpstream(view.upstream ?? "");
    setBind(view.bind);
    setPort(String(view.port));
  }, [view.upstream, view.bind, view.port]);

  const dirty = upstream.trim() !== (view.upstream ?? "") || bind.trim() !== view.bind || port.trim() !== String(view.port);

  async function saveAddress(): Promise<ServerView | null> {
    const p = port.trim();
    if (!/^\d{1,5}$/.test(p) || Number(p) > 65535) {
      setError(new InputError(`Port "${p}" is not a number from 0 to 65535.`));
      return null;
    }
    const v = unwrap(await commands.setServerAddress(upstream.trim(), bind.trim(), Number(p)));
    onView(v);
    return v;
  }

  async function run(fn: () => Promise<void>) {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  const start = () =>
    run(async () => {
      if (dirty && (await saveAddress()) === null) return;
      const v = unwrap(await commands.startProxy());
      onView(v);
      // Say at once whether the upstream answers (the proxy starts either way).
      if (v.status.upstream) setCheck(unwrap(await commands.checkUpstream(v.status.upstream)));
    });
  const startBuiltin = () =>
    run(async () => {
      setCheck(null);
      if (dirty && (await saveAddress()) === null) return;
      onView(unwrap(await commands.startProxyEngine()));
    });
  const stop = () => run(async () => onView(unwrap(await commands.stopProxy())));
  const probe = () =>
    run(async () => {
      setCheck(null);
      setCheck(unwrap(await commands.checkUpstream(upstream.trim())));
    });

  return (
    <section className="card proxy-panel">
      <header className="card-head">
        <h3>Proxy</h3>
        <span className={`pill ${running ? "pill-ok" : "pill-muted"}`} data-testid="server-status" data-running={running}>
          {running ? `Listening on ${view.status.listening}` : "Stopped"}
        </span>
      </header>
      <div className="form-grid">
        <label htmlFor="server-upstream">Upstream</label>
        <div className="row">
          <input
            id="server-upstream"
            data-testid="server-upstream"
            value={upstream}
            placeholder="http://127.0.0.1:8080"
            disabled={running || busy}
            onChange={(e) => setUpstream(e.target.value)}
            spellCheck={false}
          />
          <button className="ghost" onClick={probe} disabled={busy || upstream.trim() === ""} data-testid="server-check">
            Check
          </button>
        </div>
        <label htmlFor="server-bind">Listen on</label>
        <div className="row">
          <input
            id="server-bind"
            data-testid="server-bind"
            className="w-ip"
            value={bind}
            disabled={running || busy}
            onChange={(e) => setBind(e.target.value)}
            spellCheck={false}
          />
          <span className="muted">port</span>
          <input
            data-testid="server-port"
            className="w-port"
            value={port}
            disabled={running || busy}
            onChange={(e) => setPort(e.target.value)}
            inputMode="numeric"
            aria-label="Port"
          />
          <button className="ghost" onClick={() => run(async () => void (await saveAddress()))} disabled={running || busy || !dirty} data-testid="server-save-address">
            Save
          </button>
        </div>
      </div>
      {check && (
        <p className={check.reachable ? "note ok" : "note warn"} data-testid="server-check-result">
          {check.reachable
            ? `Upstream ${check.authority} accepts connections (${check.connectMs?.toFixed(1)} ms).`
            : `Upstream ${check.authority} unreachable: ${check.error}`}
        </p>
      )}
      {running && view.status.builtin != null && (
        <p className="note ok" data-testid="server-builtin">
          Built-in upstream: the embedded llama.cpp serves <code>{view.status.builtin}</code> as edited — every staged or live edit shows in the next
          answer, no other LLM server needed. {view.status.requests} request{view.status.requests === 1 ? "" : "s"} so far. Point clients at{" "}
          <code>{view.status.listening}</code> (OpenAI-compatible <code>/v1/completions</code>, <code>/v1/chat/completions</code>).
        </p>
      )}
      {running && view.status.upstream && view.status.builtin == null && (
        <p className="note">
          Forwarding to <code>{view.status.upstream}</code> · {view.status.requests} request{view.status.requests === 1 ? "" : "s"} so far.
          Point clients at <code>{view.status.listening}</code>.
        </p>
      )}
      <div className="actions">
        {running ? (
          <button className="danger" onClick={stop} disabled={busy} data-testid="server-stop">
            Stop proxy
          </button>
        ) : (
          <>
            <button
              onClick={startBuiltin}
              disabled={busy}
              data-testid="server-start-builtin"
              title="Serve the open model with the embedded llama.cpp (OpenAI-compatible /v1/completions and /v1/chat/completions) and put the proxy in front of it"
            >
              Start on built-in engine
            </button>
            <button className="primary" onClick={start} disabled={busy} data-testid="server-start">
              Start proxy
            </button>
          </>
        )}
      </div>
      <InlineError error={error} testId="server-error" />
    </section>
  );
}
