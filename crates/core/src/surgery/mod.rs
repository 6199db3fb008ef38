//! Model surgery on quantized GGUF files: change tensor types, drop/repeat/insert layers,
//! rename/remove/add tensors, merge models, apply a LoRA adapter, ablate a direction.
//!
//! # Overview
//! A surgery is a list of [`SurgeryOp`]s (the configuration's `surgery` section). [`plan`]
//! opens the model and every other file the operations name, and turns the operations into a
//! [`Plan`]: the output's metadata and, for each output tensor, its name, type, dims and where
//! its bytes come from — copied as they are, or computed (dequantized, merged, LoRA applied,
//! direction removed) and quantized again with the byte-exact codecs. Nothing is written yet:
//! [`Plan::preview`] lists what will change (tensor by tensor, metadata key by key, with
//! warnings such as a conversion to a more precise type, which gains nothing).
//!
//! [`execute`] streams the plan into a new file through the GGUF writer
//! ([`hotpatch_gguf::write_file`]: a temporary file in the destination's folder, synced, then
//! renamed — a crash or a cancel leaves the destination as it was). Computed tensors are made
//! a chunk of rows at a time on every core, so memory stays bounded whatever the model's size.
//! Progress is reported in output bytes; the callback returning `false` cancels.
//!
//! ```no_run
//! use hotpatch_core::surgery::{execute, plan, SurgeryOp, TypeRule};
//! let ops = [SurgeryOp::Convert { types: vec![TypeRule { tensor: "blk.*".into(), ty: "Q8_0".into() }] }];
//! let p = plan("model.gguf".as_ref(), &ops, ".".as_ref())?;
//! for item in p.preview().tensors { println!("{} {}", item.name, item.action); }
//! execute(&p, "model-q8.gguf".as_ref(), &mut |pr| { eprintln!("{}/{}", pr.done, pr.total); true })?;
//! # Ok::<(), hotpatch_core::surgery::SurgeryError>(())
//! ```

mod adapters;
mod convert;
mod eval;
pub mod files;
mod layers;
mod merge;
/// The operations (the configuration's `surgery` section), defined in [`crate::config::surgery`].
pub use crate::config::surgery as ops;

use std::path::{Path, PathBuf};

use hotpatch_gguf::{
    GgmlType, GgufError, GgufModel, MetaValue, TensorData, TensorSpec, TensorType, WriteSummary,
};
use serde::Serialize;

pub use eval::{dare_keep, dare_stream, slerp_factors};
pub use merge::position;
pub use ops::{
    parse_layer_list, Conditional, DirectionSource, LayerEdit, LayerSlice, MergeMethod, MergeModel,
    MergeOp, Param, ScalarOrGradient, SurgeryOp, TensorSource, TypeRule,
};

use eval::{Expr, ReaderKind, Shape, Shared, Source, TensorReader};

use crate::{Progress, ProgressFn};

/// Why a surgery cannot be planned or written. Messages name the file, tensor or field.
#[derive(Debug, thiserror::Error)]
pub enum SurgeryError {
    /// A GGUF file could not be read.
    #[error("{path}: {source}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        #[source]
        source: GgufError,
    },
    /// An operation does not fit the model (unknown tensor, shape mismatch, bad type...).
    #[error("{what}: {message}")]
    Invalid {
        /// What it is about (a tensor, an operation's field).
        what: String,
        /// What is wrong.
        message: String,
    },
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What the writer said.
        #[source]
        source: GgufError,
    },
    /// The progress callback asked to stop; nothing was written.
    #[error("canceled; the output was not written")]
    Canceled,
}

impl SurgeryError {
    pub(crate) fn gguf(path: &Path, source: GgufError) -> SurgeryError {
        SurgeryError::Gguf {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, message: impl Into<String>) -> SurgeryError {
        SurgeryError::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }

    /// A stable code for the UI: `canceled`, `bad_model`, `invalid`, `write_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            SurgeryError::Gguf { .. } => "bad_model",
            SurgeryError::Invalid { .. } => "invalid",
            SurgeryError::Write { .. } => "write_failed",
            SurgeryError::Canceled => "canceled",
        }
    }
}

