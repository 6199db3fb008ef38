//! The Tensors screen's commands: heatmap tiles and exact value windows (raw bytes, listed in
//! [`crate::binary`]), statistics and histogram (typed), and element edits / transforms with
//! a dry-run preview.
//!
//! Everything reads through the session (`AppState::session`), so staged edits show. The work
//! is done by `hotpatch_core::heatmap` (level of detail) and the manager's tensor layer; these
//! functions validate arguments, call it on a blocking thread and map the results.
//!
//! Statistics and histogram edges are finite by construction (finite values only) and cross as
//! plain numbers. Values that can be NaN or ±Inf (an element before or after an edit) cross as text — the
//! shortest decimal that reads back as the same f32, or `NaN`, `Infinity`, `-Infinity` — because
//! JSON has no non-finite numbers; `Number(text)` in TypeScript reads every one of them.

use hotpatch_core::heatmap::{self, LodError, Viewport};
use hotpatch_core::tensor::{Selection, TransformOp};
use hotpatch_core::tensor_args;
use serde::{Deserialize, Serialize};
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::{Channel, Response};
use tauri::{AppHandle, Runtime};

use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

pub use super::TILE_HEADER;

fn lod_error(tensor: &str, e: LodError) -> IpcError {
    let code = match e {
        LodError::Unreadable(_) | LodError::ShapeMismatch { .. } => ErrorCode::Refused,
        LodError::Canceled => ErrorCode::Canceled,
        _ => ErrorCode::BadRequest,
    };
    IpcError::new(code, format!("tensor '{tensor}': {e}"))
}

use super::blocking;

// ----- heatmap (raw) ---------------------------------------------------------------------

/// The level-of-detail tile of rows `row0..row0+rows`, columns `col0..col0+cols` of a tensor
/// seen as a matrix (`ne1·ne2… × ne0`), reduced to at most `width × height` cells.
/// Layout: [`TILE_HEADER`] bytes (u32 LE `width`, `height`, `planes` = 2, 0), then the **mean**
/// plane and the **peak** plane (signed value of largest |x|, NaN first), each
/// `width·height` f32 LE, row-major. The returned width/height are
/// `min(width, cols)` / `min(height, rows)`.
#[allow(clippy::too_many_arguments)]
#[tauri::command]
pub async fn heatmap_tile<R: Runtime>(
    app: AppHandle<R>,
    tensor: String,
    row0: u64,
    col0: u64,
    rows: u64,
    cols: u64,
    width: u32,
    height: u32,
) -> Result<Response, IpcError> {
    let vp = Viewport {
        row0,
        col0,
        rows,
        cols,
    };
    blocking(app, move |s| tile_bytes(s, &tensor, vp, width, height))
        .await
        .map(Response::new)
}

/// [`heatmap_tile`] without Tauri (tested directly).
pub fn tile_bytes(
    state: &AppState,
    tensor: &str,
    vp: Viewport,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, IpcError> {
    let layer = state.session().tensors()?;
    let tile = layer
        .matrix(tensor, |m| heatmap::lod(m, vp, width, height))?
        .map_err(|e| lod_error(tensor, e))?;
    Ok(super::encode_tile(&tile))
}

/// The exact values of rows `row0..row0+rows`, columns `col0..col0+cols` (the value grid).
/// Layout: `rows·cols` f32 LE, row-major, no header. At most
/// `hotpatch_core::heatmap::MAX_WINDOW_CELLS` values per call.
#[tauri::command]
pub async fn tensor_window<R: Runtime>(
    app: AppHandle<R>,
    tensor: String,
    row0: u64,
    col0: u64,
    rows: u64,
    cols: u64,
) -> Result<Response, IpcError> {
    let vp = Viewport {
        row0,
        col0,
        rows,
        cols,
    };
    blocking(app, move |s| window_bytes(s, &tensor, vp))
        .await
        .map(Response::new)
}

/// [`tensor_window`] without Tauri (tested directly).
pub fn window_bytes(state: &AppState, tensor: &str, vp: Viewport) -> Result<Vec<u8>, IpcError> {
    let layer = state.session().tensors()?;
    let values = layer
        .matrix(tensor, |m| heatmap::window(m, vp))?
        .map_err(|e| lod_error(tensor, e))?;
    Ok(values.iter().flat_map(|x| x.to_le_bytes()).collect())
}

// ----- statistics and histogram (typed) --------------------------------------------------

/// Statistics of a whole tensor: the colour legend's scale and the screen's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TensorStats {
    /// Rows of the matrix view (`ne1·ne2…`).
    #[specta(type = Number)]
    pub rows: u64,
    /// Columns (`ne0`).
    #[specta(type = Number)]
    pub cols: u64,
    /// Elements.
    #[specta(type = Number)]
    pub count: u64,
    /// Finite elements.
    #[specta(type = Number)]
    pub finite: u64,
    /// NaN elements.
    #[specta(type = Number)]
    pub nan: u64,
    /// +Inf elements.
    #[specta(type = Number)]
    pub pos_inf: u64,
    /// −Inf elements.
    #[specta(type = Number)]
    pub neg_inf: u64,
    /// Exact zeros.
    #[specta(type = Number)]
    pub zeros: u64,
    /// Smallest finite value (0 without finite values).
    #[specta(type = Number)]
    pub min: f32,
    /// Largest finite value.
    #[specta(type = Number)]
    pub max: f32,
    /// `max(|min|, |max|)`: the half-width of the colour scale.
    #[specta(type = Number)]
    pub abs_max: f32,
    /// Mean of the finite values.
    #[specta(type = Number)]
    pub mean: f64,
    /// Standard deviation of the finite values.
    #[specta(type = Number)]
    pub std: f64,
}

