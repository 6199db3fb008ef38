//! Regression tests of "no silent damage": every way found to hurt a model without an
//! error, pinned on the demo model (every type it was found for: Q4_1, Q8_0, Q4_K, Q6_K, F16,
//! BF16, F32).

use hotpatch_core::config::Configuration;
use hotpatch_core::manager::{Manager, ManagerError};
use hotpatch_core::tensor::{EncodeError, Selection, TensorError, TransformOp};
use hotpatch_core::Mode;

use crate::common::*;

fn attach(model: &std::path::Path) -> Manager {
    let m = Manager::initialize();
    m.attach(model, Mode::Staged).unwrap();
    m
}

fn tensor_bytes(m: &Manager, name: &str) -> Vec<u8> {
    let layer = m.tensors().unwrap();
    let t = layer.tensor(name).unwrap();
    m.engine()
        .read(layer.region_of(t), t.offset, t.nbytes)
        .unwrap()
}

fn encode_error(e: ManagerError) -> EncodeError {
    match e {
        ManagerError::Tensor(TensorError::Encode { source, .. }) => source,
        ManagerError::Apply(hotpatch_core::config::ApplyError::Tensor(TensorError::Encode {
            source,
            ..
        })) => source,
        other => panic!("expected an encode refusal, got {other:?}"),
    }
}

/// The largest magnitude a `TooLarge` refusal names.
fn named_max(e: &EncodeError) -> f32 {
    match e {
        EncodeError::TooLarge { max: Some(m), .. } => *m,
        other => panic!("expected TooLarge with a limit, got {other:?}"),
    }
}

#[test]
fn an_edit_whose_block_scale_would_overflow_is_refused_with_the_largest_value_it_can_hold() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = attach(&model);
    // (tensor, its type, a value whose re-quantized scale overflows f16, or out of F16/BF16's
    // range). The values are those that reproduced it on SmolLM2 and the demo model.
    let cases = [
        ("blk.0.ffn_up.weight", "Q4_1", 1e6f32),
        ("token_embd.weight", "Q8_0", 1e7),
        ("blk.0.attn_q.weight", "Q4_K", 1e9),
        ("blk.0.attn_v.weight", "Q6_K", 1e9),
        ("blk.1.attn_q.weight", "F16", 1e6),
        ("blk.1.attn_k.weight", "BF16", 3.4e38),
    ];
    for (name, ty, value) in cases {
        let layer = m.tensors().unwrap();
        assert_eq!(layer.tensor(name).unwrap().ty.to_string(), ty, "{name}");
        let before = tensor_bytes(&m, name);
        let h0 = m.engine().history().len();
        let e = m.modify_weight(name, 5, value).unwrap_err();
        assert_eq!(
            m.engine().history().len(),
            h0,
            "{ty}: a refused edit leaves no undo entry"
        );
        assert_eq!(
            tensor_bytes(&m, name),
            before,
            "{ty}: a refused edit changes no byte"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("too large") && msg.contains("largest magnitude"),
            "{ty}: the refusal says why and what fits: {msg}"
        );
        let preview = m.preview_weight(name, 5, value).unwrap_err();
        assert_eq!(
            preview.to_string(),
            msg,
            "{ty}: the preview (the studio's 'will store') refuses the same way"
        );
        let max = named_max(&encode_error(e));
        assert!(
            max.is_finite() && max > 0.0 && max < value,
            "{ty}: limit {max} lies below the value asked ({value})"
        );
        // The value named as the limit is really storable, and stores finite values only.
        let ok = m.modify_weight(name, 5, max).unwrap();
        assert!(
            ok.stored.is_finite() && (ok.stored - max).abs() <= max * 0.01,
            "{ty}: the named limit {max} is stored as {}",
            ok.stored
        );
        let vals = m.tensors().unwrap().extract(name, None).unwrap();
        assert!(
            vals.iter().all(|v| v.is_finite()),
            "{ty}: no NaN/Inf anywhere in {name} after storing the limit"
        );
        m.engine().undo().unwrap();
        assert_eq!(tensor_bytes(&m, name), before, "{ty}: undo restores");
    }
}

