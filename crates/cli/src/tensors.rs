//! `hotpatch tensors MODEL [--remove GLOB]... [--rename FROM=TO]... [--add NAME=SOURCE]...
//! --out FILE`: remove, rename and add tensors, in that order. FROM may be a glob whose `*`s go
//! into TO's (`--rename 'blk.*.attn_qkv.weight=blk.*.attn_fused.weight'`). SOURCE is
//! `FILE.gguf:TENSOR`, `FILE.npy` or `FILE.safetensors:TENSOR`, optionally `@TYPE` at the end
//! (default: the source's own type); a tensor of that name is replaced.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use hotpatch_core::surgery::{SurgeryOp, TensorSource};

use crate::surgery::Common;

/// Arguments of `hotpatch tensors`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model (a split model's first shard).
    model: PathBuf,
    /// Remove the tensors matching GLOB.
    #[arg(long, value_name = "GLOB")]
    remove: Vec<String>,
    /// Rename FROM (a name or glob) to TO.
    #[arg(long, value_name = "FROM=TO")]
    rename: Vec<String>,
    /// Add NAME from SOURCE (FILE.gguf:TENSOR, FILE.npy, FILE.safetensors:TENSOR; `@TYPE`).
    #[arg(long, value_name = "NAME=SOURCE")]
    add: Vec<String>,
    #[command(flatten)]
    common: Common,
}

fn parse_add(s: &str) -> anyhow::Result<SurgeryOp> {
    let Some((name, source)) = s.split_once('=') else {
        bail!("--add '{s}' is not NAME=SOURCE");
    };
    let (source, ty) = match source.rsplit_once('@') {
        Some((src, t)) if hotpatch_quant::GgmlType::from_name(t).is_some() => {
            (src, Some(t.to_uppercase()))
        }
        _ => (source, None),
    };
    let split = |ext: &str| -> Option<(String, String)> {
        let at = source.find(ext)?;
        let (file, rest) = source.split_at(at + ext.len());
        Some((file.to_string(), rest.strip_prefix(':')?.to_string()))
    };
    let src = if source.ends_with(".npy") {
        TensorSource::Npy {
            path: source.to_string(),
        }
    } else if let Some((path, tensor)) = split(".safetensors") {
        TensorSource::Safetensors { path, tensor }
    } else if let Some((path, tensor)) = split(".gguf") {
        TensorSource::Gguf { path, tensor }
    } else {
        bail!("--add '{s}': SOURCE is FILE.gguf:TENSOR, FILE.npy or FILE.safetensors:TENSOR");
    };
    Ok(SurgeryOp::Add {
        name: name.to_string(),
        source: src,
        ty,
    })
}

/// Runs `hotpatch tensors`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut ops = Vec::new();
    for g in &a.remove {
        ops.push(SurgeryOp::Remove { tensor: g.clone() });
    }
    for r in &a.rename {
        let Some((from, to)) = r.split_once('=') else {
            bail!("--rename '{r}' is not FROM=TO");
        };
        ops.push(SurgeryOp::Rename {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    for s in &a.add {
        ops.push(parse_add(s)?);
    }
    if ops.is_empty() {
        bail!("give --remove, --rename or --add");
    }
    crate::surgery::run(&a.model, ops, &a.common)
}
