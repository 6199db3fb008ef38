//! `hotpatch convert MODEL --type GLOB=TYPE ... --out FILE`: re-encode tensors into other
//! types with the byte-exact quantizers (first matching rule wins; a glob leaves 1-D tensors
//! and tensors whose rows do not fit the type's blocks as they are, as llama-quantize does).

use std::path::PathBuf;
use std::process::ExitCode;

use hotpatch_core::surgery::{SurgeryOp, TypeRule};

use crate::surgery::Common;

/// Arguments of `hotpatch convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model (a split model's first shard).
    model: PathBuf,
    /// `GLOB=TYPE`, e.g. `'blk.*.ffn_*=Q4_K'` or `token_embd.weight=Q8_0` (repeatable; the
    /// first rule a tensor matches applies).
    #[arg(long = "type", value_name = "GLOB=TYPE", required = true, value_parser = parse_rule)]
    types: Vec<TypeRule>,
    #[command(flatten)]
    common: Common,
}

/// Parses `GLOB=TYPE`.
pub fn parse_rule(s: &str) -> Result<TypeRule, String> {
    let (glob, ty) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("'{s}' is not GLOB=TYPE"))?;
    if glob.is_empty() {
        return Err(format!("'{s}': the tensor glob is empty"));
    }
    let t = hotpatch_quant::GgmlType::from_name(ty.trim())
        .ok_or_else(|| format!("'{s}': '{ty}' is not a ggml type name"))?;
    Ok(TypeRule {
        tensor: glob.to_string(),
        ty: t.name().to_string(),
    })
}

/// Runs `hotpatch convert`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    crate::surgery::run(
        &a.model,
        vec![SurgeryOp::Convert { types: a.types }],
        &a.common,
    )
}