#[test]
fn an_explicit_nan_or_inf_in_a_float_tensor_is_stored_as_asked() {
    // Only accidents are refused: a user who asks for Inf in an F32 or F16 tensor gets it
    // (the safety scan exists to find such values).
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = attach(&model);
    for name in ["blk.0.attn_norm.weight", "blk.1.attn_q.weight"] {
        let e = m.modify_weight(name, 3, f32::INFINITY).unwrap();
        assert_eq!(e.stored, f32::INFINITY, "{name}: Inf asked, Inf stored");
    }
    let e = m
        .modify_weight("blk.0.ffn_up.weight", 3, f32::NAN)
        .unwrap_err();
    assert!(
        e.to_string().contains("only finite values"),
        "a block type still refuses NaN: {e}"
    );
}

#[test]
fn transforms_that_overflow_are_refused_before_any_byte_changes() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = attach(&model);
    let cases = [
        // f32 itself overflows: x · 1e30 · ... for |x| > ~3.4e8 — the demo's norms are ~1, so
        // scale twice to get there.
        (
            "blk.0.attn_norm.weight",
            TransformOp::Scale { factor: 1e30 },
            2,
        ),
        (
            "blk.0.attn_norm.weight",
            TransformOp::Add { value: 3.4e38 },
            2,
        ),
        // Whole blocks quantized afresh overflow their scale.
        (
            "blk.0.attn_output.weight",
            TransformOp::Scale { factor: 1e9 },
            1,
        ),
        ("blk.0.ffn_up.weight", TransformOp::Set { value: 1e30 }, 1),
        ("blk.1.attn_q.weight", TransformOp::Scale { factor: 1e9 }, 1),
    ];
    for (name, op, times) in cases {
        let before = tensor_bytes(&m, name);
        let h0 = m.engine().history().len();
        let mut err = None;
        for _ in 0..times {
            match m.transform(name, &Selection::All, &op) {
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let e = err.unwrap_or_else(|| panic!("{name} {op:?}: refused"));
        let src = encode_error(e);
        assert!(
            matches!(
                src,
                EncodeError::TooLarge { .. } | EncodeError::Overflow { .. }
            ),
            "{name} {op:?}: {src}"
        );
        // Whatever the first (successful) step did is undone; the refused one left nothing.
        while m.engine().history().len() > h0 {
            m.engine().undo().unwrap();
        }
        assert_eq!(tensor_bytes(&m, name), before, "{name}: nothing stored");
    }
}

#[test]
fn a_configuration_that_sets_1e30_is_refused_and_changes_nothing() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = attach(&model);
    for name in [
        "blk.0.attn_q.weight",
        "blk.0.ffn_up.weight",
        "token_embd.weight",
    ] {
        let c = Configuration::from_json(&format!(
            r#"{{"version":1,"tensor_patches":[{{"tensor":"{name}","select":{{"kind":"elements","indices":[5]}},"transform":{{"op":"set","value":1e30}}}}]}}"#
        ))
        .unwrap();
        let before = tensor_bytes(&m, name);
        let e = m.apply_configuration(&c, "test").unwrap_err();
        let src = encode_error(e);
        assert!(named_max(&src) > 0.0, "{name}: {src}");
        assert_eq!(tensor_bytes(&m, name), before, "{name}: nothing stored");
        assert!(m.engine().history().is_empty(), "{name}: no undo entry");
    }
}

#[test]
fn a_type_conversion_that_overflows_is_refused() {
    // clone_tensor F32 → F16 of a value above 65504 would store Inf.
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = attach(&model);
    m.modify_weight("blk.2.attn_output.weight", 7, 1e6).unwrap();
    let before = tensor_bytes(&m, "blk.1.attn_q.weight");
    let e = m
        .tensors()
        .unwrap()
        .clone_tensor("blk.2.attn_output.weight", "blk.1.attn_q.weight")
        .unwrap_err();
    assert!(
        e.to_string().contains("too large for F16") && e.to_string().contains("65504"),
        "{e}"
    );
    assert_eq!(tensor_bytes(&m, "blk.1.attn_q.weight"), before);
}

