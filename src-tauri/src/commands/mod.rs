//! The IPC surface, one module per domain. Each command is a thin forwarder: it validates the
//! request, calls the GUI-free crates, and maps results to IPC types and errors to
//! [`crate::error::IpcError`]. Later domains (tensor edits, diff, proxy) add their own module
//! here and register in [`crate::specta_builder`].

pub mod bytes;
pub mod diff;
pub mod edit;
pub mod model;
pub mod patches;
pub mod server;
pub mod tensors;
