//! The Patches screen: the live patch-event log, configurations (export, import with a
//! preview, apply), presets, and the manager's optimize / safety scan / boost.
//!
//! Overview: [`PatchLog`] (managed Tauri state) subscribes to the session engine's events once,
//! at startup ([`install`]), keeps the newest [`LOG_CAPACITY`] as [`PatchEventView`]s and
//! forwards each to the `Channel` registered by [`watch_patch_events`]. An import is two steps:
//! [`preview_configuration`] / [`preview_preset`] parse and check a configuration against the
//! open model and keep it under a token; [`apply_pending`] applies exactly what was previewed as
//! one undo group (a preset through `Manager::optimize_model`). Every command only validates,
//! calls `hotpatch_core::manager::Manager` and maps the result.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use hotpatch_core::config::file::{self as config_file, ConfigFileError};
use hotpatch_core::config::pending::{Pending, PendingConfig, StalePreview};
use hotpatch_core::config::{
    ApplyOptions, ApplyReport, Configuration, ItemStatus, Preview, SafetySettings,
};
use hotpatch_core::event_log::EventLog;
use hotpatch_core::event_text;
use hotpatch_core::manager::{BoostReport, Manager, OptimizeReport, SafetyReport};
use hotpatch_core::tensor::{TransformReport, ValueClass};
use hotpatch_core::{Engine, Event, Target};
use serde::{Deserialize, Serialize};
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager as _, State};

use crate::commands::server::ProxyControl;
use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

/// Patch events kept in memory (newest first).
pub const LOG_CAPACITY: usize = 1000;

/// Value hits of a safety scan sent to the UI (the counts cover all of them).
pub const HITS_SHOWN: usize = 200;

// ----- IPC types ------------------------------------------------------------------------------

/// One patch event, as the log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct PatchEventView {
    /// Event id (increasing).
    #[specta(type = Number)]
    pub id: u64,
    /// The undo entry it created or acted on.
    #[specta(type = Option<Number>)]
    pub change: Option<u64>,
    /// The layer that asked (`memory`, `bytes`, `tensor`, `server`, `manager`, `engine`).
    pub layer: String,
    /// What was done (`write`, `fill`, `undo`, `scale`, …).
    pub operation: String,
    /// What it addressed (a tensor name, a byte range, a file).
    pub target: String,
    /// Who asked (a preset, a configuration file, `ui`), if known.
    pub source: Option<String>,
    /// The file the change addressed (its name), when the event names one: the region's file
    /// for a tensor or byte change, the file saved to for a save.
    pub file: Option<String>,
    /// Bytes whose value changed.
    #[specta(type = Number)]
    pub bytes_changed: u64,
    /// Bytes written.
    #[specta(type = Number)]
    pub bytes_written: u64,
    /// Unix time in ms.
    #[specta(type = Number)]
    pub time_unix_ms: u64,
    /// The change went through the journal (can be undone while it is in the history).
    pub undoable: bool,
}

/// The log and which changes can be undone now.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct PatchLogView {
    /// Events, newest first.
    pub events: Vec<PatchEventView>,
    /// Ids of the undo entries in the history now (an event whose `change` is listed can be
    /// undone, with every later change).
    #[specta(type = Vec<Number>)]
    pub undoable: Vec<u64>,
    /// Ids of the undone entries that can be redone (their events show as undone).
    #[specta(type = Vec<Number>)]
    pub redoable: Vec<u64>,
}

/// What an "undo to here" did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct UndoThrough {
    /// Undo steps taken (the entry and every later one).
    pub steps: u32,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ExportSummary {
    /// The file written.
    pub path: String,
    /// Tensor edits.
    pub tensor_patches: u32,
    /// Raw byte patches.
    pub byte_patches: u32,
    /// Protections.
    pub protections: u32,
    /// Metadata edits.
    pub metadata_edits: u32,
    /// Proxy rules in the server section (None: no server section).
    pub server_rules: Option<u32>,
    /// Size of the file.
    #[specta(type = Number)]
    pub bytes: u64,
}

/// What one item of a preview would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum PreviewStatus {
    /// It changes the model (or locks it).
    WillChange,
    /// Already in the model.
    AlreadyApplied,
    /// It does not fit this model.
    Mismatch,
    /// Informational (server settings).
    Info,
}

/// One line of a preview.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct PreviewRow {
    /// Path in the configuration (`tensor_patches[2]`).
    pub item: String,
    /// What it targets.
    pub target: String,
    /// What would happen.
    pub status: PreviewStatus,
    /// Details (elements selected, bytes, or why it does not fit).
    pub detail: String,
    /// A metadata edit that will change the model: the value now (pending edits included),
    /// one short line.
    pub from: Option<String>,
    /// ... and the value after it.
    pub to: Option<String>,
    /// When both values are text (a chat template): the whole text now, for a text diff.
    pub from_text: Option<String>,
    /// ... and the whole text after it.
    pub to_text: Option<String>,
}

