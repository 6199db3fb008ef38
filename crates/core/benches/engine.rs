//! Edit-engine benchmarks (figures in docs/PERFORMANCE.md, section "Edit engine").
//!
//! - `edit_save/<GiB>`: one 4-byte weight edit + Save on sparse multi-GB files: time against
//!   file size (the bytes written are printed: they do not grow with the file).
//! - `search/*`: wildcard pattern search (`Pattern`, through the engine) against
//!   `memchr::memmem` and `grep -c` on the same 256 MiB file.
//! - `compare/*`: the engine's range compare against slice `==` (memcmp).
//!
//! Run: `CARGO_TARGET_DIR=... cargo bench -p hotpatch-core --bench engine`
//! (`HOTPATCH_BENCH_DIR` picks the scratch directory, default the system temp dir).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hotpatch_core::{Engine, Layer, Mode, Operation, Origin, Patch, Pattern, Scope, Target};

fn dir() -> PathBuf {
    let d = std::env::var_os("HOTPATCH_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("hotpatch-core-bench");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn edit_save(c: &mut Criterion) {
    let mut g = c.benchmark_group("edit_save");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for gib in [1u64, 2, 4, 8] {
        let path = dir().join(format!("sparse-{gib}g.bin"));
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(gib << 30).unwrap(); // sparse: no data blocks allocated
        drop(f);
        let e = Engine::new();
        let r = e.open(&path, Mode::Staged).unwrap();
        let at = (gib << 30) / 2 + 12_345;
        let mut v = 0u8;
        let mut last = None;
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{gib}GiB")),
            &gib,
            |b, _| {
                b.iter(|| {
                    v = v.wrapping_add(1) | 1;
                    e.apply(
                        Origin::new(Layer::Tensor, Operation::Write, Target::None),
                        vec![Patch::new(r, at, vec![v; 4])],
                    )
                    .unwrap();
                    last = Some(e.save(r, &mut |_| true).unwrap());
                })
            },
        );
        if let Some(rep) = last {
            eprintln!(
                "edit_save {gib} GiB: {} data bytes written, {} journal bytes",
                rep.bytes_written, rep.journal_bytes
            );
        }
        drop(e);
        std::fs::remove_file(&path).unwrap();
    }
    g.finish();
}

fn data_file(name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut data = vec![0u8; len];
    for chunk in data.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    // Plant matches.
    for i in (0..len - 8).step_by(1 << 20) {
        data[i..i + 8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, i as u8, 0x13, 0x37, 0x42]);
    }
    let path = dir().join(name);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

fn search(c: &mut Criterion) {
    const LEN: usize = 256 << 20;
    let (path, data) = data_file("search.bin", LEN);
    let e = Engine::new();
    let r = e.open(&path, Mode::ReadOnly).unwrap();
    let mut g = c.benchmark_group("search");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(LEN as u64));
    let wild = Pattern::parse_hex("de ad be ef ?? 13 37 42").unwrap();
    let lit = Pattern::parse_hex("de ad be ef").unwrap();
    let expect = LEN / (1 << 20);
    g.bench_function("engine_wildcard", |b| {
        b.iter(|| {
            assert_eq!(
                e.memory()
                    .search(&wild, Scope::Region(r), usize::MAX, &mut |_| true)
                    .unwrap()
                    .len(),
                expect
            )
        })
    });
    g.bench_function("engine_literal", |b| {
        b.iter(|| {
            assert_eq!(
                e.memory()
                    .search(&lit, Scope::Region(r), usize::MAX, &mut |_| true)
                    .unwrap()
                    .len(),
                expect
            )
        })
    });
    g.bench_function("memchr_memmem_literal", |b| {
        let f = memchr::memmem::Finder::new(&[0xde, 0xad, 0xbe, 0xef]);
        b.iter(|| assert_eq!(f.find_iter(&data).count(), expect))
    });
    g.bench_function("grep_c_literal", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let out = Command::new("grep")
                    .env("LC_ALL", "C")
                    .args(["-c", "-a", "-F", "-e"])
                    .arg(pattern_arg())
                    .arg(&path)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "grep found the planted matches");
            }
            t.elapsed()
        })
    });
    g.finish();
    drop(e);
    let _ = std::fs::remove_file(&path);
}

/// The literal `de ad be ef` as an OS string (Unix).
fn pattern_arg() -> &'static std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(&[0xde, 0xad, 0xbe, 0xef])
}

fn compare(c: &mut Criterion) {
    const LEN: usize = 256 << 20;
    let (pa, _) = data_file("cmp-a.bin", LEN);
    let pb = dir().join("cmp-b.bin");
    std::fs::copy(&pa, &pb).unwrap();
    let e = Engine::new();
    let ra = e.open(&pa, Mode::ReadOnly).unwrap();
    let rb = e.open(&pb, Mode::Staged).unwrap();
    e.memory().write(rb, LEN as u64 - 10, &[0, 1, 2]).unwrap();
    let a = std::fs::read(&pa).unwrap();
    let b2 = e.read(rb, 0, LEN as u64).unwrap();
    let mut g = c.benchmark_group("compare");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("engine_compare", |b| {
        b.iter(|| {
            assert!(
                e.memory()
                    .compare(ra, 0, rb, 0, LEN as u64)
                    .unwrap()
                    .differing
                    > 0
            )
        })
    });
    g.bench_function("slice_eq_memcmp", |b| {
        b.iter(|| assert!(std::hint::black_box(&a[..]) != std::hint::black_box(&b2[..])))
    });
    g.finish();
    drop(e);
    let _ = std::fs::remove_file(&pa);
    let _ = std::fs::remove_file(&pb);
}

criterion_group!(benches, edit_save, search, compare);
criterion_main!(benches);