fn stats_view(rows: u64, cols: u64, s: heatmap::Stats) -> TensorStats {
    TensorStats {
        rows,
        cols,
        count: s.count,
        finite: s.finite,
        nan: s.nan,
        pos_inf: s.pos_inf,
        neg_inf: s.neg_inf,
        zeros: s.zeros,
        min: s.min,
        max: s.max,
        abs_max: s.abs_max(),
        mean: s.mean,
        std: s.std,
    }
}

/// Statistics of every value of a tensor, as job `job`: progress (elements read) streams over
/// `on_progress`; `cancel_job(job)` stops it with code `Canceled`.
#[tauri::command]
#[specta::specta]
pub async fn tensor_stats(
    app: AppHandle,
    tensor: String,
    job: u32,
    on_progress: Channel<Progress>,
) -> Result<TensorStats, IpcError> {
    blocking(app, move |s| {
        let job = s.jobs.register(job);
        let message = format!("statistics of {tensor}");
        let mut report = job.progress_fn(&on_progress, Stage::Read, &message);
        stats(s, &tensor, &mut report)
    })
    .await
}

/// [`tensor_stats`] without Tauri (`progress` as core's: return `false` to cancel).
pub fn stats(
    state: &AppState,
    tensor: &str,
    progress: hotpatch_core::ProgressFn<'_>,
) -> Result<TensorStats, IpcError> {
    let layer = state.session().tensors()?;
    layer
        .matrix(tensor, |m| {
            let shape = heatmap::RowSource::shape(m);
            heatmap::stats_with(m, shape.full(), progress)
                .map(|s| stats_view(shape.rows, shape.cols, s))
        })?
        .map_err(|e| lod_error(tensor, e))
}

/// A histogram of a tensor's finite values.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TensorHistogram {
    /// Lower edge of the first bin.
    #[specta(type = Number)]
    pub lo: f32,
    /// Upper edge of the last bin (values equal to it count in the last bin).
    #[specta(type = Number)]
    pub hi: f32,
    /// Count per bin (equal widths).
    #[specta(type = Vec<Number>)]
    pub counts: Vec<u64>,
    /// Finite values outside `[lo, hi]` (with an explicit range only).
    #[specta(type = Number)]
    pub outside: u64,
    /// Statistics of the same values.
    pub stats: TensorStats,
}

/// Bins a tensor's finite values into `bins` (1…4096) equal bins over `[lo, hi]`, or over
/// its own `[min, max]` when `lo`/`hi` are absent, with the statistics of the same values
/// (one call gives the screen both). Runs as job `job`: progress (elements read, over both
/// passes without a range) streams over `on_progress`; `cancel_job(job)` stops it with code
/// `Canceled`.
#[allow(clippy::too_many_arguments)]
#[tauri::command]
#[specta::specta]
pub async fn tensor_histogram(
    app: AppHandle,
    tensor: String,
    bins: u32,
    lo: Option<f32>,
    hi: Option<f32>,
    job: u32,
    on_progress: Channel<Progress>,
) -> Result<TensorHistogram, IpcError> {
    blocking(app, move |s| {
        let job = s.jobs.register(job);
        let message = format!("statistics and histogram of {tensor}");
        let mut report = job.progress_fn(&on_progress, Stage::Read, &message);
        histogram(s, &tensor, bins, lo, hi, &mut report)
    })
    .await
}