/// One opened input file.
#[derive(Debug)]
pub struct InputModel {
    /// The path it was opened from.
    pub path: PathBuf,
    /// The model (every shard of a split model).
    pub model: GgufModel,
}

/// The inputs of a surgery: the model being edited (input 0) and every other file named.
#[derive(Debug)]
pub struct Inputs {
    models: Vec<InputModel>,
    base_dir: PathBuf,
}

impl Inputs {
    fn open(model: &Path, base_dir: &Path) -> Result<Inputs, SurgeryError> {
        let m = GgufModel::open(model).map_err(|e| SurgeryError::gguf(model, e))?;
        Ok(Inputs {
            models: vec![InputModel {
                path: model.to_owned(),
                model: m,
            }],
            base_dir: base_dir.to_owned(),
        })
    }

    /// Resolves a path named by an operation (relative to the configuration's folder).
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        self.base_dir.join(path)
    }

    /// Opens `path` (or finds it open) and returns its input number.
    pub(crate) fn model(&mut self, path: &str) -> Result<usize, SurgeryError> {
        let p = self.resolve(path);
        let canon = p.canonicalize().ok();
        if let Some(i) = self
            .models
            .iter()
            .position(|m| m.path == p || (canon.is_some() && m.path.canonicalize().ok() == canon))
        {
            return Ok(i);
        }
        let m = GgufModel::open(&p).map_err(|e| SurgeryError::gguf(&p, e))?;
        self.models.push(InputModel { path: p, model: m });
        Ok(self.models.len() - 1)
    }

    /// Input `i`.
    pub fn get(&self, i: usize) -> &InputModel {
        &self.models[i]
    }

    /// Every input, the edited model first.
    pub fn all(&self) -> &[InputModel] {
        &self.models
    }
}

/// One tensor of the output.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its name.
    pub name: String,
    /// Its type in the output.
    pub ty: TensorType,
    /// Its dims (ggml order).
    pub dims: Vec<u64>,
    /// The type of the data it comes from (for previews and precision warnings).
    pub source_ty: TensorType,
    /// Where it comes from, for people (`blk.5.attn_q.weight of base.gguf`).
    pub origin: String,
    pub(crate) source: Source,
    /// What the operations did to it, in order (empty: copied unchanged).
    pub steps: Vec<String>,
}

impl Planned {
    /// Output bytes.
    pub fn nbytes(&self) -> u64 {
        match self.ty {
            TensorType::Known(t) => {
                let n: u64 = self.dims.iter().product();
                n / t.block_size() as u64 * t.type_size() as u64
            }
            TensorType::Unknown(_) => 0,
        }
    }

    /// The tensor's values as an expression (a copy becomes a dequantized read).
    pub(crate) fn values(&self) -> Result<Expr, SurgeryError> {
        match &self.source {
            Source::Values(e) => Ok(e.clone()),
            Source::Copy { model, tensor } => {
                match self.source_ty {
                    TensorType::Known(t) if t.can_dequantize() => {}
                    t => {
                        return Err(SurgeryError::invalid(
                            &self.name,
                            format!("its type {t} cannot be decoded to values here"),
                        ))
                    }
                }
                Ok(Expr::Tensor {
                    model: *model,
                    tensor: *tensor,
                })
            }
        }
    }

    /// Whether the tensor holds weights that can be computed on (floats or a quantized type,
    /// with a decoder) — not an integer tensor.
    pub fn is_numeric(&self) -> bool {
        use GgmlType::*;
        matches!(self.source_ty, TensorType::Known(t)
            if t.can_dequantize() && !matches!(t, I8 | I16 | I32 | I64))
    }
}

