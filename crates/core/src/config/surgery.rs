//! The surgery operations as they appear in a configuration's `surgery` section (version 3).
//!
//! Each operation is semantic: it names tensors by glob and layers by number, never by file
//! offset, so one recipe applies to every quantization of the same model. Paths to other files
//! (a model to merge, an adapter, a direction) are resolved against the configuration's folder.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One surgery operation. Operations run in order, each on the model the previous one made;
/// the last result is written as a new file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum SurgeryOp {
    /// Re-encode tensors into other types with the byte-exact quantizers.
    Convert {
        /// Rules, first match wins: a tensor glob and the type its tensors get.
        types: Vec<TypeRule>,
    },
    /// Replace the model's layers by a new sequence of layer ranges, from this model or
    /// another of the same architecture (mergekit's "passthrough"). Layers are renumbered from
    /// 0; `<arch>.block_count` and every per-layer metadata array follow.
    Layers {
        /// The output layers, in order.
        slices: Vec<LayerSlice>,
    },
    /// Rename tensors: `from` is a name or a glob whose `*` parts are put into the `*`s of
    /// `to`, in order (`blk.*.attn_q.weight` → `blk.*.attn_q_renamed.weight`).
    Rename {
        /// Name or glob.
        from: String,
        /// New name (with as many `*` as `from`).
        to: String,
    },
    /// Remove tensors.
    Remove {
        /// Name or glob.
        tensor: String,
    },
    /// Add a tensor (or replace one of the same name) from another file.
    Add {
        /// Name of the new tensor.
        name: String,
        /// Where its values come from.
        source: TensorSource,
        /// Its type (default: the source's own type: a GGUF tensor's type, a `.npy`'s or
        /// `.safetensors`' dtype as F32/F16/BF16).
        #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
        ty: Option<String>,
    },
    /// Merge this model with others of the same architecture and shapes.
    Merge(MergeOp),
    /// Apply a LoRA adapter (llama.cpp's `convert_lora_to_gguf` layout) into the weights.
    Lora {
        /// The adapter GGUF.
        adapter: String,
        /// The user scale (llama.cpp's `--lora-scaled`); the delta is
        /// `scale · alpha / rank · B·A` (`scale` alone when the adapter has no alpha).
        #[serde(default = "one")]
        scale: f32,
    },
    /// Project a direction out of every tensor that writes into the residual stream (token
    /// embeddings, attention output, FFN down): W ← (I − s·r rᵀ) W with r of unit length.
    Ablate {
        /// Where the direction comes from.
        direction: DirectionSource,
        /// Which layers' attention output and FFN down (a list like `3,5-7`; default all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layers: Option<String>,
        /// Also the token embeddings (default true).
        #[serde(default = "yes")]
        embeddings: bool,
        /// How much of the direction to remove (1 removes it all).
        #[serde(default = "one")]
        scale: f32,
    },
}

fn one() -> f32 {
    1.0
}

fn yes() -> bool {
    true
}

/// One rule of a conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TypeRule {
    /// Tensor name or glob.
    pub tensor: String,
    /// ggml type name (`Q8_0`, `Q4_K`, `F16`, ...).
    #[serde(rename = "type")]
    pub ty: String,
}

/// A run of layers of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerSlice {
    /// The model the layers come from (absent: the model being edited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Layer numbers of that model, a list like `0-3,5,7-9` (each range inclusive, in order).
    pub layers: String,
}

/// Where an added tensor comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TensorSource {
    /// A tensor of a GGUF file (its bytes are copied when the type is kept).
    Gguf {
        /// The file.
        path: String,
        /// The tensor's name there.
        tensor: String,
    },
    /// A numpy `.npy` array (float32, float16 or float64; C order).
    Npy {
        /// The file.
        path: String,
    },
    /// A tensor of a `.safetensors` file (F32, F16, BF16 or F64).
    Safetensors {
        /// The file.
        path: String,
        /// The tensor's name there.
        tensor: String,
    },
}

