//! The writer: `parse(write(x)) == x` as a property, rewrites checked by gguf-py, in-place
//! edits, atomicity.

use std::io::Read;
use std::path::Path;

use hotpatch_gguf::{
    edit_file_in_place, encode_value, rewrite, write_file, GgmlType, GgufFile, MetaArray, MetaEdit,
    MetaValue, StringArray, TensorData, TensorSpec, TensorType, WriteProgress,
};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::*;

fn enc(v: &MetaValue) -> Vec<u8> {
    let mut b = vec![v.value_type().id() as u8];
    encode_value(&mut b, v);
    b
}

fn leaf_array() -> impl Strategy<Value = MetaArray> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..20).prop_map(MetaArray::U8),
        prop::collection::vec(any::<i8>(), 0..20).prop_map(MetaArray::I8),
        prop::collection::vec(any::<u16>(), 0..20).prop_map(MetaArray::U16),
        prop::collection::vec(any::<i16>(), 0..20).prop_map(MetaArray::I16),
        prop::collection::vec(any::<u32>(), 0..20).prop_map(MetaArray::U32),
        prop::collection::vec(any::<i32>(), 0..20).prop_map(MetaArray::I32),
        prop::collection::vec(any::<f32>(), 0..20).prop_map(MetaArray::F32),
        prop::collection::vec(any::<bool>(), 0..20).prop_map(MetaArray::Bool),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..10)
            .prop_map(|v| MetaArray::String(v.iter().collect::<StringArray>())),
        prop::collection::vec(any::<u64>(), 0..20).prop_map(MetaArray::U64),
        prop::collection::vec(any::<i64>(), 0..20).prop_map(MetaArray::I64),
        prop::collection::vec(any::<f64>(), 0..20).prop_map(MetaArray::F64),
    ]
}

fn array() -> impl Strategy<Value = MetaArray> {
    leaf_array().prop_recursive(3, 24, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(MetaArray::Array)
    })
}

fn value() -> impl Strategy<Value = MetaValue> {
    prop_oneof![
        any::<u8>().prop_map(MetaValue::U8),
        any::<i8>().prop_map(MetaValue::I8),
        any::<u16>().prop_map(MetaValue::U16),
        any::<i16>().prop_map(MetaValue::I16),
        any::<u32>().prop_map(MetaValue::U32),
        any::<i32>().prop_map(MetaValue::I32),
        any::<f32>().prop_map(MetaValue::F32),
        any::<bool>().prop_map(MetaValue::Bool),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(MetaValue::String),
        array().prop_map(MetaValue::Array),
        any::<u64>().prop_map(MetaValue::U64),
        any::<i64>().prop_map(MetaValue::I64),
        any::<f64>().prop_map(MetaValue::F64),
    ]
}

#[derive(Debug, Clone)]
struct T {
    ty: GgmlType,
    dims: Vec<u64>,
    data: Vec<u8>,
}

fn tensor() -> impl Strategy<Value = T> {
    let types = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::I8,
        GgmlType::IQ2_XXS,
    ];
    (
        prop::sample::select(types.to_vec()),
        prop::collection::vec(0u64..4, 0..4),
        0u64..3,
    )
        .prop_flat_map(|(ty, rest, blocks)| {
            let mut dims = vec![blocks * ty.block_size() as u64];
            dims.extend(rest);
            let n: u64 = dims.iter().product();
            let nbytes = n / ty.block_size() as u64 * ty.type_size() as u64;
            prop::collection::vec(any::<u8>(), nbytes as usize).prop_map(move |data| T {
                ty,
                dims: dims.clone(),
                data,
            })
        })
}

/// Version, alignment (if set), metadata, tensors.
type Model = (u32, Option<u32>, Vec<(String, MetaValue)>, Vec<T>);

