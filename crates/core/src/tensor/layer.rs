//! [`TensorLayer`]: the tensor layer's operations on the attached model, through the engine's journal.
//!
//! Every change is computed under the engine's write lock from the current bytes
//! ([`Engine::apply_computed`]), validated (bounds, protections) before any byte is written,
//! recorded as one undo step and announced as one event tagged [`Layer::Tensor`] with the
//! tensor as target. Quantized tensors are edited block by block (see [`super::encode_into`]):
//! only the blocks whose values change are written.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hotpatch_gguf::{merge_shards, GgufIndex, GgufModel, TensorInfo};
use hotpatch_quant::{dequantize, quantize, GgmlType};
use serde::Serialize;

use super::{
    check_finite, encode_into, EncodeError, EncodeReport, HeadGeometry, Selection, SelectionError,
    SideEffect, TransformOp,
};
use crate::engine::{Applied, Engine, Patch, RegionId, TemporaryPatch, View};
use crate::error::EngineError;
use crate::event::{Layer, Operation, Origin, Target};

/// Elements dequantized per step of a transform, search or extraction (a multiple of every
/// block size).
const CHUNK: u64 = 64 * 1024;

/// What the tensor layer refuses.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    /// The engine refused (protection, bounds, ...).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No tensor of that name in the attached model.
    #[error("no tensor named '{0}' in the model")]
    NoSuchTensor(String),
    /// The region's header is not a valid GGUF file.
    #[error("the attached region is not a readable GGUF model: {0}")]
    Gguf(String),
    /// An element index is outside the tensor.
    #[error("tensor '{tensor}': element {index} is out of range (the tensor has {n} elements)")]
    IndexOutOfRange {
        /// The tensor.
        tensor: String,
        /// The index.
        index: u64,
        /// Element count.
        n: u64,
    },
    /// The selection does not fit the tensor.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// The values cannot be stored.
    #[error("tensor '{tensor}': {source}")]
    Encode {
        /// The tensor.
        tensor: String,
        /// Why.
        source: EncodeError,
    },
    /// The tensor's type has no codec here (or is unknown).
    #[error("tensor '{tensor}': {why}")]
    Unsupported {
        /// The tensor.
        tensor: String,
        /// Why.
        why: String,
    },
    /// Two tensors that must have the same shape do not.
    #[error("tensor '{a}' {dims_a:?} and tensor '{b}' {dims_b:?} do not have the same shape")]
    ShapeMismatch {
        /// First tensor.
        a: String,
        /// Its dims.
        dims_a: Vec<u64>,
        /// Second tensor.
        b: String,
        /// Its dims.
        dims_b: Vec<u64>,
    },
    /// A transform's parameters are unusable.
    #[error("{op}.{field}: {reason}")]
    BadTransform {
        /// The operation.
        op: &'static str,
        /// The parameter.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The other model of a lerp could not be used.
    #[error("other model {path}: {why}")]
    OtherModel {
        /// Its path.
        path: String,
        /// Why.
        why: String,
    },
    /// A byte patch's expected original bytes are not what the file holds.
    #[error("byte patch at offset {offset}: expected {expected} but the model holds {found}")]
    Mismatch {
        /// Absolute offset.
        offset: u64,
        /// Expected bytes (hex).
        expected: String,
        /// Found bytes (hex).
        found: String,
    },
}

impl TensorError {
    /// A stable machine-readable code for the variant.
    pub fn code(&self) -> &'static str {
        match self {
            TensorError::Engine(e) => e.code(),
            TensorError::NoSuchTensor(_) => "no_such_tensor",
            TensorError::Gguf(_) => "gguf",
            TensorError::IndexOutOfRange { .. } => "index_out_of_range",
            TensorError::Selection(_) => "bad_selection",
            TensorError::Encode { .. } => "not_representable",
            TensorError::Unsupported { .. } => "unsupported_type",
            TensorError::ShapeMismatch { .. } => "shape_mismatch",
            TensorError::BadTransform { .. } => "bad_transform",
            TensorError::OtherModel { .. } => "other_model",
            TensorError::Mismatch { .. } => "mismatch",
        }
    }
}

type Result<T, E = TensorError> = std::result::Result<T, E>;

/// One requested element change.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct WeightChange {
    /// Tensor name.
    pub tensor: String,
    /// Flat element index (ggml order).
    pub index: u64,
    /// The value asked for.
    pub value: f32,
}

/// What one element change did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightEdit {
    /// Tensor name.
    pub tensor: String,
    /// Flat element index.
    pub index: u64,
    /// The tensor's type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Value before.
    pub previous: f32,
    /// Value asked for.
    pub requested: f32,
    /// Value actually stored (quantization rounds).
    pub stored: f32,
    /// The block was re-quantized (its scales changed); see `side_effects`.
    pub block_requantized: bool,
    /// Other elements of the block that moved (only when re-quantized).
    pub side_effects: Vec<SideEffect>,
}

/// What a transform did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransformReport {
    /// Tensor name.
    pub tensor: String,
    /// The operation's name.
    pub op: &'static str,
    /// Elements selected.
    pub elements_selected: u64,
    /// How the new values were stored.
    pub encode: EncodeReport,
    /// Bytes whose value changed.
    pub bytes_changed: u64,
    /// The undo entry (`None` when nothing changed).
    pub change: Option<u64>,
}

/// Which values a value search looks for.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, serde::Deserialize)]
pub struct ValueQuery {
    /// NaN.
    pub nan: bool,
    /// +Inf or −Inf.
    pub inf: bool,
    /// Subnormal (non-zero, below `f32::MIN_POSITIVE` in magnitude).
    pub subnormal: bool,
    /// |x| above this.
    pub above: Option<f32>,
}

impl ValueQuery {
    /// NaN, Inf and subnormal.
    pub fn non_normal() -> Self {
        ValueQuery {
            nan: true,
            inf: true,
            subnormal: true,
            above: None,
        }
    }

