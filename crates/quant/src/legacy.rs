//! Block codecs other than K-quants and IQ types: the legacy Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and
//! Q8_1, the ternary TQ1_0 and TQ2_0, and the 4-bit floats MXFP4 and NVFP4.
//!
//! # Overview
//! Dequantizers compute exactly what gguf-py and ggml compute (`d * q` or `d * q + m` in
//! `f32`, with the half-float scale widened exactly), so their output is bit-identical.
//!
//! Quantizers mirror gguf-py's `quantize_blocks` (which in turn mirror ggml's
//! `quantize_row_*_ref`) operation for operation in `f32`, including their quirks:
//! - the inverse scale `1/d` is computed from the full-precision `d`, while the stored `d` is
//!   rounded to f16;
//! - values are truncated towards zero after adding `8.5`/`16.5`/`0.5` (Q4/Q5) or rounded
//!   half away from zero (Q8_0, TQ);
//! - float-to-integer conversions behave like x86's `cvttss2si` followed by keeping the low
//!   byte, as numpy's casts do, so NaN/infinite inputs give the same bytes as gguf-py;
//! - NaN propagates through the block maximum like numpy's `max`/`argmax` (ggml's C loops
//!   skip NaN instead, so gguf-py and ggml differ on NaN blocks; we follow gguf-py).
//!
//! gguf-py and ggml also differ on one finite case: a Q4_0/Q5_0 block whose largest magnitude
//! is a `-0.0` (an all-negative-zero block) gets `d = +0.0` from gguf-py and `-0.0` from ggml;
//! we follow gguf-py.
//!
//! Q8_1 has no gguf-py codec and no ggml `to_float`; it is quantized as ggml's
//! `quantize_row_q8_1_ref` (block `d: f16, s: f16 = d·Σq, qs: [i8; 32]`, C semantics for the
//! maximum) and dequantized as `d * q`.
use crate::float::{f16_to_f32, f32_to_f16};
use crate::simd::run;
use crate::{CodecError, GgmlType};

pub(crate) fn handles(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | TQ1_0 | TQ2_0 | MXFP4 | NVFP4
    )
}

/// Whether [`quantize`] implements `ty`.
pub(crate) fn can_quantize(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | TQ1_0 | TQ2_0 | MXFP4
    )
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// `N` bytes of a block starting at `at` (constant offsets: the check compiles away).
#[inline(always)]
fn field<const N: usize>(b: &[u8], at: usize) -> &[u8; N] {
    match b[at..at + N].try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("a range of length N converts to [u8; N]"),
    }
}

#[inline(always)]
fn field_mut<const N: usize>(b: &mut [u8], at: usize) -> &mut [u8; N] {
    match (&mut b[at..at + N]).try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("a range of length N converts to [u8; N]"),
    }
}

#[inline(always)]
fn half(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes(*field::<2>(b, at)))
}

#[inline(always)]
fn put_half(b: &mut [u8], at: usize, v: f32) {
    *field_mut::<2>(b, at) = f32_to_f16(v).to_le_bytes();
}

/// Float to integer as x86 `cvttss2si` (what numpy's casts and C casts compile to): truncate,
/// and `i32::MIN` for NaN and anything out of range. Keeping the low byte of the result gives
/// numpy's `astype(np.uint8)` / `astype(np.int8)`.
#[inline(always)]
pub(crate) fn cvtt(f: f32) -> i32 {
    if f.abs() < 2_147_483_648.0 {
        // SAFETY: |f| < 2^31, so f is finite and its truncation fits in an i32.
        unsafe { f.to_int_unchecked::<i32>() }
    } else {
        i32::MIN
    }
}

/// The NaN numpy's `max`/`min` reductions return whenever an element is NaN, whatever its
/// sign and payload.
const NUMPY_NAN: f32 = f32::from_bits(0x7fc0_0000);

/// numpy's `abs(x).max()`: the largest magnitude, [`NUMPY_NAN`] if any element is NaN.
#[inline(always)]
fn abs_max(x: &[f32]) -> f32 {
    let mut m = 0.0f32;
    let mut nan = false;
    for &v in x {
        let a = v.abs();
        nan |= a.is_nan();
        m = if a > m { a } else { m };
    }
    if nan {
        NUMPY_NAN
    } else {
        m
    }
}