fn model() -> impl Strategy<Value = Model> {
    (
        prop::sample::select(vec![2u32, 3]),
        prop::option::of(prop::sample::select(vec![1u32, 8, 32, 64, 4096])),
        prop::collection::vec(value(), 0..8),
        prop::collection::vec(tensor(), 0..6),
    )
        .prop_map(|(version, align, values, tensors)| {
            let mut meta: Vec<(String, MetaValue)> = values
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("k.{i}.é"), v))
                .collect();
            if let Some(a) = align {
                meta.insert(
                    meta.len() / 2,
                    ("general.alignment".into(), MetaValue::U32(a)),
                );
            }
            (version, align, meta, tensors)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// read(write(x)) == x: every metadata value bit for bit (NaNs included), every tensor's
    /// name, type, dims and bytes; offsets on the alignment.
    #[test]
    fn read_of_write_is_identity((version, align, meta, tensors) in model()) {
        let dir = tempdir();
        let path = dir.path().join("p.gguf");
        let specs = tensors.iter().enumerate().map(|(i, t)| TensorSpec {
            name: format!("t.{i}"),
            ty: TensorType::Known(t.ty),
            dims: t.dims.clone(),
            data: TensorData::Bytes(&t.data),
        }).collect();
        write_file(&path, version, &meta, specs, &mut |_| {}).expect("valid model writes");
        let f = GgufFile::open(&path).expect("written file parses");
        let idx = &f.index;
        prop_assert_eq!(idx.version, version);
        prop_assert_eq!(idx.alignment, u64::from(align.unwrap_or(32)));
        prop_assert_eq!(idx.metadata.len(), meta.len());
        for (e, (k, v)) in idx.metadata.iter().zip(&meta) {
            prop_assert_eq!(&e.key, k);
            prop_assert_eq!(enc(&e.value), enc(v), "value of {}", k);
            prop_assert_eq!(e.value_len, v.encoded_len(), "encoded_len of {}", k);
        }
        prop_assert_eq!(idx.tensors.len(), tensors.len());
        for (i, (ti, t)) in idx.tensors.iter().zip(&tensors).enumerate() {
            prop_assert_eq!(&ti.name, &format!("t.{i}"));
            prop_assert_eq!(ti.ty, TensorType::Known(t.ty));
            prop_assert_eq!(&ti.dims, &t.dims);
            prop_assert_eq!(ti.offset % idx.alignment, 0);
            prop_assert_eq!(f.tensor_data(ti).expect("in range"), &t.data[..]);
        }
    }
}

/// The gguf-py view of metadata as a map key → (type, value).
fn meta_map(d: &Value) -> serde_json::Map<String, Value> {
    d["metadata"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|m| !m["key"].as_str().unwrap_or("").starts_with("GGUF."))
        .map(|m| {
            (
                m["key"].as_str().expect("key").to_owned(),
                json!([m["types"], m["value"]]),
            )
        })
        .collect()
}

#[test]
fn rewrite_with_edits_reads_back_in_gguf_py() {
    let dir = tempdir();
    let src_path = make_fixture(dir.path(), "src.gguf", &[]);
    let src = GgufFile::open(&src_path).expect("fixture parses");
    let template = "{# a long template #}".repeat(500);
    let edits = [
        MetaEdit::Set(
            "tokenizer.chat_template".into(),
            MetaValue::string(template.clone()),
        ),
        MetaEdit::Remove("test.u8".into()),
        MetaEdit::Set("test.added".into(), MetaValue::U64(u64::MAX - 1)),
        MetaEdit::Set("general.alignment".into(), MetaValue::U32(64)),
    ];
    let out = dir.path().join("out.gguf");
    let mut reports: Vec<WriteProgress> = Vec::new();
    rewrite(&src, &edits, &out, &mut |p| reports.push(p)).expect("rewrite");
    let last = reports.last().expect("progress reported");
    assert_eq!(last.done, last.total, "progress ends complete");
    assert!(
        reports.windows(2).all(|w| w[0].done <= w[1].done),
        "progress is monotonic"
    );
    let total: u64 = src.index.tensors.iter().map(|t| t.nbytes).sum();
    assert_eq!(last.total, total, "progress counts tensor bytes");

    let before = dump(&src_path);
    let after = dump(&out);
    let (mb, ma) = (meta_map(&before), meta_map(&after));
    assert_eq!(
        ma["tokenizer.chat_template"][1],
        json!(template),
        "gguf-py reads the new template"
    );
    assert!(!ma.contains_key("test.u8"), "removed key is gone");
    assert_eq!(ma["test.added"], json!([["UINT64"], u64::MAX - 1]));
    assert_eq!(after["alignment"], json!(64));
    for (k, v) in &mb {
        if !["tokenizer.chat_template", "test.u8", "general.alignment"].contains(&k.as_str()) {
            assert_eq!(
                &ma[k], v,
                "untouched key {k} reads back identical in gguf-py"
            );
        }
    }
    let bt = before["tensors"].as_array().expect("tensors");
    let at = after["tensors"].as_array().expect("tensors");
    assert_eq!(bt.len(), at.len());
    for (b, a) in bt.iter().zip(at) {
        for k in ["name", "type", "dims", "nbytes", "data_sha256"] {
            assert_eq!(
                a[k], b[k],
                "{k} of {} unchanged by a metadata rewrite",
                b["name"]
            );
        }
        assert_eq!(
            a["offset"].as_u64().expect("offset") % 64,
            0,
            "{} on the new 64-byte alignment",
            a["name"]
        );
    }
    // And our reader agrees with gguf-py on the new file.
    crate::oracle::assert_matches_gguf_py(&out);
}

