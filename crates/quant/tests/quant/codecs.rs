//! The codecs of float.rs and legacy.rs against gguf-py and the real ggml, byte for byte and
//! bit for bit, on data generated here: random weights at many scales, edge-case blocks
//! (zeros, huge, tiny, subnormal, one-signed, ties), NaN/infinity blocks, and random bytes.

use crate::common::data::{edge_blocks, nonfinite_blocks, random_blocks, Rng};
use crate::common::oracle::{assert_same_bits, assert_same_bytes, run_python, Batch, Oracle};
use hotpatch_quant::{dequantize, quantize, GgmlType};

use GgmlType::*;

/// Types gguf-py quantizes (and so do we).
const QUANTIZE: [GgmlType; 11] = [
    F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, TQ1_0, TQ2_0, MXFP4,
];
/// Block types gguf-py dequantizes, from legacy.rs.
const DEQUANTIZE_BLOCKS: [GgmlType; 9] = [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, TQ1_0, TQ2_0, MXFP4, NVFP4];
/// Plain types (one element per block).
const PLAIN: [GgmlType; 8] = [F32, F16, BF16, F64, I8, I16, I32, I64];

fn ours_q(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; ty.row_bytes(x.len() as u64).expect("whole blocks")];
    quantize(ty, x, &mut q).unwrap_or_else(|e| panic!("{ty}: {e}"));
    q
}

fn ours_dq(ty: GgmlType, b: &[u8]) -> Vec<f32> {
    let mut y = vec![0f32; b.len() / ty.type_size() * ty.block_size()];
    dequantize(ty, b, &mut y).unwrap_or_else(|e| panic!("{ty}: {e}"));
    y
}

/// Finite test values for `ty`: random blocks then the edge-case blocks.
fn finite_values(ty: GgmlType, seed: u64) -> Vec<f32> {
    let bs = ty.block_size().max(32);
    let n = if bs == 32 { 2048 } else { 256 };
    let mut v = random_blocks(seed, bs, n);
    v.extend(edge_blocks(bs));
    v
}

#[test]
fn quantize_matches_gguf_py_on_finite_and_nonfinite_values() {
    let mut b = Batch::new();
    let jobs: Vec<_> = QUANTIZE
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let mut v = finite_values(t, 100 + i as u64);
            v.extend(nonfinite_blocks(t.block_size().max(32)));
            let j = b.quantize(Oracle::GgufPy, t, &v);
            (t, v, j)
        })
        .collect();
    let r = b.run();
    for (t, v, j) in jobs {
        let ours = ours_q(t, &v);
        assert_same_bytes(t, "quantize vs gguf-py", &ours, r.bytes(j), Some(&v));
    }
}

#[test]
fn quantize_matches_ggml_reference_on_finite_values() {
    // ggml's C quantizers skip NaN where numpy propagates it, so only finite data here; and an
    // all -0.0 block gets d = -0.0 from ggml but +0.0 from gguf-py (we follow gguf-py), so
    // that one edge block is left out.
    let mut b = Batch::new();
    let jobs: Vec<_> = QUANTIZE
        .iter()
        .chain(&[Q8_1])
        .filter(|&&t| t != F32) // ggml has no from_float for F32 (it is a copy)
        .enumerate()
        .map(|(i, &t)| {
            let bs = t.block_size().max(32);
            let mut v = finite_values(t, 200 + i as u64);
            let neg_zero = v.len() - edge_blocks(bs).len() + bs;
            v.drain(neg_zero..neg_zero + bs);
            let j = b.quantize(Oracle::Ggml, t, &v);
            (t, v, j)
        })
        .collect();
    let r = b.run();
    for (t, v, j) in jobs {
        let ours = ours_q(t, &v);
        assert_same_bytes(t, "quantize vs ggml", &ours, r.bytes(j), Some(&v));
    }
}

