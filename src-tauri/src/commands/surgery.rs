//! Model surgery on the open model (`hotpatch_core::surgery`): a recipe (the JSON list of
//! operations a configuration's `surgery` section holds) is previewed, written to a new file as
//! a job, or saved as a configuration that `hotpatch apply` replays. The operations are the
//! CLI's (`convert`, `layers`, `tensors`, `merge`, `lora`, `ablate`); so are their errors.

use std::path::{Path, PathBuf};

use hotpatch_core::surgery::{self, LayerEdit, SurgeryError, SurgeryOp};
use serde::Serialize;
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager as _};

use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

impl From<SurgeryError> for IpcError {
    fn from(e: SurgeryError) -> Self {
        let code = match &e {
            SurgeryError::Gguf { .. } => ErrorCode::InvalidGguf,
            SurgeryError::Invalid { .. } => ErrorCode::Refused,
            SurgeryError::Write { .. } => ErrorCode::Io,
            SurgeryError::Canceled => ErrorCode::Canceled,
        };
        IpcError::new(code, e.to_string())
    }
}

/// One tensor of the output (or one removed).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SurgeryTensorView {
    /// Output name.
    pub name: String,
    /// Output type (empty when removed).
    pub ty: String,
    /// The type of the data it comes from.
    pub source_ty: String,
    /// Dimensions, ggml order (fastest first).
    #[specta(type = Vec<Number>)]
    pub dims: Vec<u64>,
    /// Output bytes.
    #[specta(type = Number)]
    pub bytes: u64,
    /// Where it comes from (`this model: blk.3.attn_q.weight`, `merge of 2 models`, …).
    pub origin: String,
    /// What happens to it: `unchanged`, `copied`, `removed`, or the steps.
    pub action: String,
    /// Whether it differs from the input's tensor of that name.
    pub changed: bool,
}

/// One metadata change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SurgeryMetaView {
    /// The key.
    pub key: String,
    /// Before (absent: added).
    pub before: Option<String>,
    /// After (absent: removed).
    pub after: Option<String>,
}

/// What a recipe would write.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SurgeryPreviewView {
    /// The operations, described.
    pub ops: Vec<String>,
    /// Warnings (a conversion to a more precise type gains nothing, …).
    pub notes: Vec<String>,
    /// Tensors in the output.
    #[specta(type = Number)]
    pub tensor_count: u64,
    /// Tensors changed, added or removed.
    #[specta(type = Number)]
    pub changed: u64,
    /// Tensor data bytes of the output.
    #[specta(type = Number)]
    pub data_bytes: u64,
    /// Tensor data bytes of the input.
    #[specta(type = Number)]
    pub input_bytes: u64,
    /// Every output tensor, in order, then every removed one.
    pub tensors: Vec<SurgeryTensorView>,
    /// Metadata changes (`block_count`, per-layer arrays, …).
    pub metadata: Vec<SurgeryMetaView>,
}

fn preview_view(p: &surgery::SurgeryPreview) -> SurgeryPreviewView {
    SurgeryPreviewView {
        ops: p.ops.clone(),
        notes: p.notes.clone(),
        tensor_count: p.tensor_count,
        changed: p.changed,
        data_bytes: p.data_bytes,
        input_bytes: p.input_bytes,
        tensors: p
            .tensors
            .iter()
            .map(|t| SurgeryTensorView {
                name: t.name.clone(),
                ty: t.ty.clone(),
                source_ty: t.source_ty.clone(),
                dims: t.dims.clone(),
                bytes: t.bytes,
                origin: t.origin.clone(),
                action: t.action.clone(),
                changed: t.changed,
            })
            .collect(),
        metadata: p
            .metadata
            .iter()
            .map(|m| SurgeryMetaView {
                key: m.key.clone(),
                before: m.before.clone(),
                after: m.after.clone(),
            })
            .collect(),
    }
}

/// The recipe's operations, or a `BadRequest` naming the operation and field.
fn ops_of(recipe: &str) -> Result<Vec<SurgeryOp>, IpcError> {
    surgery::parse_recipe(recipe).map_err(|e| IpcError::new(ErrorCode::BadRequest, e.to_string()))
}

/// The open model's file and folder (relative paths in a recipe are resolved against it).
fn model_file(state: &AppState) -> Result<(PathBuf, PathBuf), IpcError> {
    let model = state.require_model()?;
    let path = model.shards[0].path().to_path_buf();
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok((path, dir))
}