/// What a surgery will write.
#[derive(Debug)]
pub struct Plan {
    inputs: Inputs,
    /// GGUF version of the output.
    pub version: u32,
    /// The output's metadata, in order.
    pub metadata: Vec<(String, MetaValue)>,
    /// The output's tensors, in order.
    pub tensors: Vec<Planned>,
    /// Warnings (nothing is refused for them).
    pub notes: Vec<String>,
    /// The operations, described.
    pub ops: Vec<String>,
}

/// Split-model keys, dropped from a single-file output.
const SPLIT_KEYS: [&str; 3] = [
    hotpatch_gguf::SPLIT_COUNT,
    hotpatch_gguf::SPLIT_NO,
    hotpatch_gguf::SPLIT_TENSORS_COUNT,
];

impl Plan {
    /// The plan that copies input 0 unchanged.
    fn identity(inputs: Inputs) -> Plan {
        let m = &inputs.models[0];
        let index = m.model.index();
        let metadata = index
            .metadata
            .iter()
            .filter(|e| !SPLIT_KEYS.contains(&e.key.as_str()))
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        let file = file_label(&m.path);
        let tensors = m
            .model
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| Planned {
                name: t.name.clone(),
                ty: t.ty,
                dims: t.dims.clone(),
                source_ty: t.ty,
                origin: format!("{} of {file}", t.name),
                source: Source::Copy {
                    model: 0,
                    tensor: i,
                },
                steps: Vec::new(),
            })
            .collect();
        Plan {
            version: index.version,
            metadata,
            tensors,
            notes: Vec::new(),
            ops: Vec::new(),
            inputs,
        }
    }

    /// The inputs (the edited model first).
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// A metadata value of the output.
    pub fn meta(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets a metadata value (in place, or appended).
    pub(crate) fn set_meta(&mut self, key: &str, v: MetaValue) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.metadata.push((key.to_string(), v)),
        }
    }

    /// `general.architecture` of the output.
    pub fn architecture(&self) -> Option<String> {
        self.meta("general.architecture")
            .and_then(MetaValue::as_str)
            .map(str::to_string)
    }

    /// `<arch>.block_count`, if present.
    pub fn block_count(&self) -> Option<u64> {
        let arch = self.architecture()?;
        self.meta(&format!("{arch}.block_count"))?.as_u64()
    }

    /// Sets a tensor's output type; a copy whose type changes becomes a re-encode.
    pub(crate) fn retype(&mut self, i: usize, ty: GgmlType) -> Result<(), SurgeryError> {
        let t = &self.tensors[i];
        if t.ty == TensorType::Known(ty) {
            return Ok(());
        }
        check_encodable(&t.name, &t.dims, ty)?;
        let values = t.values()?;
        let t = &mut self.tensors[i];
        t.source = Source::Values(values);
        t.ty = TensorType::Known(ty);
        Ok(())
    }

    /// Output size in bytes of the tensor data.
    pub fn data_bytes(&self) -> u64 {
        self.tensors.iter().map(Planned::nbytes).sum()
    }

    /// What the plan will write, for people and the UI.
    pub fn preview(&self) -> SurgeryPreview {
        let original = self.inputs.models[0].model.index();
        let mut metadata = Vec::new();
        for (k, v) in &self.metadata {
            match original.get(k) {
                Some(old) if old == v => {}
                Some(old) => metadata.push(MetaChange {
                    key: k.clone(),
                    before: Some(short(old)),
                    after: Some(short(v)),
                }),
                None => metadata.push(MetaChange {
                    key: k.clone(),
                    before: None,
                    after: Some(short(v)),
                }),
            }
        }
        for e in &original.metadata {
            if !SPLIT_KEYS.contains(&e.key.as_str()) && self.meta(&e.key).is_none() {
                metadata.push(MetaChange {
                    key: e.key.clone(),
                    before: Some(short(&e.value)),
                    after: None,
                });
            }
        }
        let base = &self.inputs.models[0].model;
        let mut tensors: Vec<TensorChange> = self
            .tensors
            .iter()
            .map(|t| {
                let unchanged = t.steps.is_empty()
                    && matches!(t.source, Source::Copy { model: 0, tensor } if base.tensors[tensor].name == t.name);
                TensorChange {
                    name: t.name.clone(),
                    ty: t.ty.to_string(),
                    source_ty: t.source_ty.to_string(),
                    dims: t.dims.clone(),
                    bytes: t.nbytes(),
                    origin: t.origin.clone(),
                    action: if unchanged {
                        "unchanged".into()
                    } else if t.steps.is_empty() {
                        "copied".into()
                    } else {
                        t.steps.join("; ")
                    },
                    changed: !unchanged,
                }
            })
            .collect();
        let kept: std::collections::HashSet<&str> =
            self.tensors.iter().map(|t| t.name.as_str()).collect();
        for t in &base.tensors {
            if !kept.contains(t.name.as_str()) {
                tensors.push(TensorChange {
                    name: t.name.clone(),
                    ty: String::new(),
                    source_ty: t.ty.to_string(),
                    dims: t.dims.clone(),
                    bytes: 0,
                    origin: format!("{} of {}", t.name, file_label(&self.inputs.models[0].path)),
                    action: "removed".into(),
                    changed: true,
                });
            }
        }
        SurgeryPreview {
            ops: self.ops.clone(),
            tensor_count: self.tensors.len() as u64,
            data_bytes: self.data_bytes(),
            input_bytes: base.tensors.iter().map(|t| t.nbytes).sum(),
            changed: tensors.iter().filter(|t| t.changed).count() as u64,
            tensors,
            metadata,
            notes: self.notes.clone(),
        }
    }
}