/// A configuration checked against the open model, kept under `token` until applied.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ImportPreview {
    /// Pass to [`apply_pending`].
    pub token: u32,
    /// Where it came from (a file path or `preset NAME`).
    pub source: String,
    /// Its name.
    pub name: Option<String>,
    /// What it does.
    pub description: Option<String>,
    /// The file it was recorded on, if it says.
    pub recorded_on: Option<String>,
    /// Recorded on this exact file layout (None: model-independent).
    pub same_file: Option<bool>,
    /// Recorded on this model or another quantization of it.
    pub same_model: Option<bool>,
    /// Every item.
    pub items: Vec<PreviewRow>,
    /// Nothing mismatches: it can be applied.
    pub applicable: bool,
    /// Recorded on another model (item `model`): refused unless the user says to apply it to
    /// this model anyway ([`allow_other_model`]).
    pub other_model: bool,
    /// The user said to apply it to this model anyway.
    pub allow_other_model: bool,
    /// Proxy rules it sets (None: no server section).
    pub server_rules: Option<u32>,
    /// It turns the response cache on.
    pub cache_enabled: Option<bool>,
}

/// One tensor transformed.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TransformRow {
    /// Tensor.
    pub tensor: String,
    /// Operation.
    pub op: String,
    /// Elements selected.
    #[specta(type = Number)]
    pub elements_selected: u64,
    /// Bytes whose value changed.
    #[specta(type = Number)]
    pub bytes_changed: u64,
    /// Blocks re-quantized because a value left the block's grid.
    #[specta(type = Number)]
    pub blocks_requantized: u64,
    /// Unselected elements whose value changed as a side effect.
    #[specta(type = Number)]
    pub side_effects: u64,
}

impl From<&TransformReport> for TransformRow {
    fn from(t: &TransformReport) -> Self {
        TransformRow {
            tensor: t.tensor.clone(),
            op: t.op.to_owned(),
            elements_selected: t.elements_selected,
            bytes_changed: t.bytes_changed,
            blocks_requantized: t.encode.blocks_requantized,
            side_effects: t.encode.side_effect_count,
        }
    }
}

/// What an import or a preset did.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ApplyView {
    /// Where it came from.
    pub source: String,
    /// The undo entry of the whole import (None: nothing changed).
    #[specta(type = Option<Number>)]
    pub change: Option<u64>,
    /// Tensors transformed.
    pub transforms: Vec<TransformRow>,
    /// Byte patches written.
    pub byte_patches_applied: u32,
    /// Byte patches already in the model.
    pub byte_patches_already_applied: u32,
    /// Protections made.
    pub protections: u32,
    /// Metadata edits staged (pending until Save; undone with the rest).
    pub metadata_edits: u32,
    /// Proxy rules configured now.
    pub server_rules: u32,
    /// The response cache is on now.
    pub cache_enabled: bool,
}

/// Settings of a safety scan.
#[derive(Debug, Clone, PartialEq, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SafetySpec {
    /// Report |x| above this as outliers (None: no outlier scan).
    pub outlier_threshold: Option<f32>,
    /// Repair what is found (one undo group).
    pub repair: bool,
    /// What NaN/Inf become when repairing.
    pub replacement: f32,
    /// Turn on the configured response filters.
    pub response_filters: bool,
}

/// Counts of one tensor with findings (or skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ScanRow {
    /// Tensor.
    pub tensor: String,
    /// Type name.
    pub ty: String,
    /// Elements scanned.
    #[specta(type = Number)]
    pub elements: u64,
    /// NaN.
    #[specta(type = Number)]
    pub nan: u64,
    /// ±Inf.
    #[specta(type = Number)]
    pub inf: u64,
    /// Subnormals.
    #[specta(type = Number)]
    pub subnormal: u64,
    /// Above the threshold.
    #[specta(type = Number)]
    pub outliers: u64,
    /// Why it was not scanned.
    pub skipped: Option<String>,
}

/// One value found.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct HitRow {
    /// Tensor.
    pub tensor: String,
    /// Flat element index.
    #[specta(type = Number)]
    pub index: u64,
    /// The value as text (`NaN`, `-inf`, `1e-41`).
    pub value: String,
    /// `nan`, `inf`, `subnormal`, `outlier`.
    pub class: String,
}

