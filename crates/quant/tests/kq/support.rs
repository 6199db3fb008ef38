//! Shared fixtures and the python oracle runner for the K/IQ codec tests (`kq/oracle.py`:
//! ggml through `tests/oracle/ggml.py` — `ggml_quantize_chunk`, which for IQ4_NL differs from
//! the type traits' `from_float_ref` — plus Q8_K's row functions, and gguf-py).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use hotpatch_testkit::root as workspace;

/// The oracle python: `$HOTPATCH_PYTHON` or `<workspace>/.venv/bin/python`.
pub fn python() -> PathBuf {
    let p = hotpatch_testkit::python();
    let lib = workspace()
        .join("tests/oracle/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so");
    assert!(
        lib.exists(),
        "{} missing: run scripts/setup-oracles.sh",
        lib.display()
    );
    p
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn temp_path(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("hotpatch-kq-{}-{n}-{tag}", std::process::id()))
}

/// Runs `kq/oracle.py OP TYPE_ID` on `input` and returns its output bytes.
pub fn oracle(op: &str, type_id: u32, input: &[u8]) -> Vec<u8> {
    let inp = temp_path("in");
    let out = temp_path("out");
    std::fs::write(&inp, input).expect("write oracle input");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kq/oracle.py");
    let res = Command::new(python())
        .arg(&script)
        .arg(op)
        .arg(type_id.to_string())
        .arg(&inp)
        .arg(&out)
        .output();
    let _ = std::fs::remove_file(&inp);
    let res = res.expect("spawn oracle python (run scripts/setup-oracles.sh)");
    assert!(
        res.status.success(),
        "oracle {op} {type_id} failed (run scripts/setup-oracles.sh?): {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let bytes = std::fs::read(&out).expect("read oracle output");
    let _ = std::fs::remove_file(&out);
    bytes
}

/// ggml's reference quantizer (no importance matrix).
pub fn ggml_quantize(type_id: u32, values: &[f32]) -> Vec<u8> {
    oracle("quantize", type_id, &f32_bytes(values))
}

/// ggml's C dequantizer.
pub fn ggml_dequantize(type_id: u32, blocks: &[u8]) -> Vec<f32> {
    bytes_f32(&oracle("dequant_ggml", type_id, blocks))
}

/// gguf-py's numpy dequantizer.
pub fn gguf_dequantize(type_id: u32, blocks: &[u8]) -> Vec<f32> {
    bytes_f32(&oracle("dequant_gguf", type_id, blocks))
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A small deterministic PRNG (xorshift64*), so fixtures need no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [-1, 1).
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

/// A named family of 256-value blocks.
pub struct Dist {
    pub name: &'static str,
    pub gen: fn(&mut Rng, &mut [f32]),
}

/// Random and edge-case block families: several distributions and scales, all-zero,
/// constant, one huge outlier, tiny and subnormal values, negative-only, positive-only, sparse.
pub fn distributions() -> Vec<Dist> {
    vec![
        Dist {
            name: "normal",
            gen: |r, b| b.iter_mut().for_each(|v| *v = r.normal() as f32),
        },
        Dist {
            name: "normal*0.02",
            gen: |r, b| b.iter_mut().for_each(|v| *v = (0.02 * r.normal()) as f32),
        },
        Dist {
            name: "normal*300",
            gen: |r, b| b.iter_mut().for_each(|v| *v = (300.0 * r.normal()) as f32),
        },
        Dist {
            name: "uniform",
            gen: |r, b| b.iter_mut().for_each(|v| *v = r.sym() as f32),
        },
        Dist {
            name: "laplace",
            gen: |r, b| {
                b.iter_mut().for_each(|v| {
                    let u = r.sym();
                    *v = (-u.signum() * (1.0 - u.abs()).max(1e-12).ln()) as f32
                })
            },
        },
        Dist {
            name: "negative-only",
            gen: |r, b| b.iter_mut().for_each(|v| *v = -(r.unit() as f32) - 0.01),
        },
        Dist {
            name: "positive-only",
            gen: |r, b| b.iter_mut().for_each(|v| *v = r.unit() as f32 + 0.5),
        },
        Dist {
            name: "all-zero",
            gen: |_, b| b.iter_mut().for_each(|v| *v = 0.0),
        },
        Dist {
            name: "constant",
            gen: |r, b| {
                let c = (r.sym() * 4.0) as f32;
                b.iter_mut().for_each(|v| *v = c)
            },
        },
        Dist {
            name: "outlier",
            gen: |r, b| {
                b.iter_mut().for_each(|v| *v = (0.01 * r.normal()) as f32);
                let i = (r.next_u64() % b.len() as u64) as usize;
                b[i] = if r.unit() < 0.5 { 1000.0 } else { -1000.0 };
            },
        },
        Dist {
            name: "tiny",
            gen: |r, b| b.iter_mut().for_each(|v| *v = (1e-20 * r.normal()) as f32),
        },
        Dist {
            name: "subnormal",
            gen: |r, b| b.iter_mut().for_each(|v| *v = (1e-39 * r.normal()) as f32),
        },
        Dist {
            name: "sparse",
            gen: |r, b| {
                b.iter_mut().for_each(|v| {
                    *v = if r.unit() < 0.9 {
                        0.0
                    } else {
                        r.normal() as f32
                    }
                })
            },
        },
        Dist {
            name: "integers",
            gen: |r, b| {
                b.iter_mut()
                    .for_each(|v| *v = ((r.next_u64() % 9) as i32 - 4) as f32)
            },
        },
        Dist {
            name: "mixed-scale",
            gen: |r, b| {
                for (i, v) in b.iter_mut().enumerate() {
                    let s = [1e-3, 1.0, 30.0, 0.1][(i / 16) % 4];
                    *v = (s * r.normal()) as f32;
                }
            },
        },
    ]
}

/// `blocks_per_dist` blocks of `block` values from every distribution, and the family name of
/// each block.
pub fn fixture(seed: u64, block: usize, blocks_per_dist: usize) -> (Vec<f32>, Vec<&'static str>) {
    let mut rng = Rng::new(seed);
    let mut values = Vec::new();
    let mut names = Vec::new();
    for d in distributions() {
        for _ in 0..blocks_per_dist {
            let start = values.len();
            values.resize(start + block, 0.0);
            (d.gen)(&mut rng, &mut values[start..]);
            names.push(d.name);
        }
    }
    (values, names)
}

/// Asserts two f32 slices are bit-identical, naming the first differing element.
pub fn assert_bits_eq(what: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths differ");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            a.to_bits() == b.to_bits(),
            "{what}: element {i} differs: ours {a:e} ({:#010x}), oracle {b:e} ({:#010x})",
            a.to_bits(),
            b.to_bits()
        );
    }
}

/// Like [`assert_bits_eq`], except that two NaNs may differ in their sign bit. ggml's C applies
/// IQ sign bits as a sign flip (the compiler turns `x * (s ? -1.f : 1.f)` into one), numpy
/// multiplies by -1.0, which keeps a NaN's sign: the two oracles disagree only there, and we
/// follow ggml's C.
pub fn assert_bits_eq_but_nan_sign(what: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths differ");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let same = a.to_bits() == b.to_bits()
            || (a.is_nan() && b.is_nan() && (a.to_bits() ^ b.to_bits()) == 0x8000_0000);
        assert!(
            same,
            "{what}: element {i} differs: ours {a:e} ({:#010x}), oracle {b:e} ({:#010x})",
            a.to_bits(),
            b.to_bits()
        );
    }
}
