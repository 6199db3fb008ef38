//! Level-of-detail views of a tensor as a 2-D matrix: heatmap tiles, exact value windows,
//! histograms and statistics.
//!
//! # Overview
//! A tensor with dims `[ne0, ne1, ne2, ..]` (ggml order) is seen as a matrix of
//! `rows = ne1·ne2·…` rows and `cols = ne0` columns: row `r` holds the contiguous elements
//! `r·ne0 .. (r+1)·ne0` (higher dims are folded into rows). A [`Viewport`] is a rectangle of
//! that matrix.
//!
//! - [`lod`] reduces a viewport to at most `out_w × out_h` cells: cell `(i, j)` covers rows
//!   `row0 + ⌊i·rows/h⌋ .. row0 + ⌊(i+1)·rows/h⌋` and the same split of the columns, so every
//!   element of the viewport lands in exactly one cell. Each cell carries two reductions:
//!   **mean** (of its finite values) and **peak** (the signed value of largest magnitude,
//!   NaN first, then ±Inf — so a broken weight is never averaged away). When the viewport is
//!   smaller than the output, one cell is one element (no upsampling: the UI scales).
//! - [`window`] returns the exact values of a viewport (the value grid).
//! - [`histogram`] bins the finite values; [`stats`] gives min/max/mean/std and non-finite
//!   counts (the colour legend's scale). [`stats_with`] and [`histogram_with`] report progress
//!   (elements read) to a [`ProgressFn`] and stop with [`LodError::Canceled`] when it returns
//!   `false`: a whole-tensor pass over a large tensor is a cancelable job in the studio.
//!
//! Values come from a [`RowSource`]: [`QuantMatrix`] dequantizes only the blocks of the rows
//! and columns asked for, straight from a tensor's bytes (any codec of `hotpatch-quant`);
//! [`Difference`] subtracts two sources of the same shape (a diff map). Large requests are
//! split over the available cores by output rows (`std::thread::scope`).
//!
//! Every size is checked before anything is allocated: a viewport must lie inside the matrix
//! and outputs are capped ([`MAX_TILE_CELLS`], [`MAX_WINDOW_CELLS`], [`MAX_BINS`]).
//!
//! ```
//! use hotpatch_core::heatmap::{lod, QuantMatrix, Viewport};
//! use hotpatch_core::GgmlType;
//! // A 4×64 F32 tensor: element i = i.
//! let data: Vec<u8> = (0..256).flat_map(|i| (i as f32).to_le_bytes()).collect();
//! let m = QuantMatrix::new(GgmlType::F32, &data, &[64, 4]).unwrap();
//! let tile = lod(&m, Viewport { row0: 0, col0: 0, rows: 4, cols: 64 }, 2, 2).unwrap();
//! assert_eq!((tile.width, tile.height), (2, 2));
//! // Cell (0, 0): rows 0..2, cols 0..32 → mean of {0..32, 64..96} = 47.5, peak 95.
//! assert_eq!(tile.mean[0], 47.5);
//! assert_eq!(tile.peak[0], 95.0);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use hotpatch_quant::{dequantize_range, GgmlType};
use serde::Serialize;

use crate::{Progress, ProgressFn};

/// The most cells one tile may have (4096 × 4096).
pub const MAX_TILE_CELLS: u64 = 4096 * 4096;
/// The most values one [`window`] may return.
pub const MAX_WINDOW_CELLS: u64 = 1 << 20;
/// The most bins of a [`histogram`].
pub const MAX_BINS: u32 = 4096;

/// Below this many elements a request runs on one thread.
const PARALLEL_MIN_ELEMENTS: u64 = 1 << 18;

/// The matrix view of a tensor: `rows × cols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shape {
    /// Rows (product of every dim but the first; 1 for a vector).
    pub rows: u64,
    /// Columns (`ne0`).
    pub cols: u64,
}

impl Shape {
    /// The matrix view of ggml dims `[ne0, ne1, ..]`; `None` when the element count overflows.
    pub fn of_dims(dims: &[u64]) -> Option<Shape> {
        let cols = dims.first().copied().unwrap_or(1);
        let rows = dims
            .iter()
            .skip(1)
            .try_fold(1u64, |a, &d| a.checked_mul(d))?;
        rows.checked_mul(cols)?;
        Some(Shape { rows, cols })
    }

    /// The whole matrix as a viewport.
    pub fn full(&self) -> Viewport {
        Viewport {
            row0: 0,
            col0: 0,
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// A rectangle of the matrix: rows `row0..row0+rows`, columns `col0..col0+cols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Viewport {
    /// First row.
    pub row0: u64,
    /// First column.
    pub col0: u64,
    /// Number of rows (≥ 1).
    pub rows: u64,
    /// Number of columns (≥ 1).
    pub cols: u64,
}

impl Viewport {
    /// Element count (`rows · cols`), saturating.
    pub fn elements(&self) -> u64 {
        self.rows.saturating_mul(self.cols)
    }

    /// Checks that the viewport is non-empty and inside `shape`.
    pub fn check(&self, shape: Shape) -> Result<(), LodError> {
        if self.rows == 0 || self.cols == 0 {
            return Err(LodError::EmptyViewport { viewport: *self });
        }
        let row_end = self.row0.checked_add(self.rows);
        let col_end = self.col0.checked_add(self.cols);
        if row_end.is_none_or(|e| e > shape.rows) || col_end.is_none_or(|e| e > shape.cols) {
            return Err(LodError::OutsideMatrix {
                viewport: *self,
                shape,
            });
        }
        Ok(())
    }
}

/// Why a view cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LodError {
    /// A viewport with no rows or no columns.
    #[error("viewport {viewport:?} is empty (rows and cols must be at least 1)")]
    EmptyViewport {
        /// The viewport.
        viewport: Viewport,
    },
    /// The viewport reaches past the matrix.
    #[error("viewport rows {}..{}, cols {}..{} is outside the {}×{} matrix", viewport.row0, viewport.row0.saturating_add(viewport.rows), viewport.col0, viewport.col0.saturating_add(viewport.cols), shape.rows, shape.cols)]
    OutsideMatrix {
        /// The viewport.
        viewport: Viewport,
        /// The matrix.
        shape: Shape,
    },
    /// The requested output is zero or too large.
    #[error("{what} {value} is not allowed (must be between 1 and {max})")]
    BadSize {
        /// What was asked (`"output width"`, `"window"`, `"bins"` ...).
        what: &'static str,
        /// The value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// The tensor's type or layout cannot be read as a matrix.
    #[error("{0}")]
    Unreadable(String),
    /// Two sources of a difference do not have the same shape.
    #[error("cannot subtract a {}×{} matrix from a {}×{} matrix", b.rows, b.cols, a.rows, a.cols)]
    ShapeMismatch {
        /// Left side.
        a: Shape,
        /// Right side.
        b: Shape,
    },
    /// The caller's progress callback asked to stop.
    #[error("canceled")]
    Canceled,
    /// A histogram range that is not finite or reversed.
    #[error("histogram range [{lo}, {hi}] must be finite with lo < hi")]
    BadRange {
        /// Lower edge.
        lo: f32,
        /// Upper edge.
        hi: f32,
    },
}

/// Where matrix values come from.
pub trait RowSource: Sync {
    /// The matrix's shape.
    fn shape(&self) -> Shape;
    /// Writes the values of `row`, columns `col0 .. col0 + out.len()`, into `out`.
    /// Callers check the bounds first ([`Viewport::check`]).
    fn read_row(&self, row: u64, col0: u64, out: &mut [f32]) -> Result<(), LodError>;
}

/// A tensor's bytes seen as a matrix, dequantized on demand (only the blocks asked for).
#[derive(Debug, Clone, Copy)]
pub struct QuantMatrix<'a> {
    ty: GgmlType,
    data: &'a [u8],
    shape: Shape,
    row_bytes: usize,
}

impl<'a> QuantMatrix<'a> {
    /// A tensor of type `ty` and dims `dims` (ggml order) whose data is `data`. Refuses types
    /// without a dequantizer, rows that are not whole blocks and data of the wrong length.
    pub fn new(ty: GgmlType, data: &'a [u8], dims: &[u64]) -> Result<QuantMatrix<'a>, LodError> {
        if !ty.can_dequantize() {
            return Err(LodError::Unreadable(format!("no dequantizer for {ty}")));
        }
        let shape = Shape::of_dims(dims)
            .ok_or_else(|| LodError::Unreadable(format!("dims {dims:?} overflow")))?;
        let row_bytes = ty.row_bytes(shape.cols).ok_or_else(|| {
            LodError::Unreadable(format!(
                "row length {} is not a whole number of {ty} blocks ({} elements)",
                shape.cols,
                ty.block_size()
            ))
        })?;
        let want = (row_bytes as u64).checked_mul(shape.rows);
        if want != Some(data.len() as u64) {
            return Err(LodError::Unreadable(format!(
                "{} bytes of data for a {}×{} {ty} matrix (expected {})",
                data.len(),
                shape.rows,
                shape.cols,
                want.map_or("more than 2^64".to_string(), |w| w.to_string())
            )));
        }
        Ok(QuantMatrix {
            ty,
            data,
            shape,
            row_bytes,
        })
    }

    /// The element type.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }
}

impl RowSource for QuantMatrix<'_> {
    fn shape(&self) -> Shape {
        self.shape
    }

