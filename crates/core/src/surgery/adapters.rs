//! LoRA adapters applied into the weights, directions ablated, tensors added from files.

use std::sync::Arc;

use hotpatch_gguf::{GgmlType, MetaValue, TensorType};

use super::eval::{AblateExpr, Axis, Expr, LoraExpr, Source};
use super::files::{read_npy, read_safetensors};
use super::ops::{parse_layer_list, DirectionSource, TensorSource};
use super::{check_encodable, file_label, layer_of, Plan, Planned, SurgeryError};

/// Applies the LoRA adapter at `path` (llama.cpp's `convert_lora_to_gguf` layout: tensors
/// `NAME.lora_a` / `NAME.lora_b`, `adapter.lora.alpha`) with user scale `scale`: each target
/// W becomes W + scale·alpha/rank·B·A, re-encoded in W's own type. `token_embd` adapters use
/// the layout llama.cpp reads for it (A: ne [rank, n_vocab], B: ne [rank, n_embd]).
pub(crate) fn lora(p: &mut Plan, path: &str, scale: f32) -> Result<(), SurgeryError> {
    let id = p.inputs.model(path)?;
    let ad = &p.inputs.models[id];
    let label = file_label(&ad.path);
    let idx = ad.model.index();
    if let Some(t) = idx.get_str("general.type") {
        if t != "adapter" {
            return Err(SurgeryError::invalid(
                &label,
                format!("general.type is '{t}', not 'adapter'"),
            ));
        }
    }
    if let Some(t) = idx.get_str("adapter.type") {
        if t != "lora" {
            return Err(SurgeryError::invalid(
                &label,
                format!("adapter.type is '{t}'; only LoRA adapters can be applied"),
            ));
        }
    }
    let arch = p.architecture().unwrap_or_default();
    if let Some(a) = idx.architecture() {
        if a != arch {
            return Err(SurgeryError::invalid(
                &label,
                format!("is an adapter for '{a}', the model is '{arch}'"),
            ));
        }
    }
    let alpha = idx.get_f64("adapter.lora.alpha").unwrap_or(0.0) as f32;
    let tensors = &ad.model.tensors;
    let mut applied = 0usize;
    let mut pairs = Vec::new();
    for (ai, a) in tensors.iter().enumerate() {
        let Some(target) = a.name.strip_suffix(".lora_a") else {
            if !a.name.ends_with(".lora_b") {
                return Err(SurgeryError::invalid(
                    format!("{} of {label}", a.name),
                    "is neither NAME.lora_a nor NAME.lora_b",
                ));
            }
            continue;
        };
        let b_name = format!("{target}.lora_b");
        let bi = tensors
            .iter()
            .position(|t| t.name == b_name)
            .ok_or_else(|| {
                SurgeryError::invalid(format!("{} of {label}", a.name), format!("has no {b_name}"))
            })?;
        pairs.push((target.to_string(), ai, bi));
    }
    for t in tensors {
        if let Some(target) = t.name.strip_suffix(".lora_b") {
            if !pairs.iter().any(|(n, _, _)| n == target) {
                return Err(SurgeryError::invalid(
                    format!("{} of {label}", t.name),
                    format!("has no {target}.lora_a"),
                ));
            }
        }
    }
    if pairs.is_empty() {
        return Err(SurgeryError::invalid(
            &label,
            "holds no LoRA tensors (NAME.lora_a, NAME.lora_b)",
        ));
    }
    for (target, ai, bi) in pairs {
        let Some(i) = p.tensors.iter().position(|t| t.name == target) else {
            return Err(SurgeryError::invalid(
                format!("{target}.lora_a of {label}"),
                "targets a tensor the model does not have",
            ));
        };
        let (a, b) = (&tensors[ai], &tensors[bi]);
        let w = &p.tensors[i];
        let d2 = |d: &[u64]| -> Option<(u64, u64)> {
            match d {
                [x] => Some((*x, 1)),
                [x, y] => Some((*x, *y)),
                _ => None,
            }
        };
        let (Some((a0, a1)), Some((b0, b1)), Some((w0, w1))) =
            (d2(&a.dims), d2(&b.dims), d2(&w.dims))
        else {
            return Err(SurgeryError::invalid(
                &target,
                "LoRA applies to 2-D weights",
            ));
        };
        let (rank, embd) = if a0 == w0 && b1 == w1 && a1 == b0 {
            (a1, false)
        } else if target.starts_with("token_embd") && a1 == w1 && b1 == w0 && a0 == b0 {
            (a0, true)
        } else {
            return Err(SurgeryError::invalid(
                &target,
                format!(
                    "dims {:?} do not fit lora_a {:?} and lora_b {:?} (expected lora_a [{w0}, rank], lora_b [rank, {w1}])",
                    w.dims, a.dims, b.dims
                ),
            ));
        };
        if rank == 0 {
            return Err(SurgeryError::invalid(&target, "rank 0"));
        }
        for t in [a, b] {
            if !t.ty.known().is_some_and(GgmlType::can_dequantize) {
                return Err(SurgeryError::invalid(
                    format!("{} of {label}", t.name),
                    format!("its type {} cannot be decoded here", t.ty),
                ));
            }
        }
        let TensorType::Known(ty) = w.ty else {
            return Err(SurgeryError::invalid(&target, "unknown type"));
        };
        check_encodable(&target, &w.dims, ty).map_err(|e| match e {
            SurgeryError::Invalid { what, message } => SurgeryError::Invalid {
                what,
                message: format!("{message}: cannot keep its type after adding the LoRA delta"),
            },
            e => e,
        })?;
        let eff = if alpha != 0.0 {
            scale * alpha / rank as f32
        } else {
            scale
        };
        let base = w.values()?;
        let expr = LoraExpr::new(base, (id, ai), (id, bi), rank as usize, eff, embd);
        let t = &mut p.tensors[i];
        t.source = Source::Values(Expr::Lora(Box::new(expr)));
        t.steps
            .push(format!("LoRA of {label} (rank {rank}, scale {eff})"));
        applied += 1;
    }
    p.ops.push(format!(
        "lora {label} (scale {scale}, alpha {alpha}: {applied} tensors)"
    ));
    Ok(())
}

