//! Benchmarks of the embedded engine, the whole path a user runs, printed as Markdown rows for
//! docs/PERFORMANCE.md (median of RUNS):
//!
//! ```sh
//! cargo bench -p hotpatch-infer --bench engine -- [MODEL] [THREADS] [RUNS]
//! ```
//!
//! - prompt evaluation and greedy generation, tokens/s, repacking off (how the studio loads)
//!   and on (llama.cpp's default);
//! - `evaluate` (edited vs original, both models) tokens/s;
//! - edit → visible: from a one-block edit in the session (staged and live) to the next logits
//!   that show it (sync of private pages + one decode), and the sync alone.
//!
//! Run `node tests/oracle/bench.mjs MODEL THREADS TEXT 64` beside it for the peer.

use std::path::PathBuf;
use std::time::Instant;

use hotpatch_core::{Engine, Layer, Mode, Operation, Origin, Patch, Target};
use hotpatch_infer::{
    evaluate, ContextOptions, EvalOptions, GenOptions, Instance, InstanceOptions, LoadOptions,
    SessionEngine, Side,
};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("demo/hotpatch-demo.gguf"));
    let threads: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let text = hotpatch_infer::SAMPLE_TEXT;
    println!("model {} threads {threads} runs {runs}", model.display());
    println!("{}", hotpatch_infer::build_info());
    println!("| measure | repack off (studio) | repack on (llama.cpp default) |");
    println!("|---|---|---|");
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for repack in [false, true] {
        let options = InstanceOptions {
            load: LoadOptions {
                repack,
                gpu_layers: 0,
            },
            context: ContextOptions {
                n_ctx: 1024,
                n_batch: 512,
                threads,
            },
        };
        let t0 = Instant::now();
        let mut m = Instance::load(&model, options, &mut |_| true).expect("load");
        let load = t0.elapsed().as_secs_f64();
        let mut prompt = m.tokenize_prompt(text).expect("tokenize");
        prompt.truncate(256);
        let mut p_tps = Vec::new();
        let mut g_tps = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            m.start(&prompt).expect("prompt");
            p_tps.push(prompt.len() as f64 / t.elapsed().as_secs_f64());
            let g = m
                .generate(
                    &prompt[..4],
                    &GenOptions {
                        max_tokens: 64,
                        ..Default::default()
                    },
                    &mut |_| true,
                )
                .expect("generate");
            g_tps.push((g.tokens.len().saturating_sub(1)) as f64 / g.gen_seconds);
        }
        let vals = [
            format!("{load:.2} s"),
            format!("{:.0} tok/s ({} tokens)", median(p_tps), prompt.len()),
            format!("{:.1} tok/s (64 tokens)", median(g_tps)),
        ];
        let names = ["load", "prompt evaluation", "generation"];
        for (i, v) in vals.into_iter().enumerate() {
            if repack {
                rows[i].1.push(v);
            } else {
                rows.push((names[i].to_string(), vec![v]));
            }
        }
    }
    for (name, v) in &rows {
        println!(
            "| {name} | {} | {} |",
            v[0],
            v.get(1).cloned().unwrap_or_default()
        );
    }

    // Edit → visible, on a scratch copy, staged and live.
    let dir = std::env::temp_dir().join(format!("hotpatch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("m.gguf");
    std::fs::copy(&model, &copy).unwrap();
    let index = hotpatch_gguf::GgufModel::open(&copy).unwrap();
    let t = index
        .tensors
        .iter()
        .find(|t| t.name.ends_with("ffn_down.weight"))
        .unwrap()
        .clone();
    let block = t.ggml_type().unwrap().type_size() as usize;
    let options = InstanceOptions {
        context: ContextOptions {
            n_ctx: 512,
            n_batch: 512,
            threads,
        },
        ..Default::default()
    };
    println!();
    println!(
        "| edit → visible ({} one-block edit, {block} bytes) | sync | sync + next logits |",
        t.name
    );
    println!("|---|---|---|");
    for mode in [Mode::Staged, Mode::Live] {
        let core = Engine::new();
        let r = core.open(&copy, mode).unwrap();
        let mut se =
            SessionEngine::attach(&core, &[(copy.clone(), r)], options, &mut |_| true).unwrap();
        let prompt = se
            .instance(Side::Edited)
            .unwrap()
            .tokenize_prompt("Hello")
            .unwrap();
        se.next_logits(Side::Edited, &prompt).unwrap();
        let mut syncs = Vec::new();
        let mut totals = Vec::new();
        for i in 0..runs.max(3) {
            let off = t.offset + (i * block) as u64;
            let mut bytes = core.read(r, off, block as u64).unwrap();
            bytes.reverse();
            core.apply(
                Origin::new(Layer::Memory, Operation::Write, Target::None),
                vec![Patch::new(r, off, bytes)],
            )
            .unwrap();
            let t0 = Instant::now();
            se.sync(Side::Edited).unwrap();
            syncs.push(t0.elapsed().as_secs_f64());
            se.next_logits(Side::Edited, &prompt).unwrap();
            totals.push(t0.elapsed().as_secs_f64());
        }
        println!(
            "| {mode:?} | {:.1} µs | {:.2} ms |",
            median(syncs) * 1e6,
            median(totals) * 1e3
        );
    }

    // Behaviour diff throughput: edited vs original over the sample text.
    let core = Engine::new();
    let r = core.open(&copy, Mode::Staged).unwrap();
    let mut se =
        SessionEngine::attach(&core, &[(copy.clone(), r)], options, &mut |_| true).unwrap();
    let (a, b) = se.both().unwrap();
    let rep = evaluate(
        a,
        Some(b),
        text,
        EvalOptions {
            window: 256,
            batch: 64,
            max_tokens: 512,
            worst: 5,
        },
        &mut |_, _| true,
    )
    .unwrap();
    println!();
    println!(
        "| evaluate (edited vs original, {} positions, window 256) | {:.0} tok/s per model ({:.2} s) |",
        rep.tokens, rep.tokens_per_second, rep.seconds
    );
    let _ = std::fs::remove_dir_all(&dir);
}
