//! `hotpatch run MODEL --prompt TEXT [--max-tokens N] [--chat] [--json]`: greedy generation
//! with the embedded llama.cpp (mapped, repacking off: it computes from the file as it is on
//! disk, so an in-place or live edit shows in the next run).
//!
//! Plain output streams the generated text to stdout as it comes; `--json` prints one object:
//! `{"text", "tokens", "prompt_tokens", "stop", "prompt_seconds", "gen_seconds",
//! "tokens_per_second", "prompt_tokens_per_second"}`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hotpatch_infer::{ContextOptions, GenOptions, Instance, InstanceOptions, LoadOptions};
use serde_json::json;

/// Arguments of `hotpatch run`.
#[derive(clap::Args)]
pub struct Args {
    /// The model (GGUF).
    model: PathBuf,
    /// The prompt.
    #[arg(long)]
    prompt: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Format the prompt as a user message with the model's own chat template.
    #[arg(long)]
    chat: bool,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
    /// Threads (default: every core).
    #[arg(long, default_value_t = 0)]
    threads: u32,
    /// Context length in tokens.
    #[arg(long, default_value_t = 2048)]
    ctx: u32,
    /// Let llama.cpp repack tensors at load as it does by default (faster prompt evaluation
    /// on some CPUs; edits of repacked tensors are then not seen until the next run).
    #[arg(long)]
    repack: bool,
}

pub(crate) fn load(
    model: &std::path::Path,
    threads: u32,
    ctx: u32,
    repack: bool,
) -> anyhow::Result<Instance> {
    let options = InstanceOptions {
        load: LoadOptions {
            repack,
            gpu_layers: 0,
        },
        context: ContextOptions {
            n_ctx: ctx,
            n_batch: 512,
            threads,
        },
    };
    Instance::load(model, options, &mut |_| true)
        .with_context(|| format!("cannot run {}", model.display()))
}

/// Runs the subcommand.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut m = load(&a.model, a.threads, a.ctx, a.repack)?;
    let text = if a.chat {
        m.chat_prompt(&[("user".into(), a.prompt.clone())])?
    } else {
        a.prompt.clone()
    };
    let prompt = m.tokenize_prompt(&text)?;
    let options = GenOptions {
        max_tokens: a.max_tokens,
        ..Default::default()
    };
    let mut out = std::io::stdout().lock();
    let mut io_err = None;
    let g = m.generate(&prompt, &options, &mut |s| {
        if a.json {
            return true;
        }
        match out
            .write_all(crate::output::safe_text(&s.text).as_bytes())
            .and_then(|_| out.flush())
        {
            Ok(()) => true,
            Err(e) => {
                io_err = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = io_err {
        return Err(e.into());
    }
    if a.json {
        let v = json!({
            "text": g.text,
            "tokens": g.tokens,
            "prompt_tokens": g.prompt_tokens,
            "stop": format!("{:?}", g.stop),
            "prompt_seconds": g.prompt_seconds,
            "gen_seconds": g.gen_seconds,
            "prompt_tokens_per_second": g.prompt_tokens as f64 / g.prompt_seconds.max(1e-9),
            "tokens_per_second": g.tokens.len() as f64 / g.gen_seconds.max(1e-9),
            "threads": m.threads(),
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}
