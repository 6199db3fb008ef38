//! `hotpatch convert`, `layers` and `apply` of a recorded surgery: the built binary.

use super::common::*;

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn convert_records_a_configuration_that_apply_replays_byte_for_byte() {
    let dir = tempdir();
    let demo = demo_model(dir.path(), "demo.gguf", &[]);
    let (a, b, cfg) = (
        dir.path().join("a.gguf"),
        dir.path().join("b.gguf"),
        dir.path().join("convert.json"),
    );
    let out = hotpatch(&[
        "convert",
        s(&demo),
        "--type",
        "blk.*.ffn_*=Q4_K",
        "--type",
        "*=Q8_0",
        "--out",
        s(&a),
        "--record",
        s(&cfg),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("re-encoded Q5_K → Q4_K"),
        "preview lists the changes: {text}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(config["version"], 3, "surgery needs version 3");
    assert_eq!(config["surgery"][0]["op"], "convert");
    let out = hotpatch(&["apply", s(&cfg), s(&demo), "--out", s(&b)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "the recipe replays exactly"
    );

    // --in-place cannot hold a surgery; a dry run writes nothing.
    let out = hotpatch(&["apply", s(&cfg), s(&demo), "--in-place"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
    let c = dir.path().join("c.gguf");
    let out = hotpatch(&[
        "convert",
        s(&demo),
        "--type",
        "*=Q8_0",
        "--dry-run",
        "--out",
        s(&c),
    ]);
    assert!(out.status.success());
    assert!(!c.exists(), "--dry-run writes nothing");
}

#[test]
fn layers_verbs_build_the_sequence_they_name() {
    let dir = tempdir();
    let demo = demo_model(dir.path(), "demo.gguf", &[]);
    let cases: [(&[&str], &str); 4] = [
        (&["--drop", "1,2"], "0,3"),
        (&["--keep", "3,0"], "3,0"),
        (&["--repeat", "1-2"], "0,1,2,1,2,3"),
        (&["--insert", "0", "--at", "2"], "0,1,0,2,3"),
    ];
    for (args, order) in cases {
        let mut all = vec!["layers", s(&demo), "--dry-run", "--json"];
        all.extend_from_slice(args);
        let v = ok_json(&all);
        let op = v["ops"][0].as_str().unwrap();
        assert!(
            op.starts_with(&format!("layers {order} ")),
            "{args:?}: {op}"
        );
    }
    let out = hotpatch(&["layers", s(&demo), "--drop", "0-3", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("every layer"));
    let out = hotpatch(&["layers", s(&demo), "--keep", "9", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("layer 9 does not exist"));
}

#[test]
fn merge_takes_mergekit_parameters_on_the_command_line() {
    let dir = tempdir();
    let a = demo_model(dir.path(), "a.gguf", &[]);
    let b = demo_model(dir.path(), "b.gguf", &["--perturb", "blk.0.attn_q.weight"]);
    let t = r#"[{"filter":"self_attn","value":[0,1]},{"value":0.5}]"#;
    let v = ok_json(&[
        "merge",
        s(&a),
        s(&b),
        "--method",
        "slerp",
        "--t",
        t,
        "--dry-run",
        "--json",
    ]);
    let q3 = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "blk.3.attn_q.weight")
        .unwrap();
    assert!(q3["action"].as_str().unwrap().contains("t=1.000"), "{q3}");
    let out = dir.path().join("m.gguf");
    let r = hotpatch(&[
        "merge",
        s(&a),
        s(&b),
        "--method",
        "task_arithmetic",
        "--weight",
        "0,0.5,1",
        "--out",
        s(&out),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(out.exists());
    let r = hotpatch(&[
        "merge",
        s(&a),
        s(&b),
        "--method",
        "ties",
        "--weight",
        "1",
        "--weight",
        "2",
        "--dry-run",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("one per model"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let r = hotpatch(&["merge", s(&a), s(&b), "--method", "nope", "--dry-run"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("not a merge method"));
}

#[test]
fn lora_ablate_and_tensors_verbs_run_end_to_end() {
    let dir = tempdir();
    let d = dir.path();
    let demo = demo_model(d, "demo.gguf", &[]);
    let (ad, cv) = (d.join("ad.gguf"), d.join("cv.gguf"));
    let o = "tests/oracle/surgery_oracle.py";
    run_py(
        o,
        &[
            "lora-fixture",
            s(&ad),
            s(&demo),
            "--targets",
            "blk.0.attn_q.weight,output.weight",
        ],
    );
    run_py(o, &["cvec-fixture", s(&cv), "--layers", "4"]);
    let v = ok_json(&[
        "lora",
        s(&demo),
        s(&ad),
        "--scale",
        "2",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(v["changed"], 2, "{v}");
    let out = d.join("l.gguf");
    let r = hotpatch(&["lora", s(&demo), s(&ad), "--out", s(&out)]);
    assert!(
        r.status.success() && out.exists(),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let v = ok_json(&[
        "ablate",
        s(&demo),
        "--direction",
        s(&cv),
        "--direction-layer",
        "2",
        "--layers",
        "1-2",
        "--no-embeddings",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(v["changed"], 4, "{v}");
    let r = hotpatch(&["ablate", s(&demo), "--direction", s(&cv), "--dry-run"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("choose one"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let src = format!("{}:output.weight@F16", s(&demo));
    let v = ok_json(&[
        "tensors",
        s(&demo),
        "--remove",
        "blk.3.ffn_*",
        "--rename",
        "blk.*.attn_k.weight=blk.*.attn_key.weight",
        "--add",
        &format!("extra.weight={src}"),
        "--dry-run",
        "--json",
    ]);
    let names: Vec<&str> = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["action"] != "removed")
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"blk.2.attn_key.weight") && names.contains(&"extra.weight"),
        "{names:?}"
    );
    assert!(!names.contains(&"blk.3.ffn_up.weight"));
    let r = hotpatch(&["tensors", s(&demo), "--add", "x=nothing.bin", "--dry-run"]);
    assert_eq!(r.status.code(), Some(2));
}
