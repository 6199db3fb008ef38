//! IQ codecs ("i-quants"): IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL,
//! IQ4_XS.
//!
//! # Overview
//! IQ types store indices into fixed codebooks (grids of 4 or 8 magnitudes, in `iq_tables.rs`,
//! generated from gguf-py by `scripts/gen_iq_tables.py`) plus sign bits and small
//! per-sub-block scales. Dequantizing follows ggml's `dequantize_row_iq*` (the same `f32`
//! products in the same order), so the output is bit-identical with ggml and gguf-py.
//!
//! Quantizing the grid types (IQ1/IQ2/IQ3) needs an importance matrix and a codebook search
//! that this crate does not implement: [`quantize`] refuses them. IQ4_NL and IQ4_XS quantize
//! as ggml's `quantize_iq4_nl` / `quantize_iq4_xs` do without an importance matrix (what
//! `ggml_quantize_chunk` and llama-quantize run), byte for byte.

#[path = "iq_tables.rs"]
mod tables;

use crate::kquants::{half_at, nearest_int, QK_K};
use crate::{CodecError, GgmlType};
use half::f16;
use tables::*;

pub(crate) fn handles(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        IQ1_S | IQ1_M | IQ2_XXS | IQ2_XS | IQ2_S | IQ3_XXS | IQ3_S | IQ4_NL | IQ4_XS
    )
}

pub(crate) fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
    crate::check_lengths(ty, src.len(), dst.len())?;
    let ts = ty.type_size();
    let bs = ty.block_size();
    let blocks = src.chunks_exact(ts).zip(dst.chunks_exact_mut(bs));
    match ty {
        GgmlType::IQ2_XXS => blocks.for_each(|(b, y)| dequant_iq2_xxs(b, y)),
        GgmlType::IQ2_XS => blocks.for_each(|(b, y)| dequant_iq2_xs(b, y)),
        GgmlType::IQ2_S => blocks.for_each(|(b, y)| dequant_iq2_s(b, y)),
        GgmlType::IQ3_XXS => blocks.for_each(|(b, y)| dequant_iq3_xxs(b, y)),
        GgmlType::IQ3_S => blocks.for_each(|(b, y)| dequant_iq3_s(b, y)),
        GgmlType::IQ1_S => blocks.for_each(|(b, y)| dequant_iq1_s(b, y)),
        GgmlType::IQ1_M => blocks.for_each(|(b, y)| dequant_iq1_m(b, y)),
        GgmlType::IQ4_NL => blocks.for_each(|(b, y)| dequant_iq4_nl(b, y)),
        GgmlType::IQ4_XS => blocks.for_each(|(b, y)| dequant_iq4_xs(b, y)),
        _ => return Err(CodecError::no_dequantize(ty)),
    }
    Ok(())
}

pub(crate) fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
    crate::check_lengths(ty, dst.len(), src.len())?;
    let ts = ty.type_size();
    let bs = ty.block_size();
    let blocks = src.chunks_exact(bs).zip(dst.chunks_exact_mut(ts));
    match ty {
        GgmlType::IQ4_NL => blocks.for_each(|(x, b)| quant_iq4_nl(x, b)),
        GgmlType::IQ4_XS => blocks.for_each(|(x, b)| quant_iq4_xs(x, b)),
        _ => return Err(CodecError::no_quantize(ty)),
    }
    Ok(())
}

#[inline(always)]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `v` times -1.0 where bit `j` of `signs` is set, else times 1.0 (as ggml does; exact).
#[inline(always)]
fn signed(v: f32, signs: u8, j: usize) -> f32 {
    v * if signs & (1 << j) != 0 { -1.0 } else { 1.0 }
}

// ---------------------------------------------------------------------------------------------
// Dequantizers
// ---------------------------------------------------------------------------------------------

/// IQ2_XXS (66 bytes): `d`, then per 32 elements 8 bytes: four grid indices and a u32 holding
/// four 7-bit sign indices and a 4-bit scale.
fn dequant_iq2_xxs(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    for (ib, out) in y.chunks_exact_mut(32).enumerate() {
        let q = &b[2 + 8 * ib..2 + 8 * ib + 8];
        let aux1 = u32_at(q, 4);
        let db = d * (0.5 + (aux1 >> 28) as f32) * 0.25;
        for (l, o) in out.chunks_exact_mut(8).enumerate() {
            let grid = IQ2XXS_GRID[usize::from(q[l])].to_le_bytes();
            let signs = KSIGNS_IQ2XS[((aux1 >> (7 * l)) & 127) as usize];
            for j in 0..8 {
                o[j] = signed(db * f32::from(grid[j]), signs, j);
            }
        }
    }
}

