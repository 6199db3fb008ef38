//! The Diff screen's commands: open a second model (B) read-only, rank every tensor by how
//! much the open model (A, the session, staged edits included) differs from it, list the
//! largest element differences of one tensor, draw A, B and A−B as level-of-detail tiles, and
//! copy a tensor (or rows, columns, a range) from B into A as a recorded, undoable patch.
//!
//! The work is done by `hotpatch_core::diff` (ranking, top-k), `hotpatch_core::heatmap` (the
//! level of detail, shared with the Tensors screen: [`heatmap::Difference`] makes the A−B map)
//! and the session manager (the copy is a `lerp` with `t = 1` towards B, so it is journaled,
//! undoable and exported in configurations like any transform). These functions validate,
//! run the work on a blocking thread and map results and errors.

use std::sync::Arc;

use hotpatch_core::diff::{self, DiffError, DiffStatus, MAX_TOP_K};
use hotpatch_core::heatmap::{self, LodError, QuantMatrix, Viewport};
use hotpatch_core::tensor::{OtherModel, Selection};
use serde::{Deserialize, Serialize};
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::{Channel, Response};
use tauri::{AppHandle, State};

use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

/// What the UI shows about model B.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct DiffModelInfo {
    /// Absolute path.
    pub path: String,
    /// File name only.
    pub file_name: String,
    /// Tensors.
    #[specta(type = Number)]
    pub tensor_count: u64,
    /// Bytes of tensor data.
    #[specta(type = Number)]
    pub tensor_bytes: u64,
    /// Shards (1 for a single file).
    pub shards: u32,
}

/// How a row of the ranking was compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum RowStatus {
    /// Compared value by value.
    Compared,
    /// Same name, different shapes.
    ShapeMismatch,
    /// A side has no codec (or a bad size): see `reason`.
    Unsupported,
    /// Only in the open model (A).
    OnlyInA,
    /// Only in model B.
    OnlyInB,
}

/// One tensor of the ranking. Metrics are `null` when not compared (or undefined, see core's
/// `TensorDiff`).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct DiffRow {
    /// Tensor name.
    pub name: String,
    /// How it was compared.
    pub status: RowStatus,
    /// Why it could not be compared (unsupported rows).
    pub reason: Option<String>,
    /// Type in A (`null` when only in B).
    pub type_a: Option<String>,
    /// Type in B (`null` when only in A).
    pub type_b: Option<String>,
    /// Dims in A (ggml order; empty when only in B).
    #[specta(type = Vec<Number>)]
    pub dims_a: Vec<u64>,
    /// Dims in B.
    #[specta(type = Vec<Number>)]
    pub dims_b: Vec<u64>,
    /// Elements.
    #[specta(type = Number)]
    pub n_elements: u64,
    /// Elements whose values differ.
    #[specta(type = Number)]
    pub n_diff: u64,
    /// Pairs left out of the metrics because a side is NaN/±Inf.
    #[specta(type = Number)]
    pub non_finite: u64,
    /// Every element equal.
    pub identical: bool,
    /// max |A−B|.
    pub max_abs: Option<f64>,
    /// mean |A−B|.
    pub mean_abs: Option<f64>,
    /// RMS of A−B.
    pub rmse: Option<f64>,
    /// ‖A−B‖ / ‖A‖.
    pub rel_error: Option<f64>,
    /// Cosine similarity of A and B.
    pub cosine: Option<f64>,
    /// 10·log10(‖A‖²/‖A−B‖²) (`null` = no difference).
    pub snr_db: Option<f64>,
}

/// The ranking of every tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct DiffResult {
    /// Model B's path.
    pub path_b: String,
    /// Rows: uncomparable pairs first, then by RMSE descending (the UI re-sorts), then lone
    /// tensors (A then B).
    pub rows: Vec<DiffRow>,
    /// Pairs with identical values.
    #[specta(type = Number)]
    pub identical: u64,
    /// Bytes of tensor data read (both sides).
    #[specta(type = Number)]
    pub bytes_compared: u64,
    /// Wall time of the comparison, milliseconds.
    #[specta(type = Number)]
    pub millis: u64,
}

