//! `hotpatch_quant::block`: one element changes, nothing else does (checked with ggml's C
//! dequantizer, which is independent of this crate), and the stored value is the nearest level.

use crate::kq_support::*;
use hotpatch_quant::block::{self, BlockError};
use hotpatch_quant::GgmlType;

/// Quantized types with a single-element editor, and the bits one element's code occupies.
const EDITABLE: [(GgmlType, u32); 14] = [
    (GgmlType::Q4_0, 4),
    (GgmlType::Q4_1, 4),
    (GgmlType::Q5_0, 5),
    (GgmlType::Q5_1, 5),
    (GgmlType::Q8_0, 8),
    (GgmlType::Q2_K, 2),
    (GgmlType::Q3_K, 3),
    (GgmlType::Q4_K, 4),
    (GgmlType::Q5_K, 5),
    (GgmlType::Q6_K, 6),
    (GgmlType::IQ4_NL, 4),
    (GgmlType::IQ4_XS, 4),
    (GgmlType::TQ2_0, 2),
    (GgmlType::MXFP4, 4),
];

#[test]
fn one_element_changes_and_nothing_else() {
    for (ty, code_bits) in EDITABLE {
        let ts = ty.type_size();
        let bs = ty.block_size();
        let (values, _) = fixture(0xB10C + ty.id() as u64, 256, 30);
        let blocks = ggml_quantize(ty.id(), &values);
        let before = ggml_dequantize(ty.id(), &blocks);
        let mut rng = Rng::new(ty.id() as u64);
        let mut patched = blocks.clone();
        let mut edits = Vec::new(); // (block, element, stored value)
        let mut refused = 0;
        for (bi, blk) in blocks.chunks_exact(ts).enumerate() {
            let idx = (rng.next_u64() % bs as u64) as usize;
            let cur = before[bi * bs + idx];
            let other = before[bi * bs + (rng.next_u64() % bs as u64) as usize];
            let target = match bi % 4 {
                0 => cur,
                1 => other,
                2 => cur + (rng.sym() as f32) * (cur.abs() + 1e-3),
                _ => cur * 0.5,
            };
            let ours = block::element(ty, blk, idx).expect("element");
            assert_eq!(
                ours.to_bits(),
                cur.to_bits(),
                "{ty}: block::element must decode like ggml (block {bi}, element {idx})"
            );
            match block::patch_element(ty, blk, idx, target).expect("patch") {
                Some(p) => {
                    assert_eq!(p.bytes.len(), ts);
                    let flipped: u32 = p
                        .bytes
                        .iter()
                        .zip(blk)
                        .map(|(a, b)| (a ^ b).count_ones())
                        .sum();
                    assert!(flipped <= code_bits, "{ty}: block {bi}: {flipped} bits flipped, one element's code has {code_bits}");
                    assert!(
                        (p.value - target).abs() <= (cur - target).abs(),
                        "{ty}: block {bi} element {idx}: stored {} is farther from {target} than the old {cur}",
                        p.value
                    );
                    if bi % 4 == 0 {
                        assert_eq!(
                            p.bytes, blk,
                            "{ty}: writing an element's own value must not change the block"
                        );
                    }
                    patched[bi * ts..(bi + 1) * ts].copy_from_slice(&p.bytes);
                    edits.push((bi, idx, p.value));
                }
                None => refused += 1,
            }
        }
        assert!(
            edits.len() > blocks.len() / ts / 2,
            "{ty}: most in-range edits must fit ({refused} refused)"
        );
        let after = ggml_dequantize(ty.id(), &patched);
        let mut edited = vec![None; after.len()];
        for &(bi, idx, v) in &edits {
            edited[bi * bs + idx] = Some(v);
        }
        for (i, (a, b)) in after.iter().zip(&before).enumerate() {
            match edited[i] {
                Some(v) => assert_eq!(
                    a.to_bits(),
                    v.to_bits(),
                    "{ty}: element {i} must decode (ggml C) to the returned value"
                ),
                None => assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{ty}: element {i} was not edited and must not move"
                ),
            }
        }
    }
}

