//! Tensor-layer operations on the demo model, checked against numpy / gguf-py / ggml.

use hotpatch_core::manager::Manager;
use hotpatch_core::tensor::{Selection, TensorError, TransformOp, ValueQuery, WeightChange};
use hotpatch_core::{no_progress, Mode};
use serde_json::json;

use crate::common::*;

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn same_bits(a: &[f32], b: &[f32]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()))
}

/// The first tensor of each ggml type in the mixed demo model.
fn one_per_type(m: &Manager) -> Vec<(String, String)> {
    let layer = m.tensors().unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for t in &layer.index().tensors {
        seen.entry(t.ty.to_string())
            .or_insert_with(|| t.name.clone());
    }
    seen.into_iter().collect()
}

#[test]
fn modify_weight_keeps_scales_or_requantizes_like_the_reference() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    let layer = m.tensors().unwrap();
    let types = one_per_type(&m);
    assert!(
        types.len() >= 12,
        "the demo model mixes many types: {types:?}"
    );
    for (ty, name) in &types {
        let t = layer.tensor(name).unwrap().clone();
        let gt = hotpatch_core::GgmlType::from_name(ty).unwrap();
        let bs = gt.block_size() as u64;
        let idx = 5u64;
        let b0 = idx / bs * bs;
        let before = layer.extract(name, Some(b0..b0 + bs)).unwrap();
        let bytes_before = m.engine().read(layer.region(), t.offset, t.nbytes).unwrap();
        let h0 = m.engine().history().len();

        // In range: half the current value.
        let target = before[(idx - b0) as usize] * 0.5;
        let e = m.modify_weight(name, idx, target).unwrap();
        let after = layer.extract(name, Some(b0..b0 + bs)).unwrap();
        assert_eq!(
            e.stored,
            after[(idx - b0) as usize],
            "{ty}: reported value is the stored one"
        );
        if gt.is_quantized() {
            assert!(
                !e.block_requantized,
                "{ty}: half a weight is inside its grid, scales kept"
            );
            for k in 0..bs as usize {
                if k as u64 != idx - b0 {
                    assert_eq!(
                        after[k].to_bits(),
                        before[k].to_bits(),
                        "{ty}: element {k} untouched"
                    );
                }
            }
            let step = before.iter().fold(0f32, |a, &x| a.max(x.abs())) / 3.0;
            assert!(
                (e.stored - target).abs() <= step,
                "{ty}: {} vs {target}",
                e.stored
            );
        } else {
            // Float types store the target rounded to the type (F32: exactly).
            let mut enc = vec![0u8; gt.type_size()];
            hotpatch_quant::quantize(gt, &[target], &mut enc).unwrap();
            let mut dec = [0f32];
            hotpatch_quant::dequantize(gt, &enc, &mut dec).unwrap();
            assert_eq!(e.stored, dec[0], "{ty}: the target rounded to {ty}");
            if gt == hotpatch_core::GgmlType::F32 {
                assert_eq!(e.stored, target, "F32 stores the value exactly");
            }
        }
        let bytes_after = m.engine().read(layer.region(), t.offset, t.nbytes).unwrap();
        let changed: Vec<usize> = (0..bytes_after.len())
            .filter(|&i| bytes_after[i] != bytes_before[i])
            .collect();
        let ts = gt.type_size() as u64;
        let blk = (idx / bs * ts) as usize..((idx / bs + 1) * ts) as usize;
        assert!(
            changed.iter().all(|i| blk.contains(i)),
            "{ty}: only the element's block changed"
        );

        // Far out of range: the block is re-quantized exactly as the reference quantizer does.
        let big = 50.0 * before.iter().fold(0f32, |a, &x| a.max(x.abs())).max(1e-3);
        let cur = layer.extract(name, Some(b0..b0 + bs)).unwrap();
        let e = m.modify_weight(name, idx, big).unwrap();
        if gt.is_quantized() {
            assert!(
                e.block_requantized,
                "{ty}: {big} is outside the block's grid"
            );
            let mut want_in = cur.clone();
            want_in[(idx - b0) as usize] = big;
            let inp = dir.path().join("in.f32");
            std::fs::write(
                &inp,
                want_in
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>(),
            )
            .unwrap();
            let outp = dir.path().join("out.bin");
            oracle(&[
                "quantize",
                ty,
                inp.to_str().unwrap(),
                outp.to_str().unwrap(),
            ]);
            let want = std::fs::read(&outp).unwrap();
            let got = m
                .engine()
                .read(layer.region(), t.offset + b0 / bs * ts, ts)
                .unwrap();
            assert_eq!(
                got, want,
                "{ty}: the re-quantized block is byte-identical to the reference quantizer's"
            );
            assert!(
                !e.side_effects.is_empty() || gt == hotpatch_core::GgmlType::Q8_0,
                "{ty}: side effects reported"
            );
        }
        while m.engine().history().len() > h0 {
            m.engine().undo().unwrap();
        }
        let restored = m.engine().read(layer.region(), t.offset, t.nbytes).unwrap();
        assert_eq!(restored, bytes_before, "{ty}: undo restores every byte");
    }
    // Values stored are what gguf-py reads back after saving.
    let e = m.modify_weight("blk.0.attn_q.weight", 1000, 0.01).unwrap();
    let out = dir.path().join("saved.gguf");
    m.engine()
        .save_as(m.region().unwrap(), &out, &mut no_progress())
        .unwrap();
    let py = oracle_values(&out, "blk.0.attn_q.weight", dir.path());
    assert_eq!(py[1000], e.stored, "gguf-py reads the stored value");
}