/// One of the largest differences. Values cross as text (`NaN`, `Infinity` included; read
/// with `Number(text)`).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct DiffPointRow {
    /// Flat element index.
    #[specta(type = Number)]
    pub index: u64,
    /// Row of the matrix view.
    #[specta(type = Number)]
    pub row: u64,
    /// Column.
    #[specta(type = Number)]
    pub col: u64,
    /// Value in A.
    pub a: String,
    /// Value in B.
    pub b: String,
    /// A − B.
    pub delta: String,
}

/// Colour scales and shape of one tensor pair, for the three maps. The maxima are over finite
/// values only (0 when there are none), so they are always finite numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct DiffTensorInfo {
    /// Matrix rows (`ne1·ne2…`).
    #[specta(type = Number)]
    pub rows: u64,
    /// Matrix columns (`ne0`).
    #[specta(type = Number)]
    pub cols: u64,
    /// Type in A.
    pub type_a: String,
    /// Type in B.
    pub type_b: String,
    /// max |x| of A's finite values.
    #[specta(type = Number)]
    pub abs_max_a: f64,
    /// max |x| of B's finite values.
    #[specta(type = Number)]
    pub abs_max_b: f64,
    /// max |A−B| over finite differences.
    #[specta(type = Number)]
    pub abs_max_diff: f64,
}

/// What to copy from B into A.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Type)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum CopyRange {
    /// The whole tensor.
    All,
    /// Rows `start..end` of the matrix view.
    Rows {
        /// First row.
        #[specta(type = Number)]
        start: u64,
        /// One past the last row.
        #[specta(type = Number)]
        end: u64,
    },
    /// Columns `start..end` of every row.
    Columns {
        /// First column.
        #[specta(type = Number)]
        start: u64,
        /// One past the last column.
        #[specta(type = Number)]
        end: u64,
    },
    /// Flat elements `start..end`.
    Elements {
        /// First element.
        #[specta(type = Number)]
        start: u64,
        /// One past the last element.
        #[specta(type = Number)]
        end: u64,
    },
}

