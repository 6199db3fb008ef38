//! K-quant codecs: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K (256-element super-blocks).
//!
//! # Overview
//! Dequantizers follow ggml's `dequantize_row_*` element for element, so their output is
//! bit-identical with ggml and gguf-py (both multiply the same `f32` factors in the same order).
//! Quantizers reproduce ggml's `quantize_row_*_ref` (what `ggml_quantize_chunk` runs without an
//! importance matrix): the same search for sub-block scales (`make_qkx2_quants`,
//! `make_q3_quants`, `make_qx_quants`), the same `f32` operations in the same order, and the
//! same round-to-nearest trick (`nearest_int`), so every output byte matches ggml's.
//!
//! The block layouts (little-endian, `d`/`dmin` are IEEE half floats):
//! - Q2_K (84 bytes): `scales[16]` (low nibble scale, high nibble min), `qs[64]` (2 bits),
//!   `d`, `dmin`.
//! - Q3_K (110 bytes): `hmask[32]` (high bit), `qs[64]` (low 2 bits), `scales[12]` (16 × 6 bit),
//!   `d`.
//! - Q4_K (144 bytes): `d`, `dmin`, `scales[12]` (8 scales + 8 mins, 6 bit), `qs[128]`.
//! - Q5_K (176 bytes): `d`, `dmin`, `scales[12]`, `qh[32]` (fifth bit), `qs[128]`.
//! - Q6_K (210 bytes): `ql[128]` (low 4 bits), `qh[64]` (high 2 bits), `scales[16]` (i8), `d`.
//! - Q8_K (292 bytes): `d` (f32), `qs[256]` (i8), `bsums[16]` (i16, sums of 16 quants).

use crate::{CodecError, GgmlType};
use half::f16;

/// Elements per K-quant super-block.
pub(crate) const QK_K: usize = 256;

/// ggml's `GROUP_MAX_EPS`: below this absolute maximum a group counts as all zero.
const GROUP_MAX_EPS: f32 = 1e-15;

pub(crate) fn handles(ty: GgmlType) -> bool {
    ty.is_k_quant()
}

pub(crate) fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
    crate::check_lengths(ty, src.len(), dst.len())?;
    let ts = ty.type_size();
    let blocks = src.chunks_exact(ts).zip(dst.chunks_exact_mut(QK_K));
    match ty {
        GgmlType::Q2_K => blocks.for_each(|(b, y)| dequant_q2_k(b, y)),
        GgmlType::Q3_K => blocks.for_each(|(b, y)| dequant_q3_k(b, y)),
        GgmlType::Q4_K => blocks.for_each(|(b, y)| dequant_q4_k(b, y)),
        GgmlType::Q5_K => blocks.for_each(|(b, y)| dequant_q5_k(b, y)),
        GgmlType::Q6_K => blocks.for_each(|(b, y)| dequant_q6_k(b, y)),
        GgmlType::Q8_K => blocks.for_each(|(b, y)| dequant_q8_k(b, y)),
        _ => return Err(CodecError::no_dequantize(ty)),
    }
    Ok(())
}

