/**
 * Search the whole file: hex with wildcards (`4f 3? ?? 00`) or text; every match, with count,
 * previous/next and a list to jump from. Runs as a job (progress bar + Cancel in the status bar).
 */
import { useRef, useState } from "react";
import type { SpanView } from "../../bindings";
import { searchBytes, type ByteMatches } from "../../lib/binary";
import { formatOffset, spanIndexAt } from "../../lib/bytes/hex";
import { describeFailure } from "../../lib/ipc";
import { useSession } from "../../lib/session";
import { useShortcut } from "../../lib/shortcuts";
import { spanLabel } from "./HexView";
import { InlineError } from "../InlineError";

/** Most matches fetched (the search says when there are more). */
export const SEARCH_LIMIT = 100_000;
/** Matches listed (all are reachable with previous/next). */
const LISTED = 200;

export function SearchPanel({
  shard,
  spans,
  onMatch,
}: {
  /** The file of the model searched (0-based shard). */
  shard: number;
  spans: SpanView[];
  onMatch: (m: { offset: number; len: number } | null) => void;
}) {
  const { runJob } = useSession();
  const input = useRef<HTMLInputElement>(null);
  const [query, setQuery] = useState("");
  const [text, setText] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [found, setFound] = useState<ByteMatches | null>(null);
  const [current, setCurrent] = useState(0);

  useShortcut("mod+f", () => {
    input.current?.focus();
    input.current?.select();
  });

  const go = (i: number, m = found) => {
    if (!m || m.offsets.length === 0) return;
    const n = m.offsets.length;
    const k = ((i % n) + n) % n;
    setCurrent(k);
    onMatch({ offset: m.offsets[k]!, len: m.patternLen });
  };

  const run = async () => {
    if (!query.trim() && !text) {
      setError("enter a hex pattern, e.g. 4f 3? ?? 00");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const m = await runJob(`search ${query}`, (job, channel) => searchBytes(shard, query, text, SEARCH_LIMIT, job, channel));
      setFound(m);
      if (m.offsets.length) go(0, m);
      else onMatch(null);
    } catch (e) {
      const d = describeFailure(e);
      setError(d.code === "Canceled" ? "search canceled" : d.detail);
    } finally {
      setBusy(false);
    }
  };

  const n = found?.offsets.length ?? 0;
  const listed = found ? Array.from(found.offsets.subarray(0, LISTED)) : [];
  return (
    <section className="card bytes-card" data-testid="search-panel">
      <div className="card-title">
        <h3>Search</h3>
        <span className="muted small">Ctrl+F</span>
      </div>
      <form
        className="row-form"
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <input
          ref={input}
          className={`filter mono grow ${error ? "invalid" : ""}`}
          placeholder={text ? "text, e.g. general.name" : "hex, e.g. 4f 3? ?? 00"}
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          data-testid="search-input"
          aria-invalid={error !== null}
        />
        <div className="seg" role="group" aria-label="search mode">
          <button type="button" className={!text ? "on" : ""} onClick={() => setText(false)} data-testid="search-hex">
            hex
          </button>
          <button type="button" className={text ? "on" : ""} onClick={() => setText(true)} data-testid="search-text">
            text
          </button>
        </div>
        <button className="primary" disabled={busy} data-testid="search-run">
          {busy ? "…" : "Find"}
        </button>
      </form>
      <InlineError error={error} testId="search-error" />
      {found && !error && (
        <>
          <div className="search-nav">
            <span data-testid="search-count">
              {n === 0 ? "no matches" : `${n.toLocaleString("en-US")}${found.more ? "+" : ""} match${n === 1 && !found.more ? "" : "es"}`}
            </span>
            {n > 0 && (
              <>
                <span className="muted mono" data-testid="search-current">
                  {current + 1}/{n}
                </span>
                <button className="ghost" onClick={() => go(current - 1)} data-testid="search-prev" title="previous match">
                  ‹ Prev
                </button>
                <button className="ghost" onClick={() => go(current + 1)} data-testid="search-next" title="next match">
                  Next ›
                </button>
              </>
            )}
          </div>
          {found.more && <p className="muted small">Only the first {SEARCH_LIMIT.toLocaleString("en-US")} matches are kept; make the pattern more specific.</p>}
          <ol className="match-list" data-testid="match-list">
            {listed.map((o, i) => {
              const si = spanIndexAt(spans, o);
              return (
                <li key={o}>
                  <button className={`match ${i === current ? "selected" : ""}`} onClick={() => go(i)} data-testid="match" data-offset={o}>
                    <span className="mono">{formatOffset(o)}</span>
                    <span className="muted ellipsis">{si >= 0 ? spanLabel(spans[si]!) : ""}</span>
                  </button>
                </li>
              );
            })}
            {n > LISTED && <li className="muted small">… {n - LISTED} more (use Next)</li>}
          </ol>
        </>
      )}
      {!found && !error && (
        <p className="muted small">
          <code>??</code> any byte · <code>3?</code> high nibble 3 · <code>?f</code> low nibble f
        </p>
      )}
    </section>
  );
}
