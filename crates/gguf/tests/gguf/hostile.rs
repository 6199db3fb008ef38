//! Hostile files: each is refused with the error it deserves, naming the field and offset.
//!
//! The cases are built here, byte by byte; the same bytes are committed under
//! `tests/hostile/` (with a README listing each file's expected error) so the fuzz target and
//! people can use them. `HOTPATCH_BLESS=1 cargo test -p hotpatch-gguf --test gguf hostile`
//! rewrites the folder after a deliberate change.

use std::path::{Path, PathBuf};

use hotpatch_gguf::{
    layout, parse, GgmlType, GgufError, GgufFile, MetaArray, MetaValue, StringArray, TensorShape,
    TensorType,
};

/// Raw GGUF bytes, written field by field (little-endian).
#[derive(Default, Clone)]
struct B(Vec<u8>);

impl B {
    fn header(version: u32, tensors: u64, kvs: u64) -> B {
        B::default().raw(b"GGUF").u32(version).u64(tensors).u64(kvs)
    }
    fn raw(mut self, b: &[u8]) -> B {
        self.0.extend_from_slice(b);
        self
    }
    fn u8(self, v: u8) -> B {
        self.raw(&[v])
    }
    fn u32(self, v: u32) -> B {
        self.raw(&v.to_le_bytes())
    }
    fn u64(self, v: u64) -> B {
        self.raw(&v.to_le_bytes())
    }
    fn s(self, s: &[u8]) -> B {
        self.u64(s.len() as u64).raw(s)
    }
    /// A metadata entry header: key and value type.
    fn kv(self, key: &str, ty: u32) -> B {
        self.s(key.as_bytes()).u32(ty)
    }
    /// A tensor info.
    fn ti(self, name: &str, dims: &[u64], ty: u32, off: u64) -> B {
        let mut b = self.s(name.as_bytes()).u32(dims.len() as u32);
        for &d in dims {
            b = b.u64(d);
        }
        b.u32(ty).u64(off)
    }
    /// Pads with zeros to `n` bytes.
    fn pad_to(mut self, n: usize) -> B {
        self.0.resize(n.max(self.0.len()), 0);
        self
    }
}