/// Reads an ablation direction and makes it unit length.
fn direction(p: &Plan, d: &DirectionSource, n_embd: u64) -> Result<Vec<f32>, SurgeryError> {
    let path = p.inputs.resolve(&d.path);
    let label = path.display().to_string();
    let v: Vec<f32> = if path.extension().is_some_and(|e| e == "npy") {
        let a = read_npy(&path)?;
        match a.shape.as_slice() {
            [_] => {
                if d.layer.is_some_and(|l| l != 0) {
                    return Err(SurgeryError::invalid(
                        &label,
                        "holds one direction; layer must be 0 or absent",
                    ));
                }
                a.values
            }
            [rows, n] => {
                let Some(l) = d.layer else {
                    return Err(SurgeryError::invalid(
                        &label,
                        format!("holds {rows} directions (one per row): choose one with the layer"),
                    ));
                };
                if u64::from(l) >= *rows {
                    return Err(SurgeryError::invalid(
                        &label,
                        format!("has rows 0-{}, not {l}", rows - 1),
                    ));
                }
                let n = *n as usize;
                a.values[l as usize * n..(l as usize + 1) * n].to_vec()
            }
            s => {
                return Err(SurgeryError::invalid(
                    &label,
                    format!("shape {s:?}: a direction is 1-D (or one row per layer)"),
                ))
            }
        }
    } else {
        let m = hotpatch_gguf::GgufModel::open(&path).map_err(|e| SurgeryError::gguf(&path, e))?;
        let mut found: Vec<(u32, usize)> = m
            .tensors
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((t.name.strip_prefix("direction.")?.parse().ok()?, i)))
            .collect();
        found.sort();
        let pick = match (d.layer, found.as_slice()) {
            (_, []) => {
                return Err(SurgeryError::invalid(
                    &label,
                    "has no direction.N tensors (a llama.cpp control vector, as llama-cvector-generator writes it)",
                ))
            }
            (None, [(_, i)]) => *i,
            (None, many) => {
                let ns: Vec<String> = many.iter().map(|(n, _)| n.to_string()).collect();
                return Err(SurgeryError::invalid(
                    &label,
                    format!("holds directions {}: choose one with the layer", ns.join(",")),
                ));
            }
            (Some(l), many) => many.iter().find(|(n, _)| *n == l).map(|(_, i)| *i).ok_or_else(|| {
                SurgeryError::invalid(&label, format!("has no direction.{l}"))
            })?,
        };
        let t = &m.tensors[pick];
        let ty = t.ggml_type().map_err(|e| SurgeryError::gguf(&path, e))?;
        let data = m.tensor_data(t).map_err(|e| SurgeryError::gguf(&path, e))?;
        let mut v = vec![0f32; t.n_elements as usize];
        hotpatch_quant::dequantize(ty, data, &mut v)
            .map_err(|e| SurgeryError::invalid(&t.name, e.to_string()))?;
        v
    };
    if v.len() as u64 != n_embd {
        return Err(SurgeryError::invalid(
            &label,
            format!(
                "direction has {} values, the model's embedding length is {n_embd}",
                v.len()
            ),
        ));
    }
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return Err(SurgeryError::invalid(
            &label,
            "direction is zero or not finite",
        ));
    }
    Ok(v.iter().map(|x| (f64::from(*x) / norm) as f32).collect())
}

