//! The bytes layer, its whole operation set as one value: [`ByteOp`] (write, fill, copy, swap, xor, bit
//! operations, rotations, reversals, protection), the limits one operation obeys
//! ([`MAX_OP_LEN`], [`MAX_MATCHES`]), each operation's one-line description, and
//! [`apply`]/[`compare`]/[`search`] on a file of the session [`Manager`] — guarded (a write that
//! would leave the GGUF header unparseable is refused before any byte changes), journaled,
//! undoable and recorded for export through [`Manager::bytes_op`]. The studio's Bytes screen
//! mirrors these types for IPC; the logic is here.

use crate::error::EngineError;
use crate::manager::{Manager, ManagerError};
use crate::ops::{self, BitOp, Pattern};
use crate::{ProgressFn, Scope};

/// The largest range one operation may change (each one is journaled with the range's bytes
/// before and after, and recorded for export, so the range is held in memory a few times).
pub const MAX_OP_LEN: u64 = 256 << 20;

/// The most search matches returned (the search stops at the next one and says so).
pub const MAX_MATCHES: u32 = 1_000_000;

/// The bit operations of [`ByteOp::Bits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// One byte operation on a file of the session. Offsets are absolute file offsets; hex fields are
/// bytes in hex (`"de ad be ef"`), no wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByteOp {
    /// Write `hex` at `offset`.
    Write {
        /// Where.
        offset: u64,
        /// The bytes.
        hex: String,
    },
    /// Fill the range with `hex` repeated.
    Fill {
        /// Start.
        offset: u64,
        /// Length.
        len: u64,
        /// The pattern.
        hex: String,
    },
    /// Copy `len` bytes from `from` to `to` (memmove: overlap is fine).
    Copy {
        /// Source offset.
        from: u64,
        /// Destination offset.
        to: u64,
        /// Length.
        len: u64,
    },
    /// Exchange two equal-length ranges that do not overlap.
    Swap {
        /// First range's start.
        a: u64,
        /// Second range's start.
        b: u64,
        /// Length.
        len: u64,
    },
    /// XOR the range with `hex` (the key) repeated.
    Xor {
        /// Start.
        offset: u64,
        /// Length.
        len: u64,
        /// The key.
        hex: String,
    },
    /// A bit operation with `hex` as the repeating mask.
    Bits {
        /// Start.
        offset: u64,
        /// Length.
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
        offset: u64,
        /// Length.
        len: u64,
        /// Bits, -7..=7.
        bits: i32,
    },
    /// Rotate the range by `n` bytes towards its start (negative: towards its end).
    RotateBytes {
        /// Start.
        offset: u64,
        /// Length.
        len: u64,
        /// Bytes (any integer; taken modulo the length).
        n: i64,
    },
    /// Reverse the whole range.
    Reverse {
        /// Start.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Reverse the byte order of every element of `width` bytes (endianness swap).
    ReverseElements {
        /// Start.
        offset: u64,
        /// Length (a multiple of `width`).
        len: u64,
        /// Element width in bytes.
        width: u32,
    },
    /// Make the range read-only for every layer.
    Protect {
        /// Start.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Remove every protection lying inside the range.
    Unprotect {
        /// Start.
        offset: u64,
        /// Length.
        len: u64,
    },
}

impl BitKind {
    /// The engine's bit operation (`bits`: the shift count of `Shl`/`Shr`).
    pub fn op(self, bits: u32) -> BitOp {
        match self {
            Self::And => BitOp::And,
            Self::Or => BitOp::Or,
            Self::Xor => BitOp::Xor,
            Self::Not => BitOp::Not,
            Self::Shl => BitOp::Shl(bits),
            Self::Shr => BitOp::Shr(bits),
        }
    }
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteOpOutcome {
    /// Bytes whose value changed.
    pub bytes_changed: u64,
    /// The undo entry it made, if any (an operation that changed nothing makes none).
    pub change: Option<u64>,
    /// One line for the user ("xor 16 bytes at 0x1f40: 12 changed").
    pub message: String,
}

/// What to compare a range with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareWith {
    /// Another range of the same file.
    Range {
        /// Its start.
        offset: u64,
    },
    /// A range of another file (on disk, read-only).
    File {
        /// The file.
        path: String,
        /// Its start in that file.
        offset: u64,
    },
}

/// The result of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareOutcome {
    /// Bytes compared.
    pub len: u64,
    /// Bytes that differ.
    pub differing: u64,
    /// Offset of the first difference relative to the start of the ranges.
    pub first_difference: Option<u64>,
}

