//! The edit engine. Knows nothing of Tauri, tokio or IPC.
pub mod config;
pub mod diff;
pub mod tensor;
