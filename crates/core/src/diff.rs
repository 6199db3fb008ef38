//! Tensor-by-tensor comparison of two models.
//!
//! Overview: the tensors of model A and model B are aligned by name. For every pair the diff
//! engine reports how far apart the two tensors are, as numbers a user can rank by:
//! maximum and mean absolute difference, RMSE, relative error (‖A−B‖/‖A‖), cosine similarity,
//! signal-to-noise ratio in dB (A is the signal, A−B the noise) and the count of elements whose
//! values differ. Tensors found in only one model are listed apart.
//!
//! - **Fast path**: two tensors of the same type whose bytes are equal are reported identical
//!   without dequantizing anything (a `memcmp`, i.e. memory speed).
//! - **Across types** (F16 against Q4_K, say): both sides are dequantized to f32 through
//!   [`hotpatch_quant::dequantize`] in fixed-size chunks, so memory use does not grow with the
//!   tensor's size ([`CHUNK_ELEMENTS`] values per side).
//! - **Difference map**: optionally, a downsampled picture of |A−B| per tensor (the tensor seen
//!   as rows × `ne[0]` columns, max-abs pooled to at most W×H cells) for a heatmap.
//! - **Largest differences**: [`top_differences`] lists the `k` elements of one pair with the
//!   largest |A−B| (row, column, both values), in O(k) memory.
//! - **Against the attached model**: [`diff_attached`], [`top_differences_attached`] and
//!   [`with_attached`] read side A from a session's engine (staged edits included).
//! - **Progress and cancel**: a callback receives the bytes processed so far; an [`AtomicBool`]
//!   stops the run between chunks with [`DiffError::Cancelled`].
//!
//! Non-finite values (NaN, ±Inf) never poison the metrics: element pairs where either side is not
//! finite are left out of the numeric metrics and counted in [`TensorDiff::non_finite`]; they
//! still count as differing unless both sides hold the same non-finite value.
//!
//! ```no_run
//! use hotpatch_core::diff::{diff_models, DiffOptions, DiffTensor};
//! # fn demo(a: Vec<DiffTensor<'_>>, b: Vec<DiffTensor<'_>>) {
//! let report = diff_models(&a, &b, &DiffOptions::default(), &mut |_| {}, None).unwrap();
//! for t in &report.tensors {
//!     println!("{} rmse={:?}", t.name, t.rmse);
//! }
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

mod attached;
mod top;

pub use attached::{
    diff_attached, pair, top_differences_attached, with_attached, OtherDiffError, PROGRESS_REPORTS,
};
pub use top::{top_differences, DiffPoint, MAX_TOP_K};

use hotpatch_quant::GgmlType;
use serde::Serialize;

/// Values dequantized per side and per step. A multiple of every ggml block size (1, 32, 64,
/// 128, 256), so a chunk boundary never splits a block; 16 Ki f32 = 64 KiB per side stays in L2.
pub const CHUNK_ELEMENTS: usize = 16 * 1024;

/// The largest difference map accepted (cells), so a caller cannot ask for an unbounded buffer.
pub const MAX_MAP_CELLS: usize = 4096 * 4096;

/// One tensor of a model, as the diff engine sees it: its name, type, shape and raw data.
#[derive(Debug, Clone, Copy)]
pub struct DiffTensor<'a> {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: &'a str,
    /// The raw ggml type id as stored in the file.
    pub type_id: u32,
    /// Dimensions in ggml order (`ne[0]` first, the contiguous one).
    pub dims: &'a [u64],
    /// The tensor's bytes (exactly the size its type and shape imply).
    pub data: &'a [u8],
}

impl<'a> DiffTensor<'a> {
    /// The tensor `t` of an index with its bytes `data`.
    pub fn of(t: &'a hotpatch_gguf::TensorInfo, data: &'a [u8]) -> Self {
        DiffTensor {
            name: &t.name,
            type_id: t.ty.id(),
            dims: &t.dims,
            data,
        }
    }

    /// The tensor's type, if the id is one ggml knows.
    pub fn ggml_type(&self) -> Option<GgmlType> {
        GgmlType::from_id(self.type_id)
    }

    fn type_name(&self) -> String {
        match self.ggml_type() {
            Some(t) => t.name().to_string(),
            None => format!("unknown({})", self.type_id),
        }
    }

    fn n_elements(&self) -> Option<u64> {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }
}

/// The tensors of an opened model (single file or split), ready for [`diff_models`].
///
/// Fails only if a tensor's data range is outside its file, which the reader already refuses.
pub fn tensors_of(
    model: &hotpatch_gguf::GgufModel,
) -> Result<Vec<DiffTensor<'_>>, hotpatch_gguf::GgufError> {
    model
        .tensors
        .iter()
        .map(|t| Ok(DiffTensor::of(t, model.tensor_data(t)?)))
        .collect()
}

/// Options of a diff run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffOptions {
    /// Compute a difference map of at most `(width, height)` cells per tensor.
    pub map: Option<(usize, usize)>,
    /// Worker threads (tensors are distributed among them). 0 or 1 = the calling thread only.
    pub threads: usize,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            map: None,
            threads: 1,
        }
    }
}

/// Progress of a diff run, passed to the progress callback after every chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffProgress {
    /// Bytes of tensor data (both sides) processed so far.
    pub done_bytes: u64,
    /// Bytes of tensor data (both sides) of every aligned pair.
    pub total_bytes: u64,
    /// Aligned tensor pairs finished.
    pub done_tensors: usize,
    /// Aligned tensor pairs in total.
    pub total_tensors: usize,
}