/// A Q8_0 block with d = 0.5: levels are k/2 for k in -128..=127.
fn q8_0_block() -> Vec<u8> {
    let mut b = vec![0u8; 34];
    b[0..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
    b
}

#[test]
fn nearest_level_and_half_step_bounds_q8_0() {
    let b = q8_0_block();
    let at = |t: f32| {
        block::nearest(GgmlType::Q8_0, &b, 3, t)
            .unwrap()
            .map(|p| p.value)
    };
    assert_eq!(at(3.3), Some(3.5), "3.3 / 0.5 = 6.6 rounds to level 7");
    assert_eq!(at(3.2), Some(3.0), "6.4 rounds to level 6");
    assert_eq!(
        at(63.75),
        Some(63.5),
        "half a step above the top level (127/2) still fits"
    );
    assert_eq!(
        at(63.76),
        None,
        "more than half a step above the top level does not fit"
    );
    assert_eq!(
        at(-64.25),
        Some(-64.0),
        "half a step below the bottom level (-128/2) still fits"
    );
    assert_eq!(at(-64.3), None, "beyond half a step below the bottom level");
    assert_eq!(
        at(f32::NAN),
        None,
        "NaN is never representable in a quantized block"
    );
    assert_eq!(
        at(f32::INFINITY),
        None,
        "infinity is never representable in a quantized block"
    );
    let mut m = b.clone();
    assert_eq!(
        block::set_element(GgmlType::Q8_0, &mut m, 3, -7.0).unwrap(),
        Some(-7.0)
    );
    assert_eq!(m[2 + 3] as i8, -14, "the code is the i8 at qs[3]");
    assert_eq!(m[..5], b[..5], "d and the other codes are untouched");
    assert_eq!(m[6..], b[6..], "d and the other codes are untouched");
}

#[test]
fn nearest_on_non_uniform_iq4_nl_levels() {
    // d = 1: the levels are ggml's kvalues_iq4nl, -127 .. 113.
    let mut b = vec![0u8; 18];
    b[0..2].copy_from_slice(&half::f16::from_f32(1.0).to_le_bytes());
    let at = |t: f32| {
        block::nearest(GgmlType::IQ4_NL, &b, 20, t)
            .unwrap()
            .map(|p| p.value)
    };
    assert_eq!(at(0.0), Some(1.0), "0 is nearer 1 than -10");
    assert_eq!(
        at(-4.5),
        Some(-10.0),
        "-4.5 is equidistant from -10 (code 7) and 1 (code 8): the current code 0 is not among them, so the lower code wins"
    );
    assert_eq!(
        at(125.0),
        Some(113.0),
        "113 + (113 - 89)/2 = 125 is still within half the top step"
    );
    assert_eq!(at(125.5), None, "beyond half the top step");
}

#[test]
fn out_of_range_falls_back_to_requantize_with_side_effects() {
    let (values, _) = fixture(9, 256, 1);
    let x = &values[..256];
    let mut q = vec![0u8; GgmlType::Q4_K.type_size()];
    hotpatch_quant::quantize(GgmlType::Q4_K, x, &mut q).unwrap();
    assert_eq!(
        block::nearest(GgmlType::Q4_K, &q, 7, 1e6).unwrap(),
        None,
        "1e6 is far outside a N(0,1) block's levels"
    );
    let r = block::requantize_element(GgmlType::Q4_K, &q, 7, 1e6).unwrap();
    assert!(
        r.value(7) > 1e5,
        "the re-quantized block holds the big value (got {})",
        r.value(7)
    );
    assert!(
        !r.moved(7).is_empty(),
        "growing the scale by 1e6 moves the other elements, and they are reported"
    );
    let mut y = vec![0f32; 256];
    hotpatch_quant::dequantize(GgmlType::Q4_K, &r.bytes, &mut y).unwrap();
    assert_eq!(y, r.after, "after is what the new bytes decode to");
}

#[test]
fn refusals_are_typed() {
    let b = vec![0u8; GgmlType::Q4_K.type_size()];
    assert!(matches!(
        block::nearest(GgmlType::Q4_K, &b, 256, 0.0),
        Err(BlockError::Index {
            index: 256,
            block_size: 256,
            ..
        })
    ));
    assert!(matches!(
        block::nearest(GgmlType::Q4_K, &b[..100], 0, 0.0),
        Err(BlockError::BlockLength {
            expected: 144,
            got: 100,
            ..
        })
    ));
    for ty in [
        GgmlType::IQ2_XXS,
        GgmlType::IQ1_S,
        GgmlType::Q8_K,
        GgmlType::TQ1_0,
    ] {
        let b = vec![0u8; ty.type_size()];
        assert!(!block::supports(ty), "{ty} has no single-element editor");
        assert_eq!(
            block::nearest(ty, &b, 0, 0.0),
            Err(BlockError::Unsupported { ty })
        );
    }
}

#[test]
fn float_elements_round_like_the_float_codecs() {
    let f16_one = half::f16::from_f32(1.0).to_le_bytes().to_vec();
    let p = block::patch_element(GgmlType::F16, &f16_one, 0, 1.0004)
        .unwrap()
        .expect("finite f16");
    assert_eq!(
        p.value, 1.0,
        "1.0004 is within half an f16 ulp (2^-11) of 1.0"
    );
    assert_eq!(p.bytes, f16_one, "so the element keeps its bits");
    let p = block::patch_element(GgmlType::F16, &f16_one, 0, 1.25)
        .unwrap()
        .expect("finite f16");
    assert_eq!(
        (p.value, p.bytes),
        (1.25, half::f16::from_f32(1.25).to_le_bytes().to_vec())
    );
    assert_eq!(
        block::nearest(GgmlType::F16, &f16_one, 0, 70000.0).unwrap(),
        None,
        "70000 overflows f16 to infinity"
    );
    let bf = half::bf16::from_f32(1.0).to_le_bytes().to_vec();
    let p = block::patch_element(GgmlType::BF16, &bf, 0, std::f32::consts::PI)
        .unwrap()
        .expect("finite bf16");
    assert_eq!(p.value, 3.140625, "pi rounds to the nearest bf16, 3.140625");
    let f = 1.0f32.to_le_bytes().to_vec();
    let p = block::patch_element(GgmlType::F32, &f, 0, -2.5e-40)
        .unwrap()
        .expect("any f32");
    assert_eq!(
        (p.value.to_bits(), p.bytes),
        (
            (-2.5e-40f32).to_bits(),
            (-2.5e-40f32).to_le_bytes().to_vec()
        )
    );
    let p = block::patch_element(GgmlType::F32, &f, 0, f32::NAN)
        .unwrap()
        .expect("an f32 element can hold NaN");
    assert!(p.value.is_nan());
}
