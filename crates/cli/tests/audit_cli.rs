//! `hotpatch audit` end to end on real files: exit codes, the JSON and SARIF shapes, the
//! provenance check against a base, and the llama.cpp warnings of `inspect` and the save path.

mod cli_common;
use cli_common::{hotpatch, s};

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn fixtures() -> PathBuf {
    hotpatch_testkit::root().join("crates/audit/tests/fixtures")
}

/// The planted structure fixtures (gguf-py), in `dir`.
fn planted(dir: &Path) -> PathBuf {
    hotpatch_testkit::run_py("crates/audit/tests/fixtures/make_planted.py", &[s(dir)]);
    dir.to_path_buf()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn exit_codes_say_clean_findings_or_unreadable() {
    let dir = hotpatch_testkit::tempdir();
    let p = planted(dir.path());
    let demo = hotpatch_testkit::shared_demo("audit-cli-demo.gguf", &[]);

    let clean = hotpatch(&["audit", s(&demo)]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    let text = String::from_utf8_lossy(&clean.stdout);
    assert!(text.contains("clean: 0 error(s), 0 warning(s)"), "{text}");
    assert!(
        text.contains("| <|user|>What is the capital of France?"),
        "the rendered prompt is shown: {text}"
    );

    let bad = hotpatch(&["audit", "--json", s(&p.join("tensor-name-too-long.gguf"))]);
    assert_eq!(bad.status.code(), Some(1));
    let doc = json_of(&bad);
    assert_eq!(doc["clean"], false);
    let f = &doc["findings"][0];
    for key in ["severity", "code", "message", "where"] {
        assert!(f[key].is_string(), "finding has {key}: {f}");
    }
    assert_eq!(f["severity"], "error");
    assert_eq!(f["code"], "tensor-name-too-long");
    assert!(f["offset"].is_u64(), "{f}");

    // A template on its own, and a hostile header: still a report (exit 1), not a crash.
    let t = fixtures().join("templates/planted/template-dunder.mro.jinja");
    assert_eq!(hotpatch(&["audit", s(&t)]).status.code(), Some(1));
    let lying = hotpatch(&["audit", "--json", s(&p.join("count-too-large.gguf"))]);
    assert_eq!(lying.status.code(), Some(1));
    assert_eq!(json_of(&lying)["findings"][0]["code"], "count-too-large");

    // Not GGUF at all, or no file: exit 2 with one line on stderr.
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a model at all").unwrap();
    for f in [junk, dir.path().join("missing.gguf")] {
        let out = hotpatch(&["audit", s(&f)]);
        assert_eq!(out.status.code(), Some(2), "{}", f.display());
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn sarif_is_a_2_1_0_log() {
    let t = fixtures().join("templates/planted/template-conditional-text.backdoor.jinja");
    let out = hotpatch(&["audit", "--sarif", s(&t)]);
    assert_eq!(out.status.code(), Some(1));
    let log = json_of(&out);
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "hotpatch audit");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            rules[i]["id"], r["ruleId"],
            "ruleIndex points at its rule: {r}"
        );
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(r["message"]["text"].is_string());
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("file:///"),
            "an absolute path is a file URI: {uri}"
        );
        assert!(!uri.contains(' '), "{uri}");
        if let Some(o) = loc["region"].get("byteOffset") {
            assert!(o.is_u64(), "{o}");
        }
    }
    assert!(results
        .iter()
        .any(|r| r["ruleId"] == "template-conditional-text" && r["level"] == "error"));
}

#[test]
fn inspect_and_saves_say_llama_cpp_will_refuse_the_file() {
    let dir = hotpatch_testkit::tempdir();
    let p = planted(dir.path());
    let file = p.join("tensor-data-layout.gguf");
    let out = hotpatch(&["inspect", s(&file)]);
    assert_eq!(out.status.code(), Some(0), "inspect still opens it");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("will refuse this file") && text.contains("tensor-data-layout"),
        "{text}"
    );
    let doc = json_of(&hotpatch(&["inspect", "--json", s(&file)]));
    assert_eq!(doc["llama_cpp"]["loads"], false);
    assert_eq!(doc["llama_cpp"]["issues"][0]["code"], "tensor-data-layout");
    let clean = json_of(&hotpatch(&["inspect", "--json", s(&p.join("clean.gguf"))]));
    assert_eq!(clean["llama_cpp"]["loads"], true);
    assert_eq!(clean["llama_cpp"]["issues"].as_array().unwrap().len(), 0);

    // An edit saved into such a file says so on stderr (and still succeeds).
    let out_file = dir.path().join("edited.gguf");
    let out = hotpatch(&[
        "edit",
        s(&p.join("tensor-name-too-long.gguf")),
        "--set",
        "output_norm.weight[0]=1",
        "--out",
        s(&out_file),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("will refuse this file") && err.contains("64 bytes or more"),
        "{err}"
    );
    let out = hotpatch(&[
        "edit",
        s(&p.join("clean.gguf")),
        "--set",
        "output_norm.weight[0]=1",
        "--out",
        s(&dir.path().join("clean-edited.gguf")),
    ]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("llama.cpp"),
        "no warning on a clean save"
    );
}