struct Case {
    file: &'static str,
    bytes: Vec<u8>,
    /// A substring the error message must contain (the field and where).
    expect: &'static str,
    what: &'static str,
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add = |file, bytes: B, expect, what| {
        v.push(Case {
            file,
            bytes: bytes.0,
            expect,
            what,
        })
    };
    let one_kv = |key: &str, ty: u32| B::header(3, 0, 1).kv(key, ty);
    // Header.
    add(
        "empty.gguf",
        B::default(),
        "magic at offset 0x0: needs 4 bytes",
        "empty file",
    );
    add(
        "magic_only.gguf",
        B::default().raw(b"GGUF"),
        "version at offset 0x4: needs 4 bytes",
        "ends after the magic",
    );
    add(
        "bad_magic.gguf",
        B::default().raw(b"GGML").u32(3).u64(0).u64(0),
        "not a GGUF file",
        "wrong magic",
    );
    add(
        "version_1.gguf",
        B::header(1, 0, 0),
        "unsupported GGUF version 1",
        "GGUF v1 (32-bit counts)",
    );
    add(
        "version_99.gguf",
        B::header(99, 0, 0),
        "unsupported GGUF version 99",
        "future version",
    );
    add(
        "big_endian.gguf",
        B::default()
            .raw(b"GGUF")
            .raw(&3u32.to_be_bytes())
            .raw(&0u64.to_be_bytes())
            .raw(&0u64.to_be_bytes()),
        "big-endian GGUF (version 3 byte-swapped",
        "big-endian file",
    );
    add(
        "truncated_tensor_count.gguf",
        B::default().raw(b"GGUF").u32(3).raw(&[0; 5]),
        "tensor count at offset 0x8: needs 8 bytes",
        "cut in the tensor count",
    );
    add(
        "truncated_kv_count.gguf",
        B::default().raw(b"GGUF").u32(3).u64(0).raw(&[1]),
        "metadata entry count at offset 0x10",
        "cut in the metadata count",
    );
    // Absurd counts: refused before any allocation.
    add(
        "kv_count_2_60.gguf",
        B::header(3, 0, 1 << 60),
        "metadata entry count at offset 0x10: count 1152921504606846976 cannot fit",
        "2^60 metadata entries",
    );
    add(
        "tensor_count_2_60.gguf",
        B::header(3, 1 << 60, 0),
        "tensor count at offset 0x8: count 1152921504606846976 cannot fit",
        "2^60 tensors",
    );
    add(
        "tensor_count_u64_max.gguf",
        B::header(3, u64::MAX, 0).pad_to(4096),
        "tensor count at offset 0x8: count 18446744073709551615",
        "u64::MAX tensors",
    );
    // Keys.
    add(
        "key_len_2_63.gguf",
        B::header(3, 0, 1).u64(1 << 63).pad_to(64),
        "key of metadata entry 0 at offset 0x20: needs 9223372036854775808 bytes",
        "key length 2^63",
    );
    add(
        "key_truncated.gguf",
        B::header(3, 0, 1).u64(10).raw(b"gen").pad_to(39),
        "key of metadata entry 0 at offset 0x20: needs 10 bytes",
        "key cut short",
    );
    add(
        "key_bad_utf8.gguf",
        one_kv("x", 4).u32(1).pad_to(64).pipe_key_bad_utf8(),
        "key of metadata entry 0 at offset 0x20 is not valid UTF-8",
        "key not UTF-8",
    );
    add(
        "duplicate_key.gguf",
        B::header(3, 0, 2).kv("a.b", 4).u32(1).kv("a.b", 4).u32(2),
        "duplicate metadata key 'a.b' at offset 0x2b (first at 0x18)",
        "same key twice",
    );
    // Values.
    add(
        "value_type_13.gguf",
        one_kv("k", 13).u32(0),
        "metadata 'k' at offset 0x21: unknown metadata value type 13",
        "value type 13",
    );
    add(
        "value_type_u32_max.gguf",
        one_kv("k", u32::MAX).u32(0),
        "unknown metadata value type 4294967295",
        "value type 0xffffffff",
    );
    add(
        "value_truncated_u64.gguf",
        one_kv("k", 10).raw(&[1, 2, 3]),
        "value of metadata 'k' at offset 0x25: needs 8 bytes",
        "u64 value cut short",
    );
    add(
        "string_len_2_62.gguf",
        one_kv("k", 8).u64(1 << 62).pad_to(256),
        "value of metadata 'k' at offset 0x2d: needs 4611686018427387904 bytes",
        "string length 2^62",
    );
    add(
        "string_truncated.gguf",
        one_kv("k", 8).u64(100).raw(b"abc"),
        "value of metadata 'k' at offset 0x2d: needs 100 bytes",
        "string cut short",
    );
    add(
        "bool_2.gguf",
        one_kv("k", 7).u8(2),
        "value of metadata 'k' at offset 0x25: bool byte is 2",
        "bool that is neither 0 nor 1",
    );
    // Arrays.
    add("array_count_2_61.gguf", one_kv("k", 9).u32(4).u64(1 << 61).pad_to(512), "element count of array in metadata 'k' (depth 1) at offset 0x29: count 2305843009213693952 cannot fit", "u32 array of 2^61 elements");
    add(
        "string_array_count_2_60.gguf",
        one_kv("k", 9).u32(8).u64(1 << 60).pad_to(512),
        "count 1152921504606846976 cannot fit",
        "string array of 2^60 elements",
    );
    add(
        "string_array_elem_truncated.gguf",
        one_kv("k", 9).u32(8).u64(2).s(b"ok").u64(50).raw(b"short"),
        "string 1 of array in metadata 'k' (depth 1) at offset 0x43: needs 50 bytes",
        "second string cut short",
    );
    add(
        "array_elem_type_bad.gguf",
        one_kv("k", 9).u32(77).u64(1).u32(0),
        "array in metadata 'k' (depth 1) at offset 0x25: unknown metadata value type 77",
        "array of type 77",
    );
    add(
        "bool_array_bad.gguf",
        one_kv("k", 9).u32(7).u64(3).raw(&[0, 1, 9]),
        "element 2 of array in metadata 'k' (depth 1) at offset 0x33: bool byte is 9",
        "bool array with a 9",
    );
    let mut bomb = one_kv("k", 9);
    for _ in 0..100 {
        bomb = bomb.u32(9).u64(1);
    }
    add(
        "nesting_bomb.gguf",
        bomb.u32(4).u64(0),
        "metadata 'k' at offset 0x85: arrays nested deeper than 8 levels",
        "100 nested arrays",
    );
    add("nested_count_2_40.gguf", one_kv("k", 9).u32(9).u64(1 << 40).pad_to(4096), "element count of array in metadata 'k' (depth 1) at offset 0x29: count 1099511627776 cannot fit", "array of 2^40 arrays");
    // Alignment.
    let align = |ty: u32, val: B| B::header(3, 0, 1).kv("general.alignment", ty).raw(&val.0);
    add(
        "alignment_0.gguf",
        align(4, B::default().u32(0)),
        "'general.alignment' at offset 0x18: 0 is not a power of two",
        "alignment 0",
    );
    add(
        "alignment_48.gguf",
        align(4, B::default().u32(48)),
        "48 is not a power of two",
        "alignment 48",
    );
    add(
        "alignment_u64.gguf",
        align(10, B::default().u64(32)),
        "'general.alignment' at offset 0x18: type is UINT64, expected UINT32",
        "alignment stored as u64",
    );
    add(
        "alignment_2_31.gguf",
        align(4, B::default().u32(1 << 31)),
        "2147483648 is not a power of two between 1 and 1048576",
        "alignment 2 GiB",
    );
    // Tensor infos.
    let t1 =
        |name: &str, dims: &[u64], ty: u32, off: u64| B::header(3, 1, 0).ti(name, dims, ty, off);
    add(
        "tensor_name_2_63.gguf",
        B::header(3, 1, 0).u64(1 << 63).pad_to(128),
        "name of tensor 0 at offset 0x20: needs 9223372036854775808 bytes",
        "tensor name length 2^63",
    );
    add(
        "tensor_name_bad_utf8.gguf",
        B::header(3, 1, 0)
            .s(&[0xff, 0xfe])
            .u32(1)
            .u64(32)
            .u32(0)
            .u64(0)
            .pad_to(256),
        "name of tensor 0 at offset 0x20 is not valid UTF-8",
        "tensor name not UTF-8",
    );
    add(
        "too_many_dims.gguf",
        t1("w", &[1, 1, 1, 1, 1], 0, 0).pad_to(256),
        "tensor 'w' (index 0) at offset 0x21: 5 dimensions, at most 4 allowed",
        "5 dimensions",
    );
    add(
        "dims_u32_max.gguf",
        B::header(3, 1, 0).s(b"w").u32(u32::MAX).pad_to(256),
        "4294967295 dimensions",
        "2^32-1 dimensions",
    );
    add(
        "dims_overflow.gguf",
        t1("w", &[1 << 32, 1 << 32], 0, 0).pad_to(256),
        "tensor 'w' (index 0) at offset 0x2d: element count overflows at dimension 1",
        "2^32 x 2^32 elements",
    );
    add(
        "dim_negative.gguf",
        t1("w", &[u64::MAX], 0, 0).pad_to(256),
        "dimension 0 is 18446744073709551615, negative as ggml's int64",
        "dimension -1",
    );
    add(
        "size_overflow_f64.gguf",
        t1("w", &[1 << 62], GgmlType::F64.id(), 0).pad_to(256),
        "data size of 4611686018427387904 F64 elements overflows",
        "2^62 f64 = 2^65 bytes",
    );
    add(
        "block_mismatch_q4_0.gguf",
        t1("w", &[31], GgmlType::Q4_0.id(), 0).pad_to(256),
        "first dimension 31 is not a multiple of the Q4_0 block size 32",
        "Q4_0 row of 31",
    );
    add(
        "misaligned_offset.gguf",
        t1("w", &[4], 0, 7).pad_to(256),
        "tensor 'w' (index 0) at offset 0x31: data offset 7 is not a multiple of the alignment 32",
        "offset 7",
    );
    add("tensor_past_eof.gguf", t1("w", &[1024], 0, 0).pad_to(128), "tensor 'w' (index 0) at offset 0x18: data [0x40, +4096) extends past end of file (size 128)", "data past the end");
    add(
        "tensor_offset_overflow.gguf",
        t1("w", &[4], 0, u64::MAX - 31).pad_to(128),
        "data offset 18446744073709551584 overflows",
        "offset near 2^64",
    );
    add(
        "truncated_tensor_info.gguf",
        B::header(3, 1, 0)
            .s(b"a_long_tensor_name_here")
            .u32(2)
            .u64(4)
            .raw(&[0, 0]),
        "dimension 1 of tensor 'a_long_tensor_name_here' (index 0) at offset 0x43: needs 8 bytes",
        "cut inside the dims",
    );
    add(
        "duplicate_tensor.gguf",
        B::header(3, 2, 0)
            .ti("w", &[4], 0, 0)
            .ti("w", &[4], 0, 32)
            .pad_to(256),
        "duplicate tensor name 'w' (index 1) at offset 0x39 (first is index 0)",
        "same tensor name twice",
    );
    add(
        "overlapping_tensors.gguf",
        B::header(3, 2, 0)
            .ti("a", &[16], 0, 0)
            .ti("b", &[16], 0, 32)
            .pad_to(256),
        "tensor 'b' (index 1) data [0x80, 0xc0) overlaps tensor 'a' data [0x60, 0xa0)",
        "second tensor starts inside the first",
    );
    add(
        "same_offset_tensors.gguf",
        B::header(3, 2, 0)
            .ti("a", &[8], 0, 0)
            .ti("b", &[8], 0, 0)
            .pad_to(256),
        "overlaps tensor",
        "two tensors at the same offset",
    );
    add(
        "overlap_hidden_by_empty.gguf",
        B::header(3, 3, 0)
            .ti("big", &[64], 0, 0)
            .ti("empty", &[0], 0, 32)
            .ti("c", &[8], 0, 128)
            .pad_to(512),
        "tensor 'c' (index 2) data",
        "overlap with an empty tensor in between",
    );
    v
}