#[test]
fn transforms_match_numpy_on_every_kind_of_tensor() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let other = demo_model(dir.path(), "o.gguf", &["--perturb", "blk.2.attn_output.weight,blk.0.attn_output.weight,blk.1.attn_q.weight,blk.0.attn_q.weight"]);
    let heads = json!({"head_dim": 64});
    // (tensor, type) — F32, F16, Q8_0, Q4_K
    let tensors = [
        "blk.2.attn_output.weight",
        "blk.1.attn_q.weight",
        "blk.0.attn_output.weight",
        "blk.0.attn_q.weight",
    ];
    let ops = [
        json!({"op": "scale", "factor": 1.5}),
        json!({"op": "add", "value": 0.01}),
        json!({"op": "set", "value": 0.02}),
        json!({"op": "clamp", "min": -0.05, "max": 0.05}),
        json!({"op": "zero"}),
        json!({"op": "negate"}),
        json!({"op": "noise", "seed": 42, "std": 0.01}),
        json!({"op": "replace_non_finite", "value": 0.0}),
        json!({"op": "lerp", "model": other.to_str().unwrap(), "t": 0.25}),
    ];
    let selections = [
        json!({"kind": "all"}),
        json!({"kind": "rows", "start": 3, "end": 9}),
        json!({"kind": "head", "head": 2}),
    ];
    let mut specs = Vec::new();
    let mut gots = Vec::new();
    for name in tensors {
        for sel in &selections {
            for op in &ops {
                let m = Manager::initialize();
                m.attach(&model, Mode::Staged).unwrap();
                let s: Selection = serde_json::from_value(sel.clone()).unwrap();
                let o: TransformOp = serde_json::from_value(op.clone()).unwrap();
                m.transform(name, &s, &o)
                    .unwrap_or_else(|e| panic!("{name} {sel} {op}: {e}"));
                gots.push(m.tensors().unwrap().extract(name, None).unwrap());
                specs.push(json!({"name": name, "select": sel, "transform": op, "heads": heads}));
            }
        }
    }
    let spec_file = dir.path().join("specs.json");
    std::fs::write(&spec_file, serde_json::to_string(&specs).unwrap()).unwrap();
    oracle(&[
        "expect-many",
        model.to_str().unwrap(),
        spec_file.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    for (i, (spec, got)) in specs.iter().zip(&gots).enumerate() {
        let want = f32s(&std::fs::read(dir.path().join(format!("{i}.f32"))).unwrap());
        assert_eq!(got.len(), want.len());
        let bad = same_bits(got, &want);
        assert_eq!(
            bad,
            None,
            "{spec}: element {:?} ours {:?} numpy {:?}",
            bad,
            bad.map(|i| got[i]),
            bad.map(|i| want[i])
        );
    }
}

#[test]
fn clone_swap_search_lock_temporary_and_byte_patch() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    let l = m.tensors().unwrap();
    // Clone F16 -> Q8_0 (converting) and F16 -> F16.
    let src = l.extract("blk.3.attn_q.weight", None).unwrap();
    l.clone_tensor("blk.3.attn_q.weight", "blk.2.attn_q.weight")
        .unwrap();
    let got = l.extract("blk.2.attn_q.weight", None).unwrap();
    let maxd = src
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        maxd < 0.002,
        "Q8_0 copy of an F16 tensor is within Q8_0 rounding: {maxd}"
    );
    l.clone_tensor("blk.3.attn_q.weight", "blk.3.attn_k.weight")
        .unwrap_err();
    // Swap two same-type tensors, twice = identity.
    let a = l.extract("blk.3.attn_q.weight", None).unwrap();
    let b = l.extract("blk.3.attn_output.weight", None).unwrap();
    l.swap_tensors("blk.3.attn_q.weight", "blk.3.attn_output.weight")
        .unwrap();
    assert_eq!(l.extract("blk.3.attn_q.weight", None).unwrap(), b);
    assert_eq!(l.extract("blk.3.attn_output.weight", None).unwrap(), a);
    // Value search finds injected NaN, Inf, subnormal and outliers, with exact positions.
    l.modify_weights_batch(&[
        WeightChange {
            tensor: "output_norm.weight".into(),
            index: 7,
            value: f32::NAN,
        },
        WeightChange {
            tensor: "output_norm.weight".into(),
            index: 9,
            value: f32::INFINITY,
        },
        WeightChange {
            tensor: "output_norm.weight".into(),
            index: 11,
            value: 1e-40,
        },
        WeightChange {
            tensor: "output_norm.weight".into(),
            index: 13,
            value: 500.0,
        },
    ])
    .unwrap();
    let q = ValueQuery {
        above: Some(100.0),
        ..ValueQuery::non_normal()
    };
    let r = l
        .search_values("output_norm.weight", &q, 100, &mut |_, _| true)
        .unwrap();
    let idx: Vec<u64> = r.hits.iter().map(|h| h.index).collect();
    assert_eq!(idx, vec![7, 9, 11, 13], "exactly the injected elements");
    // A batch with a bad element changes nothing.
    let before = l.extract("output_norm.weight", None).unwrap();
    let err = l
        .modify_weights_batch(&[
            WeightChange {
                tensor: "output_norm.weight".into(),
                index: 0,
                value: 1.0,
            },
            WeightChange {
                tensor: "output_norm.weight".into(),
                index: 1 << 40,
                value: 1.0,
            },
        ])
        .unwrap_err();
    assert!(matches!(err, TensorError::IndexOutOfRange { .. }), "{err}");
    assert_eq!(
        same_bits(&l.extract("output_norm.weight", None).unwrap(), &before),
        None,
        "all or nothing"
    );
    // Lock: every layer refuses; unlock: allowed again.
    let id = l.lock("token_embd.weight", None, false).unwrap();
    let err = l.modify_weight("token_embd.weight", 0, 1.0).unwrap_err();
    assert_eq!(err.code(), "protected", "{err}");
    let t = l.tensor("token_embd.weight").unwrap().clone();
    assert!(
        m.memory().write(l.region(), t.offset + 10, &[1]).is_err(),
        "the memory layer refuses too"
    );
    l.unlock(id).unwrap();
    l.modify_weight("token_embd.weight", 0, 0.25).unwrap();
    // Temporary data reverts when its guard drops.
    let orig = l.extract("blk.0.ffn_norm.weight", None).unwrap();
    {
        let (_guard, _) = l
            .inject_temporary(
                "blk.0.ffn_norm.weight",
                &Selection::All,
                &TransformOp::Zero,
                None,
                None,
            )
            .unwrap();
        assert!(l
            .extract("blk.0.ffn_norm.weight", None)
            .unwrap()
            .iter()
            .all(|&x| x == 0.0));
    }
    assert_eq!(
        l.extract("blk.0.ffn_norm.weight", None).unwrap(),
        orig,
        "reverted when the guard dropped"
    );
    // Tensor-scoped memory: relative offsets, bounded by the tensor.
    let nb = t.nbytes;
    l.write_bytes("token_embd.weight", 4, &[9, 9]).unwrap();
    assert_eq!(l.read_bytes("token_embd.weight", 4, 2).unwrap(), vec![9, 9]);
    assert_eq!(
        m.engine().read(l.region(), t.offset + 4, 2).unwrap(),
        vec![9, 9],
        "offsets are tensor-relative"
    );
    assert!(
        l.write_bytes("token_embd.weight", nb - 1, &[0, 0]).is_err(),
        "a write may not cross the tensor's end"
    );
    assert_eq!(
        l.pointer("token_embd.weight", 0, nb).unwrap().offset,
        t.offset
    );
    // Byte patch: refused when the expected bytes are not there, applied when they are.
    let off = t.offset + 100;
    let cur = m.engine().read(l.region(), off, 2).unwrap();
    let wrong = [cur[0] ^ 0xff, cur[1]];
    let err = l.apply_memory_patch(0, off, &wrong, &[0, 0]).unwrap_err();
    assert_eq!(err.code(), "mismatch", "{err}");
    l.apply_memory_patch(0, off, &cur, &[0x12, 0x34]).unwrap();
    assert_eq!(
        m.engine().read(l.region(), off, 2).unwrap(),
        vec![0x12, 0x34]
    );
}
