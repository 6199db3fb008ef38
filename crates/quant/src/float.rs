//! Plain element types: F32, F16, BF16, F64 and the integers I8, I16, I32, I64.
//!
//! # Overview
//! These have one element per "block". Dequantizing is a conversion to `f32`; quantizing
//! exists for F32, F16 and BF16 (the types gguf-py writes). The conversions are bit-exact with
//! gguf-py/numpy, including for NaN payloads:
//! - f16 → f32 keeps the payload (a signalling half NaN stays signalling), as numpy does;
//! - f32 → f16 rounds to nearest even; a NaN keeps the top 10 payload bits, and becomes
//!   `0x7c01` if they are all zero (numpy's `npy_floatbits_to_halfbits`) — ggml's converter
//!   instead writes `0x7e00` for every NaN;
//! - f32 → bf16 rounds to nearest even and makes NaNs quiet (gguf-py's `BF16.quantize_blocks`,
//!   same as ggml's `ggml_compute_fp32_to_bf16`);
//! - integers and F64 → f32 round to nearest even (numpy's `astype(np.float32)`).
//!
//! The helpers [`f16_to_f32`] and [`f32_to_f16`] are branch-free so that bulk conversions
//! vectorize; the block codecs use them for their scales.
use crate::simd::run;
use crate::{CodecError, GgmlType};

pub(crate) fn handles(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(ty, F32 | F16 | BF16 | F64 | I8 | I16 | I32 | I64)
}

/// IEEE half (bits) to f32, exact; NaN payloads kept.
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    // Normal numbers: move exponent and mantissa into place and rebias (127 - 15).
    let normal = (em << 13) + (112 << 23);
    // Infinity / NaN: all-ones exponent, payload kept.
    let special = (em << 13) | 0x7f80_0000;
    // Zero and subnormals: em · 2^-24, exact in f32.
    let sub = (em as f32 * f32::from_bits(0x3380_0000)).to_bits();
    let bits = if em >= 0x7c00 {
        special
    } else if em < 0x0400 {
        sub
    } else {
        normal
    };
    f32::from_bits(bits | sign)
}

/// f32 to IEEE half (bits), rounding to nearest even, with numpy's NaN mapping.
#[inline(always)]
pub(crate) fn f32_to_f16(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let a = x & 0x7fff_ffff;
    let h = if a > 0x7f80_0000 {
        // NaN: keep the top payload bits; never turn into infinity.
        let m = ((a & 0x007f_ffff) >> 13) as u16;
        0x7c00 | if m == 0 { 1 } else { m }
    } else if a >= 0x4780_0000 {
        // ≥ 65536 (or infinity): infinity.
        0x7c00
    } else if a >= 0x3880_0000 {
        // Normal half: rebias, then round the 13 dropped bits to nearest even. A carry out of
        // the mantissa correctly bumps the exponent (up to infinity for ≥ 65520).
        let base = (a - (112 << 23)) >> 13;
        let rest = a & 0x1fff;
        let up = u32::from(rest > 0x1000 || (rest == 0x1000 && (base & 1) == 1));
        (base + up) as u16
    } else {
        // Subnormal half (or zero): adding 0.5 makes the FPU round |f| to a multiple of 2^-24
        // (round to nearest even); the low mantissa bits are then the half's bits.
        let t = f32::from_bits(a) + 0.5;
        (t.to_bits() - 0x3f00_0000) as u16
    };
    sign | h
}

/// bf16 (bits) to f32.
#[inline(always)]
fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// f32 to bf16 (bits): NaN made quiet, otherwise round to nearest even.
#[inline(always)]
fn f32_to_bf16(f: f32) -> u16 {
    let n = f.to_bits();
    let n = if n & 0x7fff_ffff > 0x7f80_0000 {
        (n & 0xffff_0000) | 0x0040_0000
    } else {
        n
    };
    ((u64::from(n) + 0x7fff + u64::from((n >> 16) & 1)) >> 16) as u16
}

/// Converts each `N`-byte little-endian element of `src` with `f` into `dst`.
#[inline(always)]
fn convert<const N: usize>(src: &[u8], dst: &mut [f32], f: impl Fn([u8; N]) -> f32) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(N)) {
        // The chunk is exactly N bytes; the conversion cannot fail.
        *d = f(s.try_into().unwrap_or([0; N]));
    }
}