trait BadUtf8 {
    fn pipe_key_bad_utf8(self) -> B;
}

impl BadUtf8 for B {
    /// Replaces the one-byte key `x` (at offset 0x20) by an invalid UTF-8 byte.
    fn pipe_key_bad_utf8(mut self) -> B {
        self.0[0x20] = 0xff;
        self
    }
}

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile")
}

#[test]
fn every_hostile_file_gets_its_error() {
    let cases = cases();
    assert!(cases.len() >= 30, "at least 30 hostile files");
    let bless = std::env::var_os("HOTPATCH_BLESS").is_some();
    let mut readme = String::from(
        "# Hostile GGUF files\n\nEach file here must be refused by `hotpatch_gguf::parse` with an error containing the text\n\
         shown (the field and its byte offset). Generated by `crates/gguf/tests/gguf/hostile.rs`;\n\
         regenerate with `HOTPATCH_BLESS=1 cargo test -p hotpatch-gguf --test gguf hostile`.\n\
         They also seed the fuzz corpus (`fuzz/`).\n\n| file | what | expected error contains |\n|---|---|---|\n",
    );
    for c in &cases {
        let err = parse(&c.bytes).expect_err(c.what);
        let msg = err.to_string();
        assert!(
            msg.contains(c.expect),
            "{} ({}): error {msg:?} should contain {:?}",
            c.file,
            c.what,
            c.expect
        );
        let path = folder().join(c.file);
        if bless {
            std::fs::create_dir_all(folder()).expect("mkdir");
            std::fs::write(&path, &c.bytes).expect("write hostile file");
        }
        let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with HOTPATCH_BLESS=1 to create)",
                path.display()
            )
        });
        assert_eq!(
            on_disk, c.bytes,
            "{} is stale: run with HOTPATCH_BLESS=1",
            c.file
        );
        // Through the file API too: same refusal.
        let via_file = GgufFile::open(&path).expect_err(c.what).to_string();
        assert!(
            via_file.contains(c.expect),
            "{}: via GgufFile::open: {via_file}",
            c.file
        );
        readme.push_str(&format!(
            "| `{}` | {} | `{}` |\n",
            c.file,
            c.what,
            c.expect.replace('|', "\\|")
        ));
    }
    let readme_path = folder().join("README.md");
    if bless {
        std::fs::write(&readme_path, &readme).expect("write README");
    }
    assert_eq!(
        std::fs::read_to_string(&readme_path).unwrap_or_default(),
        readme,
        "README.md is stale: run with HOTPATCH_BLESS=1"
    );
    let listed: std::collections::HashSet<_> = cases.iter().map(|c| c.file.to_owned()).collect();
    for e in std::fs::read_dir(folder()).expect("hostile folder") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(
            name == "README.md" || listed.contains(&name),
            "{name} in tests/hostile has no case"
        );
    }
}