/// An operation refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ByteOpError {
    /// The request itself is wrong (a length, a hex argument, a bound); nothing changed.
    #[error("{0}")]
    Invalid(String),
    /// There is nothing to act on (no protection inside the range).
    #[error("{0}")]
    NotFound(String),
    /// The session refused (no model, a protected range, the header guard…).
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// The engine refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The other file of a comparison could not be read (`path` names it).
    #[error("{path}: {source}")]
    File {
        /// The other file.
        path: String,
        /// Why.
        source: EngineError,
    },
}

fn invalid(message: impl Into<String>) -> ByteOpError {
    ByteOpError::Invalid(message.into())
}

/// Parses a hex argument (`what` names it in the error).
fn hex_arg(what: &str, text: &str) -> Result<Vec<u8>, ByteOpError> {
    ops::parse_hex_bytes(text).map_err(|e| invalid(format!("{what}: {e}")))
}

/// Refuses an empty range and one above [`MAX_OP_LEN`].
pub fn check_len(len: u64) -> Result<(), ByteOpError> {
    if len == 0 {
        return Err(invalid("length is 0: select at least one byte"));
    }
    if len > MAX_OP_LEN {
        return Err(invalid(format!(
            "length {len} is above the {} MiB one operation may change",
            MAX_OP_LEN >> 20
        )));
    }
    Ok(())
}

impl ByteOp {
    /// The operation's one-line description ("xor 16 bytes at 0x1f40"); the outcome's message
    /// adds how many bytes changed. `Write` describes the bytes it writes (`len` of them).
    pub fn describe(&self, write_len: u64) -> String {
        match self {
            Self::Write { offset, .. } => format!("write {write_len} bytes at {offset:#x}"),
            Self::Fill { offset, len, .. } => format!("fill {len} bytes at {offset:#x}"),
            Self::Copy { from, to, len } => format!("copy {len} bytes {from:#x} → {to:#x}"),
            Self::Swap { a, b, len } => format!("swap {len} bytes {a:#x} ↔ {b:#x}"),
            Self::Xor { offset, len, .. } => format!("xor {len} bytes at {offset:#x}"),
            Self::Bits {
                offset,
                len,
                kind,
                bits,
                ..
            } => format!("{} {len} bytes at {offset:#x}", kind.op(*bits).name()),
            Self::RotateBits { offset, len, bits } => {
                format!("rotate the bits of each of {len} bytes at {offset:#x} by {bits}")
            }
            Self::RotateBytes { offset, len, n } => {
                format!("rotate {len} bytes at {offset:#x} by {n} bytes")
            }
            Self::Reverse { offset, len } => format!("reverse {len} bytes at {offset:#x}"),
            Self::ReverseElements { offset, len, width } => {
                format!("swap byte order of {width}-byte elements in {len} bytes at {offset:#x}")
            }
            Self::Protect { offset, len } => format!("protect {len} bytes at {offset:#x}"),
            Self::Unprotect { offset, len } => {
                format!("unprotect {offset:#x}+{len}")
            }
        }
    }
}

