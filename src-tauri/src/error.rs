//! The one error type that crosses the IPC boundary.
//!
//! Every command returns `Result<T, IpcError>`. The UI branches on [`ErrorCode`] (a closed
//! string union in TypeScript), never on the message text; the message is for people and
//! names what is wrong and where (file, offset, field), as the core crates word it.

use serde::Serialize;
use specta::Type;

/// What kind of failure a command hit; the UI branches on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
pub enum ErrorCode {
    /// The file could not be read (missing, permission, I/O error).
    Io,
    /// The file is not a GGUF file at all (wrong magic).
    NotGguf,
    /// The file claims to be GGUF but its header is malformed or unsupported.
    InvalidGguf,
    /// The command needs an open model and none is open.
    NoModel,
    /// A tensor or metadata key named in the request does not exist.
    NotFound,
    /// The request itself is malformed (empty path, bad argument).
    BadRequest,
    /// The engine refused the change: a protected or locked range, out of bounds, a value that
    /// cannot be stored, a configuration that does not fit the model.
    Refused,
    /// The user canceled the work (nothing half-done was kept).
    Canceled,
    /// A bug or an unexpected state in the backend (the message says what).
    Internal,
}

/// The error value every command returns: `{ code, message }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type, thiserror::Error)]
#[error("{message}")]
pub struct IpcError {
    /// What kind of failure; stable, for the UI to branch on.
    pub code: ErrorCode,
    /// A human-readable explanation naming the file, offset or field.
    pub message: String,
}

impl IpcError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        IpcError {
            code,
            message: message.into(),
        }
    }

    /// Prefixes the message with `context` (a file path, usually) unless it already names it.
    pub fn with_context(mut self, context: &str) -> Self {
        if !self.message.contains(context) {
            self.message = format!("{context}: {}", self.message);
        }
        self
    }
}

impl From<hotpatch_gguf::GgufError> for IpcError {
    fn from(e: hotpatch_gguf::GgufError) -> Self {
        use hotpatch_gguf::GgufError as G;
        let code = match &e {
            G::Io { .. } => ErrorCode::Io,
            G::BadMagic { .. } => ErrorCode::NotGguf,
            _ => ErrorCode::InvalidGguf,
        };
        IpcError::new(code, e.to_string())
    }
}

impl From<hotpatch_core::EngineError> for IpcError {
    fn from(e: hotpatch_core::EngineError) -> Self {
        use hotpatch_core::EngineError as E;
        let code = match &e {
            E::Io { .. } => ErrorCode::Io,
            E::Cancelled => ErrorCode::Canceled,
            E::NoSuchTensor { .. } => ErrorCode::NotFound,
            E::InvalidArgument { .. } | E::BadPattern { .. } => ErrorCode::BadRequest,
            E::Gguf { .. } => ErrorCode::InvalidGguf,
            E::NoSuchRegion(_) => ErrorCode::NoModel,
            _ => ErrorCode::Refused,
        };
        IpcError::new(code, e.to_string())
    }
}

impl From<hotpatch_core::tensor::TensorError> for IpcError {
    fn from(e: hotpatch_core::tensor::TensorError) -> Self {
        use hotpatch_core::tensor::TensorError as T;
        match e {
            T::Engine(e) => e.into(),
            T::NoSuchTensor(_) => IpcError::new(ErrorCode::NotFound, e.to_string()),
            T::Gguf(_) => IpcError::new(ErrorCode::InvalidGguf, e.to_string()),
            T::IndexOutOfRange { .. } | T::Selection(_) | T::BadTransform { .. } => {
                IpcError::new(ErrorCode::BadRequest, e.to_string())
            }
            other => IpcError::new(ErrorCode::Refused, other.to_string()),
        }
    }
}

impl From<hotpatch_core::manager::ManagerError> for IpcError {
    fn from(e: hotpatch_core::manager::ManagerError) -> Self {
        use hotpatch_core::manager::ManagerError as M;
        match e {
            M::NotAttached => IpcError::new(ErrorCode::NoModel, e.to_string()),
            M::Engine(e) => e.into(),
            M::Tensor(e) => e.into(),
            M::Config(_) => IpcError::new(ErrorCode::BadRequest, e.to_string()),
            M::Apply(hotpatch_core::config::ApplyError::Tensor(t)) => t.into(),
            M::Io { .. } => IpcError::new(ErrorCode::Io, e.to_string()),
            other => IpcError::new(ErrorCode::Refused, other.to_string()),
        }
    }
}

impl From<hotpatch_infer::InferError> for IpcError {
    fn from(e: hotpatch_infer::InferError) -> Self {
        use hotpatch_infer::InferError as I;
        let code = match &e {
            I::Io { .. } => ErrorCode::Io,
            I::BadModel { .. } | I::Gguf { .. } => ErrorCode::InvalidGguf,
            I::Invalid { .. } | I::ContextFull { .. } => ErrorCode::BadRequest,
            I::NotMapped(_) => ErrorCode::Refused,
            I::Canceled => ErrorCode::Canceled,
            I::Session(_) => ErrorCode::Refused,
            I::Llama { .. } => ErrorCode::Internal,
        };
        match e {
            I::Session(inner) => IpcError::from(inner),
            other => IpcError::new(code, other.to_string()),
        }
    }
}