#[test]
fn unknown_tensor_type_is_listed_but_its_values_refused() {
    // Two tensors: an unknown type id 99 then an F32; the unknown one is sized by its room.
    // Header: 24 + 39 + 37 = 100 bytes, data at 128; "known" at 192..208, file 224 bytes.
    let b = B::header(3, 2, 0)
        .ti("mystery", &[10], 99, 0)
        .ti("known", &[4], 0, 64)
        .pad_to(224);
    let idx = parse(&b.0).expect("unknown type ids are tolerated");
    let t = idx.tensor("mystery").expect("listed");
    assert_eq!(t.ty, TensorType::Unknown(99));
    assert_eq!(
        t.nbytes, 64,
        "unknown size: up to the next tensor (64 bytes later)"
    );
    let e = t.ggml_type().expect_err("no values for an unknown type");
    assert!(e.to_string().contains("unknown ggml type id 99"), "{e}");
    assert_eq!(idx.tensor("known").map(|t| t.nbytes), Some(16));
}

/// A valid file with every kind of field, written by our writer.
fn rich_file() -> Vec<u8> {
    let meta = vec![
        (
            "general.architecture".to_string(),
            MetaValue::string("llama"),
        ),
        ("a.u8".into(), MetaValue::U8(1)),
        ("a.i64".into(), MetaValue::I64(-5)),
        ("a.f32".into(), MetaValue::F32(0.5)),
        ("a.bool".into(), MetaValue::Bool(true)),
        (
            "a.strs".into(),
            MetaValue::Array(MetaArray::String(
                ["x", "yz", ""].into_iter().collect::<StringArray>(),
            )),
        ),
        (
            "a.nested".into(),
            MetaValue::Array(MetaArray::Array(vec![
                MetaArray::U16(vec![1, 2]),
                MetaArray::Bool(vec![true]),
            ])),
        ),
    ];
    let shapes = [
        TensorShape {
            name: "t0",
            ty: TensorType::Known(GgmlType::F32),
            dims: &[8, 2],
            nbytes: 64,
        },
        TensorShape {
            name: "t1",
            ty: TensorType::Known(GgmlType::Q8_0),
            dims: &[32],
            nbytes: 34,
        },
    ];
    let lay = layout(3, &meta, &shapes).expect("valid layout");
    let mut f = lay.header.clone();
    f.resize(lay.file_size as usize, 0x11);
    f
}