#[test]
fn a_saved_edit_at_the_limit_reads_back_finite_in_gguf_py() {
    // End to end through the file: the limit the refusal names, stored and saved, decodes to
    // finite values in llama.cpp's own reader.
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = attach(&model);
    let name = "blk.0.ffn_up.weight"; // Q4_1
    let max = named_max(&encode_error(m.modify_weight(name, 5, 1e6).unwrap_err()));
    m.modify_weight(name, 5, max).unwrap();
    let out = dir.path().join("out.gguf");
    m.save_as(&out, &mut |_| true).unwrap();
    let vals = oracle_values(&out, name, dir.path());
    assert!(
        vals.iter().all(|v| v.is_finite()),
        "gguf-py reads no NaN/Inf"
    );
    assert!(
        (vals[5] - max).abs() <= max * 0.01,
        "gguf-py reads the stored limit: {} vs {max}",
        vals[5]
    );
}

#[test]
fn a_configuration_recorded_on_another_model_is_refused_unless_overridden() {
    use hotpatch_core::config::{ApplyOptions, ItemStatus};
    let dir = tempdir();
    let a = demo_model(dir.path(), "a.gguf", &[]);
    // Another model with tensors of the same names: the demo model under another
    // architecture (the case found: a SmolLM2 recipe written into another model).
    let b = dir.path().join("b.gguf");
    {
        let m = attach(&a);
        m.set_metadata(
            "general.architecture",
            hotpatch_gguf::MetaValue::string("qwen2"),
        )
        .unwrap();
        m.save_as(&b, &mut |_| true).unwrap();
    }
    let ma = attach(&a);
    ma.modify_weight("blk.0.attn_norm.weight", 3, 0.5).unwrap();
    let recipe = ma.export_configuration().unwrap().to_json();

    let mb = attach(&b);
    let before = tensor_bytes(&mb, "blk.0.attn_norm.weight");
    let (c, p) = mb.import_configuration(&recipe).unwrap();
    assert_eq!(p.same_model, Some(false), "the shapes differ");
    assert!(!p.applicable(), "refused without the override");
    let item = p
        .items
        .iter()
        .find(|i| i.item == "model")
        .expect("a model item");
    assert_eq!(item.status, ItemStatus::Mismatch);
    assert!(item.detail.contains("another model"), "{}", item.detail);
    let e = mb.apply_configuration(&c, "recipe").unwrap_err();
    assert!(e.to_string().contains("recorded on another model"), "{e}");
    assert_eq!(
        tensor_bytes(&mb, "blk.0.attn_norm.weight"),
        before,
        "nothing was written into the tensor of the same name"
    );
    // The explicit override: the preview says so, and the apply writes.
    let opts = ApplyOptions {
        allow_other_model: true,
    };
    let p = mb.preview_configuration_with(&c, opts).unwrap();
    assert!(p.applicable());
    let item = p.items.iter().find(|i| i.item == "model").unwrap();
    assert_eq!(item.status, ItemStatus::Info);
    assert!(item.detail.contains("applied anyway"), "{}", item.detail);
    mb.apply_configuration_with(&c, "recipe", opts).unwrap();
    assert_eq!(
        mb.tensors()
            .unwrap()
            .value("blk.0.attn_norm.weight", 3)
            .unwrap(),
        0.5
    );
    // The same model (another copy) needs no override.
    let a2 = dir.path().join("a2.gguf");
    std::fs::copy(&a, &a2).unwrap();
    let m2 = attach(&a2);
    let (c, p) = m2.import_configuration(&recipe).unwrap();
    assert!(p.applicable() && !p.items.iter().any(|i| i.item == "model"));
    m2.apply_configuration(&c, "recipe").unwrap();
}

