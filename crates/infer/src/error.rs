//! Errors of the inference engine: each names what is wrong and where.

use std::path::{Path, PathBuf};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// A file could not be opened, read or mapped.
    #[error("{what} {}: {error}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error (in the message, not chained: it would print twice).
        error: std::io::Error,
    },
    /// llama.cpp refused the model.
    #[error("cannot load {}: {message}", path.display())]
    BadModel {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// llama.cpp failed at something else.
    #[error("llama.cpp could not {what}: {message}")]
    Llama {
        /// What was being done.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// A bad argument.
    #[error("{what}: {message}")]
    Invalid {
        /// The argument or input.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The text does not fit the context.
    #[error("{needed} tokens do not fit the context of {n_ctx} tokens")]
    ContextFull {
        /// Tokens needed.
        needed: usize,
        /// Context length.
        n_ctx: usize,
    },
    /// The engine cannot see edits of this model the way it was asked to.
    #[error("edits cannot reach the engine: {0}")]
    NotMapped(String),
    /// The user canceled.
    #[error("canceled")]
    Canceled,
    /// The edit session refused something.
    #[error(transparent)]
    Session(#[from] hotpatch_core::EngineError),
    /// The GGUF index could not be read.
    #[error("{}: {message}", path.display())]
    Gguf {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl InferError {
    pub(crate) fn io(what: &'static str, path: &Path, error: std::io::Error) -> Self {
        InferError::Io {
            what,
            path: path.to_path_buf(),
            error,
        }
    }

    /// A stable code for the UI and the CLI (`BadModel`, `Canceled`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            InferError::Io { .. } => "Io",
            InferError::BadModel { .. } => "BadModel",
            InferError::Llama { .. } => "Llama",
            InferError::Invalid { .. } => "Invalid",
            InferError::ContextFull { .. } => "ContextFull",
            InferError::NotMapped(_) => "NotMapped",
            InferError::Canceled => "Canceled",
            InferError::Session(_) => "Session",
            InferError::Gguf { .. } => "Gguf",
        }
    }
}

/// Result with [`InferError`].
pub type Result<T, E = InferError> = std::result::Result<T, E>;
