//! Opening a model and reading its index: `open_model`, `list_tensors`, `read_metadata`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use hotpatch_gguf::{GgufModel, MetaArray, MetaValue, TensorInfo};
use serde::Serialize;
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::Channel;
use tauri::State;

use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

/// How many elements of a metadata array are sent to the UI (the rest is only counted).
pub const ARRAY_PREVIEW: usize = 16;

/// What the window shows about an open model.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ModelSummary {
    /// Absolute path of the file (the first shard of a split model).
    pub path: String,
    /// File name only.
    pub file_name: String,
    /// Size of the model in bytes (of all its files).
    #[specta(type = Number)]
    pub file_size: u64,
    /// How many files the model is split into (1: a single file).
    pub shards: u32,
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Data alignment in bytes.
    #[specta(type = Number)]
    pub alignment: u64,
    /// Offset of the tensor data section.
    #[specta(type = Number)]
    pub data_offset: u64,
    /// `general.architecture`, if present.
    pub architecture: Option<String>,
    /// `general.name`, if present.
    pub name: Option<String>,
    /// Number of tensors.
    #[specta(type = Number)]
    pub tensor_count: u64,
    /// Number of metadata entries.
    #[specta(type = Number)]
    pub metadata_count: u64,
    /// Sum of all tensors' data sizes in bytes.
    #[specta(type = Number)]
    pub tensor_bytes: u64,
    /// Tensors per element type, sorted by type name.
    pub types: Vec<TypeCount>,
}

/// How many tensors (and bytes) of one element type a model holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TypeCount {
    /// Type name as ggml spells it (`Q4_K`, `F32`, `UNKNOWN(99)`).
    pub ty: String,
    /// Number of tensors.
    #[specta(type = Number)]
    pub count: u64,
    /// Their data in bytes.
    #[specta(type = Number)]
    pub bytes: u64,
}

/// One row of the tensor list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TensorRow {
    /// Position in the file's tensor index.
    pub index: u32,
    /// Full name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Type name (`Q4_K`), or `UNKNOWN(id)`.
    pub ty: String,
    /// Raw ggml type id.
    pub type_id: u32,
    /// Whether this build knows the type (and so can decode it).
    pub known_type: bool,
    /// Dimensions in ggml order (`ne[0]` first).
    #[specta(type = Vec<Number>)]
    pub dims: Vec<u64>,
    /// Number of elements.
    #[specta(type = Number)]
    pub n_elements: u64,
    /// Absolute offset of the data in its file.
    #[specta(type = Number)]
    pub offset: u64,
    /// The file holding the data: 0-based shard number (0 for a single-file model).
    pub shard: u32,
    /// Data size in bytes.
    #[specta(type = Number)]
    pub nbytes: u64,
    /// The transformer block (`blk.N.`) the tensor belongs to, if any.
    pub block: Option<u32>,
}

/// A metadata value as the UI shows it (see the number rule in [`crate::ipc`]).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum MetaView {
    /// Any integer width, as a decimal string.
    Int {
        /// Decimal digits, with a leading `-` when negative.
        text: String,
    },
    /// `f32` or `f64`, formatted by Rust (`NaN`, `inf` included).
    Float {
        /// The value as text, shortest round-trip form.
        text: String,
    },
    /// A bool.
    Bool {
        /// The value.
        value: bool,
    },
    /// A string; invalid UTF-8 is replaced and flagged.
    Str {
        /// The text.
        text: String,
        /// Whether invalid UTF-8 was replaced.
        lossy: bool,
    },
    /// An array: its element type, length and the first elements.
    Array {
        /// Element type name (`string`, `i32`, ...).
        #[serde(rename = "elementType")]
        element_type: String,
        /// Number of elements.
        #[specta(type = Number)]
        len: u64,
        /// The first [`ARRAY_PREVIEW`] elements.
        head: Vec<MetaView>,
    },
}

/// One metadata entry.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct MetaRow {
    /// The key.
    pub key: String,
    /// The GGUF value type name.
    pub value_type: String,
    /// The value.
    pub value: MetaView,
    /// Absolute offset of the entry in the file.
    #[specta(type = Number)]
    pub offset: u64,
}