    fn read_row(&self, row: u64, col0: u64, out: &mut [f32]) -> Result<(), LodError> {
        let start = usize::try_from(row)
            .ok()
            .and_then(|r| r.checked_mul(self.row_bytes))
            .filter(|&s| s < self.data.len())
            .ok_or_else(|| LodError::Unreadable(format!("row {row} is outside the data")))?;
        let bytes = &self.data[start..start + self.row_bytes];
        dequantize_range(self.ty, bytes, col0, out)
            .map_err(|e| LodError::Unreadable(format!("row {row}: {e}")))
    }
}

thread_local! {
    /// [`Difference::read_row`]'s buffer for the right side's row: one per thread, reused
    /// across rows (it grows to the widest row read and lives as long as the thread).
    static DIFF_ROW: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `a − b`, element by element, for two sources of the same shape (a difference map).
#[derive(Debug, Clone, Copy)]
pub struct Difference<'s, A, B> {
    a: &'s A,
    b: &'s B,
}

impl<'s, A: RowSource, B: RowSource> Difference<'s, A, B> {
    /// `a − b`; refuses different shapes.
    pub fn new(a: &'s A, b: &'s B) -> Result<Self, LodError> {
        if a.shape() != b.shape() {
            return Err(LodError::ShapeMismatch {
                a: a.shape(),
                b: b.shape(),
            });
        }
        Ok(Difference { a, b })
    }
}

impl<A: RowSource, B: RowSource> RowSource for Difference<'_, A, B> {
    fn shape(&self) -> Shape {
        self.a.shape()
    }

    fn read_row(&self, row: u64, col0: u64, out: &mut [f32]) -> Result<(), LodError> {
        self.a.read_row(row, col0, out)?;
        // The right side's row goes into this thread's reused buffer (taken out of the cell
        // while in use, so a nested difference simply gets a fresh one).
        let mut other = DIFF_ROW.with(|c| c.take());
        other.clear();
        other.resize(out.len(), 0.0);
        let read = self.b.read_row(row, col0, &mut other);
        if read.is_ok() {
            for (x, y) in out.iter_mut().zip(&other) {
                *x -= y;
            }
        }
        DIFF_ROW.with(|c| c.replace(other));
        read
    }
}

/// A reduced view: `width × height` cells, row-major, two reductions per cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tile {
    /// Cells per row.
    pub width: u32,
    /// Rows of cells.
    pub height: u32,
    /// Mean of each cell's finite values (the cell's peak when it has none).
    pub mean: Vec<f32>,
    /// Each cell's value of largest magnitude, signed (NaN before ±Inf before finite values).
    pub peak: Vec<f32>,
}

/// The split of `n` items into `parts` near-equal runs: run `k` is `edge(k)..edge(k+1)`.
fn edge(n: u64, parts: u64, k: u64) -> u64 {
    ((n as u128 * k as u128) / parts as u128) as u64
}

/// Whether `a` outranks `b` as a peak: NaN, then larger magnitude (Inf included).
fn outranks(a: f32, b: f32) -> bool {
    if b.is_nan() {
        return false;
    }
    a.is_nan() || a.abs() > b.abs()
}

/// Reduces one run of values: (sum of finite values, count of finite values, peak).
fn reduce(xs: &[f32]) -> (f64, u64, f32) {
    // Fast path: a finite sum means every value is finite.
    let mut s = 0f32;
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &x in xs {
        s += x;
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if s.is_finite() {
        let peak = if hi >= -lo { hi } else { lo };
        // f32 partial sums are exact enough per run; recompute in f64 for long runs.
        let sum = if xs.len() > 64 {
            xs.iter().map(|&x| f64::from(x)).sum()
        } else {
            f64::from(s)
        };
        return (sum, xs.len() as u64, peak);
    }
    let (mut sum, mut n, mut peak) = (0f64, 0u64, 0f32);
    let mut first = true;
    for &x in xs {
        if x.is_finite() {
            sum += f64::from(x);
            n += 1;
        }
        if first || outranks(x, peak) {
            peak = x;
            first = false;
        }
    }
    (sum, n, peak)
}

fn check_out(what: &'static str, v: u32, max: u64) -> Result<(), LodError> {
    if v == 0 || u64::from(v) > max {
        return Err(LodError::BadSize {
            what,
            value: u64::from(v),
            max,
        });
    }
    Ok(())
}

fn threads_for(elements: u64, units: usize) -> usize {
    if elements < PARALLEL_MIN_ELEMENTS {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(units)
        .max(1)
}

/// Runs `work(first_unit, mean_chunk, peak_chunk)` over matching chunks of the two planes
/// (each unit — one row of cells — `stride` values wide) on up to `threads` threads; returns
/// the first error. The workers write straight into the tile's planes: no copy afterwards.
fn split_rows<F>(
    mean: &mut [f32],
    peak: &mut [f32],
    stride: usize,
    threads: usize,
    work: F,
) -> Result<(), LodError>
where
    F: Fn(usize, &mut [f32], &mut [f32]) -> Result<(), LodError> + Sync,
{
    let units = mean.len() / stride.max(1);
    if threads <= 1 || units <= 1 {
        return work(0, mean, peak);
    }
    let per = units.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = mean
            .chunks_mut(per * stride)
            .zip(peak.chunks_mut(per * stride))
            .enumerate()
            .map(|(k, (m, p))| {
                let work = &work;
                s.spawn(move || work(k * per, m, p))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(LodError::Unreadable("a worker panicked".into())))
            })
            .collect::<Result<Vec<()>, LodError>>()
            .map(|_| ())
    })
}

/// Adds one row into the column accumulators (sum, min, max; NaN shows in the sum only).
///
/// Written branch-free over equal-length slices so it compiles to packed adds, mins and maxes
/// (a conditional store per element kept it scalar, with a mispredicted branch per new
/// extreme). `if x < l { x } else { l }` keeps `l` when `x` is NaN, as the comparison did.
fn accumulate(row: &[f32], sum: &mut [f32], lo: &mut [f32], hi: &mut [f32]) {
    let n = row.len().min(sum.len()).min(lo.len()).min(hi.len());
    let (row, sum, lo, hi) = (&row[..n], &mut sum[..n], &mut lo[..n], &mut hi[..n]);
    for i in 0..n {
        let x = row[i];
        sum[i] += x;
        lo[i] = if x < lo[i] { x } else { lo[i] };
        hi[i] = if x > hi[i] { x } else { hi[i] };
    }
}