/// What a safety scan found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SafetyView {
    /// The scan was canceled: counts are partial and nothing was repaired.
    pub canceled: bool,
    /// Tensors scanned.
    pub tensors_scanned: u32,
    /// Elements scanned.
    #[specta(type = Number)]
    pub elements_scanned: u64,
    /// Tensors with findings or skipped, in file order.
    pub flagged: Vec<ScanRow>,
    /// The first [`HITS_SHOWN`] values found.
    pub hits: Vec<HitRow>,
    /// Values found in all.
    #[specta(type = Number)]
    pub total_hits: u64,
    /// Repairs made.
    pub repairs: Vec<TransformRow>,
    /// Their undo entry.
    #[specta(type = Option<Number>)]
    pub change: Option<u64>,
    /// Response filter rules turned on.
    pub response_filters: u32,
}

/// What boost did.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct BoostView {
    /// Resident fraction of the model file before (None: the OS cannot say).
    pub resident_before: Option<f64>,
    /// After.
    pub resident_after: Option<f64>,
    /// Bytes prefetched.
    #[specta(type = Number)]
    pub prefetched_bytes: u64,
    /// Pages pinned in RAM, when asked and allowed.
    #[specta(type = Option<Number>)]
    pub pinned_pages: Option<u64>,
    /// Why pinning failed, when asked.
    pub pin_error: Option<String>,
    /// The response cache is on.
    pub cache_enabled: bool,
}

/// One preset.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct PresetInfo {
    /// Name (file name without `.json`).
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Saved by the user (else shipped with the app).
    pub user: bool,
    /// Why it cannot be read, if so.
    pub error: Option<String>,
}

// ----- mapping --------------------------------------------------------------------------------

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

impl PatchEventView {
    /// The view of `e`, its file named from the engine's regions (a region unmapped since has
    /// no file).
    pub fn of(e: &Event, engine: &Engine) -> Self {
        let region = match &e.origin.target {
            Target::Range { region, .. }
            | Target::Ranges { region, .. }
            | Target::Tensor { region, .. } => Some(*region),
            Target::Region(region) => Some(*region),
            _ => None,
        };
        let file = match &e.origin.target {
            Target::File(p) => Some(file_name(p)),
            _ => region
                .and_then(|r| engine.region_info(r).ok())
                .map(|i| file_name(&i.path)),
        };
        PatchEventView {
            file,
            ..PatchEventView::from(e)
        }
    }
}

impl From<&Event> for PatchEventView {
    fn from(e: &Event) -> Self {
        PatchEventView {
            file: None,
            id: e.id,
            change: e.change,
            layer: event_text::layer_name(e.origin.layer).into(),
            operation: event_text::operation_name(&e.origin.operation),
            target: event_text::target_text(&e.origin.target),
            source: e.origin.source.as_deref().map(str::to_owned),
            bytes_changed: e.bytes_changed,
            bytes_written: e.bytes_written,
            time_unix_ms: e
                .time
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            undoable: e.undoable,
        }
    }
}

fn status(s: ItemStatus) -> PreviewStatus {
    match s {
        ItemStatus::WillChange => PreviewStatus::WillChange,
        ItemStatus::AlreadyApplied => PreviewStatus::AlreadyApplied,
        ItemStatus::Mismatch => PreviewStatus::Mismatch,
        ItemStatus::Info => PreviewStatus::Info,
    }
}

fn preview_view(
    token: u32,
    source: &str,
    c: &Configuration,
    p: &Preview,
    allow_other_model: bool,
) -> ImportPreview {
    ImportPreview {
        token,
        source: source.to_owned(),
        name: c.name.clone(),
        description: c.description.clone(),
        recorded_on: c.model.as_ref().and_then(|m| m.file_name.clone()),
        same_file: p.same_file,
        same_model: p.same_model,
        items: p
            .items
            .iter()
            .map(|i| PreviewRow {
                item: i.item.clone(),
                target: i.target.clone(),
                status: status(i.status),
                detail: i.detail.clone(),
                from: i.values.as_ref().map(|v| v.from.clone()),
                to: i.values.as_ref().map(|v| v.to.clone()),
                from_text: i.values.as_ref().and_then(|v| v.from_text.clone()),
                to_text: i.values.as_ref().and_then(|v| v.to_text.clone()),
            })
            .collect(),
        applicable: p.applicable(),
        other_model: p.same_model == Some(false),
        allow_other_model,
        server_rules: c.server.as_ref().map(|s| s.rules.len() as u32),
        cache_enabled: c.server.as_ref().map(|s| s.cache.enabled),
    }
}