    fn class(&self, x: f32) -> Option<ValueClass> {
        if x.is_nan() {
            return self.nan.then_some(ValueClass::Nan);
        }
        if x.is_infinite() {
            return self.inf.then_some(ValueClass::Inf);
        }
        if x.is_subnormal() {
            return self.subnormal.then_some(ValueClass::Subnormal);
        }
        match self.above {
            Some(t) if x.abs() > t => Some(ValueClass::Outlier),
            _ => None,
        }
    }
}

/// Why a value matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueClass {
    /// NaN.
    Nan,
    /// ±Inf.
    Inf,
    /// Subnormal.
    Subnormal,
    /// |x| above the threshold.
    Outlier,
}

/// One matching element.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueHit {
    /// Tensor name.
    pub tensor: String,
    /// Flat element index.
    pub index: u64,
    /// The value.
    pub value: f32,
    /// Why it matched.
    pub class: ValueClass,
}

/// Counts per tensor of a value scan.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TensorScan {
    /// Tensor name.
    pub tensor: String,
    /// Type name.
    #[serde(rename = "type")]
    pub ty: String,
    /// Elements scanned.
    pub elements: u64,
    /// NaN count.
    pub nan: u64,
    /// ±Inf count.
    pub inf: u64,
    /// Subnormal count.
    pub subnormal: u64,
    /// |x| above the threshold.
    pub outliers: u64,
    /// Smallest finite value.
    pub min: Option<f32>,
    /// Largest finite value.
    pub max: Option<f32>,
    /// Set when the tensor could not be scanned (no codec).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl TensorScan {
    /// Whether anything matched.
    pub fn flagged(&self) -> bool {
        self.nan + self.inf + self.subnormal + self.outliers > 0
    }
}

/// The result of a value search.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ValueSearch {
    /// Per-tensor counts, in file order.
    pub tensors: Vec<TensorScan>,
    /// The first `limit` hits.
    pub hits: Vec<ValueHit>,
    /// All hits counted (may exceed `hits.len()`).
    pub total_hits: u64,
}

/// Another model opened read-only, for [`TransformOp::Lerp`] (and model B of a diff, which
/// the session holds: [`crate::manager::Manager::attach_other`]).
pub struct OtherModel {
    path: String,
    file: std::path::PathBuf,
    model: GgufModel,
}

impl std::fmt::Debug for OtherModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtherModel")
            .field("path", &self.file)
            .finish_non_exhaustive()
    }
}

impl OtherModel {
    /// Opens `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<OtherModel> {
        let p = path.as_ref();
        let model = GgufModel::open(p).map_err(|e| TensorError::OtherModel {
            path: p.display().to_string(),
            why: e.to_string(),
        })?;
        Ok(OtherModel::from_model(p, model))
    }

    /// The model `model`, opened from `path`.
    pub fn from_model(path: impl AsRef<Path>, model: GgufModel) -> OtherModel {
        let p = path.as_ref();
        OtherModel {
            path: p.display().to_string(),
            file: p.to_path_buf(),
            model,
        }
    }

    /// The file it was opened from (the first shard of a split model, or the shard named).
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The mapped model.
    pub fn model(&self) -> &GgufModel {
        &self.model
    }

    fn values(&self, name: &str, dims: &[u64], range: Range<u64>) -> Result<Vec<f32>> {
        let err = |why: String| TensorError::OtherModel {
            path: self.path.clone(),
            why,
        };
        let t = self
            .model
            .tensor(name)
            .ok_or_else(|| err(format!("has no tensor '{name}'")))?;
        if t.dims != dims {
            return Err(err(format!(
                "tensor '{name}' has shape {:?}, not {dims:?}",
                t.dims
            )));
        }
        let ty =
            t.ty.known()
                .filter(|t| t.can_dequantize())
                .ok_or_else(|| err(format!("cannot read '{name}' ({})", t.ty)))?;
        let data = self.model.tensor_data(t).map_err(|e| err(e.to_string()))?;
        dequantize_range(ty, data, range).map_err(|why| err(format!("tensor '{name}': {why}")))
    }

    /// The raw data of the other model's tensor `name` when it has type `ty` and shape `dims`
    /// (the bytes a same-type copy can take block by block), else `None`.
    fn same_type_data(&self, name: &str, dims: &[u64], ty: GgmlType) -> Option<&[u8]> {
        let t = self.model.tensor(name)?;
        if t.dims != dims || t.ty.known() != Some(ty) {
            return None;
        }
        let data = self.model.tensor_data(t).ok()?;
        let n: u64 = dims.iter().product();
        (Some(data.len()) == ty.row_bytes(n)).then_some(data)
    }
}

/// Dequantizes elements `range` of a tensor whose data is `data`.
fn dequantize_range(ty: GgmlType, data: &[u8], range: Range<u64>) -> Result<Vec<f32>, String> {
    let bs = ty.block_size() as u64;
    let (b0, b1) = (range.start / bs, range.end.div_ceil(bs));
    let ts = ty.type_size() as u64;
    let bytes = data
        .get((b0 * ts) as usize..(b1 * ts) as usize)
        .ok_or_else(|| format!("elements {range:?} are outside the data"))?;
    let mut v = vec![0f32; ((b1 - b0) * bs) as usize];
    dequantize(ty, bytes, &mut v).map_err(|e| e.to_string())?;
    let off = (range.start - b0 * bs) as usize;
    v.drain(..off);
    v.truncate((range.end - range.start) as usize);
    Ok(v)
}

/// The tensor layer on one attached model: one region, or one region per shard of a split model.
#[derive(Clone)]
pub struct TensorLayer {
    engine: Engine,
    /// One region per file, in shard order (`regions[t.shard]` holds tensor `t`'s data).
    regions: Arc<[RegionId]>,
    /// The first shard's header, with the tensors of every shard (see [`merge_shards`]).
    index: Arc<GgufIndex>,
    heads: Option<HeadGeometry>,
    source: Option<Arc<str>>,
}

impl std::fmt::Debug for TensorLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorLayer")
            .field("regions", &self.regions)
            .field("tensors", &self.index.tensors.len())
            .finish()
    }
}

