//! Activations: the residual stream at a block, read through llama.cpp's graph callback
//! (`cb_eval`, how llama.cpp's own imatrix and cvector tools read them), and the direction
//! between two prompt sets (for directional ablation, "abliteration").

use crate::error::{InferError, Result};
use crate::instance::Instance;

/// How a prompt's positions are pooled into one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Pool {
    /// The mean over every token of the prompt.
    #[default]
    Mean,
    /// The last token only (where the model decides what to say next).
    LastToken,
}

/// The mean residual-stream vector after block `layer` over `prompts` (each tokenized as a
/// prompt, pooled by `pool`, then averaged over prompts). Its length is the model's width.
pub fn mean_residual(
    inst: &mut Instance,
    prompts: &[String],
    layer: u32,
    pool: Pool,
) -> Result<Vec<f32>> {
    let n_layer = inst.model().n_layer();
    if layer >= n_layer {
        return Err(InferError::Invalid {
            what: "layer",
            message: format!(
                "block {layer} does not exist: the model has {n_layer} (0..{})",
                n_layer.saturating_sub(1)
            ),
        });
    }
    if prompts.is_empty() {
        return Err(InferError::Invalid {
            what: "prompts",
            message: "no prompt given".into(),
        });
    }
    let name = format!("l_out-{layer}");
    let width = inst.model().n_embd();
    let mut sum = vec![0f64; width];
    for (i, p) in prompts.iter().enumerate() {
        let tokens = inst.tokenize_prompt(p)?;
        if tokens.is_empty() {
            return Err(InferError::Invalid {
                what: "prompts",
                message: format!("prompt {} has no tokens", i + 1),
            });
        }
        let got = inst.capture(&tokens, std::slice::from_ref(&name))?;
        let rows: Vec<&[f32]> = got
            .iter()
            .filter(|(n, _)| *n == name)
            .flat_map(|(_, c)| c.data.chunks_exact(c.ne0))
            .collect();
        if rows.is_empty() || rows[0].len() != width {
            return Err(InferError::Llama {
                what: "read activations",
                message: format!(
                    "the graph has no tensor {name} of width {width} (architecture not supported?)"
                ),
            });
        }
        let pooled: Vec<f64> = match pool {
            Pool::LastToken => rows[rows.len() - 1].iter().map(|&x| x as f64).collect(),
            Pool::Mean => {
                let mut v = vec![0f64; width];
                for r in &rows {
                    for (a, &x) in v.iter_mut().zip(r.iter()) {
                        *a += x as f64;
                    }
                }
                v.iter().map(|a| a / rows.len() as f64).collect()
            }
        };
        for (a, x) in sum.iter_mut().zip(pooled) {
            *a += x;
        }
    }
    Ok(sum
        .iter()
        .map(|a| (a / prompts.len() as f64) as f32)
        .collect())
}

/// A direction in the residual stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Direction {
    /// Block it was measured after.
    pub layer: u32,
    /// Unit vector: mean(positive) − mean(negative), normalized.
    pub vector: Vec<f32>,
    /// Length of the difference before normalizing.
    pub norm: f32,
}

/// The direction from the `negative` prompts' mean residual to the `positive` prompts' after
/// block `layer` (e.g. harmful vs harmless prompts for a refusal direction).
pub fn direction(
    inst: &mut Instance,
    positive: &[String],
    negative: &[String],
    layer: u32,
    pool: Pool,
) -> Result<Direction> {
    let a = mean_residual(inst, positive, layer, pool)?;
    let b = mean_residual(inst, negative, layer, pool)?;
    let diff: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| *x as f64 - *y as f64)
        .collect();
    let norm = diff.iter().map(|d| d * d).sum::<f64>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return Err(InferError::Invalid {
            what: "prompts",
            message: "the two prompt sets give the same mean activation: no direction".into(),
        });
    }
    Ok(Direction {
        layer,
        vector: diff.iter().map(|d| (d / norm) as f32).collect(),
        norm: norm as f32,
    })
}
