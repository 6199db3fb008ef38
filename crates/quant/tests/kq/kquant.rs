//! Q2_K..Q6_K and Q8_K: quantize byte-exact with ggml's `quantize_row_*_ref`, dequantize
//! bit-exact with ggml's C and gguf-py.

use crate::kq_support::*;
use hotpatch_quant::{dequantize, quantize, GgmlType};

const K_TYPES: [GgmlType; 6] = [
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
];

/// 700 blocks of each of the 15 families: 10 500 blocks per type.
const BLOCKS_PER_DIST: usize = 700;

fn check_quantize(ty: GgmlType, seed: u64) {
    check_quantize_like_ggml(ty, seed, BLOCKS_PER_DIST);
}

fn check_dequantize(ty: GgmlType, seed: u64) {
    // ggml-produced blocks (realistic) plus blocks of random bytes (every bit pattern of the
    // quants and scales) with a finite random d/dmin.
    let (values, _) = fixture(seed, 256, 40);
    let mut blocks = ggml_quantize(ty.id(), &values);
    let ts = ty.type_size();
    let mut rng = Rng::new(seed ^ 0xD15EA5E);
    for _ in 0..2000 {
        let mut b: Vec<u8> = (0..ts).map(|_| rng.next_u64() as u8).collect();
        let finite_half =
            |r: &mut Rng| half::f16::from_f32((r.normal() * 0.05) as f32).to_le_bytes();
        match ty {
            GgmlType::Q2_K => {
                b[80..82].copy_from_slice(&finite_half(&mut rng));
                b[82..84].copy_from_slice(&finite_half(&mut rng));
            }
            GgmlType::Q3_K => b[108..110].copy_from_slice(&finite_half(&mut rng)),
            GgmlType::Q4_K | GgmlType::Q5_K => {
                b[0..2].copy_from_slice(&finite_half(&mut rng));
                b[2..4].copy_from_slice(&finite_half(&mut rng));
            }
            GgmlType::Q6_K => b[208..210].copy_from_slice(&finite_half(&mut rng)),
            GgmlType::Q8_K => {
                b[0..4].copy_from_slice(&((rng.normal() * 0.01) as f32).to_le_bytes())
            }
            _ => unreachable!(),
        }
        blocks.extend_from_slice(&b);
    }
    // Fully random blocks too: f16 NaN, infinity and subnormal scales included.
    for _ in 0..2000 {
        blocks.extend((0..ts).map(|_| rng.next_u64() as u8));
    }
    let mut ours = vec![0f32; blocks.len() / ts * 256];
    dequantize(ty, &blocks, &mut ours).expect("dequantize");
    assert_bits_eq(
        &format!("{ty} dequantize vs ggml C"),
        &ours,
        &ggml_dequantize(ty.id(), &blocks),
    );
    if ty != GgmlType::Q8_K {
        // gguf-py has no Q8_K.
        assert_bits_eq(
            &format!("{ty} dequantize vs gguf-py"),
            &ours,
            &gguf_dequantize(ty.id(), &blocks),
        );
    }
}

#[test]
fn q2_k_quantize_matches_ggml() {
    check_quantize(GgmlType::Q2_K, 2);
}
#[test]
fn q3_k_quantize_matches_ggml() {
    check_quantize(GgmlType::Q3_K, 3);
}
#[test]
fn q4_k_quantize_matches_ggml() {
    check_quantize(GgmlType::Q4_K, 4);
}
#[test]
fn q5_k_quantize_matches_ggml() {
    check_quantize(GgmlType::Q5_K, 5);
}
#[test]
fn q6_k_quantize_matches_ggml() {
    check_quantize(GgmlType::Q6_K, 6);
}
#[test]
fn q8_k_quantize_matches_ggml() {
    check_quantize(GgmlType::Q8_K, 8);
}

#[test]
fn k_dequantize_matches_ggml_and_gguf_py() {
    for (i, ty) in K_TYPES.into_iter().enumerate() {
        check_dequantize(ty, 100 + i as u64);
    }
}

#[test]
fn k_codecs_reject_partial_blocks() {
    for ty in K_TYPES {
        let mut out = vec![0f32; 256];
        let err = dequantize(ty, &vec![0u8; ty.type_size() - 1], &mut out).unwrap_err();
        assert!(
            matches!(err, hotpatch_quant::CodecError::Length { .. }),
            "{ty}: a short block must be a Length error, got {err}"
        );
        let mut q = vec![0u8; ty.type_size()];
        let err = quantize(ty, &[0.0; 255], &mut q).unwrap_err();
        assert!(
            matches!(err, hotpatch_quant::CodecError::Length { .. }),
            "{ty}: 255 values must be a Length error, got {err}"
        );
    }
}

/// Blocks with NaN, ±infinity and f32::MAX among normal values.
fn nonfinite_values() -> Vec<f32> {
    let mut rng = Rng::new(0xBAD);
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        -f32::MAX,
    ];
    let mut v = Vec::new();
    for (k, &s) in specials.iter().enumerate() {
        for b in 0..4 {
            let start = v.len();
            v.extend((0..256).map(|_| rng.normal() as f32));
            if b == 3 {
                v[start..start + 256].iter_mut().for_each(|x| *x = s);
            } else {
                v[start + (k * 37 + b * 101) % 256] = s;
            }
        }
    }
    v
}

#[test]
fn nonfinite_inputs_quantize_like_ggml() {
    let values = nonfinite_values();
    for ty in K_TYPES
        .into_iter()
        .chain([GgmlType::IQ4_NL, GgmlType::IQ4_XS])
    {
        let mut ours = vec![0u8; ty.row_bytes(values.len() as u64).expect("whole blocks")];
        quantize(ty, &values, &mut ours).expect("quantize never refuses non-finite values");
        let theirs = ggml_quantize(ty.id(), &values);
        let per = 256 / ty.block_size() * ty.type_size();
        for (b, (o, t)) in ours.chunks(per).zip(theirs.chunks(per)).enumerate() {
            assert_eq!(
                o,
                t,
                "{ty}: 256-value run {b} (non-finite family {}) differs from ggml",
                b / 4
            );
        }
    }
}