impl CopyRange {
    fn selection(&self) -> Selection {
        match *self {
            CopyRange::All => Selection::All,
            CopyRange::Rows { start, end } => Selection::Rows { start, end },
            CopyRange::Columns { start, end } => Selection::Columns { start, end },
            CopyRange::Elements { start, end } => Selection::Range { start, end },
        }
    }
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CopyResult {
    /// Elements selected.
    #[specta(type = Number)]
    pub elements: u64,
    /// Elements whose value changed.
    #[specta(type = Number)]
    pub changed: u64,
    /// Bytes of A that changed.
    #[specta(type = Number)]
    pub bytes_changed: u64,
    /// Blocks re-quantized (B's values had to be re-encoded in A's type).
    #[specta(type = Number)]
    pub blocks_requantized: u64,
    /// The undo entry (`null` when nothing changed).
    #[specta(type = Option<Number>)]
    pub change: Option<u64>,
}

fn diff_error(e: DiffError) -> IpcError {
    let code = match &e {
        DiffError::Cancelled => ErrorCode::Canceled,
        DiffError::BadCount { .. } | DiffError::BadMapSize { .. } => ErrorCode::BadRequest,
        DiffError::NoSuchTensor { .. } => ErrorCode::NotFound,
        DiffError::DuplicateTensor { .. } => ErrorCode::InvalidGguf,
        _ => ErrorCode::Refused,
    };
    IpcError::new(code, e.to_string())
}

fn other_diff_error(e: diff::OtherDiffError) -> IpcError {
    match e {
        diff::OtherDiffError::Session(e) => e.into(),
        diff::OtherDiffError::Diff(e) => diff_error(e),
    }
}

/// `what` names the tensor (and the model) in the message.
fn lod_error(what: &str, e: LodError) -> IpcError {
    let code = match e {
        LodError::Unreadable(_) | LodError::ShapeMismatch { .. } => ErrorCode::Refused,
        _ => ErrorCode::BadRequest,
    };
    IpcError::new(code, format!("{what}: {e}"))
}

/// Model B (the session's second model), or the error every diff command returns without one.
pub fn require_b(state: &AppState) -> Result<Arc<OtherModel>, IpcError> {
    state.session().other().ok_or_else(|| {
        IpcError::new(
            ErrorCode::NoModel,
            "no second model is open for the diff (open model B first)",
        )
    })
}

use super::blocking;

// ----- model B ---------------------------------------------------------------------------

/// Opens `path` read-only as model B of the diff (replacing the previous one).
#[tauri::command]
#[specta::specta]
pub async fn open_diff_model(app: AppHandle, path: String) -> Result<DiffModelInfo, IpcError> {
    blocking(app, move |s| open_b(s, &path)).await
}

/// [`open_diff_model`] without Tauri.
pub fn open_b(state: &AppState, path: &str) -> Result<DiffModelInfo, IpcError> {
    let path = path.trim();
    if path.is_empty() {
        return Err(IpcError::new(
            ErrorCode::BadRequest,
            "no file path given for model B",
        ));
    }
    let b = state
        .session()
        .attach_other(path)
        .map_err(|e| IpcError::from(e).with_context(path))?;
    Ok(info(&b))
}

/// What the UI shows about model B.
pub fn info(b: &OtherModel) -> DiffModelInfo {
    let (path, model) = (b.path(), b.model());
    DiffModelInfo {
        path: path.display().to_string(),
        file_name: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        tensor_count: model.tensors.len() as u64,
        tensor_bytes: model.tensors.iter().map(|t| t.nbytes).sum(),
        shards: model.shards.len() as u32,
    }
}

/// Model B, if one is open.
#[tauri::command]
#[specta::specta]
pub fn diff_model(state: State<'_, AppState>) -> Option<DiffModelInfo> {
    state.session().other().map(|b| info(&b))
}

/// Closes model B.
#[tauri::command]
#[specta::specta]
pub fn close_diff_model(state: State<'_, AppState>) {
    state.session().detach_other();
}

// ----- ranking ---------------------------------------------------------------------------

/// Compares every tensor of the open model (A) with model B, streaming progress as job `job`
/// (cancelable with `cancel_job`).
#[tauri::command]
#[specta::specta]
pub async fn run_diff(
    app: AppHandle,
    job: u32,
    on_progress: Channel<Progress>,
) -> Result<DiffResult, IpcError> {
    blocking(app, move |s| rank(s, job, &on_progress)).await
}

/// [`run_diff`] without Tauri.
pub fn rank(
    state: &AppState,
    job: u32,
    channel: &Channel<Progress>,
) -> Result<DiffResult, IpcError> {
    let job = state.jobs.register(job);
    let b = require_b(state)?;
    let started = std::time::Instant::now();
    let report = state
        .session()
        .diff_other(
            &mut |p| {
                job.send(
                    channel,
                    Stage::Compare,
                    p.done_bytes,
                    p.total_bytes,
                    // The bar counts bytes (one big embedding is most of a model): the message
                    // leads with the same figure, the tensors finished after it.
                    format!(
                        "comparing tensors: {} % of the data ({} of {} tensors done)",
                        p.done_bytes
                            .saturating_mul(100)
                            .checked_div(p.total_bytes)
                            .unwrap_or(100),
                        p.done_tensors,
                        p.total_tensors
                    ),
                )
            },
            &|| job.is_canceled(),
        )
        .map_err(other_diff_error)?;
    job.check()?;
    let mut rows: Vec<DiffRow> = report.tensors.iter().map(row_of).collect();
    for (t, status) in report
        .only_in_a
        .iter()
        .map(|t| (t, RowStatus::OnlyInA))
        .chain(report.only_in_b.iter().map(|t| (t, RowStatus::OnlyInB)))
    {
        let mine = |s| (status == s).then(|| t.ty.clone());
        let dims = |s| {
            if status == s {
                t.dims.clone()
            } else {
                Vec::new()
            }
        };
        rows.push(DiffRow {
            name: t.name.clone(),
            status,
            reason: None,
            type_a: mine(RowStatus::OnlyInA),
            type_b: mine(RowStatus::OnlyInB),
            dims_a: dims(RowStatus::OnlyInA),
            dims_b: dims(RowStatus::OnlyInB),
            n_elements: t.dims.iter().product(),
            n_diff: 0,
            non_finite: 0,
            identical: false,
            max_abs: None,
            mean_abs: None,
            rmse: None,
            rel_error: None,
            cosine: None,
            snr_db: None,
        });
    }
    let millis = started.elapsed().as_millis() as u64;
    job.send(
        channel,
        Stage::Done,
        report.bytes_compared,
        report.bytes_compared,
        format!(
            "compared {} tensors: {} differ",
            report.tensors.len(),
            report.tensors.len() - report.identical_count
        ),
    );
    Ok(DiffResult {
        path_b: b.path().display().to_string(),
        rows,
        identical: report.identical_count as u64,
        bytes_compared: report.bytes_compared,
        millis,
    })
}

fn row_of(t: &diff::TensorDiff) -> DiffRow {
    let (status, reason) = match &t.status {
        DiffStatus::Compared => (RowStatus::Compared, None),
        DiffStatus::ShapeMismatch => (RowStatus::ShapeMismatch, None),
        DiffStatus::Unsupported(why) => (RowStatus::Unsupported, Some(why.clone())),
    };
    let finite = |x: Option<f64>| x.filter(|v| v.is_finite());
    DiffRow {
        name: t.name.clone(),
        status,
        reason,
        type_a: Some(t.type_a.clone()),
        type_b: Some(t.type_b.clone()),
        dims_a: t.dims_a.clone(),
        dims_b: t.dims_b.clone(),
        n_elements: t.n_elements,
        n_diff: t.n_diff,
        non_finite: t.non_finite,
        identical: t.identical,
        max_abs: finite(t.max_abs),
        mean_abs: finite(t.mean_abs),
        rmse: finite(t.rmse),
        rel_error: finite(t.rel_error),
        cosine: finite(t.cosine),
        snr_db: finite(t.snr_db),
    }
}

// ----- one tensor ------------------------------------------------------------------------

/// The `k` elements of `tensor` where A and B differ most (largest |A−B| first).
#[tauri::command]
#[specta::specta]
pub async fn diff_top(
    app: AppHandle,
    tensor: String,
    k: u32,
) -> Result<Vec<DiffPointRow>, IpcError> {
    blocking(app, move |s| top(s, &tensor, k)).await
}

/// [`diff_top`] without Tauri.
pub fn top(state: &AppState, tensor: &str, k: u32) -> Result<Vec<DiffPointRow>, IpcError> {
    if k == 0 || k as usize > MAX_TOP_K {
        return Err(IpcError::new(
            ErrorCode::BadRequest,
            format!("k = {k}: list between 1 and {MAX_TOP_K} differences"),
        ));
    }
    require_b(state)?;
    let points = state
        .session()
        .top_differences_other(tensor, k as usize)
        .map_err(other_diff_error)?;
    Ok(points
        .iter()
        .map(|p| DiffPointRow {
            index: p.index,
            row: p.row,
            col: p.col,
            a: f32_text(p.a),
            b: f32_text(p.b),
            delta: f32_text(p.delta()),
        })
        .collect())
}

/// The shortest decimal that reads back as `x`, or `NaN`, `Infinity`, `-Infinity`.
pub fn f32_text(x: f32) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{x}")
    }
}

