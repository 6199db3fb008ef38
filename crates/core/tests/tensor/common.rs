//! Shared helpers: the tensor oracle and closeness; the oracle python, demo models and temp
//! dirs come from `hotpatch-testkit`.
#![allow(dead_code)] // Shared by several test modules; not every module uses every helper.

use std::path::Path;

pub use hotpatch_testkit::{demo_model, root, run_py, tempdir};

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