/// IQ2_XS (74 bytes): `d`, 32 u16 (9-bit grid index, 7-bit sign index), 8 scale bytes.
fn dequant_iq2_xs(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    let scales = &b[66..74];
    for (ib, out) in y.chunks_exact_mut(32).enumerate() {
        let db = [
            d * (0.5 + f32::from(scales[ib] & 0xF)) * 0.25,
            d * (0.5 + f32::from(scales[ib] >> 4)) * 0.25,
        ];
        for (l, o) in out.chunks_exact_mut(8).enumerate() {
            let q = u16_at(b, 2 + 2 * (4 * ib + l));
            let grid = IQ2XS_GRID[usize::from(q & 511)].to_le_bytes();
            let signs = KSIGNS_IQ2XS[usize::from(q >> 9)];
            for j in 0..8 {
                o[j] = signed(db[l / 2] * f32::from(grid[j]), signs, j);
            }
        }
    }
}

/// IQ2_S (82 bytes): `d`, 32 grid index low bytes, 32 sign bytes, 8 bytes of index high bits,
/// 8 scale bytes.
fn dequant_iq2_s(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    let qs = &b[2..34];
    let signs = &b[34..66];
    let qh = &b[66..74];
    let scales = &b[74..82];
    for (ib, out) in y.chunks_exact_mut(32).enumerate() {
        let db = [
            d * (0.5 + f32::from(scales[ib] & 0xF)) * 0.25,
            d * (0.5 + f32::from(scales[ib] >> 4)) * 0.25,
        ];
        for (l, o) in out.chunks_exact_mut(8).enumerate() {
            let dl = db[l / 2];
            let idx = usize::from(qs[4 * ib + l]) | ((usize::from(qh[ib]) << (8 - 2 * l)) & 0x300);
            let grid = IQ2S_GRID[idx].to_le_bytes();
            let s = signs[4 * ib + l];
            for j in 0..8 {
                o[j] = signed(dl * f32::from(grid[j]), s, j);
            }
        }
    }
}

/// IQ3_XXS (98 bytes): `d`, 64 grid indices (4 magnitudes each), then per 32 elements a u32 of
/// four 7-bit sign indices and a 4-bit scale.
fn dequant_iq3_xxs(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    let qs = &b[2..66];
    for (ib, out) in y.chunks_exact_mut(32).enumerate() {
        let aux = u32_at(b, 66 + 4 * ib);
        let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
        for (l, o) in out.chunks_exact_mut(8).enumerate() {
            let signs = KSIGNS_IQ2XS[((aux >> (7 * l)) & 127) as usize];
            let g1 = IQ3XXS_GRID[usize::from(qs[8 * ib + 2 * l])].to_le_bytes();
            let g2 = IQ3XXS_GRID[usize::from(qs[8 * ib + 2 * l + 1])].to_le_bytes();
            for j in 0..4 {
                o[j] = signed(db * f32::from(g1[j]), signs, j);
                o[j + 4] = signed(db * f32::from(g2[j]), signs, j + 4);
            }
        }
    }
}

/// IQ3_S (110 bytes): `d`, 64 grid index low bytes, 8 bytes of index high bits, 32 sign bytes,
/// 4 scale bytes (two 4-bit scales each).
fn dequant_iq3_s(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    let qs = &b[2..66];
    let qh = &b[66..74];
    let signs = &b[74..106];
    let scales = &b[106..110];
    for (ib, out) in y.chunks_exact_mut(32).enumerate() {
        let sc = (scales[ib / 2] >> (4 * (ib % 2))) & 0xF;
        let db = d * f32::from(1 + 2 * sc);
        let h = usize::from(qh[ib]);
        for (l, o) in out.chunks_exact_mut(8).enumerate() {
            let i1 = usize::from(qs[8 * ib + 2 * l]) | ((h << (8 - 2 * l)) & 256);
            let i2 = usize::from(qs[8 * ib + 2 * l + 1]) | ((h << (7 - 2 * l)) & 256);
            let g1 = IQ3S_GRID[i1].to_le_bytes();
            let g2 = IQ3S_GRID[i2].to_le_bytes();
            let s = signs[4 * ib + l];
            for j in 0..4 {
                o[j] = signed(db * f32::from(g1[j]), s, j);
                o[j + 4] = signed(db * f32::from(g2[j]), s, j + 4);
            }
        }
    }
}

