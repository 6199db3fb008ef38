//! The Bytes screen's commands: the GGUF structure over the bytes, wildcard search, and every
//! byte operation on the open model.
//!
//! Everything goes through the session ([`AppState::session`]): reads see staged edits, every
//! operation is journaled, undoable and emits a patch event, and each is recorded for
//! configuration export ([`hotpatch_core::manager::Manager::bytes_op`]). The header guard is on:
//! a write that would leave the GGUF header unparseable is refused with the parser's words
//! (code `Refused`), before any byte changes.
//!
//! The operations, their limits and descriptions are `hotpatch_core::byte_ops`; the types here
//! are their IPC mirrors. Each command has a plain function beside it taking `&AppState`
//! (tested without a window); the `#[tauri::command]` wrapper only moves it off the UI thread. The search result
//! is bulk data and crosses as binary ([`bytes_search`], registered in [`crate::binary`]).

use hotpatch_core::byte_ops;
use hotpatch_core::structure::{Span, SpanKind};
use hotpatch_core::Pattern;
use serde::{Deserialize, Serialize};
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::{Channel, Response};
use tauri::{AppHandle, State};

use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

pub use hotpatch_core::byte_ops::{MAX_MATCHES, MAX_OP_LEN};

/// What a span of bytes is (the colour band the hex view draws).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum SpanClass {
    /// Magic, version and counts.
    Header,
    /// One metadata entry.
    Metadata,
    /// One tensor info (name, dims, type, offset).
    TensorInfo,
    /// Alignment padding.
    Padding,
    /// One tensor's data.
    TensorData,
    /// Bytes after the last tensor.
    Trailing,
}

/// The tensor a data span holds, with what the inspector needs to place a byte in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SpanTensor {
    /// Tensor name.
    pub name: String,
    /// Type name (`Q4_K`), or `type N` for an unknown id.
    pub ty: String,
    /// Elements per block (1 for plain types); `None` for an unknown type.
    pub block_size: Option<u32>,
    /// Bytes per block (the element size for plain types); `None` for an unknown type.
    pub type_size: Option<u32>,
    /// Number of elements.
    #[specta(type = Number)]
    pub n_elements: u64,
    /// Dimensions (ggml order, fastest first).
    #[specta(type = Vec<Number>)]
    pub dims: Vec<u64>,
}

/// One labelled byte range `[start, end)` of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SpanView {
    /// First byte.
    #[specta(type = Number)]
    pub start: u64,
    /// One past the last byte.
    #[specta(type = Number)]
    pub end: u64,
    /// What it is.
    pub class: SpanClass,
    /// The label: "header", the metadata key, the tensor name, "padding", "trailing".
    pub label: String,
    /// For tensor data spans: the tensor.
    pub tensor: Option<SpanTensor>,
}

/// A read-only range (`setMemoryProtection`, tensor locks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ProtectedRange {
    /// Protection id.
    #[specta(type = Number)]
    pub id: u64,
    /// First byte.
    #[specta(type = Number)]
    pub start: u64,
    /// One past the last byte.
    #[specta(type = Number)]
    pub end: u64,
    /// Why ("read-only", "tensor output.weight is locked").
    pub reason: String,
}

/// The open model's bytes as the hex view labels them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ByteStructure {
    /// Size of the file in bytes.
    #[specta(type = Number)]
    pub file_size: u64,
    /// Where the tensor data starts (0 when the header does not parse).
    #[specta(type = Number)]
    pub data_offset: u64,
    /// Why there are no spans (the header no longer parses), if so.
    pub gguf_error: Option<String>,
    /// Every byte labelled, in order, contiguous.
    pub spans: Vec<SpanView>,
    /// Protected ranges, in id order.
    pub protections: Vec<ProtectedRange>,
}

/// The bit operations of [`ByteOp::Bits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum BitKind {
    /// `b & mask`.
    And,
    /// `b | mask`.
    Or,
    /// `b ^ mask`.
    Xor,
    /// Invert the bits selected by the mask.
    Not,
    /// Shift each byte left by `bits`; only the masked bits take the shifted value.
    Shl,
    /// Shift each byte right by `bits`; only the masked bits take the shifted value.
    Shr,
}

