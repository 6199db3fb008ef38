//! The session's edit state: undo / redo / history, Save / Save As, staged metadata edits.
//!
//! Every command forwards to the [`hotpatch_core::manager::Manager`] held in [`AppState`]:
//! one undo timeline over engine (byte, tensor) changes and staged metadata edits
//! (`hotpatch_core::metadata`). Save and Save As run on a blocking thread with progress and
//! Cancel (a job id from the UI). When a save rewrites the file (pending metadata, or Save As),
//! the model is attached again and the shell's parsed index is replaced, so every screen reads
//! the new header.

use std::path::PathBuf;

use hotpatch_core::manager::Manager;
use hotpatch_core::metadata::{
    edit_text, parse_array, parse_value, value_type_from_name, EntryStatus,
};
use hotpatch_core::session::StepKind;
use hotpatch_core::Mode;
use hotpatch_gguf::ValueType;
use serde::Serialize;
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager as _, State};

use crate::commands::model::{meta_view, MetaView};
use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

/// How the open model is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ModelMode {
    /// Edits live in a private copy until Save.
    Staged,
    /// Edits reach the file (and a running llama.cpp) at once.
    Live,
    /// Nothing can be changed.
    ReadOnly,
}

impl From<Mode> for ModelMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Staged => ModelMode::Staged,
            Mode::Live => ModelMode::Live,
            Mode::ReadOnly => ModelMode::ReadOnly,
        }
    }
}

/// One step of the undo history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    /// `engine` (bytes, tensors) or `metadata`.
    pub kind: String,
    /// Id within its journal.
    #[specta(type = Number)]
    pub id: u64,
    /// What the step did.
    pub label: String,
    /// Bytes covered (0 for metadata edits).
    #[specta(type = Number)]
    pub bytes: u64,
    /// Undone (the next redo replays the first undone row).
    pub undone: bool,
}

/// What the top bar shows: can undo/redo, modified, mode, history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct EditState {
    /// The open model's path, if one is open.
    pub path: Option<String>,
    /// Its mapping mode.
    pub mode: Option<ModelMode>,
    /// Something can be undone.
    pub can_undo: bool,
    /// Something can be redone.
    pub can_redo: bool,
    /// A save would write something.
    pub modified: bool,
    /// Staged bytes not yet written to the file.
    #[specta(type = Number)]
    pub dirty_bytes: u64,
    /// Metadata edits waiting for Save.
    pub pending_metadata: u32,
    /// The history, oldest first, then the undone steps in redo order.
    pub history: Vec<HistoryRow>,
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SaveResult {
    /// The file written (now the open model).
    pub path: String,
    /// Bytes written.
    #[specta(type = Number)]
    pub bytes_written: u64,
    /// The whole file was rewritten (metadata edits, or Save As).
    pub rewritten: bool,
    /// The model was attached again: the undo history starts over.
    pub reattached: bool,
}

/// The state of the session (for the top bar); works with no model open too.
pub fn edit_state_of(m: &Manager) -> EditState {
    let attached = m.attached().ok();
    let dirty_bytes = m
        .region()
        .ok()
        .and_then(|r| m.engine().region_info(r).ok())
        .map_or(0, |i| i.dirty_bytes);
    let history = m
        .session_history()
        .into_iter()
        .map(|s| HistoryRow {
            kind: match s.kind {
                StepKind::Engine => "engine".into(),
                StepKind::Metadata => "metadata".into(),
            },
            id: s.id,
            label: s.label,
            bytes: s.bytes,
            undone: s.undone,
        })
        .collect();
    EditState {
        path: attached.as_ref().map(|(p, _)| p.display().to_string()),
        mode: attached.map(|(_, m)| m.into()),
        can_undo: m.can_undo(),
        can_redo: m.can_redo(),
        modified: m.is_modified(),
        dirty_bytes,
        pending_metadata: u32::try_from(m.metadata_journal().pending().len()).unwrap_or(u32::MAX),
        history,
    }
}

/// The session's undo/redo/modified state and history.
#[tauri::command]
#[specta::specta]
pub fn edit_state(state: State<'_, AppState>) -> EditState {
    edit_state_of(state.session())
}