/// IQ1_S (50 bytes): `d`, 32 grid index low bytes, 8 u16 (four 3-bit index highs, a 3-bit
/// scale, the delta sign).
fn dequant_iq1_s(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    let qs = &b[2..34];
    for (ib, out) in y.chunks_exact_mut(32).enumerate() {
        let qh = u16_at(b, 34 + 2 * ib);
        let dl = d * f32::from(2 * ((qh >> 12) & 7) + 1);
        let delta = if qh & 0x8000 != 0 {
            -IQ1S_DELTA
        } else {
            IQ1S_DELTA
        };
        for (l, o) in out.chunks_exact_mut(8).enumerate() {
            let idx = usize::from(qs[4 * ib + l]) | (usize::from((qh >> (3 * l)) & 7) << 8);
            let grid = IQ1S_GRID[idx].to_le_bytes();
            let lv = iq1_levels(dl, delta);
            for (o, &g) in o.iter_mut().zip(&grid) {
                *o = lv[usize::from(g.wrapping_add(1) & 3)];
            }
        }
    }
}

/// ggml's `dl * (g + delta)` for the grid values g = -1, 0, 1 (index g + 1; the unused fourth
/// entry keeps the lookup in bounds for any byte).
#[inline(always)]
fn iq1_levels(dl: f32, delta: f32) -> [f32; 4] {
    [
        dl * (-1.0 + delta),
        dl * (0.0 + delta),
        dl * (1.0 + delta),
        0.0,
    ]
}

/// IQ1_M (56 bytes): 32 grid index low bytes, 16 bytes (index highs and delta signs per 8),
/// 8 bytes of 3-bit scales whose top nibbles together form the f16 `d`.
fn dequant_iq1_m(b: &[u8], y: &mut [f32]) {
    let qs = &b[0..32];
    let qh = &b[32..48];
    let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
    let dbits =
        (sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000);
    let d = f16::from_bits(dbits).to_f32();
    for (ib, out) in y.chunks_exact_mut(32).enumerate() {
        let s = sc[ib / 2] >> (6 * (ib % 2));
        let dl1 = d * f32::from(2 * (s & 7) + 1);
        let dl2 = d * f32::from(2 * ((s >> 3) & 7) + 1);
        let (h0, h1) = (u16::from(qh[2 * ib]), u16::from(qh[2 * ib + 1]));
        let q = &qs[4 * ib..4 * ib + 4];
        let idx = [
            u16::from(q[0]) | ((h0 << 8) & 0x700),
            u16::from(q[1]) | ((h0 << 4) & 0x700),
            u16::from(q[2]) | ((h1 << 8) & 0x700),
            u16::from(q[3]) | ((h1 << 4) & 0x700),
        ];
        let delta = [
            if h0 & 0x08 != 0 {
                -IQ1S_DELTA
            } else {
                IQ1S_DELTA
            },
            if h0 & 0x80 != 0 {
                -IQ1S_DELTA
            } else {
                IQ1S_DELTA
            },
            if h1 & 0x08 != 0 {
                -IQ1S_DELTA
            } else {
                IQ1S_DELTA
            },
            if h1 & 0x80 != 0 {
                -IQ1S_DELTA
            } else {
                IQ1S_DELTA
            },
        ];
        for (l, o) in out.chunks_exact_mut(8).enumerate() {
            let lv = iq1_levels(if l < 2 { dl1 } else { dl2 }, delta[l]);
            let grid = IQ1S_GRID[usize::from(idx[l])].to_le_bytes();
            for (o, &g) in o.iter_mut().zip(&grid) {
                *o = lv[usize::from(g.wrapping_add(1) & 3)];
            }
        }
    }
}

/// IQ4_NL (18 bytes per 32): `d`, 16 bytes of 4-bit indices into [`KVALUES_IQ4NL`].
fn dequant_iq4_nl(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    let (lo, hi) = y.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[2..18]) {
        *l = d * f32::from(KVALUES_IQ4NL[usize::from(q & 0xF)]);
        *h = d * f32::from(KVALUES_IQ4NL[usize::from(q >> 4)]);
    }
}