/// Why a diff run stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    /// The cancel flag was raised.
    #[error("diff cancelled")]
    Cancelled,
    /// The requested difference map is empty or too large.
    #[error("difference map {width}x{height} is invalid: each side must be at least 1 and the map at most {max} cells")]
    BadMapSize {
        /// Requested width.
        width: usize,
        /// Requested height.
        height: usize,
        /// [`MAX_MAP_CELLS`].
        max: usize,
    },
    /// A count (of elements to list) is zero or too large.
    #[error("count {count} is invalid: it must be between 1 and {max}")]
    BadCount {
        /// The count asked for.
        count: usize,
        /// The largest count accepted.
        max: usize,
    },
    /// A pair that cannot be compared value by value (shapes differ, no codec, bad size).
    #[error("tensor '{name}' cannot be compared: {why}")]
    NotComparable {
        /// The tensor.
        name: String,
        /// Why.
        why: String,
    },
    /// A tensor named in a request is not in one of the models.
    #[error("model {model} has no tensor named '{name}'")]
    NoSuchTensor {
        /// `"A"` or `"B"`.
        model: &'static str,
        /// The name.
        name: String,
    },
    /// A model's tensor data could not be read.
    #[error("model {model}: {why}")]
    Unreadable {
        /// `"A"` or `"B"`.
        model: &'static str,
        /// Why.
        why: String,
    },
    /// The same tensor name appears twice in one model.
    #[error("model {model}: tensor '{name}' appears more than once")]
    DuplicateTensor {
        /// `"A"` or `"B"`.
        model: &'static str,
        /// The duplicated name.
        name: String,
    },
}

/// How a pair of tensors was compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "reason")]
pub enum DiffStatus {
    /// Both sides were compared value by value (or byte by byte on the fast path).
    Compared,
    /// The shapes differ; no value comparison is possible.
    ShapeMismatch,
    /// A side could not be turned into f32 values (no codec, unknown type, bad size).
    Unsupported(String),
}

/// A downsampled map of |A−B| for one tensor: `height` rows of `width` cells, row-major,
/// each cell the maximum |A−B| over the elements it covers (+∞ where a pair is not finite
/// and differs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffMap {
    /// Cells per row (≤ the requested width and ≤ `ne[0]`).
    pub width: usize,
    /// Rows of cells (≤ the requested height and ≤ the tensor's row count).
    pub height: usize,
    /// The tensor's element rows (product of `dims[1..]`).
    pub source_rows: u64,
    /// The tensor's row length (`dims[0]`).
    pub source_cols: u64,
    /// `width * height` cells, row-major.
    pub cells: Vec<f32>,
}

/// The comparison of one tensor present in both models.
///
/// Metrics are `None` when the pair was not compared (see [`TensorDiff::status`]), and in the
/// specific undefined cases documented per field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorDiff {
    /// Tensor name.
    pub name: String,
    /// Type in model A (ggml name).
    pub type_a: String,
    /// Type in model B (ggml name).
    pub type_b: String,
    /// Dimensions in model A (ggml order).
    pub dims_a: Vec<u64>,
    /// Dimensions in model B (ggml order).
    pub dims_b: Vec<u64>,
    /// Elements compared (those of A when the shapes differ).
    pub n_elements: u64,
    /// How the pair was compared.
    pub status: DiffStatus,
    /// Same type and same bytes (the fast path).
    pub bytes_identical: bool,
    /// Every element has the same value on both sides (`-0 == +0`; NaN equals NaN).
    pub identical: bool,
    /// Elements whose values differ.
    pub n_diff: u64,
    /// Element pairs left out of the numeric metrics because a side is NaN or ±Inf.
    pub non_finite: u64,
    /// max |A−B|.
    pub max_abs: Option<f64>,
    /// mean |A−B|.
    pub mean_abs: Option<f64>,
    /// sqrt(mean (A−B)²).
    pub rmse: Option<f64>,
    /// ‖A−B‖₂ / ‖A‖₂; `None` when A is all zeros and B is not.
    pub rel_error: Option<f64>,
    /// A·B / (‖A‖‖B‖); 1 when both are all zeros, `None` when exactly one is.
    pub cosine: Option<f64>,
    /// 10·log10(‖A‖² / ‖A−B‖²); `None` (∞) when there is no difference.
    pub snr_db: Option<f64>,
    /// The downsampled difference map, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<DiffMap>,
}

/// A tensor present in only one of the two models.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoneTensor {
    /// Tensor name.
    pub name: String,
    /// Type (ggml name).
    #[serde(rename = "type")]
    pub ty: String,
    /// Dimensions (ggml order).
    pub dims: Vec<u64>,
}

/// The result of a diff run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffReport {
    /// Tensors of both models, most different first: pairs that could not be compared value by
    /// value (shape mismatch, no codec) first, then by RMSE descending, then by name.
    pub tensors: Vec<TensorDiff>,
    /// Tensors only in model A.
    pub only_in_a: Vec<LoneTensor>,
    /// Tensors only in model B.
    pub only_in_b: Vec<LoneTensor>,
    /// Pairs whose values are identical.
    pub identical_count: usize,
    /// Bytes of tensor data read (both sides).
    pub bytes_compared: u64,
}