fn short(v: &MetaValue) -> String {
    crate::config::metadata::describe(Some(v))
}

fn file_label(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Whether values of a tensor of `dims` can be written as `ty`.
pub(crate) fn check_encodable(name: &str, dims: &[u64], ty: GgmlType) -> Result<(), SurgeryError> {
    if !ty.can_quantize() {
        return Err(SurgeryError::invalid(
            name,
            format!("{ty} cannot be written here (no quantizer)"),
        ));
    }
    let ne0 = dims.first().copied().unwrap_or(1);
    if !ne0.is_multiple_of(ty.block_size() as u64) {
        return Err(SurgeryError::invalid(
            name,
            format!(
                "rows of {ne0} values are not whole {ty} blocks of {}",
                ty.block_size()
            ),
        ));
    }
    Ok(())
}

/// The preview of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurgeryPreview {
    /// The operations, described.
    pub ops: Vec<String>,
    /// Tensors in the output.
    pub tensor_count: u64,
    /// Tensor data bytes of the output.
    pub data_bytes: u64,
    /// Tensor data bytes of the input.
    pub input_bytes: u64,
    /// Tensors changed, added or removed.
    pub changed: u64,
    /// Every output tensor (in order), then every removed one.
    pub tensors: Vec<TensorChange>,
    /// Metadata changes.
    pub metadata: Vec<MetaChange>,
    /// Warnings.
    pub notes: Vec<String>,
}

/// One tensor of a preview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorChange {
    /// Output name.
    pub name: String,
    /// Output type (empty when removed).
    #[serde(rename = "type")]
    pub ty: String,
    /// The type of the data it comes from.
    pub source_ty: String,
    /// Dims.
    pub dims: Vec<u64>,
    /// Output bytes.
    pub bytes: u64,
    /// Where it comes from.
    pub origin: String,
    /// What happens to it: `unchanged`, `copied`, `removed`, or the steps.
    pub action: String,
    /// Whether the output differs from the input's tensor of that name.
    pub changed: bool,
}

/// One metadata change of a preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaChange {
    /// The key.
    pub key: String,
    /// Value before (absent: added).
    pub before: Option<String>,
    /// Value after (absent: removed).
    pub after: Option<String>,
}

