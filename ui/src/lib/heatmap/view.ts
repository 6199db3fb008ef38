/**
 * Zoom and pan math of a heatmap, independent of the canvas size so several heatmaps can share
 * one view (the diff screen keeps two maps and a difference map in sync).
 *
 * A tensor is a matrix of `rows × cols` elements (ggml dims `[ne0, ne1, …]`: `cols = ne0`,
 * higher dims folded into rows). A {@link HeatmapView} is the rectangle of the matrix the canvas
 * shows, in element units (fractional): columns `col0 … col0 + cols`, rows `row0 … row0 + rows`.
 * The x and y zoom are independent, so the "fit" view fills the canvas whatever the aspect.
 */

/** The matrix view of a tensor. */
export interface MatrixShape {
  rows: number;
  cols: number;
}

/** The visible rectangle of the matrix, in (fractional) elements. */
export interface HeatmapView {
  col0: number;
  row0: number;
  cols: number;
  rows: number;
}

/** A canvas size in CSS pixels. */
export interface Size {
  w: number;
  h: number;
}

/** The integer rectangle of elements a tile request covers (sent to Rust as is). */
export interface Viewport {
  row0: number;
  col0: number;
  rows: number;
  cols: number;
}

/** Most canvas pixels one element may take when zoomed in. */
export const MAX_PX_PER_ELEMENT = 64;

/** Rows × cols of ggml dims (`[ne0, ne1, ne2…]` → `ne1·ne2… × ne0`). */
export function matrixShape(dims: readonly number[]): MatrixShape {
  const cols = dims[0] ?? 1;
  const rows = dims.slice(1).reduce((a, d) => a * d, 1);
  return { rows, cols };
}

/** The whole matrix. */
export function fitView(shape: MatrixShape): HeatmapView {
  return { col0: 0, row0: 0, cols: shape.cols, rows: shape.rows };
}

function clampAxis(start: number, span: number, total: number, minSpan: number): [number, number] {
  const s = Math.min(total, Math.max(minSpan, span));
  const st = Math.min(Math.max(0, start), total - s);
  return [st, s];
}

/**
 * Keeps a view inside the matrix: never wider than the matrix (no zooming out past "fit"),
 * never more than {@link MAX_PX_PER_ELEMENT} pixels per element, never panned off an edge.
 */
export function clampView(v: HeatmapView, shape: MatrixShape, size: Size): HeatmapView {
  const minCols = Math.min(shape.cols, Math.max(1, size.w / MAX_PX_PER_ELEMENT));
  const minRows = Math.min(shape.rows, Math.max(1, size.h / MAX_PX_PER_ELEMENT));
  const [col0, cols] = clampAxis(v.col0, v.cols, shape.cols, minCols);
  const [row0, rows] = clampAxis(v.row0, v.rows, shape.rows, minRows);
  return { col0, row0, cols, rows };
}

/** Which axes a zoom changes: both, the columns only (x) or the rows only (y). */
export type ZoomAxis = "both" | "x" | "y";

/**
 * Zooms by `factor` (> 1 zooms in) keeping the matrix point under the cursor fixed; `fx`, `fy`
 * are the cursor's position as a fraction (0…1) of the canvas width and height. `axis` zooms
 * one axis only (a tall tensor: rows without squeezing the columns).
 */
export function zoomAt(v: HeatmapView, factor: number, fx: number, fy: number, axis: ZoomAxis = "both"): HeatmapView {
  const cols = axis === "y" ? v.cols : v.cols / factor;
  const rows = axis === "x" ? v.rows : v.rows / factor;
  return {
    col0: v.col0 + fx * (v.cols - cols),
    row0: v.row0 + fy * (v.rows - rows),
    cols,
    rows,
  };
}

/**
 * The axis a wheel event zooms: Shift = rows only, Alt = columns only, neither = both. (With
 * Shift held, browsers may report the wheel as horizontal: see {@link wheelDelta}.)
 */