/// The attention geometry read from a model's metadata, if it has a head count.
pub fn head_geometry(index: &GgufIndex) -> Option<HeadGeometry> {
    let n_head = u64::from(index.head_count()?);
    if n_head == 0 {
        return None;
    }
    let n_head_kv = index.head_count_kv().map_or(n_head, u64::from).max(1);
    let embd = index.embedding_length().map(u64::from);
    let head_dim_k = index
        .arch_u32("attention.key_length")
        .map(u64::from)
        .or(embd.map(|e| e / n_head))?;
    let head_dim_v = index
        .arch_u32("attention.value_length")
        .map_or(head_dim_k, u64::from);
    Some(HeadGeometry {
        n_head,
        n_head_kv,
        head_dim_k,
        head_dim_v,
    })
}

impl TensorLayer {
    /// Attaches the tensor layer to a region holding a whole GGUF file (parses its header: O(header)).
    pub fn attach(engine: &Engine, region: RegionId) -> Result<TensorLayer> {
        TensorLayer::attach_shards(engine, &[region])
    }

    /// Attaches the tensor layer to the shards of a split model, one region per file in shard order
    /// (one region: a single-file model). Parses every header and checks the shards belong
    /// together ([`merge_shards`]); the model's metadata is the first shard's.
    pub fn attach_shards(engine: &Engine, regions: &[RegionId]) -> Result<TensorLayer> {
        if regions.is_empty() {
            return Err(TensorError::Gguf("a model needs at least one file".into()));
        }
        let mut indexes = Vec::with_capacity(regions.len());
        for &region in regions {
            let path = engine.region_info(region)?.path;
            let index = engine.view(|v| -> Result<GgufIndex> {
                let len = v.len(region)?;
                let bytes = v.bytes(region, 0, len)?;
                hotpatch_gguf::parse(bytes)
                    .map_err(|e| TensorError::Gguf(format!("{}: {e}", path.display())))
            })?;
            indexes.push((path, index));
        }
        let named: Vec<(&Path, &GgufIndex)> =
            indexes.iter().map(|(p, i)| (p.as_path(), i)).collect();
        let tensors = merge_shards(&named).map_err(|e| TensorError::Gguf(e.to_string()))?;
        let mut index = indexes.swap_remove(0).1;
        index.tensors = tensors;
        let heads = head_geometry(&index);
        Ok(TensorLayer {
            engine: engine.clone(),
            regions: regions.into(),
            index: Arc::new(index),
            heads,
            source: None,
        })
    }

