/**
 * The Diff screen's shared-view math: the three maps (A, B, A − B) show the same rectangle of
 * the same matrix, so one view value drives all three (each `Heatmap` is controlled); these
 * functions move that view — centre it on an element (jump to a difference), read which rows a
 * view shows (copy "the visible rows") — and validate the ranges a user types for a copy.
 *
 * A view is the rectangle `col0 … col0 + cols`, `row0 … row0 + rows` of the matrix in
 * (fractional) element units, as the heatmap's own view math defines it.
 */

export interface MatrixShape {
  rows: number;
  cols: number;
}

export interface View {
  col0: number;
  row0: number;
  cols: number;
  rows: number;
}

/** How many elements (per axis) a jump zooms to when the view shows more than that. */
export const FOCUS_SPAN = 48;

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), Math.max(lo, hi));
}

/**
 * The view centred on element (`row`, `col`): the current zoom is kept when it is already
 * close (spans ≤ {@link FOCUS_SPAN} × 4), otherwise the view zooms to `FOCUS_SPAN` elements per
 * axis (or the whole axis when shorter); it never leaves the matrix.
 */
export function centerOn(v: View, shape: MatrixShape, row: number, col: number, focus = FOCUS_SPAN): View {
  const span = (cur: number, total: number) => Math.min(total, cur <= focus * 4 ? Math.max(cur, 1) : focus);
  const cols = span(v.cols, shape.cols);
  const rows = span(v.rows, shape.rows);
  return {
    cols,
    rows,
    col0: clamp(col + 0.5 - cols / 2, 0, shape.cols - cols),
    row0: clamp(row + 0.5 - rows / 2, 0, shape.rows - rows),
  };
}

/** Whether element (`row`, `col`) is inside the view. */
export function contains(v: View, row: number, col: number): boolean {
  return row + 1 > v.row0 && row < v.row0 + v.rows && col + 1 > v.col0 && col < v.col0 + v.cols;
}

/** The whole rows a view touches: `start … end` (end excluded), inside the matrix. */
export function visibleRows(v: View, shape: MatrixShape): { start: number; end: number } {
  const start = clamp(Math.floor(v.row0), 0, shape.rows - 1);
  const end = clamp(Math.ceil(v.row0 + v.rows), start + 1, shape.rows);
  return { start, end };
}

/** The whole columns a view touches. */
export function visibleCols(v: View, shape: MatrixShape): { start: number; end: number } {
  const start = clamp(Math.floor(v.col0), 0, shape.cols - 1);
  const end = clamp(Math.ceil(v.col0 + v.cols), start + 1, shape.cols);
  return { start, end };
}

export type RangeCheck = { ok: true; start: number; end: number } | { ok: false; error: string };

/**
 * A half-open range typed as two fields: whole numbers, `0 ≤ start < end ≤ limit`. `what` names
 * the axis in the message ("row", "column", "element").
 */
export function parseRange(startText: string, endText: string, limit: number, what: string): RangeCheck {
  const num = (t: string, field: string): number | string => {
    const s = t.trim();
    if (!/^\d+$/.test(s)) return `${what} ${field} "${t}" is not a whole number`;
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : `${what} ${field} ${s} is too large`;
  };
  const start = num(startText, "start");
  if (typeof start === "string") return { ok: false, error: start };
  const end = num(endText, "end");
  if (typeof end === "string") return { ok: false, error: end };
  if (end > limit) return { ok: false, error: `${what} end ${end} is past the last ${what} (the tensor has ${limit})` };
  if (start >= end) return { ok: false, error: `${what} range ${start}…${end} is empty (start must be below end)` };
  return { ok: true, start, end };
}