/// Projects a direction out of every tensor that writes into the residual stream.
pub(crate) fn ablate(
    p: &mut Plan,
    d: &DirectionSource,
    layers: Option<&str>,
    embeddings: bool,
    scale: f32,
) -> Result<(), SurgeryError> {
    let arch = p.architecture().unwrap_or_default();
    let n_embd = p
        .meta(&format!("{arch}.embedding_length"))
        .and_then(MetaValue::as_u64)
        .ok_or_else(|| SurgeryError::invalid(format!("{arch}.embedding_length"), "missing"))?;
    let r = Arc::new(direction(p, d, n_embd)?);
    let n_layers = p.block_count().unwrap_or(0);
    let chosen: Option<Vec<u64>> = match layers {
        Some(l) => {
            let l: Vec<u64> = parse_layer_list(l)
                .map_err(|m| SurgeryError::invalid("layers", m))?
                .into_iter()
                .map(u64::from)
                .collect();
            if let Some(bad) = l.iter().find(|&&x| x >= n_layers) {
                return Err(SurgeryError::invalid(
                    "layers",
                    format!("layer {bad} does not exist ({n_layers} layers)"),
                ));
            }
            Some(l)
        }
        None => None,
    };
    let mut done = 0usize;
    for i in 0..p.tensors.len() {
        let t = &p.tensors[i];
        let axis = match layer_of(&t.name) {
            None if embeddings && t.name == "token_embd.weight" => Axis::Rows,
            None => continue,
            Some((l, rest)) => {
                if chosen.as_ref().is_some_and(|c| !c.contains(&l)) {
                    continue;
                }
                let writes = rest.starts_with("attn_output.") || rest.starts_with("ffn_down");
                if !writes || !(rest.ends_with(".weight") || rest.ends_with(".bias")) {
                    continue;
                }
                if t.dims.len() == 1 {
                    Axis::Rows
                } else {
                    Axis::Columns
                }
            }
        };
        let ok = match axis {
            Axis::Rows => t.dims[0] == n_embd,
            Axis::Columns => t.dims.get(1) == Some(&n_embd),
        };
        if !ok {
            return Err(SurgeryError::invalid(
                &t.name,
                format!(
                    "dims {:?} have no dimension of the embedding length {n_embd} where expected",
                    t.dims
                ),
            ));
        }
        let TensorType::Known(ty) = t.ty else {
            return Err(SurgeryError::invalid(&t.name, "unknown type"));
        };
        check_encodable(&t.name, &t.dims, ty)?;
        let ne1 = t.dims.get(1).copied().unwrap_or(1) as usize;
        let base = t.values()?;
        let t = &mut p.tensors[i];
        t.source = Source::Values(Expr::Ablate(Box::new(AblateExpr::new(
            base,
            r.clone(),
            scale,
            axis,
            ne1,
        ))));
        t.steps.push(format!("direction removed (scale {scale})"));
        done += 1;
    }
    if done == 0 {
        return Err(SurgeryError::invalid(
            "ablate",
            "no tensor writes into the residual stream here (token_embd, attn_output, ffn_down)",
        ));
    }
    if embeddings && p.tensors.iter().all(|t| t.name != "output.weight") {
        p.notes.push(
            "the model ties its output head to token_embd: the head loses the direction too".into(),
        );
    }
    p.ops.push(format!(
        "ablate {} ({done} tensors{})",
        file_label(&p.inputs.resolve(&d.path)),
        layers.map(|l| format!(", layers {l}")).unwrap_or_default()
    ));
    Ok(())
}