/// Shape, types and colour scales of `tensor` in A and B (one pass over both).
#[tauri::command]
#[specta::specta]
pub async fn diff_tensor_info(app: AppHandle, tensor: String) -> Result<DiffTensorInfo, IpcError> {
    blocking(app, move |s| tensor_info(s, &tensor)).await
}

/// Which map a [`diff_tile`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The open model.
    A,
    /// Model B.
    B,
    /// A − B.
    Diff,
}

impl Side {
    fn parse(s: &str) -> Result<Side, IpcError> {
        match s {
            "a" => Ok(Side::A),
            "b" => Ok(Side::B),
            "diff" => Ok(Side::Diff),
            other => Err(IpcError::new(
                ErrorCode::BadRequest,
                format!("side '{other}': expected 'a', 'b' or 'diff'"),
            )),
        }
    }
}

/// Runs `f` on tensor `name` of A (session bytes) and of B, both as matrices.
fn with_pair<R>(
    state: &AppState,
    name: &str,
    f: impl FnOnce(&QuantMatrix<'_>, &QuantMatrix<'_>) -> Result<R, IpcError>,
) -> Result<R, IpcError> {
    let b = require_b(state)?;
    let layer = state.session().tensors()?;
    let tb = b.model().tensor(name).ok_or_else(|| {
        IpcError::new(
            ErrorCode::NotFound,
            format!(
                "model B ({}) has no tensor named '{name}'",
                b.path().display()
            ),
        )
    })?;
    let ty_b = tb.ty.known().ok_or_else(|| {
        IpcError::new(
            ErrorCode::Refused,
            format!("tensor '{name}' in model B: unknown type id {}", tb.ty.id()),
        )
    })?;
    let data_b = b.model().tensor_data(tb)?;
    let mb = QuantMatrix::new(ty_b, data_b, &tb.dims)
        .map_err(|e| lod_error(&format!("tensor '{name}' in model B"), e))?;
    layer.matrix(name, |ma| f(ma, &mb))?
}