/// Where an ablation direction comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectionSource {
    /// A llama.cpp control-vector GGUF (tensors `direction.N`, as `llama-cvector-generator`
    /// writes them) or a `.npy` (one vector, or one row per layer).
    pub path: String,
    /// Which direction of the file: the `N` of `direction.N`, or the row of a 2-D `.npy`.
    /// Needed when the file holds more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<u32>,
}

/// The merge methods (mergekit's names are accepted too: `task_arithmetic`, `dare_linear`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MergeMethod {
    /// Weighted average (`t` for two models: (1−t)·base + t·other).
    Linear,
    /// Spherical interpolation of two models by `t`, per tensor (as mergekit).
    Slerp,
    /// Task arithmetic: base + λ·Σ wᵢ (mᵢ − base).
    #[serde(alias = "task_arithmetic")]
    Task,
    /// TIES: task vectors trimmed to the `density` largest magnitudes, sign election, disjoint
    /// mean.
    Ties,
    /// DARE: task vectors with elements dropped at random (seeded) and the rest rescaled by
    /// 1/density.
    #[serde(alias = "dare_linear")]
    Dare,
    /// DARE with TIES' sign election.
    DareTies,
}

impl MergeMethod {
    /// Parses a method name (mergekit's aliases included).
    pub fn parse(s: &str) -> Option<MergeMethod> {
        Some(match s {
            "linear" => MergeMethod::Linear,
            "slerp" => MergeMethod::Slerp,
            "task" | "task_arithmetic" => MergeMethod::Task,
            "ties" => MergeMethod::Ties,
            "dare" | "dare_linear" => MergeMethod::Dare,
            "dare_ties" => MergeMethod::DareTies,
            _ => return None,
        })
    }

    /// The method's name.
    pub fn name(self) -> &'static str {
        match self {
            MergeMethod::Linear => "linear",
            MergeMethod::Slerp => "slerp",
            MergeMethod::Task => "task",
            MergeMethod::Ties => "ties",
            MergeMethod::Dare => "dare",
            MergeMethod::DareTies => "dare_ties",
        }
    }

    /// Whether the method works on task vectors (differences from the base).
    pub fn uses_deltas(self) -> bool {
        !matches!(self, MergeMethod::Linear | MergeMethod::Slerp)
    }
}

/// A merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeOp {
    /// The method.
    pub method: MergeMethod,
    /// The other models (the model being edited is the base).
    pub models: Vec<MergeModel>,
    /// Interpolation factor of `linear` (two models) and `slerp`: 0 is the base, 1 the other.
    /// A number, a gradient over the layers, or filtered values, as mergekit writes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<Param>,
    /// The base model's weight in a `linear` merge of more than two models (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_weight: Option<Param>,
    /// Divide by the sum of weights (default: true for linear and ties, false otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<bool>,
    /// Task-vector scale λ (task, ties, dare; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f32>,
    /// Seed of DARE's random drops.
    #[serde(default)]
    pub seed: u64,
    /// Output type rules (default: each tensor keeps the base's type).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<TypeRule>,
}

/// One model of a merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeModel {
    /// The model file (a split model's first shard).
    pub path: String,
    /// Its weight (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Param>,
    /// Fraction of its task vector kept (ties, dare; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<Param>,
}

/// A merge parameter, as mergekit writes it: a number; a gradient (numbers spread over the
/// layers, interpolated linearly: the first applies to layer 0 and to tensors before the
/// layers, the last to the last layer and tensors after them); or a list of
/// `{filter, value}` where the first filter contained in the tensor name wins (no filter:
/// always). mergekit's Hugging Face filters `self_attn`, `mlp`, `*_proj`, `input_layernorm`,
/// `post_attention_layernorm`, `embed_tokens`, `lm_head` match the GGUF tensors they name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Param {
    /// One value everywhere.
    Scalar(f64),
    /// A gradient over the layers.
    Gradient(Vec<f64>),
    /// Filtered values.
    Filtered(Vec<Conditional>),
}

/// One `{filter, value}` of a [`Param`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Conditional {
    /// A substring of the tensor name (or a mergekit filter); absent or `*`: every tensor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The value: a number or a gradient.
    pub value: ScalarOrGradient,
}

/// A number or a gradient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ScalarOrGradient {
    /// One value.
    Scalar(f64),
    /// A gradient over the layers.
    Gradient(Vec<f64>),
}

