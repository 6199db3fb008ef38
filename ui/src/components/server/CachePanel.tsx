/** The response cache: on/off, time to live, bounds; counters while the proxy runs. */
import { useEffect, useState } from "react";
import type { ServerView_Serialize as ServerView } from "../../bindings";
import { formatBytes, formatCount } from "../../lib/format";
import { commands, unwrap } from "../../lib/ipc";
import { InlineError, InputError } from "../InlineError";

const MIB = 1024 * 1024;

export function CachePanel({ view, onView }: { view: ServerView; onView: (v: ServerView) => void }) {
  const c = view.cache;
  const [ttl, setTtl] = useState(String(c.ttlSecs));
  const [entries, setEntries] = useState(String(c.maxEntries));
  const [mib, setMib] = useState(String(c.maxBytes / MIB));
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    setTtl(String(c.ttlSecs));
    setEntries(String(c.maxEntries));
    setMib(String(c.maxBytes / MIB));
  }, [c.ttlSecs, c.maxEntries, c.maxBytes]);

  async function save(enabled: boolean) {
    setError(null);
    const num = (s: string, what: string, integer: boolean) => {
      const t = s.trim();
      const ok = integer ? /^\d+$/.test(t) : /^\d+(\.\d+)?$/.test(t);
      if (!ok || Number(t) <= 0) throw new InputError(`${what}: "${t}" is not a positive ${integer ? "whole " : ""}number.`);
      return Number(t);
    };
    try {
      const cache = {
        enabled,
        ttlSecs: num(ttl, "Time to live", true),
        maxEntries: num(entries, "Max answers", true),
        maxBytes: Math.round(num(mib, "Max size", false) * MIB),
      };
      onView(unwrap(await commands.setCacheSettings(cache)));
    } catch (e) {
      setError(e);
    }
  }

  const dirty = ttl.trim() !== String(c.ttlSecs) || entries.trim() !== String(c.maxEntries) || mib.trim() !== String(c.maxBytes / MIB);
  const stats = view.status.cache;
  return (
    <section className="card cache-panel">
      <header className="card-head">
        <h3>Response cache</h3>
        <label className="switch">
          <input type="checkbox" checked={c.enabled} onChange={(e) => void save(e.target.checked)} data-testid="cache-enabled" />
          <span>{c.enabled ? "On" : "Off"}</span>
        </label>
      </header>
      <div className="form-grid">
        <label htmlFor="cache-ttl">Time to live</label>
        <div className="row">
          <input id="cache-ttl" className="w-num" value={ttl} onChange={(e) => setTtl(e.target.value)} data-testid="cache-ttl" inputMode="numeric" />
          <span className="muted">seconds</span>
        </div>
        <label htmlFor="cache-entries">Max answers</label>
        <input id="cache-entries" className="w-num" value={entries} onChange={(e) => setEntries(e.target.value)} data-testid="cache-entries" inputMode="numeric" />
        <label htmlFor="cache-size">Max size</label>
        <div className="row">
          <input id="cache-size" className="w-num" value={mib} onChange={(e) => setMib(e.target.value)} data-testid="cache-size" inputMode="decimal" />
          <span className="muted">MiB</span>
          <button className="ghost" disabled={!dirty} onClick={() => void save(c.enabled)} data-testid="cache-apply">
            Apply
          </button>
        </div>
      </div>
      {stats && (
        <dl className="stats" data-testid="cache-stats" data-hits={stats.hits} data-misses={stats.misses} data-entries={stats.entries}>
          <div>
            <dt>Hits</dt>
            <dd>{formatCount(stats.hits)}</dd>
          </div>
          <div>
            <dt>Misses</dt>
            <dd>{formatCount(stats.misses)}</dd>
          </div>
          <div>
            <dt>Held</dt>
            <dd>
              {formatCount(stats.entries)} · {formatBytes(stats.bytes)}
            </dd>
          </div>
          <div>
            <dt>Evicted</dt>
            <dd>{formatCount(stats.evictions)}</dd>
          </div>
        </dl>
      )}
      {stats && (
        <div className="actions">
          <button
            className="ghost small"
            disabled={stats.entries === 0}
            onClick={async () => {
              setError(null);
              try {
                onView(unwrap(await commands.clearProxyCache()));
              } catch (e) {
                setError(e);
              }
            }}
            data-testid="cache-clear"
          >
            Empty cache
          </button>
        </div>
      )}
      <InlineError error={error} testId="cache-error" />
    </section>
  );
}