/// The model to open at launch (command-line argument, `$HOTPATCH_MODEL`, else the demo model).
#[tauri::command]
#[specta::specta]
pub fn startup_model(state: State<'_, AppState>) -> Option<String> {
    state.startup.as_ref().map(|p| p.display().to_string())
}

/// Opens a GGUF file, replacing the open model, and attaches it to the edit session (staged:
/// edits stay in memory until saved; unsaved edits of the previous model are discarded).
/// Streams progress over `on_progress` as job `job`.
#[tauri::command]
#[specta::specta]
pub async fn open_model(
    path: String,
    job: u32,
    on_progress: Channel<Progress>,
    state: State<'_, AppState>,
) -> Result<ModelSummary, IpcError> {
    if path.trim().is_empty() {
        return Err(IpcError::new(ErrorCode::BadRequest, "no file path given"));
    }
    let path = PathBuf::from(path);
    let send = move |p: Progress| {
        // A closed channel (window reloaded) must not fail the open itself.
        let _ = on_progress.send(p);
    };
    let opening = path.clone();
    let file = tauri::async_runtime::spawn_blocking(move || open_with_progress(opening, job, send))
        .await
        .map_err(|e| IpcError::new(ErrorCode::Internal, format!("open task failed: {e}")))??;
    let summary = summarize(&file);
    // A split model is named by its first file, whichever file was picked.
    let first = file.shards[0].path().to_path_buf();
    attach_session(&state, &first, file)?;
    remember_opened(&first);
    Ok(summary)
}

/// Makes `file` (opened from `path`, every shard of a split model) the session's model,
/// attached in staged mode. On failure the session has no model attached.
pub fn attach_session(
    state: &AppState,
    path: &std::path::Path,
    file: GgufModel,
) -> Result<(), IpcError> {
    state
        .session()
        .attach_model(Arc::new(file), hotpatch_core::Mode::Staged)
        .map_err(|e| IpcError::from(e).with_context(&path.display().to_string()))?;
    Ok(())
}

/// How many patch events the session has emitted so far (edits, undo, redo, saves). A view
/// that rendered revision `r` refetches when this differs.
#[tauri::command]
#[specta::specta]
pub fn session_revision(state: State<'_, AppState>) -> u32 {
    // Wraps after 4 billion events; views only compare for inequality.
    state.revision() as u32
}

/// The open model's summary.
#[tauri::command]
#[specta::specta]
pub fn model_summary(state: State<'_, AppState>) -> Result<ModelSummary, IpcError> {
    Ok(summarize(current(&state)?.as_ref()))
}

/// Every tensor of the open model, in file order (shard by shard for a split model).
#[tauri::command]
#[specta::specta]
pub fn list_tensors(state: State<'_, AppState>) -> Result<Vec<TensorRow>, IpcError> {
    let model = current(&state)?;
    Ok(model
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| tensor_row(i, t))
        .collect())
}

/// Every metadata entry of the open model, in file order (arrays previewed).
#[tauri::command]
#[specta::specta]
pub fn read_metadata(state: State<'_, AppState>) -> Result<Vec<MetaRow>, IpcError> {
    let model = current(&state)?;
    Ok(model
        .index()
        .metadata
        .iter()
        .map(|e| MetaRow {
            key: e.key.clone(),
            value_type: e.value.value_type().name().to_string(),
            value: meta_view(&e.value),
            offset: e.offset,
        })
        .collect())
}

fn current(state: &AppState) -> Result<Arc<GgufModel>, IpcError> {
    state.require_model()
}

