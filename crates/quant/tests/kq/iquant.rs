//! IQ types: dequantize bit-exact with ggml's C and gguf-py; IQ4_NL / IQ4_XS quantize byte-exact
//! with ggml (`ggml_quantize_chunk` without an importance matrix).

use crate::kq_support::*;
use hotpatch_quant::{dequantize, quantize, GgmlType};

const IQ_TYPES: [GgmlType; 9] = [
    GgmlType::IQ1_S,
    GgmlType::IQ1_M,
    GgmlType::IQ2_XXS,
    GgmlType::IQ2_XS,
    GgmlType::IQ2_S,
    GgmlType::IQ3_XXS,
    GgmlType::IQ3_S,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
];

/// `n` blocks of random bytes whose f16 super-scale is a finite random value (every other bit
/// pattern — grid indices, signs, sub-scales — is exercised as it comes).
fn random_blocks(ty: GgmlType, n: usize, rng: &mut Rng) -> Vec<u8> {
    let ts = ty.type_size();
    let mut out = Vec::with_capacity(n * ts);
    for _ in 0..n {
        let mut b: Vec<u8> = (0..ts).map(|_| rng.next_u64() as u8).collect();
        let d = half::f16::from_f32((rng.normal() * 0.01) as f32).to_bits();
        if ty == GgmlType::IQ1_M {
            // IQ1_M spreads d over the top nibbles of its four u16 scale words.
            for k in 0..4 {
                let at = 48 + 2 * k;
                let w = u16::from_le_bytes([b[at], b[at + 1]]) & 0x0FFF
                    | (((d >> (4 * k)) & 0xF) << 12);
                b[at..at + 2].copy_from_slice(&w.to_le_bytes());
            }
        } else {
            b[0..2].copy_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&b);
    }
    out
}

#[test]
fn iq_dequantize_matches_ggml_and_gguf_py() {
    let mut rng = Rng::new(77);
    for ty in IQ_TYPES {
        let mut blocks = random_blocks(ty, 3000, &mut rng);
        // Fully random blocks too: f16 NaN, infinity and subnormal scales included.
        blocks.extend((0..2000 * ty.type_size()).map(|_| rng.next_u64() as u8));
        if ty.can_quantize() {
            let (values, _) = fixture(ty.id() as u64, 256, 20);
            blocks.extend(ggml_quantize(ty.id(), &values));
        }
        let n = blocks.len() / ty.type_size() * ty.block_size();
        let mut ours = vec![0f32; n];
        dequantize(ty, &blocks, &mut ours).expect("dequantize");
        assert_bits_eq(
            &format!("{ty} dequantize vs ggml C"),
            &ours,
            &ggml_dequantize(ty.id(), &blocks),
        );
        assert_bits_eq_but_nan_sign(
            &format!("{ty} dequantize vs gguf-py"),
            &ours,
            &gguf_dequantize(ty.id(), &blocks),
        );
    }
}

fn check_iq4_quantize(ty: GgmlType, seed: u64) {
    check_quantize_like_ggml(ty, seed, 700);
}

#[test]
fn iq4_nl_quantize_matches_ggml() {
    check_iq4_quantize(GgmlType::IQ4_NL, 20);
}

#[test]
fn iq4_xs_quantize_matches_ggml() {
    check_iq4_quantize(GgmlType::IQ4_XS, 23);
}

#[test]
fn grid_iq_types_refuse_to_quantize() {
    for ty in IQ_TYPES {
        let mut q = vec![0u8; ty.row_bytes(256).expect("256 is whole blocks")];
        let res = quantize(ty, &[0.5; 256], &mut q);
        assert_eq!(
            res.is_ok(),
            ty.can_quantize(),
            "{ty}: quantize must succeed exactly when can_quantize() says so"
        );
    }
}
