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
use hotpatch_core::tensor::ValueQuery;
use hotpatch_core::Pattern;

use crate::output::{open_model, safe};
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

/// Runs `hotpatch scan`.
pub fn run_scan(a: ScanArgs) -> anyhow::Result<ExitCode> {
    if let Some(t) = a.outliers {
        anyhow::ensure!(
            t.is_finite() && t > 0.0,
            "--outliers must be a positive number, got {t}"
        );
    }
    let m = crate::output::attach_session(&a.model)?;
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
                _ => safe(t.skipped.as_deref().unwrap_or_default()),
            };
            writeln!(
                out,
                "{:<40} {:>7} {:>8} {:>8} {:>10} {:>9}  {range}",
                safe(&t.tensor),
                t.ty,
                t.nan,
                t.inf,
                t.subnormal,
                t.outliers
            )?;
        }
        for h in &r.hits {
            writeln!(
                out,
                "hit {}[{}] = {} ({:?})",
                safe(&h.tensor),
                h.index,
                h.value,
                h.class
            )?;
        }
        writeln!(out, "{} value(s) flagged", r.total_hits)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `hotpatch search`.
///
/// Read-only and straight from the file: the model is opened (header parsed, for the tensor
/// labels) without attaching an edit session (no fingerprint hashing, no copy-on-write map);
/// each file is searched by every core over its own read-only map, each window's pages faulted
/// in with one `madvise` before it is read.
pub fn run_search(a: SearchArgs) -> anyhow::Result<ExitCode> {
    let pattern = Pattern::parse_hex(&a.pattern).context("pattern")?;
    let m = open_model(&a.model)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Every file of a split model, in shard order, up to `limit` matches in all.
    let mut hits: Vec<(usize, u64)> = Vec::new();
    for (shard, f) in m.shards.iter().enumerate() {
        let left = a.limit.saturating_sub(hits.len());
        if left == 0 {
            break;
        }
        let found = search_file(f.path(), &pattern, left, threads).context("pattern")?;
        hits.extend(found.into_iter().map(|o| (shard, o)));
    }
    let split = m.is_split();
    let label = |shard: usize, off: u64| {
        m.tensors
            .iter()
            .find(|t| t.shard == shard && off >= t.offset && off < t.offset + t.nbytes)
            .map(|t| (t.name.clone(), off - t.offset))
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<_> = hits
            .iter()
            .map(|&(shard, offset)| {
                let (tensor, within) =
                    label(shard, offset).map_or((None, None), |(n, w)| (Some(n), Some(w)));
                serde_json::json!({ "shard": shard, "offset": offset, "tensor": tensor, "tensor_offset": within })
            })
            .collect();
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "matches": v, "count": hits.len() }),
        )?;
        writeln!(out)?;
    } else {
        for &(shard, offset) in &hits {
            let file = if split {
                format!("file {} ", shard + 1)
            } else {
                String::new()
            };
            match label(shard, offset) {
                Some((n, w)) => writeln!(out, "{file}{offset:#x}  {} +{w:#x}", safe(&n))?,
                None => writeln!(out, "{file}{offset:#x}  (header)")?,
            }
        }
        writeln!(out, "{} match(es)", hits.len())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Every match of `pattern` in the file at `path` (at most `limit`; more is an error), searched
/// by `threads` threads over a read-only map.
fn search_file(
    path: &std::path::Path,
    pattern: &Pattern,
    limit: usize,
    threads: usize,
) -> anyhow::Result<Vec<u64>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: a read-only map of a file nobody is asked to change during the search; if another
    // process writes it anyway (a live edit), the matches may reflect either bytes, but every
    // access stays inside the map (slices are bounds-checked against its length).
    let map = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("{}: cannot map", path.display()))?;
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    let prepare = |offset: usize, len: usize| {
        // One call maps a whole window's pages (they are in the page cache, or read ahead):
        // no page fault per 64 KiB while searching. Best effort: kernels before 5.14 refuse it.
        #[cfg(target_os = "linux")]
        let _ = map.advise_range(memmap2::Advice::PopulateRead, offset, len);
        #[cfg(not(target_os = "linux"))]
        let _ = (offset, len);
    };
    Ok(pattern.find_all_threads(&map, limit, threads, &prepare)?)
}
