//! Codec oracles for the tests: gguf-py (`gguf.quants`, pinned 0.19.0) and the real ggml C
//! codecs (`libggml-base.so` from node-llama-cpp, through `tests/oracle/ggml.py`).
//!
//! Values go to the oracle through a temporary directory: the Rust side writes raw inputs and a
//! manifest, `common/oracle.py` runs every job in ONE python process (numpy's import costs
//! ~0.2 s, so batch jobs with [`Batch`]), and the outputs are read back. The one-shot
//! [`oracle_quantize`] / [`oracle_dequantize`] wrap a batch of one.
//!
//! The python is `$HOTPATCH_PYTHON` or `<workspace>/.venv/bin/python`; when it (or ggml) is
//! missing the tests fail with "run scripts/setup-oracles.sh" — they never skip silently.
//!
//! Comparison helpers ([`assert_same_bytes`], [`assert_same_bits`]) report the first differing
//! block with its index, its bytes/values on both sides and (when given) the input block.
#![allow(dead_code)] // each test module uses a different part of the harness

use hotpatch_quant::GgmlType;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Which implementation answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oracle {
    /// `gguf.quants.quantize` / `gguf.quants.dequantize` (numpy `astype` for I8..I64/F64).
    GgufPy,
    /// ggml's C codecs: the type traits' `from_float_ref` (`quantize_row_*_ref`) and `to_float`.
    Ggml,
}

impl Oracle {
    fn arg(self) -> &'static str {
        match self {
            Oracle::GgufPy => "gguf-py",
            Oracle::Ggml => "ggml",
        }
    }
}

pub use hotpatch_testkit::root as workspace;

/// The python that has gguf-py and numpy (and ggml installed); panics with the setup hint if
/// there is none.
pub use hotpatch_testkit::ggml_python as python;

/// Runs a python snippet with the oracle python (cwd = workspace, `tests/oracle` importable)
/// and returns its stdout; panics with stderr when it fails.
pub fn run_python(code: &str) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .current_dir(workspace())
        .env("PYTHONPATH", workspace().join("tests/oracle"))
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "python snippet failed ({}):\n{}\n--- snippet ---\n{code}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python printed UTF-8")
}

/// A job handle inside a [`Batch`].
#[derive(Debug, Clone, Copy)]
pub struct Job(usize);

enum Kind {
    Quantize,
    Dequantize,
}

/// Many oracle jobs run by one python process.
pub struct Batch {
    dir: tempfile::TempDir,
    manifest: String,
    jobs: Vec<(Kind, Oracle, GgmlType)>,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// An empty batch with its own temporary directory.
    pub fn new() -> Self {
        Batch {
            dir: tempfile::Builder::new()
                .prefix("hotpatch-oracle")
                .tempdir()
                .expect("temp dir"),
            manifest: String::new(),
            jobs: Vec::new(),
        }
    }

    fn push(
        &mut self,
        kind: Kind,
        which: Oracle,
        ty: GgmlType,
        n_per_row: usize,
        input: &[u8],
    ) -> Job {
        let i = self.jobs.len();
        let src = self.dir.path().join(format!("{i}.in"));
        let dst = self.dir.path().join(format!("{i}.out"));
        std::fs::write(&src, input).expect("write oracle input");
        let op = match kind {
            Kind::Quantize => "quantize",
            Kind::Dequantize => "dequantize",
        };
        writeln!(
            self.manifest,
            "{op} {} {} {n_per_row} {} {}",
            which.arg(),
            ty.name(),
            src.display(),
            dst.display()
        )
        .expect("write to String");
        self.jobs.push((kind, which, ty));
        Job(i)
    }

    /// Queues quantizing `values` (rows of `n_per_row`, a multiple of the block size).
    pub fn quantize_rows(
        &mut self,
        which: Oracle,
        ty: GgmlType,
        values: &[f32],
        n_per_row: usize,
    ) -> Job {
        assert!(
            n_per_row > 0 && values.len().is_multiple_of(n_per_row),
            "values are not whole rows"
        );
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(Kind::Quantize, which, ty, n_per_row, &bytes)
    }

    /// Queues quantizing `values` as one row.
    pub fn quantize(&mut self, which: Oracle, ty: GgmlType, values: &[f32]) -> Job {
        self.quantize_rows(which, ty, values, values.len().max(1))
    }

    /// Queues dequantizing whole blocks of `ty`.
    pub fn dequantize(&mut self, which: Oracle, ty: GgmlType, bytes: &[u8]) -> Job {
        self.push(Kind::Dequantize, which, ty, 0, bytes)
    }

