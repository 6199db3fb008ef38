//! Helpers: running the binary; the oracle python, demo models and temp dirs come from
//! `hotpatch-testkit`.

pub use crate::cli_common::hotpatch;
pub use hotpatch_testkit::{demo_model, root, run_py, tempdir};

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
