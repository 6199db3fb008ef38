//! `hotpatch eval A [B] [--text FILE] [--json]`: perplexity of model A over a text, and with
//! B the behaviour diff of A against B — perplexity of each, KL divergence KL(A ‖ B) of the
//! next-token distributions (mean, p99), top-1 agreement, and the positions where they
//! disagree most (what `llama-perplexity --kl-divergence` measures). Without `--text`, the
//! bundled public-domain sample. Progress on stderr.
//!
//! JSON: `{"ppl", "tokens", "window", "seconds", "tokens_per_second", "text"}` and with B also
//! `"ppl_b", "kld_mean", "kld_p99", "kld_max", "top1_agreement", "worst": [...]`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hotpatch_infer::{evaluate, EvalOptions};
use serde_json::json;

use crate::output::float_json;

/// Arguments of `hotpatch eval`.
#[derive(clap::Args)]
pub struct Args {
    /// The model (A).
    a: PathBuf,
    /// A second model (B) to compare A against (same vocabulary).
    b: Option<PathBuf>,
    /// The text (UTF-8). Default: the bundled sample (passages of the US Declaration of
    /// Independence, public domain).
    #[arg(long)]
    text: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Tokens per window (each evaluated from an empty context).
    #[arg(long, default_value_t = 512)]
    window: usize,
    /// Use at most this many tokens of the text (0: all).
    #[arg(long, default_value_t = 0)]
    max_tokens: usize,
    /// Threads (default: every core).
    #[arg(long, default_value_t = 0)]
    threads: u32,
}

/// Runs the subcommand.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let text = match &a.text {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read {} as UTF-8 text", p.display()))?,
        None => hotpatch_infer::SAMPLE_TEXT.to_string(),
    };
    let ctx = (a.window.max(2) as u32).max(64);
    let mut ma = crate::run::load(&a.a, a.threads, ctx, false)?;
    let mut mb = match &a.b {
        Some(b) => Some(crate::run::load(b, a.threads, ctx, false)?),
        None => None,
    };
    let options = EvalOptions {
        window: a.window,
        batch: 64,
        max_tokens: a.max_tokens,
        worst: 10,
    };
    let mut bar = crate::progress::Progress::new("eval");
    let r = evaluate(&mut ma, mb.as_mut(), &text, options, &mut |done, total| {
        bar.update_count(done as u64, total as u64, "tokens");
        true
    })?;
    bar.finish(&format!("{} tokens in {:.1} s", r.tokens, r.seconds));
    let mut out = std::io::stdout().lock();
    if a.json {
        let mut v = json!({
            "ppl": float_json(r.ppl),
            "tokens": r.tokens,
            "window": r.window,
            "seconds": r.seconds,
            "tokens_per_second": r.tokens_per_second,
            "text": a.text.as_ref().map_or("(bundled sample)".to_string(), |p| p.display().to_string()),
        });
        if mb.is_some() {
            let o = v.as_object_mut().expect("object");
            let f = |x: Option<f64>| x.map_or(serde_json::Value::Null, float_json);
            o.insert("ppl_b".into(), f(r.ppl_b));
            o.insert("kld_mean".into(), f(r.kld_mean));
            o.insert("kld_p99".into(), f(r.kld_p99));
            o.insert("kld_max".into(), f(r.kld_max));
            o.insert("top1_agreement".into(), f(r.top1_agreement));
            o.insert("worst".into(), serde_json::to_value(&r.worst)?);
        }
        writeln!(out, "{v}")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "tokens scored   {} (windows of {})",
        r.tokens, r.window
    )?;
    writeln!(out, "ppl A           {:.4}  ({})", r.ppl, a.a.display())?;
    if let (Some(b), Some(pb)) = (&a.b, r.ppl_b) {
        writeln!(out, "ppl B           {pb:.4}  ({})", b.display())?;
        writeln!(out, "KL(A||B) mean   {:.6}", r.kld_mean.unwrap_or(0.0))?;
        writeln!(out, "KL(A||B) p99    {:.6}", r.kld_p99.unwrap_or(0.0))?;
        writeln!(
            out,
            "top-1 agreement {:.2} %",
            r.top1_agreement.unwrap_or(0.0) * 100.0
        )?;
        if !r.worst.is_empty() && r.worst[0].kld > 0.0 {
            writeln!(
                out,
                "largest disagreements (position, KL, context → actual: A's top / B's top):"
            )?;
            for w in r.worst.iter().filter(|w| w.kld > 0.0) {
                writeln!(
                    out,
                    "  {:>6}  {:.4}  {:?} → {:?}: {:?} / {:?}",
                    w.position, w.kld, w.context, w.actual, w.top_a, w.top_b
                )?;
            }
        }
    }
    writeln!(out, "{:.0} tokens/s per model", r.tokens_per_second)?;
    Ok(ExitCode::SUCCESS)
}