export function wheelAxis(e: { shiftKey: boolean; altKey: boolean }): ZoomAxis {
  return e.shiftKey && !e.altKey ? "y" : e.altKey && !e.shiftKey ? "x" : "both";
}

/** The wheel's delta, vertical or, when the vertical one is 0 (Shift+wheel), horizontal. */
export function wheelDelta(e: { deltaX: number; deltaY: number }): number {
  return e.deltaY !== 0 ? e.deltaY : e.deltaX;
}

/**
 * The zoom of each axis relative to the whole matrix ("fit" is 1 × 1): `x` for the columns,
 * `y` for the rows.
 */
export function zoomOf(v: HeatmapView, shape: MatrixShape): { x: number; y: number } {
  return { x: shape.cols / v.cols, y: shape.rows / v.rows };
}

/**
 * Every column across the canvas, rows zoomed to square pixels (as many rows as fit at the
 * columns' pixel size), around the row now in the middle. For a tall tensor (262,144 × 640):
 * the 640 columns across, a few hundred rows down.
 */
export function fitWidth(v: HeatmapView, shape: MatrixShape, size: Size): HeatmapView {
  const px = size.w / shape.cols;
  const rows = Math.min(shape.rows, px > 0 ? size.h / px : shape.rows);
  const mid = v.row0 + v.rows / 2;
  return clampView({ col0: 0, cols: shape.cols, row0: mid - rows / 2, rows }, shape, size);
}

/** Every row down the canvas, columns zoomed to square pixels, around the middle column. */
export function fitHeight(v: HeatmapView, shape: MatrixShape, size: Size): HeatmapView {
  const px = size.h / shape.rows;
  const cols = Math.min(shape.cols, px > 0 ? size.w / px : shape.cols);
  const mid = v.col0 + v.cols / 2;
  return clampView({ row0: 0, rows: shape.rows, col0: mid - cols / 2, cols }, shape, size);
}

/** Pixels per element below which "go to" zooms in (a row thinner than this is not visible). */
export const GOTO_MIN_PX = 6;
/** Pixels per element "go to" zooms to when it must zoom. */
export const GOTO_PX = 12;

/**
 * The view that shows element (`row`, `col`) in the middle of the canvas (`col` null: the
 * row, columns left as they are). An axis whose elements are thinner than {@link GOTO_MIN_PX}
 * is zoomed to {@link GOTO_PX} pixels per element first, so the target can be seen and
 * clicked; an axis already zoomed enough keeps its zoom.
 */
export function viewAround(v: HeatmapView, shape: MatrixShape, size: Size, row: number, col: number | null): HeatmapView {
  const c = clampView(v, shape, size);
  const rows = size.h / c.rows < GOTO_MIN_PX ? size.h / GOTO_PX : c.rows;
  const out = { ...c, rows, row0: row + 0.5 - rows / 2 };
  if (col !== null) {
    const cols = size.w / c.cols < GOTO_MIN_PX ? size.w / GOTO_PX : c.cols;
    out.cols = cols;
    out.col0 = col + 0.5 - cols / 2;
  }
  return clampView(out, shape, size);
}

/** The zoom factor of one wheel event (`deltaY` < 0 zooms in). */
export function wheelFactor(deltaY: number, deltaMode = 0): number {
  const px = deltaMode === 1 ? deltaY * 16 : deltaMode === 2 ? deltaY * 400 : deltaY;
  return Math.exp(-Math.max(-400, Math.min(400, px)) * 0.002);
}

/** Pans by a drag of `dx`, `dy` canvas pixels (the content follows the pointer). */
export function panBy(v: HeatmapView, dx: number, dy: number, size: Size): HeatmapView {
  return {
    ...v,
    col0: v.col0 - (dx * v.cols) / size.w,
    row0: v.row0 - (dy * v.rows) / size.h,
  };
}