    /// Runs every queued job in one python process.
    pub fn run(self) -> Results {
        let manifest = self.dir.path().join("manifest");
        std::fs::write(&manifest, &self.manifest).expect("write manifest");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/oracle.py");
        let out = Command::new(python())
            .arg(&script)
            .arg(&manifest)
            .current_dir(workspace())
            .output()
            .expect("start python");
        assert!(
            out.status.success(),
            "oracle.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut results = Vec::with_capacity(self.jobs.len());
        for (i, (kind, which, ty)) in self.jobs.iter().enumerate() {
            let dst = self.dir.path().join(format!("{i}.out"));
            let err = self.dir.path().join(format!("{i}.out.err"));
            let r = if let Ok(e) = std::fs::read_to_string(&err) {
                Err(format!("{which:?} refused {ty}: {e}"))
            } else {
                let raw = std::fs::read(&dst).expect("oracle output");
                Ok(match kind {
                    Kind::Quantize => Output::Bytes(raw),
                    Kind::Dequantize => {
                        assert_eq!(raw.len() % 4, 0, "f32 output of {which:?} for {ty}");
                        Output::Floats(
                            raw.chunks_exact(4)
                                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                                .collect(),
                        )
                    }
                })
            };
            results.push(r);
        }
        Results(results)
    }
}

enum Output {
    Bytes(Vec<u8>),
    Floats(Vec<f32>),
}

/// The outputs of a [`Batch`], by [`Job`].
pub struct Results(Vec<Result<Output, String>>);

impl Results {
    /// The bytes a quantize job produced, or the oracle's refusal.
    pub fn try_bytes(&self, job: Job) -> Result<&[u8], &str> {
        match &self.0[job.0] {
            Ok(Output::Bytes(b)) => Ok(b),
            Ok(Output::Floats(_)) => panic!("job {} was a dequantize job", job.0),
            Err(e) => Err(e),
        }
    }

    /// The values a dequantize job produced, or the oracle's refusal.
    pub fn try_floats(&self, job: Job) -> Result<&[f32], &str> {
        match &self.0[job.0] {
            Ok(Output::Floats(f)) => Ok(f),
            Ok(Output::Bytes(_)) => panic!("job {} was a quantize job", job.0),
            Err(e) => Err(e),
        }
    }

    /// The bytes a quantize job produced; panics if the oracle refused.
    pub fn bytes(&self, job: Job) -> &[u8] {
        self.try_bytes(job).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The values a dequantize job produced; panics if the oracle refused.
    pub fn floats(&self, job: Job) -> &[f32] {
        self.try_floats(job).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Quantizes `values` (one row) with an oracle.
pub fn oracle_quantize(which: Oracle, ty: GgmlType, values: &[f32]) -> Vec<u8> {
    let mut b = Batch::new();
    let j = b.quantize(which, ty, values);
    b.run().bytes(j).to_vec()
}

/// Dequantizes whole blocks with an oracle.
pub fn oracle_dequantize(which: Oracle, ty: GgmlType, bytes: &[u8]) -> Vec<f32> {
    let mut b = Batch::new();
    let j = b.dequantize(which, ty, bytes);
    b.run().floats(j).to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Asserts `ours == theirs` byte for byte, reporting the first differing block of `ty` (and the
/// input values of that block when `input` is given).
pub fn assert_same_bytes(
    ty: GgmlType,
    what: &str,
    ours: &[u8],
    theirs: &[u8],
    input: Option<&[f32]>,
) {
    assert_eq!(ours.len(), theirs.len(), "{what}: {ty} byte lengths differ");
    let ts = ty.type_size();
    let bs = ty.block_size();
    let differing = ours
        .chunks(ts)
        .zip(theirs.chunks(ts))
        .filter(|(a, b)| a != b)
        .count();
    if let Some(i) = ours
        .chunks(ts)
        .zip(theirs.chunks(ts))
        .position(|(a, b)| a != b)
    {
        let a = &ours[i * ts..(i + 1) * ts];
        let b = &theirs[i * ts..(i + 1) * ts];
        let first = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
        let inp = input
            .map(|v| format!("\n  input  {:?}", &v[i * bs..((i + 1) * bs).min(v.len())]))
            .unwrap_or_default();
        panic!(
            "{what}: {ty} differs in {differing} of {} blocks; first is block {i} (byte {} in it, offset {})\n  ours   {}\n  oracle {}{inp}",
            ours.len() / ts,
            first,
            i * ts + first,
            hex(a),
            hex(b),
        );
    }
}

/// Asserts `ours` and `theirs` are the same f32 bit patterns, reporting the first differing
/// block of `ty` (and its source bytes when `src` is given).
pub fn assert_same_bits(
    ty: GgmlType,
    what: &str,
    ours: &[f32],
    theirs: &[f32],
    src: Option<&[u8]>,
) {
    assert_eq!(ours.len(), theirs.len(), "{what}: {ty} value counts differ");
    let bs = ty.block_size();
    let ts = ty.type_size();
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    let differing = ours
        .chunks(bs)
        .zip(theirs.chunks(bs))
        .filter(|(a, b)| !same(a, b))
        .count();
    if let Some(i) = ours
        .chunks(bs)
        .zip(theirs.chunks(bs))
        .position(|(a, b)| !same(a, b))
    {
        let a = &ours[i * bs..(i + 1) * bs];
        let b = &theirs[i * bs..(i + 1) * bs];
        let j = a
            .iter()
            .zip(b)
            .position(|(x, y)| x.to_bits() != y.to_bits())
            .unwrap_or(0);
        let bytes = src
            .map(|s| format!("\n  block bytes {}", hex(&s[i * ts..(i + 1) * ts])))
            .unwrap_or_default();
        panic!(
            "{what}: {ty} differs in {differing} of {} blocks; first is block {i}, element {j}: ours {:?} ({:#010x}), oracle {:?} ({:#010x}){bytes}",
            ours.len() / bs,
            a[j],
            a[j].to_bits(),
            b[j],
            b[j].to_bits(),
        );
    }
}