/// Plans `ops` on the model at `model` (a split model's first shard opens every shard);
/// relative paths in the operations are resolved against `base_dir`.
pub fn plan(model: &Path, ops: &[SurgeryOp], base_dir: &Path) -> Result<Plan, SurgeryError> {
    let inputs = Inputs::open(model, base_dir)?;
    let mut p = Plan::identity(inputs);
    for (i, op) in ops.iter().enumerate() {
        op.validate().map_err(|(f, m)| {
            SurgeryError::invalid(format!("surgery[{i}] ({}).{f}", op.name()), m)
        })?;
        apply(&mut p, op).map_err(|e| match e {
            SurgeryError::Invalid { what, message } => SurgeryError::Invalid {
                what: format!("surgery[{i}] ({}): {what}", op.name()),
                message,
            },
            e => e,
        })?;
    }
    if p.tensors.iter().any(|t| t.ty != t.source_ty) {
        convert::update_file_type(&mut p);
    }
    Ok(p)
}

fn apply(p: &mut Plan, op: &SurgeryOp) -> Result<(), SurgeryError> {
    match op {
        SurgeryOp::Convert { types } => convert::convert(p, types),
        SurgeryOp::Layers { slices } => layers::layers(p, slices),
        SurgeryOp::Rename { from, to } => layers::rename(p, from, to),
        SurgeryOp::Remove { tensor } => layers::remove(p, tensor),
        SurgeryOp::Merge(m) => merge::merge(p, m),
        SurgeryOp::Lora { adapter, scale } => adapters::lora(p, adapter, *scale),
        SurgeryOp::Ablate {
            direction,
            layers,
            embeddings,
            scale,
        } => adapters::ablate(p, direction, layers.as_deref(), *embeddings, *scale),
        SurgeryOp::Add { name, source, ty } => adapters::add(p, name, source, ty.as_deref()),
    }
}

/// Reads a recipe: a JSON array of operations (a configuration's `surgery` section, as the
/// Surgery screen holds it) or a whole configuration (version 3) that has one. Errors name the
/// operation and field (`surgery[1].types[0].type`), as reading a configuration does.
pub fn parse_recipe(text: &str) -> Result<Vec<SurgeryOp>, crate::config::ConfigError> {
    use crate::config::{ConfigError, Configuration};
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let wrapped = format!("{{\"version\":3,\"surgery\":{trimmed}}}");
        return Ok(Configuration::from_json(&wrapped)?.surgery);
    }
    let c = Configuration::from_json(text)?;
    if c.surgery.is_empty() {
        return Err(ConfigError::Invalid {
            path: "surgery".into(),
            message: "this configuration has no surgery section (nothing to write)".into(),
        });
    }
    Ok(c.surgery)
}