impl Param {
    /// The value for tensor `name` at position `t` (0 = first layer, 1 = last), as mergekit's
    /// `evaluate_setting`; `None` when no filter matches.
    pub fn eval(&self, name: &str, t: f64) -> Option<f64> {
        match self {
            Param::Scalar(v) => Some(*v),
            Param::Gradient(g) => Some(gradient(g, t)),
            Param::Filtered(list) => list.iter().find_map(|c| {
                let hit = match c.filter.as_deref() {
                    None | Some("*") => true,
                    Some(f) => filter_matches(f, name),
                };
                hit.then(|| match &c.value {
                    ScalarOrGradient::Scalar(v) => *v,
                    ScalarOrGradient::Gradient(g) => gradient(g, t),
                })
            }),
        }
    }

    /// Checks the values: finite numbers, no empty gradient or filter list.
    pub fn validate(&self) -> Result<(), String> {
        let check = |g: &[f64]| {
            if g.is_empty() {
                return Err("a gradient needs at least one value".to_string());
            }
            match g.iter().find(|v| !v.is_finite()) {
                Some(v) => Err(format!("{v} is not a finite number")),
                None => Ok(()),
            }
        };
        match self {
            Param::Scalar(v) => check(std::slice::from_ref(v)),
            Param::Gradient(g) => check(g),
            Param::Filtered(list) if list.is_empty() => {
                Err("a list of filtered values needs at least one entry".into())
            }
            Param::Filtered(list) => list.iter().try_for_each(|c| match &c.value {
                ScalarOrGradient::Scalar(v) => check(std::slice::from_ref(v)),
                ScalarOrGradient::Gradient(g) => check(g),
            }),
        }
    }
}

fn gradient(g: &[f64], t: f64) -> f64 {
    if g.len() == 1 {
        return g[0];
    }
    let scaled = t.clamp(0.0, 1.0) * (g.len() - 1) as f64;
    let i0 = scaled.floor() as usize;
    let i1 = (i0 + 1).min(g.len() - 1);
    let frac = scaled - i0 as f64;
    (1.0 - frac) * g[i0] + frac * g[i1]
}

/// Whether a mergekit-style filter selects GGUF tensor `name`: mergekit's Hugging Face module
/// names are translated to the GGUF tensors they cover; anything else is a substring test.
pub fn filter_matches(filter: &str, name: &str) -> bool {
    let part = |p: &str| name.contains(p);
    match filter {
        "self_attn" => part(".attn_") && !part(".attn_norm"),
        "mlp" => part(".ffn_") && !part(".ffn_norm"),
        "q_proj" => part(".attn_q."),
        "k_proj" => part(".attn_k."),
        "v_proj" => part(".attn_v."),
        "o_proj" => part(".attn_output."),
        "gate_proj" => part(".ffn_gate."),
        "up_proj" => part(".ffn_up."),
        "down_proj" => part(".ffn_down."),
        "input_layernorm" => part(".attn_norm."),
        "post_attention_layernorm" => part(".ffn_norm."),
        "embed_tokens" => name.starts_with("token_embd."),
        "lm_head" => name.starts_with("output."),
        f => part(f),
    }
}

