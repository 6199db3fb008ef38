//! Open time against file size: `GgufFile::open` (open + map + parse the header) on sparse
//! files from 2 MB to 100 GB that share one 70B-like header (llama layout, 80 blocks, 723
//! tensors, a 32000-token vocabulary with scores and types); only the tensor dims scale.
//! gguf-py's `GGUFReader` is timed on the same files in the same run (scripts/bench/gguf_open.py).
//!
//! `cargo bench -p hotpatch-gguf --bench open`; files go to `$HOTPATCH_BENCH_DIR` (default: the
//! system temp dir) and take no disk space (only the header is written; the rest is a hole).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hotpatch_gguf::{
    layout, GgmlType, GgufFile, MetaArray, MetaValue, StringArray, TensorShape, TensorType,
};

const SIZES: &[(&str, u64)] = &[
    ("2MB", 2 << 20),
    ("100MB", 100 << 20),
    ("1GB", 1 << 30),
    ("10GB", 10 << 30),
    ("100GB", 100 << 30),
];

fn metadata() -> Vec<(String, MetaValue)> {
    let n_vocab = 32000;
    let tokens: StringArray = (0..n_vocab).map(|i| format!("▁tok{i}")).collect();
    let kv = |k: &str, v: MetaValue| (k.to_string(), v);
    vec![
        kv("general.architecture", MetaValue::string("llama")),
        kv("general.name", MetaValue::string("bench 70B-like")),
        kv("llama.block_count", MetaValue::U32(80)),
        kv("llama.context_length", MetaValue::U32(8192)),
        kv("llama.embedding_length", MetaValue::U32(8192)),
        kv("llama.feed_forward_length", MetaValue::U32(28672)),
        kv("llama.attention.head_count", MetaValue::U32(64)),
        kv("llama.attention.head_count_kv", MetaValue::U32(8)),
        kv("llama.rope.freq_base", MetaValue::F32(500000.0)),
        kv(
            "llama.attention.layer_norm_rms_epsilon",
            MetaValue::F32(1e-5),
        ),
        kv("general.file_type", MetaValue::U32(7)),
        kv("tokenizer.ggml.model", MetaValue::string("llama")),
        kv(
            "tokenizer.ggml.tokens",
            MetaValue::Array(MetaArray::String(tokens)),
        ),
        kv(
            "tokenizer.ggml.scores",
            MetaValue::Array(MetaArray::F32((0..n_vocab).map(|i| -(i as f32)).collect())),
        ),
        kv(
            "tokenizer.ggml.token_type",
            MetaValue::Array(MetaArray::I32(vec![1; n_vocab])),
        ),
        kv(
            "tokenizer.chat_template",
            MetaValue::string("{% for m in messages %}{{ m.content }}{% endfor %}"),
        ),
    ]
}

/// The tensors of a llama-70B-like model with every large dim scaled by `s` (multiples of 32).
fn tensors(s: f64) -> Vec<(String, GgmlType, Vec<u64>)> {
    let d = |base: f64| (((base * s) / 32.0).round().max(1.0) as u64) * 32;
    let (e, ff, kv, vocab) = (d(8192.0), d(28672.0), d(1024.0), d(128256.0));
    let q8 = GgmlType::Q8_0;
    let f32 = GgmlType::F32;
    let mut t = vec![("token_embd.weight".to_string(), q8, vec![e, vocab])];
    for b in 0..80 {
        let n = |x: &str| format!("blk.{b}.{x}");
        t.push((n("attn_norm.weight"), f32, vec![e]));
        t.push((n("attn_q.weight"), q8, vec![e, e]));
        t.push((n("attn_k.weight"), q8, vec![e, kv]));
        t.push((n("attn_v.weight"), q8, vec![e, kv]));
        t.push((n("attn_output.weight"), q8, vec![e, e]));
        t.push((n("ffn_norm.weight"), f32, vec![e]));
        t.push((n("ffn_gate.weight"), q8, vec![e, ff]));
        t.push((n("ffn_up.weight"), q8, vec![e, ff]));
        t.push((n("ffn_down.weight"), q8, vec![ff, e]));
    }
    t.push(("output_norm.weight".into(), f32, vec![e]));
    t.push(("output.weight".into(), q8, vec![e, vocab]));
    t
}

fn nbytes(ty: GgmlType, dims: &[u64]) -> u64 {
    dims.iter().product::<u64>() / ty.block_size() as u64 * ty.type_size() as u64
}

/// Writes (once) a sparse file of about `target` bytes; returns its path and real size.
fn make(dir: &Path, label: &str, target: u64, meta: &[(String, MetaValue)]) -> (PathBuf, u64) {
    // Size grows as s^2 (2-D weights): solve for s from the size at s = 1.
    let size_at = |s: f64| {
        tensors(s)
            .iter()
            .map(|(_, ty, d)| nbytes(*ty, d))
            .sum::<u64>()
    };
    let mut s = (target as f64 / size_at(1.0) as f64).sqrt();
    for _ in 0..3 {
        s *= (target as f64 / size_at(s).max(1) as f64).sqrt();
    }
    let ts = tensors(s);
    let shapes: Vec<TensorShape<'_>> = ts
        .iter()
        .map(|(n, ty, d)| TensorShape {
            name: n,
            ty: TensorType::Known(*ty),
            dims: d,
            nbytes: nbytes(*ty, d),
        })
        .collect();
    let lay = layout(3, meta, &shapes).expect("bench layout");
    let path = dir.join(format!("open-{label}.gguf"));
    let fresh = std::fs::metadata(&path)
        .map(|m| m.len() == lay.file_size)
        .unwrap_or(false);
    if !fresh {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .expect("create bench file");
        f.write_all(&lay.header).expect("write header");
        f.set_len(lay.file_size).expect("sparse extend");
    }
    (path, lay.file_size)
}

fn bench_open(c: &mut Criterion) {
    let dir = std::env::var_os("HOTPATCH_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("hotpatch-gguf-open-bench"));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let meta = metadata();
    let files: Vec<(&str, PathBuf, u64)> = SIZES
        .iter()
        .map(|&(l, t)| {
            let (p, s) = make(&dir, l, t, &meta);
            (l, p, s)
        })
        .collect();
    let mut g = c.benchmark_group("gguf_open");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (label, path, size) in &files {
        let f = GgufFile::open(path).expect("bench file opens");
        assert_eq!(f.index.tensors.len(), 723);
        println!(
            "{label}: {size} bytes, header {} bytes, 723 tensors",
            f.index.data_offset
        );
        g.bench_with_input(BenchmarkId::from_parameter(label), path, |b, p| {
            b.iter(|| GgufFile::open(p).expect("opens"));
        });
    }
    g.finish();

    // The peer, same files, same run (GGUF_OPEN_SKIP_PY=1 skips it: it takes minutes).
    if std::env::var_os("GGUF_OPEN_SKIP_PY").is_some() {
        return;
    }
    let py = std::env::var_os("HOTPATCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench/gguf_open.py");
    let mut cmd = std::process::Command::new(&py);
    cmd.arg(&script);
    for (_, p, _) in &files {
        cmd.arg(p);
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("gguf-py comparison did not run ({other:?}): run scripts/setup-oracles.sh")
        }
    }
}

criterion_group!(benches, bench_open);
criterion_main!(benches);
