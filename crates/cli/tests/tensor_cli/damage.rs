//! "No silent damage" through the binary: each way once found to damage a model silently, as the
//! command that showed it, now refused with exit 1 (or 2 for an unreadable file) and the file
//! left as it was.

use std::path::Path;
use std::process::Output;

use crate::common::*;

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs python code with the oracle python (gguf-py), returns stdout.
fn py(code: &str) -> String {
    let out = std::process::Command::new(hotpatch_testkit::python())
        .args(["-c", code])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn an_edit_that_would_store_inf_exits_1_and_writes_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let model = demo_model(d, "m.gguf", &[]);
    let orig = std::fs::read(&model).unwrap();
    for (set, ty) in [
        ("blk.0.ffn_up.weight[5]=1e6", "Q4_1"),
        ("token_embd.weight[5]=1e7", "Q8_0"),
        ("blk.0.attn_q.weight[5]=1e9", "Q4_K"),
        ("blk.0.attn_v.weight[5]=1e9", "Q6_K"),
        ("blk.1.attn_q.weight[5]=1e6", "F16"),
    ] {
        let out_file = d.join("out.gguf");
        let out = hotpatch(&["edit", s(&model), "--set", set, "--out", s(&out_file)]);
        assert_eq!(code(&out), Some(1), "{set}: refused: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("too large for") && err.contains(ty),
            "{set}: {err}"
        );
        assert!(
            err.contains("largest magnitude"),
            "{set}: names the limit: {err}"
        );
        assert!(!out_file.exists(), "{set}: no output file");
        let out = hotpatch(&["edit", s(&model), "--set", set, "--in-place"]);
        assert_eq!(code(&out), Some(1), "{set} --in-place");
    }
    assert_eq!(
        std::fs::read(&model).unwrap(),
        orig,
        "the model is untouched"
    );
}

