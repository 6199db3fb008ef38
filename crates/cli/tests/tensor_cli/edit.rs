//! `hotpatch edit`, `apply`, `scan`, `search`.

use serde_json::Value;

use crate::common::*;

fn values(model: &std::path::Path, name: &str, dir: &std::path::Path) -> Vec<f32> {
    let out = dir.join(format!("{name}.f32"));
    run_py(
        "tests/oracle/tensor_oracle.py",
        &[
            "values",
            model.to_str().unwrap(),
            name,
            out.to_str().unwrap(),
        ],
    );
    std::fs::read(out)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn edit_records_a_recipe_that_apply_replays_on_another_quantization() {
    let dir = tempdir();
    let d = dir.path();
    let f16 = demo_model(d, "f16.gguf", &["--variant", "f16"]);
    let q8 = demo_model(d, "q8.gguf", &["--variant", "q8_0"]);
    let (edited, rec) = (d.join("edited.gguf"), d.join("recipe.json"));
    let got = ok_json(&[
        "edit",
        f16.to_str().unwrap(),
        "--set",
        "blk.0.attn_q.weight[100]=0.03125",
        "--set",
        "output_norm.weight[3]=-2",
        "--record",
        rec.to_str().unwrap(),
        "--out",
        edited.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        got[0]["stored"],
        Value::from(0.03125),
        "2^-5 is exact in F16"
    );
    let v = values(&edited, "blk.0.attn_q.weight", d);
    assert_eq!(
        v[100], 0.03125,
        "gguf-py reads the edited value from the saved file"
    );
    assert_eq!(values(&edited, "output_norm.weight", d)[3], -2.0);
    let orig = values(&f16, "blk.0.attn_q.weight", d);
    let moved = orig
        .iter()
        .zip(&v)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(moved, 1, "only the edited element changed");

    // Dry run: preview only, file untouched.
    let out = hotpatch(&[
        "apply",
        rec.to_str().unwrap(),
        q8.to_str().unwrap(),
        "--dry-run",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["preview"]["same_model"], Value::Bool(true));
    assert_eq!(p["preview"]["same_file"], Value::Bool(false));
    assert_eq!(p["applied"], Value::Bool(false));
    let q8_out = d.join("q8-edited.gguf");
    let out = hotpatch(&[
        "apply",
        rec.to_str().unwrap(),
        q8.to_str().unwrap(),
        "--out",
        q8_out.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = values(&q8, "blk.0.attn_q.weight", d);
    let after = values(&q8_out, "blk.0.attn_q.weight", d);
    let changed: Vec<usize> = (0..after.len())
        .filter(|&i| after[i].to_bits() != before[i].to_bits())
        .collect();
    assert_eq!(
        changed,
        vec![100],
        "the same element changes in the Q8_0 file"
    );
    assert!(
        (after[100] - 0.03125).abs() < 0.002,
        "Q8_0 stores the nearest grid value: {}",
        after[100]
    );

    // A configuration naming a tensor this model lacks is refused with exit 1.
    let bad = d.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"version":1,"tensor_patches":[{"tensor":"nope.weight","transform":{"op":"zero"}}]}"#,
    )
    .unwrap();
    let out = hotpatch(&[
        "apply",
        bad.to_str().unwrap(),
        q8.to_str().unwrap(),
        "--out",
        d.join("x.gguf").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "mismatch is a refusal");
    assert!(!d.join("x.gguf").exists(), "nothing written when refused");
    // A malformed configuration is bad input naming the field.
    std::fs::write(&bad, r#"{"version":1,"tensor_patches":[{"tensor":"x","transform":{"op":"scale","factor":"big"}}]}"#).unwrap();
    let out = hotpatch(&[
        "apply",
        bad.to_str().unwrap(),
        q8.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tensor_patches[0].transform"), "{err}");
    // No destination: bad input, refused before anything is done.
    let out = hotpatch(&["apply", rec.to_str().unwrap(), q8.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "nothing applied or printed without --out/--in-place/--dry-run"
    );
    // Bad --set syntax and unknown tensors are bad input.
    assert_eq!(
        hotpatch(&[
            "edit",
            f16.to_str().unwrap(),
            "--set",
            "x=1",
            "--out",
            "/tmp/never.gguf"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        hotpatch(&[
            "edit",
            f16.to_str().unwrap(),
            "--set",
            "nope[1]=1",
            "--out",
            "/tmp/never.gguf"
        ])
        .status
        .code(),
        Some(2)
    );
}

#[test]
fn scan_and_search() {
    let dir = tempdir();
    let d = dir.path();
    let m = demo_model(d, "m.gguf", &[]);
    let e = d.join("e.gguf");
    let out = hotpatch(&[
        "edit",
        m.to_str().unwrap(),
        "--set",
        "output_norm.weight[7]=nan",
        "--set",
        "blk.0.ffn_norm.weight[2]=inf",
        "--set",
        "blk.1.ffn_norm.weight[9]=400",
        "--out",
        e.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = ok_json(&["scan", e.to_str().unwrap(), "--json", "--outliers", "100"]);
    let hits: Vec<(String, u64)> = r["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["tensor"].as_str().unwrap().to_string(),
                h["index"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want = vec![
        ("blk.0.ffn_norm.weight".to_string(), 2),
        ("blk.1.ffn_norm.weight".to_string(), 9),
        ("output_norm.weight".to_string(), 7),
    ];
    let mut hits_sorted = hits.clone();
    hits_sorted.sort();
    want.sort();
    assert_eq!(hits_sorted, want, "exactly the three planted values");
    // Search: the GGUF magic is at offset 0, and a value planted in a tensor is found there.
    let s = ok_json(&["search", m.to_str().unwrap(), "47 47 55 46", "--json"]);
    assert_eq!(s["matches"][0]["offset"], Value::from(0));
    let s = ok_json(&["search", e.to_str().unwrap(), "00 00 c8 43", "--json"]); // 400.0f32
    let found = s["matches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["tensor"] == "blk.1.ffn_norm.weight" && m["tensor_offset"] == 36);
    assert!(
        found,
        "400.0 at element 9 = byte 36 of blk.1.ffn_norm.weight: {s}"
    );
    assert_eq!(
        hotpatch(&["search", m.to_str().unwrap(), "zz"])
            .status
            .code(),
        Some(2),
        "bad pattern is bad input"
    );
}

#[test]
fn edit_and_search_cover_every_file_of_a_split_model() {
    let dir = tempdir();
    let d = dir.path();
    demo_model(d, "m.gguf", &["--split-max-tensors", "12"]);
    let shard = |p: &str, k: u32| d.join(format!("{p}-{k:05}-of-00004.gguf"));
    // One weight in the first file, one in the last (Q8_0: 0.5 stores exactly when it is the
    // block's largest magnitude; the test reads back whatever was stored).
    let got = ok_json(&[
        "edit",
        shard("m", 2).to_str().unwrap(),
        "--set",
        "token_embd.weight[5]=0.5",
        "--set",
        "output.weight[7]=-0.25",
        "--out",
        d.join("e.gguf").to_str().unwrap(),
        "--json",
    ]);
    let stored = |i: usize| got[i]["stored"].as_f64().unwrap() as f32;
    assert!(
        !d.join("e.gguf").exists(),
        "a split model is saved as shards"
    );
    assert_eq!(values(&shard("e", 1), "token_embd.weight", d)[5], stored(0));
    assert_eq!(values(&shard("e", 4), "output.weight", d)[7], stored(1));
    // The originals are untouched.
    assert_ne!(
        values(&shard("m", 4), "output.weight", d)[7].to_bits(),
        stored(1).to_bits()
    );
    // `search` looks in every file: the GGUF magic starts each of the 4 files.
    let hits = ok_json(&[
        "search",
        shard("e", 1).to_str().unwrap(),
        "47 47 55 46",
        "--json",
    ]);
    let at_zero: Vec<u64> = hits["matches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["offset"] == 0)
        .map(|m| m["shard"].as_u64().unwrap())
        .collect();
    assert_eq!(at_zero, [0, 1, 2, 3]);
}

/// gguf-py's view of a model's metadata and tensor hashes (tests/oracle/gguf_dump.py).
fn dump(model: &std::path::Path) -> Value {
    serde_json::from_str(&run_py(
        "tests/oracle/gguf_dump.py",
        &[model.to_str().unwrap()],
    ))
    .unwrap()
}

#[test]
fn apply_writes_metadata_edits_through_the_gguf_writer() {
    let dir = tempdir();
    let d = dir.path();
    let model = demo_model(d, "m.gguf", &[]);
    let before = dump(&model);
    let template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}";
    // The values the edits expect, taken from gguf-py's reading of the model.
    let old_template = before["metadata"]["tokenizer.chat_template"]["value"].clone();
    let old_name = before["metadata"]["general.name"]["value"].clone();
    let config = serde_json::json!({
        "version": 2,
        "tensor_patches": [{"tensor": "output_norm.weight", "select": {"kind": "elements", "indices": [2]}, "transform": {"op": "set", "value": 0.5}}],
        "metadata": [
            {"key": "tokenizer.chat_template", "original": {"type": "STRING", "value": old_template}, "patched": {"type": "STRING", "value": template}},
            {"key": "general.name", "original": {"type": "STRING", "value": old_name}, "patched": null},
            {"key": "llama.context_length", "original": {"type": "UINT32", "value": 512}, "patched": {"type": "UINT32", "value": 1024}},
            {"key": "hotpatch.seed", "original": null, "patched": {"type": "UINT64", "value": "18446744073709551615"}},
            {"key": "hotpatch.tags", "original": null, "patched": {"type": "ARRAY", "element": "STRING", "value": ["a", "b c"]}}
        ]
    });
    let rec = d.join("recipe.json");
    std::fs::write(&rec, config.to_string()).unwrap();

    // Dry run: the preview lists the metadata rows, current → new.
    let p = ok_json(&[
        "apply",
        rec.to_str().unwrap(),
        model.to_str().unwrap(),
        "--dry-run",
        "--json",
    ]);
    let items = p["preview"]["items"].as_array().unwrap();
    let meta: Vec<&Value> = items
        .iter()
        .filter(|i| i["item"].as_str().unwrap().starts_with("metadata["))
        .collect();
    assert_eq!(meta.len(), 5);
    assert!(
        meta.iter().all(|i| i["status"] == "will_change"),
        "{meta:?}"
    );
    assert_eq!(meta[2]["detail"], "UINT32 512 → UINT32 1024");

    // --out: a new file; --in-place: the model rewritten. Both hold the same bytes.
    let out = d.join("out.gguf");
    let copy = d.join("copy.gguf");
    std::fs::copy(&model, &copy).unwrap();
    for args in [vec!["--out", out.to_str().unwrap()], vec!["--in-place"]] {
        let target = if args[0] == "--out" { &model } else { &copy };
        let mut all = vec!["apply", rec.to_str().unwrap(), target.to_str().unwrap()];
        all.extend(args);
        let o = hotpatch(&all);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains("5 metadata edit(s)"));
    }
    assert_eq!(dump(&model), before, "--out leaves the input as it was");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&copy).unwrap());
    let after = dump(&copy);
    let m = &after["metadata"];
    assert_eq!(m["tokenizer.chat_template"]["value"], template);
    assert!(m.get("general.name").is_none(), "removed");
    assert_eq!(m["llama.context_length"]["value"], 1024);
    assert_eq!(m["hotpatch.seed"]["type"], "UINT64");
    assert_eq!(m["hotpatch.seed"]["value"].as_u64(), Some(u64::MAX));
    assert_eq!(m["hotpatch.tags"]["element"], "STRING");
    assert_eq!(m["hotpatch.tags"]["value"], serde_json::json!(["a", "b c"]));
    assert_eq!(values(&copy, "output_norm.weight", d)[2], 0.5);
    // Every other tensor's data is byte for byte as it was (their offsets moved).
    for (name, t) in before["tensors"].as_object().unwrap() {
        if name != "output_norm.weight" {
            assert_eq!(after["tensors"][name]["sha256"], t["sha256"], "{name}");
        }
    }

    // Applied again, every metadata edit finds its new value: already applied.
    let p = ok_json(&[
        "apply",
        rec.to_str().unwrap(),
        copy.to_str().unwrap(),
        "--dry-run",
        "--json",
    ]);
    let already = p["preview"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "already_applied")
        .count();
    assert_eq!(already, 5);
    // An edit that expects another value: a mismatch naming it, exit 1, nothing written.
    let wrong = d.join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"version": 2, "metadata": [{"key": "llama.context_length", "original": {"type": "UINT32", "value": 999}, "patched": {"type": "UINT32", "value": 8}}]}"#,
    )
    .unwrap();
    let again = d.join("again.gguf");
    let o = hotpatch(&[
        "apply",
        wrong.to_str().unwrap(),
        model.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("metadata[0] (llama.context_length): expected UINT32 999 but the model holds UINT32 512"),
        "{err}"
    );
    assert!(!again.exists());
}