/// [`tensor_histogram`] without Tauri (`progress` as core's: return `false` to cancel).
pub fn histogram(
    state: &AppState,
    tensor: &str,
    bins: u32,
    lo: Option<f32>,
    hi: Option<f32>,
    progress: hotpatch_core::ProgressFn<'_>,
) -> Result<TensorHistogram, IpcError> {
    let range = match (lo, hi) {
        (Some(l), Some(h)) => Some((l, h)),
        (None, None) => None,
        _ => {
            return Err(IpcError::new(
                ErrorCode::BadRequest,
                "histogram range: give both lo and hi, or neither",
            ))
        }
    };
    let layer = state.session().tensors()?;
    layer
        .matrix(tensor, |m| {
            let shape = heatmap::RowSource::shape(m);
            heatmap::histogram_with(m, shape.full(), bins, range, progress).map(|h| {
                TensorHistogram {
                    lo: h.lo,
                    hi: h.hi,
                    counts: h.counts,
                    outside: h.outside,
                    stats: stats_view(shape.rows, shape.cols, h.stats),
                }
            })
        })?
        .map_err(|e| lod_error(tensor, e))
}

// ----- element edits -----------------------------------------------------------------------

pub use hotpatch_core::tensor_args::f32_text;

fn arg_error(e: tensor_args::ArgError) -> IpcError {
    IpcError::new(ErrorCode::BadRequest, e.0)
}

/// Parses a value typed by the user (`hotpatch_core::tensor_args::parse_value`).
pub fn parse_value(text: &str) -> Result<f32, IpcError> {
    tensor_args::parse_value(text).map_err(arg_error)
}

/// An element that moved because its block was re-quantized.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SideEffectView {
    /// Flat element index.
    #[specta(type = Number)]
    pub index: u64,
    /// Value before (f32 text).
    pub before: String,
    /// Value after (f32 text).
    pub after: String,
}

/// What setting one element does (or would do, for a preview).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct WeightEditView {
    /// Tensor name.
    pub tensor: String,
    /// Flat element index.
    #[specta(type = Number)]
    pub index: u64,
    /// The tensor's type (`Q4_K`).
    pub ty: String,
    /// Value before (f32 text).
    pub previous: String,
    /// Value asked for (f32 text).
    pub requested: String,
    /// Value stored (f32 text): quantization rounds.
    pub stored: String,
    /// The block's scales changed (re-quantized); see `side_effects`.
    pub block_requantized: bool,
    /// Other elements of the block whose value changes.
    pub side_effects: Vec<SideEffectView>,
    /// First flat index of the element's quantization block.
    #[specta(type = Number)]
    pub block_first: u64,
    /// Elements per block of the type (1 for float types).
    pub block_len: u32,
    /// Whether the edit was made (false for a preview).
    pub applied: bool,
}

fn edit_view(e: hotpatch_core::tensor::WeightEdit, applied: bool) -> WeightEditView {
    let block_len = hotpatch_core::GgmlType::from_name(&e.ty).map_or(1, |t| t.block_size() as u64);
    WeightEditView {
        block_first: e.index / block_len * block_len,
        block_len: block_len as u32,
        tensor: e.tensor,
        index: e.index,
        ty: e.ty,
        previous: f32_text(e.previous),
        requested: f32_text(e.requested),
        stored: f32_text(e.stored),
        block_requantized: e.block_requantized,
        side_effects: e
            .side_effects
            .into_iter()
            .map(|s| SideEffectView {
                index: s.index,
                before: f32_text(s.before),
                after: f32_text(s.after),
            })
            .collect(),
        applied,
    }
}

/// One element and the value asked for it (`index` is the flat ggml index; `value` is text,
/// see [`parse_value`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct WeightArgs {
    /// Tensor name.
    pub tensor: String,
    /// Flat element index (ggml order: `row · ne0 + col`).
    #[specta(type = Number)]
    pub index: u64,
    /// The value as typed: a decimal number, `nan`, `inf` or `-inf`.
    pub value: String,
}

/// What [`set_weight`] would store for the element, and the effect on its block, without
/// changing anything. Refuses what the edit would refuse.
#[tauri::command]
#[specta::specta]
pub async fn preview_weight(app: AppHandle, args: WeightArgs) -> Result<WeightEditView, IpcError> {
    blocking(app, move |s| {
        weight(s, &args.tensor, args.index, &args.value, false)
    })
    .await
}

