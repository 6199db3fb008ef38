//! `hotpatch edit` and `hotpatch apply`: change a model's weights, headless.
//!
//! - `edit MODEL --set 'NAME[INDEX]=VALUE' ... [--record CONFIG] (--out FILE | --in-place)`:
//!   sets elements (INDEX is the flat element index in ggml order), quant-aware: the block's
//!   scales are kept when the value is on the element's grid, else the block is re-quantized
//!   and the side effect on its other elements is reported. `--record` writes the changes as a
//!   configuration that applies to any quantization of the same model.
//! - `apply CONFIG MODEL (--out FILE | --in-place) [--dry-run] [--json] [--allow-other-model]`:
//!   previews the configuration against the model, refuses (exit 1) when something does not
//!   match (a configuration recorded on another model does not, unless `--allow-other-model`
//!   says to apply it anyway; a patch under a protection of the same file neither), else
//!   applies it as one undo group and saves. Metadata edits in the configuration rewrite the
//!   file through the GGUF writer (a new header, tensor data copied), atomically, as the
//!   studio's Save does; without them only the changed ranges are written. A configuration
//!   with a `surgery` section (version 3) needs `--out`: the operations write the new file,
//!   then the other sections apply to it.
//!
//! Exit codes: 0 done; 1 refused (mismatch, protected, not representable); 2 bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use hotpatch_core::config::{ApplyOptions, Configuration, ItemStatus, Preview};
use hotpatch_core::manager::{Manager, ManagerError};

use crate::output::{safe, safe_path};
use crate::progress::Progress;

/// Where the result goes.
#[derive(Debug, clap::Args)]
#[group(required = false, multiple = false)]
pub struct Output {
    /// Write the edited model to FILE (atomically); the input is left as it was.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write the changed ranges back into MODEL (crash-safe journal).
    #[arg(long)]
    in_place: bool,
}

/// Arguments of `hotpatch edit`.
#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// The model.
    model: PathBuf,
    /// `NAME[INDEX]=VALUE`, e.g. `blk.0.attn_q.weight[1234]=0.5` (repeatable).
    #[arg(long = "set", value_name = "NAME[INDEX]=VALUE", required = true, value_parser = parse_set)]
    sets: Vec<(String, u64, f32)>,
    /// Also write the changes as a configuration file.
    #[arg(long, value_name = "CONFIG")]
    record: Option<PathBuf>,
    #[command(flatten)]
    output: Output,
    /// Print the edits as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `hotpatch apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The configuration (JSON).
    config: PathBuf,
    /// The model.
    model: PathBuf,
    #[command(flatten)]
    output: Output,
    /// Only show what would change.
    #[arg(long)]
    dry_run: bool,
    /// Apply a configuration recorded on another model (its tensor names and shapes differ
    /// from this model's); without it such a configuration is refused.
    #[arg(long)]
    allow_other_model: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_set(s: &str) -> Result<(String, u64, f32), String> {
    let (lhs, value) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("'{s}' is not NAME[INDEX]=VALUE"))?;
    let lhs = lhs.trim();
    let open = lhs
        .rfind('[')
        .filter(|_| lhs.ends_with(']'))
        .ok_or_else(|| format!("'{lhs}' is not NAME[INDEX]"))?;
    let name = &lhs[..open];
    if name.is_empty() {
        return Err(format!("'{s}': the tensor name is empty"));
    }
    let index = lhs[open + 1..lhs.len() - 1]
        .trim()
        .parse::<u64>()
        .map_err(|_| {
            format!(
                "'{s}': index '{}' is not a non-negative integer",
                &lhs[open + 1..lhs.len() - 1]
            )
        })?;
    let value = value
        .trim()
        .parse::<f32>()
        .map_err(|_| format!("'{s}': value '{}' is not a number", value.trim()))?;
    Ok((name.to_string(), index, value))
}

/// Whether an error means "refused" (exit 1) rather than bad input (exit 2).
fn refused(e: &ManagerError) -> bool {
    match e {
        ManagerError::Tensor(t) => matches!(
            t.code(),
            "protected" | "not_representable" | "mismatch" | "read_only_region" | "breaks_gguf"
        ),
        ManagerError::Apply(_) => true,
        ManagerError::Engine(e) => {
            matches!(e.code(), "protected" | "read_only_region" | "breaks_gguf")
        }
        _ => false,
    }
}