/// One byte operation on the open model. Offsets are absolute file offsets; hex fields are
/// bytes in hex (`"de ad be ef"`), no wildcards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ByteOp {
    /// Write `hex` at `offset`.
    Write {
        /// Where.
        #[specta(type = Number)]
        offset: u64,
        /// The bytes.
        hex: String,
    },
    /// Fill the range with `hex` repeated.
    Fill {
        /// Start.
        #[specta(type = Number)]
        offset: u64,
        /// Length.
        #[specta(type = Number)]
        len: u64,
        /// The pattern.
        hex: String,
    },
    /// Copy `len` bytes from `from` to `to` (memmove: overlap is fine).
    Copy {
        /// Source offset.
        #[specta(type = Number)]
        from: u64,
        /// Destination offset.
        #[specta(type = Number)]
        to: u64,
        /// Length.
        #[specta(type = Number)]
        len: u64,
    },
    /// Exchange two equal-length ranges that do not overlap.
    Swap {
        /// First range's start.
        #[specta(type = Number)]
        a: u64,
        /// Second range's start.
        #[specta(type = Number)]
        b: u64,
        /// Length.
        #[specta(type = Number)]
        len: u64,
    },
    /// XOR the range with `hex` (the key) repeated.
    Xor {
        /// Start.
        #[specta(type = Number)]
        offset: u64,
        /// Length.
        #[specta(type = Number)]
        len: u64,
        /// The key.
        hex: String,
    },
    /// A bit operation with `hex` as the repeating mask.
    Bits {
        /// Start.
        #[specta(type = Number)]
        offset: u64,
        /// Length.
        #[specta(type = Number)]
        len: u64,
        /// Which operation.
        kind: BitKind,
        /// Shift count (0..=7; shifts only).
        bits: u32,
        /// The mask.
        hex: String,
    },
    /// Rotate the bits of every byte left by `bits` (negative: right).
    RotateBits {
        /// Start.
        #[specta(type = Number)]
        offset: u64,
        /// Length.
        #[specta(type = Number)]
        len: u64,
        /// Bits, -7..=7.
        bits: i32,
    },
    /// Rotate the range by `n` bytes towards its start (negative: towards its end).
    RotateBytes {
        /// Start.
        #[specta(type = Number)]
        offset: u64,
        /// Length.
        #[specta(type = Number)]
        len: u64,
        /// Bytes (any integer; taken modulo the length).
        #[specta(type = Number)]
        n: i64,
    },
    /// Reverse the whole range.
    Reverse {
        /// Start.
        #[specta(type = Number)]
        offset: u64,
        /// Length.
        #[specta(type = Number)]
        len: u64,
    },
    /// Reverse the byte order of every element of `width` bytes (endianness swap).
    ReverseElements {
        /// Start.
        #[specta(type = Number)]
        offset: u64,
        /// Length (a multiple of `width`).
        #[specta(type = Number)]
        len: u64,
        /// Element width in bytes.
        width: u32,
    },
    /// Make the range read-only for every layer.
    Protect {
        /// Start.
        #[specta(type = Number)]
        offset: u64,
        /// Length.
        #[specta(type = Number)]
        len: u64,
    },
    /// Remove every protection lying inside the range.
    Unprotect {
        /// Start.
        #[specta(type = Number)]
        offset: u64,
        /// Length.
        #[specta(type = Number)]
        len: u64,
    },
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ByteOpOutcome {
    /// Bytes whose value changed.
    #[specta(type = Number)]
    pub bytes_changed: u64,
    /// The undo entry it made, if any (an operation that changed nothing makes none).
    #[specta(type = Option<Number>)]
    pub change: Option<u64>,
    /// One line for the user ("xor 16 bytes at 0x1f40: 12 changed").
    pub message: String,
}

/// What to compare a range with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(tag = "with", rename_all = "camelCase")]
pub enum CompareWith {
    /// Another range of the open model.
    Range {
        /// Its start.
        #[specta(type = Number)]
        offset: u64,
    },
    /// A range of another file (on disk, read-only).
    File {
        /// The file.
        path: String,
        /// Its start in that file.
        #[specta(type = Number)]
        offset: u64,
    },
}

/// A comparison: `len` bytes at `offset` of the open model with a range of the model or of
/// another file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CompareRequest {
    /// Start in the open model.
    #[specta(type = Number)]
    pub offset: u64,
    /// Bytes to compare.
    #[specta(type = Number)]
    pub len: u64,
    /// The other side.
    pub with: CompareWith,
}

/// The result of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CompareOutcome {
    /// Bytes compared.
    #[specta(type = Number)]
    pub len: u64,
    /// Bytes that differ.
    #[specta(type = Number)]
    pub differing: u64,
    /// Offset of the first difference relative to the start of the ranges.
    #[specta(type = Option<Number>)]
    pub first_difference: Option<u64>,
}

// ----- logic (tested without a window) ---------------------------------------------------------

