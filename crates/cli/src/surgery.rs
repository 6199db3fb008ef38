//! What every surgery verb (`convert`, `layers`, `merge`, `lora`, `ablate`, `tensors`) shares:
//! plan the operations, show the preview (`--dry-run`, `--json`), record them as a
//! configuration (`--record`), write the new file with a progress line.
//!
//! Exit codes: 0 written (or previewed); 2 bad input or an operation that does not fit the
//! model; 1 canceled (Ctrl-C is not caught: the temporary file is removed by the writer's
//! drop only on an orderly stop, so a killed run leaves at most a `.hotpatch-write-*.tmp`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use hotpatch_core::surgery::{self, SurgeryOp, SurgeryPreview};

use crate::output::{safe, safe_path};
use crate::progress::Progress;

/// Options shared by the surgery verbs.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Where the new model goes (written atomically; never one of the inputs).
    #[arg(long, value_name = "FILE", required_unless_present = "dry_run")]
    pub out: Option<PathBuf>,
    /// Only show what would be written.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the preview as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the operation as a configuration (`hotpatch apply` replays it).
    #[arg(long, value_name = "CONFIG")]
    pub record: Option<PathBuf>,
}

/// Plans `ops` on `model`, previews, records, writes.
pub fn run(model: &Path, ops: Vec<SurgeryOp>, c: &Common) -> anyhow::Result<ExitCode> {
    let here = std::env::current_dir().context("current directory")?;
    let plan = surgery::plan(model, &ops, &here)?;
    let preview = plan.preview();
    let mut out = std::io::stdout().lock();
    if c.json {
        serde_json::to_writer_pretty(&mut out, &preview)?;
        writeln!(out)?;
    } else {
        print_preview(&mut out, &preview, c.dry_run)?;
    }
    out.flush()?;
    drop(out);
    if let Some(path) = &c.record {
        let config = surgery::record(&plan, &ops);
        hotpatch_core::config::file::write(path, &config)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if c.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let Some(dest) = &c.out else {
        bail!("give --out FILE or --dry-run");
    };
    write(&plan, dest)
}

/// Writes a plan with a progress line.
pub fn write(plan: &surgery::Plan, dest: &Path) -> anyhow::Result<ExitCode> {
    let mut progress = Progress::new("write");
    let started = std::time::Instant::now();
    let r = surgery::execute(plan, dest, &mut |p| {
        progress.update(p.done, p.total);
        true
    });
    match r {
        Ok(s) => {
            progress.finish(&format!(
                "{} ({} tensors, {:.1} MB) in {:.1} s",
                dest.display(),
                plan.tensors.len(),
                s.file_size as f64 / 1e6,
                started.elapsed().as_secs_f64()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(surgery::SurgeryError::Canceled) => {
            eprintln!("hotpatch: canceled; {} was not written", safe_path(dest));
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

/// The preview for people: operations, notes, changed tensors, metadata changes, totals.
pub fn print_preview(out: &mut impl Write, p: &SurgeryPreview, all: bool) -> std::io::Result<()> {
    for op in &p.ops {
        writeln!(out, "op        {}", safe(&op.to_string()))?;
    }
    for n in &p.notes {
        writeln!(out, "note      {}", safe(&n.to_string()))?;
    }
    let changed: Vec<_> = p.tensors.iter().filter(|t| t.changed).collect();
    const MAX: usize = 40;
    for t in changed.iter().take(if all { usize::MAX } else { MAX }) {
        let ty = if t.ty.is_empty() {
            t.source_ty.clone()
        } else if t.ty == t.source_ty {
            t.ty.clone()
        } else {
            format!("{}→{}", t.source_ty, t.ty)
        };
        writeln!(
            out,
            "tensor    {:<36} {:<12} {}",
            safe(&t.name),
            safe(&ty),
            safe(&t.action.to_string())
        )?;
    }
    if !all && changed.len() > MAX {
        writeln!(
            out,
            "tensor    … {} more (--dry-run lists all)",
            changed.len() - MAX
        )?;
    }
    for m in &p.metadata {
        writeln!(
            out,
            "metadata  {:<36} {} → {}",
            safe(&m.key),
            safe(m.before.as_deref().unwrap_or("absent")),
            safe(m.after.as_deref().unwrap_or("absent"))
        )?;
    }
    writeln!(
        out,
        "total     {} tensors, {} changed; data {:.1} MB (was {:.1} MB)",
        p.tensor_count,
        p.changed,
        p.data_bytes as f64 / 1e6,
        p.input_bytes as f64 / 1e6
    )
}