/// Undoes the last step (engine change or metadata edit).
#[tauri::command]
#[specta::specta]
pub fn undo(state: State<'_, AppState>) -> Result<EditState, IpcError> {
    do_undo(&state, true)
}

/// Redoes the last undone step.
#[tauri::command]
#[specta::specta]
pub fn redo(state: State<'_, AppState>) -> Result<EditState, IpcError> {
    do_undo(&state, false)
}

/// [`undo`] / [`redo`] without Tauri (for tests).
pub fn do_undo(state: &AppState, undo: bool) -> Result<EditState, IpcError> {
    let m = state.session();
    m.region()?;
    let r = if undo { m.undo() } else { m.redo() };
    r?;
    Ok(edit_state_of(m))
}

/// Saves into the open model's file (changed ranges, or a rewrite when metadata changed).
#[tauri::command]
#[specta::specta]
pub async fn save_model(
    job: u32,
    on_progress: Channel<Progress>,
    app: AppHandle,
) -> Result<SaveResult, IpcError> {
    tauri::async_runtime::spawn_blocking(move || {
        let state = app.state::<AppState>();
        let job = state.jobs.register(job);
        let msg = match state.session().attached() {
            Ok((p, _)) => format!("saving {}", p.display()),
            Err(_) => "saving".into(),
        };
        let r = {
            let mut progress = job.progress_fn(&on_progress, Stage::Write, &msg);
            save_with(&state, None, &mut progress)
        };
        finish(&job, &on_progress, r)
    })
    .await
    .map_err(|e| IpcError::new(ErrorCode::Internal, format!("save task failed: {e}")))?
}

/// Writes the session to a new file and makes it the open model.
#[tauri::command]
#[specta::specta]
pub async fn save_model_as(
    path: String,
    job: u32,
    on_progress: Channel<Progress>,
    app: AppHandle,
) -> Result<SaveResult, IpcError> {
    let dest = check_dest(&path)?;
    tauri::async_runtime::spawn_blocking(move || {
        let state = app.state::<AppState>();
        let job = state.jobs.register(job);
        let msg = format!("writing {}", dest.display());
        let r = {
            let mut progress = job.progress_fn(&on_progress, Stage::Write, &msg);
            save_with(&state, Some(dest), &mut progress)
        };
        finish(&job, &on_progress, r)
    })
    .await
    .map_err(|e| IpcError::new(ErrorCode::Internal, format!("save task failed: {e}")))?
}

/// Reports the end of a save job in the status bar.
fn finish(
    job: &crate::jobs::Job,
    channel: &Channel<Progress>,
    r: Result<SaveResult, IpcError>,
) -> Result<SaveResult, IpcError> {
    if let Ok(out) = &r {
        job.send(
            channel,
            Stage::Done,
            out.bytes_written,
            out.bytes_written,
            format!("saved {} ({} bytes written)", out.path, out.bytes_written),
        );
    }
    r
}

/// Validates a Save As destination ([`hotpatch_core::session::check_save_as_dest`]).
pub fn check_dest(path: &str) -> Result<PathBuf, IpcError> {
    hotpatch_core::session::check_save_as_dest(path)
        .map_err(|m| IpcError::new(ErrorCode::BadRequest, m))
}

/// Save (`dest = None`) or Save As (a save that rewrote the file re-attaches it: the session
/// then holds the new file's index). Runs on a blocking thread.
pub fn save_with(
    state: &AppState,
    dest: Option<PathBuf>,
    progress: &mut dyn FnMut(hotpatch_core::Progress) -> bool,
) -> Result<SaveResult, IpcError> {
    let m = state.session();
    let out = match dest {
        None => m.save(progress)?,
        Some(d) => m.save_as(&d, progress)?,
    };
    if let Some(list) = crate::commands::model::recent_list() {
        let _ = list.touch(&out.path);
    }
    Ok(SaveResult {
        path: out.path.display().to_string(),
        bytes_written: out.bytes_written,
        rewritten: out.rewritten,
        reattached: out.reattached,
    })
}

