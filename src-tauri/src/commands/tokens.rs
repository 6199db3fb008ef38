//! The vocabulary's token texts for the Tensors screen (row headers and hover readout of
//! `token_embd.weight` / `output.weight`, whose rows are token ids). The work is
//! `hotpatch_core::tokens` (`Manager::token_texts`); this validates and maps.

use serde::Serialize;
use specta::Type;
use specta_typescript::Number;
use tauri::AppHandle;

use super::blocking;
use crate::error::IpcError;

/// Token texts `start ..` of the open model's vocabulary (`tokenizer.ggml.tokens`, pending
/// edits included).
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TokenTextsView {
    /// Tokens in the vocabulary (0 when the model has none).
    #[specta(type = Number)]
    pub vocab: u64,
    /// The id of `texts[0]`.
    #[specta(type = Number)]
    pub start: u64,
    /// Texts of ids `start ..` (fewer than asked at the end; at most 4096; non-UTF-8 bytes as U+FFFD).
    pub texts: Vec<String>,
}

/// The texts of token ids `start .. start + count` (count capped at 4096).
#[tauri::command]
#[specta::specta]
pub async fn token_texts(
    app: AppHandle,
    start: u32,
    count: u32,
) -> Result<TokenTextsView, IpcError> {
    blocking(app, move |s| {
        let t = s
            .session()
            .token_texts(u64::from(start), u64::from(count))?;
        Ok(TokenTextsView {
            vocab: t.vocab,
            start: t.start,
            texts: t.texts,
        })
    })
    .await
}