/// numpy's `take_along_axis(x, abs(x).argmax())`: the element of largest magnitude (the first
/// on ties, the first NaN if any).
#[inline(always)]
fn signed_abs_max(x: &[f32]) -> f32 {
    let mut best = x[0];
    let mut m = best.abs();
    for &v in x {
        let a = v.abs();
        if a.is_nan() {
            return v;
        }
        if a > m {
            m = a;
            best = v;
        }
    }
    best
}

/// numpy's `x.max()` and `x.min()`: [`NUMPY_NAN`] if any element is NaN.
#[inline(always)]
fn max_min(x: &[f32]) -> (f32, f32) {
    let (mut hi, mut lo) = (x[0], x[0]);
    let mut nan = false;
    for &v in x {
        nan |= v.is_nan();
        hi = if v > hi { v } else { hi };
        lo = if v < lo { v } else { lo };
    }
    if nan {
        (NUMPY_NAN, NUMPY_NAN)
    } else {
        (hi, lo)
    }
}

/// gguf-py's `np.where(d == 0, 0, 1 / d)` (also ggml's `d ? 1.0f/d : 0.0f`).
#[inline(always)]
fn inverse(d: f32) -> f32 {
    if d == 0.0 {
        0.0
    } else {
        1.0 / d
    }
}

/// Runs `f` on each (`TS`-byte block, `BS` values) pair.
#[inline(always)]
fn blocks_de<const TS: usize, const BS: usize>(
    src: &[u8],
    dst: &mut [f32],
    f: impl Fn(&[u8; TS], &mut [f32; BS]),
) {
    let (b, _) = src.as_chunks::<TS>();
    let (y, _) = dst.as_chunks_mut::<BS>();
    for (b, y) in b.iter().zip(y) {
        f(b, y);
    }
}

/// Runs `f` on each (`BS` values, `TS`-byte block) pair.
#[inline(always)]
fn blocks_q<const TS: usize, const BS: usize>(
    src: &[f32],
    dst: &mut [u8],
    f: impl Fn(&[f32; BS], &mut [u8; TS]),
) {
    let (x, _) = src.as_chunks::<BS>();
    let (b, _) = dst.as_chunks_mut::<TS>();
    for (x, b) in x.iter().zip(b) {
        f(x, b);
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------------

pub(crate) fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
    match ty {
        GgmlType::Q4_0 => run!(blocks_de(src, dst, deq_q4_0)),
        GgmlType::Q4_1 => run!(blocks_de(src, dst, deq_q4_1)),
        GgmlType::Q5_0 => run!(blocks_de(src, dst, deq_q5_0)),
        GgmlType::Q5_1 => run!(blocks_de(src, dst, deq_q5_1)),
        GgmlType::Q8_0 => run!(blocks_de(src, dst, deq_q8_0)),
        GgmlType::Q8_1 => run!(blocks_de(src, dst, deq_q8_1)),
        GgmlType::TQ1_0 => run!(blocks_de(src, dst, deq_tq1_0)),
        GgmlType::TQ2_0 => run!(blocks_de(src, dst, deq_tq2_0)),
        GgmlType::MXFP4 => run!(blocks_de(src, dst, deq_mxfp4)),
        GgmlType::NVFP4 => run!(blocks_de(src, dst, deq_nvfp4)),
        _ => return Err(CodecError::no_dequantize(ty)),
    }
    Ok(())
}

pub(crate) fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
    match ty {
        GgmlType::Q4_0 => run!(blocks_q(src, dst, q_q4_0)),
        GgmlType::Q4_1 => run!(blocks_q(src, dst, q_q4_1)),
        GgmlType::Q5_0 => run!(blocks_q(src, dst, q_q5_0)),
        GgmlType::Q5_1 => run!(blocks_q(src, dst, q_q5_1)),
        GgmlType::Q8_0 => run!(blocks_q(src, dst, q_q8_0)),
        GgmlType::Q8_1 => run!(blocks_q(src, dst, q_q8_1)),
        GgmlType::TQ1_0 => run!(blocks_q(src, dst, q_tq1_0)),
        GgmlType::TQ2_0 => run!(blocks_q(src, dst, q_tq2_0)),
        GgmlType::MXFP4 => run!(blocks_q(src, dst, q_mxfp4)),
        _ => return Err(CodecError::no_quantize(ty)),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Q4_0 (18 bytes: d f16, qs[16]) and Q4_1 (20 bytes: d f16, m f16, qs[16])
// Element j < 16 is the low nibble of qs[j], element j + 16 its high nibble.
// ---------------------------------------------------------------------------------------------

#[inline(always)]
fn deq_q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = half(b, 0);
    let qs = field::<16>(b, 2);
    let (lo, hi) = y.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(qs) {
        *l = d * f32::from((q & 0x0f) as i8 - 8);
        *h = d * f32::from((q >> 4) as i8 - 8);
    }
}

#[inline(always)]
fn deq_q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let d = half(b, 0);
    let m = half(b, 2);
    let qs = field::<16>(b, 4);
    let (lo, hi) = y.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(qs) {
        *l = d * f32::from(q & 0x0f) + m;
        *h = d * f32::from(q >> 4) + m;
    }
}

