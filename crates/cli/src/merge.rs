//! `hotpatch merge BASE OTHER... --method (linear|slerp|task|ties|dare|dare_ties) [--t T]
//! [--weight W]... [--density D]... --out FILE`: merge models of the same architecture and
//! shapes, each in any quantization; every output tensor keeps the base's type unless
//! `--type GLOB=TYPE` says otherwise.
//!
//! T, W and D are mergekit parameters: a number (`0.5`), a gradient over the layers
//! (`0,0.5,1`), or mergekit's filtered list as JSON
//! (`'[{"filter":"self_attn","value":[0,1]},{"value":0.5}]'`). `--weight` and `--density` are
//! given once per OTHER, in order (or once for all).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use hotpatch_core::surgery::{MergeMethod, MergeModel, MergeOp, Param, SurgeryOp, TypeRule};

use crate::surgery::Common;

/// Arguments of `hotpatch merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The base model (its metadata, tokenizer and tensor types are kept).
    base: PathBuf,
    /// The other models.
    #[arg(required = true)]
    others: Vec<PathBuf>,
    /// linear, slerp, task (task_arithmetic), ties, dare (dare_linear) or dare_ties.
    #[arg(long, value_parser = parse_method)]
    method: MergeMethod,
    /// Interpolation factor (linear of two models, slerp): 0 is the base, 1 the other.
    #[arg(long, value_name = "T", value_parser = parse_param)]
    t: Option<Param>,
    /// Weight of each other model (repeat once per OTHER, or give once for all).
    #[arg(long = "weight", alias = "weights", value_name = "W", value_parser = parse_param)]
    weights: Vec<Param>,
    /// Density of each other model's task vector (ties, dare).
    #[arg(long = "density", value_name = "D", value_parser = parse_param)]
    densities: Vec<Param>,
    /// The base's weight in a linear merge of several models (default 1).
    #[arg(long, value_name = "W", value_parser = parse_param)]
    base_weight: Option<Param>,
    /// Divide by the sum of weights (default: true for linear and ties).
    #[arg(long)]
    normalize: Option<bool>,
    /// Task-vector scale (task, ties, dare).
    #[arg(long)]
    lambda: Option<f32>,
    /// Seed of DARE's random drops.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output type rules `GLOB=TYPE` (default: the base's types).
    #[arg(long = "type", value_name = "GLOB=TYPE", value_parser = crate::convert::parse_rule)]
    types: Vec<TypeRule>,
    #[command(flatten)]
    common: Common,
}

fn parse_method(s: &str) -> Result<MergeMethod, String> {
    MergeMethod::parse(s).ok_or_else(|| {
        format!("'{s}' is not a merge method (linear, slerp, task, ties, dare, dare_ties)")
    })
}

/// A number, a comma-separated gradient, or mergekit's filtered list as JSON.
pub fn parse_param(s: &str) -> Result<Param, String> {
    let t = s.trim();
    let p = if t.starts_with('[') || t.starts_with('{') {
        serde_json::from_str::<Param>(t).map_err(|e| format!("'{s}': {e}"))?
    } else {
        let v: Vec<f64> = t
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("'{x}' in '{s}' is not a number"))
            })
            .collect::<Result<_, _>>()?;
        if v.len() == 1 {
            Param::Scalar(v[0])
        } else {
            Param::Gradient(v)
        }
    };
    p.validate().map_err(|e| format!("'{s}': {e}"))?;
    Ok(p)
}

fn per_model(what: &str, v: &[Param], n: usize) -> anyhow::Result<Vec<Option<Param>>> {
    match v.len() {
        0 => Ok(vec![None; n]),
        1 => Ok(vec![Some(v[0].clone()); n]),
        k if k == n => Ok(v.iter().cloned().map(Some).collect()),
        k => bail!("{k} --{what} for {n} other model(s): give one per model, or one for all"),
    }
}

/// Runs `hotpatch merge`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let n = a.others.len();
    let weights = per_model("weight", &a.weights, n)?;
    let densities = per_model("density", &a.densities, n)?;
    let models = a
        .others
        .iter()
        .zip(weights)
        .zip(densities)
        .map(|((p, weight), density)| MergeModel {
            path: p.display().to_string(),
            weight,
            density,
        })
        .collect();
    let op = MergeOp {
        method: a.method,
        models,
        t: a.t,
        base_weight: a.base_weight,
        normalize: a.normalize,
        lambda: a.lambda,
        seed: a.seed,
        types: a.types,
    };
    crate::surgery::run(&a.base, vec![SurgeryOp::Merge(op)], &a.common)
}
