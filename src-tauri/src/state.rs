//! What the shell holds between commands: the edit session, the running jobs and the launch
//! arguments.
//!
//! [`AppState::session`] is the unified manager (`hotpatch-core`) and the one home of the open
//! model: it holds the file as opened ([`AppState::require_model`]: the parsed index, tensor
//! list, metadata — re-read by the session itself when a save re-attaches), model B of the
//! Diff screen (`Manager::other`), and every read of tensor values or bytes and every edit goes
//! through it, so staged (unsaved) changes show everywhere and every change is journaled,
//! undoable and emits a patch event. [`AppState::revision`] counts those events; views refetch
//! when it moves.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hotpatch_core::manager::Manager;
use hotpatch_gguf::GgufModel;

use crate::error::{ErrorCode, IpcError};
use crate::jobs::Jobs;

/// Managed Tauri state (one per app).
pub struct AppState {
    /// The edit session: the unified manager with the open model (and model B) attached.
    pub session: Manager,
    /// Long-running work the UI may cancel.
    pub jobs: Jobs,
    /// The embedded engine (llama.cpp) running the session's model, edited and original: one
    /// for the app, shared by the Run screen and the built-in upstream of the proxy.
    pub engine: Arc<hotpatch_infer::EngineHost>,
    /// The model to open at launch (command-line argument, `$HOTPATCH_MODEL` or the demo).
    pub startup: Option<PathBuf>,
    revision: Arc<AtomicU64>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("model", &self.session.attached().ok().map(|(p, _)| p))
            .field("startup", &self.startup)
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

impl Default for AppState {
    fn default() -> Self {
        AppState::new(None)
    }
}

impl AppState {
    /// State with nothing open; `startup` is the model to open at launch.
    pub fn new(startup: Option<PathBuf>) -> Self {
        let session = Manager::initialize();
        let revision = Arc::new(AtomicU64::new(0));
        let counter = revision.clone();
        session.engine().on_event(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        AppState {
            session,
            jobs: Jobs::default(),
            engine: Arc::new(hotpatch_infer::EngineHost::default()),
            startup,
            revision,
        }
    }

    /// State for a launch with these command-line arguments (without the program name).
    pub fn from_launch(args: impl IntoIterator<Item = String>) -> Self {
        AppState::new(crate::startup::startup_model(args))
    }

    /// The open model (the session's, as opened), or `None`.
    pub fn current(&self) -> Option<Arc<GgufModel>> {
        self.session.model().ok()
    }

    /// The open model, or the `NoModel` error every command returns without one.
    pub fn require_model(&self) -> Result<Arc<GgufModel>, IpcError> {
        self.current().ok_or_else(|| {
            IpcError::new(
                ErrorCode::NoModel,
                "no model is open (open a .gguf file first)",
            )
        })
    }

    /// The edit session (the unified manager).
    pub fn session(&self) -> &Manager {
        &self.session
    }

    /// The session as the engine serves it: the core engine and every file of the model with
    /// its region (`NoModel` when nothing is open).
    pub fn session_ref(&self) -> Result<hotpatch_infer::SessionRef, IpcError> {
        Ok(hotpatch_infer::SessionRef {
            core: self.session.engine().clone(),
            shards: self.session.shards()?,
        })
    }

    /// How many patch events the session has emitted (edits, undo, redo, save...). Views
    /// compare it with the value they rendered to know when to refetch.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::SeqCst)
    }
}