#[test]
fn trailing_data_after_a_configuration_is_refused() {
    let one = r#"{"version":1}"#;
    assert!(Configuration::from_json(one).is_ok());
    assert!(
        Configuration::from_json(&format!("{one}\n\n")).is_ok(),
        "whitespace is fine"
    );
    for tail in [r#"{"version":1}"#, "garbage", "]", "0"] {
        let e = Configuration::from_json(&format!("{one}\n{tail}")).unwrap_err();
        assert!(
            e.to_string().contains("unexpected data after"),
            "{tail:?}: {e}"
        );
    }
    let e = hotpatch_core::config::ServerSettings::from_json("{} {}").unwrap_err();
    assert!(e.to_string().contains("unexpected data after"), "{e}");
}

#[test]
fn the_server_section_is_validated_when_a_configuration_is_read() {
    // One validation: what `serve` refuses, reading (hence `apply`, the studio's import) refuses.
    let cases = [
        (r#"{"upstream":"ftp://x"}"#, "server.upstream"),
        (
            r#"{"rules":[{"id":"a","action":{"type":"filter_response","pattern":"[","action":"redact"}}]}"#,
            "server.rules[0] (id \"a\").action.pattern",
        ),
        (
            r#"{"rules":[{"id":"a","action":{"type":"filter_response","pattern":"x+","action":"block","max_match_len":1000000000000}}]}"#,
            "action.max_match_len",
        ),
        (r#"{"connect_timeout_ms":0}"#, "server.connect_timeout_ms"),
        (
            r#"{"rules":[{"id":"a","action":{"type":"stop_sequences","sequences":["x"]}},{"id":"a","action":{"type":"stop_sequences","sequences":["y"]}}]}"#,
            "duplicate rule id",
        ),
    ];
    for (server, field) in cases {
        let text = format!(r#"{{"version":1,"server":{server}}}"#);
        let e = Configuration::from_json(&text).unwrap_err();
        assert!(e.to_string().contains(field), "{server}: {e}");
        let e2 = hotpatch_core::config::ServerSettings::from_json(server).unwrap_err();
        assert_eq!(
            e.to_string(),
            e2.to_string(),
            "the configuration and the proxy's own reader say the same"
        );
    }
}

#[test]
fn a_patch_under_a_protection_of_the_same_configuration_is_a_reported_conflict() {
    use hotpatch_core::config::ItemStatus;
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = attach(&model);
    let t = m
        .tensors()
        .unwrap()
        .tensor("blk.0.attn_norm.weight")
        .unwrap()
        .clone();
    let orig = hotpatch_core::config::to_hex(&tensor_bytes(&m, &t.name)[..4]);
    let cases = [
        // A tensor patch under a tensor protection (by glob).
        format!(
            r#"{{"version":1,"tensor_patches":[{{"tensor":"{}","transform":{{"op":"zero"}}}}],"protections":[{{"kind":"tensor","name":"blk.0.*"}}]}}"#,
            t.name
        ),
        // A tensor patch under a range protection over its data.
        format!(
            r#"{{"version":1,"tensor_patches":[{{"tensor":"{}","transform":{{"op":"zero"}}}}],"protections":[{{"kind":"range","offset":{},"len":1}}]}}"#,
            t.name,
            t.offset + 100
        ),
        // A byte patch inside a protected tensor.
        format!(
            r#"{{"version":1,"byte_patches":[{{"offset":{},"original":"{orig}","patched":"00000000"}}],"protections":[{{"kind":"tensor","name":"{}"}}]}}"#,
            t.offset, t.name
        ),
    ];
    for text in &cases {
        let before = tensor_bytes(&m, &t.name);
        let (c, p) = m.import_configuration(text).unwrap();
        let bad: Vec<_> = p.mismatches().collect();
        assert_eq!(bad.len(), 1, "{text}: {bad:?}");
        assert!(
            bad[0].detail.contains("protections[0]") && bad[0].detail.contains("protection wins"),
            "{}",
            bad[0].detail
        );
        assert!(p
            .items
            .iter()
            .any(|i| i.item == "protections[0]" && i.status == ItemStatus::WillChange));
        assert!(m.apply_configuration(&c, "conflict").is_err());
        assert_eq!(tensor_bytes(&m, &t.name), before, "{text}: nothing written");
        assert!(
            m.engine().protections().is_empty(),
            "{text}: a refused import locks nothing either"
        );
    }
}