/** The element under canvas pixel (`px`, `py`), or null outside the matrix. */
export function cellAt(
  v: HeatmapView,
  shape: MatrixShape,
  size: Size,
  px: number,
  py: number,
): { row: number; col: number } | null {
  const col = Math.floor(v.col0 + (px / size.w) * v.cols);
  const row = Math.floor(v.row0 + (py / size.h) * v.rows);
  if (col < 0 || row < 0 || col >= shape.cols || row >= shape.rows) return null;
  return { row, col };
}

/** What to ask Rust for to paint a view, and where the tile goes on the canvas. */
export interface TileRequest {
  viewport: Viewport;
  /** Output cells wanted (Rust returns min(outW, viewport.cols) × min(outH, viewport.rows)). */
  outW: number;
  outH: number;
  /** Destination rectangle of the tile on the canvas, in CSS pixels (may overhang the edges). */
  dest: { x: number; y: number; w: number; h: number };
}

/**
 * The whole elements covering the view, and an output size of about one cell per device pixel
 * (`dpr` = devicePixelRatio), capped at 4096 per axis.
 */
export function tileRequest(v: HeatmapView, shape: MatrixShape, size: Size, dpr = 1): TileRequest {
  const c0 = Math.max(0, Math.floor(v.col0));
  const r0 = Math.max(0, Math.floor(v.row0));
  const c1 = Math.min(shape.cols, Math.max(c0 + 1, Math.ceil(v.col0 + v.cols - 1e-9)));
  const r1 = Math.min(shape.rows, Math.max(r0 + 1, Math.ceil(v.row0 + v.rows - 1e-9)));
  const pxPerCol = size.w / v.cols;
  const pxPerRow = size.h / v.rows;
  const dest = {
    x: (c0 - v.col0) * pxPerCol,
    y: (r0 - v.row0) * pxPerRow,
    w: (c1 - c0) * pxPerCol,
    h: (r1 - r0) * pxPerRow,
  };
  const outW = Math.max(1, Math.min(4096, c1 - c0, Math.ceil(dest.w * dpr)));
  const outH = Math.max(1, Math.min(4096, r1 - r0, Math.ceil(dest.h * dpr)));
  return { viewport: { row0: r0, col0: c0, rows: r1 - r0, cols: c1 - c0 }, outW, outH, dest };
}

/**
 * The element rectangle a tile cell covers — the same split as Rust's `heatmap::lod`: cell
 * `(i, j)` of an `h × w` tile covers rows `row0 + ⌊i·rows/h⌋ … row0 + ⌊(i+1)·rows/h⌋`.
 */
export function cellSpan(
  vp: Viewport,
  w: number,
  h: number,
  i: number,
  j: number,
): { row0: number; row1: number; col0: number; col1: number } {
  return {
    row0: vp.row0 + Math.floor((vp.rows * i) / h),
    row1: vp.row0 + Math.floor((vp.rows * (i + 1)) / h),
    col0: vp.col0 + Math.floor((vp.cols * j) / w),
    col1: vp.col0 + Math.floor((vp.cols * (j + 1)) / w),
  };
}

/** The tile cell holding element (`row`, `col`), or null outside the tile's viewport. */
export function cellOfElement(
  vp: Viewport,
  w: number,
  h: number,
  row: number,
  col: number,
): { i: number; j: number } | null {
  const r = row - vp.row0;
  const c = col - vp.col0;
  if (r < 0 || c < 0 || r >= vp.rows || c >= vp.cols) return null;
  // Largest i with ⌊i·rows/h⌋ ≤ r is ⌊((r+1)·h − 1) / rows⌋.
  const i = Math.floor(((r + 1) * h - 1) / vp.rows);
  const j = Math.floor(((c + 1) * w - 1) / vp.cols);
  return { i, j };
}

/** Whether two views are the same to within a thousandth of an element. */
export function sameView(a: HeatmapView, b: HeatmapView): boolean {
  const eq = (x: number, y: number) => Math.abs(x - y) < 1e-3;
  return eq(a.col0, b.col0) && eq(a.row0, b.row0) && eq(a.cols, b.cols) && eq(a.rows, b.rows);
}
