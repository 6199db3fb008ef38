/**
 * "Go to" on the Tensors screen: what a user types into the field, read as a place in a
 * tensor seen as a `rows × cols` matrix, and the token text shown beside rows that are token
 * ids. Pure functions, unit-tested in find.test.ts.
 *
 * - `1234` → row 1234 (of a token embedding or output matrix: token id 1234, its row);
 * - `12, 34` (or `12 34`, `12:34`) → row 12, column 34;
 * - `#5000` → flat element 5000 (ggml order: `row · cols + col`).
 *
 * Thousands separators (`262,143` alone, `1_000`) are accepted where unambiguous: a lone number
 * with commas every three digits is one number, not a row and a column.
 */
import { formatCount } from "../format";
import { rowCol } from "./grid";

/** Where to go: a row (`col` null) or one element. */
export interface GoTarget {
  row: number;
  col: number | null;
}

export type GoResult = { ok: true; target: GoTarget } | { ok: false; error: string };

const INT = /^\d+$/;

function int(s: string): number | null {
  const t = s.replace(/_/g, "");
  if (!INT.test(t)) return null;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : null;
}

/** Reads what was typed into the "go to" field for a `rows × cols` matrix. */
export function parseGoTo(text: string, shape: { rows: number; cols: number }, tokens = false): GoResult {
  const t = text.trim();
  const what = tokens ? "a row (token id)" : "a row";
  const hint = `Type ${what}, "row, col", or "#" and an element index.`;
  if (t === "") return { ok: false, error: hint };
  const last = (n: number) => formatCount(n - 1);
  if (t.startsWith("#")) {
    const k = int(t.slice(1).trim().replace(/,/g, ""));
    if (k === null) return { ok: false, error: `"${t}" is not an element index. ${hint}` };
    const total = shape.rows * shape.cols;
    if (k >= total) return { ok: false, error: `Element ${formatCount(k)} is past the last one (${last(total)}).` };
    return { ok: true, target: rowCol(k, shape.cols) };
  }
  // One number, possibly with thousands separators (262,143).
  const single = /^\d{1,3}(,\d{3})+$/.test(t) ? int(t.replace(/,/g, "")) : int(t);
  if (single !== null) {
    if (single >= shape.rows) {
      return { ok: false, error: `${tokens ? "Token id" : "Row"} ${formatCount(single)} is past the last row (${last(shape.rows)}).` };
    }
    return { ok: true, target: { row: single, col: null } };
  }
  const parts = t.split(/\s*[,:\s]\s*/).filter((p) => p !== "");
  if (parts.length === 2) {
    const row = int(parts[0]!);
    const col = int(parts[1]!);
    if (row !== null && col !== null) {
      if (row >= shape.rows) return { ok: false, error: `Row ${formatCount(row)} is past the last row (${last(shape.rows)}).` };
      if (col >= shape.cols) return { ok: false, error: `Column ${formatCount(col)} is past the last column (${last(shape.cols)}).` };
      return { ok: true, target: { row, col } };
    }
  }
  return { ok: false, error: `"${t}" is not a place in this tensor. ${hint}` };
}

/**
 * Whether the rows of a tensor are token ids: the token embedding and the output matrix,
 * when their row count is the vocabulary's size (`vocab`, 0 when unknown or none).
 */
export function rowsAreTokens(name: string, rows: number, vocab: number): boolean {
  return vocab > 0 && rows === vocab && /(^|\.)(token_embd|output)\.weight$/.test(name) && !name.startsWith("blk.");
}

/**
 * A token's text as a label: quoted, with control characters (newline, tab…) escaped so a
 * label stays one line, and cut to `max` characters (`…` marks the cut).
 */
export function tokenLabel(text: string, max = 24): string {
  let out = "";
  let n = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    const shown =
      ch === "\n" ? "\\n" : ch === "\t" ? "\\t" : ch === "\r" ? "\\r" : ch === "\\" ? "\\\\" : code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, "0")}` : ch;
    if (n >= max) return `"${out}…"`;
    out += shown;
    n += 1;
  }
  return `"${out}"`;
}