/// Compares two models given as tensor lists. See the [module docs](self).
///
/// `progress` is called after every chunk (from the calling thread); `cancel`, when raised,
/// stops the run at the next chunk.
pub fn diff_models(
    a: &[DiffTensor<'_>],
    b: &[DiffTensor<'_>],
    options: &DiffOptions,
    progress: &mut dyn FnMut(DiffProgress),
    cancel: Option<&AtomicBool>,
) -> Result<DiffReport, DiffError> {
    if let Some((w, h)) = options.map {
        if w == 0 || h == 0 || w.saturating_mul(h) > MAX_MAP_CELLS {
            return Err(DiffError::BadMapSize {
                width: w,
                height: h,
                max: MAX_MAP_CELLS,
            });
        }
    }
    let index_b = name_index(b, "B")?;
    let index_a = name_index(a, "A")?;

    let mut pairs = Vec::new();
    let mut only_in_a = Vec::new();
    for ta in a {
        match index_b.get(ta.name) {
            Some(&j) => pairs.push((ta, &b[j])),
            None => only_in_a.push(lone(ta)),
        }
    }
    let only_in_b = b
        .iter()
        .filter(|tb| !index_a.contains_key(tb.name))
        .map(lone)
        .collect();

    let never = AtomicBool::new(false);
    let cancel = cancel.unwrap_or(&never);
    let (mut tensors, bytes_compared) = compare_pairs(&pairs, options, progress, cancel)?;

    tensors.sort_by(|x, y| {
        let rank = |t: &TensorDiff| matches!(t.status, DiffStatus::Compared);
        rank(x)
            .cmp(&rank(y))
            .then_with(|| y.rmse.unwrap_or(0.0).total_cmp(&x.rmse.unwrap_or(0.0)))
            .then_with(|| x.name.cmp(&y.name))
    });
    let identical_count = tensors.iter().filter(|t| t.identical).count();
    Ok(DiffReport {
        tensors,
        only_in_a,
        only_in_b,
        identical_count,
        bytes_compared,
    })
}

fn name_index<'a>(
    ts: &'a [DiffTensor<'_>],
    model: &'static str,
) -> Result<HashMap<&'a str, usize>, DiffError> {
    let mut m = HashMap::with_capacity(ts.len());
    for (i, t) in ts.iter().enumerate() {
        if m.insert(t.name, i).is_some() {
            return Err(DiffError::DuplicateTensor {
                model,
                name: t.name.to_string(),
            });
        }
    }
    Ok(m)
}

fn lone(t: &DiffTensor<'_>) -> LoneTensor {
    LoneTensor {
        name: t.name.to_string(),
        ty: t.type_name(),
        dims: t.dims.to_vec(),
    }
}

/// Elements of one piece of work. A tensor larger than this is split into pieces that any
/// thread may take, so one big tensor (a 262,144 × 640 token embedding is 70 % of a small
/// model's bytes) keeps every core busy instead of landing on one thread. A multiple of
/// [`CHUNK_ELEMENTS`], hence of every block size.
pub const PIECE_ELEMENTS: usize = 64 * CHUNK_ELEMENTS;

/// A pair that needs its values compared, once its cheap checks passed.
struct ValuePair<'p> {
    /// Index into the aligned pairs.
    pair: usize,
    a: &'p DiffTensor<'p>,
    b: &'p DiffTensor<'p>,
    ta: GgmlType,
    tb: GgmlType,
    n: usize,
    geometry: Option<MapGeometry>,
}

/// One piece: elements `start..end` of value pair `vp`.
#[derive(Clone, Copy)]
struct Piece {
    vp: usize,
    start: usize,
    end: usize,
}

/// What a piece found.
enum PieceOut {
    /// Same type and the same bytes over the piece: values are computed only if another piece
    /// of the pair differs (the second phase).
    SameBytes,
    /// Values compared.
    Values {
        acc: Acc,
        /// Max-|A−B| cells of the map rows this piece touches: (first cell row, cells).
        map: Option<(usize, Vec<f32>)>,
    },
    /// A side failed to decode (the pair becomes [`DiffStatus::Unsupported`]).
    Failed(String),
}

