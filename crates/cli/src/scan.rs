//! `hotpatch scan MODEL [--json] [--outliers T]`: NaN, ±Inf, subnormal (and |x| > T) weights,
//! per tensor, over the dequantized values of every tensor.
//!
//! `hotpatch search MODEL HEXPATTERN [--json] [--limit N]`: byte pattern search over the whole
//! file, every shard of a split model (`??` matches any byte), each hit labelled with the tensor
//! it falls in.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hotpatch_core::manager::Manager;
use hotpatch_core::tensor::ValueQuery;
use hotpatch_core::{Mode, Scope};

use crate::progress::Progress;

/// Arguments of `hotpatch scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// The model.
    model: PathBuf,
    /// Also report |x| above T.
    #[arg(long, value_name = "T")]
    outliers: Option<f32>,
    /// Hits listed one by one (all are counted).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `hotpatch search`.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// The model.
    model: PathBuf,
    /// Hex bytes with `??` wildcards (`3?` / `?3`: one free nibble), e.g. `00 3c ?? 3?`.
    pattern: String,
    /// Most matches reported.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn attach(model: &std::path::Path) -> anyhow::Result<Manager> {
    let m = Manager::initialize();
    m.attach(model, Mode::Staged)
        .with_context(|| model.display().to_string())?;
    Ok(m)
}

/// Runs `hotpatch scan`.
pub fn run_scan(a: ScanArgs) -> anyhow::Result<ExitCode> {
    if let Some(t) = a.outliers {
        anyhow::ensure!(
            t.is_finite() && t > 0.0,
            "--outliers must be a positive number, got {t}"
        );
    }
    let m = attach(&a.model)?;
    let query = ValueQuery {
        above: a.outliers,
        ..ValueQuery::non_normal()
    };
    let mut progress = Progress::new("scan");
    let r = m
        .tensors()?
        .search_values("*", &query, a.limit, &mut |d, t| {
            progress.update(d, t);
            true
        })?;
    progress.finish(&format!(
        "{} tensors, {} hits",
        r.tensors.len(),
        r.total_hits
    ));
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{:<40} {:>7} {:>8} {:>8} {:>10} {:>9}  range",
            "tensor", "type", "nan", "inf", "subnormal", "outliers"
        )?;
        for t in &r.tensors {
            let range = match (t.min, t.max) {
                (Some(lo), Some(hi)) => format!("[{lo}, {hi}]"),
                _ => t.skipped.clone().unwrap_or_default(),
            };
            writeln!(
                out,
                "{:<40} {:>7} {:>8} {:>8} {:>10} {:>9}  {range}",
                t.tensor, t.ty, t.nan, t.inf, t.subnormal, t.outliers
            )?;
        }
        for h in &r.hits {
            writeln!(
                out,
                "hit {}[{}] = {} ({:?})",
                h.tensor, h.index, h.value, h.class
            )?;
        }
        writeln!(out, "{} value(s) flagged", r.total_hits)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `hotpatch search`.
pub fn run_search(a: SearchArgs) -> anyhow::Result<ExitCode> {
    let m = attach(&a.model)?;
    // Every file of a split model, in shard order, up to `limit` matches in all.
    let mut hits = Vec::new();
    for (shard, (_, region)) in m.shards()?.into_iter().enumerate() {
        let left = a.limit.saturating_sub(hits.len());
        if left == 0 {
            break;
        }
        let found = m
            .memory()
            .find_hex(&a.pattern, Scope::Region(region), left)
            .context("pattern")?;
        hits.extend(found.into_iter().map(|h| (shard, h)));
    }
    let split = m.shards()?.len() > 1;
    let layer = m.tensors()?;
    let label = |shard: usize, off: u64| {
        layer
            .index()
            .tensors
            .iter()
            .find(|t| t.shard == shard && off >= t.offset && off < t.offset + t.nbytes)
            .map(|t| (t.name.clone(), off - t.offset))
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<_> = hits
            .iter()
            .map(|(shard, h)| {
                let (tensor, within) =
                    label(*shard, h.offset).map_or((None, None), |(n, w)| (Some(n), Some(w)));
                serde_json::json!({ "shard": shard, "offset": h.offset, "tensor": tensor, "tensor_offset": within })
            })
            .collect();
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "matches": v, "count": hits.len() }),
        )?;
        writeln!(out)?;
    } else {
        for (shard, h) in &hits {
            let file = if split {
                format!("file {} ", shard + 1)
            } else {
                String::new()
            };
            match label(*shard, h.offset) {
                Some((n, w)) => writeln!(out, "{file}{:#x}  {n} +{w:#x}", h.offset)?,
                None => writeln!(out, "{file}{:#x}  (header)", h.offset)?,
            }
        }
        writeln!(out, "{} match(es)", hits.len())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
