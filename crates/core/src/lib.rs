//! The edit engine. Knows nothing of Tauri, tokio or IPC.
pub mod diff;
pub mod tensor;
