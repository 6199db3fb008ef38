//! The Bytes screen's commands: the GGUF structure over the bytes, wildcard search, and every
//! byte operation on the open model.
//!
//! Everything goes through the session ([`AppState::session`]): reads see staged edits, every
//! operation is journaled, undoable and emits a patch event, and each is recorded for
//! configuration export ([`hotpatch_core::manager::Manager::bytes_op`]). The header guard is on:
//! a write that would leave the GGUF header unparseable is refused with the parser's words
//! (code `Refused`), before any byte changes.
//!
//! Each command has a plain function beside it taking `&AppState` (the logic, tested without a
//! window); the `#[tauri::command]` wrapper only moves it off the UI thread. The search result
//! is bulk data and crosses as binary ([`bytes_search`], registered in [`crate::binary`]).

use hotpatch_core::structure::{Span, SpanKind};
use hotpatch_core::{ops, BitOp, Pattern, Scope};
use serde::{Deserialize, Serialize};
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::{Channel, Response};
use tauri::{AppHandle, State};

use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

/// The largest range one operation may change (each one is journaled with the range's bytes
/// before and after, and recorded for export, so the range is held in memory a few times).
pub const MAX_OP_LEN: u64 = 256 << 20;

/// The most search matches returned (the search stops at the next one and says so).
pub const MAX_MATCHES: u32 = 1_000_000;

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

fn hex_arg(what: &str, text: &str) -> Result<Vec<u8>, IpcError> {
    ops::parse_hex_bytes(text)
        .map_err(|e| IpcError::new(ErrorCode::BadRequest, format!("{what}: {e}")))
}

fn check_len(len: u64) -> Result<(), IpcError> {
    if len == 0 {
        return Err(IpcError::new(
            ErrorCode::BadRequest,
            "length is 0: select at least one byte",
        ));
    }
    if len > MAX_OP_LEN {
        return Err(IpcError::new(
            ErrorCode::BadRequest,
            format!(
                "length {len} is above the {} MiB one operation may change",
                MAX_OP_LEN >> 20
            ),
        ));
    }
    Ok(())
}