/// [`diff_tensor_info`] without Tauri.
pub fn tensor_info(state: &AppState, name: &str) -> Result<DiffTensorInfo, IpcError> {
    let what = format!("tensor '{name}'");
    with_pair(state, name, |a, b| {
        let err = |e| lod_error(&what, e);
        let d = heatmap::Difference::new(a, b).map_err(err)?;
        let shape = heatmap::RowSource::shape(a);
        let full = shape.full();
        let sa = heatmap::stats(a, full).map_err(err)?;
        let sb = heatmap::stats(b, full).map_err(err)?;
        let sd = heatmap::stats(&d, full).map_err(err)?;
        Ok(DiffTensorInfo {
            rows: shape.rows,
            cols: shape.cols,
            type_a: a.ty().name().to_string(),
            type_b: b.ty().name().to_string(),
            abs_max_a: f64::from(sa.abs_max()),
            abs_max_b: f64::from(sb.abs_max()),
            abs_max_diff: f64::from(sd.abs_max()),
        })
    })
}

pub use super::TILE_HEADER;

/// The level-of-detail tile of A, B or A−B (`side` = `"a"`, `"b"`, `"diff"`) for rows
/// `row0..row0+rows`, columns `col0..col0+cols` of `tensor`, at most `width × height` cells.
/// Layout: [`TILE_HEADER`] bytes (u32 LE `width`, `height`, `planes` = 2, 0), then the
/// **mean** plane and the **peak** plane (signed value of largest |x|, NaN first), each
/// `width·height` f32 LE, row-major.
#[allow(clippy::too_many_arguments)]
#[tauri::command]
pub async fn diff_tile<R: tauri::Runtime>(
    app: AppHandle<R>,
    tensor: String,
    side: String,
    row0: u64,
    col0: u64,
    rows: u64,
    cols: u64,
    width: u32,
    height: u32,
) -> Result<Response, IpcError> {
    let side = Side::parse(&side)?;
    let vp = Viewport {
        row0,
        col0,
        rows,
        cols,
    };
    blocking(app, move |s| {
        tile_bytes(s, &tensor, side, vp, width, height)
    })
    .await
    .map(Response::new)
}

