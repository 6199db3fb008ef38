//! Codecs: legacy (filled in by its owner).
use crate::{CodecError, GgmlType};

pub(crate) fn handles(_ty: GgmlType) -> bool {
    false
}

pub(crate) fn dequantize(ty: GgmlType, _src: &[u8], _dst: &mut [f32]) -> Result<(), CodecError> {
    Err(CodecError::Unsupported {
        ty,
        op: "dequantize",
    })
}

pub(crate) fn quantize(ty: GgmlType, _src: &[f32], _dst: &mut [u8]) -> Result<(), CodecError> {
    Err(CodecError::Unsupported { ty, op: "quantize" })
}
