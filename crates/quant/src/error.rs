//! The codec error type.
use crate::GgmlType;

/// What a codec refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// No codec for this direction of this type.
    #[error("{op} is not supported for tensor type {ty}")]
    Unsupported {
        /// The tensor type.
        ty: GgmlType,
        /// `"quantize"` or `"dequantize"`.
        op: &'static str,
    },
    /// Buffers are not a whole number of blocks or do not match each other.
    #[error("{ty}: {bytes} bytes and {values} values are not the same whole number of blocks (block size {bs}, {ts} bytes per block)", bs = ty.block_size(), ts = ty.type_size())]
    Length {
        /// The tensor type.
        ty: GgmlType,
        /// Length of the encoded buffer.
        bytes: usize,
        /// Length of the `f32` buffer.
        values: usize,
    },
    /// An element range outside the tensor data (or data that is not whole blocks).
    #[error(
        "{ty}: elements {start}..{start}+{count} are outside the {available} elements of the data"
    )]
    Range {
        /// The tensor type.
        ty: GgmlType,
        /// First element asked for.
        start: u64,
        /// Number of elements asked for.
        count: usize,
        /// Elements in the data (whole blocks).
        available: u64,
    },
}

impl CodecError {
    /// [`CodecError::Unsupported`] for dequantizing `ty`.
    pub(crate) fn no_dequantize(ty: GgmlType) -> Self {
        CodecError::Unsupported {
            ty,
            op: "dequantize",
        }
    }

    /// [`CodecError::Unsupported`] for quantizing `ty`.
    pub(crate) fn no_quantize(ty: GgmlType) -> Self {
        CodecError::Unsupported { ty, op: "quantize" }
    }
}
