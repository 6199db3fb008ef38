//! `hotpatch layers MODEL (--drop LIST | --keep LIST | --repeat LIST | --insert LIST [--from
//! OTHER] [--at N]) --out FILE`: a new model with layers dropped, kept, repeated or inserted
//! (from this model or another of the same architecture), renumbered from 0, with
//! `<arch>.block_count` and every per-layer metadata array following. LIST is like `3,5-7`.
//!
//! - `--drop LIST`: every layer but those, in order.
//! - `--keep LIST`: exactly those, in the order written (`--keep 0-7,4-11` repeats 4-7).
//! - `--repeat LIST`: each item (a layer or a range) appears twice, the copy right after it
//!   (`--repeat 2-3` on 6 layers gives 0 1 2 3 2 3 4 5).
//! - `--insert LIST [--from OTHER] [--at N]`: those layers (of OTHER, or of this model)
//!   inserted before layer N (default: after the last).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use hotpatch_core::surgery::{LayerEdit, SurgeryOp};

use crate::surgery::Common;

/// Arguments of `hotpatch layers`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["drop", "keep", "repeat", "insert"])))]
pub struct Args {
    /// The model (a split model's first shard).
    model: PathBuf,
    /// Drop these layers.
    #[arg(long, value_name = "LIST")]
    drop: Option<String>,
    /// Keep only these layers, in this order.
    #[arg(long, value_name = "LIST")]
    keep: Option<String>,
    /// Repeat these layers (each item right after itself).
    #[arg(long, value_name = "LIST")]
    repeat: Option<String>,
    /// Insert these layers (of --from, or of this model).
    #[arg(long, value_name = "LIST")]
    insert: Option<String>,
    /// The model --insert takes layers from (same architecture and widths).
    #[arg(long, value_name = "OTHER", requires = "insert")]
    from: Option<PathBuf>,
    /// Insert before this layer (default: after the last).
    #[arg(long, value_name = "N", requires = "insert")]
    at: Option<u32>,
    #[command(flatten)]
    common: Common,
}

/// Runs the subcommand.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let n = {
        let m = crate::output::open_model(&a.model)?;
        m.index()
            .block_count()
            .with_context(|| format!("{}: no <arch>.block_count", a.model.display()))?
    };
    let edit = if let Some(d) = &a.drop {
        LayerEdit::Drop(d.clone())
    } else if let Some(k) = &a.keep {
        LayerEdit::Keep(k.clone())
    } else if let Some(r) = &a.repeat {
        LayerEdit::Repeat(r.clone())
    } else if let Some(ins) = &a.insert {
        LayerEdit::Insert {
            list: ins.clone(),
            from: a.from.as_ref().map(|p| p.display().to_string()),
            at: a.at,
        }
    } else {
        bail!("give --drop, --keep, --repeat or --insert");
    };
    let slices = edit
        .slices(n)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.model.display()))?;
    crate::surgery::run(&a.model, vec![SurgeryOp::Layers { slices }], &a.common)
}
