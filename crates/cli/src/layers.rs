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
use hotpatch_core::surgery::{parse_layer_list, LayerSlice, SurgeryOp};

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

fn list(s: &[u32]) -> String {
    s.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Runs `hotpatch layers`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let n = {
        let m = crate::output::open_model(&a.model)?;
        m.index()
            .block_count()
            .with_context(|| format!("{}: no <arch>.block_count", a.model.display()))?
    };
    let this = |layers: String| LayerSlice {
        model: None,
        layers,
    };
    let check = |s: &str| -> anyhow::Result<Vec<u32>> {
        let l = parse_layer_list(s).map_err(anyhow::Error::msg)?;
        if let Some(bad) = l.iter().find(|&&x| x >= n) {
            bail!(
                "layer {bad} does not exist: {} has {n} layers",
                a.model.display()
            );
        }
        Ok(l)
    };
    let slices = if let Some(d) = &a.drop {
        let drop = check(d)?;
        let kept: Vec<u32> = (0..n).filter(|l| !drop.contains(l)).collect();
        if kept.is_empty() {
            bail!("--drop {d} would drop every layer");
        }
        vec![this(list(&kept))]
    } else if let Some(k) = &a.keep {
        check(k)?;
        vec![this(k.clone())]
    } else if let Some(r) = &a.repeat {
        let mut order = Vec::new();
        let items: Vec<Vec<u32>> = r.split(',').map(check).collect::<anyhow::Result<_>>()?;
        let mut done = 0u32;
        let mut items = items;
        items.sort_by_key(|i| i[0]);
        for item in &items {
            let last = *item.last().unwrap_or(&0);
            if item[0] < done {
                bail!("--repeat {r}: the items overlap");
            }
            order.extend(done..=last);
            order.extend(item.iter().copied());
            done = last + 1;
        }
        order.extend(done..n);
        vec![this(list(&order))]
    } else if let Some(ins) = &a.insert {
        let at = a.at.unwrap_or(n);
        if at > n {
            bail!("--at {at}: the model has {n} layers");
        }
        let mut s = Vec::new();
        if at > 0 {
            s.push(this(format!("0-{}", at - 1)));
        }
        if a.from.is_none() {
            check(ins)?;
        }
        s.push(LayerSlice {
            model: a.from.as_ref().map(|p| p.display().to_string()),
            layers: ins.clone(),
        });
        if at < n {
            s.push(this(format!("{at}-{}", n - 1)));
        }
        s
    } else {
        bail!("give --drop, --keep, --repeat or --insert");
    };
    crate::surgery::run(&a.model, vec![SurgeryOp::Layers { slices }], &a.common)
}
