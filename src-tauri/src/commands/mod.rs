//! The IPC surface, one module per domain. Each command is a thin forwarder: it validates the
//! request, calls the GUI-free crates, and maps results to IPC types and errors to
//! [`crate::error::IpcError`]. Later domains (tensor edits, diff, proxy) add their own module
//! here and register in [`crate::specta_builder`].

pub mod audit;
pub mod bytes;
pub mod diff;
pub mod edit;
pub mod model;
pub mod patches;
pub mod run;
pub mod server;
pub mod surgery;
pub mod tensors;
pub mod tokens;

use tauri::{AppHandle, Manager as _, Runtime};

use crate::error::{ErrorCode, IpcError};
use crate::state::AppState;

/// Runs `f` on a blocking thread with the app state, so a command never freezes the window.
pub(crate) async fn blocking<R: Runtime, T: Send + 'static>(
    app: AppHandle<R>,
    f: impl FnOnce(&AppState) -> Result<T, IpcError> + Send + 'static,
) -> Result<T, IpcError> {
    tauri::async_runtime::spawn_blocking(move || f(&app.state::<AppState>()))
        .await
        .map_err(|e| IpcError::new(ErrorCode::Internal, format!("worker failed: {e}")))?
}

/// Bytes of a heatmap tile's header (u32 LE `width`, `height`, `planes` = 2, 0).
pub const TILE_HEADER: usize = 16;

/// A level-of-detail tile as the raw heatmap commands send it: [`TILE_HEADER`], then the mean
/// plane and the peak plane, each `width·height` f32 LE, row-major.
pub(crate) fn encode_tile(tile: &hotpatch_core::heatmap::Tile) -> Vec<u8> {
    let n = tile.mean.len();
    let mut out = Vec::with_capacity(TILE_HEADER + 8 * n);
    for v in [tile.width, tile.height, 2, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for x in tile.mean.iter().chain(&tile.peak) {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}