fn span_view(span: Span, index: &hotpatch_core::GgufIndex) -> SpanView {
    let (class, label, tensor) = match span.kind {
        SpanKind::Header => (SpanClass::Header, "header".to_string(), None),
        SpanKind::Metadata { key } => (SpanClass::Metadata, key, None),
        SpanKind::TensorInfo { name } => (SpanClass::TensorInfo, name, None),
        SpanKind::Padding => (SpanClass::Padding, "padding".to_string(), None),
        SpanKind::TensorData { name, ty } => {
            let info = index.tensor(&name);
            let known = info.and_then(|t| t.ty.known());
            let tensor = SpanTensor {
                name: name.clone(),
                ty,
                block_size: known.map(|t| t.block_size() as u32),
                type_size: known.map(|t| t.type_size() as u32),
                n_elements: info.map_or(0, |t| t.n_elements),
                dims: info.map_or_else(Vec::new, |t| t.dims.clone()),
            };
            (SpanClass::TensorData, name, Some(tensor))
        }
        _ => (SpanClass::Trailing, "trailing".to_string(), None),
    };
    SpanView {
        start: span.start,
        end: span.end,
        class,
        label,
        tensor,
    }
}

/// The structure of the bytes of file `shard` of the open model (0: the first or only file) as
/// the session sees them now (a header edit shows at once). A header that no longer parses
/// gives no spans and says why.
pub fn structure(state: &AppState, shard: u32) -> Result<ByteStructure, IpcError> {
    let session = state.session();
    let region = session.shard_region(shard)?;
    let engine = session.engine();
    let file_size = engine.region_info(region)?.len;
    let protections = engine
        .protections()
        .into_iter()
        .filter(|p| p.region == region)
        .map(|p| ProtectedRange {
            id: p.id,
            start: p.start,
            end: p.end,
            reason: p.reason,
        })
        .collect();
    match engine.gguf(region) {
        Ok(index) => Ok(ByteStructure {
            file_size,
            data_offset: index.data_offset,
            gguf_error: None,
            spans: hotpatch_core::structure::layout(&index)
                .into_iter()
                .map(|s| span_view(s, &index))
                .collect(),
            protections,
        }),
        Err(e) => Ok(ByteStructure {
            file_size,
            data_offset: 0,
            gguf_error: Some(e.to_string()),
            spans: Vec::new(),
            protections,
        }),
    }
}

fn op_error(e: byte_ops::ByteOpError) -> IpcError {
    use byte_ops::ByteOpError as B;
    match e {
        B::Invalid(m) => IpcError::new(ErrorCode::BadRequest, m),
        B::NotFound(m) => IpcError::new(ErrorCode::NotFound, m),
        B::Manager(e) => e.into(),
        B::Engine(e) => e.into(),
        B::File { path, source } => IpcError::from(source).with_context(&path),
    }
}

impl From<BitKind> for byte_ops::BitKind {
    fn from(k: BitKind) -> Self {
        match k {
            BitKind::And => Self::And,
            BitKind::Or => Self::Or,
            BitKind::Xor => Self::Xor,
            BitKind::Not => Self::Not,
            BitKind::Shl => Self::Shl,
            BitKind::Shr => Self::Shr,
        }
    }
}

impl From<&ByteOp> for byte_ops::ByteOp {
    fn from(op: &ByteOp) -> Self {
        use byte_ops::ByteOp as C;
        match op.clone() {
            ByteOp::Write { offset, hex } => C::Write { offset, hex },
            ByteOp::Fill { offset, len, hex } => C::Fill { offset, len, hex },
            ByteOp::Copy { from, to, len } => C::Copy { from, to, len },
            ByteOp::Swap { a, b, len } => C::Swap { a, b, len },
            ByteOp::Xor { offset, len, hex } => C::Xor { offset, len, hex },
            ByteOp::Bits {
                offset,
                len,
                kind,
                bits,
                hex,
            } => C::Bits {
                offset,
                len,
                kind: kind.into(),
                bits,
                hex,
            },
            ByteOp::RotateBits { offset, len, bits } => C::RotateBits { offset, len, bits },
            ByteOp::RotateBytes { offset, len, n } => C::RotateBytes { offset, len, n },
            ByteOp::Reverse { offset, len } => C::Reverse { offset, len },
            ByteOp::ReverseElements { offset, len, width } => {
                C::ReverseElements { offset, len, width }
            }
            ByteOp::Protect { offset, len } => C::Protect { offset, len },
            ByteOp::Unprotect { offset, len } => C::Unprotect { offset, len },
        }
    }
}

/// Applies one byte operation to file `shard` of the open model (guarded, journaled,
/// recorded: `hotpatch_core::byte_ops::apply`).
pub fn apply(state: &AppState, shard: u32, op: &ByteOp) -> Result<ByteOpOutcome, IpcError> {
    let o = byte_ops::apply(state.session(), shard, &op.into()).map_err(op_error)?;
    Ok(ByteOpOutcome {
        bytes_changed: o.bytes_changed,
        change: o.change,
        message: o.message,
    })
}