/// Rows summed in f32 before the column sums move to f64.
const FLUSH_ROWS: u64 = 16;

fn flush(sum: &mut [f32], total: &mut [f64]) {
    for (s, t) in sum.iter_mut().zip(total) {
        *t += f64::from(*s);
        *s = 0.0;
    }
}

/// Reduces column accumulators `(total, min, max)` to per-cell `(sum, min, max)`: cell `j`
/// covers columns `col_edges[j] .. col_edges[j + 1]` (at most `max_width` of them, at least
/// one). Every cell takes exactly `max_width` steps: past its last column it re-reads that
/// column for min/max (no effect) and adds nothing to the sum. The column min/max never hold
/// NaN (`accumulate` skips it), so plain comparisons suffice.
fn reduce_cells(
    col_edges: &[usize],
    max_width: usize,
    (total, lo, hi): (&[f64], &[f32], &[f32]),
    (cell_sum, cell_lo, cell_hi): (&mut [f64], &mut [f32], &mut [f32]),
) {
    for (j, ((s_out, lo_out), hi_out)) in cell_sum
        .iter_mut()
        .zip(cell_lo.iter_mut())
        .zip(cell_hi.iter_mut())
        .enumerate()
    {
        let (c0, c1) = (col_edges[j], col_edges[j + 1]);
        let last = c1 - 1;
        let (mut s, mut l, mut h) = (0f64, f32::INFINITY, f32::NEG_INFINITY);
        for k in 0..max_width {
            let c = c0 + k;
            let i = c.min(last);
            s += if c < c1 { total[i] } else { 0.0 };
            l = if lo[i] < l { lo[i] } else { l };
            h = if hi[i] > h { hi[i] } else { h };
        }
        *s_out = s;
        *lo_out = l;
        *hi_out = h;
    }
}

/// The exact (non-finite aware) reduction of cells `which` of one output row: re-reads the
/// rows `rows` and reduces each cell's values with [`reduce`].
#[allow(clippy::too_many_arguments)]
fn exact_cells(
    src: &impl RowSource,
    viewport: Viewport,
    rows: std::ops::Range<u64>,
    col_edges: &[usize],
    which: &[usize],
    row: &mut [f32],
    mean: &mut [f32],
    peak: &mut [f32],
) -> Result<(), LodError> {
    let mut acc: Vec<(f64, u64, f32)> = vec![(0.0, 0, 0.0); which.len()];
    for (n, r) in rows.enumerate() {
        src.read_row(viewport.row0 + r, viewport.col0, row)?;
        for (a, &j) in acc.iter_mut().zip(which) {
            let (s, c, p) = reduce(&row[col_edges[j]..col_edges[j + 1]]);
            a.0 += s;
            a.1 += c;
            if n == 0 || outranks(p, a.2) {
                a.2 = p;
            }
        }
    }
    for (&(s, c, p), &j) in acc.iter().zip(which) {
        mean[j] = if c > 0 { (s / c as f64) as f32 } else { p };
        peak[j] = p;
    }
    Ok(())
}

/// Reduces `viewport` of `src` to at most `out_w × out_h` cells (see the module docs).
pub fn lod(
    src: &impl RowSource,
    viewport: Viewport,
    out_w: u32,
    out_h: u32,
) -> Result<Tile, LodError> {
    viewport.check(src.shape())?;
    check_out("output width", out_w, 4096)?;
    check_out("output height", out_h, 4096)?;
    let w = viewport.cols.min(u64::from(out_w));
    let h = viewport.rows.min(u64::from(out_h));
    if w * h > MAX_TILE_CELLS {
        return Err(LodError::BadSize {
            what: "tile cells",
            value: w * h,
            max: MAX_TILE_CELLS,
        });
    }
    let (wu, hu) = (w as usize, h as usize);
    // Column run of each output column, relative to col0.
    let col_edges: Vec<usize> = (0..=w)
        .map(|k| edge(viewport.cols, w, k) as usize)
        .collect();
    // Cells are ⌊cols/w⌋ or ⌈cols/w⌉ columns wide: each cell's reduction runs a fixed
    // `max_width` steps (a narrower cell repeats its last column for min/max and adds 0 to the
    // sum), so the loop has no data-dependent trip count to mispredict.
    let max_width = col_edges.windows(2).map(|e| e[1] - e[0]).max().unwrap_or(1);
    let widths: Vec<f64> = col_edges.windows(2).map(|e| (e[1] - e[0]) as f64).collect();
    let mut mean_plane = vec![0f32; wu * hu];
    let mut peak_plane = vec![0f32; wu * hu];
    let threads = threads_for(viewport.elements(), hu);
    let vc = viewport.cols as usize;
    split_rows(
        &mut mean_plane,
        &mut peak_plane,
        wu,
        threads,
        |first, means, peaks| {
            let mut row = vec![0f32; vc];
            // Column-wise accumulators over the rows of one output row (vectorizable), reduced
            // across each cell's columns once per output row.
            // f32 column sums (twice the SIMD width of f64) are flushed into f64 every
            // `FLUSH_ROWS` rows, so long columns keep f64 accuracy.
            let mut col_sum = vec![0f32; vc];
            let mut col_total = vec![0f64; vc];
            let mut col_min = vec![0f32; vc];
            let mut col_max = vec![0f32; vc];
            let mut slow: Vec<usize> = Vec::new();
            let mut cell_sum = vec![0f64; wu];
            let mut cell_lo = vec![0f32; wu];
            let mut cell_hi = vec![0f32; wu];
            for (k, (mean, peak)) in means.chunks_mut(wu).zip(peaks.chunks_mut(wu)).enumerate() {
                let i = (first + k) as u64;
                let (r0, r1) = (edge(viewport.rows, h, i), edge(viewport.rows, h, i + 1));
                // `col_sum` is all zeros here: `flush` leaves it so.
                col_total.fill(0.0);
                col_min.fill(f32::INFINITY);
                col_max.fill(f32::NEG_INFINITY);
                for r in r0..r1 {
                    src.read_row(viewport.row0 + r, viewport.col0, &mut row)?;
                    accumulate(&row, &mut col_sum, &mut col_min, &mut col_max);
                    if (r - r0) % FLUSH_ROWS == FLUSH_ROWS - 1 {
                        flush(&mut col_sum, &mut col_total);
                    }
                }
                flush(&mut col_sum, &mut col_total);
                let n_rows = (r1 - r0) as f64;
                reduce_cells(
                    &col_edges,
                    max_width,
                    (&col_total, &col_min, &col_max),
                    (&mut cell_sum, &mut cell_lo, &mut cell_hi),
                );
                // Mean and peak of every cell in straight loops (packed divisions); then the cells
                // holding a non-finite value are found and redone exactly.
                for (((m, p), (&s, &wd)), (&lo, &hi)) in mean
                    .iter_mut()
                    .zip(peak.iter_mut())
                    .zip(cell_sum.iter().zip(&widths))
                    .zip(cell_lo.iter().zip(&cell_hi))
                {
                    *m = (s / (n_rows * wd)) as f32;
                    *p = if hi >= -lo { hi } else { lo };
                }
                slow.clear();
                for j in 0..wu {
                    // A finite sum and finite extremes mean every value of the cell is finite.
                    if !(cell_sum[j].is_finite()
                        && cell_lo[j].is_finite()
                        && cell_hi[j].is_finite())
                    {
                        slow.push(j);
                    }
                }
                if !slow.is_empty() {
                    exact_cells(
                        src,
                        viewport,
                        r0..r1,
                        &col_edges,
                        &slow,
                        &mut row,
                        mean,
                        peak,
                    )?;
                }
            }
            Ok(())
        },
    )?;
    Ok(Tile {
        width: w as u32,
        height: h as u32,
        mean: mean_plane,
        peak: peak_plane,
    })
}

