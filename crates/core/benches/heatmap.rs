//! Heatmap level-of-detail benchmarks (figures in docs/PERFORMANCE.md, "Studio (heatmap)").
//!
//! A 4096×4096 tensor (F16 and Q4_K, random normal weights) is reduced to a 1024×768 tile —
//! the canvas of the Tensors screen — for the first paint (the whole matrix) and for each zoom
//! step of ×1.5 around the centre, down to 16 elements per axis (where the tile is one cell per
//! element). This is the Rust side of every paint: viewport check, dequantizing only the rows
//! and blocks in view, and the mean + max-|x| reduction. Also: the statistics + histogram job
//! the screen runs when a tensor is selected (`stats_histogram_96`).
//!
//! Run: `CARGO_TARGET_DIR=... cargo bench -p hotpatch-core --bench heatmap`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hotpatch_core::heatmap::{histogram_with, lod, QuantMatrix, Viewport};
use hotpatch_core::tensor::{noise_z, splitmix64};
use hotpatch_quant::{quantize, GgmlType};

const N: u64 = 4096;
const OUT_W: u32 = 1024;
const OUT_H: u32 = 768;

fn tensor(ty: GgmlType) -> Vec<u8> {
    let seed = splitmix64(7);
    let values: Vec<f32> = (0..N * N)
        .map(|i| (noise_z(seed, i) * 0.02) as f32)
        .collect();
    let mut bytes = vec![0u8; ty.row_bytes(N).unwrap() * N as usize];
    quantize(ty, &values, &mut bytes).unwrap();
    bytes
}

/// The viewports of the first paint and each ×1.5 zoom step around the centre.
fn steps() -> Vec<(String, Viewport)> {
    let mut out = Vec::new();
    let mut span = N as f64;
    let mut k = 0;
    while span >= 16.0 {
        let s = span.round() as u64;
        let o = (N - s) / 2;
        let name = if k == 0 {
            "first_paint".to_string()
        } else {
            format!("zoom{k:02}_{s}")
        };
        out.push((
            name,
            Viewport {
                row0: o,
                col0: o,
                rows: s,
                cols: s,
            },
        ));
        span /= 1.5;
        k += 1;
    }
    out
}

fn heatmap(c: &mut Criterion) {
    for ty in [GgmlType::F16, GgmlType::Q4_K] {
        let bytes = tensor(ty);
        let m = QuantMatrix::new(ty, &bytes, &[N, N]).unwrap();
        let mut g = c.benchmark_group(format!("heatmap_{}", ty.name()));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (name, vp) in steps() {
            g.bench_with_input(BenchmarkId::from_parameter(&name), &vp, |b, &vp| {
                b.iter(|| lod(&m, vp, OUT_W, OUT_H).unwrap())
            });
        }
        // What selecting the tensor costs besides the paint: the Tensors screen's one job,
        // the 96-bin histogram with its statistics (two passes over every element), with a
        // progress callback that counts the reports as the app's does.
        g.bench_function("stats_histogram_96", |b| {
            b.iter(|| {
                let mut reports = 0u32;
                let full = Viewport {
                    row0: 0,
                    col0: 0,
                    rows: N,
                    cols: N,
                };
                let h = histogram_with(&m, full, 96, None, &mut |_| {
                    reports += 1;
                    true
                })
                .unwrap();
                (h, reports)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, heatmap);
criterion_main!(benches);