/// Compares every aligned pair: cheap checks first (shapes, types, sizes), then the values in
/// pieces of at most [`PIECE_ELEMENTS`] spread over `options.threads` threads (the calling
/// thread among them, which alone calls `progress`, after each of its pieces: a few hundred
/// calls for a whole model, whatever its size). Returns the diffs in pair order and the bytes
/// read.
fn compare_pairs(
    pairs: &[(&DiffTensor<'_>, &DiffTensor<'_>)],
    options: &DiffOptions,
    progress: &mut dyn FnMut(DiffProgress),
    cancel: &AtomicBool,
) -> Result<(Vec<TensorDiff>, u64), DiffError> {
    let total_bytes: u64 = pairs
        .iter()
        .map(|(x, y)| (x.data.len() + y.data.len()) as u64)
        .sum();
    let mut out: Vec<TensorDiff> = Vec::with_capacity(pairs.len());
    let mut values: Vec<ValuePair<'_>> = Vec::new();
    let mut checked_bytes = 0u64;
    let mut checked_tensors = 0usize;
    for (i, (a, b)) in pairs.iter().enumerate() {
        let (d, typed) = precheck(a, b);
        match typed {
            Some((ta, tb)) => {
                let n = usize::try_from(d.n_elements).unwrap_or(usize::MAX);
                values.push(ValuePair {
                    pair: i,
                    a,
                    b,
                    ta,
                    tb,
                    n,
                    geometry: options
                        .map
                        .map(|(w, h)| MapGeometry::new(a.dims, d.n_elements, w, h)),
                });
            }
            None => {
                checked_bytes += (a.data.len() + b.data.len()) as u64;
                checked_tensors += 1;
            }
        }
        out.push(d);
    }

    // Phase 1: every piece of every value pair.
    let mut pieces = Vec::new();
    let mut first_piece = Vec::with_capacity(values.len());
    for (vp, v) in values.iter().enumerate() {
        first_piece.push(pieces.len());
        let mut start = 0usize;
        loop {
            let end = v.n.min(start.saturating_add(PIECE_ELEMENTS));
            pieces.push(Piece { vp, start, end });
            start = end;
            if start >= v.n {
                break;
            }
        }
    }
    first_piece.push(pieces.len());
    let piece_bytes = |p: &Piece| -> u64 {
        let v = &values[p.vp];
        let (ra, rb) = (
            byte_range(v.ta, p.start, p.end - p.start),
            byte_range(v.tb, p.start, p.end - p.start),
        );
        (ra.len() + rb.len()) as u64
    };
    let pieces_left: Vec<AtomicUsize> = (0..values.len()).map(|_| AtomicUsize::new(0)).collect();
    let meter = Meter {
        bytes: AtomicU64::new(checked_bytes),
        tensors: AtomicUsize::new(checked_tensors),
        total_bytes,
        total_tensors: pairs.len(),
    };
    progress(meter.snapshot());
    let results = run_pieces(options.threads, &pieces, cancel, progress, &meter, |p| {
        let out = diff_piece(&values[p.vp], p.start, p.end, cancel);
        meter.bytes.fetch_add(piece_bytes(p), Ordering::Relaxed);
        out
    })?;

    // Phase 2: the same-bytes pieces of pairs where some other piece differs need their values
    // (for ‖A‖, A·B) — A alone is decoded, as B's values are the same.
    let mut second = Vec::new();
    let mut needs_second = vec![false; values.len()];
    for vp in 0..values.len() {
        let range = first_piece[vp]..first_piece[vp + 1];
        let all_same = results[range.clone()]
            .iter()
            .all(|r| matches!(r, PieceOut::SameBytes));
        let failed = results[range.clone()]
            .iter()
            .any(|r| matches!(r, PieceOut::Failed(_)));
        if !all_same && !failed {
            for i in range {
                if matches!(results[i], PieceOut::SameBytes) {
                    second.push(pieces[i]);
                    needs_second[vp] = true;
                }
            }
        }
    }
    for (vp, needs) in needs_second.iter().enumerate() {
        if !needs {
            // Finished in phase 1 (the others finish with their last phase-2 piece).
            meter.tensors.fetch_add(1, Ordering::Relaxed);
        } else {
            pieces_left[vp].store(
                second.iter().filter(|p| p.vp == vp).count(),
                Ordering::Relaxed,
            );
        }
    }
    let second_results = run_pieces(options.threads, &second, cancel, progress, &meter, |p| {
        let out = same_piece(&values[p.vp], p.start, p.end, cancel);
        if pieces_left[p.vp].fetch_sub(1, Ordering::AcqRel) == 1 {
            meter.tensors.fetch_add(1, Ordering::Relaxed);
        }
        out
    })?;
    progress(meter.snapshot());

    // Merge, per pair, in piece order (so the sums do not depend on the thread count).
    let mut results: Vec<Option<PieceOut>> = results.into_iter().map(Some).collect();
    for (p, r) in second.iter().zip(second_results) {
        let i = first_piece[p.vp]
            + pieces[first_piece[p.vp]..first_piece[p.vp + 1]]
                .iter()
                .position(|q| q.start == p.start)
                .expect("a second-phase piece is a first-phase piece");
        results[i] = Some(r);
    }
    for (vp, v) in values.into_iter().enumerate() {
        let d = &mut out[v.pair];
        let mine = &mut results[first_piece[vp]..first_piece[vp + 1]];
        if mine.iter().all(|r| matches!(r, Some(PieceOut::SameBytes))) {
            d.bytes_identical = true;
            d.identical = true;
            d.max_abs = Some(0.0);
            d.mean_abs = Some(0.0);
            d.rmse = Some(0.0);
            d.rel_error = Some(0.0);
            // Cosine of a tensor with itself is 1 unless it is all zeros: still 1 by our
            // convention.
            d.cosine = Some(1.0);
            d.map = v.geometry.map(|g| g.into_map(Vec::new()));
            continue;
        }
        if let Some(why) = mine.iter().find_map(|r| match r {
            Some(PieceOut::Failed(why)) => Some(why.clone()),
            _ => None,
        }) {
            d.status = DiffStatus::Unsupported(why);
            continue;
        }
        let mut acc = Acc::default();
        let mut cells = v.geometry.as_ref().map(MapGeometry::empty_cells);
        for r in mine.iter_mut() {
            if let Some(PieceOut::Values { acc: part, map }) = r.take() {
                acc.merge(&part);
                if let (Some(cells), Some(g), Some((row0, part))) =
                    (cells.as_mut(), v.geometry.as_ref(), map)
                {
                    let at = row0 * g.width;
                    for (c, p) in cells[at..at + part.len()].iter_mut().zip(part) {
                        *c = if p > *c { p } else { *c };
                    }
                }
            }
        }
        acc.fill(d);
        d.map = v.geometry.map(|g| g.into_map(cells.unwrap_or_default()));
    }
    Ok((out, meter.bytes.load(Ordering::Relaxed)))
}

/// Progress shared by the workers: plain counters, read by the calling thread when it reports.
struct Meter {
    bytes: AtomicU64,
    tensors: AtomicUsize,
    total_bytes: u64,
    total_tensors: usize,
}