/// Compares `len` bytes at `offset` of file `shard` of the open model with another range of it
/// or another file.
pub fn compare(
    state: &AppState,
    shard: u32,
    offset: u64,
    len: u64,
    with: &CompareWith,
) -> Result<CompareOutcome, IpcError> {
    let with = match with {
        CompareWith::Range { offset } => byte_ops::CompareWith::Range { offset: *offset },
        CompareWith::File { path, offset } => byte_ops::CompareWith::File {
            path: path.clone(),
            offset: *offset,
        },
    };
    let c = byte_ops::compare(state.session(), shard, offset, len, &with).map_err(op_error)?;
    Ok(CompareOutcome {
        len: c.len,
        differing: c.differing,
        first_difference: c.first_difference,
    })
}

/// Parses a search query: hex with wildcards, or text matched byte for byte (UTF-8).
pub fn parse_query(query: &str, text: bool) -> Result<Pattern, IpcError> {
    byte_ops::parse_query(query, text).map_err(op_error)
}

/// Searches the whole of file `shard` of the open model; returns the match offsets (ascending,
/// at most `limit`) and whether more exist. `progress` may cancel.
pub fn search(
    state: &AppState,
    shard: u32,
    pattern: &Pattern,
    limit: u32,
    progress: hotpatch_core::ProgressFn<'_>,
) -> Result<(Vec<u64>, bool), IpcError> {
    byte_ops::search(state.session(), shard, pattern, limit, progress).map_err(op_error)
}

/// The binary layout of [`bytes_search`]: little-endian `f64`s — pattern length, `1` when
/// more matches exist than were returned (else `0`), then each match offset, ascending.
pub fn encode_matches(pattern_len: usize, offsets: &[u64], more: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * (2 + offsets.len()));
    out.extend_from_slice(&(pattern_len as f64).to_le_bytes());
    out.extend_from_slice(&(if more { 1.0f64 } else { 0.0 }).to_le_bytes());
    for &o in offsets {
        // Exact: offsets are below 2^53 (the reader refuses larger files).
        out.extend_from_slice(&(o as f64).to_le_bytes());
    }
    out
}

// ----- commands -------------------------------------------------------------------------------

use super::blocking;

// Every command names the file of the model it works on: `shard`, 0-based (0 for a
// single-file model; `k - 1` for `-0000k-of-0000n.gguf` of a split model).

/// The structure of the bytes of file `shard` of the open model (spans, data offset,
/// protections).
#[tauri::command]
#[specta::specta]
pub fn bytes_structure(shard: u32, state: State<'_, AppState>) -> Result<ByteStructure, IpcError> {
    structure(&state, shard)
}

/// Applies one byte operation to file `shard` of the open model (off the UI thread).
#[tauri::command]
#[specta::specta]
pub async fn bytes_apply(
    shard: u32,
    op: ByteOp,
    app: AppHandle,
) -> Result<ByteOpOutcome, IpcError> {
    blocking(app, move |s| apply(s, shard, &op)).await
}

/// Compares `len` bytes at `offset` of file `shard` with another range of it or of another
/// file.
#[tauri::command]
#[specta::specta]
pub async fn bytes_compare(
    shard: u32,
    request: CompareRequest,
    app: AppHandle,
) -> Result<CompareOutcome, IpcError> {
    blocking(app, move |s| {
        compare(s, shard, request.offset, request.len, &request.with)
    })
    .await
}

/// Searches the whole of file `shard` of the open model for `query` (hex with `??`/`3?`
/// wildcards, or `text`), streaming progress as job `job`; at most `limit` matches. A
/// raw-bytes command (see [`encode_matches`] for the layout).
#[tauri::command]
pub async fn bytes_search<R: tauri::Runtime>(
    shard: u32,
    query: String,
    text: bool,
    limit: u32,
    job: u32,
    on_progress: Channel<Progress>,
    app: AppHandle<R>,
) -> Result<Response, IpcError> {
    let pattern = parse_query(&query, text)?;
    blocking(app, move |s| {
        let handle = s.jobs.register(job);
        let mut progress = handle.progress_fn(&on_progress, Stage::Search, "searching");
        let (offsets, more) = search(s, shard, &pattern, limit, &mut progress)?;
        handle.send(
            &on_progress,
            Stage::Done,
            1,
            1,
            format!("{}{} match(es)", offsets.len(), if more { "+" } else { "" }),
        );
        Ok(Response::new(encode_matches(pattern.len(), &offsets, more)))
    })
    .await
}