#[inline(always)]
fn q_q4_0(x: &[f32; 32], b: &mut [u8; 18]) {
    let d = signed_abs_max(x) / -8.0;
    let id = inverse(d);
    put_half(b, 0, d);
    let q = |v: f32| (cvtt(v * id + 8.5) as u8).min(15);
    let qs = field_mut::<16>(b, 2);
    for (j, o) in qs.iter_mut().enumerate() {
        *o = q(x[j]) | (q(x[j + 16]) << 4);
    }
}

#[inline(always)]
fn q_q4_1(x: &[f32; 32], b: &mut [u8; 20]) {
    let (max, min) = max_min(x);
    let d = (max - min) / 15.0;
    let id = inverse(d);
    put_half(b, 0, d);
    put_half(b, 2, min);
    let q = |v: f32| (cvtt((v - min) * id + 0.5) as u8).min(15);
    let qs = field_mut::<16>(b, 4);
    for (j, o) in qs.iter_mut().enumerate() {
        *o = q(x[j]) | (q(x[j + 16]) << 4);
    }
}

// ---------------------------------------------------------------------------------------------
// Q5_0 (22 bytes: d f16, qh u32, qs[16]) and Q5_1 (24 bytes: d, m, qh, qs)
// Bit j of qh is the fifth bit of element j.
// ---------------------------------------------------------------------------------------------

#[inline(always)]
fn deq_q5<const OFF: usize>(b: &[u8], y: &mut [f32; 32], f: impl Fn(u8) -> f32) {
    let qh = u32::from_le_bytes(*field::<4>(b, OFF));
    let qs = field::<16>(b, OFF + 4);
    let (lo, hi) = y.split_at_mut(16);
    for (j, ((l, h), &q)) in lo.iter_mut().zip(hi.iter_mut()).zip(qs).enumerate() {
        let h0 = (((qh >> j) & 1) << 4) as u8;
        let h1 = (((qh >> (j + 16)) & 1) << 4) as u8;
        *l = f((q & 0x0f) | h0);
        *h = f((q >> 4) | h1);
    }
}

#[inline(always)]
fn deq_q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = half(b, 0);
    deq_q5::<2>(b, y, |q| d * f32::from(q as i8 - 16));
}

#[inline(always)]
fn deq_q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let d = half(b, 0);
    let m = half(b, 2);
    deq_q5::<4>(b, y, |q| d * f32::from(q) + m);
}

/// Packs 32 five-bit values (`q[j] <= 31`) as qh (4 bytes) + qs (16 bytes) at `off`.
#[inline(always)]
fn pack_q5(q: &[u8; 32], b: &mut [u8], off: usize) {
    let mut qh = 0u32;
    for (j, &v) in q.iter().enumerate() {
        qh |= u32::from((v >> 4) & 1) << j;
    }
    *field_mut::<4>(b, off) = qh.to_le_bytes();
    let qs = field_mut::<16>(b, off + 4);
    for (j, o) in qs.iter_mut().enumerate() {
        *o = (q[j] & 0x0f) | (q[j + 16] << 4);
    }
}

#[inline(always)]
fn q_q5_0(x: &[f32; 32], b: &mut [u8; 22]) {
    let d = signed_abs_max(x) / -16.0;
    let id = inverse(d);
    put_half(b, 0, d);
    let q = x.map(|v| (cvtt(v * id + 16.5) as u8).min(31));
    pack_q5(&q, b, 2);
}

#[inline(always)]
fn q_q5_1(x: &[f32; 32], b: &mut [u8; 24]) {
    let (max, min) = max_min(x);
    let d = (max - min) / 31.0;
    let id = inverse(d);
    put_half(b, 0, d);
    put_half(b, 2, min);
    let q = x.map(|v| (cvtt((v - min) * id + 0.5) as u8).min(31));
    pack_q5(&q, b, 4);
}