/// Opens `path` (every shard of a split model), reporting each stage to `send`. Runs on a
/// blocking thread.
pub fn open_with_progress(
    path: PathBuf,
    job: u32,
    send: impl Fn(Progress),
) -> Result<GgufModel, IpcError> {
    use hotpatch_core::session::{open_model, OpenStage};
    let mut report = |stage, done, total, message| {
        let stage = match stage {
            OpenStage::Parse => Stage::Parse,
            OpenStage::Index => Stage::Index,
            OpenStage::Done => Stage::Done,
        };
        send(Progress {
            job,
            stage,
            done,
            total,
            message,
        })
    };
    open_model(&path, &mut report).map_err(|e| match e {
        hotpatch_core::manager::ManagerError::Model(e) => {
            IpcError::from(e).with_context(&path.display().to_string())
        }
        e => e.into(),
    })
}

/// The summary of an open model.
pub fn summarize(model: &GgufModel) -> ModelSummary {
    let idx = model.index();
    let mut types: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for t in &model.tensors {
        let e = types.entry(t.ty.to_string()).or_default();
        e.0 += 1;
        e.1 += t.nbytes;
    }
    let path = model.shards[0].path();
    ModelSummary {
        path: path.display().to_string(),
        file_name: path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        file_size: model.shards.iter().map(|f| f.index.file_size).sum(),
        shards: u32::try_from(model.shards.len()).unwrap_or(u32::MAX),
        version: idx.version,
        alignment: idx.alignment,
        data_offset: idx.data_offset,
        architecture: idx.architecture().map(str::to_owned),
        name: idx.get_str("general.name").map(str::to_owned),
        tensor_count: model.tensors.len() as u64,
        metadata_count: idx.metadata.len() as u64,
        tensor_bytes: model.tensors.iter().map(|t| t.nbytes).sum(),
        types: types
            .into_iter()
            .map(|(ty, (count, bytes))| TypeCount { ty, count, bytes })
            .collect(),
    }
}

/// The list row of tensor number `index`.
pub fn tensor_row(index: usize, t: &TensorInfo) -> TensorRow {
    TensorRow {
        index: u32::try_from(index).unwrap_or(u32::MAX),
        name: t.name.clone(),
        ty: t.ty.to_string(),
        type_id: t.ty.id(),
        known_type: t.ty.known().is_some(),
        dims: t.dims.clone(),
        n_elements: t.n_elements,
        offset: t.offset,
        shard: u32::try_from(t.shard).unwrap_or(u32::MAX),
        nbytes: t.nbytes,
        block: block_of(&t.name),
    }
}

/// `Some(N)` for names of the form `blk.N.…`.
pub fn block_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("blk.")?;
    let (n, tail) = rest.split_once('.')?;
    if tail.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The UI form of a metadata value.
pub fn meta_view(v: &MetaValue) -> MetaView {
    let int = |text: String| MetaView::Int { text };
    match v {
        MetaValue::U8(x) => int(x.to_string()),
        MetaValue::I8(x) => int(x.to_string()),
        MetaValue::U16(x) => int(x.to_string()),
        MetaValue::I16(x) => int(x.to_string()),
        MetaValue::U32(x) => int(x.to_string()),
        MetaValue::I32(x) => int(x.to_string()),
        MetaValue::U64(x) => int(x.to_string()),
        MetaValue::I64(x) => int(x.to_string()),
        MetaValue::F32(x) => MetaView::Float {
            text: x.to_string(),
        },
        MetaValue::F64(x) => MetaView::Float {
            text: x.to_string(),
        },
        MetaValue::Bool(b) => MetaView::Bool { value: *b },
        MetaValue::String(bytes) => str_view(bytes),
        MetaValue::Array(a) => array_view(a),
    }
}

fn str_view(bytes: &[u8]) -> MetaView {
    match std::str::from_utf8(bytes) {
        Ok(s) => MetaView::Str {
            text: s.to_owned(),
            lossy: false,
        },
        Err(_) => MetaView::Str {
            text: String::from_utf8_lossy(bytes).into_owned(),
            lossy: true,
        },
    }
}