/// A configuration with one byte patch.
fn byte_patch(dir: &Path, name: &str, offset: u64, original: &[u8], patched: &[u8]) -> String {
    let p = dir.join(name);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    std::fs::write(
        &p,
        format!(
            r#"{{"version":1,"byte_patches":[{{"offset":{offset},"original":"{}","patched":"{}"}}]}}"#,
            hex(original),
            hex(patched)
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn apply_in_place_guards_the_header_as_out_does() {
    let dir = tempdir();
    let d = dir.path();
    let model = demo_model(d, "m.gguf", &[]);
    let orig = std::fs::read(&model).unwrap();
    let n = u64::from_le_bytes(orig[8..16].try_into().unwrap());
    // The offset field of tensor 0 (the last 8 bytes of its index entry): from gguf-py.
    let info = py(&format!(
        "import gguf; f=gguf.GGUFReader('{}').tensors[0].field; print(f.offset + sum(p.nbytes for p in f.parts[:-1]))",
        s(&model)
    ));
    let at: u64 = info.trim().parse().expect("an offset");
    let off = u64::from_le_bytes(orig[at as usize..at as usize + 8].try_into().unwrap());
    let configs = [
        byte_patch(d, "magic.json", 0, b"G", b"X"),
        byte_patch(d, "count.json", 8, &n.to_le_bytes(), &(n + 1).to_le_bytes()),
        byte_patch(
            d,
            "offset.json",
            at,
            &off.to_le_bytes(),
            &(off + (1 << 40)).to_le_bytes(),
        ),
    ];
    for c in &configs {
        let dry = hotpatch(&["apply", c, s(&model), "--dry-run"]);
        assert_eq!(
            code(&dry),
            Some(1),
            "{c}: the dry run says it would be refused"
        );
        assert!(
            stdout(&dry).contains("MISMATCH") && stdout(&dry).contains("break the GGUF header"),
            "{c}: {}",
            stdout(&dry)
        );
        let out = hotpatch(&["apply", c, s(&model), "--in-place"]);
        assert_eq!(code(&out), Some(1), "{c}: {}", stderr(&out));
        assert_eq!(std::fs::read(&model).unwrap(), orig, "{c}: not written");
        let dest = d.join("out.gguf");
        let out = hotpatch(&["apply", c, s(&model), "--out", s(&dest)]);
        assert_eq!(code(&out), Some(1), "{c} --out: {}", stderr(&out));
        assert!(!dest.exists(), "{c}: --out writes no broken file either");
    }
}

#[test]
fn configurations_of_another_model_trailing_data_and_bad_server_sections_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let a = demo_model(d, "a.gguf", &[]);
    let rec = d.join("rec.json");
    let edited = d.join("edited.gguf");
    let out = hotpatch(&[
        "edit",
        s(&a),
        "--set",
        "blk.0.attn_norm.weight[3]=0.5",
        "--record",
        s(&rec),
        "--out",
        s(&edited),
    ]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    // Another model: the F16 variant shares names and shapes (another quantization, applies);
    // a model under another architecture does not.
    let f16 = demo_model(d, "f16.gguf", &["--variant", "f16"]);
    let out = hotpatch(&["apply", s(&rec), s(&f16), "--dry-run"]);
    assert_eq!(
        code(&out),
        Some(0),
        "another quantization: {}",
        stderr(&out)
    );
    // The same file under another architecture: a model whose tensors have the same names.
    let other = d.join("other.gguf");
    let arch = d.join("arch.json");
    std::fs::write(
        &arch,
        r#"{"version":2,"metadata":[{"key":"general.architecture","original":{"type":"STRING","value":"llama"},"patched":{"type":"STRING","value":"qwen2"}}]}"#,
    )
    .unwrap();
    let out = hotpatch(&["apply", s(&arch), s(&a), "--out", s(&other)]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let before = std::fs::read(&other).unwrap();
    let out = hotpatch(&["apply", s(&rec), s(&other), "--in-place"]);
    assert_eq!(code(&out), Some(1), "another model: {}", stderr(&out));
    assert!(
        stdout(&out).contains("on this model: no"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("recorded on another model")
            && stderr(&out).contains("--allow-other-model"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&other).unwrap(), before, "nothing written");
    let out = hotpatch(&[
        "apply",
        s(&rec),
        s(&other),
        "--in-place",
        "--allow-other-model",
    ]);
    assert_eq!(
        code(&out),
        Some(0),
        "the override applies: {}",
        stderr(&out)
    );
    assert_ne!(std::fs::read(&other).unwrap(), before);

    // Trailing data, a bad server section: exit 2 naming the problem.
    let text = std::fs::read_to_string(&rec).unwrap();
    for (name, body, needle) in [
        ("twice.json", format!("{text}\n{text}"), "unexpected data after"),
        ("garbage.json", format!("{text}garbage"), "unexpected data after"),
        (
            "ftp.json",
            r#"{"version":1,"server":{"upstream":"ftp://x"}}"#.to_string(),
            "server.upstream",
        ),
        (
            "regex.json",
            r#"{"version":1,"server":{"rules":[{"id":"a","action":{"type":"filter_response","pattern":"[","action":"redact"}}]}}"#.to_string(),
            "action.pattern",
        ),
    ] {
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        let out = hotpatch(&["apply", s(&p), s(&a), "--dry-run"]);
        assert_eq!(code(&out), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{name}: {}", stderr(&out));
        // `serve --config` refuses the same file with the same words.
        if name.ends_with("ftp.json") || name.ends_with("regex.json") {
            let out = hotpatch(&[
                "serve",
                "--upstream",
                "http://127.0.0.1:9",
                "--config",
                s(&p),
                "--port",
                "0",
            ]);
            assert_eq!(code(&out), Some(2), "serve {name}");
            assert!(stderr(&out).contains(needle), "serve {name}: {}", stderr(&out));
        }
    }
}

#[cfg(unix)]
#[test]
fn saves_that_rewrite_the_file_keep_its_mode_and_clean_up_left_temporaries() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let d = dir.path();
    let model = demo_model(d, "m.gguf", &[]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let set_mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    // A metadata edit saved in place rewrites the file (new header): the mode stays.
    let meta = d.join("meta.json");
    std::fs::write(
        &meta,
        r#"{"version":2,"metadata":[{"key":"hotpatch.test","original":null,"patched":{"type":"STRING","value":"renamed"}}]}"#,
    )
    .unwrap();
    for m in [0o644, 0o640] {
        set_mode(&model, m);
        let out = hotpatch(&["apply", s(&meta), s(&model), "--in-place"]);
        assert_eq!(code(&out), Some(0), "{}", stderr(&out));
        assert_eq!(
            mode(&model),
            m,
            "apply with metadata --in-place keeps mode {m:o}"
        );
        // Undo it for the next round (the key must be absent again).
        let back = d.join("back.json");
        std::fs::write(
            &back,
            r#"{"version":2,"metadata":[{"key":"hotpatch.test","original":{"type":"STRING","value":"renamed"},"patched":null}]}"#,
        )
        .unwrap();
        let out = hotpatch(&["apply", s(&back), s(&model), "--in-place"]);
        assert_eq!(code(&out), Some(0), "{}", stderr(&out));
        assert_eq!(mode(&model), m);
    }
    // `--out` over an existing file keeps that file's mode; a new file gets a plain create's.
    let dest = d.join("dest.gguf");
    std::fs::write(&dest, b"old").unwrap();
    set_mode(&dest, 0o640);
    let out = hotpatch(&["apply", s(&meta), s(&model), "--out", s(&dest)]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(
        mode(&dest),
        0o640,
        "--out over an existing file keeps its mode"
    );
    let fresh = d.join("fresh.gguf");
    let out = hotpatch(&["apply", s(&meta), s(&model), "--out", s(&fresh)]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let plain = d.join("plain");
    std::fs::File::create(&plain).unwrap();
    assert_eq!(
        mode(&fresh) & 0o777,
        mode(&plain) & 0o777,
        "a new file is not private 0600"
    );

    // Temporaries interrupted saves left beside the model (this build's name and the old
    // writer's) go on the next open; nothing else does.
    let left = [
        d.join(".m.gguf.hotpatch-write-999999-0.tmp"),
        d.join(".hotpatch-write-x1Y2z3.tmp"),
    ];
    let other = d.join(".other.gguf.hotpatch-write-999999-0.tmp");
    for p in left.iter().chain([&other]) {
        std::fs::write(p, vec![0u8; 1 << 16]).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            .unwrap();
    }
    let out = hotpatch(&[
        "edit",
        s(&model),
        "--set",
        "blk.0.attn_norm.weight[0]=0.25",
        "--in-place",
    ]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    for p in &left {
        assert!(!p.exists(), "{} removed", p.display());
    }
    assert!(
        other.exists(),
        "another model's temporary is not ours to remove"
    );
}
