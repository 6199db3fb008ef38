//! Shared fixtures and the python oracle runner for the K/IQ codec tests (`kq/oracle.py`:
//! ggml through `tests/oracle/ggml.py` — `ggml_quantize_chunk`, which for IQ4_NL differs from
//! the type traits' `from_float_ref` — plus Q8_K's row functions, and gguf-py).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use hotpatch_quant::GgmlType;

/// The oracle python (with ggml installed).
pub use hotpatch_testkit::ggml_python as python;

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

/// A small deterministic PRNG (xorshift64*).
pub use hotpatch_testkit::Rng;

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

/// Quantizes the fixture (`blocks_per_dist` 256-value runs of every family) with this crate and
/// with ggml's reference quantizer and asserts the bytes are identical, naming the first run
/// that differs (its family and first differing byte).
pub fn check_quantize_like_ggml(ty: GgmlType, seed: u64, blocks_per_dist: usize) {
    let (values, names) = fixture(seed, 256, blocks_per_dist);
    let per256 = 256 / ty.block_size() * ty.type_size();
    let mut ours = vec![0u8; values.len() / 256 * per256];
    hotpatch_quant::quantize(ty, &values, &mut ours).expect("quantize");
    let theirs = ggml_quantize(ty.id(), &values);
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{ty}: ggml wrote a different byte count"
    );
    let run = |v: &[u8], b: usize| v[b * per256..(b + 1) * per256].to_vec();
    let bad: Vec<usize> = (0..names.len())
        .filter(|&b| run(&ours, b) != run(&theirs, b))
        .collect();
    if let Some(&b) = bad.first() {
        let (o, t) = (run(&ours, b), run(&theirs, b));
        let at = o.iter().zip(&t).position(|(x, y)| x != y).unwrap_or(0);
        panic!(
            "{ty}: {} of {} 256-value runs differ from ggml's reference quantizer; first: run {b} ({}), byte {at}: ours {:#04x} ggml {:#04x}\nours {o:02x?}\nggml {t:02x?}",
            bad.len(),
            names.len(),
            names[b],
            o[at],
            t[at],
        );
    }
}
