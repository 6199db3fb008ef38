//! Layers (drop, keep, repeat, insert from another model, renumbered, metadata kept
//! consistent) and tensors (rename, remove).

use std::collections::{HashMap, HashSet};

use hotpatch_gguf::{MetaArray, MetaValue};

use super::eval::Source;
use super::ops::{parse_layer_list, LayerSlice};
use super::{file_label, layer_of, Plan, Planned, SurgeryError};
use crate::tensor::glob_match;

/// Where one output layer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum From {
    /// Layer `n` of the model as the previous operations left it.
    This(u64),
    /// Layer `n` of input `model` (another file).
    Other(usize, u64),
}

/// `<arch>.*` keys holding one value per layer: arrays as long as the block count. llama.cpp
/// reads such arrays for per-layer head counts, FFN lengths, sliding-window patterns, ...
fn per_layer_keys(meta: &[(String, MetaValue)], arch: &str, n: u64) -> Vec<String> {
    let prefix = format!("{arch}.");
    meta.iter()
        .filter(|(k, v)| {
            k.starts_with(&prefix)
                && matches!(v, MetaValue::Array(a) if a.len() as u64 == n && n > 0)
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// Replaces the layers by `slices`.
pub(crate) fn layers(p: &mut Plan, slices: &[LayerSlice]) -> Result<(), SurgeryError> {
    let arch = p
        .architecture()
        .ok_or_else(|| SurgeryError::invalid("general.architecture", "missing"))?;
    let count_key = format!("{arch}.block_count");
    let n = p.block_count().ok_or_else(|| {
        SurgeryError::invalid(&count_key, "missing: the model has no layers to edit")
    })?;

    // The layers of the model as it stands.
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); n as usize];
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for (i, t) in p.tensors.iter().enumerate() {
        match layer_of(&t.name) {
            Some((l, _)) if l < n => by_layer[l as usize].push(i),
            Some((l, _)) => {
                return Err(SurgeryError::invalid(
                    &t.name,
                    format!("layer {l} but {count_key} is {n}"),
                ))
            }
            None if by_layer.iter().all(Vec::is_empty) => before.push(i),
            None => after.push(i),
        }
    }
    // Each per-layer tensor kind's dims, to check layers from other models against.
    let mut dims_of: HashMap<String, Vec<u64>> = HashMap::new();
    for t in &p.tensors {
        if let Some((_, rest)) = layer_of(&t.name) {
            dims_of
                .entry(rest.to_string())
                .or_insert_with(|| t.dims.clone());
        }
    }
    let keys = per_layer_keys(&p.metadata, &arch, n);
    let embd = p
        .meta(&format!("{arch}.embedding_length"))
        .and_then(MetaValue::as_u64);

    let mut order = Vec::new();
    for (si, s) in slices.iter().enumerate() {
        let list = parse_layer_list(&s.layers)
            .map_err(|m| SurgeryError::invalid(format!("slices[{si}].layers"), m))?;
        match &s.model {
            None => {
                for l in &list {
                    if u64::from(*l) >= n {
                        return Err(SurgeryError::invalid(
                            format!("slices[{si}].layers"),
                            format!(
                                "layer {l} does not exist: the model has {n} layers (0-{})",
                                n - 1
                            ),
                        ));
                    }
                    order.push(From::This((*l).into()));
                }
            }
            Some(path) => {
                let m = p.inputs.model(path)?;
                let other = &p.inputs.models[m];
                let idx = other.model.index();
                let oarch = idx.architecture().unwrap_or("");
                if oarch != arch {
                    return Err(SurgeryError::invalid(
                        other.path.display().to_string(),
                        format!("architecture '{oarch}' is not the model's '{arch}'"),
                    ));
                }
                if idx.embedding_length().map(u64::from) != embd {
                    return Err(SurgeryError::invalid(
                        other.path.display().to_string(),
                        format!(
                            "embedding length {:?} is not the model's {embd:?}",
                            idx.embedding_length()
                        ),
                    ));
                }
                let on = idx.block_count().map(u64::from).ok_or_else(|| {
                    SurgeryError::invalid(
                        other.path.display().to_string(),
                        format!("{count_key} missing"),
                    )
                })?;
                for l in &list {
                    if u64::from(*l) >= on {
                        return Err(SurgeryError::invalid(
                            format!("slices[{si}].layers"),
                            format!(
                                "layer {l} does not exist in {}: it has {on} layers",
                                other.path.display()
                            ),
                        ));
                    }
                    order.push(From::Other(m, (*l).into()));
                }
            }
        }
    }
    if order.is_empty() {
        return Err(SurgeryError::invalid("slices", "no layer would be left"));
    }

    // The new layers' tensors.
    let mut layer_tensors = Vec::new();
    for (j, from) in order.iter().enumerate() {
        match *from {
            From::This(l) => {
                for &i in &by_layer[l as usize] {
                    let mut t = p.tensors[i].clone();
                    let (_, rest) = layer_of(&t.name).unwrap_or((l, ""));
                    let name = format!("blk.{j}.{rest}");
                    if l != j as u64 {
                        t.steps.push(format!("layer {l} → {j}"));
                    }
                    t.name = name;
                    layer_tensors.push(t);
                }
            }
            From::Other(m, l) => {
                let other = &p.inputs.models[m];
                let file = file_label(&other.path);
                for (ti, t) in other.model.tensors.iter().enumerate() {
                    let Some((tl, rest)) = layer_of(&t.name) else {
                        continue;
                    };
                    if tl != l {
                        continue;
                    }
                    if let Some(d) = dims_of.get(rest) {
                        if *d != t.dims {
                            return Err(SurgeryError::invalid(
                                format!("{} of {file}", t.name),
                                format!("dims {:?} where the model's layers have {:?}", t.dims, d),
                            ));
                        }
                    }
                    layer_tensors.push(Planned {
                        name: format!("blk.{j}.{rest}"),
                        ty: t.ty,
                        dims: t.dims.clone(),
                        source_ty: t.ty,
                        origin: format!("{} of {file}", t.name),
                        source: Source::Copy {
                            model: m,
                            tensor: ti,
                        },
                        steps: vec![format!("layer {l} of {file} → {j}")],
                    });
                }
            }
        }
    }

    // Per-layer metadata arrays, element j from the layer's own model.
    for key in &keys {
        let Some(MetaValue::Array(mine)) = p.meta(key).cloned() else {
            continue;
        };
        let mut parts: Vec<MetaArray> = Vec::with_capacity(order.len());
        for from in &order {
            let one = match *from {
                From::This(l) => pick(&mine, l as usize),
                From::Other(m, l) => {
                    let other = &p.inputs.models[m];
                    let idx = other.model.index();
                    let on = idx.block_count().map_or(0, u64::from);
                    match idx.get(key) {
                        Some(MetaValue::Array(a)) if a.len() as u64 == on => pick(a, l as usize),
                        Some(MetaValue::Array(a)) => {
                            return Err(SurgeryError::invalid(
                                format!("{key} of {}", other.path.display()),
                                format!("{} values for {on} layers", a.len()),
                            ))
                        }
                        Some(v) => scalar_as_array(v),
                        None => {
                            return Err(SurgeryError::invalid(
                                format!("{key} of {}", other.path.display()),
                                "missing, but the model has one value per layer",
                            ))
                        }
                    }
                }
            };
            parts.push(
                one.ok_or_else(|| SurgeryError::invalid(key, "value of a layer cannot be read"))?,
            );
        }
        let joined = concat(&parts).ok_or_else(|| {
            SurgeryError::invalid(key, "the models store it with different types")
        })?;
        p.set_meta(key, MetaValue::Array(joined));
    }
    let new_n = order.len() as u64;
    let count = match p.meta(&count_key) {
        Some(MetaValue::U64(_)) => MetaValue::U64(new_n),
        Some(MetaValue::I32(_)) => MetaValue::I32(new_n as i32),
        Some(MetaValue::I64(_)) => MetaValue::I64(new_n as i64),
        _ => MetaValue::U32(new_n as u32),
    };
    p.set_meta(&count_key, count);

    let mut tensors: Vec<Planned> = before.iter().map(|&i| p.tensors[i].clone()).collect();
    tensors.extend(layer_tensors);
    tensors.extend(after.iter().map(|&i| p.tensors[i].clone()));
    p.tensors = tensors;
    if !keys.is_empty() {
        p.notes.push(format!(
            "per-layer metadata kept consistent: {}",
            keys.join(", ")
        ));
    }
    let seq: Vec<String> = order
        .iter()
        .map(|f| match *f {
            From::This(l) => l.to_string(),
            From::Other(m, l) => format!("{}:{l}", file_label(&p.inputs.models[m].path)),
        })
        .collect();
    p.ops
        .push(format!("layers {} ({n} → {new_n} layers)", seq.join(",")));
    Ok(())
}

/// Element `i` of an array, as a one-element array.
fn pick(a: &MetaArray, i: usize) -> Option<MetaArray> {
    macro_rules! one {
        ($v:expr, $variant:ident) => {
            $v.get(i).cloned().map(|x| MetaArray::$variant(vec![x]))
        };
    }
    match a {
        MetaArray::U8(v) => one!(v, U8),
        MetaArray::I8(v) => one!(v, I8),
        MetaArray::U16(v) => one!(v, U16),
        MetaArray::I16(v) => one!(v, I16),
        MetaArray::U32(v) => one!(v, U32),
        MetaArray::I32(v) => one!(v, I32),
        MetaArray::F32(v) => one!(v, F32),
        MetaArray::Bool(v) => one!(v, Bool),
        MetaArray::U64(v) => one!(v, U64),
        MetaArray::I64(v) => one!(v, I64),
        MetaArray::F64(v) => one!(v, F64),
        MetaArray::Array(v) => one!(v, Array),
        MetaArray::String(s) => s
            .get(i)
            .map(|b| MetaArray::String([b].into_iter().collect())),
    }
}

/// A scalar as a one-element array of its type.
fn scalar_as_array(v: &MetaValue) -> Option<MetaArray> {
    Some(match v {
        MetaValue::U8(x) => MetaArray::U8(vec![*x]),
        MetaValue::I8(x) => MetaArray::I8(vec![*x]),
        MetaValue::U16(x) => MetaArray::U16(vec![*x]),
        MetaValue::I16(x) => MetaArray::I16(vec![*x]),
        MetaValue::U32(x) => MetaArray::U32(vec![*x]),
        MetaValue::I32(x) => MetaArray::I32(vec![*x]),
        MetaValue::F32(x) => MetaArray::F32(vec![*x]),
        MetaValue::Bool(x) => MetaArray::Bool(vec![*x]),
        MetaValue::U64(x) => MetaArray::U64(vec![*x]),
        MetaValue::I64(x) => MetaArray::I64(vec![*x]),
        MetaValue::F64(x) => MetaArray::F64(vec![*x]),
        MetaValue::String(s) => MetaArray::String([s].into_iter().collect()),
        MetaValue::Array(_) => return None,
    })
}

/// Joins arrays of one element type (`None` when the types differ).
fn concat(parts: &[MetaArray]) -> Option<MetaArray> {
    let first = parts.first()?;
    macro_rules! join {
        ($variant:ident) => {{
            let mut out = Vec::new();
            for p in parts {
                match p {
                    MetaArray::$variant(v) => out.extend(v.iter().cloned()),
                    _ => return None,
                }
            }
            MetaArray::$variant(out)
        }};
    }
    Some(match first {
        MetaArray::U8(_) => join!(U8),
        MetaArray::I8(_) => join!(I8),
        MetaArray::U16(_) => join!(U16),
        MetaArray::I16(_) => join!(I16),
        MetaArray::U32(_) => join!(U32),
        MetaArray::I32(_) => join!(I32),
        MetaArray::F32(_) => join!(F32),
        MetaArray::Bool(_) => join!(Bool),
        MetaArray::U64(_) => join!(U64),
        MetaArray::I64(_) => join!(I64),
        MetaArray::F64(_) => join!(F64),
        MetaArray::Array(_) => join!(Array),
        MetaArray::String(_) => {
            let mut out = hotpatch_gguf::StringArray::new();
            for p in parts {
                for s in p.as_strings()?.iter() {
                    out.push(s);
                }
            }
            MetaArray::String(out)
        }
    })
}

/// What the `*`s of `pattern` matched in `name` (leftmost, shortest), if it matches.
pub(crate) fn glob_captures<'a>(pattern: &str, name: &'a str) -> Option<Vec<&'a str>> {
    fn go<'a>(p: &[u8], n: &'a str, at: usize, caps: &mut Vec<&'a str>) -> bool {
        match p.first() {
            None => at == n.len(),
            Some(b'*') => {
                for end in at..=n.len() {
                    caps.push(&n[at..end]);
                    if go(&p[1..], n, end, caps) {
                        return true;
                    }
                    caps.pop();
                }
                false
            }
            Some(c) => n.as_bytes().get(at) == Some(c) && go(&p[1..], n, at + 1, caps),
        }
    }
    let mut caps = Vec::new();
    go(pattern.as_bytes(), name, 0, &mut caps).then_some(caps)
}

