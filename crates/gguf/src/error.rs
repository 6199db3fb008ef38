//! Errors of the GGUF reader and writer.
//!
//! Every variant that comes from a byte in a file names where: the byte offset (in hex, as a
//! hex editor shows it) and the field, metadata key or tensor the byte belongs to.

use std::path::PathBuf;

/// Everything the reader and the writer refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file ends (or the slice ends) before a field does.
    #[error("{what} at offset {offset:#x}: needs {needed} bytes but the file ends at {size}")]
    Truncated {
        /// The field being read.
        what: String,
        /// Where it starts.
        offset: u64,
        /// How many bytes it needs.
        needed: u64,
        /// Size of the file.
        size: u64,
    },
    /// The first four bytes are not `GGUF`.
    #[error(
        "not a GGUF file: magic at offset 0x0 is {found:02x?}, expected \"GGUF\" (47 47 55 46)"
    )]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// A byte-swapped version field: the file was written big-endian.
    #[error("big-endian GGUF (version {version} byte-swapped at offset 0x4) is not supported; convert it with gguf-py's gguf_convert_endian.py")]
    BigEndian {
        /// The version once swapped.
        version: u32,
    },
    /// A version this reader does not know.
    #[error("unsupported GGUF version {version} at offset 0x4 (supported: 2, 3)")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// A count (of entries, tensors, array elements) that the rest of the file cannot hold.
    #[error("{what} at offset {offset:#x}: count {count} cannot fit in the {remaining} bytes left (each needs at least {min_each} bytes)")]
    CountTooLarge {
        /// Which count.
        what: String,
        /// Where it is.
        offset: u64,
        /// The value read.
        count: u64,
        /// Bytes left after it.
        remaining: u64,
        /// The smallest encoding of one item.
        min_each: u64,
    },
    /// A string or key is not UTF-8 where UTF-8 is required.
    #[error("{what} at offset {offset:#x} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which string.
        what: String,
        /// Where its bytes start.
        offset: u64,
    },
    /// A metadata value type id outside the spec.
    #[error("{what} at offset {offset:#x}: unknown metadata value type {type_id}")]
    BadValueType {
        /// Which value.
        what: String,
        /// Where the type id is.
        offset: u64,
        /// The id read.
        type_id: u32,
    },
    /// Arrays nested deeper than [`crate::MAX_NESTING`].
    #[error("{what} at offset {offset:#x}: arrays nested deeper than {max} levels")]
    NestingTooDeep {
        /// Which value.
        what: String,
        /// Where the too-deep array starts.
        offset: u64,
        /// The cap.
        max: usize,
    },
    /// A bool stored as something other than 0 or 1.
    #[error("{what} at offset {offset:#x}: bool byte is {value}, expected 0 or 1")]
    BadBool {
        /// Which value.
        what: String,
        /// Where.
        offset: u64,
        /// The byte read.
        value: u8,
    },
    /// Two metadata entries with the same key.
    #[error("duplicate metadata key '{key}' at offset {offset:#x} (first at {first:#x})")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Where the second entry starts.
        offset: u64,
        /// Where the first one starts.
        first: u64,
    },
    /// Two tensors with the same name.
    #[error("duplicate tensor name '{name}' (index {index}) at offset {offset:#x} (first is index {first})")]
    DuplicateTensor {
        /// The name.
        name: String,
        /// Index of the second one.
        index: usize,
        /// Where its info starts.
        offset: u64,
        /// Index of the first one.
        first: usize,
    },
    /// A tensor whose shape is refused.
    #[error("tensor '{name}' (index {index}) at offset {offset:#x}: {problem}")]
    BadTensor {
        /// The tensor name.
        name: String,
        /// Its index in the tensor list.
        index: usize,
        /// Where its info (or the refused field) starts.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// Two tensors whose data ranges overlap.
    #[error("tensor '{name}' (index {index}) data [{start:#x}, {end:#x}) overlaps tensor '{other}' data [{other_start:#x}, {other_end:#x})")]
    Overlap {
        /// The later tensor (by offset).
        name: String,
        /// Its index.
        index: usize,
        /// Its data start (absolute).
        start: u64,
        /// Its data end (absolute).
        end: u64,
        /// The tensor it overlaps.
        other: String,
        /// That tensor's data start.
        other_start: u64,
        /// That tensor's data end.
        other_end: u64,
    },
    /// `general.alignment` is not a usable alignment.
    #[error("metadata 'general.alignment' at offset {offset:#x}: {problem}")]
    BadAlignment {
        /// Where the entry is.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// The file is at least 2^53 bytes: offsets would no longer be exact as f64.
    #[error("file size {size} is at least 2^53 bytes; offsets would not be exact over IPC")]
    FileTooLarge {
        /// The size.
        size: u64,
    },
    /// A tensor that does not exist.
    #[error("no tensor named '{name}'")]
    NoSuchTensor {
        /// The name asked for.
        name: String,
    },
    /// A tensor's type id is not one this build knows.
    #[error("tensor '{name}' has unknown ggml type id {id}: its values cannot be read")]
    UnknownTensorType {
        /// The tensor.
        name: String,
        /// The raw id.
        id: u32,
    },
    /// A split model is inconsistent or incomplete.
    #[error("split model: {problem}")]
    Split {
        /// What is wrong (names the shard).
        problem: String,
    },
    /// A write or edit request that cannot be done.
    #[error("{0}")]
    Invalid(String),
    /// An I/O error on a named file.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error (shown in the message, so not also a `source`).
        error: std::io::Error,
    },
}

impl From<hotpatch_atomic::Error> for GgufError {
    fn from(e: hotpatch_atomic::Error) -> Self {
        GgufError::Io {
            path: e.path,
            error: std::io::Error::new(e.source.kind(), format!("{}: {}", e.op, e.source)),
        }
    }
}

impl GgufError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GgufError::Io {
            path: path.into(),
            error: source,
        }
    }
}