impl Meter {
    fn snapshot(&self) -> DiffProgress {
        DiffProgress {
            done_bytes: self.bytes.load(Ordering::Relaxed),
            total_bytes: self.total_bytes,
            done_tensors: self.tensors.load(Ordering::Relaxed),
            total_tensors: self.total_tensors,
        }
    }
}

/// Runs `work` on every piece with `threads` threads (the calling thread is one of them and
/// reports progress after each piece it finishes). Results come back in piece order.
/// [`DiffError::Cancelled`] once `cancel` is raised.
fn run_pieces<F>(
    threads: usize,
    pieces: &[Piece],
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(DiffProgress),
    meter: &Meter,
    work: F,
) -> Result<Vec<PieceOut>, DiffError>
where
    F: Fn(&Piece) -> PieceOut + Sync,
{
    let next = AtomicUsize::new(0);
    let take = |out: &mut Vec<(usize, PieceOut)>| -> bool {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        match pieces.get(i) {
            Some(p) => {
                out.push((i, work(p)));
                true
            }
            None => false,
        }
    };
    let helpers = threads.clamp(1, pieces.len().max(1)) - 1;
    let mut mine = Vec::new();
    let theirs: Vec<Vec<(usize, PieceOut)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..helpers)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    while take(&mut out) {}
                    out
                })
            })
            .collect();
        while take(&mut mine) {
            progress(meter.snapshot());
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    if cancel.load(Ordering::Relaxed) {
        return Err(DiffError::Cancelled);
    }
    let mut all: Vec<Option<PieceOut>> = (0..pieces.len()).map(|_| None).collect();
    for (i, r) in mine.into_iter().chain(theirs.into_iter().flatten()) {
        all[i] = Some(r);
    }
    all.into_iter()
        .map(|r| r.ok_or(DiffError::Cancelled))
        .collect()
}

/// The metadata part of a pair's diff, and the two types when the values can be compared.
fn precheck(a: &DiffTensor<'_>, b: &DiffTensor<'_>) -> (TensorDiff, Option<(GgmlType, GgmlType)>) {
    let mut d = TensorDiff {
        name: a.name.to_string(),
        type_a: a.type_name(),
        type_b: b.type_name(),
        dims_a: a.dims.to_vec(),
        dims_b: b.dims.to_vec(),
        n_elements: a.n_elements().unwrap_or(0),
        status: DiffStatus::Compared,
        bytes_identical: false,
        identical: false,
        n_diff: 0,
        non_finite: 0,
        max_abs: None,
        mean_abs: None,
        rmse: None,
        rel_error: None,
        cosine: None,
        snr_db: None,
        map: None,
    };
    if a.dims != b.dims {
        d.status = DiffStatus::ShapeMismatch;
        return (d, None);
    }
    let ta = match checked_type(a) {
        Ok(t) => t,
        Err(why) => {
            d.status = DiffStatus::Unsupported(format!("model A: {why}"));
            return (d, None);
        }
    };
    match checked_type(b) {
        Ok(tb) => (d, Some((ta, tb))),
        Err(why) => {
            d.status = DiffStatus::Unsupported(format!("model B: {why}"));
            (d, None)
        }
    }
}

/// Compares elements `start..end` of a value pair: bytes first when the types match, values
/// otherwise (in chunks of [`CHUNK_ELEMENTS`], checking `cancel` between them).
fn diff_piece(v: &ValuePair<'_>, start: usize, end: usize, cancel: &AtomicBool) -> PieceOut {
    let len = end - start;
    if v.ta == v.tb {
        let r = byte_range(v.ta, start, len);
        if v.a.data[r.clone()] == v.b.data[r] {
            return PieceOut::SameBytes;
        }
    }
    let mut acc = Acc::default();
    let mut map = v.geometry.as_ref().map(|g| g.piece_cells(start, end));
    let mut va = vec![0f32; CHUNK_ELEMENTS.min(len)];
    let mut vb = vec![0f32; CHUNK_ELEMENTS.min(len)];
    let mut at = start;
    while at < end {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let n = CHUNK_ELEMENTS.min(end - at);
        let (ra, rb) = (byte_range(v.ta, at, n), byte_range(v.tb, at, n));
        let (ca, cb) = (&mut va[..n], &mut vb[..n]);
        if let Err(e) = hotpatch_quant::dequantize(v.ta, &v.a.data[ra], ca) {
            return PieceOut::Failed(format!("model A: {e}"));
        }
        if let Err(e) = hotpatch_quant::dequantize(v.tb, &v.b.data[rb], cb) {
            return PieceOut::Failed(format!("model B: {e}"));
        }
        acc.add(ca, cb);
        if let (Some(g), Some((row0, cells))) = (v.geometry.as_ref(), map.as_mut()) {
            g.pool(cells, *row0, at as u64, ca, cb);
        }
        at += n;
    }
    PieceOut::Values { acc, map }
}

/// The values of a piece whose bytes are the same on both sides: A is decoded and compared
/// with itself (exactly what comparing with B's identical values gives; the map stays 0).
fn same_piece(v: &ValuePair<'_>, start: usize, end: usize, cancel: &AtomicBool) -> PieceOut {
    let mut acc = Acc::default();
    let mut va = vec![0f32; CHUNK_ELEMENTS.min(end - start)];
    let mut at = start;
    while at < end {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let n = CHUNK_ELEMENTS.min(end - at);
        let ca = &mut va[..n];
        if let Err(e) = hotpatch_quant::dequantize(v.ta, &v.a.data[byte_range(v.ta, at, n)], ca) {
            return PieceOut::Failed(format!("model A: {e}"));
        }
        acc.add(ca, ca);
        at += n;
    }
    PieceOut::Values { acc, map: None }
}

