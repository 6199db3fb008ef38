//! Shared helpers: fixtures, the surgery oracle, running a plan, real llama.cpp generation.
#![allow(dead_code)] // Shared by several test modules; not every module uses every helper.

use std::path::{Path, PathBuf};
use std::process::Command;

use hotpatch_core::surgery::{self, SurgeryOp, SurgeryPreview};
pub use hotpatch_testkit::{root, run_py, shared_demo, tempdir};

/// Runs tests/oracle/surgery_oracle.py.
pub fn oracle(args: &[&str]) -> String {
    run_py("tests/oracle/surgery_oracle.py", args)
}

/// A llama fixture with per-layer metadata arrays (see the oracle's `fixture`).
pub fn fixture(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut all = vec!["fixture", out.to_str().unwrap()];
    all.extend_from_slice(args);
    oracle(&all);
    out
}

/// The oracle's JSON report, asserting it found no mismatch.
pub fn expect(args: &[&str]) -> serde_json::Value {
    let text = oracle(args);
    let v: serde_json::Value = serde_json::from_str(&text).expect("oracle JSON");
    assert_eq!(
        v["mismatches"],
        serde_json::json!([]),
        "the reference disagrees ({args:?}): {text}"
    );
    v
}

/// Plans `ops` on `model` and writes `out`; returns the preview.
pub fn run(model: &Path, ops: &[SurgeryOp], out: &Path) -> SurgeryPreview {
    let plan = surgery::plan(model, ops, model.parent().unwrap()).expect("plan");
    let preview = plan.preview();
    surgery::execute(&plan, out, &mut |_| true).expect("write");
    preview
}

/// Greedy tokens of real llama.cpp (node-llama-cpp) on `model`.
pub fn generate(model: &Path, prompt: &str, n: u32) -> Vec<u64> {
    let out = Command::new("node")
        .arg(root().join("tests/oracle/generate.mjs"))
        .arg(model)
        .arg(prompt)
        .arg(n.to_string())
        .output()
        .expect("node (run scripts/setup-oracles.sh)");
    assert!(
        out.status.success(),
        "llama.cpp could not run {}: {}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("generate.mjs JSON");
    v["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect()
}

/// Files in `dir` other than `keep`.
pub fn leftovers(dir: &Path, keep: &[&Path]) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !keep.iter().any(|k| k == p))
        .collect()
}