/// Encodes each value of `src` with `f` into `N` little-endian bytes of `dst`.
#[inline(always)]
fn encode<const N: usize>(src: &[f32], dst: &mut [u8], f: impl Fn(f32) -> [u8; N]) {
    for (d, &s) in dst.chunks_exact_mut(N).zip(src) {
        d.copy_from_slice(&f(s));
    }
}

pub(crate) fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
    match ty {
        GgmlType::F32 => run!(convert::<4>(src, dst, f32::from_le_bytes)),
        GgmlType::F16 => run!(convert::<2>(src, dst, |b| f16_to_f32(u16::from_le_bytes(
            b
        )))),
        GgmlType::BF16 => run!(convert::<2>(src, dst, |b| bf16_to_f32(u16::from_le_bytes(
            b
        )))),
        GgmlType::F64 => run!(convert::<8>(src, dst, |b| f64::from_le_bytes(b) as f32)),
        GgmlType::I8 => run!(convert::<1>(src, dst, |b| f32::from(b[0] as i8))),
        GgmlType::I16 => run!(convert::<2>(src, dst, |b| f32::from(i16::from_le_bytes(b)))),
        GgmlType::I32 => run!(convert::<4>(src, dst, |b| i32::from_le_bytes(b) as f32)),
        GgmlType::I64 => run!(convert::<8>(src, dst, |b| i64::from_le_bytes(b) as f32)),
        _ => return Err(CodecError::no_dequantize(ty)),
    }
    Ok(())
}

pub(crate) fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
    match ty {
        GgmlType::F32 => run!(encode::<4>(src, dst, f32::to_le_bytes)),
        GgmlType::F16 => run!(encode::<2>(src, dst, |v| f32_to_f16(v).to_le_bytes())),
        GgmlType::BF16 => run!(encode::<2>(src, dst, |v| f32_to_bf16(v).to_le_bytes())),
        _ => return Err(CodecError::no_quantize(ty)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trips_every_half() {
        for h in 0..=u16::MAX {
            assert_eq!(
                f32_to_f16(f16_to_f32(h)),
                h,
                "half {h:#06x} is exactly representable in f32"
            );
        }
    }

    #[test]
    fn f16_rounding_ties_go_to_even() {
        // 1 + 2^-11 is halfway between 1.0 (0x3c00) and 1 + 2^-10 (0x3c01): even wins.
        assert_eq!(f32_to_f16(1.0 + f32::powi(2.0, -11)), 0x3c00);
        // 1 + 3·2^-11 is halfway between 0x3c01 and 0x3c02: even wins.
        assert_eq!(f32_to_f16(1.0 + 3.0 * f32::powi(2.0, -11)), 0x3c02);
        assert_eq!(
            f32_to_f16(65519.0),
            0x7bff,
            "just below the tie stays at f16 max"
        );
        assert_eq!(
            f32_to_f16(65520.0),
            0x7c00,
            "the tie above f16 max rounds to infinity"
        );
        assert_eq!(
            f32_to_f16(f32::powi(2.0, -25)),
            0,
            "half the smallest subnormal ties to 0"
        );
        assert_eq!(f32_to_f16(f32::powi(2.0, -25) * 1.0001), 1);
    }

    #[test]
    fn bf16_nan_is_quiet_and_rounding_is_even() {
        assert_eq!(
            f32_to_bf16(f32::from_bits(0x7f80_0001)),
            0x7fc0,
            "signalling NaN made quiet"
        );
        assert_eq!(
            f32_to_bf16(f32::from_bits(0xffc1_2345)),
            0xffc1,
            "payload top bits kept"
        );
        assert_eq!(
            f32_to_bf16(f32::from_bits(0x3f80_8000)),
            0x3f80,
            "tie to even (down)"
        );
        assert_eq!(
            f32_to_bf16(f32::from_bits(0x3f81_8000)),
            0x3f82,
            "tie to even (up)"
        );
        assert_eq!(f32_to_bf16(f32::MAX), 0x7f80, "max f32 rounds to infinity");
    }
}
