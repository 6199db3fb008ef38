//! Commands whose result is raw bytes (an `ArrayBuffer` in the UI), not JSON.
//!
//! Bulk data — file bytes, dequantized values, heatmap pixels — must not cross the IPC
//! boundary as JSON number arrays (a 4096×4096 heatmap tile as JSON would be tens of
//! megabytes of text). Tauri sends a `tauri::ipc::Response` body as-is, but tauri-specta cannot
//! describe that type, so these commands are registered beside the typed ones: [`COMMANDS`]
//! names them, [`handler`] dispatches them, and `crate::run` routes each invoke by name.
//! Their TypeScript wrappers live in `ui/src/lib/binary.ts` (a test checks every name here has
//! one). Arguments are ordinary JSON (camelCase in TS); errors are the usual
//! [`IpcError`] `{ code, message }`. Each command documents its byte layout.

use tauri::ipc::Response;
use tauri::State;

use crate::error::{ErrorCode, IpcError};
use crate::state::AppState;

/// The most bytes one [`read_bytes`] call returns (a view fetches what it shows, not the file).
pub const MAX_READ: u64 = 16 << 20;

/// Every raw-bytes command, by its invoke name.
pub const COMMANDS: &[&str] = &[
    "read_bytes",
    "heatmap_tile",
    "tensor_window",
    "bytes_search",
    "diff_tile",
];

/// The invoke handler for [`COMMANDS`].
pub fn handler<R: tauri::Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static
{
    tauri::generate_handler![
        read_bytes,
        crate::commands::tensors::heatmap_tile,
        crate::commands::tensors::tensor_window,
        crate::commands::bytes::bytes_search,
        crate::commands::diff::diff_tile,
    ]
}

/// Bytes `[offset, offset + len)` of file `shard` (0-based; 0 for a single-file model) of the
/// open model as the session sees them (staged edits included). Layout: exactly the bytes, no
/// header. `len` is capped at [`MAX_READ`]; a range past the end of the file is refused with
/// the file's size in the message.
#[tauri::command]
pub fn read_bytes(
    shard: u32,
    offset: u64,
    len: u64,
    state: State<'_, AppState>,
) -> Result<Response, IpcError> {
    Ok(Response::new(read_range(&state, shard, offset, len)?))
}

/// [`read_bytes`] without the Tauri wrapper (tested directly).
pub fn read_range(
    state: &AppState,
    shard: u32,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, IpcError> {
    if len > MAX_READ {
        return Err(IpcError::new(
            ErrorCode::BadRequest,
            format!("read of {len} bytes refused: at most {MAX_READ} bytes per request"),
        ));
    }
    let session = state.session();
    let region = session.shard_region(shard)?;
    Ok(session.engine().read(region, offset, len)?)
}
