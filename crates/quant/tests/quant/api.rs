//! The public API around the codecs: length and range errors, the per-block helpers used by
//! the editor, `dequantize_range`, and the `can_*` flags telling the truth.

use crate::common::data::{random_blocks, Rng};
use hotpatch_quant::{
    block_of, dequantize, dequantize_block, dequantize_range, quantize, quantize_block, CodecError,
    GgmlType,
};

fn quantized(ty: GgmlType, n_blocks: usize, seed: u64) -> Vec<u8> {
    if !ty.can_quantize() {
        return Rng::new(seed).bytes(n_blocks * ty.type_size());
    }
    let v = random_blocks(seed, ty.block_size(), n_blocks);
    let mut q = vec![0u8; n_blocks * ty.type_size()];
    quantize(ty, &v, &mut q).expect("quantize");
    q
}

#[test]
fn can_flags_match_what_the_codecs_do() {
    for &ty in GgmlType::ALL {
        let bytes = vec![0u8; ty.type_size()];
        let mut out = vec![0f32; ty.block_size()];
        let d = dequantize(ty, &bytes, &mut out);
        assert_eq!(
            d.is_ok(),
            ty.can_dequantize(),
            "{ty}: can_dequantize() vs dequantize() = {d:?}"
        );
        let vals = vec![0.5f32; ty.block_size()];
        let mut q = vec![0u8; ty.type_size()];
        let r = quantize(ty, &vals, &mut q);
        assert_eq!(
            r.is_ok(),
            ty.can_quantize(),
            "{ty}: can_quantize() vs quantize() = {r:?}"
        );
        if let Err(e) = r {
            assert!(matches!(e, CodecError::Unsupported { .. }), "{ty}: {e}");
        }
    }
    assert!(
        GgmlType::ALL.iter().all(|t| t.block_size() <= 256),
        "dequantize_range's scratch block"
    );
}

#[test]
fn mismatched_lengths_are_typed_errors() {
    let ty = GgmlType::Q4_0;
    let mut out = vec![0f32; 64];
    let e = dequantize(ty, &[0u8; 35], &mut out).expect_err("35 bytes is not whole blocks");
    assert_eq!(
        e,
        CodecError::Length {
            ty,
            bytes: 35,
            values: 64
        }
    );
    assert!(
        e.to_string().contains("18 bytes per block"),
        "the message explains: {e}"
    );
    let e = quantize(ty, &[0f32; 33], &mut [0u8; 36]).expect_err("33 values");
    assert!(matches!(e, CodecError::Length { values: 33, .. }));
    let e = dequantize_block(ty, &[0u8; 36], &mut [0f32; 64]).expect_err("two blocks");
    assert!(
        matches!(e, CodecError::Length { bytes: 36, .. }),
        "a block is exactly one block: {e}"
    );
    let e = quantize_block(ty, &[0f32; 32], &mut [0u8; 17]).expect_err("short output");
    assert!(matches!(e, CodecError::Length { bytes: 17, .. }));
}

#[test]
fn block_helpers_agree_with_whole_tensor_codecs() {
    for &ty in GgmlType::ALL.iter().filter(|t| t.can_dequantize()) {
        let n_blocks = 5;
        let data = quantized(ty, n_blocks, 11);
        let mut all = vec![0f32; n_blocks * ty.block_size()];
        dequantize(ty, &data, &mut all).expect("dequantize");
        for (i, want) in all.chunks(ty.block_size()).enumerate() {
            let index = (i * ty.block_size() + ty.block_size() / 2) as u64;
            let (blk, range, at) = block_of(ty, index).expect("in range");
            assert_eq!(
                (blk, at),
                (i as u64, ty.block_size() / 2),
                "{ty}: element {index}"
            );
            let mut one = vec![0f32; ty.block_size()];
            dequantize_block(ty, &data[range.clone()], &mut one).expect("one block");
            let same = one
                .iter()
                .zip(want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{ty} block {i}: per-block dequantize is the tensor's");
            if ty.can_quantize() {
                let mut whole = vec![0u8; data.len()];
                quantize(ty, &all, &mut whole).expect("quantize");
                let mut q = vec![0u8; ty.type_size()];
                quantize_block(ty, &one, &mut q).expect("one block");
                assert_eq!(
                    q, whole[range],
                    "{ty} block {i}: per-block quantize is the tensor's"
                );
            }
        }
    }
}

#[test]
fn dequantize_range_reads_any_run_of_elements() {
    for ty in [
        GgmlType::Q4_0,
        GgmlType::TQ2_0,
        GgmlType::F16,
        GgmlType::NVFP4,
    ] {
        let n_blocks = 6;
        let data = quantized(ty, n_blocks, 12);
        let total = n_blocks * ty.block_size();
        let mut all = vec![0f32; total];
        dequantize(ty, &data, &mut all).expect("dequantize");
        let bs = ty.block_size();
        let starts = [0, 1, bs - 1, bs, bs + 3, total / 2, total - 1];
        for &start in &starts {
            for count in [0, 1, 2, bs - 1, bs, bs + 1, 3 * bs + 5, total] {
                if start + count > total {
                    continue;
                }
                let mut out = vec![f32::NAN; count];
                dequantize_range(ty, &data, start as u64, &mut out).expect("in range");
                let same = out
                    .iter()
                    .zip(&all[start..start + count])
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{ty}: elements {start}..+{count}");
            }
        }
        let mut out = vec![0f32; 2];
        let e =
            dequantize_range(ty, &data, total as u64 - 1, &mut out).expect_err("one past the end");
        assert!(
            matches!(e, CodecError::Range { available, .. } if available == total as u64),
            "{e}"
        );
        let e = dequantize_range(ty, &data, u64::MAX, &mut out).expect_err("overflowing start");
        assert!(matches!(e, CodecError::Range { .. }));
    }
}

#[test]
fn block_of_refuses_overflow() {
    assert_eq!(
        block_of(GgmlType::F32, u64::MAX),
        None,
        "byte offset overflows"
    );
    assert_eq!(block_of(GgmlType::Q8_0, 31), Some((0, 0..34, 31)));
    assert_eq!(block_of(GgmlType::Q8_0, 32), Some((1, 34..68, 0)));
}