/// Sets the element to the value: journaled, one undo step, staged until saved. Returns what
/// was stored and the effect on its block.
#[tauri::command]
#[specta::specta]
pub async fn set_weight(app: AppHandle, args: WeightArgs) -> Result<WeightEditView, IpcError> {
    blocking(app, move |s| {
        weight(s, &args.tensor, args.index, &args.value, true)
    })
    .await
}

/// [`preview_weight`] (`apply` false) and [`set_weight`] (`apply` true) without Tauri.
pub fn weight(
    state: &AppState,
    tensor: &str,
    index: u64,
    value: &str,
    apply: bool,
) -> Result<WeightEditView, IpcError> {
    let v = parse_value(value)?;
    let session = state.session();
    let edit = if apply {
        session.modify_weight(tensor, index, v)?
    } else {
        session.preview_weight(tensor, index, v)?
    };
    Ok(edit_view(edit, apply))
}

// ----- locks -------------------------------------------------------------------------------

/// Locks (`locked` true) or unlocks a whole tensor: every write path refuses a locked tensor
/// until it is unlocked. Returns whether the tensor is locked afterwards.
#[tauri::command]
#[specta::specta]
pub async fn set_tensor_lock(
    app: AppHandle,
    tensor: String,
    locked: bool,
) -> Result<bool, IpcError> {
    blocking(app, move |s| set_lock(s, &tensor, locked)).await
}

/// [`set_tensor_lock`] without Tauri.
pub fn set_lock(state: &AppState, tensor: &str, locked: bool) -> Result<bool, IpcError> {
    let session = state.session();
    let now = session.tensor_locked(tensor)?;
    if locked && !now {
        session.lock_tensor(tensor)?;
    } else if !locked && now {
        session.unlock_tensor(tensor)?;
    }
    Ok(session.tensor_locked(tensor)?)
}

/// Whether a whole tensor is locked.
#[tauri::command]
#[specta::specta]
pub async fn tensor_locked(app: AppHandle, tensor: String) -> Result<bool, IpcError> {
    blocking(app, move |s| Ok(s.session().tensor_locked(&tensor)?)).await
}

// ----- transforms --------------------------------------------------------------------------

/// Which elements a transform touches.
#[derive(Debug, Clone, PartialEq, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SelectionArgs {
    /// `all`, `rows`, `columns`, `range` (flat elements), `elements` or `head`.
    pub kind: String,
    /// First row / column / element (`rows`, `columns`, `range`).
    #[specta(type = Option<Number>)]
    pub start: Option<u64>,
    /// One past the last (`rows`, `columns`, `range`).
    #[specta(type = Option<Number>)]
    pub end: Option<u64>,
    /// Flat element indices (`elements`).
    #[specta(type = Option<Vec<Number>>)]
    pub indices: Option<Vec<u64>>,
    /// Attention head number (`head`).
    pub head: Option<u32>,
}

/// What a transform does.
#[derive(Debug, Clone, PartialEq, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TransformArgs {
    /// `scale`, `add`, `set`, `clamp`, `zero`, `negate`, `noise`, `replace_non_finite`, `lerp`.
    pub op: String,
    /// The parameter of `scale` (factor), `add`, `set`, `replace_non_finite` (value), `lerp` (t).
    pub value: Option<f32>,
    /// Bounds of `clamp`.
    pub min: Option<f32>,
    /// Bounds of `clamp`.
    pub max: Option<f32>,
    /// Seed of `noise`.
    #[specta(type = Option<Number>)]
    pub seed: Option<u64>,
    /// Standard deviation of `noise`.
    pub std: Option<f32>,
    /// The other model of `lerp`.
    pub model: Option<String>,
}

/// The core selection for `args` (`hotpatch_core::tensor_args::selection_of`).
pub fn selection_of(a: &SelectionArgs) -> Result<Selection, IpcError> {
    tensor_args::selection_of(&tensor_args::SelectionArgs {
        kind: a.kind.clone(),
        start: a.start,
        end: a.end,
        indices: a.indices.clone(),
        head: a.head,
    })
    .map_err(arg_error)
}

/// The core operation for `args` (`hotpatch_core::tensor_args::op_of`).
pub fn op_of(a: &TransformArgs) -> Result<TransformOp, IpcError> {
    tensor_args::op_of(&tensor_args::TransformArgs {
        op: a.op.clone(),
        value: a.value,
        min: a.min,
        max: a.max,
        seed: a.seed,
        std: a.std,
        model: a.model.clone(),
    })
    .map_err(arg_error)
}