fn array_view(a: &MetaArray) -> MetaView {
    fn head<T, F: Fn(&T) -> MetaView>(v: &[T], f: F) -> Vec<MetaView> {
        v.iter().take(ARRAY_PREVIEW).map(f).collect()
    }
    let int = |s: String| MetaView::Int { text: s };
    let items = match a {
        MetaArray::U8(v) => head(v, |x| int(x.to_string())),
        MetaArray::I8(v) => head(v, |x| int(x.to_string())),
        MetaArray::U16(v) => head(v, |x| int(x.to_string())),
        MetaArray::I16(v) => head(v, |x| int(x.to_string())),
        MetaArray::U32(v) => head(v, |x| int(x.to_string())),
        MetaArray::I32(v) => head(v, |x| int(x.to_string())),
        MetaArray::U64(v) => head(v, |x| int(x.to_string())),
        MetaArray::I64(v) => head(v, |x| int(x.to_string())),
        MetaArray::F32(v) => head(v, |x| MetaView::Float {
            text: x.to_string(),
        }),
        MetaArray::F64(v) => head(v, |x| MetaView::Float {
            text: x.to_string(),
        }),
        MetaArray::Bool(v) => head(v, |x| MetaView::Bool { value: *x }),
        MetaArray::String(v) => v.iter().take(ARRAY_PREVIEW).map(str_view).collect(),
        MetaArray::Array(v) => head(v, array_view),
    };
    MetaView::Array {
        element_type: a.element_type().name().to_string(),
        len: a.len() as u64,
        head: items,
    }
}

// ----- recent files, demo model, mode, live visibility, shards --------------------------------

/// The recent-files list in the user's config dir (`$HOTPATCH_RECENT` overrides the file, for
/// tests), or `None` when the OS has no config dir.
pub fn recent_list() -> Option<hotpatch_core::recent::RecentFiles> {
    let file = std::env::var_os("HOTPATCH_RECENT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(hotpatch_core::recent::RecentFiles::default_location)?;
    Some(hotpatch_core::recent::RecentFiles::new(
        file,
        hotpatch_core::recent::DEFAULT_LIMIT,
    ))
}

/// One recently opened model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RecentFile {
    /// Absolute path.
    pub path: String,
    /// File name only.
    pub file_name: String,
    /// Whether the file still exists.
    pub exists: bool,
}

fn recent_rows(v: Vec<hotpatch_core::recent::RecentEntry>) -> Vec<RecentFile> {
    v.into_iter()
        .map(|e| RecentFile {
            file_name: e
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            path: e.path.display().to_string(),
            exists: e.exists,
        })
        .collect()
}

/// The recently opened models, most recent first (missing files marked).
#[tauri::command]
#[specta::specta]
pub fn recent_files() -> Vec<RecentFile> {
    recent_list().map_or_else(Vec::new, |l| recent_rows(l.list()))
}

/// Removes a path from the recent list (`all_missing`: every missing file instead).
#[tauri::command]
#[specta::specta]
pub fn forget_recent(path: String, all_missing: bool) -> Result<Vec<RecentFile>, IpcError> {
    let list = recent_list()
        .ok_or_else(|| IpcError::new(ErrorCode::Io, "this system has no config directory"))?;
    let r = if all_missing {
        list.prune_missing()
    } else {
        list.forget(std::path::Path::new(&path))
    };
    r.map(recent_rows)
        .map_err(|e| IpcError::new(ErrorCode::Io, format!("{}: {e}", list.file().display())))
}

/// Records `path` as opened (best effort: a read-only config dir must not fail an open).
pub fn remember_opened(path: &std::path::Path) {
    if let Some(l) = recent_list() {
        let _ = l.touch(path);
    }
}

/// The demo model's path, if it was generated (`scripts/make_demo_model.py`).
#[tauri::command]
#[specta::specta]
pub fn demo_model_path() -> Option<String> {
    crate::startup::find_demo_model().map(|p| p.display().to_string())
}

