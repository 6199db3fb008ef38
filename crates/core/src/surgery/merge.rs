//! Merging models of the same architecture and shapes, each in any quantization.

use hotpatch_gguf::{GgmlType, TensorType};

use super::eval::{dare_stream, Expr, MergeExpr, Source};
use super::ops::{MergeMethod, MergeOp, Param};
use super::{check_encodable, file_label, layer_of, Plan, SurgeryError};
use crate::tensor::glob_match;

/// mergekit's position of a tensor along the layers: `layer / (n − 1)` for layer tensors (1
/// for a single layer), 0 for the token embeddings (before the layers), 1 for everything else
/// (output norm and head, after them).
pub fn position(name: &str, n_layers: u64) -> f64 {
    match layer_of(name) {
        Some((l, _)) if n_layers > 1 => l as f64 / (n_layers - 1) as f64,
        Some(_) => 1.0,
        None if name.starts_with("token_embd") => 0.0,
        None => 1.0,
    }
}

fn eval(p: &Option<Param>, name: &str, t: f64, default: f64) -> f64 {
    p.as_ref().and_then(|p| p.eval(name, t)).unwrap_or(default)
}

/// Replaces every numeric tensor by the merge of it with the same tensor of each other model.
pub(crate) fn merge(p: &mut Plan, op: &MergeOp) -> Result<(), SurgeryError> {
    let arch = p.architecture().unwrap_or_default();
    let mut ids = Vec::with_capacity(op.models.len());
    for (i, m) in op.models.iter().enumerate() {
        let id = p.inputs.model(&m.path)?;
        let other = &p.inputs.models[id];
        let oarch = other.model.index().architecture().unwrap_or("");
        if oarch != arch {
            return Err(SurgeryError::invalid(
                format!("models[{i}] ({})", other.path.display()),
                format!("architecture '{oarch}' is not the model's '{arch}'"),
            ));
        }
        ids.push(id);
    }
    let n_layers = p.block_count().unwrap_or(1);
    let normalize = op
        .normalize
        .unwrap_or(matches!(op.method, MergeMethod::Linear | MergeMethod::Ties));
    let lambda = op.lambda.unwrap_or(1.0);
    let rules: Vec<(&str, GgmlType)> = op
        .types
        .iter()
        .map(|r| {
            GgmlType::from_name(&r.ty)
                .map(|t| (r.tensor.as_str(), t))
                .ok_or_else(|| SurgeryError::invalid(&r.ty, "is not a ggml type name"))
        })
        .collect::<Result<_, _>>()?;
    let labels: Vec<String> = ids
        .iter()
        .map(|&id| file_label(&p.inputs.models[id].path))
        .collect();
    let mut kept = 0usize;
    let mut merged = 0usize;
    for i in 0..p.tensors.len() {
        let name = p.tensors[i].name.clone();
        if !p.tensors[i].is_numeric() {
            kept += 1;
            continue;
        }
        let mut others = Vec::with_capacity(ids.len());
        for (k, &id) in ids.iter().enumerate() {
            let m = &p.inputs.models[id].model;
            let Some(ti) = m.tensors.iter().position(|t| t.name == name) else {
                return Err(SurgeryError::invalid(
                    &name,
                    format!(
                        "is not in {} (models must have the same tensors)",
                        labels[k]
                    ),
                ));
            };
            let t = &m.tensors[ti];
            if t.dims != p.tensors[i].dims {
                return Err(SurgeryError::invalid(
                    &name,
                    format!(
                        "dims {:?} in {} where the model has {:?}",
                        t.dims, labels[k], p.tensors[i].dims
                    ),
                ));
            }
            match t.ty {
                TensorType::Known(ty) if ty.can_dequantize() => {}
                ty => {
                    return Err(SurgeryError::invalid(
                        &name,
                        format!("its type {ty} in {} cannot be decoded here", labels[k]),
                    ))
                }
            }
            others.push(Expr::Tensor {
                model: id,
                tensor: ti,
            });
        }
        let t = position(&name, n_layers);
        let mut weights: Vec<f32> = op
            .models
            .iter()
            .map(|m| eval(&m.weight, &name, t, 1.0) as f32)
            .collect();
        let densities: Vec<f32> = op
            .models
            .iter()
            .map(|m| eval(&m.density, &name, t, 1.0) as f32)
            .collect();
        let mut base_weight = eval(&op.base_weight, &name, t, 1.0) as f32;
        let tt = op.t.as_ref().and_then(|p| p.eval(&name, t));
        if op.method == MergeMethod::Linear && ids.len() == 1 {
            if let Some(tt) = tt {
                base_weight = 1.0 - tt as f32;
                weights[0] = tt as f32;
            }
        }
        if op.method == MergeMethod::Slerp && tt.is_none() {
            return Err(SurgeryError::invalid(
                &name,
                "slerp needs t for this tensor (no filter of t matches it)",
            ));
        }
        let streams = (0..ids.len())
            .map(|k| dare_stream(op.seed, &name, k as u64 + 1))
            .collect();
        let base = p.tensors[i].values()?;
        let expr = MergeExpr::new(
            op.method,
            base,
            others,
            weights.clone(),
            base_weight,
            densities.clone(),
            normalize,
            lambda,
            tt.unwrap_or(0.0) as f32,
            streams,
        );
        let target = rules
            .iter()
            .find(|(g, _)| glob_match(g, &name))
            .map(|(_, t)| TensorType::Known(*t))
            .unwrap_or(p.tensors[i].ty);
        let TensorType::Known(ty) = target else {
            return Err(SurgeryError::invalid(&name, "unknown output type"));
        };
        check_encodable(&name, &p.tensors[i].dims, ty).map_err(|e| match e {
            SurgeryError::Invalid { what, message } => SurgeryError::Invalid {
                what,
                message: format!("{message}; give the merge an output type for it (--type)"),
            },
            e => e,
        })?;
        let params = match op.method {
            MergeMethod::Slerp => format!("t={:.3}", tt.unwrap_or(0.0)),
            MergeMethod::Linear => format!("weights {base_weight:.3}+{weights:.3?}"),
            MergeMethod::Task => format!("weights {weights:.3?}"),
            _ => format!("weights {weights:.3?} densities {densities:.3?}"),
        };
        let tensor = &mut p.tensors[i];
        let from = tensor.ty;
        tensor.source = Source::Values(Expr::Merge(Box::new(expr)));
        tensor.ty = target;
        tensor.steps.push(if target == from {
            format!(
                "{} merge with {} ({params})",
                op.method.name(),
                labels.join(", ")
            )
        } else {
            format!(
                "{} merge with {} ({params}), {from} → {target}",
                op.method.name(),
                labels.join(", ")
            )
        });
        merged += 1;
    }
    if kept > 0 {
        p.notes.push(format!(
            "{kept} integer tensor(s) kept from the base (no values to merge)"
        ));
    }
    p.ops.push(format!(
        "merge {} with {} ({merged} tensors)",
        op.method.name(),
        labels.join(", ")
    ));
    Ok(())
}
