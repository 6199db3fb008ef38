//! The reader against gguf-py's GGUFReader on files gguf-py wrote.

use hotpatch_gguf::{GgufFile, MetaArray, MetaValue};
use serde_json::{json, Value};

use crate::common::*;

/// gguf-py's `contents()` view of a value: scalars as numbers, strings as text, arrays
/// flattened (gguf-py flattens nested arrays).
fn flat(v: &MetaValue) -> Value {
    fn arr(a: &MetaArray, out: &mut Vec<Value>) {
        match a {
            MetaArray::U8(v) => out.extend(v.iter().map(|&x| json!(x))),
            MetaArray::I8(v) => out.extend(v.iter().map(|&x| json!(x))),
            MetaArray::U16(v) => out.extend(v.iter().map(|&x| json!(x))),
            MetaArray::I16(v) => out.extend(v.iter().map(|&x| json!(x))),
            MetaArray::U32(v) => out.extend(v.iter().map(|&x| json!(x))),
            MetaArray::I32(v) => out.extend(v.iter().map(|&x| json!(x))),
            MetaArray::U64(v) => out.extend(v.iter().map(|&x| json!(x))),
            MetaArray::I64(v) => out.extend(v.iter().map(|&x| json!(x))),
            MetaArray::F32(v) => out.extend(v.iter().map(|&x| json!(f64::from(x)))),
            MetaArray::F64(v) => out.extend(v.iter().map(|&x| json!(x))),
            MetaArray::Bool(v) => out.extend(v.iter().map(|&x| json!(x))),
            MetaArray::String(s) => out.extend(s.iter().map(|x| json!(String::from_utf8_lossy(x)))),
            MetaArray::Array(v) => v.iter().for_each(|a| arr(a, out)),
        }
    }
    match v {
        MetaValue::U8(x) => json!(x),
        MetaValue::I8(x) => json!(x),
        MetaValue::U16(x) => json!(x),
        MetaValue::I16(x) => json!(x),
        MetaValue::U32(x) => json!(x),
        MetaValue::I32(x) => json!(x),
        MetaValue::U64(x) => json!(x),
        MetaValue::I64(x) => json!(x),
        MetaValue::F32(x) => json!(f64::from(*x)),
        MetaValue::F64(x) => json!(x),
        MetaValue::Bool(x) => json!(x),
        MetaValue::String(s) => json!(String::from_utf8_lossy(s)),
        MetaValue::Array(a) => {
            let mut out = Vec::new();
            arr(a, &mut out);
            Value::Array(out)
        }
    }
}