// ---------------------------------------------------------------------------------------------
// Q8_0 (34 bytes: d f16, qs[32] i8) and Q8_1 (36 bytes: d f16, s f16, qs[32] i8)
// ---------------------------------------------------------------------------------------------

#[inline(always)]
fn deq_q8<const OFF: usize>(d: f32, b: &[u8], y: &mut [f32; 32]) {
    let qs = field::<32>(b, OFF);
    for (o, &q) in y.iter_mut().zip(qs) {
        *o = d * f32::from(q as i8);
    }
}

#[inline(always)]
fn deq_q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    deq_q8::<2>(half(b, 0), b, y);
}

#[inline(always)]
fn deq_q8_1(b: &[u8; 36], y: &mut [f32; 32]) {
    deq_q8::<4>(half(b, 0), b, y);
}

#[inline(always)]
fn q_q8_0(x: &[f32; 32], b: &mut [u8; 34]) {
    let d = abs_max(x) / 127.0;
    let id = inverse(d);
    put_half(b, 0, d);
    let qs = field_mut::<32>(b, 2);
    for (o, &v) in qs.iter_mut().zip(x) {
        *o = cvtt((v * id).round()) as u8;
    }
}

#[inline(always)]
fn q_q8_1(x: &[f32; 32], b: &mut [u8; 36]) {
    // ggml: amax = MAX(amax, fabsf(v)) with MAX(a, b) = a > b ? a : b.
    let mut amax = 0.0f32;
    for &v in x {
        let a = v.abs();
        amax = if amax > a { amax } else { a };
    }
    let d = amax / 127.0;
    let id = inverse(d);
    put_half(b, 0, d);
    let mut sum = 0i32;
    let qs = field_mut::<32>(b, 4);
    for (o, &v) in qs.iter_mut().zip(x) {
        let q = cvtt((v * id).round()) as i8;
        *o = q as u8;
        sum += i32::from(q);
    }
    put_half(b, 2, sum as f32 * d);
}

// ---------------------------------------------------------------------------------------------
// TQ2_0 (66 bytes: qs[64], d f16): 2-bit codes 0..=2 meaning -1, 0, 1.
// Element 128·c + 32·l + m is bits 2l..2l+2 of qs[32·c + m].
// ---------------------------------------------------------------------------------------------

#[inline(always)]
fn deq_tq2_0(b: &[u8; 66], y: &mut [f32; 256]) {
    let d = half(b, 64);
    for (c, yc) in y.chunks_exact_mut(128).enumerate() {
        let qs = field::<32>(b, 32 * c);
        for (l, yl) in yc.chunks_exact_mut(32).enumerate() {
            for (o, &q) in yl.iter_mut().zip(qs) {
                *o = d * f32::from(((q >> (2 * l)) & 3) as i8 - 1);
            }
        }
    }
}

/// The ternary code (0, 1, 2 for -1, 0, 1) of `v·id`, as gguf-py computes it:
/// `int8(round(v·id)) + 1`, wrapping like numpy's uint8.
#[inline(always)]
fn trit(v: f32, id: f32) -> u8 {
    (cvtt((v * id).round()) as u8).wrapping_add(1)
}

#[inline(always)]
fn q_tq2_0(x: &[f32; 256], b: &mut [u8; 66]) {
    let d = abs_max(x);
    let id = inverse(d);
    for c in 0..2 {
        let qs = field_mut::<32>(b, 32 * c);
        for (m, o) in qs.iter_mut().enumerate() {
            let q = |l: usize| trit(x[128 * c + 32 * l + m], id) << (2 * l);
            *o = q(0) | q(1) | q(2) | q(3);
        }
    }
    put_half(b, 64, d);
}

// ---------------------------------------------------------------------------------------------
// TQ1_0 (54 bytes: qs[48], qh[4], d f16): five trits per byte in base 3, stored as
// ceil(value · 256 / 243) so that digit n is recovered as ((byte · 3^n mod 256) · 3) >> 8.
// Element 32·n + m (n < 5) is digit n of qs[m]; element 160 + 16·n + m (n < 5) is digit n of
// qs[32 + m]; element 240 + 4·n + m (n < 4) is digit n of qh[m].
// ---------------------------------------------------------------------------------------------

const POW3: [u8; 5] = [1, 3, 9, 27, 81];

#[inline(always)]
fn digit(byte: u8, n: usize) -> f32 {
    let q = byte.wrapping_mul(POW3[n]);
    f32::from(((u16::from(q) * 3) >> 8) as i8 - 1)
}