/// Parses a layer list like `3,5-7` (ranges inclusive, kept in the order written).
pub fn parse_layer_list(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("'{s}': empty item in the layer list"));
        }
        let num = |x: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| format!("'{x}' in '{s}' is not a layer number"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!(
                        "'{part}' in '{s}': the range ends before it starts"
                    ));
                }
                if b - a > 1 << 20 {
                    return Err(format!("'{part}' in '{s}': range too long"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

impl SurgeryOp {
    /// A short name for messages (`convert`, `layers`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            SurgeryOp::Convert { .. } => "convert",
            SurgeryOp::Layers { .. } => "layers",
            SurgeryOp::Rename { .. } => "rename",
            SurgeryOp::Remove { .. } => "remove",
            SurgeryOp::Add { .. } => "add",
            SurgeryOp::Merge(_) => "merge",
            SurgeryOp::Lora { .. } => "lora",
            SurgeryOp::Ablate { .. } => "ablate",
        }
    }

    /// Checks what serde cannot; errors are `(field, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_string(), m));
        let ty = |f: String, t: &str| -> Result<(), (String, String)> {
            match hotpatch_quant::GgmlType::from_name(t) {
                None => Err((f, format!("'{t}' is not a ggml type name"))),
                Some(g) if !g.can_quantize() => {
                    Err((f, format!("{g} cannot be written here (no quantizer)")))
                }
                Some(_) => Ok(()),
            }
        };
        let rules = |prefix: &str, rules: &[TypeRule]| -> Result<(), (String, String)> {
            for (i, r) in rules.iter().enumerate() {
                if r.tensor.is_empty() {
                    return err(&format!("{prefix}[{i}].tensor"), "must not be empty".into());
                }
                ty(format!("{prefix}[{i}].type"), &r.ty)?;
            }
            Ok(())
        };
        match self {
            SurgeryOp::Convert { types } => {
                if types.is_empty() {
                    return err("types", "at least one rule is needed".into());
                }
                rules("types", types)
            }
            SurgeryOp::Layers { slices } => {
                if slices.is_empty() {
                    return err("slices", "at least one slice is needed".into());
                }
                for (i, s) in slices.iter().enumerate() {
                    parse_layer_list(&s.layers).map_err(|m| (format!("slices[{i}].layers"), m))?;
                    if s.model.as_deref() == Some("") {
                        return err(&format!("slices[{i}].model"), "must not be empty".into());
                    }
                }
                Ok(())
            }
            SurgeryOp::Rename { from, to } => {
                if from.is_empty() || to.is_empty() {
                    return err("from", "names must not be empty".into());
                }
                let stars = |s: &str| s.matches('*').count();
                if stars(from) != stars(to) {
                    return err(
                        "to",
                        format!(
                            "'{to}' has {} '*' where '{from}' has {}",
                            stars(to),
                            stars(from)
                        ),
                    );
                }
                Ok(())
            }
            SurgeryOp::Remove { tensor } if tensor.is_empty() => {
                err("tensor", "must not be empty".into())
            }
            SurgeryOp::Remove { .. } => Ok(()),
            SurgeryOp::Add { name, ty: t, .. } => {
                if name.is_empty() {
                    return err("name", "must not be empty".into());
                }
                match t {
                    Some(t) => ty("type".into(), t),
                    None => Ok(()),
                }
            }
            SurgeryOp::Merge(m) => {
                if m.models.is_empty() {
                    return err("models", "at least one other model is needed".into());
                }
                if m.method == MergeMethod::Slerp && m.models.len() != 1 {
                    return err("models", "slerp merges exactly two models".into());
                }
                if matches!(m.method, MergeMethod::Linear | MergeMethod::Slerp)
                    && m.models.len() == 1
                    && m.t.is_none()
                    && m.models[0].weight.is_none()
                {
                    return err("t", format!("{} of two models needs t", m.method.name()));
                }
                for (f, p) in [("t", &m.t), ("base_weight", &m.base_weight)] {
                    if let Some(p) = p {
                        p.validate().map_err(|e| (f.to_string(), e))?;
                    }
                }
                if m.lambda.is_some_and(|l| !l.is_finite()) {
                    return err("lambda", "must be a finite number".into());
                }
                for (i, x) in m.models.iter().enumerate() {
                    if x.path.is_empty() {
                        return err(&format!("models[{i}].path"), "must not be empty".into());
                    }
                    for (f, p) in [("weight", &x.weight), ("density", &x.density)] {
                        if let Some(p) = p {
                            p.validate().map_err(|e| (format!("models[{i}].{f}"), e))?;
                        }
                    }
                }
                rules("types", &m.types)
            }
            SurgeryOp::Lora { adapter, scale } => {
                if adapter.is_empty() {
                    return err("adapter", "must not be empty".into());
                }
                if !scale.is_finite() {
                    return err("scale", "must be a finite number".into());
                }
                Ok(())
            }
            SurgeryOp::Ablate {
                direction,
                layers,
                scale,
                ..
            } => {
                if direction.path.is_empty() {
                    return err("direction.path", "must not be empty".into());
                }
                if let Some(l) = layers {
                    parse_layer_list(l).map_err(|m| ("layers".to_string(), m))?;
                }
                if !scale.is_finite() {
                    return err("scale", "must be a finite number".into());
                }
                Ok(())
            }
        }
    }
}