/// The exact values of `viewport`, row-major (`rows · cols` values, at most
/// [`MAX_WINDOW_CELLS`]).
pub fn window(src: &impl RowSource, viewport: Viewport) -> Result<Vec<f32>, LodError> {
    viewport.check(src.shape())?;
    if viewport.elements() > MAX_WINDOW_CELLS {
        return Err(LodError::BadSize {
            what: "window elements",
            value: viewport.elements(),
            max: MAX_WINDOW_CELLS,
        });
    }
    let cols = viewport.cols as usize;
    let mut out = vec![0f32; viewport.elements() as usize];
    for (k, row) in out.chunks_exact_mut(cols).enumerate() {
        src.read_row(viewport.row0 + k as u64, viewport.col0, row)?;
    }
    Ok(out)
}

/// Summary statistics of a viewport's values.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Stats {
    /// Elements looked at.
    pub count: u64,
    /// Of which finite.
    pub finite: u64,
    /// NaN count.
    pub nan: u64,
    /// +Inf count.
    pub pos_inf: u64,
    /// −Inf count.
    pub neg_inf: u64,
    /// Exact zeros (±0).
    pub zeros: u64,
    /// Smallest finite value (0 when none).
    pub min: f32,
    /// Largest finite value (0 when none).
    pub max: f32,
    /// Mean of the finite values.
    pub mean: f64,
    /// Population standard deviation of the finite values.
    pub std: f64,
}

impl Stats {
    /// `max(|min|, |max|)`: the half-width of a colour scale centred on zero.
    pub fn abs_max(&self) -> f32 {
        self.min.abs().max(self.max.abs())
    }
}

#[derive(Default, Clone, Copy)]
struct Acc {
    count: u64,
    finite: u64,
    nan: u64,
    pos_inf: u64,
    neg_inf: u64,
    zeros: u64,
    min: f32,
    max: f32,
    sum: f64,
    sum_sq: f64,
}

/// Independent lanes of [`Acc::add_finite_row`] (packed f64 sums need several in flight).
const STAT_LANES: usize = 8;

impl Acc {
    /// Adds a row: the packed all-finite pass, or the exact per-value one when the row holds a
    /// NaN or ±Inf.
    fn add_row(&mut self, xs: &[f32]) {
        if !self.add_finite_row(xs) {
            self.add_row_exact(xs);
        }
    }

    /// One pass assuming every value is finite, in [`STAT_LANES`] independent lanes (f64 sums
    /// and sums of squares, min, max, zeros), merged at the end. Returns `false`, changing
    /// nothing, when a value is NaN or ±Inf.
    fn add_finite_row(&mut self, xs: &[f32]) -> bool {
        let mut sum = [0f64; STAT_LANES];
        let mut sum_sq = [0f64; STAT_LANES];
        let mut lo = [f32::INFINITY; STAT_LANES];
        let mut hi = [f32::NEG_INFINITY; STAT_LANES];
        let mut zeros = [0u64; STAT_LANES];
        let mut finite = [true; STAT_LANES];
        let mut lane = |l: usize, x: f32| {
            let d = f64::from(x);
            sum[l] += d;
            sum_sq[l] += d * d;
            lo[l] = if x < lo[l] { x } else { lo[l] };
            hi[l] = if x > hi[l] { x } else { hi[l] };
            zeros[l] += u64::from(x == 0.0);
            // False for NaN and ±Inf.
            finite[l] &= x.abs() <= f32::MAX;
        };
        let chunks = xs.chunks_exact(STAT_LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for (l, &x) in c.iter().enumerate() {
                lane(l, x);
            }
        }
        for (l, &x) in tail.iter().enumerate() {
            lane(l, x);
        }
        if !finite.iter().all(|&f| f) {
            return false;
        }
        let n = xs.len() as u64;
        if n == 0 {
            return true;
        }
        let row = Acc {
            count: n,
            finite: n,
            zeros: zeros.iter().sum(),
            min: lo.iter().copied().fold(f32::INFINITY, f32::min),
            max: hi.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            sum: sum.iter().sum(),
            sum_sq: sum_sq.iter().sum(),
            ..Acc::default()
        };
        self.merge(&row);
        true
    }

    /// The per-value pass: counts NaN and ±Inf, accumulates the finite values.
    fn add_row_exact(&mut self, xs: &[f32]) {
        for &x in xs {
            self.count += 1;
            if x.is_finite() {
                if self.finite == 0 {
                    self.min = x;
                    self.max = x;
                } else {
                    self.min = self.min.min(x);
                    self.max = self.max.max(x);
                }
                self.finite += 1;
                let d = f64::from(x);
                self.sum += d;
                self.sum_sq += d * d;
                if x == 0.0 {
                    self.zeros += 1;
                }
            } else if x.is_nan() {
                self.nan += 1;
            } else if x > 0.0 {
                self.pos_inf += 1;
            } else {
                self.neg_inf += 1;
            }
        }
    }

    fn merge(&mut self, o: &Acc) {
        if o.finite > 0 {
            if self.finite == 0 {
                self.min = o.min;
                self.max = o.max;
            } else {
                self.min = self.min.min(o.min);
                self.max = self.max.max(o.max);
            }
        }
        self.count += o.count;
        self.finite += o.finite;
        self.nan += o.nan;
        self.pos_inf += o.pos_inf;
        self.neg_inf += o.neg_inf;
        self.zeros += o.zeros;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
    }

    fn stats(&self) -> Stats {
        let n = self.finite as f64;
        let mean = if self.finite > 0 { self.sum / n } else { 0.0 };
        let var = if self.finite > 0 {
            (self.sum_sq / n - mean * mean).max(0.0)
        } else {
            0.0
        };
        Stats {
            count: self.count,
            finite: self.finite,
            nan: self.nan,
            pos_inf: self.pos_inf,
            neg_inf: self.neg_inf,
            zeros: self.zeros,
            min: self.min,
            max: self.max,
            mean,
            std: var.sqrt(),
        }
    }
}

/// Elements a worker reads between two progress reports (and cancel checks): small enough
/// that Cancel answers within a few milliseconds, large enough that reporting costs nothing.
const REPORT_ELEMENTS: u64 = 1 << 18;

/// Where a pass over a viewport stands in a longer job: the pass covers elements
/// `base .. base + viewport elements` of `total`.
#[derive(Clone, Copy)]
struct Pass {
    base: u64,
    total: u64,
}