pub(crate) fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
    crate::check_lengths(ty, dst.len(), src.len())?;
    let ts = ty.type_size();
    let blocks = src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(ts));
    match ty {
        GgmlType::Q2_K => blocks.for_each(|(x, b)| quant_q2_k(x, b)),
        GgmlType::Q3_K => blocks.for_each(|(x, b)| quant_q3_k(x, b)),
        GgmlType::Q4_K => blocks.for_each(|(x, b)| quant_q4_k(x, b, 15)),
        GgmlType::Q5_K => blocks.for_each(|(x, b)| quant_q4_k(x, b, 31)),
        GgmlType::Q6_K => blocks.for_each(|(x, b)| quant_q6_k(x, b)),
        GgmlType::Q8_K => blocks.for_each(|(x, b)| quant_q8_k(x, b)),
        _ => return Err(CodecError::no_quantize(ty)),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

#[inline(always)]
pub(crate) fn half_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

#[inline(always)]
fn put_half(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
}

/// ggml's `nearest_int`: adds 1.5·2²³ so the float's low mantissa bits hold the rounded
/// integer (round half to even). Only meaningful for |x| ≤ 4194303, exactly like ggml; out of
/// range inputs give the same (meaningless) bits as ggml does.
#[inline(always)]
pub(crate) fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0_f32;
    (v.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// Scale (`d`) and min (`m`) of sub-block `j` (0..8) from the 12 packed bytes of Q4_K/Q5_K.
#[inline(always)]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The 16 signed 6-bit scales of a Q3_K block (already minus 32).
#[inline(always)]
pub(crate) fn q3_k_scales(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = if j < 8 { s[j] & 0xF } else { s[j - 8] >> 4 };
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = ((low | (high << 4)) as i8).wrapping_sub(32);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Dequantizers (ggml's dequantize_row_*; same f32 products in the same order)
// ---------------------------------------------------------------------------------------------

// Q2_K offsets.
const Q2K_SCALES: usize = 0;
const Q2K_QS: usize = 16;
const Q2K_D: usize = 80;
const Q2K_DMIN: usize = 82;

fn dequant_q2_k(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, Q2K_D);
    let min = half_at(b, Q2K_DMIN);
    let scales = &b[Q2K_SCALES..Q2K_SCALES + 16];
    let qs = &b[Q2K_QS..Q2K_QS + 64];
    // Sub-block `s` (16 elements) = half `s / 8`, shift `2 * ((s % 8) / 2)`, bytes
    // `16 * (s % 2)..` of that half's 32 bytes.
    for (s, out) in y.chunks_exact_mut(16).enumerate() {
        let sc = scales[s];
        let dl = d * f32::from(sc & 0xF);
        let ml = min * f32::from(sc >> 4);
        let shift = 2 * ((s % 8) / 2);
        let q = &qs[32 * (s / 8) + 16 * (s % 2)..][..16];
        for (o, &qb) in out.iter_mut().zip(q) {
            *o = dl * f32::from((qb >> shift) & 3) - ml;
        }
    }
}

// Q3_K offsets.
const Q3K_HMASK: usize = 0;
const Q3K_QS: usize = 32;
const Q3K_SCALES: usize = 96;
const Q3K_D: usize = 108;

fn dequant_q3_k(b: &[u8], y: &mut [f32]) {
    let d_all = half_at(b, Q3K_D);
    let scales = q3_k_scales(&b[Q3K_SCALES..Q3K_SCALES + 12]);
    let hm = &b[Q3K_HMASK..Q3K_HMASK + 32];
    let qs = &b[Q3K_QS..Q3K_QS + 64];
    for (s, out) in y.chunks_exact_mut(16).enumerate() {
        let dl = d_all * f32::from(scales[s]);
        // Element e = 16*s + l: half h = s/8, pair p = (s%8)/2 picks shift and hmask bit.
        let p = (s % 8) / 2;
        let shift = 2 * p;
        let hbit = 4 * (s / 8) + p;
        let off = 16 * (s % 2);
        let q = &qs[32 * (s / 8) + off..][..16];
        let h = &hm[off..off + 16];
        for ((o, &qb), &hb) in out.iter_mut().zip(q).zip(h) {
            let v = ((qb >> shift) & 3) as i8 - if (hb >> hbit) & 1 != 0 { 0 } else { 4 };
            *o = dl * f32::from(v);
        }
    }
}

// Q4_K / Q5_K offsets.
const Q4K_D: usize = 0;
const Q4K_DMIN: usize = 2;
const Q4K_SCALES: usize = 4;
const Q4K_QS: usize = 16;
const Q5K_QH: usize = 16;
const Q5K_QS: usize = 48;

fn dequant_q4_k(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, Q4K_D);
    let min = half_at(b, Q4K_DMIN);
    let sc = &b[Q4K_SCALES..Q4K_SCALES + 12];
    for (j, out) in y.chunks_exact_mut(64).enumerate() {
        let (s1, m1) = scale_min_k4(2 * j, sc);
        let (s2, m2) = scale_min_k4(2 * j + 1, sc);
        let (d1, m1) = (d * f32::from(s1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(s2), min * f32::from(m2));
        let q: &[u8; 32] = b[Q4K_QS + 32 * j..Q4K_QS + 32 * j + 32]
            .try_into()
            .unwrap_or(&[0; 32]);
        let (lo, hi) = out.split_at_mut(32);
        let lo: &mut [f32; 32] = lo.try_into().unwrap_or_else(|_| unreachable!());
        let hi: &mut [f32; 32] = hi.try_into().unwrap_or_else(|_| unreachable!());
        let mut c1 = [0u8; 32];
        let mut c2 = [0u8; 32];
        for l in 0..32 {
            c1[l] = q[l] & 0xF;
            c2[l] = q[l] >> 4;
        }
        for l in 0..32 {
            lo[l] = d1 * f32::from(c1[l]) - m1;
        }
        for l in 0..32 {
            hi[l] = d2 * f32::from(c2[l]) - m2;
        }
    }
}

fn dequant_q5_k(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, Q4K_D);
    let min = half_at(b, Q4K_DMIN);
    let sc = &b[Q4K_SCALES..Q4K_SCALES + 12];
    let qh: &[u8; 32] = b[Q5K_QH..Q5K_QH + 32].try_into().unwrap_or(&[0; 32]);
    for (j, out) in y.chunks_exact_mut(64).enumerate() {
        let (s1, m1) = scale_min_k4(2 * j, sc);
        let (s2, m2) = scale_min_k4(2 * j + 1, sc);
        let (d1, m1) = (d * f32::from(s1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(s2), min * f32::from(m2));
        let q: &[u8; 32] = b[Q5K_QS + 32 * j..Q5K_QS + 32 * j + 32]
            .try_into()
            .unwrap_or(&[0; 32]);
        let (lo, hi) = out.split_at_mut(32);
        let lo: &mut [f32; 32] = lo.try_into().unwrap_or_else(|_| unreachable!());
        let hi: &mut [f32; 32] = hi.try_into().unwrap_or_else(|_| unreachable!());
        let (s1, s2) = (2 * j as u32, 2 * j as u32 + 1);
        let mut c1 = [0u8; 32];
        let mut c2 = [0u8; 32];
        for l in 0..32 {
            c1[l] = (q[l] & 0xF) | (((qh[l] >> s1) << 4) & 0x10);
            c2[l] = (q[l] >> 4) | (((qh[l] >> s2) << 4) & 0x10);
        }
        for l in 0..32 {
            lo[l] = d1 * f32::from(c1[l]) - m1;
        }
        for l in 0..32 {
            hi[l] = d2 * f32::from(c2[l]) - m2;
        }
    }
}

// Q6_K offsets.
const Q6K_QL: usize = 0;
const Q6K_QH: usize = 128;
const Q6K_SCALES: usize = 192;
const Q6K_D: usize = 208;

fn dequant_q6_k(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, Q6K_D);
    for (n, out) in y.chunks_exact_mut(128).enumerate() {
        let ql: &[u8; 64] = b[Q6K_QL + 64 * n..Q6K_QL + 64 * n + 64]
            .try_into()
            .unwrap_or(&[0; 64]);
        let qh: &[u8; 32] = b[Q6K_QH + 32 * n..Q6K_QH + 32 * n + 32]
            .try_into()
            .unwrap_or(&[0; 32]);
        let sc = &b[Q6K_SCALES + 8 * n..Q6K_SCALES + 8 * n + 8];
        // Output quarter g (32 values) takes the low (g < 2) or high nibble of ql[32 * (g % 2)..]
        // and bits 2g..2g+2 of qh; each half of it (16 values) has its own scale.
        for (g, quarter) in out.chunks_exact_mut(32).enumerate() {
            let lq = &ql[32 * (g % 2)..32 * (g % 2) + 32];
            let nshift = 4 * (g / 2) as u32;
            let hshift = 2 * g as u32;
            for (h, o) in quarter.chunks_exact_mut(16).enumerate() {
                let ds = d * f32::from(sc[h + 2 * g] as i8);
                let (lq, qh) = (&lq[16 * h..16 * h + 16], &qh[16 * h..16 * h + 16]);
                for ((o, &lb), &hb) in o.iter_mut().zip(lq).zip(qh) {
                    let q = (((lb >> nshift) & 0xF) | (((hb >> hshift) & 3) << 4)) as i8 - 32;
                    *o = ds * f32::from(q);
                }
            }
        }
    }
}

fn dequant_q8_k(b: &[u8], y: &mut [f32]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let q: &[u8; QK_K] = b[4..4 + QK_K].try_into().unwrap_or(&[0; QK_K]);
    let y: &mut [f32; QK_K] = y.try_into().unwrap_or_else(|_| unreachable!());
    for l in 0..QK_K {
        y[l] = d * f32::from(q[l] as i8);
    }
}

// ---------------------------------------------------------------------------------------------
// Scale searches (ggml's make_*_quants), f32 throughout, same operation order
// ---------------------------------------------------------------------------------------------

/// ggml's `make_qx_quants` for the reference quantizers: `rmse_type` 1 (weights x²), no
/// importance weights. Writes `L[i] ∈ [0, 2·nmax)` and returns the scale.
fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = -nmaxf / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (&v, lo) in x.iter().zip(l_out.iter_mut()) {
        let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        *lo = (l + nmax) as i8;
        let w = v * v;
        let lf = l as f32;
        sumlx += w * v * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmaxf + 0.1f32 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            let w = v * v;
            let lf = l as f32;
            sumlx += w * v * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (&v, lo) in x.iter().zip(l_out.iter_mut()) {
                let l = nearest_int(iscale * v);
                *lo = (nmax + l.clamp(-nmax, nmax - 1)) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's `make_q3_quants` with `do_rmse = true`. Writes `L[i] ∈ [0, 2·nmax)`.
fn make_q3_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (&v, lo) in x.iter().zip(l_out.iter_mut()) {
        let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        *lo = l as i8;
        let w = v * v;
        let lf = l as f32;
        sumlx += w * v * lf;
        suml2 += w * lf * lf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (&v, lo) in x.iter().zip(l_out.iter_mut()) {
            let w = v * v;
            let li = f32::from(*lo);
            let mut slx = sumlx - w * v * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != i32::from(*lo) {
                    let nl = new_l as f32;
                    slx += w * v * nl;
                    sl2 += w * nl * nl;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *lo = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for lo in l_out.iter_mut() {
        *lo += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// ggml's `make_qkx2_quants`: an affine fit `x ≈ scale·L − min` searched over `nstep + 1`
/// candidate scales. Returns `(scale, the_min)` where `the_min` is ggml's `-min` (≥ 0).
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.iter_mut().for_each(|l| *l = 0);
        return (0.0, -min);
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min));
        l_out[i] = l.clamp(0, nmax) as u8;
        let mut diff = scale * f32::from(l_out[i]) + min - x[i];
        diff = if use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    if nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let mut sum_l = 0.0f32;
        let mut sum_l2 = 0.0f32;
        let mut sum_xl = 0.0f32;
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let mut diff = this_scale * f32::from(laux[i]) + this_min - x[i];
                diff = if use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

// ---------------------------------------------------------------------------------------------
// Quantizers (ggml's quantize_row_*_ref)
// ---------------------------------------------------------------------------------------------

fn quant_q2_k(x: &[f32], y: &mut [u8]) {
    const Q4SCALE: f32 = 15.0;
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 16];
    let mut weights = [0f32; 16];
    let mut mins = [0f32; 16];
    let mut scales = [0f32; 16];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..16 {
        let xs = &x[16 * j..16 * j + 16];
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = v.abs();
        }
        let (s, m) = make_qkx2_quants(
            3,
            xs,
            &weights,
            &mut l[16 * j..16 * j + 16],
            &mut laux,
            -0.5,
            0.1,
            15,
            true,
        );
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let (sc, rest) = y.split_at_mut(Q2K_QS);
    if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for j in 0..16 {
            sc[j] = nearest_int(iscale * scales[j]) as u8;
        }
        put_half(rest, Q2K_D - Q2K_QS, max_scale / Q4SCALE);
    } else {
        sc.iter_mut().for_each(|s| *s = 0);
        put_half(rest, Q2K_D - Q2K_QS, 0.0);
    }
    if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for j in 0..16 {
            let li = nearest_int(iscale * mins[j]);
            sc[j] |= (li << 4) as u8;
        }
        put_half(rest, Q2K_DMIN - Q2K_QS, max_min / Q4SCALE);
    } else {
        put_half(rest, Q2K_DMIN - Q2K_QS, 0.0);
    }
    let dd = half_at(y, Q2K_D);
    let dmin = half_at(y, Q2K_DMIN);
    for j in 0..16 {
        let d = dd * f32::from(y[Q2K_SCALES + j] & 0xF);
        if d == 0.0 {
            continue;
        }
        let dm = dmin * f32::from(y[Q2K_SCALES + j] >> 4);
        for ii in 0..16 {
            let li = nearest_int((x[16 * j + ii] + dm) / d);
            l[16 * j + ii] = li.clamp(0, 3) as u8;
        }
    }
    let qs = &mut y[Q2K_QS..Q2K_QS + 64];
    for (h, lh) in l.chunks_exact(128).enumerate() {
        for k in 0..32 {
            qs[32 * h + k] = lh[k] | (lh[k + 32] << 2) | (lh[k + 64] << 4) | (lh[k + 96] << 6);
        }
    }
}

fn quant_q3_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0f32; 16];
    let mut max_scale = 0.0f32;
    let mut amax = 0.0f32;
    for j in 0..16 {
        scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
        let scale = scales[j].abs();
        if scale > amax {
            amax = scale;
            max_scale = scales[j];
        }
    }
    let sc = &mut y[Q3K_SCALES..Q3K_SCALES + 12];
    sc.iter_mut().for_each(|s| *s = 0);
    let d_to_store = if max_scale != 0.0 {
        let iscale = -32.0f32 / max_scale;
        for j in 0..16 {
            let li = nearest_int(iscale * scales[j]) as i8;
            let li = (i32::from(li).clamp(-32, 31) + 32) as u8;
            if j < 8 {
                sc[j] = li & 0xF;
            } else {
                sc[j - 8] |= (li & 0xF) << 4;
            }
            sc[j % 4 + 8] |= (li >> 4) << (2 * (j / 4));
        }
        1.0 / iscale
    } else {
        0.0
    };
    put_half(y, Q3K_D, d_to_store);
    let dd = half_at(y, Q3K_D);
    let scs = q3_k_scales(&y[Q3K_SCALES..Q3K_SCALES + 12]);
    for j in 0..16 {
        let d = dd * f32::from(scs[j]);
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let li = nearest_int(x[16 * j + ii] / d).clamp(-4, 3);
            l[16 * j + ii] = (li + 4) as i8;
        }
    }
    let hmask = &mut y[Q3K_HMASK..Q3K_HMASK + 32];
    hmask.iter_mut().for_each(|h| *h = 0);
    for (j, lj) in l.iter_mut().enumerate() {
        if *lj > 3 {
            hmask[j % 32] |= 1 << (j / 32);
            *lj -= 4;
        }
    }
    let qs = &mut y[Q3K_QS..Q3K_QS + 64];
    for (h, lh) in l.chunks_exact(128).enumerate() {
        for k in 0..32 {
            let v = |i: usize| lh[i] as u8;
            qs[32 * h + k] = v(k) | (v(k + 32) << 2) | (v(k + 64) << 4) | (v(k + 96) << 6);
        }
    }
}