#[inline(always)]
fn deq_tq1_0(b: &[u8; 54], y: &mut [f32; 256]) {
    let d = half(b, 52);
    let (y0, rest) = y.split_at_mut(160);
    let (y1, y2) = rest.split_at_mut(80);
    let qs0 = field::<32>(b, 0);
    for (n, yn) in y0.chunks_exact_mut(32).enumerate() {
        for (o, &q) in yn.iter_mut().zip(qs0) {
            *o = d * digit(q, n);
        }
    }
    let qs1 = field::<16>(b, 32);
    for (n, yn) in y1.chunks_exact_mut(16).enumerate() {
        for (o, &q) in yn.iter_mut().zip(qs1) {
            *o = d * digit(q, n);
        }
    }
    let qh = field::<4>(b, 48);
    for (n, yn) in y2.chunks_exact_mut(4).enumerate() {
        for (o, &q) in yn.iter_mut().zip(qh) {
            *o = d * digit(q, n);
        }
    }
}

/// Packs `digits.len()` trits (most significant first) into one byte as gguf-py does:
/// `(Σ t·3^(k-1-i) · 256 + 242) / 243`, the sum taken in wrapping uint8 like numpy.
#[inline(always)]
fn pack_trits(trits: impl Iterator<Item = u8>, weights: &[u8]) -> u8 {
    let mut s = 0u8;
    for (t, &w) in trits.zip(weights) {
        s = s.wrapping_add(t.wrapping_mul(w));
    }
    (u16::from(s) * 256).div_ceil(243) as u8
}

#[inline(always)]
fn q_tq1_0(x: &[f32; 256], b: &mut [u8; 54]) {
    const W5: [u8; 5] = [81, 27, 9, 3, 1];
    const W4: [u8; 4] = [81, 27, 9, 3];
    let d = abs_max(x);
    let id = inverse(d);
    let q: [u8; 256] = x.map(|v| trit(v, id));
    for m in 0..32 {
        b[m] = pack_trits((0..5).map(|n| q[32 * n + m]), &W5);
    }
    for m in 0..16 {
        b[32 + m] = pack_trits((0..5).map(|n| q[160 + 16 * n + m]), &W5);
    }
    for m in 0..4 {
        b[48 + m] = pack_trits((0..4).map(|n| q[240 + 4 * n + m]), &W4);
    }
    put_half(b, 52, d);
}

// ---------------------------------------------------------------------------------------------
// MXFP4 (17 bytes: e (E8M0 scale), qs[16]) and NVFP4 (36 bytes: 4 UE4M3 scales, qs[32]):
// 4-bit E2M1 codes, table values doubled (so the scale is taken at half).
// ---------------------------------------------------------------------------------------------

/// E2M1 values, doubled (ggml's `kvalues_mxfp4`).
const KVALUES: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// `KVALUES[n]` computed with integer operations (vectorizes, unlike a table lookup):
/// magnitudes 0, 1, 2, 3 for codes 0–3 and (2 + (m & 1)) << ((m >> 1) − 1) = 4, 6, 8, 12 for
/// 4–7; bit 3 is the sign (code 8 is +0, as in the table).
#[inline(always)]
fn e2m1(n: u8) -> f32 {
    let m = i32::from(n & 7);
    let big = (2 + (m & 1)) << ((m >> 1) - 1).max(0);
    let mag = if m >= 4 { big } else { m };
    f32::from(if n & 8 != 0 { -mag } else { mag } as i16)
}

/// ggml's `ggml_e8m0_to_fp32_half`: 2^(e - 128), exact (subnormal for e < 2).
#[inline(always)]
fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        u32::from(e - 1) << 23
    };
    f32::from_bits(bits)
}

#[inline(always)]
fn deq_mxfp4(b: &[u8; 17], y: &mut [f32; 32]) {
    let d = e8m0_half(b[0]);
    let qs = field::<16>(b, 1);
    let (lo, hi) = y.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(qs) {
        *l = d * e2m1(q & 0x0f);
        *h = d * e2m1(q >> 4);
    }
}

