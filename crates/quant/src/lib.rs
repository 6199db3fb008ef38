//! ggml tensor types and their codecs.
//!
//! # Overview
//! Every type id that the GGUF spec / gguf-py knows is listed in [`GgmlType`], with its block
//! size and bytes per block, even where no codec exists. [`dequantize`] turns whole blocks of
//! a type into `f32`; [`quantize`] does the reverse. Both are bit-exact with llama.cpp:
//! gguf-py for the types it implements, ggml's `quantize_row_*_ref` for the K-quants (and
//! Q8_1). [`GgmlType::can_dequantize`] / [`GgmlType::can_quantize`] say which exist.
//!
//! For editing single weights there is a per-block API: [`block_of`] finds the block holding
//! an element, [`dequantize_block`] / [`quantize_block`] convert that one block, and
//! [`dequantize_range`] reads any run of elements (partial blocks at either end included).
//!
//! The codecs are single-threaded scalar loops the compiler vectorizes (AVX2 when the CPU has
//! it); callers parallelize over rows if they want to. Nothing here allocates.
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

mod error;
mod types;

mod float;
mod iquants;
mod kquants;
mod legacy;
mod simd;

pub use error::CodecError;
pub use types::GgmlType;

/// Dequantizes `src` (a whole number of blocks of `ty`) into `dst`.
///
/// `dst.len()` must be `src.len() / ty.type_size() * ty.block_size()`.
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
    check_lengths(ty, src.len(), dst.len())?;
    if !ty.can_dequantize() {
        return Err(CodecError::no_dequantize(ty));
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
        Err(CodecError::no_dequantize(ty))
    }
}

/// Quantizes `src` into `dst` (a whole number of blocks of `ty`), as ggml's reference
/// quantizer does (no importance matrix).
pub fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
    check_lengths(ty, dst.len(), src.len())?;
    if !ty.can_quantize() {
        return Err(CodecError::no_quantize(ty));
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
        Err(CodecError::no_quantize(ty))
    }
}

/// The length check opening every codec: `bytes` encoded bytes and `values` f32 values must be
/// the same whole number of blocks of `ty`.
pub(crate) fn check_lengths(ty: GgmlType, bytes: usize, values: usize) -> Result<(), CodecError> {
    let ts = ty.type_size();
    let bs = ty.block_size();
    if !bytes.is_multiple_of(ts) || !values.is_multiple_of(bs) || bytes / ts != values / bs {
        return Err(CodecError::Length { ty, bytes, values });
    }
    Ok(())
}

/// Where element `index` of a tensor of type `ty` lives: `(block index, byte range of that
/// block in the tensor data, position of the element inside the block)`.
///
/// ```
/// use hotpatch_quant::{block_of, GgmlType};
/// // Element 70 of a Q4_0 tensor is element 6 of block 2, bytes 36..54.
/// assert_eq!(block_of(GgmlType::Q4_0, 70), Some((2, 36..54, 6)));
/// ```
pub fn block_of(ty: GgmlType, index: u64) -> Option<(u64, std::ops::Range<usize>, usize)> {
    let bs = ty.block_size() as u64;
    let block = index / bs;
    let start = usize::try_from(block.checked_mul(ty.type_size() as u64)?).ok()?;
    let end = start.checked_add(ty.type_size())?;
    Some((block, start..end, (index % bs) as usize))
}

/// Dequantizes ONE block: `block` is exactly `ty.type_size()` bytes, `out` exactly
/// `ty.block_size()` values. The same codec as [`dequantize`], so the values are bit-identical
/// with dequantizing the whole tensor.
///
/// ```
/// use hotpatch_quant::{block_of, dequantize_block, quantize_block, GgmlType};
/// let ty = GgmlType::Q8_0;
/// let mut data = vec![0u8; 3 * ty.type_size()]; // a tensor of 96 zeros
/// // Set element 40 to 1.5: decode its block, change the value, encode the block again.
/// let (_, bytes, at) = block_of(ty, 40).unwrap();
/// let mut vals = vec![0f32; ty.block_size()];
/// dequantize_block(ty, &data[bytes.clone()], &mut vals).unwrap();
/// vals[at] = 1.5;
/// quantize_block(ty, &vals, &mut data[bytes]).unwrap();
/// assert!(data[..34].iter().all(|&b| b == 0), "other blocks untouched");
/// ```
pub fn dequantize_block(ty: GgmlType, block: &[u8], out: &mut [f32]) -> Result<(), CodecError> {
    if block.len() != ty.type_size() || out.len() != ty.block_size() {
        return Err(CodecError::Length {
            ty,
            bytes: block.len(),
            values: out.len(),
        });
    }
    dequantize(ty, block, out)
}

/// Quantizes ONE block: `values` is exactly `ty.block_size()` values, `out` exactly
/// `ty.type_size()` bytes. The same codec as [`quantize`].
pub fn quantize_block(ty: GgmlType, values: &[f32], out: &mut [u8]) -> Result<(), CodecError> {
    if out.len() != ty.type_size() || values.len() != ty.block_size() {
        return Err(CodecError::Length {
            ty,
            bytes: out.len(),
            values: values.len(),
        });
    }
    quantize(ty, values, out)
}

/// Dequantizes `out.len()` elements starting at element `start` of the tensor data `src`
/// (whole blocks of `ty`); the range may begin and end inside blocks.
///
/// ```
/// use hotpatch_quant::{dequantize_range, quantize, GgmlType};
/// let vals: Vec<f32> = (0..64).map(|i| i as f32).collect();
/// let mut q = vec![0u8; 64 * 2];
/// quantize(GgmlType::F16, &vals, &mut q).unwrap();
/// let mut out = [0f32; 3];
/// dequantize_range(GgmlType::F16, &q, 30, &mut out).unwrap();
/// assert_eq!(out, [30.0, 31.0, 32.0]);
/// ```
pub fn dequantize_range(
    ty: GgmlType,
    src: &[u8],
    start: u64,
    out: &mut [f32],
) -> Result<(), CodecError> {
    let (ts, bs) = (ty.type_size(), ty.block_size());
    let total = (src.len() / ts) as u64 * bs as u64;
    let end = start.checked_add(out.len() as u64);
    if !src.len().is_multiple_of(ts) || end.is_none_or(|e| e > total) {
        return Err(CodecError::Range {
            ty,
            start,
            count: out.len(),
            available: total,
        });
    }
    if out.is_empty() {
        return Ok(());
    }
    let first = (start / bs as u64) as usize;
    let skip = (start % bs as u64) as usize;
    let mut scratch = [0f32; 256];
    let mut done = 0;
    // A leading partial block.
    if skip != 0 {
        let blk = &mut scratch[..bs];
        dequantize(ty, &src[first * ts..(first + 1) * ts], blk)?;
        let n = (bs - skip).min(out.len());
        out[..n].copy_from_slice(&blk[skip..skip + n]);
        done = n;
    }
    let mut block = first + usize::from(skip != 0);
    // Whole blocks, straight into `out`.
    let whole = (out.len() - done) / bs;
    if whole > 0 {
        dequantize(
            ty,
            &src[block * ts..(block + whole) * ts],
            &mut out[done..done + whole * bs],
        )?;
        done += whole * bs;
        block += whole;
    }
    // A trailing partial block.
    if done < out.len() {
        let blk = &mut scratch[..bs];
        dequantize(ty, &src[block * ts..(block + 1) * ts], blk)?;
        let n = out.len() - done;
        out[done..].copy_from_slice(&blk[..n]);
    }
    Ok(())
}
