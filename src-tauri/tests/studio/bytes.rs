//! The Bytes screen's commands against gguf-py (structure offsets), a Python scan (search
//! matches) and reference loops written here (operation results).

use std::path::{Path, PathBuf};
use std::process::Command;

use hotpatch_studio::commands::bytes::{
    apply, compare, encode_matches, parse_query, search, structure, BitKind, ByteOp, CompareWith,
    SpanClass,
};
use hotpatch_studio::error::ErrorCode;
use hotpatch_studio::state::AppState;

use hotpatch_testkit::python;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotpatch-bytes-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A fresh copy of the demo model (generated at test time) attached to a new session.
fn session(name: &str) -> (AppState, PathBuf, Vec<u8>) {
    let demo = hotpatch_testkit::shared_demo("demo.gguf", &[]);
    let path = tmp(name);
    std::fs::copy(&demo, &path).expect("copy the demo");
    let bytes = std::fs::read(&path).unwrap();
    let state = AppState::default();
    state
        .session()
        .attach(&path, hotpatch_core::Mode::Staged)
        .expect("attach");
    (state, path, bytes)
}

fn py_json(script: &str, path: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .args(["-c", script])
        .arg(path)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[track_caller]
fn read(state: &AppState, offset: u64, len: u64) -> Vec<u8> {
    hotpatch_studio::binary::read_range(state, 0, offset, len).unwrap()
}

#[test]
fn structure_spans_match_gguf_py_offsets() {
    let (state, path, bytes) = session("structure.gguf");
    let s = structure(&state, 0).unwrap();
    assert_eq!(s.file_size, bytes.len() as u64);
    assert!(s.gguf_error.is_none());
    assert_eq!(s.spans.first().map(|x| x.start), Some(0));
    assert_eq!(s.spans.last().map(|x| x.end), Some(s.file_size));
    assert!(
        s.spans.windows(2).all(|w| w[0].end == w[1].start),
        "spans are contiguous"
    );
    // gguf-py: every field's offset, and every tensor's data offset and size.
    let py = py_json(
        r#"
import sys, json
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
fields = {k: int(f.offset) for k, f in r.fields.items() if not k.startswith("GGUF.")}
tensors = {t.name: [int(t.data_offset), int(t.n_bytes), t.tensor_type.name] for t in r.tensors}
print(json.dumps({"fields": fields, "tensors": tensors}))
"#,
        &path,
        &[],
    );
    let fields = py["fields"].as_object().unwrap();
    let metas: Vec<_> = s
        .spans
        .iter()
        .filter(|x| x.class == SpanClass::Metadata)
        .collect();
    assert_eq!(metas.len(), fields.len(), "one span per metadata entry");
    for m in metas {
        assert_eq!(
            Some(m.start),
            fields[&m.label].as_u64(),
            "metadata {} starts where gguf-py says",
            m.label
        );
    }
    let tensors = py["tensors"].as_object().unwrap();
    let data: Vec<_> = s
        .spans
        .iter()
        .filter(|x| x.class == SpanClass::TensorData)
        .collect();
    assert_eq!(data.len(), tensors.len());
    for d in data {
        let t = &tensors[&d.label];
        assert_eq!(Some(d.start), t[0].as_u64(), "{} data offset", d.label);
        assert_eq!(Some(d.end - d.start), t[1].as_u64(), "{} size", d.label);
        let info = d.tensor.as_ref().expect("tensor info on data spans");
        assert_eq!(Some(info.ty.as_str()), t[2].as_str(), "{} type", d.label);
        // bytes = elements / block size * type size
        if let (Some(bs), Some(ts)) = (info.block_size, info.type_size) {
            assert_eq!(
                info.n_elements / u64::from(bs) * u64::from(ts),
                d.end - d.start,
                "{}: block and type size explain the data size",
                d.label
            );
        }
    }
}

#[test]
fn search_matches_a_python_scan() {
    let (state, path, _) = session("search.gguf");
    // Python: a regex over the file's bytes, overlapping (lookahead), nibble wildcard by class.
    let scan = r#"
import sys, re, json
data = open(sys.argv[1], "rb").read()
pat = re.compile(sys.argv[2].encode("latin-1"), re.DOTALL)
print(json.dumps([m.start() for m in pat.finditer(data)]))
"#;
    for (query, text, regex) in [
        // 00 00 ?? 3? : two zero bytes, any byte, a byte 0x30..=0x3f
        ("00 00 ?? 3?", false, r"(?=\x00\x00.[\x30-\x3f])"),
        ("67 ?? 6e", false, r"(?=g.n)"),
        ("general.", true, r"(?=general\.)"),
    ] {
        let p = parse_query(query, text).unwrap();
        let (got, more) = search(&state, 0, &p, 1_000_000, &mut |_| true).unwrap();
        assert!(!more);
        let want: Vec<u64> = serde_json::from_value(py_json(scan, &path, &[regex])).unwrap();
        assert!(!want.is_empty(), "{query}: the demo holds matches");
        assert_eq!(got, want, "{query}: the same offsets as the Python scan");
        if want.len() > 2 {
            let (first, more) = search(&state, 0, &p, 2, &mut |_| true).unwrap();
            assert!(more, "{query}: more than 2 exist");
            assert_eq!(first, want[..2]);
        }
    }
    assert_eq!(
        parse_query("4f 3", false).unwrap_err().code,
        ErrorCode::BadRequest
    );
    let e = search(
        &state,
        0,
        &parse_query("00", false).unwrap(),
        0,
        &mut |_| true,
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);
    let canceled = search(
        &state,
        0,
        &parse_query("00", false).unwrap(),
        10,
        &mut |_| false,
    );
    assert!(
        canceled.is_err() || canceled.unwrap().1,
        "cancel stops the search"
    );
}

#[test]
fn match_encoding_is_little_endian_f64() {
    let b = encode_matches(4, &[0, 7, (1u64 << 52) + 3], true);
    let f: Vec<f64> = b
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(f, vec![4.0, 1.0, 0.0, 7.0, 4503599627370499.0]);
}

#[test]
fn every_operation_changes_what_a_reference_loop_says_and_undoes() {
    let (state, _path, bytes) = session("ops.gguf");
    let st = structure(&state, 0).unwrap();
    // A window of 16 distinct bytes, none 00/ff, so that every operation below changes it.
    let at = (st.data_offset..bytes.len() as u64 - 16)
        .find(|&o| {
            let w = &bytes[o as usize..o as usize + 16];
            let mut seen = std::collections::HashSet::new();
            w.iter().all(|&b| b != 0 && b != 0xff && seen.insert(b))
        })
        .expect("the demo's tensor data has a varied window");
    let orig = |o: u64, n: u64| bytes[o as usize..(o + n) as usize].to_vec();

    let r = apply(
        &state,
        0,
        &ByteOp::Write {
            offset: at,
            hex: "de ad be ef".into(),
        },
    )
    .unwrap();
    assert_eq!(read(&state, at, 4), vec![0xde, 0xad, 0xbe, 0xef]);
    assert!(r.change.is_some());
    state.session().engine().undo().unwrap();
    assert_eq!(read(&state, at, 4), orig(at, 4), "undo restores");

    apply(
        &state,
        0,
        &ByteOp::Fill {
            offset: at,
            len: 5,
            hex: "01 02".into(),
        },
    )
    .unwrap();
    assert_eq!(read(&state, at, 5), vec![1, 2, 1, 2, 1]);
    state.session().engine().undo().unwrap();

    apply(
        &state,
        0,
        &ByteOp::Xor {
            offset: at,
            len: 6,
            hex: "ff 0f 00".into(),
        },
    )
    .unwrap();
    let key = [0xffu8, 0x0f, 0x00];
    let want: Vec<u8> = orig(at, 6)
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 3])
        .collect();
    assert_eq!(read(&state, at, 6), want);
    state.session().engine().undo().unwrap();

    for (kind, bits, mask, f) in [
        (
            BitKind::And,
            0,
            0x0fu8,
            (|b: u8, m: u8| b & m) as fn(u8, u8) -> u8,
        ),
        (BitKind::Or, 0, 0x81, |b, m| b | m),
        (BitKind::Xor, 0, 0x55, |b, m| b ^ m),
        (BitKind::Not, 0, 0xff, |b, _| !b),
        (BitKind::Shl, 3, 0xff, |b, _| b << 3),
        (BitKind::Shr, 2, 0xff, |b, _| b >> 2),
        (BitKind::Shl, 1, 0xf0, |b, _| (b & 0x0f) | ((b << 1) & 0xf0)),
    ] {
        apply(
            &state,
            0,
            &ByteOp::Bits {
                offset: at,
                len: 8,
                kind,
                bits,
                hex: format!("{mask:02x}"),
            },
        )
        .unwrap();
        let want: Vec<u8> = orig(at, 8).iter().map(|&b| f(b, mask)).collect();
        assert_eq!(read(&state, at, 8), want, "{kind:?} {bits} mask {mask:#x}");
        if want != orig(at, 8) {
            state.session().engine().undo().unwrap();
        }
        assert_eq!(read(&state, at, 8), orig(at, 8));
    }

    apply(
        &state,
        0,
        &ByteOp::RotateBits {
            offset: at,
            len: 4,
            bits: -3,
        },
    )
    .unwrap();
    let want: Vec<u8> = orig(at, 4).iter().map(|b| b.rotate_right(3)).collect();
    assert_eq!(read(&state, at, 4), want, "negative bits rotate right");
    state.session().engine().undo().unwrap();

    apply(
        &state,
        0,
        &ByteOp::RotateBytes {
            offset: at,
            len: 5,
            n: 2,
        },
    )
    .unwrap();
    let o = orig(at, 5);
    assert_eq!(read(&state, at, 5), vec![o[2], o[3], o[4], o[0], o[1]]);
    state.session().engine().undo().unwrap();

    apply(&state, 0, &ByteOp::Reverse { offset: at, len: 3 }).unwrap();
    let o = orig(at, 3);
    assert_eq!(read(&state, at, 3), vec![o[2], o[1], o[0]]);
    state.session().engine().undo().unwrap();

    apply(
        &state,
        0,
        &ByteOp::ReverseElements {
            offset: at,
            len: 8,
            width: 4,
        },
    )
    .unwrap();
    let o = orig(at, 8);
    assert_eq!(
        read(&state, at, 8),
        vec![o[3], o[2], o[1], o[0], o[7], o[6], o[5], o[4]]
    );
    state.session().engine().undo().unwrap();
    let e = apply(
        &state,
        0,
        &ByteOp::ReverseElements {
            offset: at,
            len: 6,
            width: 4,
        },
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);

    apply(
        &state,
        0,
        &ByteOp::Copy {
            from: at,
            to: at + 2,
            len: 4,
        },
    )
    .unwrap();
    let o = orig(at, 6);
    assert_eq!(
        read(&state, at, 6),
        vec![o[0], o[1], o[0], o[1], o[2], o[3]],
        "memmove"
    );
    state.session().engine().undo().unwrap();

    apply(
        &state,
        0,
        &ByteOp::Swap {
            a: at,
            b: at + 10,
            len: 3,
        },
    )
    .unwrap();
    assert_eq!(read(&state, at, 3), orig(at + 10, 3));
    assert_eq!(read(&state, at + 10, 3), orig(at, 3));
    state.session().engine().undo().unwrap();
    let e = apply(
        &state,
        0,
        &ByteOp::Swap {
            a: at,
            b: at + 1,
            len: 3,
        },
    )
    .unwrap_err();
    assert!(e.message.contains("overlap"), "{}", e.message);

    // Protection: a write inside is refused with the range in the message; unprotect.
    apply(
        &state,
        0,
        &ByteOp::Protect {
            offset: at,
            len: 16,
        },
    )
    .unwrap();
    assert_eq!(structure(&state, 0).unwrap().protections.len(), 1);
    let e = apply(
        &state,
        0,
        &ByteOp::Write {
            offset: at + 3,
            hex: "00".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Refused);
    assert!(e.message.contains("protected"), "{}", e.message);
    apply(
        &state,
        0,
        &ByteOp::Unprotect {
            offset: at,
            len: 16,
        },
    )
    .unwrap();
    let e = apply(
        &state,
        0,
        &ByteOp::Unprotect {
            offset: at,
            len: 16,
        },
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);

    // Header guard, bounds, bad hex, empty range.
    let e = apply(
        &state,
        0,
        &ByteOp::Write {
            offset: 0,
            hex: "00".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Refused);
    assert!(e.message.contains("GGUF header"), "{}", e.message);
    assert_eq!(read(&state, 0, 4), b"GGUF".to_vec(), "nothing written");
    let end = bytes.len() as u64;
    let e = apply(
        &state,
        0,
        &ByteOp::Fill {
            offset: end - 2,
            len: 4,
            hex: "00".into(),
        },
    )
    .unwrap_err();
    assert!(e.message.contains("outside"), "{}", e.message);
    let e = apply(
        &state,
        0,
        &ByteOp::Write {
            offset: at,
            hex: "0g".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.message.contains("character 1"), "{}", e.message);
    let e = apply(&state, 0, &ByteOp::Reverse { offset: at, len: 0 }).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert_eq!(
        read(&state, 0, end),
        bytes,
        "every change above was undone or refused"
    );
}

#[test]
fn compare_within_the_model_and_against_a_file() {
    let (state, path, bytes) = session("compare.gguf");
    let len = bytes.len() as u64;
    let other = tmp("compare-other.bin");
    let mut changed = bytes.clone();
    changed[1000] ^= 1;
    changed[1003] ^= 2;
    std::fs::write(&other, &changed).unwrap();
    let c = compare(
        &state,
        0,
        990,
        100,
        &CompareWith::File {
            path: other.display().to_string(),
            offset: 990,
        },
    )
    .unwrap();
    assert_eq!((c.len, c.differing, c.first_difference), (100, 2, Some(10)));
    let c = compare(
        &state,
        0,
        0,
        len,
        &CompareWith::File {
            path: path.display().to_string(),
            offset: 0,
        },
    )
    .unwrap();
    assert_eq!(c.differing, 0, "the model equals its own file");
    let naive = (0..64)
        .filter(|&i| bytes[100 + i] != bytes[200 + i])
        .count() as u64;
    let c = compare(&state, 0, 100, 64, &CompareWith::Range { offset: 200 }).unwrap();
    assert_eq!(c.differing, naive);
    let e = compare(
        &state,
        0,
        0,
        10,
        &CompareWith::File {
            path: "/nonexistent/x".into(),
            offset: 0,
        },
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Io, "{}", e.message);
    assert!(e.message.contains("/nonexistent/x"));
}