/// For each value, the index of the table value nearest `v / d` (gguf-py: `argmin |d·k − v|`
/// over the table, first on ties). A NaN value gives 0 (all its errors are NaN and numpy's
/// argmin returns the first NaN); no other error can be NaN, since `d·k` is finite. Computed
/// candidate by candidate across the 32 values so the loop vectorizes.
#[inline(always)]
fn best_mxfp4(x: &[f32; 32], d: f32) -> [u8; 32] {
    let d0 = d * f32::from(KVALUES[0]);
    let mut best_err = [0f32; 32];
    for (e, &v) in best_err.iter_mut().zip(x) {
        *e = (d0 - v).abs();
    }
    let mut best = [0i32; 32];
    for (i, &k) in KVALUES.iter().enumerate().skip(1) {
        let dk = d * f32::from(k);
        for ((e, b), &v) in best_err.iter_mut().zip(best.iter_mut()).zip(x) {
            let err = (dk - v).abs();
            let better = err < *e;
            *e = if better { err } else { *e };
            *b = if better { i as i32 } else { *b };
        }
    }
    best.map(|b| b as u8)
}

#[inline(always)]
fn q_mxfp4(x: &[f32; 32], b: &mut [u8; 17]) {
    let amax = abs_max(x);
    // floor(log2(amax)) - 2 + 127 in f32, cast like numpy's astype(np.uint8). `log2` is the
    // C library's log2f, as numpy's and ggml's.
    let e = if amax > 0.0 {
        cvtt(amax.log2().floor() - 2.0 + 127.0) as u8
    } else {
        0
    };
    b[0] = e;
    let d = e8m0_half(e);
    let best = best_mxfp4(x, d);
    let qs = field_mut::<16>(b, 1);
    for (j, o) in qs.iter_mut().enumerate() {
        *o = best[j] | (best[j + 16] << 4);
    }
}

/// Unsigned E4M3 scale (bias 7) to f32, halved (the doubled-table convention), as gguf-py's
/// `NVFP4.ue4m3_to_fp32`: the top bit is ignored, `0x00` and `0x7f` (NaN) read as zero.
const fn ue4m3_half(x: u8) -> f32 {
    if x == 0 || x == 0x7f {
        return 0.0;
    }
    let exp = (x >> 3) & 0x0f;
    let man = (x & 7) as u32;
    if exp == 0 {
        // man · 2^-9 · 0.5 = man · 2^-10
        man as f32 * f32::from_bits((127 - 10) << 23)
    } else {
        // (1 + man/8) · 2^(exp-7) · 0.5 = (8 + man) · 2^(exp - 11)
        (8 + man) as f32 * f32::from_bits((127 + exp as u32 - 11) << 23)
    }
}

const UE4M3_HALF: [f32; 256] = {
    let mut t = [0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ue4m3_half(i as u8);
        i += 1;
    }
    t
};

#[inline(always)]
fn deq_nvfp4(b: &[u8; 36], y: &mut [f32; 64]) {
    let (scales, qs) = b.split_at(4);
    let (qs, _) = qs.as_chunks::<8>();
    let (ys, _) = y.as_chunks_mut::<16>();
    for ((ys, qs), &sc) in ys.iter_mut().zip(qs).zip(scales) {
        let d = UE4M3_HALF[usize::from(sc)];
        let mut out = [0f32; 16];
        for i in 0..8 {
            out[i] = d * e2m1(qs[i] & 0x0f);
            out[i + 8] = d * e2m1(qs[i] >> 4);
        }
        *ys = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvtt_matches_x86_semantics() {
        assert_eq!(cvtt(f32::NAN) as u8, 0, "NaN → i32::MIN → low byte 0");
        assert_eq!(cvtt(300.0) as u8, 44, "300 keeps its low byte");
        assert_eq!(cvtt(-300.0) as u8, 212, "-300 = 0xfffffed4");
        assert_eq!(cvtt(-1.5) as u8, 255, "truncates towards zero then wraps");
        assert_eq!(cvtt(1e10), i32::MIN, "out of range");
        assert_eq!(cvtt(f32::INFINITY), i32::MIN);
    }

    #[test]
    fn e2m1_is_the_table() {
        for n in 0..16u8 {
            let want = f32::from(KVALUES[usize::from(n)]);
            assert_eq!(e2m1(n).to_bits(), want.to_bits(), "code {n}");
        }
    }

    #[test]
    fn ue4m3_table_values() {
        assert_eq!(ue4m3_half(0x38), 0.5, "exp 7, man 0 = 1.0, halved");
        assert_eq!(
            ue4m3_half(0x01),
            2f32.powi(-10),
            "smallest subnormal, halved"
        );
        assert_eq!(ue4m3_half(0x7e), 224.0, "largest finite 448, halved");
        assert_eq!(ue4m3_half(0x7f), 0.0, "NaN code reads as zero");
        assert_eq!(ue4m3_half(0xb8), 0.5, "top bit ignored");
    }
}
