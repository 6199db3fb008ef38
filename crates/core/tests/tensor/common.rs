//! Shared helpers: the oracle python, demo models, temp dirs.
#![allow(dead_code)] // Shared by several test modules; not every module uses every helper.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The python with gguf-py and numpy: `$HOTPATCH_PYTHON` or `<workspace>/.venv/bin/python`.
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

/// Runs a python script of the repository with arguments; returns stdout. Panics with stderr.
pub fn run_py(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(root().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python for {script}: {e} (run scripts/setup-oracles.sh)")
        });
    assert!(
        out.status.success(),
        "{script} {args:?} failed (run scripts/setup-oracles.sh if gguf/numpy or node_modules are missing):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A fresh temporary directory, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hotpatch-tensor-test")
        .tempdir()
        .expect("temp dir")
}

/// Writes the demo model with extra generator arguments (`--variant f16`, `--perturb a,b`).
pub fn demo_model(dir: &Path, file: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(file);
    let mut all = vec![out.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run_py("scripts/make_demo_model.py", &all);
    out
}

/// Runs tests/oracle/tensor_oracle.py.
pub fn oracle(args: &[&str]) -> String {
    run_py("tests/oracle/tensor_oracle.py", args)
}

/// The dequantized values of a tensor according to gguf-py.
pub fn oracle_values(model: &Path, name: &str, dir: &Path) -> Vec<f32> {
    let out = dir.join(format!("{name}.f32"));
    oracle(&[
        "values",
        model.to_str().unwrap(),
        name,
        out.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&out).expect("oracle output");
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Relative closeness for metrics computed in different summation orders.
pub fn close(a: f64, b: f64, rtol: f64) -> bool {
    (a - b).abs() <= rtol * a.abs().max(b.abs()) + 1e-12
}
