//! Diff benchmarks (figures in docs/PERFORMANCE.md, "Studio (diff)").
//!
//! One 4096×4096 tensor pair — A in F16, B = A plus small noise, in F16 (same type) or Q8_0
//! (across types, both sides dequantized) — measured for what the Diff screen asks of Rust:
//! the ranking metrics of the pair (`diff_models`), the 50 largest element differences
//! (`top_differences`), and the first paint of the A − B map (a 1024×256 tile of the whole
//! matrix, one third of a 1440-pixel-wide window, through the shared heatmap LOD).
//!
//! Run: `CARGO_TARGET_DIR=... cargo bench -p hotpatch-core --bench diff`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use hotpatch_core::diff::{diff_models, top_differences, DiffOptions, DiffTensor};
use hotpatch_core::heatmap::{lod, Difference, QuantMatrix, Viewport};
use hotpatch_core::tensor::{noise_z, splitmix64};
use hotpatch_quant::{quantize, GgmlType};

const N: u64 = 4096;

fn encode(ty: GgmlType, values: &[f32]) -> Vec<u8> {
    let mut bytes = vec![0u8; ty.row_bytes(N).unwrap() * N as usize];
    quantize(ty, values, &mut bytes).unwrap();
    bytes
}

fn bench(c: &mut Criterion) {
    let (sa, sb) = (splitmix64(7), splitmix64(8));
    let a: Vec<f32> = (0..N * N).map(|i| (noise_z(sa, i) * 0.02) as f32).collect();
    let b: Vec<f32> = a
        .iter()
        .enumerate()
        .map(|(i, x)| x + (noise_z(sb, i as u64) * 0.002) as f32)
        .collect();
    let dims = [N, N];
    let a16 = encode(GgmlType::F16, &a);
    let b16 = encode(GgmlType::F16, &b);
    let b8 = encode(GgmlType::Q8_0, &b);
    let t = |ty: GgmlType, data: &'static [u8]| DiffTensor {
        name: "w",
        type_id: ty.id(),
        dims: Box::leak(Box::new(dims)),
        data,
    };
    let a16: &'static [u8] = Box::leak(a16.into_boxed_slice());
    let b16: &'static [u8] = Box::leak(b16.into_boxed_slice());
    let b8: &'static [u8] = Box::leak(b8.into_boxed_slice());
    let ta = t(GgmlType::F16, a16);
    let mut g = c.benchmark_group("diff_4096x4096");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (label, tb, ty_b, data_b) in [
        ("F16_vs_F16", t(GgmlType::F16, b16), GgmlType::F16, b16),
        ("F16_vs_Q8_0", t(GgmlType::Q8_0, b8), GgmlType::Q8_0, b8),
    ] {
        g.bench_function(format!("rank/{label}"), |bch| {
            bch.iter(|| {
                diff_models(
                    std::slice::from_ref(&ta),
                    std::slice::from_ref(&tb),
                    &DiffOptions::default(),
                    &mut |_| {},
                    None,
                )
                .unwrap()
            })
        });
        g.bench_function(format!("top50/{label}"), |bch| {
            bch.iter(|| top_differences(&ta, &tb, 50, None).unwrap())
        });
        let ma = QuantMatrix::new(GgmlType::F16, a16, &dims).unwrap();
        let mb = QuantMatrix::new(ty_b, data_b, &dims).unwrap();
        let full = Viewport {
            row0: 0,
            col0: 0,
            rows: N,
            cols: N,
        };
        g.bench_function(format!("diff_map_first_paint/{label}"), |bch| {
            bch.iter(|| {
                let d = Difference::new(&ma, &mb).unwrap();
                lod(&d, full, 1024, 256).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
