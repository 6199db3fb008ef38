//! Helpers: the oracle python, demo models, running the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// `$HOTPATCH_PYTHON` or `<workspace>/.venv/bin/python`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("HOTPATCH_PYTHON") {
        return PathBuf::from(p);
    }
    let p = root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-oracles.sh",
        p.display()
    );
    p
}

/// Runs a python script of the repository; returns stdout.
pub fn run_py(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(root().join(script))
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{script} {args:?} failed (run scripts/setup-oracles.sh?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The demo model with generator arguments.
pub fn demo_model(dir: &Path, file: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(file);
    let mut all = vec![out.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run_py("scripts/make_demo_model.py", &all);
    out
}

/// Runs the built `hotpatch`.
pub fn hotpatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotpatch"))
        .args(args)
        .output()
        .expect("hotpatch runs")
}

/// Runs `hotpatch`, expects exit 0, parses stdout as JSON.
pub fn ok_json(args: &[&str]) -> serde_json::Value {
    let out = hotpatch(args);
    assert!(
        out.status.success(),
        "hotpatch {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// A temp dir removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hotpatch-cli-tensor")
        .tempdir()
        .expect("temp dir")
}
