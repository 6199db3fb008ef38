//! Finding the oracles (python with gguf-py, node-llama-cpp) and the demo model.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The oracle python (`$HOTPATCH_PYTHON` or `<workspace>/.venv/bin/python`).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("HOTPATCH_PYTHON") {
        return PathBuf::from(p);
    }
    let p = workspace().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-oracles.sh",
        p.display()
    );
    p
}

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
    let st = Command::new(python())
        .arg(workspace().join("scripts/make_demo_model.py"))
        .arg(out)
        .output()
        .expect("run make_demo_model.py");
    assert!(
        st.status.success(),
        "make_demo_model.py failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}
