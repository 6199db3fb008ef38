use crate::GgmlType;

/// What a codec refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// No codec for this direction of this type.
    #[error("{op} is not supported for tensor type {ty}")]
    Unsupported { ty: GgmlType, op: &'static str },
    /// Buffers are not a whole number of blocks or do not match each other.
    #[error("{ty}: {bytes} bytes and {values} values are not the same whole number of blocks (block size {bs}, {ts} bytes per block)", bs = ty.block_size(), ts = ty.type_size())]
    Length {
        ty: GgmlType,
        bytes: usize,
        values: usize,
    },
}