/// Applies one byte operation to file `shard` of the session (0: the first or only file):
/// guarded, journaled, recorded (source `bytes`). Arguments are checked before any byte is read.
pub fn apply(m: &Manager, shard: u32, op: &ByteOp) -> Result<ByteOpOutcome, ByteOpError> {
    let source = "bytes";
    let applied = match op {
        ByteOp::Write { offset, hex } => {
            let bytes = hex_arg("bytes", hex)?;
            let len = bytes.len() as u64;
            check_len(len)?;
            let a = m.bytes_op(shard, source, &[(*offset, len)], |b, r| {
                b.write(r, *offset, &bytes)
            })?;
            (a, op.describe(len))
        }
        ByteOp::Fill { offset, len, hex } => {
            check_len(*len)?;
            let pattern = hex_arg("fill pattern", hex)?;
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.fill(r, *offset, *len, &pattern)
            })?;
            (a, op.describe(0))
        }
        ByteOp::Copy { from, to, len } => {
            check_len(*len)?;
            let a = m.bytes_op(shard, source, &[(*to, *len)], |b, r| {
                b.copy(r, *from, r, *to, *len)
            })?;
            (a, op.describe(0))
        }
        ByteOp::Swap { a, b, len } => {
            check_len(*len)?;
            let ap = m.bytes_op(shard, source, &[(*a, *len), (*b, *len)], |x, r| {
                x.swap(r, *a, r, *b, *len)
            })?;
            (ap, op.describe(0))
        }
        ByteOp::Xor { offset, len, hex } => {
            check_len(*len)?;
            let key = hex_arg("key", hex)?;
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.xor(r, *offset, *len, &key)
            })?;
            (a, op.describe(0))
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
            let bop = kind.op(*bits);
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.bit_op(r, *offset, *len, bop, &mask)
            })?;
            (a, op.describe(0))
        }
        ByteOp::RotateBits { offset, len, bits } => {
            check_len(*len)?;
            if !(-7..=7).contains(bits) {
                return Err(invalid(format!("bit rotation {bits} is not in -7..=7")));
            }
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.rotate_bits(r, *offset, *len, *bits)
            })?;
            (a, op.describe(0))
        }
        ByteOp::RotateBytes { offset, len, n } => {
            check_len(*len)?;
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.rotate_range(r, *offset, *len, *n)
            })?;
            (a, op.describe(0))
        }
        ByteOp::Reverse { offset, len } => {
            check_len(*len)?;
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.reverse(r, *offset, *len)
            })?;
            (a, op.describe(0))
        }
        ByteOp::ReverseElements { offset, len, width } => {
            check_len(*len)?;
            let a = m.bytes_op(shard, source, &[(*offset, *len)], |b, r| {
                b.reverse_elements(r, *offset, *len, *width as usize)
            })?;
            (a, op.describe(0))
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
                return Err(ByteOpError::NotFound(format!(
                    "no protection lies inside {offset:#x}+{len}"
                )));
            }
            return Ok(ByteOpOutcome {
                bytes_changed: 0,
                change: None,
                message: format!("removed {n} protection(s) inside {offset:#x}+{len}"),
            });
        }
    };
    let (applied, what) = applied;
    Ok(ByteOpOutcome {
        bytes_changed: applied.bytes_changed,
        change: applied.change,
        message: format!("{what}: {} changed", applied.bytes_changed),
    })
}

/// Compares `len` bytes at `offset` of file `shard` of the session with another range of it
/// or of another file.
pub fn compare(
    m: &Manager,
    shard: u32,
    offset: u64,
    len: u64,
    with: &CompareWith,
) -> Result<CompareOutcome, ByteOpError> {
    if len == 0 {
        return Err(invalid("length is 0"));
    }
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
                return Err(invalid("no file to compare with"));
            }
            m.bytes()
                .compare_file(region, offset, path, *other, len)
                .map_err(|source| ByteOpError::File {
                    path: path.clone(),
                    source,
                })?
        }
    };
    Ok(CompareOutcome {
        len: c.len,
        differing: c.differing,
        first_difference: c.first_difference,
    })
}

/// Parses a search query: hex with `??`/`3?` wildcards, or `text` matched byte for byte
/// (UTF-8).
pub fn parse_query(query: &str, text: bool) -> Result<Pattern, ByteOpError> {
    let p = if text {
        if query.is_empty() {
            return Err(invalid("empty search text"));
        }
        Pattern::literal(query.as_bytes())
    } else {
        Pattern::parse_hex(query)
    };
    Ok(p?)
}