fn apply_view(source: &str, rep: &ApplyReport, session: &Manager) -> ApplyView {
    let server = session.server();
    ApplyView {
        source: source.to_owned(),
        change: rep.change,
        transforms: rep.transforms.iter().map(TransformRow::from).collect(),
        byte_patches_applied: rep.byte_patches_applied as u32,
        byte_patches_already_applied: rep.byte_patches_already_applied as u32,
        protections: rep.protections.len() as u32,
        metadata_edits: rep.metadata.len() as u32,
        server_rules: server.rules.len() as u32,
        cache_enabled: server.cache.enabled,
    }
}

fn optimize_view(source: &str, rep: &OptimizeReport) -> ApplyView {
    ApplyView {
        source: source.to_owned(),
        change: rep.change,
        transforms: rep.tensors.iter().map(TransformRow::from).collect(),
        byte_patches_applied: rep.bytes.0 as u32,
        byte_patches_already_applied: rep.bytes.1 as u32,
        protections: rep.protections as u32,
        metadata_edits: rep.metadata_edits as u32,
        server_rules: rep.server_rules as u32,
        cache_enabled: rep.cache_enabled,
    }
}

fn float_text(v: f32) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+inf" } else { "-inf" }.into()
    } else {
        format!("{v:e}")
    }
}

fn safety_view(r: &SafetyReport) -> SafetyView {
    SafetyView {
        canceled: r.canceled,
        tensors_scanned: r.scan.tensors.len() as u32,
        elements_scanned: r.scan.tensors.iter().map(|t| t.elements).sum(),
        flagged: r
            .scan
            .tensors
            .iter()
            .filter(|t| t.flagged() || t.skipped.is_some())
            .map(|t| ScanRow {
                tensor: t.tensor.clone(),
                ty: t.ty.clone(),
                elements: t.elements,
                nan: t.nan,
                inf: t.inf,
                subnormal: t.subnormal,
                outliers: t.outliers,
                skipped: t.skipped.clone(),
            })
            .collect(),
        hits: r
            .scan
            .hits
            .iter()
            .take(HITS_SHOWN)
            .map(|h| HitRow {
                tensor: h.tensor.clone(),
                index: h.index,
                value: float_text(h.value),
                class: match h.class {
                    ValueClass::Nan => "nan",
                    ValueClass::Inf => "inf",
                    ValueClass::Subnormal => "subnormal",
                    ValueClass::Outlier => "outlier",
                }
                .into(),
            })
            .collect(),
        total_hits: r.scan.total_hits,
        repairs: r.repairs.iter().map(TransformRow::from).collect(),
        change: r.change,
        response_filters: r.response_filters as u32,
    }
}

fn boost_view(b: &BoostReport) -> BoostView {
    BoostView {
        resident_before: b.resident_before,
        resident_after: b.resident_after,
        prefetched_bytes: b.prefetched_bytes,
        pinned_pages: b.pinned.as_ref().ok().copied(),
        pin_error: b.pinned.as_ref().err().cloned(),
        cache_enabled: b.cache_enabled,
    }
}

// ----- state ----------------------------------------------------------------------------------

type Watcher = hotpatch_core::event_log::Watcher<PatchEventView>;

fn stale_preview(e: StalePreview) -> IpcError {
    IpcError::new(ErrorCode::BadRequest, e.to_string())
}

/// The patch-event log (a `hotpatch_core::event_log::EventLog`) and the previewed
/// configuration (`hotpatch_core::config::pending::PendingConfig`) (managed Tauri state).
pub struct PatchLog {
    events: EventLog<PatchEventView>,
    pending: PendingConfig,
}

impl Default for PatchLog {
    fn default() -> Self {
        Self {
            events: EventLog::new(LOG_CAPACITY),
            pending: PendingConfig::default(),
        }
    }
}

impl std::fmt::Debug for PatchLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchLog")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl PatchLog {
    /// Records every event of `engine` from now on.
    pub fn attach(&self, engine: &Engine) {
        let events = self.events.clone();
        let eng = engine.clone();
        engine.on_event(move |e| events.record(PatchEventView::of(e, &eng)));
    }

    /// The log and the undoable entries; `watcher` then receives each new event.
    pub fn view(&self, engine: &Engine, watcher: Option<Watcher>) -> PatchLogView {
        if let Some(w) = watcher {
            self.events.watch(w);
        }
        PatchLogView {
            events: self.events.entries(),
            undoable: engine.history().iter().map(|h| h.id).collect(),
            redoable: engine.redo_history().iter().map(|h| h.id).collect(),
        }
    }

    /// Keeps a parsed configuration for [`PatchLog::take`]; returns its token.
    fn keep(&self, source: String, config: Configuration, preset: bool) -> u32 {
        self.pending.keep(source, config, preset)
    }

    /// Turns the override on for the pending configuration `token`; returns its source and
    /// configuration.
    fn allow_other_model(&self, token: u32) -> Result<(String, Configuration), IpcError> {
        self.pending.allow_other_model(token).map_err(stale_preview)
    }

    fn take(&self, token: u32) -> Result<Pending, IpcError> {
        self.pending.take(token).map_err(stale_preview)
    }
}

