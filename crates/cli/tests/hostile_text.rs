//! Untrusted text never reaches a terminal raw: a GGUF whose tensor name,
//! metadata keys and values (a chat template too) carry an ANSI escape, a newline and a
//! right-to-left override is run through every verb that prints them; neither stdout nor stderr
//! may hold the raw ESC byte, a raw U+202E or a name split over two lines, and the escaped form
//! (`\u{1b}`, `\n`) is what is shown. `--json` keeps the exact string (JSON escapes it).

mod cli_common;
use cli_common::{hotpatch, s};

use std::path::{Path, PathBuf};
use std::process::Output;

/// ESC `[31m` (red), a newline that would fake a line, and a right-to-left override.
const EVIL: &str = "\x1b[31m\nFAKE\u{202e}";
const TENSOR: &str = "blk.0.attn\x1b[31m\nFAKE\u{202e}";
const ESCAPED: &str = "\\u{1b}[31m\\nFAKE\\u{202e}";

fn string(out: &mut Vec<u8>, v: &str) {
    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    out.extend_from_slice(v.as_bytes());
}

fn kv_str(out: &mut Vec<u8>, k: &str, v: &str) {
    string(out, k);
    out.extend_from_slice(&8u32.to_le_bytes());
    string(out, v);
}

/// A GGUF v3 file written byte by byte (no writer of this project involved): two F32 tensors
/// of 32 values, one with the hostile name, and hostile metadata keys and values.
fn hostile_gguf(dir: &Path) -> PathBuf {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&2u64.to_le_bytes()); // tensors
    b.extend_from_slice(&5u64.to_le_bytes()); // metadata entries
    kv_str(&mut b, "general.architecture", "llama");
    kv_str(&mut b, "general.name", &format!("evil{EVIL}"));
    kv_str(&mut b, &format!("key{EVIL}"), "v");
    kv_str(
        &mut b,
        "tokenizer.chat_template",
        &format!("{{{{ '{EVIL}' }}}}{{% for m in messages %}}{{{{ m.content }}}}{{% endfor %}}"),
    );
    // A string array with the hostile text in an element.
    string(&mut b, "arr");
    b.extend_from_slice(&9u32.to_le_bytes());
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    string(&mut b, &format!("a{EVIL}"));
    for (i, name) in [TENSOR, "norm.weight"].iter().enumerate() {
        string(&mut b, name);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&32u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // F32
        b.extend_from_slice(&(i as u64 * 128).to_le_bytes());
    }
    while !b.len().is_multiple_of(32) {
        b.push(0);
    }
    for i in 0..64u32 {
        b.extend_from_slice(&(i as f32).to_le_bytes());
    }
    let p = dir.join("hostile-text.gguf");
    std::fs::write(&p, b).unwrap();
    p
}

/// Neither stream holds a raw ESC, a raw RLO or a line that starts with the faked text.
fn assert_no_raw(what: &str, out: &Output) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!bytes.contains(&0x1b), "{what}: raw ESC on {name}:\n{text}");
        assert!(
            !text.contains('\u{202e}'),
            "{what}: raw U+202E on {name}:\n{text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("FAKE")),
            "{what}: a newline from the file split a line on {name}:\n{text}"
        );
    }
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_verb_escapes_names_keys_and_values_from_the_file() {
    let dir = hotpatch_testkit::tempdir();
    let m = hostile_gguf(dir.path());
    let m = s(&m);

    // Each verb: its arguments, and text that must be shown escaped.
    let tensor_set = format!("{TENSOR}[0]=5");
    let runs: Vec<(&str, Vec<&str>, Vec<String>)> = vec![
        (
            "inspect",
            vec!["inspect", m],
            vec![
                format!("blk.0.attn{ESCAPED}"),
                format!("key{ESCAPED}"),
                format!("evil{ESCAPED}"),
            ],
        ),
        (
            "tensor",
            vec!["tensor", m, TENSOR],
            vec![format!("blk.0.attn{ESCAPED}")],
        ),
        (
            "diff",
            vec!["diff", m, m],
            vec![format!("blk.0.attn{ESCAPED}")],
        ),
        (
            "search",
            vec!["search", m, "0000803f"],
            vec![format!("blk.0.attn{ESCAPED}")],
        ),
        (
            "scan",
            vec!["scan", m],
            vec![format!("blk.0.attn{ESCAPED}")],
        ),
        ("audit", vec!["audit", m], vec![]),
        (
            "edit",
            vec!["edit", m, "--set", &tensor_set, "--out", "/dev/null/x.gguf"],
            vec![format!("blk.0.attn{ESCAPED}")],
        ),
        (
            "tensor (missing name, the error path)",
            vec!["tensor", m, "nope\x1b[2J\nFAKE"],
            // Error messages are one line: the newline is a space there.
            vec!["nope\\u{1b}[2J".to_string()],
        ),
    ];
    for (what, args, shown) in &runs {
        let out = hotpatch(args);
        assert_no_raw(what, &out);
        let text = both(&out);
        for want in shown {
            assert!(
                text.contains(want.as_str()),
                "{what}: no {want:?} in:\n{text}"
            );
        }
    }

    // A configuration is a file too: its tensor names and texts are escaped in the preview.
    let cfg = dir.path().join("c.json");
    let c = serde_json::json!({
        "version": 1,
        "tensor_patches": [{"tensor": TENSOR, "transform": {"op": "scale", "factor": 0.5}},
                           {"tensor": format!("gone{EVIL}"), "transform": {"op": "scale", "factor": 0.5}}],
    });
    std::fs::write(&cfg, c.to_string()).unwrap();
    let out = hotpatch(&["apply", s(&cfg), m, "--dry-run"]);
    assert_no_raw("apply --dry-run", &out);
    let text = both(&out);
    assert!(text.contains(&format!("gone{ESCAPED}")), "apply: {text}");
}

#[test]
fn json_keeps_the_exact_strings() {
    let dir = hotpatch_testkit::tempdir();
    let m = hostile_gguf(dir.path());
    let out = hotpatch(&["inspect", s(&m), "--json"]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        !out.stdout.contains(&0x1b),
        "JSON escapes control characters"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let text = v.to_string();
    let names: Vec<&str> = v["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&TENSOR), "exact tensor name in {text}");
}