/// What a transform did.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TransformReportView {
    /// Tensor name.
    pub tensor: String,
    /// Operation name.
    pub op: String,
    /// Elements selected.
    #[specta(type = Number)]
    pub elements_selected: u64,
    /// Elements whose stored value was asked to change.
    #[specta(type = Number)]
    pub elements_changed: u64,
    /// Blocks where only the changed elements' bits were written (scales kept).
    #[specta(type = Number)]
    pub blocks_kept_scales: u64,
    /// Blocks quantized afresh (every element selected).
    #[specta(type = Number)]
    pub blocks_requantized_whole: u64,
    /// Blocks re-quantized because a value left its grid (side effects possible).
    #[specta(type = Number)]
    pub blocks_requantized: u64,
    /// Unselected elements whose value changed.
    #[specta(type = Number)]
    pub side_effect_count: u64,
    /// Largest |after − before| among them (f32 text).
    pub max_side_effect: String,
    /// The first side effects (at most 64 sent).
    pub side_effects: Vec<SideEffectView>,
    /// Bytes whose value changed.
    #[specta(type = Number)]
    pub bytes_changed: u64,
    /// The undo entry, if anything changed.
    #[specta(type = Option<Number>)]
    pub change: Option<u64>,
}

/// Side effects listed in a [`TransformReportView`] (the rest are counted).
pub const LISTED_SIDE_EFFECTS: usize = 64;

/// Applies `op` to the `selection` of `tensor` as one undo step, as job `job`: progress (in
/// elements) streams over `on_progress`; a cancel before the end writes nothing.
#[tauri::command]
#[specta::specta]
pub async fn transform_tensor(
    app: AppHandle,
    tensor: String,
    selection: SelectionArgs,
    op: TransformArgs,
    job: u32,
    on_progress: Channel<Progress>,
) -> Result<TransformReportView, IpcError> {
    blocking(app, move |s| {
        let job = s.jobs.register(job);
        let message = format!("transforming {tensor}");
        let mut report = job.progress_fn(&on_progress, Stage::Apply, &message);
        transform(s, &tensor, &selection, &op, &mut report)
    })
    .await
}

/// [`transform_tensor`] without Tauri (`progress` as core's: return `false` to cancel).
pub fn transform(
    state: &AppState,
    tensor: &str,
    selection: &SelectionArgs,
    op: &TransformArgs,
    progress: hotpatch_core::ProgressFn<'_>,
) -> Result<TransformReportView, IpcError> {
    let sel = selection_of(selection)?;
    let op = op_of(op)?;
    let r = state
        .session()
        .transform_with(tensor, &sel, &op, progress)?;
    Ok(TransformReportView {
        tensor: r.tensor,
        op: r.op.to_string(),
        elements_selected: r.elements_selected,
        elements_changed: r.encode.elements_changed,
        blocks_kept_scales: r.encode.blocks_kept_scales,
        blocks_requantized_whole: r.encode.blocks_requantized_whole,
        blocks_requantized: r.encode.blocks_requantized,
        side_effect_count: r.encode.side_effect_count,
        max_side_effect: f32_text(r.encode.max_side_effect),
        side_effects: r
            .encode
            .side_effects
            .into_iter()
            .take(LISTED_SIDE_EFFECTS)
            .map(|s| SideEffectView {
                index: s.index,
                before: f32_text(s.before),
                after: f32_text(s.after),
            })
            .collect(),
        bytes_changed: r.bytes_changed,
        change: r.change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_cross_as_bad_requests_naming_them() {
        // The parsing itself is tested in `hotpatch_core::tensor_args`.
        assert_eq!(parse_value(" 0.5 ").unwrap(), 0.5);
        for bad in ["abc", "", "0x10", "1,5", "1e39", "5 5"] {
            let e = parse_value(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{bad}");
            assert!(e.message.contains(bad.trim()), "{bad}: {}", e.message);
        }
        let a = TransformArgs {
            op: "clamp".into(),
            value: None,
            min: Some(-1.0),
            max: None,
            seed: None,
            std: None,
            model: None,
        };
        let e = op_of(&a).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("'max'"), "{}", e.message);
        let s = SelectionArgs {
            kind: "diagonal".into(),
            start: None,
            end: None,
            indices: None,
            head: None,
        };
        assert!(selection_of(&s).unwrap_err().message.contains("diagonal"));
        assert_eq!(f32_text(f32::NAN), "NaN");
    }
}
