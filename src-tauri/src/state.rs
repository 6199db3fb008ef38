//! What the shell holds between commands: the open model and the launch arguments.

use std::path::PathBuf;
use std::sync::Arc;

use hotpatch_gguf::GgufFile;
use parking_lot::RwLock;

/// Managed Tauri state (one per app).
#[derive(Debug, Default)]
pub struct AppState {
    /// The model the window shows, if any. Replaced whole on every open.
    pub model: RwLock<Option<Arc<GgufFile>>>,
    /// The model to open at launch (command-line argument, `$HOTPATCH_MODEL` or the demo).
    pub startup: Option<PathBuf>,
}

impl AppState {
    /// State for a launch with these command-line arguments (without the program name).
    pub fn from_launch(args: impl IntoIterator<Item = String>) -> Self {
        AppState {
            model: RwLock::new(None),
            startup: crate::startup::startup_model(args),
        }
    }

    /// The open model, or `None`.
    pub fn current(&self) -> Option<Arc<GgufFile>> {
        self.model.read().clone()
    }
}
