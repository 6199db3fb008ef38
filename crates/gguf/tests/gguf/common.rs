//! Shared helpers: the oracle python, fixtures generated at test time, temp dirs.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use hotpatch_testkit::{python, root as workspace, tempdir};

pub fn oracle_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracle")
        .join(name)
}

/// Runs a python script with arguments; panics with its stderr if it fails.
pub fn run_py(script: &Path, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{} {:?} failed (run scripts/setup-oracles.sh if gguf is missing): {}",
        script.display(),
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Writes the gguf-py fixture (see tests/oracle/make_fixture.py) into `dir`.
pub fn make_fixture(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let p = dir.join(name);
    let mut args = vec![p.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    run_py(&oracle_script("make_fixture.py"), &args);
    p
}

/// gguf-py's view of a file (tests/oracle/dump_gguf.py).
pub fn dump(path: &Path) -> serde_json::Value {
    let s = run_py(
        &oracle_script("dump_gguf.py"),
        &[path.to_str().expect("utf-8 path")],
    );
    serde_json::from_str(&s).expect("dump is JSON")
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
