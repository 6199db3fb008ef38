//! Changing tensor types: re-encode chosen tensors with the byte-exact quantizers.

use std::collections::BTreeMap;

use hotpatch_gguf::{GgmlType, MetaValue, TensorType};

use super::ops::TypeRule;
use super::{check_encodable, Plan, SurgeryError};
use crate::tensor::glob_match;

/// Bits per weight of a type.
fn bpw(t: GgmlType) -> f64 {
    t.type_size() as f64 * 8.0 / t.block_size() as f64
}

/// Applies conversion rules (first match wins). A rule naming one tensor exactly must fit it;
/// a glob skips what it cannot convert (1-D tensors such as norms, integer tensors, rows that
/// are not whole blocks of the target type) and says so in a note, as llama-quantize keeps
/// such tensors.
pub(crate) fn convert(p: &mut Plan, rules: &[TypeRule]) -> Result<(), SurgeryError> {
    let parsed: Vec<(&TypeRule, GgmlType)> = rules
        .iter()
        .map(|r| {
            GgmlType::from_name(&r.ty)
                .map(|t| (r, t))
                .ok_or_else(|| SurgeryError::invalid(&r.ty, "is not a ggml type name"))
        })
        .collect::<Result<_, _>>()?;
    let mut matched = vec![0usize; rules.len()];
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut upward: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut changed = 0usize;
    for i in 0..p.tensors.len() {
        let name = p.tensors[i].name.clone();
        let Some((ri, (rule, ty))) = parsed
            .iter()
            .enumerate()
            .find(|(_, (r, _))| glob_match(&r.tensor, &name))
        else {
            continue;
        };
        matched[ri] += 1;
        let exact = !rule.tensor.contains('*');
        let t = &p.tensors[i];
        if !exact {
            let why = if t.dims.len() < 2 || t.dims.iter().skip(1).all(|&d| d == 1) {
                Some("1-D tensors (norms, biases)")
            } else if !t.is_numeric() {
                Some("integer or undecodable tensors")
            } else if !t.dims[0].is_multiple_of(ty.block_size() as u64) {
                Some("tensors whose rows are not whole blocks of the type")
            } else {
                None
            };
            if let Some(why) = why {
                if t.ty != TensorType::Known(*ty) {
                    *skipped
                        .entry(format!("{why}, kept as they are by '{}'", rule.tensor))
                        .or_default() += 1;
                }
                continue;
            }
        } else if !t.is_numeric() {
            return Err(SurgeryError::invalid(
                &name,
                format!("its type {} holds no values to re-encode", t.source_ty),
            ));
        }
        if t.ty == TensorType::Known(*ty) {
            continue;
        }
        if let TensorType::Known(src) = t.source_ty {
            if bpw(*ty) > bpw(src) {
                *upward
                    .entry((src.name().to_string(), ty.name().to_string()))
                    .or_default() += 1;
            }
        }
        check_encodable(&name, &t.dims, *ty)?;
        let from = t.ty;
        p.retype(i, *ty)?;
        p.tensors[i].steps.push(format!("re-encoded {from} → {ty}"));
        changed += 1;
    }
    for (i, r) in rules.iter().enumerate() {
        if matched[i] == 0 {
            return Err(SurgeryError::invalid(
                &r.tensor,
                "matches no tensor of the model",
            ));
        }
    }
    for (why, n) in skipped {
        p.notes.push(format!("{n} {why}"));
    }
    for ((src, dst), n) in upward {
        p.notes.push(format!(
            "{n} tensor(s) go from {src} to the more precise {dst}: nothing is gained (the values stay those {src} held), the file only grows"
        ));
    }
    let list: Vec<String> = rules
        .iter()
        .map(|r| format!("{}={}", r.tensor, r.ty))
        .collect();
    p.ops.push(format!(
        "convert {} ({changed} tensor(s) re-encoded)",
        list.join(" ")
    ));
    Ok(())
}

/// llama.cpp's `llama_ftype` for a model mostly of type `t` (K-quants: the `_M` mix).
fn file_type_of(t: GgmlType) -> Option<u32> {
    use GgmlType::*;
    Some(match t {
        F32 => 0,
        F16 => 1,
        Q4_0 => 2,
        Q4_1 => 3,
        Q8_0 => 7,
        Q5_0 => 8,
        Q5_1 => 9,
        Q2_K => 10,
        Q3_K => 12,
        Q4_K => 15,
        Q5_K => 17,
        Q6_K => 18,
        IQ2_XXS => 19,
        IQ2_XS => 20,
        IQ3_XXS => 23,
        IQ1_S => 24,
        IQ4_NL => 25,
        IQ3_S => 26,
        IQ2_S => 28,
        IQ4_XS => 30,
        IQ1_M => 31,
        BF16 => 32,
        TQ1_0 => 36,
        TQ2_0 => 37,
        _ => return None,
    })
}

/// After types changed: `general.file_type` names the type that holds most of the weight
/// matrices' bytes (as llama-quantize sets it from the type asked for).
pub(crate) fn update_file_type(p: &mut Plan) {
    let mut bytes: BTreeMap<GgmlType, u64> = BTreeMap::new();
    for t in &p.tensors {
        if let TensorType::Known(ty) = t.ty {
            if t.dims.len() >= 2 && t.dims[1] > 1 {
                *bytes.entry(ty).or_default() += t.nbytes();
            }
        }
    }
    let Some((&ty, _)) = bytes.iter().max_by_key(|(_, b)| **b) else {
        return;
    };
    let Some(ft) = file_type_of(ty) else { return };
    if p.meta("general.file_type").and_then(MetaValue::as_u64) != Some(u64::from(ft)) {
        p.set_meta("general.file_type", MetaValue::U32(ft));
    }
}