/// IQ4_XS (136 bytes): `d`, u16 of 2-bit scale highs, 4 bytes of 4-bit scale lows, 128 bytes of
/// 4-bit indices.
fn dequant_iq4_xs(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    let scales_h = u16_at(b, 2);
    let scales_l = &b[4..8];
    for (ib, out) in y.chunks_exact_mut(32).enumerate() {
        let ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF)
            | ((((scales_h >> (2 * ib)) & 3) as u8) << 4);
        let dl = d * f32::from(i16::from(ls) - 32);
        let q = &b[8 + 16 * ib..8 + 16 * ib + 16];
        let (lo, hi) = out.split_at_mut(16);
        for ((l, h), &qb) in lo.iter_mut().zip(hi.iter_mut()).zip(q) {
            *l = dl * f32::from(KVALUES_IQ4NL[usize::from(qb & 0xF)]);
            *h = dl * f32::from(KVALUES_IQ4NL[usize::from(qb >> 4)]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// IQ4 quantizers (ggml's quantize_iq4_nl / quantize_iq4_xs without importance weights, which
// is what ggml_quantize_chunk runs)
// ---------------------------------------------------------------------------------------------

/// The search width ggml's `quantize_iq4_nl`/`quantize_iq4_xs` use.
const IQ4_NTRY: i32 = 7;

/// ggml's `GROUP_MAX_EPS`.
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `best_index_int8` over the 16 sorted IQ4 levels, as the ggml we match (node-llama-cpp
/// 3.22's libggml-base) has it: clamp to the end levels, binary search for the bracketing pair,
/// then the nearer of the two (ties go up). A NaN lands on the top level, as in ggml.
#[inline(always)]
fn best_index_iq4(x: f32) -> u8 {
    let val = |i: usize| f32::from(KVALUES_IQ4NL[i]);
    if x <= val(0) {
        return 0;
    }
    if x >= val(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < val(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - val(mu - 1) < val(mu) - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

/// The value of IQ4 level `i` (0..16).
#[inline(always)]
fn iq4_level(i: u8) -> i8 {
    KVALUES_IQ4NL[usize::from(i & 0xF)]
}

/// Per 32-element sub-block: the scale search of ggml's `quantize_row_iq4_nl_impl`. Writes the
/// level indices into `l_out` and returns the sub-block scale.
fn iq4_subblock_scale(xb: &[f32], l_out: &mut [u8]) -> f32 {
    let mut weight = [0f32; 32];
    for (w, &v) in weight.iter_mut().zip(xb) {
        *w = v * v;
    }
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in xb {
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
    let v0 = f32::from(KVALUES_IQ4NL[0]);
    let mut d = -max / v0;
    let mut id = 1.0 / d;
    let mut sumqx = 0.0f32;
    let mut sumq2 = 0.0f32;
    for ((&v, &w), lo) in xb.iter().zip(&weight).zip(l_out.iter_mut()) {
        let l = best_index_iq4(id * v);
        *lo = l;
        let q = f32::from(iq4_level(l));
        sumqx += w * q * v;
        sumq2 += w * q * q;
    }
    d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -IQ4_NTRY..=IQ4_NTRY {
        id = (itry + i32::from(KVALUES_IQ4NL[0])) as f32 / max;
        sumqx = 0.0;
        sumq2 = 0.0;
        for (&v, &w) in xb.iter().zip(&weight) {
            let q = f32::from(iq4_level(best_index_iq4(id * v)));
            sumqx += w * q * v;
            sumq2 += w * q * q;
        }
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

fn quant_iq4_nl(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; 32];
    let scale = iq4_subblock_scale(x, &mut l);
    y[0..2].copy_from_slice(&f16::from_f32(scale).to_bits().to_le_bytes());
    let id = if scale != 0.0 { 1.0 / scale } else { 0.0 };
    for (lo, &v) in l.iter_mut().zip(x) {
        *lo = best_index_iq4(id * v);
    }
    for j in 0..16 {
        y[2 + j] = l[j] | (l[16 + j] << 4);
    }
}

fn quant_iq4_xs(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 8];
    let mut max_scale = 0.0f32;
    let mut amax_scale = 0.0f32;
    for ib in 0..8 {
        let d = iq4_subblock_scale(&x[32 * ib..32 * ib + 32], &mut l[32 * ib..32 * ib + 32]);
        scales[ib] = d;
        if d.abs() > amax_scale {
            amax_scale = d.abs();
            max_scale = d;
        }
    }
    let d = -max_scale / 32.0;
    y[0..2].copy_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut scales_h = 0u16;
    let mut scales_l = [0u8; 4];
    for ib in 0..8 {
        let li = nearest_int(id * scales[ib]).clamp(-32, 31);
        let dl = d * li as f32;
        let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
        for (lo, &v) in l[32 * ib..32 * ib + 32]
            .iter_mut()
            .zip(&x[32 * ib..32 * ib + 32])
        {
            *lo = best_index_iq4(idl * v);
        }
        let li = (li + 32) as u8;
        scales_l[ib / 2] |= (li & 0xF) << (4 * (ib % 2));
        scales_h |= u16::from(li >> 4) << (2 * ib);
    }
    y[2..4].copy_from_slice(&scales_h.to_le_bytes());
    y[4..8].copy_from_slice(&scales_l);
    for i in 0..8 {
        for j in 0..16 {
            y[8 + 16 * i + j] = l[32 * i + j] | (l[32 * i + 16 + j] << 4);
        }
    }
}