#[test]
fn every_truncation_is_refused_without_panic() {
    let f = rich_file();
    let idx = parse(&f).expect("the whole file parses");
    assert_eq!(idx.tensors.len(), 2);
    let data_end = idx.data_end() as usize;
    assert!(data_end < f.len(), "the writer pads after the last tensor");
    for cut in 0..f.len() {
        let r = parse(&f[..cut]);
        if cut < data_end {
            assert!(
                r.is_err(),
                "a file cut at {cut} (data ends at {data_end}) must be refused"
            );
        } else {
            assert!(
                r.is_ok(),
                "only trailing padding is cut at {cut}: still a valid file"
            );
        }
    }
}

#[test]
fn every_header_byte_mutation_is_handled() {
    // Each header byte set to a few values: parse must return (Ok or a typed error), never
    // panic, and any accepted file must still have every tensor inside it.
    let f = rich_file();
    let header_len = parse(&f).expect("parses").data_offset as usize;
    for i in 0..header_len {
        for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut g = f.clone();
            g[i] = v;
            if let Ok(idx) = parse(&g) {
                for t in &idx.tensors {
                    assert!(
                        t.end() <= g.len() as u64,
                        "byte {i} = {v:#x}: tensor {} inside the file",
                        t.name
                    );
                }
            }
        }
    }
}

