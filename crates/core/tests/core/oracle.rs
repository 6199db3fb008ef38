//! Finding the oracles (python with gguf-py, node-llama-cpp) and the demo model.

use std::path::{Path, PathBuf};

use hotpatch_testkit::root as workspace;

/// The node-llama-cpp install under tests/oracle.
pub fn node_oracle() -> PathBuf {
    let dir = workspace().join("tests/oracle");
    assert!(
        dir.join("node_modules/node-llama-cpp").exists(),
        "{}/node_modules/node-llama-cpp is missing: run scripts/setup-oracles.sh",
        dir.display()
    );
    dir
}

/// Generates the demo model into `out` (at test time; nothing large is committed).
pub fn demo_model(out: &Path) {
    hotpatch_testkit::run_py(
        "scripts/make_demo_model.py",
        &[out.to_str().expect("utf-8 path")],
    );
}