/// Renames tensors.
pub(crate) fn rename(p: &mut Plan, from: &str, to: &str) -> Result<(), SurgeryError> {
    let mut renamed = Vec::new();
    for (i, t) in p.tensors.iter().enumerate() {
        if let Some(caps) = glob_captures(from, &t.name) {
            let mut out = String::new();
            let mut caps = caps.into_iter();
            for part in to.split('*').enumerate() {
                if part.0 > 0 {
                    out.push_str(caps.next().unwrap_or(""));
                }
                out.push_str(part.1);
            }
            renamed.push((i, out));
        }
    }
    if renamed.is_empty() {
        return Err(SurgeryError::invalid(
            from,
            "matches no tensor of the model",
        ));
    }
    let moving: HashSet<usize> = renamed.iter().map(|(i, _)| *i).collect();
    let mut names: HashSet<String> = p
        .tensors
        .iter()
        .enumerate()
        .filter(|(i, _)| !moving.contains(i))
        .map(|(_, t)| t.name.clone())
        .collect();
    for (i, new) in &renamed {
        if !names.insert(new.clone()) {
            return Err(SurgeryError::invalid(
                &p.tensors[*i].name,
                format!("cannot become '{new}': a tensor of that name exists"),
            ));
        }
    }
    let n = renamed.len();
    for (i, new) in renamed {
        let t = &mut p.tensors[i];
        t.steps.push(format!("renamed from {}", t.name));
        t.name = new;
    }
    p.ops.push(format!("rename {from} → {to} ({n} tensor(s))"));
    Ok(())
}

