/**
 * The Diff screen's state kept across visits: model B, the ranking (a 12 s comparison on a real
 * model), the selection, sort and filter — and a comparison still running when the user left,
 * which the screen re-attaches to instead of starting another. Module-level (the screen unmounts
 * when another opens); pure apart from that, unit-tested in keep.test.ts.
 *
 * The state is kept per model A (a new A starts afresh) and holds its model B: when the screen
 * comes back it shows what it showed at once, then confirms with the backend which B is open
 * ({@link reconcileB}): the same file keeps everything, another (or none) clears the ranking.
 */
import { DEFAULT_SORT, sortRows, type SortState } from "./rank";
import type { DiffModelInfo, DiffResult } from "./types";

export interface DiffKept {
  /** Model A's path. */
  pathA: string;
  /** Model B, as last known. */
  b: DiffModelInfo | null;
  result: DiffResult | null;
  /** The session revision the ranking saw (-1: none). */
  ranAt: number;
  sort: SortState;
  filter: string;
  changedOnly: boolean;
  selected: string | null;
}

/** A fresh screen for model A. */
export function freshDiff(pathA: string): DiffKept {
  return { pathA, b: null, result: null, ranAt: -1, sort: DEFAULT_SORT, filter: "", changedOnly: false, selected: null };
}

/** Which comparison a state is of (A and B). */
export function diffKey(k: { pathA: string; b: DiffModelInfo | null }): string {
  return `${k.pathA}|${k.b?.path ?? ""}`;
}

/**
 * The state with the backend's model B: the same file as known keeps the ranking and the
 * selection (the fresh info replaces the old); another B, or none, clears them (sort and filter
 * stay: they are the user's way of reading any ranking).
 */
export function reconcileB(k: DiffKept, b: DiffModelInfo | null): DiffKept {
  if ((k.b?.path ?? null) === (b?.path ?? null)) return b === k.b ? k : { ...k, b };
  return { ...k, b, result: null, ranAt: -1, selected: null };
}

/** The state after a comparison ran at revision `at`: the selection kept if still a row, else the first. */
export function withResult(k: DiffKept, result: DiffResult, at: number): DiffKept {
  const selected = k.selected && result.rows.some((r) => r.name === k.selected) ? k.selected : (sortRows(result.rows, k.sort)[0]?.name ?? null);
  return { ...k, result, ranAt: at, selected };
}

let kept: DiffKept | null = null;

/** Remembers the screen's state. */
export function keepDiff(k: DiffKept): void {
  kept = k;
}

/** The state kept for model A, or null (none, or another A). */
export function restoreDiff(pathA: string | null): DiffKept | null {
  return kept && pathA !== null && kept.pathA === pathA ? kept : null;
}

/** The outcome of a comparison: the ranking and the revision it saw. */
export interface Compared {
  result: DiffResult;
  at: number;
}

let running: { key: string; promise: Promise<Compared> } | null = null;

/**
 * Runs the comparison `key` (A|B) with `start`, or joins the one of that key still running (the
 * screen left and came back while it ran). When it finishes, the kept state of that key takes
 * its result, so a comparison that ends while another screen is open is not lost.
 */
export function compareOnce(key: string, start: () => Promise<Compared>): Promise<Compared> {
  if (running && running.key === key) return running.promise;
  const promise = start().then(
    (c) => {
      if (kept && diffKey(kept) === key) kept = withResult(kept, c.result, c.at);
      return c;
    },
  );
  const mine = { key, promise };
  running = mine;
  const done = () => {
    if (running === mine) running = null;
  };
  promise.then(done, done);
  return promise;
}

/** Whether comparison `key` is running now. */
export function comparing(key: string): boolean {
  return running !== null && running.key === key;
}

/** Forgets everything (tests). */
export function resetDiffKeep(): void {
  kept = null;
  running = null;
}