/// Writes the plan to `out` (atomically: a temporary file renamed when complete). `progress`
/// gets output bytes written; returning `false` cancels ([`SurgeryError::Canceled`], the
/// destination untouched). Refuses to write over one of the inputs.
pub fn execute(
    plan: &Plan,
    out: &Path,
    progress: ProgressFn<'_>,
) -> Result<WriteSummary, SurgeryError> {
    let out_canon = out.canonicalize().ok();
    for m in &plan.inputs.models {
        let paths: Vec<&Path> = m.model.shards.iter().map(|s| s.path()).collect();
        for p in paths {
            if p == out || (out_canon.is_some() && p.canonicalize().ok() == out_canon) {
                return Err(SurgeryError::invalid(
                    out.display().to_string(),
                    "is one of the inputs; write the result to a new file",
                ));
            }
        }
    }
    let shared = Shared::new();
    let models = plan.inputs.all();
    let mut specs = Vec::with_capacity(plan.tensors.len());
    for t in &plan.tensors {
        let len = t.nbytes();
        let (ty, kind) = match &t.source {
            Source::Copy { model, tensor } => {
                let m = &models[*model];
                let bytes = m
                    .model
                    .tensor_data(&m.model.tensors[*tensor])
                    .map_err(|e| SurgeryError::gguf(&m.path, e))?;
                let Some(ty) = t.ty.known() else {
                    // Unknown type: copied as the bytes the reader gave it.
                    specs.push(TensorSpec {
                        name: t.name.clone(),
                        ty: t.ty,
                        dims: t.dims.clone(),
                        data: TensorData::Bytes(bytes),
                    });
                    continue;
                };
                (ty, ReaderKind::Copy(bytes))
            }
            Source::Values(e) => {
                let ty = t.ty.known().ok_or_else(|| {
                    SurgeryError::invalid(&t.name, "cannot compute values of an unknown type")
                })?;
                (ty, ReaderKind::Values(e.clone()))
            }
        };
        let shape = Shape::of(&t.dims).map_err(|e| SurgeryError::invalid(&t.name, e))?;
        let data = TensorReader::new(models, &shared, t.name.clone(), ty, shape, kind);
        specs.push(TensorSpec {
            name: t.name.clone(),
            ty: t.ty,
            dims: t.dims.clone(),
            data: TensorData::Reader {
                reader: Box::new(data),
                len,
            },
        });
    }
    let result = hotpatch_gguf::write_file(out, plan.version, &plan.metadata, specs, &mut |w| {
        if !progress(Progress {
            done: w.done,
            total: w.total,
        }) {
            shared
                .cancel
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    match result {
        // A cancel that came after the last byte is too late: the file is complete.
        Ok(s) => Ok(s),
        Err(e) => Err(shared.failure.lock().take().unwrap_or(SurgeryError::Write {
            path: out.to_owned(),
            source: e,
        })),
    }
}

/// Splits `blk.N.rest` into `(N, rest)`.
pub(crate) fn layer_of(name: &str) -> Option<(u64, &str)> {
    let rest = name.strip_prefix("blk.")?;
    let (n, rest) = rest.split_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((n.parse().ok()?, rest))
}

/// The identity of a model (every shard of a split model), as a configuration records it.
pub fn identity(model: &GgufModel, file_name: Option<String>) -> crate::config::ModelIdentity {
    let mut index = model.index().clone();
    index.tensors = model.tensors.clone();
    let headers: Vec<&[u8]> = model
        .shards
        .iter()
        .map(|s| {
            let end = (s.index.data_offset as usize).min(s.bytes().len());
            &s.bytes()[..end]
        })
        .collect();
    crate::config::ModelIdentity::of(&index, &headers, file_name)
}

/// A configuration (version 3) that records `ops` as done on the plan's input model.
pub fn record(plan: &Plan, ops: &[SurgeryOp]) -> crate::config::Configuration {
    let m = &plan.inputs.models[0];
    let mut c = crate::config::Configuration {
        model: Some(identity(&m.model, Some(file_label(&m.path)))),
        surgery: ops.to_vec(),
        ..Default::default()
    };
    c.version = c.required_version();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipe_is_an_operation_list_or_a_configuration_with_surgery() {
        let ops = parse_recipe(r#" [{"op":"remove","tensor":"output.weight"}]"#).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].name(), "remove");
        let ops = parse_recipe(
            r#"{"version":3,"surgery":[{"op":"convert","types":[{"tensor":"*","type":"Q8_0"}]}]}"#,
        )
        .unwrap();
        assert_eq!(ops[0].name(), "convert");
        // Errors name the operation and field.
        let e = parse_recipe(r#"[{"op":"convert","types":[{"tensor":"*","type":"Q9"}]}]"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("surgery[0].types[0].type"), "{e}");
        let e = parse_recipe(r#"[{"op":"explode"}]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("surgery[0]") && e.contains("explode"), "{e}");
        let e = parse_recipe(r#"{"version":1,"tensor_patches":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no surgery section"), "{e}");
        assert!(parse_recipe("[] trailing").is_err());
    }
}
