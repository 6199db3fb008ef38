//! The `hotpatch` binary run on fixtures written by gguf-py at test time; its JSON compared with
//! what gguf-py's GGUFReader reports and its values with gguf-py's dequantizers.

mod cli_common;
use cli_common::hotpatch;

use std::path::{Path, PathBuf};

use hotpatch_quant::GgmlType;
use serde_json::{json, Value};

/// Runs a gguf-py oracle script of `crates/gguf/tests/oracle`; returns its stdout.
fn oracle(script: &str, args: &[&str]) -> String {
    hotpatch_testkit::run_py(&format!("crates/gguf/tests/oracle/{script}"), args)
}

fn fixture(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let p = dir.join(name);
    let mut args = vec![p.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    oracle("make_fixture.py", &args);
    p
}

fn ok_json(args: &[&str]) -> Value {
    let out = hotpatch(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "hotpatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// Asserts a bad-input failure: exit code 2, exactly one line on stderr, containing `needle`.
fn assert_bad_input(args: &[&str], needle: &str) -> String {
    let out = hotpatch(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "hotpatch {args:?} is bad input (exit 2); stderr: {err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "exactly one line on stderr: {err:?}"
    );
    assert!(
        err.contains(needle),
        "stderr names the problem ({needle:?}): {err}"
    );
    assert!(!err.contains("panicked"), "no panic: {err}");
    err
}

/// gguf-py's flattened view of a (possibly nested) JSON array.
fn flatten(v: &Value) -> Value {
    fn go(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| go(x, out)),
            x => out.push(x.clone()),
        }
    }
    match v {
        Value::Array(_) => {
            let mut out = Vec::new();
            go(v, &mut out);
            Value::Array(out)
        }
        x => x.clone(),
    }
}

/// A JSON value (number or the non-finite strings) as the f32 it stands for.
fn as_f32(v: &Value) -> f32 {
    match v {
        Value::String(s) if s == "NaN" => f32::NAN,
        Value::String(s) if s == "Infinity" => f32::INFINITY,
        Value::String(s) if s == "-Infinity" => f32::NEG_INFINITY,
        v => v.as_f64().unwrap_or_else(|| panic!("{v} is a number")) as f32,
    }
}

fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Whether this build's codec library dequantizes `ty` (codecs land from other work streams).
fn have_codec(ty: GgmlType) -> bool {
    let src = vec![0u8; ty.type_size()];
    let mut dst = vec![0f32; ty.block_size()];
    hotpatch_quant::dequantize(ty, &src, &mut dst).is_ok()
}

#[test]
fn inspect_json_matches_gguf_py() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = fixture(dir.path(), "f.gguf", &[]);
    let ps = p.to_str().expect("utf-8");
    let ours = ok_json(&["inspect", ps, "--json"]);
    let theirs: Value = serde_json::from_str(&oracle("dump_gguf.py", &[ps])).expect("dump JSON");
    assert_eq!(ours["version"], json!(3), "gguf-py writes v3");
    assert_eq!(ours["alignment"], theirs["alignment"]);
    assert_eq!(
        ours["data_offset"], theirs["data_offset"],
        "data section offset"
    );
    let meta: Vec<&Value> = theirs["metadata"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|m| !m["key"].as_str().unwrap_or("").starts_with("GGUF."))
        .collect();
    let ours_meta = ours["metadata"].as_array().expect("metadata list");
    assert_eq!(ours_meta.len(), meta.len(), "one entry per gguf-py field");
    for (o, t) in ours_meta.iter().zip(meta) {
        assert_eq!(o["key"], t["key"]);
        assert_eq!(o["type"], t["types"][0], "type of {}", o["key"]);
        if o["type"] == "ARRAY" {
            assert_eq!(
                o["element_type"], t["types"][1],
                "element type of {}",
                o["key"]
            );
        }
        assert_eq!(
            flatten(&o["value"]),
            t["value"],
            "value of {} (gguf-py flattens nested arrays)",
            o["key"]
        );
    }
    let by_key = |k: &str| {
        ours_meta
            .iter()
            .find(|m| m["key"] == k)
            .map(|m| m["value"].clone())
    };
    assert_eq!(
        by_key("test.nested"),
        Some(json!([[1, 2, 3], [4]])),
        "nested arrays stay nested"
    );
    assert_eq!(
        by_key("test.u64"),
        Some(json!(u64::MAX)),
        "64-bit integers exact"
    );
    assert_eq!(
        by_key("test.i64"),
        Some(json!(i64::MIN)),
        "64-bit integers exact"
    );
    let tensors = ours["tensors"].as_array().expect("tensors");
    let theirs_t = theirs["tensors"].as_array().expect("tensors");
    assert_eq!(tensors.len(), theirs_t.len());
    for (o, t) in tensors.iter().zip(theirs_t) {
        for k in ["name", "type", "dims", "offset", "nbytes"] {
            assert_eq!(o[k], t[k], "{k} of tensor {}", o["name"]);
        }
    }
}

