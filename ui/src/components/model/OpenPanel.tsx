/** Opening a model: path field + Browse, the demo model, and the recent files (missing marked). */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { commands, describeFailure, unwrap } from "../../lib/ipc";
import type { RecentFile } from "../../bindings";
import { pickOpenFile } from "../../lib/dialog";
import { useSession } from "../../lib/session";
import { useGuardedOpen } from "./GuardedOpen";
import { InlineError } from "../InlineError";
import { useQuery } from "../../lib/query";

export function OpenPanel() {
  const { opening, summary } = useSession();
  const [path, setPath] = useState("");
  const [recent, setRecent] = useState<RecentFile[]>([]);
  const demo = useQuery(() => commands.demoModelPath(), []).data;
  const [error, setError] = useState<string | null>(null);

  const loadRecent = useCallback(async () => setRecent(await commands.recentFiles()), []);
  useEffect(() => {
    void loadRecent();
  }, [loadRecent, summary?.path]);

  const guard = useGuardedOpen((ok) => {
    if (!ok) setError("Could not open the file (details above).");
    void loadRecent();
  });
  const go = async (p: string) => {
    setError(null);
    if (!p.trim()) {
      setError("Enter the path of a .gguf file.");
      return;
    }
    await guard.request(p.trim());
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void go(path);
  };
  const browse = async () => {
    try {
      const picked = await pickOpenFile();
      if (picked) {
        setPath(picked);
        await go(picked);
      }
    } catch (e) {
      setError(describeFailure(e).detail);
    }
  };
  const forget = async (p: string, allMissing: boolean) => {
    try {
      setRecent(unwrap(await commands.forgetRecent(p, allMissing)));
    } catch (e) {
      setError(describeFailure(e).detail);
    }
  };
  const missing = recent.filter((r) => !r.exists).length;

  return (
    <section className="card open-panel" data-testid="open-panel">
      <div className="card-title">
        <h3>Open</h3>
        {demo && (
          <button className="ghost small" data-testid="open-demo" disabled={opening} onClick={() => void go(demo)} title={demo}>
            Open the demo model
          </button>
        )}
      </div>
      <form className="path-row" onSubmit={submit}>
        <input
          data-testid="model-open-path"
          type="text"
          spellCheck={false}
          placeholder="/path/to/model.gguf"
          value={path}
          onChange={(e) => setPath(e.target.value)}
          aria-label="Model path to open"
        />
        <button type="button" className="ghost" onClick={() => void browse()} disabled={opening}>
          Browse…
        </button>
        <button type="submit" className="tool primary" data-testid="model-open-button" disabled={opening}>
          Open
        </button>
      </form>
      {guard.prompt}
      <InlineError error={error} testId="open-error" />
      <div className="recent-head">
        <span>Recent files</span>
        {missing > 0 && (
          <button className="link" data-testid="recent-prune" onClick={() => void forget("", true)}>
            Remove {missing} missing
          </button>
        )}
      </div>
      {recent.length === 0 ? (
        <p className="muted small-text">Models you open appear here.</p>
      ) : (
        <ul className="recent-list" data-testid="recent-list">
          {recent.map((r) => (
            <li key={r.path} data-testid="recent-item" data-path={r.path} className={r.exists ? "" : "missing"}>
              <button
                className="recent-open"
                disabled={!r.exists || opening}
                onClick={() => void go(r.path)}
                title={r.exists ? `Open ${r.path}` : `${r.path} no longer exists`}
              >
                <span className="recent-name">{r.fileName}</span>
                <span className="recent-path">{`\u200E${r.path}\u200E`}</span>
              </button>
              {!r.exists && <span className="chip danger">missing</span>}
              {summary?.path === r.path && <span className="chip">open</span>}
              <button className="link" onClick={() => void forget(r.path, false)} aria-label={`Forget ${r.path}`} title="Remove from the list">
                ✕
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