/// [`diff_tile`] without Tauri.
pub fn tile_bytes(
    state: &AppState,
    tensor: &str,
    side: Side,
    vp: Viewport,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, IpcError> {
    let tile = with_pair(state, tensor, |a, b| {
        let t = match side {
            Side::A => heatmap::lod(a, vp, width, height),
            Side::B => heatmap::lod(b, vp, width, height),
            Side::Diff => {
                heatmap::Difference::new(a, b).and_then(|d| heatmap::lod(&d, vp, width, height))
            }
        };
        t.map_err(|e| lod_error(&format!("tensor '{tensor}'"), e))
    })?;
    Ok(super::encode_tile(&tile))
}

// ----- copy B → A ------------------------------------------------------------------------

/// Copies `range` of `tensor` from model B into the open model (A) through the session: one
/// undo step, recorded and exported in configurations as a `lerp` with `t = 1` towards B.
/// Same-type blocks arrive byte for byte; across types B's values are re-encoded in A's type.
#[tauri::command]
#[specta::specta]
pub async fn copy_from_b(
    app: AppHandle,
    tensor: String,
    range: CopyRange,
) -> Result<CopyResult, IpcError> {
    blocking(app, move |s| copy(s, &tensor, &range)).await
}

/// [`copy_from_b`] without Tauri.
pub fn copy(state: &AppState, tensor: &str, range: &CopyRange) -> Result<CopyResult, IpcError> {
    require_b(state)?;
    let rep = state
        .session()
        .copy_from_other(tensor, &range.selection())?;
    Ok(CopyResult {
        elements: rep.elements_selected,
        changed: rep.encode.elements_changed,
        bytes_changed: rep.bytes_changed,
        blocks_requantized: rep.encode.blocks_requantized + rep.encode.blocks_requantized_whole,
        change: rep.change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::model::{attach_session, open_with_progress};
    use hotpatch_core::tensor::TransformOp;
    use hotpatch_gguf::GgufModel;
    use std::path::{Path, PathBuf};

    const PERTURBED: [&str; 3] = [
        "blk.0.attn_q.weight",      // Q4_K
        "blk.1.attn_q.weight",      // F16
        "blk.2.attn_output.weight", // F32
    ];

    use hotpatch_testkit::root;

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hotpatch-studio-diff-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(name)
    }

    /// The demo model (with generator arguments), generated once per test process and shared
    /// ([`hotpatch_testkit::shared_demo`]: to a partial file renamed when complete, so no test
    /// maps a file still being written).
    fn demo(name: &str, args: &[&str]) -> PathBuf {
        hotpatch_testkit::shared_demo(name, args)
    }

    /// State with A (a copy of the demo) open and B (perturbed) open for the diff.
    fn opened(tag: &str) -> (AppState, PathBuf, PathBuf) {
        let a = tmp(&format!("a-{tag}.gguf"));
        std::fs::copy(demo("demo.gguf", &[]), &a).unwrap();
        let b = demo("perturbed.gguf", &["--perturb", &PERTURBED.join(",")]);
        let state = AppState::default();
        let file = open_with_progress(a.clone(), 1, |_| {}).unwrap();
        attach_session(&state, &a, file).unwrap();
        open_b(&state, b.to_str().unwrap()).unwrap();
        (state, a, b)
    }

    fn quiet() -> Channel<Progress> {
        Channel::new(|_| Ok(()))
    }

    #[test]
    fn model_b_errors_name_the_file() {
        let state = AppState::default();
        assert_eq!(
            open_b(&state, "  ").unwrap_err().code,
            ErrorCode::BadRequest
        );
        let e = open_b(&state, "/nonexistent/model.gguf").unwrap_err();
        assert_eq!(e.code, ErrorCode::Io);
        assert!(
            e.message.contains("/nonexistent/model.gguf"),
            "{}",
            e.message
        );
        let not = root().join("Cargo.toml");
        let e = open_b(&state, not.to_str().unwrap()).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotGguf);
        let e = rank(&state, 1, &quiet()).unwrap_err();
        assert_eq!(e.code, ErrorCode::NoModel, "{}", e.message);
    }

    #[test]
    fn ranking_puts_the_perturbed_tensors_first_and_lists_every_tensor() {
        let (state, a, _) = opened("rank");
        let r = rank(&state, 2, &quiet()).unwrap();
        let n = GgufModel::open(&a).unwrap().tensors.len();
        assert_eq!(r.rows.len(), n, "one row per tensor");
        let mut top: Vec<&str> = r.rows[..PERTURBED.len()]
            .iter()
            .map(|x| x.name.as_str())
            .collect();
        top.sort();
        let mut want = PERTURBED.to_vec();
        want.sort();
        assert_eq!(top, want);
        assert_eq!(r.identical as usize, n - PERTURBED.len());
        assert!(r.rows[PERTURBED.len()..].iter().all(|x| x.identical));
        assert!(state.jobs.running().is_empty(), "the job is unregistered");

        // A job canceled before it starts stops with Canceled.
        state.jobs.cancel(9);
        assert_eq!(
            rank(&state, 9, &quiet()).unwrap_err().code,
            ErrorCode::Canceled
        );
    }

    fn f32s(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn tiles_of_a_b_and_the_difference_match_the_values() {
        let (state, _, b) = opened("tiles");
        let name = "blk.1.attn_q.weight"; // F16, 256 x 256
        let va = state
            .session()
            .tensors()
            .unwrap()
            .extract(name, None)
            .unwrap();
        let other = hotpatch_core::manager::Manager::initialize();
        other.attach(&b, hotpatch_core::Mode::Staged).unwrap();
        let vb = other.tensors().unwrap().extract(name, None).unwrap();
        // One cell per element: the tile's mean plane is the values themselves.
        let vp = Viewport {
            row0: 0,
            col0: 0,
            rows: 256,
            cols: 256,
        };
        for (side, want) in [
            (Side::A, va.clone()),
            (Side::B, vb.clone()),
            (
                Side::Diff,
                va.iter().zip(&vb).map(|(x, y)| x - y).collect::<Vec<f32>>(),
            ),
        ] {
            let bytes = tile_bytes(&state, name, side, vp, 256, 256).unwrap();
            assert_eq!(&bytes[..12], &[0, 1, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0]);
            let planes = f32s(&bytes[TILE_HEADER..]);
            assert_eq!(&planes[..want.len()], &want[..], "{side:?}: mean plane");
            assert_eq!(&planes[want.len()..], &want[..], "{side:?}: peak plane");
        }
        // Reduced: a 2x2 tile of A − B; each cell's peak is the largest |A − B| of its quarter.
        let bytes = tile_bytes(&state, name, Side::Diff, vp, 2, 2).unwrap();
        let planes = f32s(&bytes[TILE_HEADER..]);
        for (k, peak) in planes[4..].iter().enumerate() {
            let (ci, cj) = (k / 2, k % 2);
            let mut best = 0f32;
            for r in ci * 128..(ci + 1) * 128 {
                for c in cj * 128..(cj + 1) * 128 {
                    let d = va[r * 256 + c] - vb[r * 256 + c];
                    if d.abs() > best.abs() {
                        best = d;
                    }
                }
            }
            assert_eq!(*peak, best, "cell {ci},{cj}");
        }
        let info = tensor_info(&state, name).unwrap();
        let max = va
            .iter()
            .zip(&vb)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert_eq!(info.abs_max_diff, f64::from(max));
        assert_eq!((info.rows, info.cols), (256, 256));
        // Bad requests name the problem.
        let e =
            tile_bytes(&state, name, Side::Diff, Viewport { rows: 300, ..vp }, 2, 2).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains(name), "{}", e.message);
        assert_eq!(Side::parse("c").unwrap_err().code, ErrorCode::BadRequest);
        let e = tile_bytes(&state, "nope", Side::A, vp, 2, 2).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
    }

    #[test]
    fn top_and_copy_make_a_equal_to_b() {
        let (state, _, b) = opened("copy");
        let name = "blk.0.attn_q.weight"; // Q4_K
        let pts = top(&state, name, 5).unwrap();
        assert_eq!(pts.len(), 5);
        let d = |p: &DiffPointRow| p.delta.parse::<f32>().unwrap().abs();
        assert!(
            pts.windows(2).all(|w| d(&w[0]) >= d(&w[1])),
            "largest first"
        );
        assert_eq!(
            top(&state, name, 0).unwrap_err().code,
            ErrorCode::BadRequest
        );

        // Rows 0..4 first, then the whole tensor.
        let r = copy(&state, name, &CopyRange::Rows { start: 0, end: 4 }).unwrap();
        assert_eq!(r.elements, 4 * 256);
        assert!(r.change.is_some());
        let still = top(&state, name, 10_000).unwrap();
        assert!(still.iter().all(|p| p.row >= 4), "rows 0..4 now equal B's");
        let e = copy(
            &state,
            name,
            &CopyRange::Rows {
                start: 4,
                end: 9999,
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);
        copy(&state, name, &CopyRange::All).unwrap();
        assert!(top(&state, name, 10).unwrap().is_empty(), "A now equals B");
        let mb = GgufModel::open(&b).unwrap();
        let tb = mb.tensor(name).unwrap();
        let layer = state.session().tensors().unwrap();
        assert_eq!(
            layer.read_bytes(name, 0, tb.nbytes).unwrap(),
            mb.tensor_data(tb).unwrap(),
            "A holds B's bytes"
        );
        // Recorded: the configuration carries both copies as lerps towards B.
        let c = state.session().export_configuration().unwrap();
        assert_eq!(c.tensor_patches.len(), 2);
        assert!(matches!(
            &c.tensor_patches[1].transform,
            TransformOp::Lerp { model, t } if *t == 1.0 && Path::new(model) == b
        ));
        // Undone: the last copy is gone from A again.
        state.session().engine().undo().unwrap();
        assert!(!top(&state, name, 10).unwrap().is_empty());
    }
}
