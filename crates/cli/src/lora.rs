//! `hotpatch lora MODEL ADAPTER [--scale S] --out FILE`: apply a GGUF LoRA adapter
//! (llama.cpp's `convert_lora_to_gguf` layout: `NAME.lora_a`, `NAME.lora_b`,
//! `adapter.lora.alpha`) into the weights, W + S·alpha/rank·B·A, each tensor keeping its type
//! (quantized ones re-encoded with the byte-exact quantizers). MODEL may be split.

use std::path::PathBuf;
use std::process::ExitCode;

use hotpatch_core::surgery::SurgeryOp;

use crate::surgery::Common;

/// Arguments of `hotpatch lora`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The base model (a split model's first shard).
    model: PathBuf,
    /// The adapter GGUF.
    adapter: PathBuf,
    /// The user scale (llama.cpp's --lora-scaled).
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
    #[command(flatten)]
    common: Common,
}

/// Runs `hotpatch lora`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let op = SurgeryOp::Lora {
        adapter: a.adapter.display().to_string(),
        scale: a.scale,
    };
    crate::surgery::run(&a.model, vec![op], &a.common)
}