/// Q4_K (`nmax` 15) and Q5_K (`nmax` 31): the same algorithm, different search parameters and
/// packing.
fn quant_q4_k(x: &[f32], y: &mut [u8], nmax: i32) {
    let five = nmax == 31;
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 32];
    let mut weights = [0f32; 32];
    let mut mins = [0f32; 8];
    let mut scales = [0f32; 8];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (rmin, nstep) = if five { (-0.5, 15) } else { (-1.0, 20) };
        let (s, m) = make_qkx2_quants(
            nmax,
            xs,
            &weights,
            &mut l[32 * j..32 * j + 32],
            &mut laux,
            rmin,
            0.1,
            nstep,
            false,
        );
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let sc = &mut y[Q4K_SCALES..Q4K_SCALES + 12];
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    put_half(y, Q4K_D, max_scale / 63.0);
    put_half(y, Q4K_DMIN, max_min / 63.0);
    let dd = half_at(y, Q4K_D);
    let dmin = half_at(y, Q4K_DMIN);
    for j in 0..8 {
        let (s, m) = scale_min_k4(j, &y[Q4K_SCALES..Q4K_SCALES + 12]);
        let d = dd * f32::from(s);
        if d == 0.0 {
            continue;
        }
        let dm = dmin * f32::from(m);
        for ii in 0..32 {
            let li = nearest_int((x[32 * j + ii] + dm) / d);
            l[32 * j + ii] = li.clamp(0, nmax) as u8;
        }
    }
    if five {
        let (qh, qs) = y[Q5K_QH..Q5K_QS + 128].split_at_mut(32);
        qh.iter_mut().for_each(|h| *h = 0);
        for (n, ln) in l.chunks_exact(64).enumerate() {
            let (m1, m2) = (1u8 << (2 * n), 2u8 << (2 * n));
            for j in 0..32 {
                let mut l1 = ln[j];
                if l1 > 15 {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                let mut l2 = ln[j + 32];
                if l2 > 15 {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                qs[32 * n + j] = l1 | (l2 << 4);
            }
        }
    } else {
        let qs = &mut y[Q4K_QS..Q4K_QS + 128];
        for (n, ln) in l.chunks_exact(64).enumerate() {
            for j in 0..32 {
                qs[32 * n + j] = ln[j] | (ln[j + 32] << 4);
            }
        }
    }
}

fn quant_q6_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0f32; 16];
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for ib in 0..16 {
        let scale = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16]);
        scales[ib] = scale;
        let abs_scale = scale.abs();
        if abs_scale > max_abs_scale {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        y.iter_mut().for_each(|b| *b = 0);
        return;
    }
    let iscale = -128.0f32 / max_scale;
    put_half(y, Q6K_D, 1.0 / iscale);
    for ib in 0..16 {
        y[Q6K_SCALES + ib] = nearest_int(iscale * scales[ib]).min(127) as i8 as u8;
    }
    let dd = half_at(y, Q6K_D);
    for j in 0..16 {
        let d = dd * f32::from(y[Q6K_SCALES + j] as i8);
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let li = nearest_int(x[16 * j + ii] / d).clamp(-32, 31);
            l[16 * j + ii] = (li + 32) as i8;
        }
    }
    let (ql, rest) = y.split_at_mut(Q6K_QH);
    let qh = &mut rest[..64];
    for (n, ln) in l.chunks_exact(128).enumerate() {
        let ql = &mut ql[64 * n..64 * n + 64];
        let qh = &mut qh[32 * n..32 * n + 32];
        let v = |i: usize| ln[i] as u8;
        for k in 0..32 {
            ql[k] = (v(k) & 0xF) | ((v(k + 64) & 0xF) << 4);
            ql[k + 32] = (v(k + 32) & 0xF) | ((v(k + 96) & 0xF) << 4);
            qh[k] = (v(k) >> 4)
                | ((v(k + 32) >> 4) << 2)
                | ((v(k + 64) >> 4) << 4)
                | ((v(k + 96) >> 4) << 6);
        }
    }
}

fn quant_q8_k(x: &[f32], y: &mut [u8]) {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax == 0.0 {
        y.iter_mut().for_each(|b| *b = 0);
        return;
    }
    let iscale = -127.0f32 / max;
    let (d, rest) = y.split_at_mut(4);
    let (qs, bsums) = rest.split_at_mut(QK_K);
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8 as u8;
    }
    for (j, chunk) in qs.chunks_exact(16).enumerate() {
        let sum: i32 = chunk.iter().map(|&q| i32::from(q as i8)).sum();
        bsums[2 * j..2 * j + 2].copy_from_slice(&(sum as i16).to_le_bytes());
    }
    d.copy_from_slice(&(1.0 / iscale).to_le_bytes());
}
