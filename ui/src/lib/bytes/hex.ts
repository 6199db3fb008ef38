/**
 * Pure helpers of the Bytes screen: offsets typed by the user, hex/ASCII cells, the structure
 * spans under an offset, and the virtual scroll math of a hex view over a file of any size.
 */
import type { SpanView } from "../../bindings";

/** Bytes per hex row. */
export const ROW_BYTES = 16;

/** The result of parsing user input: a value, or a message naming what is wrong. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Parses an offset or length typed by the user: decimal (`4096`), hex with `0x` (`0x1000`) or
 * with a trailing `h` (`1000h`); `_` and spaces group digits. `max` bounds the value (inclusive).
 */
export function parseOffset(text: string, max = Number.MAX_SAFE_INTEGER, what = "offset"): Parsed<number> {
  const t = text.trim().replace(/[_\s]/g, "").toLowerCase();
  if (!t) return { ok: false, error: `enter an ${what} (decimal, or hex like 0x1f40)` };
  let digits = t;
  let radix = 10;
  if (t.startsWith("0x")) {
    digits = t.slice(2);
    radix = 16;
  } else if (t.endsWith("h")) {
    digits = t.slice(0, -1);
    radix = 16;
  }
  const valid = radix === 16 ? /^[0-9a-f]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) {
    const hint = radix === 10 && /^[0-9a-f]+$/.test(digits) ? " (hex needs a 0x prefix)" : "";
    return { ok: false, error: `"${text.trim()}" is not a number${hint}` };
  }
  const value = parseInt(digits, radix);
  if (!Number.isSafeInteger(value)) return { ok: false, error: `${what} ${text.trim()} is too large` };
  if (value > max) return { ok: false, error: `${what} ${formatOffset(value)} is past the end (${formatOffset(max)})` };
  return { ok: true, value };
}

/** `0x` + at least 8 hex digits (more for files past 4 GiB). */
export function formatOffset(n: number, width = 8): string {
  return "0x" + n.toString(16).padStart(width, "0");
}

/** Two hex digits of a byte. */
export function hexByte(b: number): string {
  return b.toString(16).padStart(2, "0");
}

/** The ASCII column's character for a byte: printable ASCII as is, anything else as "·". */
export function asciiChar(b: number): string {
  return b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "·";
}

/** Bytes as spaced hex ("de ad be ef"). */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, hexByte).join(" ");
}

/**
 * Checks literal hex bytes typed in a field ("de ad be ef", "deadbeef"): the backend parses
 * them again; this catches mistakes before a round trip, with the same kind of message.
 */
export function parseHexBytes(text: string): Parsed<Uint8Array> {
  const compact = text.replace(/[\s,]/g, "");
  if (!compact) return { ok: false, error: "enter bytes in hex, e.g. de ad be ef" };
  const bad = compact.search(/[^0-9a-fA-F]/);
  if (bad >= 0) return { ok: false, error: `"${compact[bad]}" is not a hex digit` };
  if (compact.length % 2) return { ok: false, error: "odd number of hex digits (each byte is two)" };
  const out = new Uint8Array(compact.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(compact.slice(2 * i, 2 * i + 2), 16);
  return { ok: true, value: out };
}

/** Text to the hex of its UTF-8 bytes (what a text search looks for). */
export function textToHex(text: string): string {
  return toHex(new TextEncoder().encode(text));
}

/** Index of the span holding `offset` (spans sorted and contiguous), or -1. */
export function spanIndexAt(spans: readonly SpanView[], offset: number): number {
  let lo = 0;
  let hi = spans.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = spans[mid]!;
    if (offset < s.start) hi = mid - 1;
    else if (offset >= s.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** Number of rows for a file of `size` bytes. */
export function rowCount(size: number): number {
  return Math.ceil(size / ROW_BYTES);
}

/**
 * Virtual scrolling. A browser cannot scroll an element millions of rows tall (WebKit caps
 * heights near 2^25 px), so the scroll track is capped at `maxTrackPx` and mapped linearly onto
 * the first visible row. Below the cap the mapping is exact (one row = `rowPx`).
 */
export interface ScrollGeometry {
  /** Height of the spacer inside the scroll track. */
  trackPx: number;
  /** Largest first row (so the last row ends at the bottom of the view). */
  maxTop: number;
  /** Rows that fit in the view. */
  visibleRows: number;
}

export const MAX_TRACK_PX = 8_000_000;

export function scrollGeometry(rows: number, rowPx: number, viewPx: number, maxTrackPx = MAX_TRACK_PX): ScrollGeometry {
  const visibleRows = Math.max(1, Math.floor(viewPx / rowPx));
  const maxTop = Math.max(0, rows - visibleRows);
  const trackPx = Math.min(rows * rowPx, maxTrackPx);
  return { trackPx, maxTop, visibleRows };
}

/** First visible row for a scroll position of the track. */
export function topRowFromScroll(scrollTop: number, g: ScrollGeometry, viewPx: number): number {
  const range = g.trackPx - viewPx;
  if (range <= 0 || g.maxTop === 0) return 0;
  const t = Math.min(1, Math.max(0, scrollTop / range));
  return Math.min(g.maxTop, Math.round(t * g.maxTop));
}

/** The scroll position that shows `topRow` first (inverse of {@link topRowFromScroll}). */
export function scrollFromTopRow(topRow: number, g: ScrollGeometry, viewPx: number): number {
  const range = g.trackPx - viewPx;
  if (range <= 0 || g.maxTop === 0) return 0;
  return (Math.min(g.maxTop, Math.max(0, topRow)) * range) / g.maxTop;
}

/** The first row that keeps `offset` visible, moving as little as possible from `topRow`. */
export function revealRow(offset: number, topRow: number, g: ScrollGeometry): number {
  const row = Math.floor(offset / ROW_BYTES);
  if (row < topRow) return row;
  if (row >= topRow + g.visibleRows) return Math.min(g.maxTop, row - g.visibleRows + 1);
  return topRow;
}

/** The byte range `[start, end)` rows `topRow..topRow+n` show in a file of `size` bytes. */
export function rowsWindow(topRow: number, n: number, size: number): { start: number; end: number } {
  const start = Math.min(size, topRow * ROW_BYTES);
  return { start, end: Math.min(size, start + n * ROW_BYTES) };
}