/// Creates the patch log, subscribes it to the session's engine, and manages it with the
/// proxy control (call once, in the app's setup).
pub fn install(app: &tauri::App) {
    let log = PatchLog::default();
    log.attach(app.state::<AppState>().session().engine());
    app.manage(log);
    app.manage(ProxyControl::default());
}

fn check_path(path: &str, what: &str) -> Result<PathBuf, IpcError> {
    let p = path.trim();
    if p.is_empty() {
        return Err(IpcError::new(
            ErrorCode::BadRequest,
            format!("{what}: give a file path"),
        ));
    }
    Ok(PathBuf::from(p))
}

fn file_error(e: ConfigFileError) -> IpcError {
    let code = match e {
        ConfigFileError::Io { .. } => ErrorCode::Io,
        ConfigFileError::Refused { .. } => ErrorCode::BadRequest,
    };
    IpcError::new(code, e.to_string())
}

/// Reads a configuration file, refusing one larger than
/// [`MAX_CONFIG_BYTES`](hotpatch_core::config::MAX_CONFIG_BYTES) before reading
/// (`hotpatch_core::config::file::read_text`).
pub fn read_config_text(path: &Path) -> Result<String, IpcError> {
    config_file::read_text(path).map_err(file_error)
}

/// Writes `text` to `path` atomically (`hotpatch_core::config::file::write_text`).
pub fn write_atomic(path: &Path, text: &str) -> Result<(), IpcError> {
    config_file::write_text(path, text).map_err(file_error)
}

/// The session's changes as a configuration (with an optional name and description).
pub fn export_to(
    session: &Manager,
    path: &Path,
    name: Option<String>,
    description: Option<String>,
) -> Result<ExportSummary, IpcError> {
    let mut c = session.export_configuration()?;
    c.name = name.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    c.description = description
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let text = c.to_json() + "\n";
    write_atomic(path, &text)?;
    Ok(ExportSummary {
        path: path.display().to_string(),
        tensor_patches: c.tensor_patches.len() as u32,
        byte_patches: c.byte_patches.len() as u32,
        protections: c.protections.len() as u32,
        metadata_edits: c.metadata.len() as u32,
        server_rules: c.server.as_ref().map(|s| s.rules.len() as u32),
        bytes: text.len() as u64,
    })
}

// ----- commands -------------------------------------------------------------------------------

/// The patch log (newest first) and the undoable entries; streams each new event to `channel`.
#[tauri::command]
#[specta::specta]
pub fn watch_patch_events(
    state: State<'_, AppState>,
    log: State<'_, PatchLog>,
    channel: Channel<PatchEventView>,
) -> PatchLogView {
    log.view(
        state.session().engine(),
        Some(Box::new(move |e| channel.send(e.clone()).is_ok())),
    )
}

/// The patch log and the undoable entries (no subscription).
#[tauri::command]
#[specta::specta]
pub fn patch_log(state: State<'_, AppState>, log: State<'_, PatchLog>) -> PatchLogView {
    log.view(state.session().engine(), None)
}

/// Undoes change `change` and every change made after it (metadata edits included: they are
/// on the same undo timeline).
#[tauri::command]
#[specta::specta]
pub fn undo_through(state: State<'_, AppState>, change: u32) -> Result<UndoThrough, IpcError> {
    let steps = state.session().undo_through(u64::from(change))?;
    Ok(UndoThrough {
        steps: steps as u32,
    })
}

/// Writes the session's changes (tensor edits, byte patches, metadata edits, protections,
/// proxy settings) as a configuration file.
#[tauri::command]
#[specta::specta]
pub fn export_configuration(
    state: State<'_, AppState>,
    path: String,
    name: Option<String>,
    description: Option<String>,
) -> Result<ExportSummary, IpcError> {
    state.require_model()?;
    let path = check_path(&path, "export")?;
    export_to(state.session(), &path, name, description)
}

/// Reads a configuration file and previews it against the open model (changes nothing).
#[tauri::command]
#[specta::specta]
pub fn preview_configuration(
    state: State<'_, AppState>,
    log: State<'_, PatchLog>,
    path: String,
) -> Result<ImportPreview, IpcError> {
    state.require_model()?;
    let path = check_path(&path, "import")?;
    let text = read_config_text(&path)?;
    let source = path.display().to_string();
    let (c, p) = state
        .session()
        .import_configuration(&text)
        .map_err(|e| IpcError::from(e).with_context(&source))?;
    let token = log.keep(source.clone(), c.clone(), false);
    Ok(preview_view(token, &source, &c, &p, false))
}

