//! The engine's error type.
//!
//! Every failure names what is wrong and where (region, offset, length, path), so that the CLI
//! and the UI can show it as is and branch on the variant ([`EngineError::code`]).

use std::path::PathBuf;

use crate::RegionId;

/// Anything the edit engine refuses or fails to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// An I/O operation on a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("open", "write journal", ...).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No region with this id is mapped (never was, or was unmapped).
    #[error("the file is no longer open (it was closed or replaced)")]
    NoSuchRegion(RegionId),
    /// A range does not lie inside its region.
    #[error("range {offset}+{len} ({offset:#x}) is outside the file ({region_len} bytes)")]
    OutOfBounds {
        /// The region addressed.
        region: RegionId,
        /// Start of the requested range (region-relative).
        offset: u64,
        /// Length of the requested range.
        len: u64,
        /// Length of the region.
        region_len: u64,
    },
    /// A write touched a range that is protected (read-only or locked).
    #[error("write of {len} bytes at offset {offset} ({offset:#x}) refused: bytes {protected_start}..{protected_end} are protected ({reason})")]
    Protected {
        /// The region addressed.
        region: RegionId,
        /// Start of the refused write.
        offset: u64,
        /// Length of the refused write.
        len: u64,
        /// Start of the protected range it hits.
        protected_start: u64,
        /// End (exclusive) of the protected range it hits.
        protected_end: u64,
        /// Why the range is protected (a tensor name, "read-only", ...).
        reason: String,
    },
    /// The region was opened read-only.
    #[error("the file is read-only (opened without write access)")]
    ReadOnlyRegion(RegionId),
    /// Two writes of one batch overlap, so the batch's meaning would depend on order.
    #[error("batch writes #{first} and #{second} overlap at offset {offset} ({offset:#x})")]
    OverlappingBatch {
        /// Index of the earlier write in the batch.
        first: usize,
        /// Index of the later write in the batch.
        second: usize,
        /// Region concerned.
        region: RegionId,
        /// First overlapping offset.
        offset: u64,
    },
    /// An argument is invalid (empty pattern, zero width, length mismatch, ...).
    #[error("invalid argument {what}: {why}")]
    InvalidArgument {
        /// The argument's name.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A hex pattern could not be parsed.
    #[error("bad hex pattern at character {position}: {why}")]
    BadPattern {
        /// Character index in the pattern text.
        position: usize,
        /// What is wrong.
        why: String,
    },
    /// Nothing to undo or redo.
    #[error("nothing to {0}")]
    NothingTo(&'static str),
    /// A journal file beside a model is not a valid journal.
    #[error("journal {path} is corrupt at byte {offset}: {why}")]
    CorruptJournal {
        /// The journal file.
        path: PathBuf,
        /// Byte offset in the journal.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// A journal file does not match the file it belongs to (changed by someone else since the
    /// crash): recovery refuses to guess and leaves both untouched.
    #[error("journal {journal} does not match {path}: {why}; both left untouched")]
    JournalConflict {
        /// The journal file.
        journal: PathBuf,
        /// The model file.
        path: PathBuf,
        /// What does not match.
        why: String,
    },
    /// The operation was cancelled through its progress callback.
    #[error("cancelled")]
    Cancelled,
    /// Too many matches or items for the given limit.
    #[error("{what} limit of {limit} reached")]
    LimitReached {
        /// What was being counted.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A group operation was used wrongly (end without begin, ...).
    #[error("group: {0}")]
    Group(String),
    /// A GGUF file could not be parsed.
    #[error("GGUF structure: {message}")]
    Gguf {
        /// Region concerned.
        region: RegionId,
        /// The parser's message.
        message: String,
    },
    /// A write would leave a GGUF file's header unparseable (refused by the header guard).
    #[error("write at offset {offset} ({offset:#x}) refused: it would break the GGUF header ({message})")]
    BreaksGguf {
        /// Region concerned.
        region: RegionId,
        /// Offset of the first write that touches the header.
        offset: u64,
        /// What the parser would say about the edited header.
        message: String,
    },
    /// A tensor name is unknown in the region's GGUF index.
    #[error("no tensor named {name:?} in this model")]
    NoSuchTensor {
        /// Region concerned.
        region: RegionId,
        /// The name asked for.
        name: String,
    },
    /// A tensor-relative range does not lie inside the tensor's data.
    #[error("range {offset}+{len} is outside tensor {name:?} ({nbytes} bytes)")]
    OutsideTensor {
        /// Tensor name.
        name: String,
        /// Tensor-relative start.
        offset: u64,
        /// Length.
        len: u64,
        /// Size of the tensor's data.
        nbytes: u64,
    },
    /// Page protection through the `region` crate failed.
    #[error("page protection at offset {offset} ({offset:#x}) +{len}: {message}")]
    PageProtection {
        /// Region concerned.
        region: RegionId,
        /// Start of the pages.
        offset: u64,
        /// Length of the pages.
        len: u64,
        /// The OS message.
        message: String,
    },
}

impl From<hotpatch_atomic::Error> for EngineError {
    fn from(e: hotpatch_atomic::Error) -> Self {
        EngineError::Io {
            action: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

impl EngineError {
    /// A stable machine-readable code for the variant (the UI branches on this, never on text).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Io { .. } => "io",
            EngineError::NoSuchRegion(_) => "no_such_region",
            EngineError::OutOfBounds { .. } => "out_of_bounds",
            EngineError::Protected { .. } => "protected",
            EngineError::ReadOnlyRegion(_) => "read_only_region",
            EngineError::OverlappingBatch { .. } => "overlapping_batch",
            EngineError::InvalidArgument { .. } => "invalid_argument",
            EngineError::BadPattern { .. } => "bad_pattern",
            EngineError::NothingTo(_) => "nothing_to",
            EngineError::CorruptJournal { .. } => "corrupt_journal",
            EngineError::JournalConflict { .. } => "journal_conflict",
            EngineError::Cancelled => "cancelled",
            EngineError::LimitReached { .. } => "limit_reached",
            EngineError::Group(_) => "group",
            EngineError::Gguf { .. } => "gguf",
            EngineError::BreaksGguf { .. } => "breaks_gguf",
            EngineError::NoSuchTensor { .. } => "no_such_tensor",
            EngineError::OutsideTensor { .. } => "outside_tensor",
            EngineError::PageProtection { .. } => "page_protection",
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        EngineError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: &'static str, why: impl Into<String>) -> Self {
        EngineError::InvalidArgument {
            what,
            why: why.into(),
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages reach users as is (the Bytes screen, the CLI): they speak of offsets in the
    /// file, never of the engine's internal region ids ("r6:0").
    #[test]
    fn messages_name_no_region_id() {
        let r = RegionId(6);
        let errors = [
            EngineError::Protected {
                region: r,
                offset: 0,
                len: 4,
                protected_start: 0,
                protected_end: 24,
                reason: "GGUF header".into(),
            },
            EngineError::BreaksGguf {
                region: r,
                offset: 0,
                message: "bad magic".into(),
            },
            EngineError::OutOfBounds {
                region: r,
                offset: 100,
                len: 8,
                region_len: 64,
            },
            EngineError::OverlappingBatch {
                first: 0,
                second: 1,
                region: r,
                offset: 16,
            },
            EngineError::ReadOnlyRegion(r),
            EngineError::NoSuchRegion(r),
            EngineError::Gguf {
                region: r,
                message: "truncated".into(),
            },
            EngineError::NoSuchTensor {
                region: r,
                name: "x".into(),
            },
        ];
        for e in &errors {
            let m = e.to_string();
            assert!(!m.contains("r6"), "{m}");
        }
        assert_eq!(
            errors[0].to_string(),
            "write of 4 bytes at offset 0 (0x0) refused: bytes 0..24 are protected (GGUF header)"
        );
        assert_eq!(
            errors[1].to_string(),
            "write at offset 0 (0x0) refused: it would break the GGUF header (bad magic)"
        );
    }
}