/// Runs `f(row_values)` over every row of `viewport`, split over threads by rows; each thread
/// folds into its own `T` (from `init`), the results are returned per thread.
///
/// Progress is reported to `progress` (in elements, `pass.base + done` of `pass.total`) from
/// the calling thread only: once before the first row, then as the workers send their row
/// counts. When `progress` returns `false` the workers stop at their next report and the pass
/// returns [`LodError::Canceled`].
fn fold_rows<T: Send>(
    src: &impl RowSource,
    viewport: Viewport,
    init: impl Fn() -> T + Sync,
    f: impl Fn(&mut T, &[f32]) + Sync,
    pass: Pass,
    progress: ProgressFn<'_>,
) -> Result<Vec<T>, LodError> {
    viewport.check(src.shape())?;
    let report = |done_rows: u64| Progress {
        done: pass.base + done_rows * viewport.cols,
        total: pass.total,
    };
    if !progress(report(0)) {
        return Err(LodError::Canceled);
    }
    let threads = threads_for(viewport.elements(), viewport.rows.min(64) as usize) as u64;
    let rows_per_report = (REPORT_ELEMENTS / viewport.cols).max(1);
    // Worker `k` of `threads`: folds its rows, calling `tell(rows read since the last call)`
    // every `rows_per_report` rows and at the end; stops when `tell` says so.
    let run = |k: u64, tell: &mut dyn FnMut(u64) -> bool| -> Result<T, LodError> {
        let mut acc = init();
        let mut row = vec![0f32; viewport.cols as usize];
        let (r0, r1) = (
            edge(viewport.rows, threads, k),
            edge(viewport.rows, threads, k + 1),
        );
        let mut unreported = 0;
        for r in r0..r1 {
            src.read_row(viewport.row0 + r, viewport.col0, &mut row)?;
            f(&mut acc, &row);
            unreported += 1;
            if unreported == rows_per_report || r + 1 == r1 {
                if !tell(unreported) {
                    return Err(LodError::Canceled);
                }
                unreported = 0;
            }
        }
        Ok(acc)
    };
    if threads <= 1 {
        let mut done = 0;
        let out = run(0, &mut |n| {
            done += n;
            progress(report(done))
        })?;
        return Ok(vec![out]);
    }
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<u64>();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let (run, stop, tx) = (&run, &stop, tx.clone());
                s.spawn(move || {
                    run(k, &mut |n| {
                        // A closed channel means the caller is gone: stop.
                        tx.send(n).is_ok() && !stop.load(Ordering::Relaxed)
                    })
                })
            })
            .collect();
        // Only the workers hold senders now: the loop ends when the last one finishes.
        drop(tx);
        let mut done = 0;
        for n in rx {
            done += n;
            if !stop.load(Ordering::Relaxed) && !progress(report(done)) {
                stop.store(true, Ordering::Relaxed);
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(LodError::Unreadable("a worker panicked".into())))
            })
            .collect()
    })
}

/// Statistics of the values of `viewport`.
pub fn stats(src: &impl RowSource, viewport: Viewport) -> Result<Stats, LodError> {
    stats_with(src, viewport, &mut |_| true)
}

/// [`stats`] reporting progress in elements read (`total` = the viewport's elements), from the
/// calling thread, at least every [`REPORT_ELEMENTS`]-ish elements per worker; when `progress`
/// returns `false` the workers stop and the result is [`LodError::Canceled`].
pub fn stats_with(
    src: &impl RowSource,
    viewport: Viewport,
    progress: ProgressFn<'_>,
) -> Result<Stats, LodError> {
    let pass = Pass {
        base: 0,
        total: viewport.elements(),
    };
    stats_pass(src, viewport, pass, progress)
}

/// One statistics pass over `viewport`, reported as `pass`.
fn stats_pass(
    src: &impl RowSource,
    viewport: Viewport,
    pass: Pass,
    progress: ProgressFn<'_>,
) -> Result<Stats, LodError> {
    let parts = fold_rows(
        src,
        viewport,
        Acc::default,
        |a, row| a.add_row(row),
        pass,
        progress,
    )?;
    Ok(merged(&parts).stats())
}

fn merged(parts: &[Acc]) -> Acc {
    let mut total = Acc::default();
    for p in parts {
        total.merge(p);
    }
    total
}

/// Counts of finite values in equal-width bins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Lower edge of the first bin.
    pub lo: f32,
    /// Upper edge of the last bin (values equal to it fall in the last bin).
    pub hi: f32,
    /// Count per bin; bin `k` is `[lo + k·(hi−lo)/n, lo + (k+1)·(hi−lo)/n)`.
    pub counts: Vec<u64>,
    /// Finite values outside `[lo, hi]` (only with an explicit range).
    pub outside: u64,
    /// The statistics of the same values (the whole viewport).
    pub stats: Stats,
}

/// The bin of `x` in `[lo, hi]` split into `n` bins, or `None` outside.
pub fn bin_of(x: f32, lo: f32, hi: f32, n: usize) -> Option<usize> {
    if !(x >= lo && x <= hi) {
        return None;
    }
    let k = ((f64::from(x) - f64::from(lo)) / (f64::from(hi) - f64::from(lo)) * n as f64) as usize;
    Some(k.min(n - 1))
}

/// [`bin_of`] for one range, without its division per value: the bin comes from a
/// multiplication by the precomputed `n / (hi − lo)`, which differs from `bin_of`'s
/// `(x − lo) / (hi − lo) · n` by a few f64 ulps at most; a value whose position lands within
/// `1e-9` of a bin edge (or any non-number position) is binned by `bin_of` itself, so the
/// result is always `bin_of`'s.
struct Binner {
    lo: f32,
    hi: f32,
    lo64: f64,
    scale: f64,
    n: usize,
}

impl Binner {
    fn new(lo: f32, hi: f32, n: usize) -> Binner {
        Binner {
            lo,
            hi,
            lo64: f64::from(lo),
            scale: n as f64 / (f64::from(hi) - f64::from(lo)),
            n,
        }
    }

    #[inline]
    fn bin(&self, x: f32) -> Option<usize> {
        if !(x >= self.lo && x <= self.hi) {
            return None;
        }
        // t ≥ 0 here, so truncation is the floor (`f64::floor` is a libm call on baseline
        // x86-64); a NaN position (a zero-width range) truncates to 0 and fails the test below.
        let t = (f64::from(x) - self.lo64) * self.scale;
        let k = t as usize;
        let frac = t - k as f64;
        if frac > 1e-9 && frac < 1.0 - 1e-9 {
            Some(k.min(self.n - 1))
        } else {
            bin_of(x, self.lo, self.hi, self.n)
        }
    }
}

/// Bins the finite values of `viewport` into `bins` equal bins over `range`, or over the
/// values' own `[min, max]` when `range` is `None` (two passes).
pub fn histogram(
    src: &impl RowSource,
    viewport: Viewport,
    bins: u32,
    range: Option<(f32, f32)>,
) -> Result<Histogram, LodError> {
    histogram_with(src, viewport, bins, range, &mut |_| true)
}

