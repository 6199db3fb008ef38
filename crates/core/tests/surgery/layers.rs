//! Layers: drop, keep, repeat, insert from another model; metadata kept consistent.

use hotpatch_core::surgery::{self, LayerSlice, SurgeryOp};
use hotpatch_gguf::{GgufFile, MetaArray, MetaValue};

use crate::common::*;

/// (model, layers) of each slice; `None` is the model being edited.
type Slices<'a> = Vec<(Option<&'a str>, &'a str)>;

fn slices(s: &[(Option<&str>, &str)]) -> Vec<SurgeryOp> {
    vec![SurgeryOp::Layers {
        slices: s
            .iter()
            .map(|(m, l)| LayerSlice {
                model: m.map(str::to_string),
                layers: l.to_string(),
            })
            .collect(),
    }]
}

#[test]
fn repeat_drop_and_insert_match_the_reference_and_keep_per_layer_arrays() {
    let dir = tempdir();
    let base = fixture(dir.path(), "base.gguf", &["--layers", "4", "--type", "F16"]);
    let other = fixture(
        dir.path(),
        "other.gguf",
        &["--layers", "3", "--type", "F16", "--seed", "99"],
    );
    let (b, o) = (base.to_str().unwrap(), other.to_str().unwrap());
    let cases: Vec<(Slices, &str)> = vec![
        (vec![(None, "0,1,2,1,2,3")], "0,1,2,1,2,3"),
        (vec![(None, "0,3")], "0,3"),
        (
            vec![(None, "0-1"), (Some("other.gguf"), "2,0"), (None, "2-3")],
            "0,1,o2,o0,2,3",
        ),
    ];
    for (i, (s, order)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("l{i}.gguf"));
        run(&base, &slices(s), &out);
        let out = out.to_str().unwrap().to_string();
        let mut args = vec!["expect-layers", b, &out, order];
        if order.contains('o') {
            args.extend(["--other", o]);
        }
        let v = expect(&args);
        assert!(v["checked"].as_u64().unwrap() > 20, "{v}");
    }
    // The per-layer array follows its layers (the fixture's layer_id is 100 + layer).
    let f = GgufFile::open(dir.path().join("l0.gguf")).unwrap();
    assert_eq!(
        f.index.get("llama.test.layer_id"),
        Some(&MetaValue::Array(MetaArray::U32(vec![
            100, 101, 102, 101, 102, 103
        ])))
    );
    assert_eq!(f.index.get("llama.block_count"), Some(&MetaValue::U32(6)));
}

#[test]
fn a_layer_edited_model_runs_and_keeping_every_layer_changes_nothing() {
    let dir = tempdir();
    let base = fixture(dir.path(), "base.gguf", &["--layers", "4"]);
    let same = dir.path().join("same.gguf");
    run(&base, &slices(&[(None, "0-3")]), &same);
    let want = generate(&base, "hello world", 8);
    assert_eq!(
        generate(&same, "hello world", 8),
        want,
        "the identity keeps every answer"
    );
    let fewer = dir.path().join("fewer.gguf");
    run(&base, &slices(&[(None, "0,2")]), &fewer);
    let got = generate(&fewer, "hello world", 8);
    assert_eq!(
        got.len(),
        8,
        "llama.cpp loads 2 layers with 2-element per-layer arrays"
    );
}

#[test]
fn bad_layer_lists_are_refused_naming_the_problem() {
    let dir = tempdir();
    let base = fixture(dir.path(), "base.gguf", &["--layers", "2", "--embd", "64"]);
    let e = surgery::plan(&base, &slices(&[(None, "0,5")]), dir.path()).unwrap_err();
    assert!(e.to_string().contains("layer 5 does not exist"), "{e}");
    let e = surgery::plan(&base, &slices(&[(None, "1-0")]), dir.path()).unwrap_err();
    assert!(e.to_string().contains("ends before it starts"), "{e}");
    let wide = fixture(dir.path(), "wide.gguf", &["--layers", "2", "--embd", "128"]);
    let e = surgery::plan(
        &base,
        &slices(&[(None, "0"), (Some("wide.gguf"), "1")]),
        dir.path(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("embedding length"), "{e}");
    let _ = wide;
}
