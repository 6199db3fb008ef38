//! Types shared by every command: progress streaming and the 64-bit number rule.
//!
//! # The IPC number rule
//!
//! * Offsets, lengths, dimensions and counts are `u64` in Rust and cross as TypeScript
//!   `number` (`#[specta(type = Number)]` on the field). This is exact because the GGUF reader
//!   refuses files of 2^53 bytes or more (`hotpatch_gguf::MAX_FILE_SIZE`), so every validated
//!   offset, length, count and dimension product is below 2^53 (`Number.MAX_SAFE_INTEGER`).
//! * Arbitrary 64-bit *metadata values* (a `u64`/`i64` stored under some key) have no such
//!   bound and cross as decimal strings; integer metadata of every width uses the same
//!   string form so the UI has one code path.
//! * Bulk tensor values never travel as JSON arrays.

use serde::Serialize;
use specta::Type;
use specta_typescript::Number;

/// Which step of a long operation a [`Progress`] message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// Mapping the file and parsing its header.
    Parse,
    /// Building the tensor index the UI shows.
    Index,
    /// Reading data (dequantizing, fetching ranges).
    Read,
    /// Writing a file (save, save as, export).
    Write,
    /// Comparing two models or ranges.
    Compare,
    /// Scanning values (NaN/Inf/outliers).
    Scan,
    /// Searching bytes or values.
    Search,
    /// Applying a configuration, preset or transform.
    Apply,
    /// Finished.
    Done,
}

/// One progress message streamed over a `tauri::ipc::Channel<Progress>`.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The job this reports on (the id the UI chose; see [`crate::jobs`]).
    pub job: u32,
    /// The step.
    pub stage: Stage,
    /// Units done so far within the step (bytes or items).
    #[specta(type = Number)]
    pub done: u64,
    /// Units the step has in total (0 when unknown).
    #[specta(type = Number)]
    pub total: u64,
    /// A short human-readable line for the status bar.
    pub message: String,
}