/// The tensor's type if it has a dequantizer and its data has exactly the implied size.
fn checked_type(t: &DiffTensor<'_>) -> Result<GgmlType, String> {
    let ty = t
        .ggml_type()
        .ok_or_else(|| format!("unknown tensor type id {}", t.type_id))?;
    if !ty.can_dequantize() {
        return Err(format!("no dequantizer for {ty}"));
    }
    let Some((&ne0, rest)) = t.dims.split_first() else {
        return Err("tensor has no dimensions".to_string());
    };
    let rows = rest
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| "element count overflows".to_string())?;
    let row = ty.row_bytes(ne0).ok_or_else(|| {
        format!(
            "row length {ne0} is not a whole number of {ty} blocks ({})",
            ty.block_size()
        )
    })?;
    match (row as u64).checked_mul(rows) {
        Some(bytes) if bytes == t.data.len() as u64 => Ok(ty),
        Some(bytes) => Err(format!(
            "{} bytes of data where {ty} {:?} needs {bytes}",
            t.data.len(),
            t.dims
        )),
        None => Err("data size overflows".to_string()),
    }
}

fn ne0_of(dims: &[u64]) -> u64 {
    dims.first().copied().unwrap_or(1)
}

/// Byte range of elements `start..start+len` (both multiples of the block size).
fn byte_range(ty: GgmlType, start: usize, len: usize) -> std::ops::Range<usize> {
    let (bs, ts) = (ty.block_size(), ty.type_size());
    let s = start / bs * ts;
    s..s + len / bs * ts
}

/// Running sums of one pair; the hot loop keeps per-lane partial sums so it vectorizes.
#[derive(Default)]
struct Acc {
    n_finite: u64,
    n_diff: u64,
    non_finite: u64,
    max_abs: f64,
    sum_abs: f64,
    sum_sq: f64,
    sum_aa: f64,
    sum_bb: f64,
    sum_ab: f64,
}

const LANES: usize = 8;

impl Acc {
    fn add(&mut self, a: &[f32], b: &[f32]) {
        // Sub-blocks of 256 are summed in f32 lanes (no error to speak of over 32 terms per lane),
        // then folded into f64, so both speed and accuracy hold over billions of elements.
        for (sa, sb) in a.chunks(256).zip(b.chunks(256)) {
            let mut abs = [0f32; LANES];
            let mut sq = [0f32; LANES];
            let mut aa = [0f32; LANES];
            let mut bb = [0f32; LANES];
            let mut ab = [0f32; LANES];
            let mut mx = [0f32; LANES];
            let mut ne = [0u32; LANES];
            let mut ca = sa.chunks_exact(LANES);
            let mut cb = sb.chunks_exact(LANES);
            for (xa, xb) in (&mut ca).zip(&mut cb) {
                for l in 0..LANES {
                    let (x, y) = (xa[l], xb[l]);
                    let dd = x - y;
                    let ad = dd.abs();
                    abs[l] += ad;
                    sq[l] += dd * dd;
                    aa[l] += x * x;
                    bb[l] += y * y;
                    ab[l] += x * y;
                    mx[l] = if ad > mx[l] { ad } else { mx[l] };
                    ne[l] += u32::from(x != y);
                }
            }
            for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
                let dd = x - y;
                let ad = dd.abs();
                abs[0] += ad;
                sq[0] += dd * dd;
                aa[0] += x * x;
                bb[0] += y * y;
                ab[0] += x * y;
                mx[0] = if ad > mx[0] { ad } else { mx[0] };
                ne[0] += u32::from(x != y);
            }
            let s = |v: &[f32; LANES]| v.iter().map(|&x| f64::from(x)).sum::<f64>();
            let (s_abs, s_sq, s_aa, s_bb, s_ab) = (s(&abs), s(&sq), s(&aa), s(&bb), s(&ab));
            if [s_abs, s_sq, s_aa, s_bb, s_ab]
                .iter()
                .all(|v| v.is_finite())
            {
                self.sum_abs += s_abs;
                self.sum_sq += s_sq;
                self.sum_aa += s_aa;
                self.sum_bb += s_bb;
                self.sum_ab += s_ab;
                self.max_abs = mx.iter().fold(self.max_abs, |m, &x| m.max(f64::from(x)));
                self.n_diff += ne.iter().map(|&x| u64::from(x)).sum::<u64>();
                self.n_finite += sa.len() as u64;
            } else {
                // A NaN/Inf (or an overflow of x*x in f32) somewhere in this sub-block: redo it
                // element by element in f64, skipping non-finite pairs.
                self.add_careful(sa, sb);
            }
        }
    }

    fn add_careful(&mut self, a: &[f32], b: &[f32]) {
        for (&x, &y) in a.iter().zip(b) {
            if !(x.is_finite() && y.is_finite()) {
                self.non_finite += 1;
                let same = x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
                self.n_diff += u64::from(!same);
                continue;
            }
            let (x, y) = (f64::from(x), f64::from(y));
            let dd = x - y;
            self.sum_abs += dd.abs();
            self.sum_sq += dd * dd;
            self.sum_aa += x * x;
            self.sum_bb += y * y;
            self.sum_ab += x * y;
            self.max_abs = self.max_abs.max(dd.abs());
            self.n_diff += u64::from(x != y);
            self.n_finite += 1;
        }
    }

    /// Adds the sums of another piece of the same pair.
    fn merge(&mut self, o: &Acc) {
        self.n_finite += o.n_finite;
        self.n_diff += o.n_diff;
        self.non_finite += o.non_finite;
        self.max_abs = self.max_abs.max(o.max_abs);
        self.sum_abs += o.sum_abs;
        self.sum_sq += o.sum_sq;
        self.sum_aa += o.sum_aa;
        self.sum_bb += o.sum_bb;
        self.sum_ab += o.sum_ab;
    }

    fn fill(&self, d: &mut TensorDiff) {
        d.n_diff = self.n_diff;
        d.non_finite = self.non_finite;
        d.identical = self.n_diff == 0;
        let n = self.n_finite as f64;
        if self.n_finite == 0 {
            d.max_abs = Some(0.0);
            d.mean_abs = Some(0.0);
            d.rmse = Some(0.0);
        } else {
            d.max_abs = Some(self.max_abs);
            d.mean_abs = Some(self.sum_abs / n);
            d.rmse = Some((self.sum_sq / n).sqrt());
        }
        d.rel_error = if self.sum_aa > 0.0 {
            Some((self.sum_sq / self.sum_aa).sqrt())
        } else if self.sum_sq == 0.0 {
            Some(0.0)
        } else {
            None
        };
        d.cosine = match (self.sum_aa > 0.0, self.sum_bb > 0.0) {
            (true, true) => {
                Some((self.sum_ab / (self.sum_aa.sqrt() * self.sum_bb.sqrt())).clamp(-1.0, 1.0))
            }
            (false, false) => Some(1.0),
            _ => None,
        };
        d.snr_db = if self.sum_sq > 0.0 {
            Some(10.0 * (self.sum_aa / self.sum_sq).log10())
        } else {
            None
        };
    }
}