#[test]
fn tensor_values_match_gguf_py_for_every_available_codec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = fixture(dir.path(), "f.gguf", &["--seed", "3"]);
    let ps = p.to_str().expect("utf-8");
    let theirs: Value =
        serde_json::from_str(&oracle("dump_gguf.py", &[ps, "--values"])).expect("dump JSON");
    let mut checked = Vec::new();
    let mut missing = Vec::new();
    for t in theirs["tensors"].as_array().expect("tensors") {
        let name = t["name"].as_str().expect("name");
        let ty = GgmlType::from_name(t["type"].as_str().expect("type")).expect("known type");
        if !have_codec(ty) {
            // The codec is not in this build: a clean exit-2 error naming the type.
            assert_bad_input(&["tensor", ps, name, "--json"], ty.name());
            missing.push(ty.name());
            continue;
        }
        let ours = ok_json(&["tensor", ps, name, "--json"]);
        assert_eq!(ours["name"], t["name"]);
        assert_eq!(ours["type"], t["type"]);
        assert_eq!(ours["dims"], t["dims"]);
        let ov = ours["values"].as_array().expect("values");
        let Some(tv) = t["values"].as_array() else {
            continue; // gguf-py cannot dequantize this type; nothing to compare against.
        };
        assert_eq!(ov.len(), tv.len(), "{name}: one value per element");
        for (i, (a, b)) in ov.iter().zip(tv).enumerate() {
            assert!(
                same_f32(as_f32(a), as_f32(b)),
                "{name}[{i}]: hotpatch {a} vs gguf-py {b}"
            );
        }
        checked.push(ty.name());
    }
    eprintln!("values checked against gguf-py: {checked:?}; codecs not in this build: {missing:?}");
}

