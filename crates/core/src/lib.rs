//! The edit engine of Hotpatch Studio. Knows nothing of Tauri, tokio or IPC
//! (**Architecture Invariant**: no tauri, tokio or specta in this crate's dependency tree).
//!
//! # Overview
//! - [`Engine`] holds mapped [regions](RegionId) — the model image, in [`Mode::Staged`]
//!   (private copy-on-write map, Save writes only changed ranges back, crash-safe) or
//!   [`Mode::Live`] (shared writable map: a running llama.cpp sees each write) — plus extra
//!   windows of other files. Everything is addressed as (region, offset, len).
//! - One journal for every layer: undo/redo, nested [groups](Engine::begin_group),
//!   all-or-nothing batches ([`Engine::apply`]), [temporary patches](Engine::apply_temporary).
//! - Crash safety: [`wal`] (journal beside the model, rolled forward on the next open).
//! - Protection: read-only ranges checked by every write path, plus page protection.
//! - The memory layer ([`Engine::memory`]) and the bytes layer ([`Engine::bytes`]): [`layers`].
//! - Events: [`Event`], delivered in order to [`Engine::subscribe`] / [`Engine::on_event`].
//! - Tensors ([`tensor`]), diff ([`diff`]) and configurations ([`config`]) build on the above;
//!   [`heatmap`] reduces a tensor (or a difference) to level-of-detail tiles, value windows and
//!   histograms for the studio's views.
//!
//! ```no_run
//! use hotpatch_core::{Engine, Mode};
//! # fn main() -> Result<(), hotpatch_core::EngineError> {
//! let engine = Engine::new();
//! let model = engine.open("model.gguf", Mode::Staged)?;
//! engine.memory().write(model, 4096, &[0x00, 0x3c])?;   // journaled, undoable, one event
//! engine.undo()?;
//! engine.memory().fill(model, 4096, 16, &[0xAB])?;
//! engine.save(model, &mut |_| true)?;                     // writes 16 bytes back, crash-safe
//! # Ok(()) }
//! ```

pub mod byte_ops;
pub mod config;
pub mod diff;
mod engine;
mod error;
mod event;
pub mod event_log;
pub mod event_text;
pub mod heatmap;
mod image;
pub mod jobs;
pub mod launch;
pub mod layers;
pub mod live;
pub mod manager;
pub mod metadata;
pub mod ops;
mod platform;
pub mod rangeset;
pub mod recent;
pub mod residency;
pub mod session;
pub mod structure;
pub mod surgery;
pub mod tensor;
pub mod tensor_args;
pub mod tokens;
pub mod wal;

pub use engine::{
    no_progress, Applied, Change, Engine, Group, HistoryEntry, OpenOptions, Patch, Protection,
    RegionId, RegionInfo, TemporaryPatch, View,
};
pub use error::{EngineError, Result};
pub use event::{Event, Layer, Operation, Origin, Target};
pub use hotpatch_gguf::GgufIndex;
pub use hotpatch_quant::GgmlType;
pub use image::{LiveSync, Mode, Progress, ProgressFn, SaveReport};
pub use layers::{compare_files, Bytes, Match, Memory, Ops, Pointer, Scope};
pub use live::{tensor_visibility, CpuInfo, LiveVisibility, TensorLiveness, NO_REPACK_HINT};
pub use ops::{BitOp, Comparison, Pattern, PatternByte};
pub use structure::{Span, SpanKind};