/// Max-abs pooling of |A−B| onto a grid of cells: the geometry, shared by the pieces of a
/// pair; each piece pools into the cell rows it touches and the rows are merged by max.
struct MapGeometry {
    cols: u64,
    rows: u64,
    width: usize,
    height: usize,
    /// `col_bounds[j]..col_bounds[j+1]` are the element columns of cell column `j`.
    col_bounds: Vec<usize>,
}

impl MapGeometry {
    fn new(dims: &[u64], n: u64, w: usize, h: usize) -> Self {
        let cols = ne0_of(dims).max(1);
        let rows = n / cols;
        let width = (w as u64).min(cols).max(1) as usize;
        let height = (h as u64).min(rows.max(1)) as usize;
        // Column c falls in cell floor(c * width / cols); cell j starts at ceil(j * cols / width).
        let col_bounds = (0..=width)
            .map(|j| ((j as u128 * cols as u128).div_ceil(width as u128)) as usize)
            .collect();
        MapGeometry {
            cols,
            rows,
            width,
            height,
            col_bounds,
        }
    }

    /// The cell row of element row `row`.
    fn cell_row(&self, row: u64) -> usize {
        let r = u128::from(row) * self.height as u128 / u128::from(self.rows.max(1));
        (r as usize).min(self.height - 1)
    }

    /// Every cell, zero.
    fn empty_cells(&self) -> Vec<f32> {
        vec![0.0; self.width * self.height]
    }

    /// Zeroed cells for the cell rows that elements `start..end` fall in: (first row, cells).
    fn piece_cells(&self, start: usize, end: usize) -> (usize, Vec<f32>) {
        let r0 = self.cell_row(start as u64 / self.cols);
        let r1 = self.cell_row((end.max(start + 1) - 1) as u64 / self.cols);
        (r0, vec![0.0; (r1 + 1 - r0) * self.width])
    }

    /// Pools the chunk of elements starting at flat index `start` into `cells`, which hold the
    /// cell rows from `row0` on.
    fn pool(&self, cells: &mut [f32], row0: usize, start: u64, a: &[f32], b: &[f32]) {
        let cols = self.cols;
        let mut i = 0usize;
        while i < a.len() {
            let flat = start + i as u64;
            let (row, col) = (flat / cols, (flat % cols) as usize);
            let seg = ((cols as usize) - col).min(a.len() - i);
            let cell_row = self.cell_row(row) - row0;
            let line = &mut cells[cell_row * self.width..(cell_row + 1) * self.width];
            let (sa, sb) = (&a[i..i + seg], &b[i..i + seg]);
            for (j, cell) in line.iter_mut().enumerate() {
                let (lo, hi) = (self.col_bounds[j], self.col_bounds[j + 1]);
                let (lo, hi) = (lo.max(col), hi.min(col + seg));
                if lo >= hi {
                    continue;
                }
                let mut m = *cell;
                for (&x, &y) in sa[lo - col..hi - col].iter().zip(&sb[lo - col..hi - col]) {
                    let ad = (x - y).abs();
                    let ad = if ad.is_nan() {
                        if x.is_nan() && y.is_nan() {
                            0.0
                        } else {
                            f32::INFINITY
                        }
                    } else {
                        ad
                    };
                    m = if ad > m { ad } else { m };
                }
                *cell = m;
            }
            i += seg;
        }
    }