/// A metadata entry as it will be saved.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct MetaEditRow {
    /// The key.
    pub key: String,
    /// GGUF type name of the value.
    pub value_type: String,
    /// Element type name for arrays.
    pub element_type: Option<String>,
    /// The value (arrays previewed).
    pub value: MetaView,
    /// `unchanged`, `changed`, `added` or `removed` (pending until Save).
    pub status: String,
    /// Offset of the entry in the file (absent for added keys).
    #[specta(type = Option<Number>)]
    pub offset: Option<u64>,
    /// Whether the value can be edited as text here.
    pub editable: bool,
}

/// The open model's metadata with pending edits applied and marked.
#[tauri::command]
#[specta::specta]
pub fn session_metadata(state: State<'_, AppState>) -> Result<Vec<MetaEditRow>, IpcError> {
    session_metadata_of(state.session())
}

/// [`session_metadata`] without Tauri.
pub fn session_metadata_of(m: &Manager) -> Result<Vec<MetaEditRow>, IpcError> {
    Ok(m.metadata_view()?
        .into_iter()
        .map(|e| MetaEditRow {
            value_type: e.value.value_type().name().to_string(),
            element_type: e
                .value
                .as_array()
                .map(|a| a.element_type().name().to_string()),
            value: meta_view(&e.value),
            status: match e.status {
                EntryStatus::Unchanged => "unchanged",
                EntryStatus::Changed => "changed",
                EntryStatus::Added => "added",
                EntryStatus::Removed => "removed",
            }
            .into(),
            offset: e.offset,
            editable: edit_text(&e.value).is_some(),
            key: e.key,
        })
        .collect())
}

/// The full editable text of a metadata value (strings whole, arrays as a JSON list).
#[tauri::command]
#[specta::specta]
pub fn metadata_text(key: String, state: State<'_, AppState>) -> Result<String, IpcError> {
    metadata_text_of(state.session(), &key)
}

/// [`metadata_text`] without Tauri.
pub fn metadata_text_of(m: &Manager, key: &str) -> Result<String, IpcError> {
    let view = m.metadata_view()?;
    let e = view
        .iter()
        .find(|e| e.key == key)
        .ok_or_else(|| IpcError::new(ErrorCode::NotFound, format!("no metadata key '{key}'")))?;
    edit_text(&e.value).ok_or_else(|| {
        IpcError::new(
            ErrorCode::BadRequest,
            format!(
                "{key}: this {} value cannot be edited as text (nested, longer than {} elements, or not UTF-8)",
                e.value.value_type().name(),
                hotpatch_core::metadata::MAX_EDIT_ARRAY
            ),
        )
    })
}

/// Stages `key = text` parsed as `value_type` (`element_type` for arrays, text a JSON list).
/// Pending until Save; undoable.
#[tauri::command]
#[specta::specta]
pub fn set_metadata(
    key: String,
    value_type: String,
    element_type: Option<String>,
    text: String,
    state: State<'_, AppState>,
) -> Result<EditState, IpcError> {
    set_metadata_of(
        state.session(),
        &key,
        &value_type,
        element_type.as_deref(),
        &text,
    )
}

/// [`set_metadata`] without Tauri.
pub fn set_metadata_of(
    m: &Manager,
    key: &str,
    value_type: &str,
    element_type: Option<&str>,
    text: &str,
) -> Result<EditState, IpcError> {
    let bad = |msg: String| IpcError::new(ErrorCode::BadRequest, msg);
    hotpatch_core::metadata::check_key(key).map_err(&bad)?;
    let ty = value_type_from_name(value_type)
        .ok_or_else(|| bad(format!("{key}: unknown value type '{value_type}'")))?;
    let value = if ty == ValueType::Array {
        let el = element_type.and_then(value_type_from_name).ok_or_else(|| {
            bad(format!(
                "{key}: arrays need an element type (got {element_type:?})"
            ))
        })?;
        parse_array(key, el, text)
    } else {
        parse_value(key, ty, text)
    }
    .map_err(|e| bad(e.to_string()))?;
    m.set_metadata(key, value)?;
    Ok(edit_state_of(m))
}

/// Stages the removal of a key. Pending until Save; undoable.
#[tauri::command]
#[specta::specta]
pub fn remove_metadata(key: String, state: State<'_, AppState>) -> Result<EditState, IpcError> {
    let m = state.session();
    m.remove_metadata(&key)?;
    Ok(edit_state_of(m))
}