/// Removes tensors.
pub(crate) fn remove(p: &mut Plan, pattern: &str) -> Result<(), SurgeryError> {
    let before = p.tensors.len();
    p.tensors.retain(|t| !glob_match(pattern, &t.name));
    let n = before - p.tensors.len();
    if n == 0 {
        return Err(SurgeryError::invalid(
            pattern,
            "matches no tensor of the model",
        ));
    }
    p.ops.push(format!("remove {pattern} ({n} tensor(s))"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures() {
        assert_eq!(
            glob_captures("blk.*.attn_*.weight", "blk.12.attn_q.weight"),
            Some(vec!["12", "q"])
        );
        assert_eq!(glob_captures("a*", "b"), None);
        assert_eq!(glob_captures("x", "x"), Some(vec![]));
    }

    #[test]
    fn arrays_join_by_type() {
        let a = MetaArray::U32(vec![1, 2, 3]);
        let parts = vec![
            pick(&a, 2).unwrap(),
            pick(&a, 0).unwrap(),
            scalar_as_array(&MetaValue::U32(9)).unwrap(),
        ];
        assert_eq!(concat(&parts), Some(MetaArray::U32(vec![3, 1, 9])));
        let mixed = vec![pick(&a, 0).unwrap(), MetaArray::I32(vec![1])];
        assert_eq!(concat(&mixed), None, "different element types do not join");
    }
}
