/**
 * The vocabulary's token texts, fetched a chunk of {@link TOKEN_CHUNK} ids at a time when a
 * row header or the heatmap's hover readout asks for one (a 262,144-token vocabulary is never
 * fetched whole). `TokenTexts` is the cache (pure, unit-tested with a fake fetcher);
 * `useTokenTexts` keeps one per tensor view and re-renders when a chunk lands.
 */
import { useEffect, useMemo, useState } from "react";
import { commands, unwrap } from "../ipc";

export const TOKEN_CHUNK = 256;

export interface TokenRange {
  vocab: number;
  start: number;
  texts: string[];
}

export type FetchTokens = (start: number, count: number) => Promise<TokenRange>;

/** Token texts by id, filled a chunk at a time. */
export class TokenTexts {
  /** Tokens in the vocabulary; null until the first chunk arrived. */
  vocab: number | null = null;
  /** Why the last fetch failed (shown nowhere but tests: a missing text is just not shown). */
  failed: unknown = null;
  private chunks = new Map<number, string[]>();
  private pending = new Set<number>();

  constructor(
    private readonly fetch: FetchTokens,
    private readonly changed: () => void,
    /** The session revision the texts are of (a new one needs a new cache). */
    readonly revision = 0,
  ) {}

  /** Text of token `id`, or undefined while its chunk is on the way (then fetched). */
  get(id: number): string | undefined {
    if (id < 0 || !Number.isInteger(id) || (this.vocab !== null && id >= this.vocab)) return undefined;
    const c = Math.floor(id / TOKEN_CHUNK);
    const chunk = this.chunks.get(c);
    if (chunk) return chunk[id - c * TOKEN_CHUNK];
    this.load(c);
    return undefined;
  }

  /** Fetches chunk `c` unless held or on the way. */
  load(c: number): void {
    if (this.chunks.has(c) || this.pending.has(c)) return;
    this.pending.add(c);
    this.fetch(c * TOKEN_CHUNK, TOKEN_CHUNK).then(
      (r) => {
        this.pending.delete(c);
        this.vocab = r.vocab;
        this.chunks.set(c, r.texts);
        this.changed();
      },
      (e: unknown) => {
        this.pending.delete(c);
        this.failed = e;
        this.changed();
      },
    );
  }
}

/** What a view reads: the vocabulary size (null until known) and the text of an id. */
export interface Tokens {
  vocab: number | null;
  text: (id: number) => string | undefined;
  /** Moves when a chunk lands. */
  tick: number;
}

async function fetchTokens(start: number, count: number): Promise<TokenRange> {
  return unwrap(await commands.tokenTexts(start, count));
}

/**
 * Token texts for a view: `active` false (a tensor whose rows are not tokens) fetches nothing.
 * A new `revision` (a metadata edit may change the vocabulary) starts a fresh cache.
 */
export function useTokenTexts(active: boolean, revision: number, fetch: FetchTokens = fetchTokens): Tokens {
  const [tick, setTick] = useState(0);
  const cache = useMemo(() => (active ? new TokenTexts(fetch, () => setTick((t) => t + 1), revision) : null), [active, revision, fetch]);
  useEffect(() => {
    cache?.load(0); // the vocabulary's size comes with the first chunk
  }, [cache]);
  // A new object when a chunk lands (`tick`), so memoized consumers re-render.
  return useMemo(() => ({ vocab: cache?.vocab ?? null, text: (id: number) => cache?.get(id), tick }), [cache, tick]);
}