/// Searches the whole of file `shard` of the session; returns the match offsets (ascending,
/// at most `limit`, which is in `1..=MAX_MATCHES`) and whether more exist. `progress` may
/// cancel.
pub fn search(
    m: &Manager,
    shard: u32,
    pattern: &Pattern,
    limit: u32,
    progress: ProgressFn<'_>,
) -> Result<(Vec<u64>, bool), ByteOpError> {
    if limit == 0 || limit > MAX_MATCHES {
        return Err(invalid(format!(
            "match limit {limit} is not in 1..={MAX_MATCHES}"
        )));
    }
    let region = m.shard_region(shard)?;
    let (found, more) =
        m.bytes()
            .search_upto(pattern, Scope::Region(region), limit as usize, progress)?;
    Ok((found.into_iter().map(|h| h.offset).collect(), more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_bounded() {
        assert!(check_len(1).is_ok() && check_len(MAX_OP_LEN).is_ok());
        let e = check_len(0).unwrap_err();
        assert!(matches!(e, ByteOpError::Invalid(_)) && e.to_string().contains("length is 0"));
        let e = check_len(MAX_OP_LEN + 1).unwrap_err().to_string();
        assert!(e.contains("256 MiB"), "{e}");
    }

    #[test]
    fn bit_kinds_map_to_the_engine_operations() {
        assert_eq!(BitKind::And.op(3), BitOp::And);
        assert_eq!(BitKind::Not.op(3), BitOp::Not);
        assert_eq!(BitKind::Shl.op(3), BitOp::Shl(3));
        assert_eq!(BitKind::Shr.op(5), BitOp::Shr(5));
    }

    #[test]
    fn descriptions_name_the_range() {
        let op = ByteOp::Xor {
            offset: 0x1f40,
            len: 16,
            hex: "ff".into(),
        };
        assert_eq!(op.describe(0), "xor 16 bytes at 0x1f40");
        let op = ByteOp::Write {
            offset: 16,
            hex: "de ad".into(),
        };
        assert_eq!(op.describe(2), "write 2 bytes at 0x10");
        let op = ByteOp::Copy {
            from: 0,
            to: 32,
            len: 4,
        };
        assert_eq!(op.describe(0), "copy 4 bytes 0x0 → 0x20");
    }

    #[test]
    fn bad_arguments_are_refused_before_the_session_is_touched() {
        // No model is attached: every refusal here comes from the argument checks.
        let m = Manager::default();
        let e = apply(
            &m,
            0,
            &ByteOp::Write {
                offset: 0,
                hex: "zz".into(),
            },
        )
        .unwrap_err();
        assert!(
            matches!(e, ByteOpError::Invalid(_)) && e.to_string().starts_with("bytes: "),
            "{e}"
        );
        let e = apply(
            &m,
            0,
            &ByteOp::Fill {
                offset: 0,
                len: 0,
                hex: "00".into(),
            },
        )
        .unwrap_err();
        assert!(matches!(e, ByteOpError::Invalid(_)), "{e}");
        let e = apply(
            &m,
            0,
            &ByteOp::RotateBits {
                offset: 0,
                len: 1,
                bits: 8,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("-7..=7"), "{e}");
        let e = compare(&m, 0, 0, 0, &CompareWith::Range { offset: 0 }).unwrap_err();
        assert!(matches!(e, ByteOpError::Invalid(_)), "{e}");
        let e = search(&m, 0, &parse_query("aa", false).unwrap(), 0, &mut |_| true).unwrap_err();
        assert!(e.to_string().contains("match limit 0"), "{e}");
        assert!(matches!(
            parse_query("", true),
            Err(ByteOpError::Invalid(_))
        ));
        assert!(matches!(
            parse_query("zz", false),
            Err(ByteOpError::Engine(_))
        ));
        assert_eq!(parse_query("ab", true).unwrap().len(), 2);
        let e = apply(&m, 0, &ByteOp::Reverse { offset: 0, len: 4 }).unwrap_err();
        assert!(
            matches!(e, ByteOpError::Manager(ManagerError::NotAttached)),
            "{e}"
        );
    }
}