/// Plans the recipe on the open model's file and describes what it would write.
#[tauri::command]
#[specta::specta]
pub async fn surgery_preview(
    app: AppHandle,
    recipe: String,
) -> Result<SurgeryPreviewView, IpcError> {
    super::blocking(app, move |state| {
        let ops = ops_of(&recipe)?;
        let (path, dir) = model_file(state)?;
        let plan = surgery::plan(&path, &ops, &dir)?;
        Ok(preview_view(&plan.preview()))
    })
    .await
}

/// The layer sequence of a drop / keep / repeat / insert on the open model, as the `slices` of
/// a `layers` operation (the arithmetic `hotpatch layers` does).
#[tauri::command]
#[specta::specta]
pub fn surgery_layer_slices(
    state: tauri::State<'_, AppState>,
    mode: String,
    list: String,
    from: Option<String>,
    at: Option<u32>,
) -> Result<Vec<LayerSliceView>, IpcError> {
    let model = state.require_model()?;
    let n = model.index().block_count().ok_or_else(|| {
        IpcError::new(
            ErrorCode::Refused,
            "this model has no <arch>.block_count: it has no layers to change",
        )
    })?;
    let edit = LayerEdit::from_mode(&mode, &list, from.as_deref(), at)
        .map_err(|e| IpcError::new(ErrorCode::BadRequest, e))?;
    let slices = edit
        .slices(n)
        .map_err(|e| IpcError::new(ErrorCode::BadRequest, format!("layers: {e}")))?;
    Ok(slices
        .into_iter()
        .map(|s| LayerSliceView {
            model: s.model,
            layers: s.layers,
        })
        .collect())
}

/// A run of layers of one model, as a `layers` operation's `slices` hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct LayerSliceView {
    /// The model the layers come from (`None`: the open model).
    pub model: Option<String>,
    /// Layer numbers, a list like `0-3,5`.
    pub layers: String,
}

/// What a write produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SurgeryWritten {
    /// The new file.
    pub path: String,
    /// Its size.
    #[specta(type = Number)]
    pub file_size: u64,
    /// Tensors in it.
    pub tensors: u32,
    /// Wall time of the write, in milliseconds.
    #[specta(type = Number)]
    pub millis: u64,
}

/// Writes the recipe's result to `out` (a new file, atomically; never one of the inputs), as a
/// job: progress in bytes over `channel`, `cancel_job` stops it and nothing is written.
#[tauri::command]
#[specta::specta]
pub async fn surgery_write(
    app: AppHandle,
    recipe: String,
    out: String,
    job: u32,
    channel: Channel<Progress>,
) -> Result<SurgeryWritten, IpcError> {
    let out = out.trim().to_string();
    if out.is_empty() {
        return Err(IpcError::new(
            ErrorCode::BadRequest,
            "output file: give the path of the new model",
        ));
    }
    let run = tauri::async_runtime::spawn_blocking(move || -> Result<SurgeryWritten, IpcError> {
        let state = app.state::<AppState>();
        let ops = ops_of(&recipe)?;
        let (path, dir) = model_file(&state)?;
        let job = state.jobs.register(job);
        let plan = surgery::plan(&path, &ops, &dir)?;
        let dest = PathBuf::from(&out);
        let started = std::time::Instant::now();
        let mut forward = job.progress_fn(&channel, Stage::Write, "writing the new model");
        let written = surgery::execute(&plan, &dest, &mut |p| forward(p))?;
        drop(forward);
        job.send(
            &channel,
            Stage::Done,
            written.file_size,
            written.file_size,
            format!("wrote {}", dest.display()),
        );
        Ok(SurgeryWritten {
            path: dest.display().to_string(),
            file_size: written.file_size,
            tensors: u32::try_from(plan.tensors.len()).unwrap_or(u32::MAX),
            millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    });
    run.await
        .map_err(|e| IpcError::new(ErrorCode::Internal, format!("worker failed: {e}")))?
}

/// Saves the recipe as a configuration (version 3, with the open model's identity) at `path`,
/// atomically; `hotpatch apply CONFIG MODEL --out FILE` replays it.
#[tauri::command]
#[specta::specta]
pub async fn surgery_record(app: AppHandle, recipe: String, path: String) -> Result<(), IpcError> {
    super::blocking(app, move |state| {
        let ops = ops_of(&recipe)?;
        let (model, dir) = model_file(state)?;
        let plan = surgery::plan(&model, &ops, &dir)?;
        let config = surgery::record(&plan, &ops);
        let dest = PathBuf::from(path.trim());
        hotpatch_core::config::file::write(&dest, &config).map_err(|e| {
            let code = match e {
                hotpatch_core::config::file::ConfigFileError::Io { .. } => ErrorCode::Io,
                hotpatch_core::config::file::ConfigFileError::Refused { .. } => {
                    ErrorCode::BadRequest
                }
            };
            IpcError::new(code, e.to_string())
        })
    })
    .await
}