#[test]
fn start_count_and_raw_f32_select_the_same_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = fixture(dir.path(), "f.gguf", &[]);
    let ps = p.to_str().expect("utf-8");
    // A type whose blocks are 256 wide, so the slice starts and ends inside blocks.
    let name = ["raw.q4_k.weight", "quant.q8_0.weight", "token_embd.weight"]
        .into_iter()
        .find(|n| {
            hotpatch(&["tensor", ps, n, "--json", "--count", "1"])
                .status
                .success()
        })
        .expect("at least one codec (K-quants) is in this build");
    let all = ok_json(&["tensor", ps, name, "--json"]);
    let all = all["values"].as_array().expect("values").clone();
    let part = ok_json(&[
        "tensor", ps, name, "--json", "--start", "250", "--count", "300",
    ]);
    assert_eq!(part["start"], json!(250));
    let part = part["values"].as_array().expect("values");
    assert_eq!(part.len(), 300);
    for (i, v) in part.iter().enumerate() {
        assert!(
            same_f32(as_f32(v), as_f32(&all[250 + i])),
            "element {} through --start/--count",
            250 + i
        );
    }
    let raw = dir.path().join("v.f32");
    let out = hotpatch(&[
        "tensor",
        ps,
        name,
        "--start",
        "7",
        "--count",
        "600",
        "--raw-f32",
        raw.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&raw).expect("raw file written");
    assert_eq!(bytes.len(), 600 * 4, "600 little-endian f32");
    for (i, c) in bytes.chunks_exact(4).enumerate() {
        let v = f32::from_le_bytes(c.try_into().expect("4 bytes"));
        assert!(same_f32(v, as_f32(&all[7 + i])), "raw element {}", 7 + i);
    }
    assert_bad_input(&["tensor", ps, name, "--start", "1025"], "past the end");
    assert_bad_input(
        &["tensor", ps, name, "--start", "1000", "--count", "25"],
        "past the end",
    );
    let empty = ok_json(&["tensor", ps, name, "--json", "--start", "1024"]);
    assert_eq!(
        empty["values"],
        json!([]),
        "an empty range at the end is fine"
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = fixture(dir.path(), "f.gguf", &["--small"]);
    let ps = p.to_str().expect("utf-8");
    assert_bad_input(&["tensor", ps, "no.such.tensor"], "no.such.tensor");
    let missing = dir.path().join("missing.gguf");
    assert_bad_input(
        &["inspect", missing.to_str().expect("utf-8")],
        "missing.gguf",
    );
    let bytes = std::fs::read(&p).expect("fixture");
    let trunc = dir.path().join("trunc.gguf");
    std::fs::write(&trunc, &bytes[..bytes.len() - 100]).expect("write");
    let err = assert_bad_input(
        &["inspect", trunc.to_str().expect("utf-8"), "--json"],
        "trunc.gguf",
    );
    assert!(
        err.contains("past end of file"),
        "a truncated file loses its last tensors' data: {err}"
    );
    let head = dir.path().join("head.gguf");
    std::fs::write(&head, &bytes[..100]).expect("write");
    assert_bad_input(&["inspect", head.to_str().expect("utf-8")], "offset 0x");
    let notgguf = dir.path().join("x.txt");
    std::fs::write(&notgguf, b"hello world").expect("write");
    assert_bad_input(
        &["inspect", notgguf.to_str().expect("utf-8")],
        "not a GGUF file",
    );
    assert_bad_input(&["inspect"], "MODEL");
    assert_bad_input(&["tensor", ps], "NAME");
    assert_bad_input(
        &["tensor", ps, "output_norm.weight", "--start", "x"],
        "--start",
    );
    assert_bad_input(&["frobnicate"], "frobnicate");
}

/// A directory given as the model says so, naming it once (not "No such device (os error 19)")
/// — read-only commands and those that attach an edit session alike.
#[test]
fn a_directory_given_as_the_model_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("model.gguf");
    std::fs::create_dir(&folder).expect("mkdir");
    let f = folder.to_str().expect("utf-8");
    let out = dir.path().join("out.gguf");
    for args in [
        vec!["inspect", f],
        vec!["scan", f],
        vec![
            "edit",
            f,
            "--set",
            "x[0]=1",
            "--out",
            out.to_str().expect("utf-8"),
        ],
    ] {
        let err = assert_bad_input(&args, "is a directory, not a GGUF file");
        assert_eq!(err.matches(f).count(), 1, "{args:?}: the path once: {err}");
        assert!(!err.contains("os error 19"), "{err}");
    }
}

#[test]
fn split_model_inspects_as_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path(), "m.gguf", &["--split-max-tensors", "8"]);
    let first = dir.path().join("m-00002-of-00005.gguf");
    let j = ok_json(&["inspect", first.to_str().expect("utf-8"), "--json"]);
    let tensors = j["tensors"].as_array().expect("tensors");
    assert_eq!(tensors.len(), 33, "all shards' tensors");
    assert_eq!(j["shards"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        tensors[32]["shard"],
        json!(4),
        "the last tensor is in the 5th shard"
    );
}

#[test]
fn human_inspect_lists_keys_and_tensors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = fixture(dir.path(), "f.gguf", &["--small"]);
    let out = hotpatch(&["inspect", p.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("general.architecture") && s.contains("\"llama\""),
        "{s}"
    );
    assert!(
        s.contains("token_embd.weight") && s.contains("[64, 8]"),
        "{s}"
    );
}