/// A change of a model's layer sequence, as `hotpatch layers` and the Surgery screen take it.
/// Lists are like `3,5-7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerEdit {
    /// Every layer but those, in order.
    Drop(String),
    /// Exactly those, in the order written (`0-7,4-11` repeats 4-7).
    Keep(String),
    /// Each item (a layer or a range) twice, the copy right after it (`2-3` on 6 layers gives
    /// 0 1 2 3 2 3 4 5).
    Repeat(String),
    /// Those layers, of `from` (another model of the same architecture) or of this model,
    /// inserted before layer `at` (default: after the last).
    Insert {
        /// The layers to insert.
        list: String,
        /// The model they come from (`None`: this one).
        from: Option<String>,
        /// The layer they go before.
        at: Option<u32>,
    },
}

impl LayerEdit {
    /// The edit a front end names by `mode` (`drop`, `keep`, `repeat`, `insert`), with its
    /// list (trimmed) and, for `insert`, the other model (blank: this one) and the layer it goes
    /// before. The error names the mode.
    pub fn from_mode(
        mode: &str,
        list: &str,
        from: Option<&str>,
        at: Option<u32>,
    ) -> Result<LayerEdit, String> {
        let list = list.trim().to_owned();
        Ok(match mode {
            "drop" => LayerEdit::Drop(list),
            "keep" => LayerEdit::Keep(list),
            "repeat" => LayerEdit::Repeat(list),
            "insert" => LayerEdit::Insert {
                list,
                from: from.map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()),
                at,
            },
            other => {
                return Err(format!(
                    "layers: '{other}' is not one of drop, keep, repeat, insert"
                ))
            }
        })
    }

    /// The output layer sequence of this edit on a model of `n` layers. Errors name the list
    /// and what is wrong (a layer that does not exist, every layer dropped, overlapping
    /// repeats).
    pub fn slices(&self, n: u32) -> Result<Vec<LayerSlice>, String> {
        fn join(s: &[u32]) -> String {
            s.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        }
        let this = |layers: String| LayerSlice {
            model: None,
            layers,
        };
        let check = |s: &str| -> Result<Vec<u32>, String> {
            let l = parse_layer_list(s)?;
            if let Some(bad) = l.iter().find(|&&x| x >= n) {
                return Err(format!(
                    "layer {bad} does not exist: the model has {n} layers"
                ));
            }
            Ok(l)
        };
        Ok(match self {
            LayerEdit::Drop(d) => {
                let drop = check(d)?;
                let kept: Vec<u32> = (0..n).filter(|l| !drop.contains(l)).collect();
                if kept.is_empty() {
                    return Err(format!("dropping {d} would drop every layer"));
                }
                vec![this(join(&kept))]
            }
            LayerEdit::Keep(k) => {
                check(k)?;
                vec![this(k.clone())]
            }
            LayerEdit::Repeat(r) => {
                let mut items: Vec<Vec<u32>> = r.split(',').map(check).collect::<Result<_, _>>()?;
                items.sort_by_key(|i| i[0]);
                let mut order = Vec::new();
                let mut done = 0u32;
                for item in &items {
                    let last = *item.last().unwrap_or(&0);
                    if item[0] < done {
                        return Err(format!("repeating {r}: the items overlap"));
                    }
                    order.extend(done..=last);
                    order.extend(item.iter().copied());
                    done = last + 1;
                }
                order.extend(done..n);
                vec![this(join(&order))]
            }
            LayerEdit::Insert { list, from, at } => {
                let at = at.unwrap_or(n);
                if at > n {
                    return Err(format!("insert at {at}: the model has {n} layers"));
                }
                if from.is_none() {
                    check(list)?;
                } else {
                    parse_layer_list(list)?;
                }
                let mut s = Vec::new();
                if at > 0 {
                    s.push(this(format!("0-{}", at - 1)));
                }
                s.push(LayerSlice {
                    model: from.clone(),
                    layers: list.clone(),
                });
                if at < n {
                    s.push(this(format!("{at}-{}", n - 1)));
                }
                s
            }
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn layer_edits_make_the_sequences_the_cli_documents() {
        let seq = |e: LayerEdit| -> Vec<(Option<String>, String)> {
            e.slices(6)
                .unwrap()
                .into_iter()
                .map(|s| (s.model, s.layers))
                .collect()
        };
        assert_eq!(
            seq(LayerEdit::Drop("1,3-4".into())),
            [(None, "0,2,5".into())]
        );
        assert_eq!(
            seq(LayerEdit::Keep("0-3,2-3".into())),
            [(None, "0-3,2-3".into())]
        );
        assert_eq!(
            seq(LayerEdit::Repeat("2-3".into())),
            [(None, "0,1,2,3,2,3,4,5".into())]
        );
        assert_eq!(
            seq(LayerEdit::Insert {
                list: "0-1".into(),
                from: Some("other.gguf".into()),
                at: Some(2)
            }),
            [
                (None, "0-1".into()),
                (Some("other.gguf".into()), "0-1".into()),
                (None, "2-5".into())
            ]
        );
        let err = |e: LayerEdit| e.slices(6).unwrap_err();
        assert_eq!(
            err(LayerEdit::Drop("0-5".into())),
            "dropping 0-5 would drop every layer"
        );
        assert_eq!(
            err(LayerEdit::Keep("6".into())),
            "layer 6 does not exist: the model has 6 layers"
        );
        assert_eq!(
            err(LayerEdit::Repeat("1-3,2".into())),
            "repeating 1-3,2: the items overlap"
        );
        assert!(err(LayerEdit::Insert {
            list: "0".into(),
            from: None,
            at: Some(7)
        })
        .contains("insert at 7"));
    }

    use super::*;

    #[test]
    fn layer_edits_by_mode_name() {
        assert_eq!(
            LayerEdit::from_mode("drop", " 1-2 ", None, None),
            Ok(LayerEdit::Drop("1-2".into()))
        );
        assert_eq!(
            LayerEdit::from_mode("insert", "0", Some("  "), Some(3)),
            Ok(LayerEdit::Insert {
                list: "0".into(),
                from: None,
                at: Some(3)
            })
        );
        let e = LayerEdit::from_mode("shuffle", "0", None, None).unwrap_err();
        assert!(e.starts_with("layers: 'shuffle'"), "{e}");
    }

    #[test]
    fn layer_lists() {
        assert_eq!(parse_layer_list("3,5-7").unwrap(), vec![3, 5, 6, 7]);
        assert_eq!(parse_layer_list(" 2 , 0-1").unwrap(), vec![2, 0, 1]);
        assert!(parse_layer_list("3,,4").unwrap_err().contains("empty item"));
        assert!(parse_layer_list("7-5").unwrap_err().contains("ends before"));
        assert!(parse_layer_list("x").unwrap_err().contains("'x'"));
    }

    #[test]
    fn params_follow_mergekit() {
        let g = Param::Gradient(vec![0.0, 1.0, 0.5]);
        assert_eq!(g.eval("blk.0.attn_q.weight", 0.0), Some(0.0));
        assert_eq!(g.eval("x", 0.25), Some(0.5));
        assert_eq!(g.eval("x", 0.5), Some(1.0));
        assert_eq!(g.eval("x", 1.0), Some(0.5));
        let f: Param = serde_json::from_str(
            r#"[{"filter":"self_attn","value":[0,1]},{"filter":"mlp","value":0.25},{"value":0.5}]"#,
        )
        .unwrap();
        assert_eq!(f.eval("blk.3.attn_q.weight", 1.0), Some(1.0));
        assert_eq!(
            f.eval("blk.3.attn_norm.weight", 1.0),
            Some(0.5),
            "norms are not self_attn"
        );
        assert_eq!(f.eval("blk.3.ffn_down.weight", 0.0), Some(0.25));
        assert_eq!(f.eval("output.weight", 1.0), Some(0.5));
    }
}