/// Attaches the open model again in `mode` (staged or live). Refused while anything is
/// unsaved. Live: every later edit reaches the file, and a running llama.cpp, at once.
#[tauri::command]
#[specta::specta]
pub fn set_model_mode(
    mode: crate::commands::edit::ModelMode,
    state: State<'_, AppState>,
) -> Result<crate::commands::edit::EditState, IpcError> {
    use crate::commands::edit::ModelMode as M;
    let m = state.session();
    let core = match mode {
        M::Staged => hotpatch_core::Mode::Staged,
        M::Live => hotpatch_core::Mode::Live,
        M::ReadOnly => hotpatch_core::Mode::ReadOnly,
    };
    m.switch_mode(core)?;
    Ok(crate::commands::edit::edit_state_of(m))
}

/// Whether a running llama.cpp sees live edits of one tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct LiveRow {
    /// Tensor name.
    pub name: String,
    /// Type name.
    pub ty: String,
    /// Data size in bytes.
    #[specta(type = Number)]
    pub nbytes: u64,
    /// `live`, `copied` or `unknown`.
    pub visibility: String,
    /// Why, in one sentence.
    pub reason: String,
}

/// What a running llama.cpp on this machine sees of live edits: the CPU the verdicts were made
/// for, how to make an external server see every edit, and one row per tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct LiveReport {
    /// The host CPU as the verdicts read it ("x86_64 with avx2, avx512f").
    pub cpu: String,
    /// How to make an external llama.cpp see every live edit.
    pub hint: String,
    /// Every tensor of every file of the model.
    pub rows: Vec<LiveRow>,
}

/// Every tensor of the open model with whether a running llama.cpp (CPU, mmap) on this
/// machine sees live edits of it, and why (`hotpatch_core::live`).
#[tauri::command]
#[specta::specta]
pub fn live_tensors(state: State<'_, AppState>) -> Result<LiveReport, IpcError> {
    let m = state.session();
    let regions: Vec<_> = m.shards()?.into_iter().map(|(_, r)| r).collect();
    let cpu = hotpatch_core::CpuInfo::host();
    let rows = m
        .engine()
        .live_visibility(&regions, &cpu)?
        .into_iter()
        .map(live_row)
        .collect();
    Ok(LiveReport {
        cpu: cpu.summary(),
        hint: hotpatch_core::NO_REPACK_HINT.to_string(),
        rows,
    })
}

/// The UI row for one tensor's live visibility.
pub fn live_row(t: hotpatch_core::TensorLiveness) -> LiveRow {
    LiveRow {
        name: t.name,
        ty: t.ty,
        nbytes: t.nbytes,
        visibility: t.visibility.as_str().into(),
        reason: t.reason,
    }
}

/// One file of a (possibly split) model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ShardRow {
    /// 1-based shard number.
    pub number: u32,
    /// Absolute path.
    pub path: String,
    /// File name.
    pub file_name: String,
    /// File size.
    #[specta(type = Number)]
    pub file_size: u64,
    /// Tensors held.
    #[specta(type = Number)]
    pub tensors: u64,
    /// Their data in bytes.
    #[specta(type = Number)]
    pub tensor_bytes: u64,
}

/// The files of the open model: one row, or every shard of a split model (`-00001-of-0000N`),
/// each checked (present, numbered right, no duplicate tensors) by the GGUF crate.
#[tauri::command]
#[specta::specta]
pub fn model_shards(state: State<'_, AppState>) -> Result<Vec<ShardRow>, IpcError> {
    let path = current(&state)?.shards[0].path().to_path_buf();
    shards_of(&path)
}

/// [`model_shards`] for a path.
pub fn shards_of(path: &std::path::Path) -> Result<Vec<ShardRow>, IpcError> {
    let model = hotpatch_gguf::GgufModel::open(path)
        .map_err(|e| IpcError::from(e).with_context(&path.display().to_string()))?;
    Ok(model
        .shards
        .iter()
        .enumerate()
        .map(|(i, f)| ShardRow {
            number: u32::try_from(i + 1).unwrap_or(u32::MAX),
            path: f.path().display().to_string(),
            file_name: f
                .path()
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            file_size: f.index.file_size,
            tensors: f.index.tensors.len() as u64,
            tensor_bytes: f.index.tensors.iter().map(|t| t.nbytes).sum(),
        })
        .collect())
}