/// Applies one byte operation to file `shard` of the open model (guarded, journaled,
/// recorded).
pub fn apply(state: &AppState, shard: u32, op: &ByteOp) -> Result<ByteOpOutcome, IpcError> {
    let m = state.session();
    let source = "bytes";
    let (applied, what) = match op {
        ByteOp::Write { offset, hex } => {
            let bytes = hex_arg("bytes", hex)?;
            let len = bytes.len() as u64;
            check_len(len)?;
            let a = m.bytes_op(shard, source, &[(*offset, len)], |b, r| {
                b.write(r, *offset, &bytes)
            })?;
            (a, format!("write {len} bytes at {offset:#x}"))
        }
        ByteOp::Fill { offset, len, hex } => {
            check_len(*len)?;
            let pattern = hex_arg("fill pattern", hex)?;
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.fill(r, *offset, *len, &pattern)
            })?;
            (a, format!("fill {len} bytes at {offset:#x}"))
        }
        ByteOp::Copy { from, to, len } => {
            check_len(*len)?;
            let a = m.bytes_op(shard, source, &[(*to, *len)], |b, r| {
                b.copy(r, *from, r, *to, *len)
            })?;
            (a, format!("copy {len} bytes {from:#x} → {to:#x}"))
        }
        ByteOp::Swap { a, b, len } => {
            check_len(*len)?;
            let ap = m.bytes_op(shard, source, &[(*a, *len), (*b, *len)], |x, r| {
                x.swap(r, *a, r, *b, *len)
            })?;
            (ap, format!("swap {len} bytes {a:#x} ↔ {b:#x}"))
        }
        ByteOp::Xor { offset, len, hex } => {
            check_len(*len)?;
            let key = hex_arg("key", hex)?;
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.xor(r, *offset, *len, &key)
            })?;
            (a, format!("xor {len} bytes at {offset:#x}"))
        }
        ByteOp::Bits {
            offset,
            len,
            kind,
            bits,
            hex,
        } => {
            check_len(*len)?;
            let mask = hex_arg("mask", hex)?;
            let bop = match kind {
                BitKind::And => BitOp::And,
                BitKind::Or => BitOp::Or,
                BitKind::Xor => BitOp::Xor,
                BitKind::Not => BitOp::Not,
                BitKind::Shl => BitOp::Shl(*bits),
                BitKind::Shr => BitOp::Shr(*bits),
            };
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.bit_op(r, *offset, *len, bop, &mask)
            })?;
            (a, format!("{} {len} bytes at {offset:#x}", bop.name()))
        }
        ByteOp::RotateBits { offset, len, bits } => {
            check_len(*len)?;
            if !(-7..=7).contains(bits) {
                return Err(IpcError::new(
                    ErrorCode::BadRequest,
                    format!("bit rotation {bits} is not in -7..=7"),
                ));
            }
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.rotate_bits(r, *offset, *len, *bits)
            })?;
            (
                a,
                format!("rotate the bits of each of {len} bytes at {offset:#x} by {bits}"),
            )
        }
        ByteOp::RotateBytes { offset, len, n } => {
            check_len(*len)?;
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.rotate_range(r, *offset, *len, *n)
            })?;
            (a, format!("rotate {len} bytes at {offset:#x} by {n} bytes"))
        }
        ByteOp::Reverse { offset, len } => {
            check_len(*len)?;
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.reverse(r, *offset, *len)
            })?;
            (a, format!("reverse {len} bytes at {offset:#x}"))
        }
        ByteOp::ReverseElements { offset, len, width } => {
            check_len(*len)?;
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.reverse_elements(r, *offset, *len, *width as usize)
            })?;
            (
                a,
                format!("swap byte order of {width}-byte elements in {len} bytes at {offset:#x}"),
            )
        }
        ByteOp::Protect { offset, len } => {
            check_len(*len)?;
            let id = m.protect_range(shard, *offset, *len)?;
            return Ok(ByteOpOutcome {
                bytes_changed: 0,
                change: None,
                message: format!("protected {len} bytes at {offset:#x} (protection {id})"),
            });
        }
        ByteOp::Unprotect { offset, len } => {
            check_len(*len)?;
            let n = m.unprotect_range(shard, *offset, *len)?;
            if n == 0 {
                return Err(IpcError::new(
                    ErrorCode::NotFound,
                    format!("no protection lies inside {offset:#x}+{len}"),
                ));
            }
            return Ok(ByteOpOutcome {
                bytes_changed: 0,
                change: None,
                message: format!("removed {n} protection(s) inside {offset:#x}+{len}"),
            });
        }
    };
    Ok(ByteOpOutcome {
        bytes_changed: applied.bytes_changed,
        change: applied.change,
        message: format!("{what}: {} changed", applied.bytes_changed),
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
    if len == 0 {
        return Err(IpcError::new(ErrorCode::BadRequest, "length is 0"));
    }
    let m = state.session();
    let region = m.shard_region(shard)?;
    let c = match with {
        CompareWith::Range { offset: other } => {
            m.bytes().compare(region, offset, region, *other, len)?
        }
        CompareWith::File {
            path,
            offset: other,
        } => {
            if path.trim().is_empty() {
                return Err(IpcError::new(
                    ErrorCode::BadRequest,
                    "no file to compare with",
                ));
            }
            m.bytes()
                .compare_file(region, offset, path, *other, len)
                .map_err(|e| IpcError::from(e).with_context(path))?
        }
    };
    Ok(CompareOutcome {
        len: c.len,
        differing: c.differing,
        first_difference: c.first_difference,
    })
}

/// Parses a search query: hex with wildcards, or text matched byte for byte (UTF-8).
pub fn parse_query(query: &str, text: bool) -> Result<Pattern, IpcError> {
    let p = if text {
        if query.is_empty() {
            return Err(IpcError::new(ErrorCode::BadRequest, "empty search text"));
        }
        Pattern::literal(query.as_bytes())
    } else {
        Pattern::parse_hex(query)
    };
    Ok(p?)
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
    if limit == 0 || limit > MAX_MATCHES {
        return Err(IpcError::new(
            ErrorCode::BadRequest,
            format!("match limit {limit} is not in 1..={MAX_MATCHES}"),
        ));
    }
    let m = state.session();
    let region = m.shard_region(shard)?;
    let (found, more) =
        m.bytes()
            .search_upto(pattern, Scope::Region(region), limit as usize, progress)?;
    Ok((found.into_iter().map(|h| h.offset).collect(), more))
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