/// Saves every file of the model (each shard of a split model; `--out NAME` then names the
/// shards `NAME-0000k-of-0000n.gguf`).
fn save(m: &Manager, output: &Output) -> anyhow::Result<()> {
    let mut progress = Progress::new("save");
    let mut cb = |p: hotpatch_core::Progress| {
        progress.update(p.done, p.total);
        true
    };
    let written = if let Some(out) = &output.out {
        let r = m
            .save_as(out, &mut cb)
            .with_context(|| format!("save as {}", out.display()))?;
        progress.finish(&format!("wrote {}", r.path.display()));
        r.path
    } else if output.in_place {
        let r = m.save(&mut cb).context("save in place")?;
        progress.finish(&if r.rewritten {
            format!("rewrote {} ({} bytes)", r.path.display(), r.bytes_written)
        } else {
            format!("{} bytes written back", r.bytes_written)
        });
        r.path
    } else {
        bail!("give --out FILE or --in-place");
    };
    warn_llama_cpp(&written);
    Ok(())
}

/// After a save: says on stderr when llama.cpp will refuse (or mishandle) the file written.
fn warn_llama_cpp(path: &std::path::Path) {
    if let Ok(issues) = hotpatch_gguf::llama::check_path(path) {
        if let Some(summary) = hotpatch_gguf::llama::summary(&issues) {
            eprintln!("hotpatch: warning: {}: {}", safe_path(path), safe(&summary));
        }
    }
}

impl Output {
    fn given(&self) -> bool {
        self.out.is_some() || self.in_place
    }
}

/// Runs `hotpatch edit`.
pub fn run_edit(a: EditArgs) -> anyhow::Result<ExitCode> {
    if !a.output.given() {
        bail!("give --out FILE or --in-place");
    }
    let m = crate::output::attach_session(&a.model)?;
    let mut edits = Vec::new();
    for (name, index, value) in &a.sets {
        match m.modify_weight(name, *index, *value) {
            Ok(e) => edits.push(e),
            Err(e) if refused(&e) => {
                eprintln!(
                    "hotpatch: {}[{index}]={value} refused: {}",
                    safe(name),
                    safe(&e.to_string())
                );
                return Ok(ExitCode::from(1));
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("{name}[{index}]"))),
        }
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &edits)?;
        writeln!(out)?;
    } else {
        for e in &edits {
            write!(
                out,
                "{}[{}] ({}): {} -> {} (asked {})",
                safe(&e.tensor),
                e.index,
                e.ty,
                e.previous,
                e.stored,
                e.requested
            )?;
            if e.block_requantized {
                write!(
                    out,
                    "; block re-quantized, {} other element(s) moved",
                    e.side_effects.len()
                )?;
            }
            writeln!(out)?;
        }
    }
    out.flush()?;
    if let Some(path) = &a.record {
        let c = m.export_configuration()?;
        hotpatch_core::config::file::write(path, &c)
            .with_context(|| format!("write {}", path.display()))?;
    }
    save(&m, &a.output)?;
    Ok(ExitCode::SUCCESS)
}

fn print_preview(out: &mut impl Write, p: &Preview) -> std::io::Result<()> {
    let yes_no = |b: Option<bool>| b.map_or("not recorded", |b| if b { "yes" } else { "no" });
    writeln!(
        out,
        "recorded on this file: {}; on this model: {}",
        yes_no(p.same_file),
        yes_no(p.same_model)
    )?;
    for i in &p.items {
        let s = match i.status {
            ItemStatus::WillChange => "change",
            ItemStatus::AlreadyApplied => "already",
            ItemStatus::Mismatch => "MISMATCH",
            ItemStatus::Info => "info",
        };
        writeln!(
            out,
            "{s:<9} {:<20} {:<32} {}",
            safe(&i.item),
            safe(&i.target),
            safe(&i.detail)
        )?;
    }
    Ok(())
}