/// Checks every metadata entry and tensor of `path` against gguf-py.
pub fn assert_matches_gguf_py(path: &std::path::Path) {
    let f = GgufFile::open(path).expect("gguf-py's file parses");
    let d = dump(path);
    let idx = &f.index;
    assert_eq!(
        json!(idx.data_offset),
        d["data_offset"],
        "data section offset as gguf-py computes it"
    );
    assert_eq!(json!(idx.alignment), d["alignment"], "alignment");
    let meta = d["metadata"].as_array().expect("metadata list");
    // gguf-py lists GGUF.version, GGUF.tensor_count, GGUF.kv_count as pseudo-fields first.
    let meta: Vec<&Value> = meta
        .iter()
        .filter(|m| !m["key"].as_str().unwrap_or("").starts_with("GGUF."))
        .collect();
    assert_eq!(
        idx.metadata.len(),
        meta.len(),
        "same number of metadata entries as gguf-py"
    );
    for (e, m) in idx.metadata.iter().zip(meta) {
        assert_eq!(json!(e.key), m["key"], "keys in file order");
        assert_eq!(json!(e.offset), m["offset"], "offset of entry '{}'", e.key);
        let raw =
            &f.bytes()[(e.value_offset - 4) as usize..(e.value_offset + e.value_len) as usize];
        assert_eq!(
            json!(hex(raw)),
            m["raw_hex"],
            "bytes of '{}' from type id to end of value",
            e.key
        );
        assert_eq!(
            json!(e.value.value_type().name()),
            m["types"][0],
            "type of '{}'",
            e.key
        );
        if let MetaValue::Array(a) = &e.value {
            let mut inner = a;
            let mut k = 1;
            loop {
                assert_eq!(
                    json!(inner.element_type().name()),
                    m["types"][k],
                    "element type of '{}' level {k}",
                    e.key
                );
                match inner {
                    MetaArray::Array(v) if !v.is_empty() => inner = &v[0],
                    _ => break,
                }
                k += 1;
            }
        }
        assert_eq!(
            flat(&e.value),
            m["value"],
            "value of '{}' as gguf-py decodes it",
            e.key
        );
    }
    let ts = d["tensors"].as_array().expect("tensor list");
    assert_eq!(idx.tensors.len(), ts.len(), "same number of tensors");
    for (t, g) in idx.tensors.iter().zip(ts) {
        assert_eq!(json!(t.name), g["name"]);
        assert_eq!(json!(t.ty.to_string()), g["type"], "type of {}", t.name);
        assert_eq!(json!(t.dims), g["dims"], "dims of {} in ggml order", t.name);
        assert_eq!(
            json!(t.offset),
            g["offset"],
            "absolute data offset of {}",
            t.name
        );
        assert_eq!(json!(t.nbytes), g["nbytes"], "data size of {}", t.name);
        assert_eq!(
            t.n_elements,
            t.dims.iter().product::<u64>(),
            "element count of {}",
            t.name
        );
        let data = f.tensor_data(t).expect("tensor data in range");
        let sha = run_sha(data);
        assert_eq!(json!(sha), g["data_sha256"], "data bytes of {}", t.name);
    }
}

fn run_sha(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = child.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn every_metadata_type_and_tensor_type_matches_gguf_py() {
    let dir = tempdir();
    let p = make_fixture(dir.path(), "fixture.gguf", &[]);
    assert_matches_gguf_py(&p);
    let f = GgufFile::open(&p).expect("parses");
    let idx = &f.index;
    // Spot checks of typed getters on values the fixture script sets.
    assert_eq!(idx.architecture(), Some("llama"));
    assert_eq!(idx.head_count(), Some(4));
    assert_eq!(idx.head_count_kv(), Some(2));
    assert_eq!(
        idx.get_u64("test.u64"),
        Some(u64::MAX),
        "64-bit values are exact"
    );
    assert_eq!(idx.get("test.i64"), Some(&MetaValue::I64(i64::MIN)));
    assert_eq!(idx.get_str("general.name"), Some("hotpatch fixture ✓"));
    let nested = idx.get_array("test.nested").expect("nested array");
    assert_eq!(
        nested,
        &MetaArray::Array(vec![MetaArray::I32(vec![1, 2, 3]), MetaArray::I32(vec![4])]),
        "nested arrays keep their structure"
    );
    let toks = idx
        .get_array("tokenizer.ggml.tokens")
        .and_then(MetaArray::as_strings)
        .expect("token list");
    assert_eq!(toks.len(), 3 + 256 + 3);
    assert_eq!(toks.get(261), Some("日本".as_bytes()));
}

#[test]
fn custom_alignment_matches_gguf_py() {
    let dir = tempdir();
    let p = make_fixture(
        dir.path(),
        "aligned.gguf",
        &["--alignment", "256", "--small"],
    );
    assert_matches_gguf_py(&p);
    let f = GgufFile::open(&p).expect("parses");
    assert_eq!(f.index.alignment, 256);
    for t in &f.index.tensors {
        assert_eq!(
            t.offset % 256,
            0,
            "{} sits on the 256-byte alignment",
            t.name
        );
    }
}

#[test]
fn demo_model_matches_gguf_py() {
    let dir = tempdir();
    let p = dir.path().join("demo.gguf");
    run_py(
        &workspace().join("scripts/make_demo_model.py"),
        &[p.to_str().expect("utf-8")],
    );
    assert_matches_gguf_py(&p);
}
