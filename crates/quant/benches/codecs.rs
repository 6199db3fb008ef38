//! Codec throughput: dequantize and quantize of a 1024 × 4096 tensor (4 Mi elements) for every
//! type with a codec (`GgmlType::ALL` filtered by `can_dequantize` / `can_quantize`, so new
//! codecs appear here without editing this file). Single-threaded.
//!
//! Throughput is counted in bytes of f32 (16 MiB per run): the f32 written by dequantize, the
//! f32 read by quantize — the same unit `scripts/bench/codecs_peers.py` reports for numpy
//! (gguf-py) and ggml C, which it measures on the same sizes.
//!
//! Each criterion iteration is timed on its own in THREAD CPU TIME (`CLOCK_THREAD_CPUTIME_ID`)
//! and a sample reports its fastest iteration (best-of-N, via `iter_custom`): the project
//! machine is 2 cores shared with compilers, and wall-clock time of a 2–200 ms run would
//! measure the scheduler instead of the codec. The peers script times numpy and ggml the same
//! way (`time.thread_time`, best of N). Memory-bandwidth contention from other processes is
//! still in the figures.
//!
//! `cargo bench -p hotpatch-quant --bench codecs` (filter with e.g. `-- dequantize/Q4_K`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotpatch_quant::{dequantize, quantize, GgmlType};
use std::hint::black_box;
use std::time::Duration;

const ROWS: usize = 1024;
const COLS: usize = 4096;
const N: usize = ROWS * COLS;

/// Deterministic weights: a normal distribution (Box–Muller over SplitMix64), σ = 0.02.
fn weights() -> Vec<f32> {
    let mut s = 0x5eed_u64;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..N)
        .map(|_| {
            let (u1, u2) = (next(), next());
            ((-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * 0.02) as f32
        })
        .collect()
}

/// Encoded input for dequantizing `ty`: the weights quantized when we can, else pseudo-random
/// bytes (same code paths and speed for these decoders).
fn encoded(ty: GgmlType, w: &[f32]) -> Vec<u8> {
    let mut q = vec![
        0u8;
        ty.row_bytes(N as u64)
            .expect("N is whole blocks of every type")
    ];
    if ty.can_quantize() {
        quantize(ty, w, &mut q).expect("quantize");
    } else {
        let mut s = 1u32;
        for b in &mut q {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *b = s as u8;
        }
    }
    q
}

/// CPU time consumed by this thread so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Criterion's `iters` runs of `f`, reported as `iters` times the fastest one (thread CPU
/// time).
fn best_of(iters: u64, mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..iters.max(1) {
        let t = thread_cpu_time();
        f();
        best = best.min(thread_cpu_time() - t);
    }
    best * u32::try_from(iters).unwrap_or(u32::MAX)
}

fn codecs(c: &mut Criterion) {
    let w = weights();
    let mut out = vec![0f32; N];
    let mut g = c.benchmark_group("dequantize");
    g.throughput(Throughput::Bytes((N * 4) as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for &ty in GgmlType::ALL.iter().filter(|t| t.can_dequantize()) {
        let q = encoded(ty, &w);
        g.bench_function(ty.name(), |b| {
            b.iter_custom(|n| {
                best_of(n, || {
                    dequantize(ty, black_box(&q), black_box(&mut out)).expect("dequantize")
                })
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("quantize");
    g.throughput(Throughput::Bytes((N * 4) as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for &ty in GgmlType::ALL.iter().filter(|t| t.can_quantize()) {
        let mut q = vec![0u8; ty.row_bytes(N as u64).expect("whole blocks")];
        g.bench_function(ty.name(), |b| {
            b.iter_custom(|n| {
                best_of(n, || {
                    quantize(ty, black_box(&w), black_box(&mut q)).expect("quantize")
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