/// Adds (or replaces) tensor `name` from a file.
pub(crate) fn add(
    p: &mut Plan,
    name: &str,
    source: &TensorSource,
    ty: Option<&str>,
) -> Result<(), SurgeryError> {
    let want = ty
        .map(|t| {
            GgmlType::from_name(t)
                .ok_or_else(|| SurgeryError::invalid(t, "is not a ggml type name"))
        })
        .transpose()?;
    let planned = match source {
        TensorSource::Gguf { path, tensor } => {
            let id = p.inputs.model(path)?;
            let m = &p.inputs.models[id];
            let label = file_label(&m.path);
            let ti = m
                .model
                .tensors
                .iter()
                .position(|t| t.name == *tensor)
                .ok_or_else(|| {
                    SurgeryError::invalid(format!("{tensor} of {label}"), "no such tensor")
                })?;
            let t = &m.model.tensors[ti];
            let mut pl = Planned {
                name: name.to_string(),
                ty: t.ty,
                dims: t.dims.clone(),
                source_ty: t.ty,
                origin: format!("{tensor} of {label}"),
                source: Source::Copy {
                    model: id,
                    tensor: ti,
                },
                steps: vec![format!("added from {tensor} of {label}")],
            };
            if let Some(w) = want {
                if pl.ty != TensorType::Known(w) {
                    check_encodable(name, &pl.dims, w)?;
                    pl.source = Source::Values(pl.values()?);
                    pl.ty = TensorType::Known(w);
                }
            }
            pl
        }
        TensorSource::Npy { path } | TensorSource::Safetensors { path, .. } => {
            let file = p.inputs.resolve(path);
            let a = match source {
                TensorSource::Safetensors { tensor, .. } => read_safetensors(&file, tensor)?,
                _ => read_npy(&file)?,
            };
            let w = want.unwrap_or(a.ty);
            let dims = a.dims();
            check_encodable(name, &dims, w)?;
            Planned {
                name: name.to_string(),
                ty: TensorType::Known(w),
                dims,
                source_ty: TensorType::Known(a.ty),
                origin: file_label(&file),
                source: Source::Values(Expr::Array(Arc::new(a.values))),
                steps: vec![format!("added from {}", file_label(&file))],
            }
        }
    };
    let what = planned.steps[0].clone();
    match p.tensors.iter().position(|t| t.name == name) {
        Some(i) => {
            let mut pl = planned;
            pl.steps = vec![format!("replaced: {what}")];
            p.tensors[i] = pl;
        }
        None => {
            // Beside its layer's tensors, else at the end.
            let at = layer_of(name)
                .and_then(|(l, _)| {
                    p.tensors
                        .iter()
                        .rposition(|t| layer_of(&t.name).is_some_and(|(x, _)| x == l))
                })
                .map_or(p.tensors.len(), |i| i + 1);
            p.tensors.insert(at, planned);
        }
    }
    p.ops.push(format!("add {name} ({what})"));
    Ok(())
}