/// Runs `hotpatch apply`.
pub fn run_apply(a: ApplyArgs) -> anyhow::Result<ExitCode> {
    if !a.dry_run && !a.output.given() {
        bail!("give --out FILE, --in-place or --dry-run");
    }
    let text = hotpatch_core::config::file::read_text(&a.config)?;
    let config = Configuration::from_json(&text).with_context(|| a.config.display().to_string())?;
    if !config.surgery.is_empty() {
        return run_surgery_config(&a, config);
    }
    let m = crate::output::attach_session(&a.model)?;
    let opts = ApplyOptions {
        allow_other_model: a.allow_other_model,
    };
    let preview = m.preview_configuration_with(&config, opts)?;
    let mut out = std::io::stdout().lock();
    if a.dry_run || !preview.applicable() {
        if a.json {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({ "preview": preview, "applied": false }),
            )?;
            writeln!(out)?;
        } else {
            print_preview(&mut out, &preview)?;
        }
        if !preview.applicable() {
            let first = preview
                .mismatches()
                .next()
                .map(|i| format!("{} ({}): {}", i.item, i.target, i.detail));
            let hint = if preview.mismatches().any(|i| i.item == "model") {
                " (--allow-other-model applies it anyway)"
            } else {
                ""
            };
            eprintln!(
                "hotpatch: configuration does not fit {}: {}{hint}",
                safe_path(&a.model),
                safe(&first.unwrap_or_default())
            );
            return Ok(ExitCode::from(1));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let source = format!("config {}", a.config.display());
    let report = match m.apply_configuration_with(&config, &source, opts) {
        Ok(r) => r,
        Err(e) if refused(&e) => {
            eprintln!("hotpatch: {}", safe(&e.to_string()));
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    if a.json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "preview": report.preview, "applied": true, "report": report }),
        )?;
        writeln!(out)?;
    } else {
        print_preview(&mut out, &report.preview)?;
        let bytes: u64 = report.transforms.iter().map(|t| t.bytes_changed).sum();
        writeln!(
            out,
            "applied: {} tensor transform(s) ({} bytes changed), {} byte patch(es), {} metadata edit(s), {} protection(s)",
            report.transforms.len(),
            bytes,
            report.byte_patches_applied,
            report.metadata.len(),
            report.protections.len()
        )?;
    }
    out.flush()?;
    save(&m, &a.output)?;
    Ok(ExitCode::SUCCESS)
}

/// `hotpatch apply` of a configuration with a `surgery` section: the operations write a new
/// file (`--out`), then the configuration's other sections are applied to that file in place.
/// Paths in the operations are relative to the configuration's folder.
fn run_surgery_config(a: &ApplyArgs, mut config: Configuration) -> anyhow::Result<ExitCode> {
    if a.output.in_place {
        bail!(
            "{}: surgery writes a new file: give --out FILE, not --in-place",
            a.config.display()
        );
    }
    let base_dir = a
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let plan = hotpatch_core::surgery::plan(&a.model, &config.surgery, base_dir)?;
    if let Some(want) = &config.model {
        let here = hotpatch_core::surgery::identity(&plan.inputs().get(0).model, None);
        if here.shape_fingerprint != want.shape_fingerprint {
            eprintln!(
                "hotpatch: configuration was recorded on another model ({}), not {}",
                safe(want.file_name.as_deref().unwrap_or("unnamed")),
                safe_path(&a.model)
            );
            return Ok(ExitCode::from(1));
        }
    }
    let preview = plan.preview();
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "surgery": preview, "applied": !a.dry_run }),
        )?;
        writeln!(out)?;
    } else {
        crate::surgery::print_preview(&mut out, &preview, a.dry_run)?;
    }
    drop(out);
    if a.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let Some(dest) = &a.output.out else {
        bail!("give --out FILE or --dry-run");
    };
    let code = crate::surgery::write(&plan, dest)?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    drop(plan);
    config.surgery.clear();
    config.model = None;
    let rest = config.tensor_patches.len()
        + config.byte_patches.len()
        + config.metadata.len()
        + config.protections.len();
    if rest == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let m = crate::output::attach_session(dest)?;
    let source = format!("config {}", a.config.display());
    match m.apply_configuration(&config, &source) {
        Ok(_) => {}
        Err(e) if refused(&e) => {
            eprintln!(
                "hotpatch: {} (the surgery's result {} is kept)",
                safe(&e.to_string()),
                safe_path(dest)
            );
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    }
    save(
        &m,
        &Output {
            out: None,
            in_place: true,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