#[test]
fn dequantize_matches_gguf_py_and_ggml_on_random_bytes_and_real_blocks() {
    // Random bytes reach every code, every scale (including f16 NaN/inf and subnormal scales)
    // and every bit pattern of the plain types; quantized real data adds typical blocks.
    let mut rng = Rng::new(42);
    let mut inputs = Vec::new();
    for &t in DEQUANTIZE_BLOCKS.iter().chain(&PLAIN) {
        let n_blocks = if t.block_size() == 1 { 65536 } else { 4096 };
        let mut bytes = rng.bytes(n_blocks * t.type_size());
        if t.can_quantize() {
            bytes.extend(ours_q(t, &finite_values(t, 300)));
        }
        inputs.push((t, bytes));
    }
    let mut b = Batch::new();
    let jobs: Vec<_> = inputs
        .iter()
        .map(|(t, bytes)| {
            let py = b.dequantize(Oracle::GgufPy, *t, bytes);
            // ggml has a to_float for these (not for F32, F64 and the integer types).
            let has_c = !matches!(t, F32 | F64 | I8 | I16 | I32 | I64);
            let c = has_c.then(|| b.dequantize(Oracle::Ggml, *t, bytes));
            (py, c)
        })
        .collect();
    let r = b.run();
    for ((t, bytes), (py, c)) in inputs.iter().zip(jobs) {
        let ours = ours_dq(*t, bytes);
        let mut py = r.floats(py).to_vec();
        if matches!(t, Q4_1 | Q5_1) {
            // When both d and m are NaN, `d·q + m` is a NaN whose payload numpy takes from d
            // or from m depending on the array size (its SIMD and scalar loops order the
            // operands differently); ggml and small gguf-py calls take d's, as we do. Those
            // blocks are compared as "all NaN" here, and bit for bit against ggml below.
            let bs = t.block_size();
            for (i, blk) in bytes.chunks(t.type_size()).enumerate() {
                let nan = |at: usize| u16::from_le_bytes([blk[at], blk[at + 1]]) & 0x7fff > 0x7c00;
                let ys = &mut py[i * bs..(i + 1) * bs];
                if nan(0) && nan(2) {
                    assert!(
                        ys.iter().all(|y| y.is_nan()),
                        "{t}: NaN d and m give NaN everywhere"
                    );
                    ys.copy_from_slice(&ours[i * bs..(i + 1) * bs]);
                }
            }
        }
        assert_same_bits(*t, "dequantize vs gguf-py", &ours, &py, Some(bytes));
        if let Some(c) = c {
            let mut ours = ours;
            if *t == F16 {
                // ggml widens a signalling half NaN to a quiet f32 NaN; numpy (and we) keep it
                // signalling. Same payload otherwise.
                for y in ours.iter_mut().filter(|y| y.is_nan()) {
                    *y = f32::from_bits(y.to_bits() | 0x0040_0000);
                }
            }
            assert_same_bits(*t, "dequantize vs ggml", &ours, r.floats(c), Some(bytes));
        }
    }
}

#[test]
fn f16_conversions_match_numpy_everywhere() {
    // Every half bit pattern to f32, and f32 values at and around every rounding boundary
    // between consecutive halves (midpoints ± 1 ulp), plus NaNs with various payloads.
    let all: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
    let exact = ours_dq(F16, &all);
    let mut probes = Vec::new();
    for w in exact
        .windows(2)
        .filter(|w| w[0].is_finite() && w[1].is_finite())
    {
        let mid = (f64::from(w[0]) + f64::from(w[1])) / 2.0;
        let m = mid as f32;
        probes.extend([
            w[0],
            m,
            f32::from_bits(m.to_bits().wrapping_add(1)),
            f32::from_bits(m.to_bits().wrapping_sub(1)),
        ]);
    }
    probes.extend([
        65504.0,
        65519.99,
        65520.0,
        65536.0,
        1e10,
        f32::MAX,
        f32::INFINITY,
    ]);
    for nan in [
        0x7f80_0001u32,
        0x7fc0_0000,
        0xffc0_1234,
        0x7f80_2000,
        0x7fa0_0000,
        0xff80_0fff,
    ] {
        probes.push(f32::from_bits(nan));
    }
    let neg: Vec<f32> = probes.iter().map(|v| -v).collect();
    probes.extend(neg);
    let mut b = Batch::new();
    let dq = b.dequantize(Oracle::GgufPy, F16, &all);
    let q = b.quantize(Oracle::GgufPy, F16, &probes);
    let r = b.run();
    assert_same_bits(F16, "all halves vs numpy", &exact, r.floats(dq), Some(&all));
    assert_same_bytes(
        F16,
        "f32 → f16 vs numpy",
        &ours_q(F16, &probes),
        r.bytes(q),
        Some(&probes),
    );
}