    /// The map; `cells` empty means all zero.
    fn into_map(self, cells: Vec<f32>) -> DiffMap {
        let cells = if cells.is_empty() {
            self.empty_cells()
        } else {
            cells
        };
        DiffMap {
            width: self.width,
            height: self.height,
            source_rows: self.rows,
            source_cols: self.cols,
            cells,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_pools_max_abs_into_cells() {
        // 4 rows x 6 cols, pooled into 2x3 cells: each cell covers 2 rows x 2 cols.
        let a = [0f32; 24];
        let mut b = [0f32; 24];
        b[6 + 5] = 3.0; // row 1, col 5 -> cell (0, 2)
        b[2 * 6] = -2.0; // row 2, col 0 -> cell (1, 0)
        let g = MapGeometry::new(&[6, 4], 24, 3, 2);
        let mut cells = g.empty_cells();
        g.pool(&mut cells, 0, 0, &a[..10], &b[..10]);
        g.pool(&mut cells, 0, 10, &a[10..], &b[10..]);
        let m = g.into_map(cells);
        assert_eq!((m.width, m.height), (3, 2));
        assert_eq!(
            m.cells,
            vec![0.0, 0.0, 3.0, 2.0, 0.0, 0.0],
            "each cell holds the max |a-b| of its 2x2 elements"
        );
    }

    fn f32_tensor<'a>(name: &'a str, dims: &'a [u64], data: &'a [u8]) -> DiffTensor<'a> {
        DiffTensor {
            name,
            type_id: GgmlType::F32.id(),
            dims,
            data,
        }
    }

    #[test]
    fn a_tensor_split_into_pieces_gives_the_naive_metrics_on_any_thread_count() {
        // 3 pieces and a bit: piece 0 the same bytes (with a NaN on both sides), piece 1
        // different, piece 2 the same, the tail different.
        let cols = 1024u64;
        let n = 3 * PIECE_ELEMENTS + 2048;
        let dims = [cols, n as u64 / cols];
        let a: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1013) as f32 * 1e-3 - 0.5)
            .collect();
        let mut b = a.clone();
        let mut a = a;
        a[5] = f32::NAN;
        b[5] = f32::NAN;
        for i in (PIECE_ELEMENTS..2 * PIECE_ELEMENTS).step_by(3) {
            b[i] += 0.25;
        }
        b[n - 1] = -4.0;
        let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let (da, db) = (bytes(&a), bytes(&b));
        let ta = [f32_tensor("t", &dims, &da)];
        let tb = [f32_tensor("t", &dims, &db)];
        // Naive f64 reference over the finite pairs.
        let (mut ss, mut aa, mut bb, mut ab, mut mx, mut nd, mut nf) =
            (0f64, 0f64, 0f64, 0f64, 0f64, 0u64, 0u64);
        for (&x, &y) in a.iter().zip(&b) {
            if !(x.is_finite() && y.is_finite()) {
                continue;
            }
            let (x, y) = (f64::from(x), f64::from(y));
            ss += (x - y) * (x - y);
            aa += x * x;
            bb += y * y;
            ab += x * y;
            mx = mx.max((x - y).abs());
            nd += u64::from(x != y);
            nf += 1;
        }
        let mut first: Option<DiffReport> = None;
        for threads in [1, 2, 3, 5] {
            let opts = DiffOptions {
                map: Some((10, 40)),
                threads,
            };
            let mut calls = 0;
            let r = diff_models(&ta, &tb, &opts, &mut |_| calls += 1, None).unwrap();
            let d = &r.tensors[0];
            assert_eq!(d.status, DiffStatus::Compared);
            assert!(!d.bytes_identical && !d.identical);
            assert_eq!(d.n_diff, nd, "differing elements, counted once each");
            assert_eq!(
                d.non_finite, 1,
                "the NaN pair of the same-bytes piece is counted"
            );
            assert!((d.rmse.unwrap() - (ss / nf as f64).sqrt()).abs() < 1e-9);
            assert!((d.cosine.unwrap() - ab / (aa.sqrt() * bb.sqrt())).abs() < 1e-9);
            assert!((d.max_abs.unwrap() - mx).abs() < 1e-6);
            assert!(
                calls < 20,
                "progress is reported per piece, not per chunk ({calls} calls)"
            );
            let map = d.map.as_ref().unwrap();
            let rows = n as u64 / cols;
            // Rows PIECE/cols .. 2·PIECE/cols differ (piece 1), and the last row.
            let (d0, d1) = (
                PIECE_ELEMENTS as u64 / cols,
                2 * PIECE_ELEMENTS as u64 / cols,
            );
            for (k, row) in map.cells.chunks(10).enumerate() {
                let (r0, r1) = (k as u64 * rows / 40, (k as u64 + 1) * rows / 40);
                let touched = (r0 < d1 && r1 > d0) || r1 == rows;
                assert_eq!(
                    row.iter().any(|&c| c > 0.0),
                    touched,
                    "map row {k} shows a difference exactly where rows differ"
                );
            }
            match &first {
                None => first = Some(r),
                Some(f) => assert_eq!(f, &r, "{threads} threads give what 1 thread gives"),
            }
        }
    }

    #[test]
    fn careful_path_skips_non_finite_pairs() {
        let mut acc = Acc::default();
        let a = [1.0f32, f32::NAN, 2.0, f32::INFINITY];
        let b = [1.0f32, f32::NAN, 4.0, 0.0];
        acc.add(&a, &b);
        assert_eq!(
            acc.non_finite, 2,
            "the NaN pair and the Inf pair are not finite"
        );
        assert_eq!(
            acc.n_diff, 2,
            "NaN==NaN counts equal, 2 vs 4 and Inf vs 0 differ"
        );
        assert_eq!(acc.n_finite, 2);
        assert_eq!(acc.max_abs, 2.0);
    }
}
