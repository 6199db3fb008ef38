//! `hotpatch_core::tensor::encode_into`, the quant-aware store every tensor edit goes through:
//! one element changes and nothing else does when the value lies on the element's grid (checked
//! with ggml's C dequantizer, independent of this workspace's codecs), the stored value is the
//! nearest level within half a step of the grid's ends, beyond that the block is re-quantized
//! and the side effects are reported, and float elements round as the float codecs round.
//! (These tests were the single-element editor's, `hotpatch_quant::block`, which this module
//! replaced.)

use hotpatch_core::tensor::{encode_into, EncodeError, EncodeReport};
use hotpatch_core::GgmlType;
use hotpatch_quant::{dequantize, quantize};
use hotpatch_testkit::Rng;

/// Quantized types whose elements own their bits, and how many bits one element's code has.
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

/// ggml's C dequantizer (`tests/oracle/ggml.py` through the quant crate's runner).
fn ggml_dequantize(ty: GgmlType, blocks: &[u8]) -> Vec<f32> {
    let dir = hotpatch_testkit::tempdir();
    let (inp, out) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::write(&inp, blocks).expect("write oracle input");
    hotpatch_testkit::run_py(
        "crates/quant/tests/kq/oracle.py",
        &[
            "dequant_ggml",
            &ty.id().to_string(),
            inp.to_str().expect("utf-8 path"),
            out.to_str().expect("utf-8 path"),
        ],
    );
    std::fs::read(&out)
        .expect("read oracle output")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn decode(ty: GgmlType, block: &[u8]) -> Vec<f32> {
    let mut v = vec![0f32; block.len() / ty.type_size() * ty.block_size()];
    dequantize(ty, block, &mut v).expect("dequantize");
    v
}

/// Asks for `value` at element `i` of one block alone; returns the new bytes and the report.
fn store(
    ty: GgmlType,
    block: &[u8],
    i: usize,
    value: f32,
) -> Result<(Vec<u8>, EncodeReport), EncodeError> {
    let old = decode(ty, block);
    let mut new = old.clone();
    new[i] = value;
    let mut selected = vec![false; old.len()];
    selected[i] = true;
    let mut bytes = block.to_vec();
    let report = encode_into(ty, &mut bytes, 0, &old, &new, &selected)?;
    Ok((bytes, report))
}

/// The value stored at `i` when it fits the block's current scales, `None` when the block had
/// to be re-quantized.
fn kept(ty: GgmlType, block: &[u8], i: usize, value: f32) -> Option<f32> {
    let (bytes, report) = store(ty, block, i, value).expect("store");
    (report.blocks_requantized == 0).then(|| decode(ty, &bytes)[i])
}

#[test]
fn one_element_changes_and_nothing_else() {
    for (ty, code_bits) in EDITABLE {
        let (ts, bs) = (ty.type_size(), ty.block_size());
        let mut rng = Rng::new(0xB10C + ty.id() as u64);
        let values: Vec<f32> = (0..bs * 24)
            .map(|k| rng.sym() as f32 * [0.02, 1.0, 300.0][k / bs % 3])
            .collect();
        let mut blocks = vec![0u8; values.len() / bs * ts];
        quantize(ty, &values, &mut blocks).expect("quantize");
        let before = ggml_dequantize(ty, &blocks);
        let mut patched = blocks.clone();
        let mut edits = Vec::new(); // (block, element, stored value)
        for (bi, blk) in blocks.chunks_exact(ts).enumerate() {
            let idx = (rng.next_u64() % bs as u64) as usize;
            let cur = before[bi * bs + idx];
            let other = before[bi * bs + (rng.next_u64() % bs as u64) as usize];
            let target = match bi % 4 {
                0 => cur,
                1 => other,
                2 => cur + rng.sym() as f32 * (cur.abs() + 1e-3),
                _ => cur * 0.5,
            };
            let (bytes, report) = store(ty, blk, idx, target).expect("store");
            if report.blocks_requantized > 0 {
                continue; // outside the grid: the re-quantizing path, tested below
            }
            let stored = decode(ty, &bytes)[idx];
            let flipped: u32 = bytes
                .iter()
                .zip(blk)
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert!(
                flipped <= code_bits,
                "{ty}: block {bi}: {flipped} bits flipped, one element's code has {code_bits}"
            );
            assert!(
                (stored - target).abs() <= (cur - target).abs(),
                "{ty}: block {bi} element {idx}: stored {stored} is farther from {target} than the old {cur}"
            );
            if bi % 4 == 0 {
                assert_eq!(
                    bytes, blk,
                    "{ty}: writing an element's own value must not change the block"
                );
            }
            patched[bi * ts..(bi + 1) * ts].copy_from_slice(&bytes);
            edits.push((bi, idx, stored));
        }
        assert!(
            edits.len() > blocks.len() / ts / 2,
            "{ty}: most in-range edits must keep the scales ({} of {})",
            edits.len(),
            blocks.len() / ts
        );
        let after = ggml_dequantize(ty, &patched);
        let mut edited = vec![None; after.len()];
        for &(bi, idx, v) in &edits {
            edited[bi * bs + idx] = Some(v);
        }
        for (i, (a, b)) in after.iter().zip(&before).enumerate() {
            match edited[i] {
                Some(v) => assert_eq!(
                    a.to_bits(),
                    v.to_bits(),
                    "{ty}: element {i} must decode (ggml C) to the stored value"
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
    let at = |t: f32| kept(GgmlType::Q8_0, &b, 3, t);
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
    for v in [f32::NAN, f32::INFINITY] {
        assert!(
            matches!(
                store(GgmlType::Q8_0, &b, 3, v),
                Err(EncodeError::NonFinite { index: 3, .. })
            ),
            "{v} is never representable in a quantized block"
        );
    }
    let (m, _) = store(GgmlType::Q8_0, &b, 3, -7.0).unwrap();
    assert_eq!(m[2 + 3] as i8, -14, "the code is the i8 at qs[3]");
    assert_eq!(m[..5], b[..5], "d and the other codes are untouched");
    assert_eq!(m[6..], b[6..], "d and the other codes are untouched");
}

#[test]
fn nearest_on_non_uniform_iq4_nl_levels() {
    // d = 1: the levels are ggml's kvalues_iq4nl, -127 .. 113.
    let mut b = vec![0u8; 18];
    b[0..2].copy_from_slice(&half::f16::from_f32(1.0).to_le_bytes());
    let at = |t: f32| kept(GgmlType::IQ4_NL, &b, 20, t);
    assert_eq!(at(0.0), Some(1.0), "0 is nearer 1 than -10");
    assert_eq!(
        at(-4.5),
        Some(-10.0),
        "-4.5 is equidistant from -10 (code 7) and 1 (code 8): the lower code wins"
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
    let mut rng = Rng::new(9);
    let x: Vec<f32> = (0..256).map(|_| rng.sym() as f32).collect();
    let mut q = vec![0u8; GgmlType::Q4_K.type_size()];
    quantize(GgmlType::Q4_K, &x, &mut q).unwrap();
    let (bytes, report) = store(GgmlType::Q4_K, &q, 7, 1e6).unwrap();
    assert_eq!(
        report.blocks_requantized, 1,
        "1e6 is far outside the block's levels: it is re-quantized"
    );
    let y = decode(GgmlType::Q4_K, &bytes);
    assert!(
        y[7] > 1e5,
        "the re-quantized block holds the big value (got {})",
        y[7]
    );
    assert!(
        report.side_effect_count > 0 && report.side_effects.iter().all(|s| s.index != 7),
        "growing the scale by 1e6 moves the other elements, and they are reported"
    );
    for s in &report.side_effects {
        assert_eq!(
            y[s.index as usize].to_bits(),
            s.after.to_bits(),
            "after is what the new bytes decode to"
        );
    }
}

#[test]
fn float_elements_round_like_the_float_codecs() {
    let f16_one = half::f16::from_f32(1.0).to_le_bytes().to_vec();
    let (bytes, _) = store(GgmlType::F16, &f16_one, 0, 1.0004).unwrap();
    assert_eq!(
        (decode(GgmlType::F16, &bytes)[0], &bytes),
        (1.0, &f16_one),
        "1.0004 is within half an f16 ulp (2^-11) of 1.0, so the element keeps its bits"
    );
    let (bytes, _) = store(GgmlType::F16, &f16_one, 0, 1.25).unwrap();
    assert_eq!(bytes, half::f16::from_f32(1.25).to_le_bytes().to_vec());
    assert!(
        matches!(
            store(GgmlType::F16, &f16_one, 0, 70000.0),
            Err(EncodeError::TooLarge { .. })
        ),
        "70000 overflows f16 to infinity"
    );
    let bf = half::bf16::from_f32(1.0).to_le_bytes().to_vec();
    let (bytes, _) = store(GgmlType::BF16, &bf, 0, std::f32::consts::PI).unwrap();
    assert_eq!(
        decode(GgmlType::BF16, &bytes)[0],
        3.140625,
        "pi rounds to the nearest bf16, 3.140625"
    );
    let f = 1.0f32.to_le_bytes().to_vec();
    let (bytes, _) = store(GgmlType::F32, &f, 0, -2.5e-40).unwrap();
    assert_eq!(bytes, (-2.5e-40f32).to_le_bytes().to_vec());
    let (bytes, _) = store(GgmlType::F32, &f, 0, f32::NAN).unwrap();
    assert!(
        decode(GgmlType::F32, &bytes)[0].is_nan(),
        "an f32 element can hold NaN"
    );
}