/// Loads a preset and previews it against the open model (changes nothing).
#[tauri::command]
#[specta::specta]
pub fn preview_preset(
    state: State<'_, AppState>,
    log: State<'_, PatchLog>,
    name: String,
) -> Result<ImportPreview, IpcError> {
    state.require_model()?;
    let session = state.session();
    let c = session.load_preset(name.trim())?;
    let p = session.preview_configuration(&c)?;
    let source = format!("preset {}", name.trim());
    let token = log.keep(source.clone(), c.clone(), true);
    Ok(preview_view(token, &source, &c, &p, false))
}

/// Applies the previewed configuration as one undo group (a preset through the manager's
/// optimize, which also applies its performance settings); the proxy picks up its server
/// section at once.
#[tauri::command]
#[specta::specta]
pub fn apply_pending(
    state: State<'_, AppState>,
    log: State<'_, PatchLog>,
    proxy: State<'_, ProxyControl>,
    token: u32,
) -> Result<ApplyView, IpcError> {
    state.require_model()?;
    let p = log.take(token)?;
    let session = state.session();
    let opts = ApplyOptions {
        allow_other_model: p.allow_other_model,
    };
    let view = if p.preset {
        optimize_view(&p.source, &session.optimize_model_with(&p.config, opts)?)
    } else {
        let rep = session.apply_configuration_with(&p.config, &p.source, opts)?;
        apply_view(&p.source, &rep, session)
    };
    proxy.sync(session)?;
    Ok(view)
}

/// The user's explicit override for the previewed configuration recorded on another model:
/// previews it again with the `model` item lifted (tensors of the same name are written
/// although the model differs); [`apply_pending`] then applies it.
#[tauri::command]
#[specta::specta]
pub fn allow_other_model(
    state: State<'_, AppState>,
    log: State<'_, PatchLog>,
    token: u32,
) -> Result<ImportPreview, IpcError> {
    state.require_model()?;
    let (source, config) = log.allow_other_model(token)?;
    let opts = ApplyOptions {
        allow_other_model: true,
    };
    let p = state.session().preview_configuration_with(&config, opts)?;
    Ok(preview_view(token, &source, &config, &p, true))
}

/// The presets: the user's and the shipped ones.
#[tauri::command]
#[specta::specta]
pub fn list_presets(state: State<'_, AppState>) -> Vec<PresetInfo> {
    let session = state.session();
    let user_dir = session.preset_dirs().first().cloned();
    session
        .list_presets()
        .into_iter()
        .map(|name| {
            let user = user_dir
                .as_ref()
                .is_some_and(|d| d.join(format!("{name}.json")).is_file());
            match session.load_preset(&name) {
                Ok(c) => PresetInfo {
                    name,
                    description: c.description,
                    user,
                    error: None,
                },
                Err(e) => PresetInfo {
                    name,
                    description: None,
                    user,
                    error: Some(e.to_string()),
                },
            }
        })
        .collect()
}

/// Saves the session's changes as a user preset.
#[tauri::command]
#[specta::specta]
pub fn save_preset(
    state: State<'_, AppState>,
    name: String,
    description: Option<String>,
) -> Result<PresetInfo, IpcError> {
    state.require_model()?;
    let session = state.session();
    let mut c = session.export_configuration()?;
    c.description = description
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let name = name.trim().to_owned();
    session.save_preset(&name, &c)?;
    Ok(PresetInfo {
        name,
        description: c.description,
        user: true,
        error: None,
    })
}

/// Scans every tensor for NaN, ±Inf, subnormals and outliers (progress on `channel`,
/// cancelable as job `job`); repairs what it finds when asked, as one undo group.
#[tauri::command]
#[specta::specta]
pub async fn safety_scan(
    app: AppHandle,
    settings: SafetySpec,
    job: u32,
    channel: Channel<Progress>,
) -> Result<SafetyView, IpcError> {
    let s = SafetySettings {
        outlier_threshold: settings.outlier_threshold,
        repair: settings.repair,
        replacement: settings.replacement,
        response_filters: settings.response_filters,
    };
    s.validate()
        .map_err(|e| IpcError::new(ErrorCode::BadRequest, e.to_string()))?;
    let run = tauri::async_runtime::spawn_blocking(move || -> Result<SafetyView, IpcError> {
        let state = app.state::<AppState>();
        state.require_model()?;
        let job = state.jobs.register(job);
        let mut forward = job.progress_fn(&channel, Stage::Scan, "scanning weights");
        let rep = state
            .session()
            .apply_safety_filters_with_progress(&s, &mut |done, total| {
                forward(hotpatch_core::Progress { done, total })
            })?;
        let view = safety_view(&rep);
        let elements: u64 = rep.scan.tensors.iter().map(|t| t.elements).sum();
        let outcome = if view.canceled {
            format!(
                "safety scan canceled after {} tensors",
                view.tensors_scanned
            )
        } else {
            format!(
                "safety scan: {} values found in {} tensors",
                view.total_hits, view.tensors_scanned
            )
        };
        job.send(&channel, Stage::Done, elements, elements, outcome);
        Ok(view)
    });
    run.await
        .map_err(|e| IpcError::new(ErrorCode::Internal, format!("safety scan: {e}")))?
}

