//! ggml tensor types and their codecs.
//!
//! Every type id that the GGUF spec / gguf-py knows is listed in [`GgmlType`], with its block
//! size and bytes per block, even where no codec exists. [`dequantize`] turns whole blocks of
//! a type into `f32`; [`quantize`] does the reverse. Both are bit-exact with llama.cpp:
//! gguf-py for the types it implements, ggml's `quantize_row_*_ref` for the K-quants.
//!
//! ```
//! use hotpatch_quant::{dequantize, quantize, GgmlType};
//! let src: Vec<f32> = (0..32).map(|i| i as f32 / 8.0).collect();
//! let mut q = vec![0u8; GgmlType::Q8_0.row_bytes(32).unwrap()];
//! quantize(GgmlType::Q8_0, &src, &mut q).unwrap();
//! let mut back = vec![0f32; 32];
//! dequantize(GgmlType::Q8_0, &q, &mut back).unwrap();
//! assert!((back[31] - src[31]).abs() < 0.02);
//! ```

pub mod block;
mod error;
mod types;

mod float;
mod iquants;
mod kquants;
mod legacy;

pub use error::CodecError;
pub use types::GgmlType;

/// Dequantizes `src` (a whole number of blocks of `ty`) into `dst`.
///
/// `dst.len()` must be `src.len() / ty.type_size() * ty.block_size()`.
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
    check_lengths(ty, src.len(), dst.len())?;
    if !ty.can_dequantize() {
        return Err(CodecError::Unsupported {
            ty,
            op: "dequantize",
        });
    }
    if float::handles(ty) {
        float::dequantize(ty, src, dst)
    } else if legacy::handles(ty) {
        legacy::dequantize(ty, src, dst)
    } else if kquants::handles(ty) {
        kquants::dequantize(ty, src, dst)
    } else if iquants::handles(ty) {
        iquants::dequantize(ty, src, dst)
    } else {
        Err(CodecError::Unsupported {
            ty,
            op: "dequantize",
        })
    }
}

/// Quantizes `src` into `dst` (a whole number of blocks of `ty`), as ggml's reference
/// quantizer does (no importance matrix).
pub fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
    check_lengths(ty, dst.len(), src.len())?;
    if !ty.can_quantize() {
        return Err(CodecError::Unsupported { ty, op: "quantize" });
    }
    if float::handles(ty) {
        float::quantize(ty, src, dst)
    } else if legacy::handles(ty) {
        legacy::quantize(ty, src, dst)
    } else if kquants::handles(ty) {
        kquants::quantize(ty, src, dst)
    } else if iquants::handles(ty) {
        iquants::quantize(ty, src, dst)
    } else {
        Err(CodecError::Unsupported { ty, op: "quantize" })
    }
}

fn check_lengths(ty: GgmlType, bytes: usize, values: usize) -> Result<(), CodecError> {
    let ts = ty.type_size();
    let bs = ty.block_size();
    if !bytes.is_multiple_of(ts) || !values.is_multiple_of(bs) || bytes / ts != values / bs {
        return Err(CodecError::Length { ty, bytes, values });
    }
    Ok(())
}