#[test]
fn error_variants_are_typed() {
    let c = cases();
    let get =
        |f: &str| parse(&c.iter().find(|x| x.file == f).expect("case").bytes).expect_err("refused");
    assert!(
        matches!(get("kv_count_2_60.gguf"), GgufError::CountTooLarge { count, .. } if count == 1 << 60)
    );
    assert!(
        matches!(get("duplicate_key.gguf"), GgufError::DuplicateKey { ref key, .. } if key == "a.b")
    );
    assert!(matches!(
        get("overlapping_tensors.gguf"),
        GgufError::Overlap { index: 1, .. }
    ));
    assert!(matches!(
        get("nesting_bomb.gguf"),
        GgufError::NestingTooDeep { .. }
    ));
    assert!(matches!(
        get("big_endian.gguf"),
        GgufError::BigEndian { version: 3 }
    ));
}

#[test]
fn parse_header_on_the_prefix_agrees_with_parse_on_the_file() {
    // Checking a header edit on a copy of the header alone must give the verdict a parse of
    // the whole edited file would give (the engine's header guard relies on this).
    let f = rich_file();
    let header_len = parse(&f).expect("parses").data_offset as usize;
    let size = f.len() as u64;
    assert_eq!(
        hotpatch_gguf::parse_header(&f[..header_len], size).expect("prefix parses"),
        parse(&f).expect("file parses"),
        "same index from the header prefix as from the whole file"
    );
    for i in 0..header_len {
        for v in [0x00, 0x01, 0x7f, 0xff] {
            let mut g = f.clone();
            g[i] = v;
            let whole = parse(&g);
            // The full header of the edited file (it may claim more header than before).
            let prefix = hotpatch_gguf::parse_header(&g, size);
            assert_eq!(
                whole.is_ok(),
                prefix.is_ok(),
                "byte {i} = {v:#x}: same verdict ({whole:?} vs {prefix:?})"
            );
            if let Ok(idx) = hotpatch_gguf::parse_header(&g[..header_len], size) {
                assert_eq!(
                    Some(&idx),
                    whole.as_ref().ok(),
                    "byte {i} = {v:#x}: a prefix that parses gives the file's index"
                );
            }
        }
    }
    assert!(
        hotpatch_gguf::parse_header(&f, size - 1).is_err(),
        "a prefix longer than the declared file is refused"
    );
}

/// Regression: a directory opened as a model said
/// "No such device (os error 19)"; it now says what it is, naming the path.
#[test]
fn a_directory_or_a_device_is_named_for_what_it_is() {
    let dir = std::env::temp_dir().join(format!("hotpatch-dir-as-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = hotpatch_gguf::GgufModel::open(&dir)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&dir.display().to_string()), "{e}");
    assert!(e.contains("is a directory, not a GGUF file"), "{e}");
    assert!(!e.contains("os error 19"), "{e}");
    let e = hotpatch_gguf::GgufModel::open("/dev/null")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
