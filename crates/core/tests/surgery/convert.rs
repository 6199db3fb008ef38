//! Changing tensor types.

use hotpatch_core::surgery::{self, SurgeryError, SurgeryOp, TypeRule};
use hotpatch_gguf::{GgufFile, MetaValue};

use crate::common::*;

fn rules(r: &[(&str, &str)]) -> Vec<SurgeryOp> {
    vec![SurgeryOp::Convert {
        types: r
            .iter()
            .map(|(t, ty)| TypeRule {
                tensor: t.to_string(),
                ty: ty.to_string(),
            })
            .collect(),
    }]
}

#[test]
fn reencoded_tensors_are_byte_identical_with_gguf_py_and_ggml() {
    // Every source type of the demo model (F32, F16, BF16, legacy and K-quants) into a legacy
    // type gguf-py quantizes, a K-quant only ggml quantizes, and F16.
    let demo = shared_demo("demo.gguf", &[]);
    let dir = tempdir();
    for (i, r) in [
        vec![("*", "Q8_0")],
        vec![
            ("blk.*.ffn_*", "Q4_K"),
            ("blk.*", "Q5_1"),
            ("token_embd.weight", "F16"),
        ],
        vec![("*", "Q6_K")],
    ]
    .iter()
    .enumerate()
    {
        let out = dir.path().join(format!("c{i}.gguf"));
        let p = run(&demo, &rules(r), &out);
        assert!(p.changed > 0, "{r:?} changed something");
        let v = expect(&[
            "expect-convert",
            demo.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        assert!(v["reencoded"].as_u64().unwrap() > 10, "{r:?}: {v}");
        assert_eq!(
            v["checked"].as_u64().unwrap(),
            39,
            "every tensor is in the output"
        );
    }
}

#[test]
fn glob_rules_keep_norms_and_exact_rules_must_fit() {
    let demo = shared_demo("demo.gguf", &[]);
    let dir = tempdir();
    let plan = surgery::plan(&demo, &rules(&[("*", "Q4_0")]), dir.path()).unwrap();
    let p = plan.preview();
    let norm = p
        .tensors
        .iter()
        .find(|t| t.name == "blk.0.attn_norm.weight")
        .unwrap();
    assert_eq!(
        (norm.ty.as_str(), norm.changed),
        ("F32", false),
        "norms stay F32"
    );
    assert!(
        p.notes.iter().any(|n| n.contains("1-D tensors")),
        "{:?}",
        p.notes
    );
    // The file type follows the new majority type (llama_ftype MOSTLY_Q4_0 = 2).
    assert!(
        p.metadata
            .iter()
            .any(|m| m.key == "general.file_type" && m.after.as_deref() == Some("UINT32 2")),
        "{:?}",
        p.metadata
    );

    // Named exactly, a tensor whose rows are not whole blocks is refused, naming it.
    let small = fixture(dir.path(), "small.gguf", &["--embd", "64", "--layers", "1"]);
    let e = surgery::plan(
        &small,
        &rules(&[("blk.0.attn_q.weight", "Q4_K")]),
        dir.path(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("blk.0.attn_q.weight") && msg.contains("256"),
        "{msg}"
    );
    // A rule matching nothing is an error, not a silent no-op.
    let e = surgery::plan(&demo, &rules(&[("blk.99.*", "Q8_0")]), dir.path()).unwrap_err();
    assert!(e.to_string().contains("matches no tensor"), "{e}");
}

#[test]
fn converting_to_a_more_precise_type_warns() {
    let demo = shared_demo("demo.gguf", &[]);
    let plan = surgery::plan(
        &demo,
        &rules(&[("blk.0.attn_q.weight", "F32")]),
        demo.parent().unwrap(),
    )
    .unwrap();
    let notes = plan.preview().notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Q4_K to the more precise F32") && n.contains("nothing is gained")),
        "{notes:?}"
    );
}

#[test]
fn cancel_leaves_no_file_and_inputs_are_never_overwritten() {
    let demo = shared_demo("demo.gguf", &[]);
    let dir = tempdir();
    let out = dir.path().join("out.gguf");
    let plan = surgery::plan(&demo, &rules(&[("*", "Q8_0")]), dir.path()).unwrap();
    let mut calls = 0;
    let e = surgery::execute(&plan, &out, &mut |p| {
        calls += 1;
        p.done == 0 // cancel after the first progress report
    })
    .unwrap_err();
    assert!(matches!(e, SurgeryError::Canceled), "{e}");
    assert!(
        calls >= 2,
        "progress was reported before the cancel took effect"
    );
    assert!(!out.exists(), "a canceled write leaves no destination");
    assert_eq!(
        leftovers(dir.path(), &[]),
        Vec::<std::path::PathBuf>::new(),
        "no temporary file left"
    );

    // An existing destination survives a cancel byte for byte.
    std::fs::write(&out, b"keep me").unwrap();
    let _ = surgery::execute(&plan, &out, &mut |p| p.done == 0);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");

    let copy = dir.path().join("copy.gguf");
    std::fs::copy(&demo, &copy).unwrap();
    let plan = surgery::plan(&copy, &rules(&[("*", "Q8_0")]), dir.path()).unwrap();
    let e = surgery::execute(&plan, &copy, &mut |_| true).unwrap_err();
    assert!(e.to_string().contains("is one of the inputs"), "{e}");
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&demo).unwrap());
}

#[test]
fn split_models_convert_into_one_file_without_split_keys() {
    let dir = tempdir();
    let base = dir.path().join("split.gguf");
    hotpatch_testkit::demo_model(dir.path(), "split.gguf", &["--split-max-tensors", "12"]);
    let first = dir.path().join("split-00001-of-00004.gguf");
    assert!(
        first.exists() || base.exists(),
        "the generator wrote shards"
    );
    let first = if first.exists() { first } else { base };
    let out = dir.path().join("joined.gguf");
    run(&first, &rules(&[("blk.*.attn_q.weight", "Q8_0")]), &out);
    let f = GgufFile::open(&out).unwrap();
    assert_eq!(f.index.tensors.len(), 39, "every shard's tensors");
    for k in ["split.count", "split.no", "split.tensors.count"] {
        assert!(
            f.index.get(k).is_none(),
            "{k} dropped from a single-file output"
        );
    }
    assert_eq!(
        f.index
            .tensor("blk.3.attn_q.weight")
            .unwrap()
            .ty
            .to_string(),
        "Q8_0"
    );
    let demo = shared_demo("demo.gguf", &[]);
    expect(&[
        "expect-convert",
        demo.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        f.index.get("general.architecture"),
        Some(&MetaValue::string("llama"))
    );
}

#[test]
fn a_converted_model_runs_in_llama_cpp() {
    let demo = shared_demo("demo.gguf", &[]);
    let dir = tempdir();
    let out = dir.path().join("q8.gguf");
    run(&demo, &rules(&[("*", "Q8_0")]), &out);
    let tokens = generate(&out, "hello world", 8);
    assert_eq!(tokens.len(), 8, "llama.cpp loads the result and generates");
}