#[test]
fn q8_1_dequantizes_as_d_times_q() {
    // Neither gguf-py nor ggml (no to_float) dequantizes Q8_1; its meaning is d·q with d the
    // f16 at offset 0 (s = d·Σq at offset 2 is a by-product for dot products). Checked with
    // an independent numpy expression over random blocks.
    let bytes = Rng::new(9).bytes(1024 * 36);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("q8_1.bin");
    std::fs::write(&path, &bytes).expect("write");
    let out = run_python(&format!(
        "import numpy as np\nb = np.fromfile('{}', dtype=np.uint8).reshape(-1, 36)\n\
         d = b[:, 0:2].copy().view(np.float16).astype(np.float32)\n\
         q = b[:, 4:].copy().view(np.int8).astype(np.float32)\n\
         print((d * q).reshape(-1).view(np.uint32).tobytes().hex())",
        path.display()
    ));
    let want: Vec<f32> = (0..out.trim().len() / 8)
        .map(|i| {
            let b = u32::from_str_radix(&out.trim()[8 * i..8 * i + 8], 16).expect("hex");
            f32::from_bits(b.swap_bytes())
        })
        .collect();
    assert_same_bits(
        Q8_1,
        "dequantize vs numpy d·q",
        &ours_dq(Q8_1, &bytes),
        &want,
        Some(&bytes),
    );
}

#[test]
fn requantizing_dequantized_blocks_gives_the_same_bytes() {
    // For these types a quantized block is a fixed point of quantize∘dequantize, which is what
    // lets an edit re-encode only the block it touches (NOTES.md). Verified on random data,
    // edge cases and NaN/infinity blocks. It holds for every block whose stored scale is
    // finite and nonzero; degenerate blocks are the exception: a scale that rounds to ±0 in
    // f16 (all-zero, tiny or subnormal input) decodes to all zeros, which re-encode with the
    // other zero sign or other codes; a scale that overflows to ±inf (or a NaN input) decodes
    // to non-finite values. Those must still decode to the same values after re-encoding.
    for (i, &t) in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, TQ1_0, TQ2_0, MXFP4]
        .iter()
        .enumerate()
    {
        let (bs, ts) = (t.block_size(), t.type_size());
        let n_random = finite_values(t, 0).len() / bs - edge_blocks(bs).len() / bs;
        let mut v = finite_values(t, 400 + i as u64);
        v.extend(nonfinite_blocks(bs));
        let q = ours_q(t, &v);
        let back = ours_dq(t, &q);
        let q2 = ours_q(t, &back);
        let back2 = ours_dq(t, &q2);
        let mut checked = 0;
        for (blk, (a, b)) in q.chunks(ts).zip(q2.chunks(ts)).enumerate() {
            let vals = &back[blk * bs..(blk + 1) * bs];
            if vals.iter().any(|x| !x.is_finite()) {
                continue; // the scale overflowed f16 (or the input had NaN): nothing to keep
            }
            if vals.iter().all(|x| *x == 0.0) {
                let vals2 = &back2[blk * bs..(blk + 1) * bs];
                assert!(
                    vals2.iter().all(|x| *x == 0.0),
                    "{t} block {blk}: zeros re-encode as zeros"
                );
                continue;
            }
            let input = &v[blk * bs..(blk + 1) * bs];
            let amax = input.iter().fold(0f32, |m, x| m.max(x.abs()));
            if t == MXFP4 && amax.log2().fract() == 0.0 && amax.to_bits() & 0x007f_ffff != 0 {
                // gguf-py's (and ggml's) shared exponent is floor(log2f(amax)); just below a
                // power of two log2f rounds up to the integer, so the exponent is one too high
                // and the re-quantized (smaller) maximum picks the lower exponent. Such a
                // block (here: values near f32::MAX) is not a fixed point.
                continue;
            }
            checked += 1;
            if t == Q8_1 {
                // Q8_1's s = d·Σq is computed from the unrounded d, which re-quantizing cannot
                // recover: d and the quants round-trip, s may differ in its last bit.
                assert_eq!(
                    (&a[..2], &a[4..]),
                    (&b[..2], &b[4..]),
                    "{t} block {blk}: d and qs round-trip"
                );
                continue;
            }
            assert_eq!(
                a,
                b,
                "{t} block {blk} (input {:?}) changes when re-quantized",
                &v[blk * bs..(blk + 1) * bs]
            );
        }
        assert!(
            checked * 10 >= n_random * 8,
            "{t}: only {checked} of {n_random} random blocks had a finite nonzero scale"
        );
    }
}
