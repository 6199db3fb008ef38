/**
 * The Run screen's pure logic: streamed tokens gathered per side, where the edited answer
 * departs from the original, the formatting of probabilities and KL, the colour scale of the
 * per-token view, and the screen's state kept across visits (so a prompt typed before an edit
 * on the Tensors screen is still there when the user comes back). Unit-tested in run.test.ts.
 */
import type { BehaviourView, RunResult, RunToken } from "../../bindings";

/** One streamed token of one side's answer. */
export interface Piece {
  token: number;
  text: string;
  prob: number;
}

/** Both sides' answers as they stream. */
export interface Streams {
  job: number;
  edited: Piece[];
  original: Piece[];
}

export const EMPTY_STREAMS: Streams = { job: 0, edited: [], original: [] };

/** Adds a streamed token to its side; a token of another job (a stopped run's late ones) is dropped. */
export function appendToken(s: Streams, t: RunToken): Streams {
  if (t.job !== s.job) return s;
  const piece: Piece = { token: t.token, text: t.text, prob: t.prob };
  const side = t.side === "edited" ? s.edited : s.original;
  // One channel delivers in order; the index guards against a repeat all the same.
  if (t.index < side.length) return s;
  return t.side === "edited" ? { ...s, edited: [...s.edited, piece] } : { ...s, original: [...s.original, piece] };
}

/** Index of the first token where the two answers differ (their common length when one is a
 * prefix of the other; `-1` when they are the same tokens). */
export function firstDivergence(a: readonly Piece[], b: readonly Piece[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i]?.token !== b[i]?.token) return i;
  return a.length === b.length ? -1 : n;
}

/** A probability as the tables show it: `93.1 %`, `0.42 %`, `<0.01 %`. */
export function formatProb(p: number | null | undefined): string {
  if (p == null || !Number.isFinite(p)) return "—";
  const pct = p * 100;
  if (pct >= 10) return `${pct.toFixed(1)} %`;
  if (pct >= 0.01) return `${pct.toFixed(2)} %`;
  return p > 0 ? "<0.01 %" : "0 %";
}

/** A change of probability in percentage points, signed: `+12.3 pp`, `−4.0 pp`, `±0`. */
export function formatDelta(pEdited: number, pOriginal: number): string {
  const d = (pEdited - pOriginal) * 100;
  if (Math.abs(d) < 0.005) return "±0";
  const s = Math.abs(d) >= 10 ? Math.abs(d).toFixed(1) : Math.abs(d).toFixed(2);
  return `${d > 0 ? "+" : "−"}${s} pp`;
}

/** A KL divergence in nats: `0` exactly, else 4 significant digits (`0.0001234`, `2.317`). */
export function formatKl(k: number | null | undefined): string {
  if (k == null || !Number.isFinite(k)) return "—";
  if (k === 0) return "0";
  if (k >= 100) return k.toFixed(1);
  return k.toPrecision(4).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

/** A perplexity: two decimals; beyond a million (or past f64, `null`) as e^NLL. */
export function formatPpl(p: number | null | undefined, nll?: number): string {
  if (p != null && Number.isFinite(p) && p < 1e6) return p.toFixed(2);
  if (nll != null && Number.isFinite(nll)) return `e^${nll.toFixed(1)}`;
  return "—";
}

/** How strongly a token of the per-token view is coloured (0..1): log scale from 1e-4 nats
 * (invisible) to `max` (full). */
export function klHeat(kld: number, max: number): number {
  if (!(kld > 1e-4) || !(max > 1e-4)) return 0;
  const lo = Math.log(1e-4);
  const v = (Math.log(kld) - lo) / (Math.log(Math.max(max, kld)) - lo);
  return Math.min(1, Math.max(0, v));
}

/** A token's text made visible: newlines as ⏎, a lone space as ␣. */
export function showToken(text: string): string {
  if (text === " ") return "␣";
  return text.replace(/\n/g, "⏎");
}

/** The prompt and limits as typed, checked; `error` names the field. */
export function checkRunInput(prompt: string, maxTokens: string): { maxTokens: number } | { error: string } {
  if (prompt.trim() === "") return { error: "Type a prompt first." };
  const n = Number(maxTokens.trim());
  if (!/^\d+$/.test(maxTokens.trim()) || n < 1 || n > 1024) return { error: `Max tokens "${maxTokens}" is not a whole number from 1 to 1024.` };
  return { maxTokens: n };
}

/** The eval-length field: empty or 0 is the whole text. */
export function checkEvalTokens(v: string): { maxTokens: number } | { error: string } {
  const t = v.trim();
  if (t === "") return { maxTokens: 0 };
  if (!/^\d+$/.test(t) || Number(t) > 1_000_000) return { error: `Tokens "${v}" is not a whole number (0 or empty: the whole text).` };
  return { maxTokens: Number(t) };
}

/** What the Run screen keeps across visits. */
export interface RunState {
  prompt: string;
  chat: boolean;
  maxTokens: string;
  streams: Streams;
  result: RunResult | null;
  textPath: string;
  evalTokens: string;
  behaviour: BehaviourView | null;
  /** The session revision the behaviour diff was measured at. */
  behaviourRevision?: number;
  /** The model the state belongs to (a new model starts afresh). */
  model: string | null;
}

export const DEFAULT_PROMPT = "The capital of France is";

export function initialRunState(model: string | null): RunState {
  return {
    prompt: DEFAULT_PROMPT,
    chat: false,
    maxTokens: "32",
    streams: EMPTY_STREAMS,
    result: null,
    textPath: "",
    evalTokens: "256",
    behaviour: null,
    model,
  };
}

let saved: RunState | null = null;

/** The state the screen left, for `model` (results of another model are dropped; the prompt stays). */
export function restoreRunState(model: string | null): RunState {
  if (!saved) return initialRunState(model);
  if (saved.model !== model) return { ...initialRunState(model), prompt: saved.prompt, chat: saved.chat, maxTokens: saved.maxTokens };
  return saved;
}

export function keepRunState(s: RunState): void {
  saved = s;
}