/// [`histogram`] reporting progress in elements read over both passes (`total` = twice the
/// viewport's elements without `range`: statistics, then bins; once with `range`: one pass
/// does both); when `progress` returns `false` the result is [`LodError::Canceled`].
pub fn histogram_with(
    src: &impl RowSource,
    viewport: Viewport,
    bins: u32,
    range: Option<(f32, f32)>,
    progress: ProgressFn<'_>,
) -> Result<Histogram, LodError> {
    check_out("bins", bins, u64::from(MAX_BINS))?;
    if let Some((lo, hi)) = range {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(LodError::BadRange { lo, hi });
        }
    }
    viewport.check(src.shape())?;
    let elements = viewport.elements();
    let passes = if range.is_some() { 1 } else { 2 };
    let total = elements.saturating_mul(passes);
    // Without a range, the first pass finds it (and gives the statistics).
    let (lo, hi, first) = match range {
        Some((lo, hi)) => (lo, hi, None),
        None => {
            let st = stats_pass(src, viewport, Pass { base: 0, total }, progress)?;
            let (lo, hi) = if st.finite == 0 {
                (0.0, 1.0)
            } else if st.min == st.max {
                // A constant tensor gets a unit-wide range centred on its value.
                (st.min - 0.5, st.max + 0.5)
            } else {
                (st.min, st.max)
            };
            (lo, hi, Some(st))
        }
    };
    let n = bins as usize;
    let binner = Binner::new(lo, hi, n);
    let with_stats = first.is_none();
    let pass = Pass {
        base: total - elements,
        total,
    };
    let parts = fold_rows(
        src,
        viewport,
        || (vec![0u64; n], 0u64, Acc::default()),
        |(counts, outside, acc), row| {
            if with_stats {
                acc.add_row(row);
            }
            for &x in row {
                if !x.is_finite() {
                    continue;
                }
                match binner.bin(x) {
                    Some(k) => counts[k] += 1,
                    None => *outside += 1,
                }
            }
        },
        pass,
        progress,
    )?;
    let mut counts = vec![0u64; n];
    let mut outside = 0;
    let mut acc = Acc::default();
    for (c, o, a) in parts {
        for (x, y) in counts.iter_mut().zip(c) {
            *x += y;
        }
        outside += o;
        acc.merge(&a);
    }
    Ok(Histogram {
        lo,
        hi,
        counts,
        outside,
        stats: first.unwrap_or_else(|| acc.stats()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source over plain values, for tests.
    struct Plain {
        shape: Shape,
        v: Vec<f32>,
    }

    impl RowSource for Plain {
        fn shape(&self) -> Shape {
            self.shape
        }
        fn read_row(&self, row: u64, col0: u64, out: &mut [f32]) -> Result<(), LodError> {
            let s = (row * self.shape.cols + col0) as usize;
            out.copy_from_slice(&self.v[s..s + out.len()]);
            Ok(())
        }
    }

    fn plain(rows: u64, cols: u64, f: impl Fn(u64, u64) -> f32) -> Plain {
        let v = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .map(|(r, c)| f(r, c))
            .collect();
        Plain {
            shape: Shape { rows, cols },
            v,
        }
    }

    /// A [`Plain`] that counts the rows read.
    struct Counting {
        inner: Plain,
        rows_read: std::sync::atomic::AtomicU64,
    }

    impl RowSource for Counting {
        fn shape(&self) -> Shape {
            self.inner.shape
        }
        fn read_row(&self, row: u64, col0: u64, out: &mut [f32]) -> Result<(), LodError> {
            self.rows_read.fetch_add(1, Ordering::Relaxed);
            self.inner.read_row(row, col0, out)
        }
    }

    fn counting(rows: u64, cols: u64) -> Counting {
        Counting {
            inner: plain(rows, cols, |r, c| {
                ((r * 7919 + c * 104729) % 2001) as f32 / 100.0 - 10.0
            }),
            rows_read: Default::default(),
        }
    }

    /// Runs `call` with a recording callback that cancels once `done >= cancel_at`; returns
    /// the reports seen.
    fn record(
        cancel_at: u64,
        call: impl FnOnce(ProgressFn<'_>) -> Result<(), LodError>,
    ) -> (Vec<Progress>, Result<(), LodError>) {
        let mut seen = Vec::new();
        let r = call(&mut |p| {
            seen.push(p);
            p.done < cancel_at
        });
        (seen, r)
    }

    fn assert_monotonic_to(seen: &[Progress], total: u64) {
        assert!(!seen.is_empty());
        assert_eq!(seen[0].done, 0, "a first report before any work");
        for w in seen.windows(2) {
            assert!(w[0].done <= w[1].done, "{:?} then {:?}", w[0], w[1]);
        }
        assert!(seen.iter().all(|p| p.total == total && p.done <= total));
    }

    #[test]
    fn stats_report_progress_up_to_the_total_and_match_without_progress() {
        // 1000×700: split over threads (when the machine has two cores or more).
        for (rows, cols) in [(1000u64, 700u64), (3, 5)] {
            let m = counting(rows, cols);
            let vp = m.inner.shape.full();
            let plain = stats(&m.inner, vp).unwrap();
            let mut got = None;
            let (seen, r) = record(u64::MAX, |p| {
                got = Some(stats_with(&m, vp, p)?);
                Ok(())
            });
            r.unwrap();
            assert_eq!(got, Some(plain));
            assert_monotonic_to(&seen, rows * cols);
            assert_eq!(seen.last().unwrap().done, rows * cols);
            // Independent check of the values: count and extremes by a plain scan.
            let lo = m.inner.v.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = m.inner.v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!((plain.count, plain.min, plain.max), (rows * cols, lo, hi));
        }
    }

    #[test]
    fn stats_and_histogram_stop_early_on_cancel() {
        let (rows, cols) = (4000u64, 1024u64);
        let total = rows * cols;
        let m = counting(rows, cols);
        let vp = m.inner.shape.full();
        // Cancel at the very first report: nothing is read.
        let (seen, r) = record(0, |p| stats_with(&m, vp, p).map(|_| ()));
        assert_eq!(r, Err(LodError::Canceled));
        assert_eq!(seen.len(), 1);
        assert_eq!(m.rows_read.load(Ordering::Relaxed), 0);
        // Cancel a quarter of the way: the workers stop well before the end.
        let (seen, r) = record(total / 4, |p| stats_with(&m, vp, p).map(|_| ()));
        assert_eq!(r, Err(LodError::Canceled));
        assert!(seen.last().unwrap().done >= total / 4);
        let read = m.rows_read.swap(0, Ordering::Relaxed);
        assert!(
            read < rows * 3 / 4,
            "{read} of {rows} rows read after a cancel at 1/4"
        );
        // A histogram without a range: two passes; a cancel in the second one.
        let (seen, r) = record(total + total / 2, |p| {
            histogram_with(&m, vp, 16, None, p).map(|_| ())
        });
        assert_eq!(r, Err(LodError::Canceled));
        assert_monotonic_to(&seen, 2 * total);
        let read = m.rows_read.swap(0, Ordering::Relaxed);
        assert!(
            read >= rows && read < 2 * rows,
            "{read} rows over two passes"
        );
    }

    #[test]
    fn histogram_with_progress_equals_the_plain_histogram() {
        let m = counting(900, 333);
        let vp = Viewport {
            row0: 7,
            col0: 11,
            rows: 881,
            cols: 301,
        };
        let total = vp.elements();
        for range in [None, Some((-3.0f32, 4.5f32))] {
            let plain = histogram(&m.inner, vp, 37, range).unwrap();
            let mut got = None;
            let (seen, r) = record(u64::MAX, |p| {
                got = Some(histogram_with(&m, vp, 37, range, p)?);
                Ok(())
            });
            r.unwrap();
            let passes = if range.is_some() { 1 } else { 2 };
            assert_monotonic_to(&seen, passes * total);
            assert_eq!(seen.last().unwrap().done, passes * total);
            let got = got.unwrap();
            assert_eq!(got, plain);
            // The one-pass statistics (explicit range) equal the statistics pass's.
            assert_eq!(got.stats.count, total);
            let st = stats(&m.inner, vp).unwrap();
            assert_eq!(
                (got.stats.min, got.stats.max, got.stats.finite),
                (st.min, st.max, st.finite)
            );
            assert!((got.stats.mean - st.mean).abs() < 1e-9);
            // Counts by a plain scan of the viewport.
            let (lo, hi) = (got.lo, got.hi);
            let mut want = vec![0u64; 37];
            let mut outside = 0;
            for r in vp.row0..vp.row0 + vp.rows {
                for c in vp.col0..vp.col0 + vp.cols {
                    let x = m.inner.v[(r * 333 + c) as usize];
                    let k = ((f64::from(x) - f64::from(lo)) / (f64::from(hi) - f64::from(lo))
                        * 37.0)
                        .floor();
                    if x < lo || x > hi {
                        outside += 1;
                    } else {
                        want[(k as usize).min(36)] += 1;
                    }
                }
            }
            assert_eq!(got.counts, want);
            assert_eq!(got.outside, outside);
        }
    }

    #[test]
    fn the_binner_bins_exactly_as_bin_of() {
        let ranges = [
            (-1.0f32, 1.0f32, 96usize),
            (3.0, 19.0, 4),
            (-0.113, 0.125, 96),
            (1e-30, 3e-30, 7),
            (-3.0e38, 3.0e38, 4096),
            (5.0, 5.0000005, 3),
            (0.0, 1.0, 1),
        ];
        for (lo, hi, n) in ranges {
            let b = Binner::new(lo, hi, n);
            let mut xs: Vec<f32> = Vec::new();
            // The edges as f32 and their neighbours, plus a dense sweep and values outside.
            for k in 0..=n {
                let e =
                    (f64::from(lo) + (f64::from(hi) - f64::from(lo)) * k as f64 / n as f64) as f32;
                xs.extend([
                    e,
                    f32::from_bits(e.to_bits() + 1),
                    f32::from_bits(e.to_bits().wrapping_sub(1)),
                ]);
            }
            for i in 0..=10_000u32 {
                let t = i as f32 / 10_000.0;
                xs.push(lo + (hi - lo) * t);
            }
            xs.extend([lo, hi, f32::MAX, f32::MIN, 0.0, -0.0]);
            for x in xs {
                assert_eq!(
                    b.bin(x),
                    bin_of(x, lo, hi, n),
                    "x {x:e} in [{lo:e}, {hi:e}] / {n}"
                );
            }
        }
    }

    #[test]
    fn the_packed_statistics_pass_equals_the_exact_one() {
        // Rows of odd lengths, all finite (packed pass) or holding NaN/±Inf (exact pass), and
        // zeros of both signs: counts and extremes exactly, sums to rounding.
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        for n in [0usize, 1, 7, 8, 9, 31, 100, 1001] {
            for special in [None, Some(0), Some(1), Some(2)] {
                let xs: Vec<f32> = (0..n)
                    .map(|i| match i % 13 {
                        0 => 0.0,
                        5 => -0.0,
                        _ => ((i * 7919) % 201) as f32 / 10.0 - 10.0,
                    })
                    .enumerate()
                    .map(|(i, x)| match special {
                        Some(k) if i == n / 2 => specials[k],
                        _ => x,
                    })
                    .collect();
                let mut fast = Acc::default();
                fast.add_row(&xs[..n / 3]);
                fast.add_row(&xs[n / 3..]);
                let mut exact = Acc::default();
                exact.add_row_exact(&xs);
                let (a, b) = (fast.stats(), exact.stats());
                let what = format!("n {n} special {special:?}");
                assert_eq!(
                    (a.count, a.finite, a.nan, a.pos_inf, a.neg_inf, a.zeros),
                    (b.count, b.finite, b.nan, b.pos_inf, b.neg_inf, b.zeros),
                    "{what}"
                );
                assert_eq!((a.min, a.max), (b.min, b.max), "{what}");
                assert!(
                    (a.mean - b.mean).abs() <= 1e-12 * (1.0 + b.mean.abs()),
                    "{what}"
                );
                assert!((a.std - b.std).abs() <= 1e-9 * (1.0 + b.std), "{what}");
            }
        }
    }

    #[test]
    fn accumulate_matches_a_scalar_reference() {
        // Odd lengths (not a multiple of any vector width), NaN, ±Inf and -0.
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 1e-38];
        for n in [1usize, 3, 7, 8, 13, 33, 100] {
            let rows: Vec<Vec<f32>> = (0..5)
                .map(|r| {
                    (0..n)
                        .map(|c| {
                            if (r * 31 + c * 17) % 11 == 0 {
                                specials[(r + c) % specials.len()]
                            } else {
                                ((r * 13 + c * 7) % 19) as f32 - 9.0
                            }
                        })
                        .collect()
                })
                .collect();
            let mut sum = vec![0f32; n];
            let mut lo = vec![f32::INFINITY; n];
            let mut hi = vec![f32::NEG_INFINITY; n];
            for row in &rows {
                accumulate(row, &mut sum, &mut lo, &mut hi);
            }
            for c in 0..n {
                let col: Vec<f32> = rows.iter().map(|r| r[c]).collect();
                let want_sum: f32 = col.iter().sum();
                let finite_or_inf = col.iter().copied().filter(|x| !x.is_nan());
                let want_lo = finite_or_inf.clone().fold(f32::INFINITY, f32::min);
                let want_hi = finite_or_inf.fold(f32::NEG_INFINITY, f32::max);
                assert!(
                    sum[c].to_bits() == want_sum.to_bits()
                        || (sum[c].is_nan() && want_sum.is_nan()),
                    "n {n} col {c}: sum {} vs {want_sum}",
                    sum[c]
                );
                assert_eq!(lo[c], want_lo, "n {n} col {c}: min");
                assert_eq!(hi[c], want_hi, "n {n} col {c}: max");
            }
        }
    }

    #[test]
    fn lod_with_non_finite_values_over_threads_and_an_unaligned_viewport() {
        let m = plain(700, 515, |r, c| match (r * 515 + c) % 9973 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            k => (k % 613) as f32 / 61.0 - 5.0,
        });
        let vp = Viewport {
            row0: 13,
            col0: 29,
            rows: 681,
            cols: 477,
        };
        let (w, h) = (61u64, 47u64);
        let t = lod(&m, vp, w as u32, h as u32).unwrap();
        for i in 0..h {
            for j in 0..w {
                let (r0, r1) = (edge(vp.rows, h, i), edge(vp.rows, h, i + 1));
                let (c0, c1) = (edge(vp.cols, w, j), edge(vp.cols, w, j + 1));
                let (mut s, mut n, mut peak, mut first) = (0f64, 0u64, 0f32, true);
                for r in r0..r1 {
                    for c in c0..c1 {
                        let x = m.v[((vp.row0 + r) * 515 + vp.col0 + c) as usize];
                        if x.is_finite() {
                            s += f64::from(x);
                            n += 1;
                        }
                        let better = !peak.is_nan() && (x.is_nan() || x.abs() > peak.abs());
                        if first || better {
                            peak = x;
                            first = false;
                        }
                    }
                }
                let k = (i * w + j) as usize;
                // NaN and ±Inf exactly; finite peaks by magnitude (a tie of x and −x may
                // give either sign).
                if peak.is_finite() {
                    assert_eq!(t.peak[k].abs(), peak.abs(), "peak of cell {i},{j}");
                } else {
                    assert_eq!(t.peak[k].to_bits(), peak.to_bits(), "peak of cell {i},{j}");
                }
                let mean = s / n as f64;
                assert!(
                    (f64::from(t.mean[k]) - mean).abs() < 1e-4,
                    "mean of cell {i},{j}"
                );
            }
        }
    }

    #[test]
    fn difference_reuses_its_row_buffer_safely() {
        let a = plain(4, 9, |r, c| (r * 9 + c) as f32);
        let b = plain(4, 9, |_, c| c as f32);
        let c = plain(4, 9, |r, _| r as f32);
        let d = Difference::new(&a, &b).unwrap();
        // A difference of a difference: the inner one runs while the outer holds its buffer.
        let dd = Difference::new(&d, &c).unwrap();
        let mut out = vec![0f32; 9];
        dd.read_row(2, 0, &mut out).unwrap();
        assert!(out.iter().all(|&x| x == 2.0 * 9.0 - 2.0), "{out:?}");
        // Rows of different widths one after the other reuse the buffer.
        let mut short = vec![0f32; 3];
        d.read_row(3, 5, &mut short).unwrap();
        assert_eq!(short, vec![27.0; 3]);
        d.read_row(1, 0, &mut out).unwrap();
        assert_eq!(out, vec![9.0; 9]);
    }

    #[test]
    fn shape_folds_higher_dims_into_rows() {
        assert_eq!(
            Shape::of_dims(&[64, 3, 5]),
            Some(Shape { rows: 15, cols: 64 })
        );
        assert_eq!(Shape::of_dims(&[7]), Some(Shape { rows: 1, cols: 7 }));
        assert_eq!(Shape::of_dims(&[u64::MAX, 2]), None);
    }

    #[test]
    fn viewport_bounds_are_checked() {
        let s = Shape { rows: 4, cols: 8 };
        let ok = Viewport {
            row0: 1,
            col0: 2,
            rows: 3,
            cols: 6,
        };
        assert!(ok.check(s).is_ok());
        let past = Viewport { cols: 7, ..ok };
        assert!(matches!(past.check(s), Err(LodError::OutsideMatrix { .. })));
        let empty = Viewport { rows: 0, ..ok };
        assert!(matches!(
            empty.check(s),
            Err(LodError::EmptyViewport { .. })
        ));
        let wrap = Viewport {
            row0: u64::MAX,
            ..ok
        };
        assert!(wrap.check(s).is_err());
    }

    #[test]
    fn peak_prefers_nan_then_magnitude() {
        let m = plain(2, 4, |r, c| match (r, c) {
            (0, 1) => -9.0,
            (1, 3) => f32::NAN,
            (1, 0) => f32::NEG_INFINITY,
            _ => 1.0,
        });
        let t = lod(&m, m.shape.full(), 2, 1).unwrap();
        assert_eq!(t.peak[0], f32::NEG_INFINITY); // cols 0..2: -inf beats -9
        assert!(t.peak[1].is_nan()); // cols 2..4: NaN
                                     // Means of finite values only: cols 0..2 = {1, -9, 1} → -7/3.
        assert!((t.mean[0] - (-7.0 / 3.0)).abs() < 1e-6);
        assert_eq!(t.mean[1], 1.0); // {1, 1, 1}
    }

    #[test]
    fn finite_and_non_finite_cells_mix_in_one_row() {
        // Three cells of 2×2: finite, NaN inside, +Inf inside.
        let m = plain(2, 6, |r, c| match (r, c) {
            (1, 2) => f32::NAN,
            (0, 5) => f32::INFINITY,
            _ => (r * 6 + c) as f32 - 5.0,
        });
        let t = lod(&m, m.shape.full(), 3, 1).unwrap();
        // Cell 0: {-5, -4, 1, 2} → mean -1.5, peak -5.
        assert_eq!((t.mean[0], t.peak[0]), (-1.5, -5.0));
        // Cell 1: {-3, -2, NaN, 4} → mean of finite -1/3, peak NaN.
        assert!((t.mean[1] + 1.0 / 3.0).abs() < 1e-6);
        assert!(t.peak[1].is_nan());
        // Cell 2: {-1, +Inf, 5, 6} → mean 10/3, peak +Inf.
        assert!((t.mean[2] - 10.0 / 3.0).abs() < 1e-6);
        assert_eq!(t.peak[2], f32::INFINITY);
    }

    #[test]
    fn every_element_lands_in_one_cell() {
        // Counting with value 1 everywhere: sums of means × cell sizes = element count.
        let m = plain(37, 53, |_, _| 1.0);
        let t = lod(&m, m.shape.full(), 10, 7).unwrap();
        assert_eq!((t.width, t.height), (10, 7));
        let mut total = 0u64;
        for i in 0..7u64 {
            for j in 0..10u64 {
                let rows = edge(37, 7, i + 1) - edge(37, 7, i);
                let cols = edge(53, 10, j + 1) - edge(53, 10, j);
                assert!(rows > 0 && cols > 0);
                total += rows * cols;
            }
        }
        assert_eq!(total, 37 * 53);
        assert!(t.mean.iter().all(|&x| x == 1.0));
    }

    #[test]
    fn small_viewport_is_one_cell_per_element() {
        let m = plain(10, 10, |r, c| (r * 10 + c) as f32);
        let vp = Viewport {
            row0: 3,
            col0: 4,
            rows: 2,
            cols: 3,
        };
        let t = lod(&m, vp, 100, 100).unwrap();
        assert_eq!((t.width, t.height), (3, 2));
        assert_eq!(t.mean, vec![34.0, 35.0, 36.0, 44.0, 45.0, 46.0]);
        assert_eq!(t.peak, t.mean);
        assert_eq!(window(&m, vp).unwrap(), t.mean);
    }

    #[test]
    fn sizes_are_refused_before_allocating() {
        let m = plain(4, 4, |_, _| 0.0);
        let full = m.shape.full();
        assert!(matches!(lod(&m, full, 0, 4), Err(LodError::BadSize { .. })));
        assert!(matches!(
            lod(&m, full, 4, 5000),
            Err(LodError::BadSize { .. })
        ));
        assert!(matches!(
            histogram(&m, full, 0, None),
            Err(LodError::BadSize { .. })
        ));
        assert!(matches!(
            histogram(&m, full, 10, Some((1.0, 1.0))),
            Err(LodError::BadRange { .. })
        ));
        let big = Plain {
            shape: Shape {
                rows: 1 << 40,
                cols: 1 << 12,
            },
            v: vec![],
        };
        assert!(matches!(
            window(&big, big.shape.full()),
            Err(LodError::BadSize { .. })
        ));
    }

    #[test]
    fn histogram_and_stats_count_what_they_see() {
        let m = plain(4, 5, |r, c| match (r, c) {
            (0, 0) => f32::NAN,
            (0, 1) => f32::INFINITY,
            (0, 2) => f32::NEG_INFINITY,
            _ => (r * 5 + c) as f32, // 3..=19
        });
        let h = histogram(&m, m.shape.full(), 4, None).unwrap();
        assert_eq!((h.stats.nan, h.stats.pos_inf, h.stats.neg_inf), (1, 1, 1));
        assert_eq!(h.stats.finite, 17);
        assert_eq!((h.lo, h.hi), (3.0, 19.0));
        // Bins of width 4: [3,7) [7,11) [11,15) [15,19].
        assert_eq!(h.counts, vec![4, 4, 4, 5]);
        let mean = (3..=19).sum::<u32>() as f64 / 17.0;
        assert!((h.stats.mean - mean).abs() < 1e-9);
        let ranged = histogram(&m, m.shape.full(), 2, Some((10.0, 12.0))).unwrap();
        assert_eq!(ranged.counts, vec![1, 2]); // 10 | 11, 12
        assert_eq!(ranged.outside, 14);
    }

    #[test]
    fn difference_subtracts_and_checks_shapes() {
        let a = plain(3, 4, |r, c| (r * 4 + c) as f32);
        let b = plain(3, 4, |_, c| c as f32);
        let d = Difference::new(&a, &b).unwrap();
        let w = window(&d, a.shape.full()).unwrap();
        assert_eq!(w, vec![0., 0., 0., 0., 4., 4., 4., 4., 8., 8., 8., 8.]);
        let c = plain(4, 3, |_, _| 0.0);
        assert!(Difference::new(&a, &c).is_err());
    }

    #[test]
    fn threaded_and_single_thread_agree() {
        // Large enough to be split over threads.
        let m = plain(600, 512, |r, c| {
            ((r * 7919 + c * 104729) % 1000) as f32 - 500.0
        });
        let full = m.shape.full();
        let t = lod(&m, full, 64, 60).unwrap();
        for i in 0..60u64 {
            for j in 0..64u64 {
                let (r0, r1) = (edge(600, 60, i), edge(600, 60, i + 1));
                let (c0, c1) = (edge(512, 64, j), edge(512, 64, j + 1));
                let mut best = f32::NAN;
                let mut first = true;
                let mut s = 0f64;
                for r in r0..r1 {
                    for c in c0..c1 {
                        let x = m.v[(r * 512 + c) as usize];
                        s += f64::from(x);
                        if first || x.abs() > best.abs() {
                            best = x;
                            first = false;
                        }
                    }
                }
                let k = (i * 64 + j) as usize;
                assert_eq!(t.peak[k].abs(), best.abs());
                let mean = s / ((r1 - r0) * (c1 - c0)) as f64;
                assert!((f64::from(t.mean[k]) - mean).abs() < 1e-3, "cell {i},{j}");
            }
        }
    }
}
