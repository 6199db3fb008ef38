//! `hotpatch diff A B [--json] [--map WxH] [--threads N]`: compare two models tensor by tensor.
//!
//! Tensors are ranked by RMSE, largest first (pairs that cannot be compared value by value —
//! different shapes, no codec — come first). `--json` prints
//! `{"tensors": [{"name", "type_a", "type_b", "identical", "max_abs", "mean_abs", "rmse",
//! "cosine", "snr_db", ...}], "only_in_a": [...], "only_in_b": [...]}`; `snr_db` is `null` when
//! there is no difference (infinite SNR).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use hotpatch_core::diff::{diff_models, tensors_of, DiffOptions, DiffStatus};

use crate::output::{open_model, safe};
use crate::progress::Progress;

/// Arguments of `hotpatch diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The reference model (A).
    pub a: PathBuf,
    /// The model compared with it (B).
    pub b: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also compute a difference map of at most WxH cells per tensor (JSON only), e.g. 64x64.
    #[arg(long, value_name = "WxH", value_parser = parse_map)]
    pub map: Option<(usize, usize)>,
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn parse_map(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("'{s}' is not WxH (e.g. 64x64)"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("'{v}' in '{s}' is not a number"))
    };
    Ok((p(w)?, p(h)?))
}

/// Runs the command; the error, if any, is bad input (exit 2).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ma = open_model(&args.a)?;
    let mb = open_model(&args.b)?;
    let ta = tensors_of(&ma).with_context(|| format!("model A {}", args.a.display()))?;
    let tb = tensors_of(&mb).with_context(|| format!("model B {}", args.b.display()))?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let options = DiffOptions {
        map: args.map,
        threads,
    };
    let started = Instant::now();
    let mut progress = Progress::new("diff");
    let report = diff_models(
        &ta,
        &tb,
        &options,
        &mut |p| progress.update(p.done_bytes, p.total_bytes),
        None,
    )?;
    progress.finish(&format!(
        "{} tensors, {:.1} MB in {:.2} s",
        report.tensors.len(),
        report.bytes_compared as f64 / 1e6,
        started.elapsed().as_secs_f64()
    ));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<40} {:>7} {:>7} {:>12} {:>12} {:>10} {:>9}  note",
        "tensor", "A", "B", "rmse", "max_abs", "cosine", "snr_db"
    )?;
    let num = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.6}"));
    for t in &report.tensors {
        let note = match &t.status {
            DiffStatus::Compared if t.bytes_identical => "identical bytes".to_string(),
            DiffStatus::Compared if t.identical => "identical values".to_string(),
            DiffStatus::Compared => format!("{} of {} differ", t.n_diff, t.n_elements),
            DiffStatus::ShapeMismatch => format!("shape {:?} vs {:?}", t.dims_a, t.dims_b),
            DiffStatus::Unsupported(why) => safe(why),
        };
        let snr = match (&t.status, t.snr_db) {
            (DiffStatus::Compared, None) => "inf".to_string(),
            (_, v) => v.map_or("-".into(), |x| format!("{x:.2}")),
        };
        writeln!(
            out,
            "{:<40} {:>7} {:>7} {:>12} {:>12} {:>10} {:>9}  {}",
            safe(&t.name),
            t.type_a,
            t.type_b,
            num(t.rmse),
            num(t.max_abs),
            num(t.cosine),
            snr,
            note
        )?;
    }
    for t in &report.only_in_a {
        writeln!(
            out,
            "{:<40} {:>7} {:>7}  only in A",
            safe(&t.name),
            t.ty,
            "-"
        )?;
    }
    for t in &report.only_in_b {
        writeln!(
            out,
            "{:<40} {:>7} {:>7}  only in B",
            safe(&t.name),
            "-",
            t.ty
        )?;
    }
    writeln!(
        out,
        "{} of {} tensors identical; {} only in A, {} only in B",
        report.identical_count,
        report.tensors.len(),
        report.only_in_a.len(),
        report.only_in_b.len()
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
