//! The edit engine. Knows nothing of Tauri, tokio or IPC.