    /// The same layer with every change attributed to `source` ("ui", "cli", a preset name).
    pub fn with_source(mut self, source: impl Into<Arc<str>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Re-reads the header (after a byte edit of the header, say).
    pub fn refresh(&mut self) -> Result<()> {
        let fresh = TensorLayer::attach_shards(&self.engine, &self.regions)?;
        self.index = fresh.index;
        self.heads = fresh.heads;
        Ok(())
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The model's region (the first shard's for a split model: its header is the model's).
    pub fn region(&self) -> RegionId {
        self.regions[0]
    }

    /// Every file's region, in shard order (one for a single-file model).
    pub fn regions(&self) -> &[RegionId] {
        &self.regions
    }

    /// The region of file `shard` (0-based) of the model; the error names the file count.
    pub fn shard_region(&self, shard: u32) -> Result<RegionId> {
        self.regions.get(shard as usize).copied().ok_or_else(|| {
            TensorError::Engine(EngineError::InvalidArgument {
                what: "shard",
                why: format!(
                    "file {} does not exist: the model has {} file(s)",
                    u64::from(shard) + 1,
                    self.regions.len()
                ),
            })
        })
    }

    /// The region holding a tensor's data (its shard's).
    pub fn region_of(&self, t: &TensorInfo) -> RegionId {
        self.regions
            .get(t.shard)
            .copied()
            .unwrap_or(self.regions[0])
    }

    /// The parsed header.
    pub fn index(&self) -> &GgufIndex {
        &self.index
    }

    /// The attention geometry, if the model declares heads.
    pub fn heads(&self) -> Option<&HeadGeometry> {
        self.heads.as_ref()
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.index
            .tensor(name)
            .ok_or_else(|| TensorError::NoSuchTensor(name.to_string()))
    }

    /// Tensor names matching a glob (`*` = any run of characters), in file order.
    pub fn matching(&self, pattern: &str) -> Vec<&TensorInfo> {
        self.index
            .tensors
            .iter()
            .filter(|t| crate::tensor::glob_match(pattern, &t.name))
            .collect()
    }

    fn origin(&self, op: &str, name: &str) -> Origin {
        let o = Origin::new(
            Layer::Tensor,
            Operation::Other(op.to_string()),
            Target::Tensor {
                region: self
                    .index
                    .tensor(name)
                    .map_or(self.regions[0], |t| self.region_of(t)),
                name: name.to_string(),
            },
        );
        match &self.source {
            Some(s) => o.with_source(s.clone()),
            None => o,
        }
    }

    fn codec_type(&self, t: &TensorInfo, write: bool) -> Result<GgmlType> {
        let unsupported = |why: String| TensorError::Unsupported {
            tensor: t.name.clone(),
            why,
        };
        let ty =
            t.ty.known()
                .ok_or_else(|| unsupported(format!("unknown tensor type id {}", t.ty.id())))?;
        if !ty.can_dequantize() {
            return Err(unsupported(format!("no dequantizer for {ty}")));
        }
        let ne0 = t.dims.first().copied().unwrap_or(1);
        if ty.row_bytes(ne0).is_none() {
            return Err(unsupported(format!(
                "row length {ne0} is not a whole number of {ty} blocks"
            )));
        }
        if write && !ty.can_quantize() && !ty.is_quantized() {
            return Err(unsupported(format!("no encoder for {ty}")));
        }
        Ok(ty)
    }

    // ----- tensor-scoped memory (the memory layer within one tensor) ---------------------------------

    fn tensor_range(&self, name: &str, offset: u64, len: u64) -> Result<(RegionId, u64, u64)> {
        let t = self.tensor(name)?;
        match offset.checked_add(len) {
            Some(end) if end <= t.nbytes => Ok((self.region_of(t), t.offset + offset, len)),
            _ => Err(TensorError::IndexOutOfRange {
                tensor: name.into(),
                index: offset.saturating_add(len),
                n: t.nbytes,
            }),
        }
    }

    /// A bounds-checked handle to bytes `offset..offset+len` of a tensor's data
    /// (`getModelMemoryPointer`).
    pub fn pointer(&self, name: &str, offset: u64, len: u64) -> Result<crate::Pointer> {
        let (r, o, l) = self.tensor_range(name, offset, len)?;
        Ok(self.engine.memory().pointer(r, o, l)?)
    }

    /// Reads bytes of a tensor's data (`readModelMemory`); offsets are relative to the tensor.
    pub fn read_bytes(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let (r, o, l) = self.tensor_range(name, offset, len)?;
        Ok(self.engine.read(r, o, l)?)
    }

    /// Writes bytes into a tensor's data (`writeModelMemory`), journaled; offsets are relative
    /// to the tensor and the write may not cross its end.
    pub fn write_bytes(&self, name: &str, offset: u64, bytes: &[u8]) -> Result<Applied> {
        let (r, o, _) = self.tensor_range(name, offset, bytes.len() as u64)?;
        Ok(self.engine.apply(
            self.origin("write_model_memory", name),
            vec![Patch::new(r, o, bytes.to_vec())],
        )?)
    }

    // ----- reading ------------------------------------------------------------------------

    /// Dequantizes a tensor (or elements `range` of it) to f32.
    pub fn extract(&self, name: &str, range: Option<Range<u64>>) -> Result<Vec<f32>> {
        let t = self.tensor(name)?;
        let ty = self.codec_type(t, false)?;
        let range = range.unwrap_or(0..t.n_elements);
        if range.start > range.end || range.end > t.n_elements {
            return Err(TensorError::IndexOutOfRange {
                tensor: name.into(),
                index: range.end,
                n: t.n_elements,
            });
        }
        self.engine.view(|v| {
            let data = v.bytes(self.region_of(t), t.offset, t.nbytes)?;
            dequantize_range(ty, data, range).map_err(|why| TensorError::Unsupported {
                tensor: name.into(),
                why,
            })
        })
    }

    /// One element's current value.
    pub fn value(&self, name: &str, index: u64) -> Result<f32> {
        let n = self.tensor(name)?.n_elements;
        if index >= n {
            return Err(TensorError::IndexOutOfRange {
                tensor: name.into(),
                index,
                n,
            });
        }
        Ok(self.extract(name, Some(index..index + 1))?[0])
    }

    /// Runs `f` on a tensor's current bytes seen as a matrix (staged edits included), under the
    /// engine's read lock: the basis of the studio's heatmap, value grid and histogram
    /// ([`crate::heatmap`]). Writes wait until `f` returns.
    pub fn matrix<R>(
        &self,
        name: &str,
        f: impl FnOnce(&crate::heatmap::QuantMatrix<'_>) -> R,
    ) -> Result<R> {
        let t = self.tensor(name)?;
        let ty = self.codec_type(t, false)?;
        self.engine.view(|v| {
            let data = v.bytes(self.region_of(t), t.offset, t.nbytes)?;
            let m = crate::heatmap::QuantMatrix::new(ty, data, &t.dims).map_err(|e| {
                TensorError::Unsupported {
                    tensor: name.into(),
                    why: e.to_string(),
                }
            })?;
            Ok(f(&m))
        })
    }

    // ----- element edits ------------------------------------------------------------------

    /// Sets one element; returns what was stored and the side effects on its block.
    pub fn modify_weight(&self, name: &str, index: u64, value: f32) -> Result<WeightEdit> {
        let change = WeightChange {
            tensor: name.to_string(),
            index,
            value,
        };
        let mut edits = self.modify_weights_batch(std::slice::from_ref(&change))?;
        Ok(edits.remove(0))
    }

    /// What [`TensorLayer::modify_weight`] would do, without doing it: the value that would be
    /// stored and the side effects on its block, computed from the current bytes. Refuses
    /// exactly what the edit would refuse (bad index, unrepresentable value, a protected or
    /// read-only range) with the same error.
    pub fn preview_weight(&self, name: &str, index: u64, value: f32) -> Result<WeightEdit> {
        let change = WeightChange {
            tensor: name.to_string(),
            index,
            value,
        };
        let t = self.tensor(name)?;
        self.codec_type(t, true)?;
        if index >= t.n_elements {
            return Err(TensorError::IndexOutOfRange {
                tensor: name.into(),
                index,
                n: t.n_elements,
            });
        }
        self.engine.view(|v| {
            let (patches, mut edits) = self.plan_weights(v, std::slice::from_ref(&change))?;
            for p in &patches {
                v.check_writable(p.region, p.offset, p.bytes.len() as u64)?;
            }
            Ok(edits.remove(0))
        })
    }

    /// Sets many elements, all or nothing, as one undo step. When one element appears twice
    /// the later value wins.
    pub fn modify_weights_batch(&self, changes: &[WeightChange]) -> Result<Vec<WeightEdit>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        for c in changes {
            let t = self.tensor(&c.tensor)?;
            self.codec_type(t, true)?;
            if c.index >= t.n_elements {
                return Err(TensorError::IndexOutOfRange {
                    tensor: c.tensor.clone(),
                    index: c.index,
                    n: t.n_elements,
                });
            }
        }
        let first = &changes[0].tensor;
        let op = if changes.len() == 1 {
            "modify_weight"
        } else {
            "modify_weights_batch"
        };
        let mut out = Vec::new();
        let mut failure = None;
        self.engine
            .apply_computed(self.origin(op, first), |v| {
                let (patches, edits) = self
                    .plan_weights(v, changes)
                    .map_err(|e| stash(&mut failure, e))?;
                out = edits;
                Ok(patches)
            })
            .map_err(|e| failure.take().unwrap_or(TensorError::Engine(e)))?;
        Ok(out)
    }

    fn plan_weights(
        &self,
        v: &View<'_>,
        changes: &[WeightChange],
    ) -> Result<(Vec<Patch>, Vec<WeightEdit>)> {
        // Group by (tensor, block), keeping request order for the report.
        let mut blocks: std::collections::BTreeMap<(usize, u64, u64), Vec<usize>> =
            Default::default();
        for (i, c) in changes.iter().enumerate() {
            let t = self.tensor(&c.tensor)?;
            let bs = self.codec_type(t, true)?.block_size() as u64;
            blocks
                .entry((t.shard, t.offset, c.index / bs))
                .or_default()
                .push(i);
        }
        let mut patches = Vec::new();
        let mut edits: Vec<Option<WeightEdit>> = vec![None; changes.len()];
        for ((_, _, block), idxs) in blocks {
            let t = self.tensor(&changes[idxs[0]].tensor)?;
            let ty = self.codec_type(t, true)?;
            let (bs, ts) = (ty.block_size(), ty.type_size() as u64);
            let off = t.offset + block * ts;
            let old_bytes = v.bytes(self.region_of(t), off, ts)?;
            let mut old = vec![0f32; bs];
            dequantize(ty, old_bytes, &mut old).map_err(|e| codec_err(t, e))?;
            let mut new = old.clone();
            let mut selected = vec![false; bs];
            for &i in &idxs {
                let k = (changes[i].index - block * bs as u64) as usize;
                new[k] = changes[i].value;
                selected[k] = true;
            }
            let mut bytes = old_bytes.to_vec();
            let first = block * bs as u64;
            let rep =
                encode_into(ty, &mut bytes, first, &old, &new, &selected).map_err(|source| {
                    TensorError::Encode {
                        tensor: t.name.clone(),
                        source,
                    }
                })?;
            let mut stored = vec![0f32; bs];
            dequantize(ty, &bytes, &mut stored).map_err(|e| codec_err(t, e))?;
            let requantized = rep.blocks_requantized > 0;
            for &i in &idxs {
                let k = (changes[i].index - first) as usize;
                edits[i] = Some(WeightEdit {
                    tensor: t.name.clone(),
                    index: changes[i].index,
                    ty: ty.name().to_string(),
                    previous: old[k],
                    requested: changes[i].value,
                    stored: stored[k],
                    block_requantized: requantized,
                    side_effects: rep.side_effects.clone(),
                });
            }
            if bytes != old_bytes {
                patches.push(Patch::new(self.region_of(t), off, bytes));
            }
        }
        Ok((patches, edits.into_iter().flatten().collect()))
    }

    // ----- transforms -----------------------------------------------------------------------

    /// Applies `op` to the selected elements of a tensor, as one undo step.
    /// `other` is required for [`TransformOp::Lerp`] (the model it names, opened by the caller).
    pub fn transform(
        &self,
        name: &str,
        selection: &Selection,
        op: &TransformOp,
        other: Option<&OtherModel>,
    ) -> Result<TransformReport> {
        self.transform_with(name, selection, op, other, &mut |_| true)
    }

    /// [`TensorLayer::transform`] reporting progress in elements (of the selection's blocks)
    /// after each chunk; when `progress` returns `false` the transform stops with
    /// [`EngineError::Cancelled`] before anything is written (no bytes change, no undo entry).
    pub fn transform_with(
        &self,
        name: &str,
        selection: &Selection,
        op: &TransformOp,
        other: Option<&OtherModel>,
        progress: crate::ProgressFn<'_>,
    ) -> Result<TransformReport> {
        let (ranges, t, ty) = self.prepare_transform(name, selection, op, other)?;
        let mut report = None;
        let mut failure = None;
        let applied = self
            .engine
            .apply_computed(
                self.origin(&format!("transform:{}", op.name()), name),
                |v| {
                    let (patches, rep) = self
                        .plan_transform(v, (t, ty), &ranges, op, other, &mut *progress)
                        .map_err(|e| stash(&mut failure, e))?;
                    report = Some(rep);
                    Ok(patches)
                },
            )
            .map_err(|e| failure.take().unwrap_or(TensorError::Engine(e)))?;
        let encode = report.unwrap_or_default();
        Ok(TransformReport {
            tensor: name.to_string(),
            op: op.name(),
            elements_selected: super::count(&ranges),
            encode,
            bytes_changed: applied.bytes_changed,
            change: applied.change,
        })
    }

    fn prepare_transform(
        &self,
        name: &str,
        selection: &Selection,
        op: &TransformOp,
        other: Option<&OtherModel>,
    ) -> Result<(Vec<Range<u64>>, &TensorInfo, GgmlType)> {
        op.validate().map_err(|e| TensorError::BadTransform {
            op: op.name(),
            field: e.field,
            reason: e.reason,
        })?;
        if op.needs_other() && other.is_none() {
            return Err(TensorError::BadTransform {
                op: op.name(),
                field: "model",
                reason: "the other model is not open".into(),
            });
        }
        let t = self.tensor(name)?;
        let ty = self.codec_type(t, true)?;
        let ranges = selection.resolve(name, &t.dims, self.heads.as_ref())?;
        Ok((ranges, t, ty))
    }

    /// Computes the patches of a transform from the current bytes.
    fn plan_transform(
        &self,
        v: &View<'_>,
        (t, ty): (&TensorInfo, GgmlType),
        ranges: &[Range<u64>],
        op: &TransformOp,
        other: Option<&OtherModel>,
        progress: crate::ProgressFn<'_>,
    ) -> Result<(Vec<Patch>, EncodeReport)> {
        let (bs, ts) = (ty.block_size() as u64, ty.type_size() as u64);
        let spans = block_spans(ranges, bs);
        let total: u64 = spans.iter().map(|r| r.end - r.start).sum();
        let mut done = 0u64;
        let data = v.bytes(self.region_of(t), t.offset, t.nbytes)?;
        let mut patches = Vec::new();
        let mut report = EncodeReport::default();
        // A copy from a tensor of the same type takes whole blocks as bytes.
        let raw = match other {
            Some(o) if op.is_copy() => o.same_type_data(&t.name, &t.dims, ty),
            _ => None,
        };
        for span in spans {
            let mut s = span.start;
            while s < span.end {
                let e = (s + CHUNK).min(span.end);
                if !progress(crate::Progress { done, total }) {
                    return Err(TensorError::Engine(EngineError::Cancelled));
                }
                done += e - s;
                let (b0, b1) = ((s / bs * ts) as usize, (e / bs * ts) as usize);
                let old_bytes = &data[b0..b1];
                let n = (e - s) as usize;
                let mut old = vec![0f32; n];
                dequantize(ty, old_bytes, &mut old).map_err(|err| codec_err(t, err))?;
                let mut new = old.clone();
                let mut selected = vec![false; n];
                let first_range = ranges.partition_point(|r| r.end <= s);
                for r in ranges[first_range..].iter().take_while(|r| r.start < e) {
                    let (a, b) = (r.start.max(s), r.end.min(e));
                    let (la, lb) = ((a - s) as usize, (b - s) as usize);
                    selected[la..lb].fill(true);
                    let theirs = match other {
                        Some(o) if op.needs_other() => Some(o.values(&t.name, &t.dims, a..b)?),
                        _ => None,
                    };
                    op.apply(&mut new[la..lb], a, theirs.as_deref());
                    if !op.is_copy() {
                        check_no_overflow(t, op, a, &old[la..lb], &new[la..lb], theirs.as_deref())?;
                    }
                }
                let mut bytes = old_bytes.to_vec();
                // Blocks to take verbatim from the other model (same-type copy, whole block).
                let mut verbatim = Vec::new();
                if raw.is_some() {
                    let bsu = bs as usize;
                    for k in 0..n / bsu {
                        let r = k * bsu..(k + 1) * bsu;
                        if selected[r.clone()].iter().all(|&x| x) {
                            report.elements_changed +=
                                r.clone()
                                    .filter(|&i| new[i].to_bits() != old[i].to_bits())
                                    .count() as u64;
                            selected[r.clone()].fill(false);
                            new[r.clone()].copy_from_slice(&old[r]);
                            verbatim.push(k);
                        }
                    }
                }
                let rep =
                    encode_into(ty, &mut bytes, s, &old, &new, &selected).map_err(|source| {
                        TensorError::Encode {
                            tensor: t.name.clone(),
                            source,
                        }
                    })?;
                report.merge(rep);
                if let Some(theirs) = raw {
                    let tsu = ts as usize;
                    for k in verbatim {
                        let src = b0 + k * tsu;
                        bytes[k * tsu..(k + 1) * tsu].copy_from_slice(&theirs[src..src + tsu]);
                    }
                }
                push_changed_runs(
                    &mut patches,
                    self.region_of(t),
                    t.offset + b0 as u64,
                    old_bytes,
                    &bytes,
                    ts as usize,
                );
                s = e;
            }
        }
        // The last report says "all of it" (the answer no longer depends on it).
        let _ = progress(crate::Progress { done, total });
        Ok((patches, report))
    }

    /// Applies a transform that reverts by itself after `revert_after` or when the returned
    /// guard is dropped (`injectTemporaryData`).
    pub fn inject_temporary(
        &self,
        name: &str,
        selection: &Selection,
        op: &TransformOp,
        other: Option<&OtherModel>,
        revert_after: Option<Duration>,
    ) -> Result<(TemporaryPatch, EncodeReport)> {
        let (ranges, t, ty) = self.prepare_transform(name, selection, op, other)?;
        let (patches, report) = self
            .engine
            .view(|v| self.plan_transform(v, (t, ty), &ranges, op, other, &mut |_| true))?;
        let guard = self.engine.apply_temporary(
            self.origin(&format!("inject_temporary:{}", op.name()), name),
            patches,
            revert_after,
        )?;
        Ok((guard, report))
    }

    // ----- whole tensors ------------------------------------------------------------------

    /// Copies `src`'s values onto `dst` (same shape), converting the type when they differ.
    pub fn clone_tensor(&self, src: &str, dst: &str) -> Result<TransformReport> {
        let (ts_, td) = (self.tensor(src)?, self.tensor(dst)?);
        same_shape(ts_, td)?;
        let (ty_s, ty_d) = (self.codec_type(ts_, false)?, self.codec_type(td, true)?);
        if ty_d.is_quantized() && !ty_d.can_quantize() && ty_s != ty_d {
            return Err(TensorError::Unsupported {
                tensor: dst.into(),
                why: format!("no quantizer for {ty_d}"),
            });
        }
        let mut report = EncodeReport::default();
        let mut failure = None;
        let applied = self
            .engine
            .apply_computed(self.origin("clone_tensor", dst), |v| {
                let (p, r) = self
                    .plan_copy(v, ts_, ty_s, td, ty_d)
                    .map_err(|e| stash(&mut failure, e))?;
                report = r;
                Ok(p)
            })
            .map_err(|e| failure.take().unwrap_or(TensorError::Engine(e)))?;
        Ok(TransformReport {
            tensor: dst.to_string(),
            op: "clone",
            elements_selected: td.n_elements,
            encode: report,
            bytes_changed: applied.bytes_changed,
            change: applied.change,
        })
    }

    /// The patches writing `src`'s values into `dst`'s encoding.
    fn plan_copy(
        &self,
        v: &View<'_>,
        src: &TensorInfo,
        ty_s: GgmlType,
        dst: &TensorInfo,
        ty_d: GgmlType,
    ) -> Result<(Vec<Patch>, EncodeReport)> {
        let sdata = v.bytes(self.region_of(src), src.offset, src.nbytes)?;
        if ty_s == ty_d {
            return Ok((
                vec![Patch::new(self.region_of(dst), dst.offset, sdata.to_vec())],
                EncodeReport::default(),
            ));
        }
        let ddata = v.bytes(self.region_of(dst), dst.offset, dst.nbytes)?;
        let mut out = Vec::with_capacity(ddata.len());
        let mut report = EncodeReport::default();
        let step = CHUNK.max(256);
        let mut s = 0;
        while s < dst.n_elements {
            let e = (s + step).min(dst.n_elements);
            let vals =
                dequantize_range(ty_s, sdata, s..e).map_err(|why| TensorError::Unsupported {
                    tensor: src.name.clone(),
                    why,
                })?;
            let mut bytes = vec![0u8; ty_d.row_bytes(e - s).unwrap_or(0)];
            quantize(ty_d, &vals, &mut bytes).map_err(|err| codec_err(dst, err))?;
            check_finite(ty_d, &bytes, s, &vals, &vec![false; vals.len()]).map_err(|source| {
                TensorError::Encode {
                    tensor: dst.name.clone(),
                    source,
                }
            })?;
            report.elements_changed += e - s;
            report.blocks_requantized_whole += (e - s) / ty_d.block_size() as u64;
            out.extend_from_slice(&bytes);
            s = e;
        }
        Ok((
            vec![Patch::new(self.region_of(dst), dst.offset, out)],
            report,
        ))
    }

    /// Exchanges the values of two tensors of the same shape (converting types when they
    /// differ), as one undo step.
    pub fn swap_tensors(&self, a: &str, b: &str) -> Result<Applied> {
        let (ta, tb) = (self.tensor(a)?, self.tensor(b)?);
        if ta.name == tb.name {
            return Err(TensorError::BadTransform {
                op: "swap",
                field: "b",
                reason: "a tensor cannot be swapped with itself".into(),
            });
        }
        same_shape(ta, tb)?;
        let (ty_a, ty_b) = (self.codec_type(ta, true)?, self.codec_type(tb, true)?);
        let mut failure = None;
        self.engine
            .apply_computed(self.origin("swap_tensors", a), |v| {
                let plan = || -> Result<Vec<Patch>> {
                    let (mut p1, _) = self.plan_copy(v, ta, ty_a, tb, ty_b)?;
                    let (p2, _) = self.plan_copy(v, tb, ty_b, ta, ty_a)?;
                    p1.extend(p2);
                    Ok(p1)
                };
                plan().map_err(|e| stash(&mut failure, e))
            })
            .map_err(|e| failure.take().unwrap_or(TensorError::Engine(e)))
    }

    // ----- byte patches, search, locks ------------------------------------------------------

    /// Applies a recorded byte patch after checking that the model holds the expected original
    /// bytes (`applyMemoryPatch`). Already-patched bytes count as a mismatch too: the caller
    /// decides (a configuration preview reports them as "already applied").
    pub fn apply_memory_patch(
        &self,
        shard: u32,
        offset: u64,
        original: &[u8],
        patched: &[u8],
    ) -> Result<Applied> {
        if original.len() != patched.len() || original.is_empty() {
            return Err(TensorError::BadTransform {
                op: "byte_patch",
                field: "patched",
                reason: format!(
                    "{} bytes where original has {}",
                    patched.len(),
                    original.len()
                ),
            });
        }
        let region = self.shard_region(shard)?;
        let target = Target::Range {
            region,
            offset,
            len: original.len() as u64,
        };
        let mut origin = Origin::new(
            Layer::Tensor,
            Operation::Other("apply_memory_patch".into()),
            target,
        );
        if let Some(s) = &self.source {
            origin = origin.with_source(s.clone());
        }
        let mut failure = None;
        self.engine
            .apply_computed(origin, |v| {
                let found = v.bytes(region, offset, original.len() as u64)?;
                if found != original {
                    return Err(stash(
                        &mut failure,
                        TensorError::Mismatch {
                            offset,
                            expected: crate::ops::to_hex(original),
                            found: crate::ops::to_hex(found),
                        },
                    ));
                }
                let patches = vec![Patch::new(region, offset, patched.to_vec())];
                // A recorded patch is held to the header guard as the Bytes screen's edits are:
                // nothing that leaves the file's header unparseable is written.
                crate::structure::check_header_kept(v, &patches)?;
                Ok(patches)
            })
            .map_err(|e| failure.take().unwrap_or(TensorError::Engine(e)))
    }

    /// Scans the values of the tensors matching `pattern` (all with `"*"`), reporting counts per
    /// tensor and the first `limit` hits. Tensors without a codec are listed as skipped.
    /// `progress(done_bytes, total_bytes)` returns false to stop (the result so far is returned).
    pub fn search_values(
        &self,
        pattern: &str,
        query: &ValueQuery,
        limit: usize,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<ValueSearch> {
        let tensors = self.matching(pattern);
        let total: u64 = tensors.iter().map(|t| t.nbytes).sum();
        let mut done = 0u64;
        let mut out = ValueSearch::default();
        let mut buf = vec![0f32; CHUNK as usize];
        for t in tensors {
            let mut scan = TensorScan {
                tensor: t.name.clone(),
                ty: t.ty.to_string(),
                ..TensorScan::default()
            };
            let ty = match self.codec_type(t, false) {
                Ok(ty) => ty,
                Err(e) => {
                    scan.skipped = Some(e.to_string());
                    out.tensors.push(scan);
                    done += t.nbytes;
                    continue;
                }
            };
            let (bs, ts) = (ty.block_size() as u64, ty.type_size() as u64);
            let mut s = 0u64;
            while s < t.n_elements {
                let e = (s + CHUNK).min(t.n_elements);
                let len = (e - s) as usize;
                self.engine.view(|v| -> Result<()> {
                    let bytes =
                        v.bytes(self.region_of(t), t.offset + s / bs * ts, (e - s) / bs * ts)?;
                    dequantize(ty, bytes, &mut buf[..len]).map_err(|err| codec_err(t, err))?;
                    Ok(())
                })?;
                for (k, &x) in buf[..len].iter().enumerate() {
                    if x.is_finite() {
                        scan.min = Some(scan.min.map_or(x, |m| m.min(x)));
                        scan.max = Some(scan.max.map_or(x, |m| m.max(x)));
                    }
                    let Some(class) = query.class(x) else {
                        continue;
                    };
                    match class {
                        ValueClass::Nan => scan.nan += 1,
                        ValueClass::Inf => scan.inf += 1,
                        ValueClass::Subnormal => scan.subnormal += 1,
                        ValueClass::Outlier => scan.outliers += 1,
                    }
                    out.total_hits += 1;
                    if out.hits.len() < limit {
                        out.hits.push(ValueHit {
                            tensor: t.name.clone(),
                            index: s + k as u64,
                            value: x,
                            class,
                        });
                    }
                }
                scan.elements += len as u64;
                done += (e - s) / bs * ts;
                s = e;
                if !progress(done, total) {
                    out.tensors.push(scan);
                    return Ok(out);
                }
            }
            out.tensors.push(scan);
        }
        Ok(out)
    }

    /// Locks a tensor (or elements `range` of it: the blocks covering them) against changes
    /// from every layer (`lockMemoryRegion`); `pages` also write-protects the whole memory
    /// pages inside. Returns the protection id for [`TensorLayer::unlock`].
    pub fn lock(&self, name: &str, range: Option<Range<u64>>, pages: bool) -> Result<u64> {
        let t = self.tensor(name)?;
        let (offset, len) = match range {
            None => (t.offset, t.nbytes),
            Some(r) => {
                if r.start >= r.end || r.end > t.n_elements {
                    return Err(TensorError::IndexOutOfRange {
                        tensor: name.into(),
                        index: r.end,
                        n: t.n_elements,
                    });
                }
                let ty = self.codec_type(t, false)?;
                let (bs, ts) = (ty.block_size() as u64, ty.type_size() as u64);
                let (b0, b1) = (r.start / bs, r.end.div_ceil(bs));
                (t.offset + b0 * ts, (b1 - b0) * ts)
            }
        };
        Ok(self.engine.protect(
            self.region_of(t),
            offset,
            len,
            format!("tensor {name}"),
            pages,
        )?)
    }

    /// Removes a lock made by [`TensorLayer::lock`].
    pub fn unlock(&self, id: u64) -> Result<()> {
        self.engine.unprotect(id)?;
        Ok(())
    }
}

fn same_shape(a: &TensorInfo, b: &TensorInfo) -> Result<()> {
    if a.dims != b.dims {
        return Err(TensorError::ShapeMismatch {
            a: a.name.clone(),
            dims_a: a.dims.clone(),
            b: b.name.clone(),
            dims_b: b.dims.clone(),
        });
    }
    Ok(())
}

/// Refuses a transform that turned a finite value into NaN/Inf (an f32 overflow: a scale by
/// 1e30, an add near f32::MAX); values already non-finite, in this model or the other one of a
/// lerp, are not the transform's doing. `first` is the flat index of `old[0]`.
fn check_no_overflow(
    t: &TensorInfo,
    op: &TransformOp,
    first: u64,
    old: &[f32],
    new: &[f32],
    theirs: Option<&[f32]>,
) -> Result<()> {
    let bad = (0..old.len()).find(|&k| {
        old[k].is_finite()
            && theirs.is_none_or(|o| o.get(k).is_some_and(|y| y.is_finite()))
            && !new[k].is_finite()
    });
    match bad {
        None => Ok(()),
        Some(k) => Err(TensorError::Encode {
            tensor: t.name.clone(),
            source: EncodeError::Overflow {
                index: first + k as u64,
                op: op.name(),
                before: old[k],
                after: new[k],
            },
        }),
    }
}

fn codec_err(t: &TensorInfo, e: hotpatch_quant::CodecError) -> TensorError {
    TensorError::Unsupported {
        tensor: t.name.clone(),
        why: e.to_string(),
    }
}

/// Keeps a [`TensorError`] raised inside an engine closure (which must return an
/// [`EngineError`]) so the caller can return it as is; engine errors pass through.
fn stash(slot: &mut Option<TensorError>, e: TensorError) -> EngineError {
    match e {
        TensorError::Engine(e) => e,
        other => {
            let placeholder = EngineError::InvalidArgument {
                what: "tensor",
                why: other.to_string(),
            };
            *slot = Some(other);
            placeholder
        }
    }
}

/// Block-aligned element spans covering `ranges` (sorted, disjoint), merged when they touch.
fn block_spans(ranges: &[Range<u64>], bs: u64) -> Vec<Range<u64>> {
    let mut spans: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        let s = r.start / bs * bs;
        let e = r.end.div_ceil(bs) * bs;
        match spans.last_mut() {
            Some(last) if s <= last.end => last.end = last.end.max(e),
            _ => spans.push(s..e),
        }
    }
    spans
}

/// Pushes one patch per run of consecutive changed blocks.
fn push_changed_runs(
    patches: &mut Vec<Patch>,
    region: RegionId,
    base: u64,
    old: &[u8],
    new: &[u8],
    ts: usize,
) {
    let mut run: Option<usize> = None;
    let n = old.len() / ts;
    for b in 0..=n {
        let changed = b < n && old[b * ts..(b + 1) * ts] != new[b * ts..(b + 1) * ts];
        match (changed, run) {
            (true, None) => run = Some(b),
            (false, Some(start)) => {
                patches.push(Patch::new(
                    region,
                    base + (start * ts) as u64,
                    new[start * ts..b * ts].to_vec(),
                ));
                run = None;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_merge_and_align() {
        let s = block_spans(&[3..5, 30..40, 70..71], 32);
        assert_eq!(s, vec![0..96], "touching block spans merge");
        let s = block_spans(&[3..5, 200..201], 32);
        assert_eq!(s, vec![0..32, 192..224], "distant ranges stay apart");
    }

    #[test]
    fn runs_cover_only_changed_blocks() {
        let old = [0u8; 8];
        let mut new = old;
        new[2] = 1; // block 1 (ts 2)
        new[6] = 1; // block 3
        new[7] = 1;
        let mut p = Vec::new();
        push_changed_runs(&mut p, RegionId(0), 100, &old, &new, 2);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].offset, p[0].bytes.len()), (102, 2));
        assert_eq!((p[1].offset, p[1].bytes.len()), (106, 2));
    }
}