#[test]
fn in_place_edit_changes_only_the_value_bytes() {
    let dir = tempdir();
    let p = make_fixture(dir.path(), "m.gguf", &["--small"]);
    let before = std::fs::read(&p).expect("read");
    let old = GgufFile::open(&p)
        .expect("parses")
        .index
        .get_str("general.name")
        .expect("name")
        .to_owned();
    let new: String = "X".repeat(old.len());
    let range =
        edit_file_in_place(&p, "general.name", &MetaValue::string(new.clone())).expect("same size");
    let after = std::fs::read(&p).expect("read");
    assert_eq!(before.len(), after.len());
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        if !(range.start..range.end).contains(&(i as u64)) {
            assert_eq!(a, b, "byte {i} outside the edited value is untouched");
        }
    }
    assert_eq!(
        meta_map(&dump(&p))["general.name"][1],
        json!(new),
        "gguf-py reads the edited value"
    );
    edit_file_in_place(&p, "llama.block_count", &MetaValue::U32(77)).expect("u32 in place");
    assert_eq!(
        GgufFile::open(&p).expect("parses").index.block_count(),
        Some(77)
    );

    let longer = edit_file_in_place(
        &p,
        "general.name",
        &MetaValue::string("longer than before, surely"),
    )
    .expect_err("size differs");
    assert!(longer.to_string().contains("same-size"), "{longer}");
    let retype =
        edit_file_in_place(&p, "llama.block_count", &MetaValue::U64(1)).expect_err("type differs");
    assert!(retype.to_string().contains("UINT32"), "{retype}");
    let missing = edit_file_in_place(&p, "no.such.key", &MetaValue::U8(1)).expect_err("absent key");
    assert!(missing.to_string().contains("no.such.key"), "{missing}");
}

struct FailAfter(usize);

impl Read for FailAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::other("source went away"));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(7);
        self.0 -= n;
        Ok(n)
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn failed_write_leaves_destination_and_no_temp_file() {
    let dir = tempdir();
    let dest = dir.path().join("model.gguf");
    std::fs::write(&dest, b"previous contents").expect("write");
    let spec = TensorSpec {
        name: "w".into(),
        ty: TensorType::Known(GgmlType::F32),
        dims: vec![1 << 20],
        data: TensorData::Reader {
            reader: Box::new(FailAfter(1000)),
            len: 4 << 20,
        },
    };
    let err =
        write_file(&dest, 3, &[], vec![spec], &mut |_| {}).expect_err("the source fails midway");
    assert!(
        err.to_string().contains("tensor 'w'"),
        "error names the tensor: {err}"
    );
    assert_eq!(
        std::fs::read(&dest).expect("dest"),
        b"previous contents",
        "destination untouched"
    );
    assert_eq!(
        files_in(dir.path()),
        vec!["model.gguf".to_string()],
        "temporary file removed"
    );

    let bad = TensorSpec {
        name: "w".into(),
        ty: TensorType::Known(GgmlType::Q8_0),
        dims: vec![33],
        data: TensorData::Bytes(&[0; 34]),
    };
    let err = write_file(&dest, 3, &[], vec![bad], &mut |_| {}).expect_err("33 is not a Q8_0 row");
    assert!(err.to_string().contains("do not match Q8_0"), "{err}");
}

#[test]
fn rewrite_refuses_to_overwrite_its_source() {
    let dir = tempdir();
    let p = make_fixture(dir.path(), "m.gguf", &["--small"]);
    let src = GgufFile::open(&p).expect("parses");
    let err = rewrite(&src, &[], &p, &mut |_| {}).expect_err("same path");
    assert!(err.to_string().contains("over itself"), "{err}");
}

#[test]
fn files_of_2_pow_53_bytes_are_refused_before_writing() {
    // 2^51 f32 = 2^53 bytes of data: offsets would stop being exact as f64 over IPC.
    let dims = [1u64 << 51];
    let shape = hotpatch_gguf::TensorShape {
        name: "huge",
        ty: TensorType::Known(GgmlType::F32),
        dims: &dims,
        nbytes: 1 << 53,
    };
    let err = hotpatch_gguf::layout(3, &[], &[shape]).expect_err("2^53 bytes is too large");
    assert!(
        matches!(err, hotpatch_gguf::GgufError::FileTooLarge { size } if size >= 1 << 53),
        "{err}"
    );
    // Just under the limit is fine.
    let dims = [1u64 << 40];
    let shape = hotpatch_gguf::TensorShape {
        name: "big",
        ty: TensorType::Known(GgmlType::F32),
        dims: &dims,
        nbytes: 1 << 42,
    };
    assert!(
        hotpatch_gguf::layout(3, &[], &[shape]).is_ok(),
        "4 TiB is allowed"
    );
}
