//! `hotpatch ablate MODEL --direction FILE [--direction-layer N] [--layers LIST]
//! [--no-embeddings] [--scale S] --out FILE`: abliteration on quantized files. W ← (I − S·r rᵀ) W
//! for the tensors that write into the residual stream (token embeddings, attention output,
//! FFN down, their biases), r of unit length from a llama.cpp control-vector GGUF (tensors
//! `direction.N`, as llama-cvector-generator writes them; pick N with --direction-layer when it
//! holds several) or a `.npy` (one vector, or one row per layer).

use std::path::PathBuf;
use std::process::ExitCode;

use hotpatch_core::surgery::{DirectionSource, SurgeryOp};

use crate::surgery::Common;

/// Arguments of `hotpatch ablate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model (a split model's first shard).
    model: PathBuf,
    /// The direction: a control-vector GGUF or a `.npy`.
    #[arg(long, value_name = "FILE")]
    direction: PathBuf,
    /// Which direction of the file (`direction.N`, or the row of a 2-D `.npy`).
    #[arg(long, value_name = "N")]
    direction_layer: Option<u32>,
    /// Only these layers' attention output and FFN down (LIST like `3,5-7`).
    #[arg(long, value_name = "LIST")]
    layers: Option<String>,
    /// Leave the token embeddings as they are.
    #[arg(long)]
    no_embeddings: bool,
    /// How much of the direction to remove (1: all of it).
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
    #[command(flatten)]
    common: Common,
}

/// Runs `hotpatch ablate`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let op = SurgeryOp::Ablate {
        direction: DirectionSource {
            path: a.direction.display().to_string(),
            layer: a.direction_layer,
        },
        layers: a.layers,
        embeddings: !a.no_embeddings,
        scale: a.scale,
    };
    crate::surgery::run(&a.model, vec![op], &a.common)
}
