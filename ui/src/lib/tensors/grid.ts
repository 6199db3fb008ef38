/**
 * Virtualization math of the exact-value grid: which rows and columns of a `rows × cols`
 * matrix are visible for a scroll position, so only those cells are rendered and only their
 * values are fetched.
 *
 * Browsers cap an element's height/width (WebKit near 2^25 px), so a grid taller than
 * {@link MAX_SCROLL_PX} is scrolled proportionally: the scrollbar spans `MAX_SCROLL_PX` and a
 * scroll position maps linearly onto the first visible row (same for columns).
 */

export const MAX_SCROLL_PX = 8_000_000;

/** The scrollable extent of `n` items of `item` px (capped at {@link MAX_SCROLL_PX}). */
export function extent(n: number, item: number): number {
  return Math.min(n * item, MAX_SCROLL_PX);
}

/** The first item visible at `scroll` px, for `n` items of `item` px in a `view` px window. */
export function firstVisible(scroll: number, view: number, n: number, item: number): number {
  const visible = Math.ceil(view / item);
  const full = n * item;
  if (full <= MAX_SCROLL_PX) return clampInt(Math.floor(scroll / item), 0, Math.max(0, n - 1));
  const room = MAX_SCROLL_PX - view;
  const frac = room > 0 ? Math.min(1, Math.max(0, scroll / room)) : 0;
  return clampInt(Math.round(frac * Math.max(0, n - visible)), 0, Math.max(0, n - 1));
}

/** The scroll position that shows item `k` first (inverse of {@link firstVisible}). */
export function scrollFor(k: number, view: number, n: number, item: number): number {
  const full = n * item;
  if (full <= MAX_SCROLL_PX) return k * item;
  const visible = Math.ceil(view / item);
  const room = MAX_SCROLL_PX - view;
  return n - visible > 0 ? (Math.min(k, n - visible) / (n - visible)) * room : 0;
}

function clampInt(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** A rectangle of the matrix. */
export interface GridWindow {
  row0: number;
  rows: number;
  col0: number;
  cols: number;
}

/**
 * The cells to render for a scroll position: the visible ones plus `overscan` on each side,
 * clipped to the matrix. Empty (rows or cols 0) only for an empty matrix or viewport.
 */
export function visibleWindow(
  scroll: { top: number; left: number },
  view: { w: number; h: number },
  cell: { w: number; h: number },
  total: { rows: number; cols: number },
  overscan = 2,
): GridWindow {
  if (total.rows <= 0 || total.cols <= 0 || view.w <= 0 || view.h <= 0) return { row0: 0, rows: 0, col0: 0, cols: 0 };
  const r = firstVisible(scroll.top, view.h, total.rows, cell.h);
  const c = firstVisible(scroll.left, view.w, total.cols, cell.w);
  const row0 = Math.max(0, r - overscan);
  const col0 = Math.max(0, c - overscan);
  const row1 = Math.min(total.rows, r + Math.ceil(view.h / cell.h) + 1 + overscan);
  const col1 = Math.min(total.cols, c + Math.ceil(view.w / cell.w) + 1 + overscan);
  return { row0, rows: row1 - row0, col0, cols: col1 - col0 };
}

/** Whether window `inner` lies entirely inside `outer` (a fetched window can be reused). */
export function contains(outer: GridWindow, inner: GridWindow): boolean {
  return (
    inner.row0 >= outer.row0 &&
    inner.col0 >= outer.col0 &&
    inner.row0 + inner.rows <= outer.row0 + outer.rows &&
    inner.col0 + inner.cols <= outer.col0 + outer.cols
  );
}

/** A window grown by `margin` rows and columns each side (fetch ahead), clipped. */
export function grow(w: GridWindow, margin: { rows: number; cols: number }, total: { rows: number; cols: number }): GridWindow {
  const row0 = Math.max(0, w.row0 - margin.rows);
  const col0 = Math.max(0, w.col0 - margin.cols);
  const row1 = Math.min(total.rows, w.row0 + w.rows + margin.rows);
  const col1 = Math.min(total.cols, w.col0 + w.cols + margin.cols);
  return { row0, rows: row1 - row0, col0, cols: col1 - col0 };
}

/** Flat ggml index of (row, col) in a matrix of `cols` columns, and back. */
export function flatIndex(row: number, col: number, cols: number): number {
  return row * cols + col;
}
export function rowCol(index: number, cols: number): { row: number; col: number } {
  return { row: Math.floor(index / cols), col: index % cols };
}