/// Prefetches the model's pages (and pins them with `lock`), turns the response cache on.
#[tauri::command]
#[specta::specta]
pub async fn boost_inference(app: AppHandle, lock: bool) -> Result<BoostView, IpcError> {
    let run = tauri::async_runtime::spawn_blocking(move || -> Result<BoostView, IpcError> {
        let state = app.state::<AppState>();
        state.require_model()?;
        let rep = state.session().boost_inference_speed(lock)?;
        app.state::<ProxyControl>().sync(state.session())?;
        Ok(boost_view(&rep))
    });
    run.await
        .map_err(|e| IpcError::new(ErrorCode::Internal, format!("boost: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpatch_core::tensor::{Selection, TransformOp};
    use hotpatch_core::Mode;

    fn tmp_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("hotpatch-patches-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The demo model, generated by the workspace's script (gguf-py in .venv).
    fn demo_copy(dir: &Path, name: &str) -> PathBuf {
        hotpatch_testkit::demo_model(dir, name, &[])
    }

    #[test]
    fn the_log_names_each_change_and_an_export_reapplies_on_a_fresh_copy() {
        let dir = tmp_dir("log");
        let a = demo_copy(&dir, "a.gguf");
        let b = dir.join("b.gguf");
        std::fs::copy(&a, &b).unwrap();
        let m = Manager::initialize();
        let log = PatchLog::default();
        log.attach(m.engine());
        m.attach(&a, Mode::Staged).unwrap();
        let scale = m
            .transform(
                "blk.1.ffn_down.weight",
                &Selection::All,
                &TransformOp::Scale { factor: 0.5 },
            )
            .unwrap()
            .change
            .expect("the scale changed bytes");
        m.modify_weight("output_norm.weight", 3, 2.5).unwrap();
        let set = m.engine().history().last().unwrap().id;

        let v = log.view(m.engine(), None);
        assert_eq!(
            v.undoable,
            vec![scale, set],
            "the engine's history, oldest first"
        );
        let newest = &v.events[0];
        assert_eq!(newest.change, Some(set));
        assert_eq!(
            (newest.layer.as_str(), newest.target.as_str()),
            ("tensor", "output_norm.weight")
        );
        assert!(newest.undoable && newest.bytes_changed > 0);
        let scaled = v.events.iter().find(|e| e.change == Some(scale)).unwrap();
        assert_eq!(scaled.target, "blk.1.ffn_down.weight");
        assert_eq!(scaled.operation, "scale");
        assert!(
            v.events.windows(2).all(|w| w[0].id > w[1].id),
            "newest first"
        );

        let path = dir.join("changes.json");
        let sum = export_to(&m, &path, Some(" mine ".into()), Some(String::new())).unwrap();
        assert_eq!(
            (sum.tensor_patches, sum.byte_patches, sum.server_rules),
            (2, 0, None)
        );
        let text = read_config_text(&path).unwrap();
        assert_eq!(sum.bytes, text.len() as u64);
        let c = Configuration::from_json(&text).unwrap();
        assert_eq!(c.name.as_deref(), Some("mine"));
        assert_eq!(c.description, None, "an empty description is left out");
        assert_eq!(c.tensor_patches[0].tensor, "blk.1.ffn_down.weight");

        // A fresh copy, another session: preview lists both, apply makes the same values.
        let m2 = Manager::initialize();
        m2.attach(&b, Mode::Staged).unwrap();
        let (c2, p) = m2.import_configuration(&text).unwrap();
        let view = preview_view(7, "changes.json", &c2, &p, false);
        assert!(view.applicable);
        assert_eq!(view.same_file, Some(true), "a copy has the same layout");
        assert_eq!(
            view.items
                .iter()
                .map(|i| (i.target.as_str(), i.status))
                .collect::<Vec<_>>(),
            vec![
                ("blk.1.ffn_down.weight", PreviewStatus::WillChange),
                ("output_norm.weight", PreviewStatus::WillChange)
            ]
        );
        let rep = m2.apply_configuration(&c2, "changes.json").unwrap();
        let applied = apply_view("changes.json", &rep, &m2);
        assert_eq!(applied.transforms.len(), 2);
        assert!(applied.change.is_some());
        for t in ["blk.1.ffn_down.weight", "output_norm.weight"] {
            let x = m.tensors().unwrap().extract(t, None).unwrap();
            let y = m2.tensors().unwrap().extract(t, None).unwrap();
            assert!(
                x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{t}"
            );
        }

        // Undo back to the scale: both changes go, newest first.
        assert_eq!(m.engine().undo_through(scale).unwrap(), 2);
        let v = log.view(m.engine(), None);
        assert!(v.undoable.is_empty());
        assert_eq!(
            v.redoable,
            vec![set, scale],
            "the redo stack: next redo (the scale) last"
        );
        assert_eq!(v.events[0].operation, "undo");
        assert_eq!(v.events[0].change, Some(scale));
        assert_eq!(v.events[1].change, Some(set));
    }

    #[test]
    fn metadata_edits_are_exported_previewed_and_counted_when_applied() {
        let dir = tmp_dir("meta");
        let a = demo_copy(&dir, "a.gguf");
        let b = dir.join("b.gguf");
        std::fs::copy(&a, &b).unwrap();
        let m = Manager::initialize();
        m.attach(&a, Mode::Staged).unwrap();
        m.modify_weight("output_norm.weight", 1, 0.5).unwrap();
        m.set_metadata(
            "tokenizer.chat_template",
            hotpatch_gguf::MetaValue::string("{{ messages }}"),
        )
        .unwrap();
        let path = dir.join("meta.json");
        let sum = export_to(&m, &path, None, None).unwrap();
        assert_eq!((sum.tensor_patches, sum.metadata_edits), (1, 1));

        let m2 = Manager::initialize();
        m2.attach(&b, Mode::Staged).unwrap();
        let (c, p) = m2
            .import_configuration(&read_config_text(&path).unwrap())
            .unwrap();
        let view = preview_view(1, "meta.json", &c, &p, false);
        let row = view
            .items
            .iter()
            .find(|r| r.item == "metadata[0]")
            .expect("a metadata row");
        assert_eq!(row.target, "tokenizer.chat_template");
        assert_eq!(row.status, PreviewStatus::WillChange);
        assert!(
            row.detail.ends_with("→ STRING \"{{ messages }}\""),
            "{}",
            row.detail
        );
        assert_eq!(row.to.as_deref(), Some("STRING \"{{ messages }}\""));
        assert!(row
            .from
            .as_deref()
            .is_some_and(|f| f.starts_with("STRING \"")));
        let rep = m2.apply_configuration(&c, "meta.json").unwrap();
        let applied = apply_view("meta.json", &rep, &m2);
        assert_eq!((applied.transforms.len(), applied.metadata_edits), (1, 1));
        assert_eq!(
            m2.metadata_journal().pending().len(),
            1,
            "pending until Save"
        );
    }

    #[test]
    fn bad_files_and_stale_previews_are_refused_with_the_reason() {
        let dir = tmp_dir("bad");
        let e = read_config_text(&dir).unwrap_err();
        assert!(e.message.contains("directory"), "{}", e.message);
        let bin = dir.join("bin.json");
        std::fs::write(&bin, [b'{', 0xff, 0xfe]).unwrap();
        let e = read_config_text(&bin).unwrap_err();
        assert!(
            e.message.contains("not UTF-8") && e.message.contains("byte 1"),
            "{}",
            e.message
        );
        let e = read_config_text(&dir.join("missing.json")).unwrap_err();
        assert_eq!(e.code, ErrorCode::Io);
        assert!(write_atomic(&dir, "{}")
            .unwrap_err()
            .message
            .contains("directory"));
        let e = write_atomic(&dir.join("no/such/dir/x.json"), "{}").unwrap_err();
        assert_eq!(e.code, ErrorCode::Io);
        assert!(e.message.contains("no/such/dir"), "{}", e.message);
        assert!(check_path("  ", "export").is_err());

        let log = PatchLog::default();
        let t1 = log.keep("a".into(), Configuration::default(), false);
        let t2 = log.keep("b".into(), Configuration::default(), true);
        assert!(
            log.take(t1).is_err(),
            "a newer preview replaces the older one"
        );
        let p = log.take(t2).unwrap();
        assert!(p.preset && p.source == "b");
        assert!(log.take(t2).is_err(), "a preview applies once");
    }
}
