//! The unified manager: one object over the memory, bytes and tensor layers.
//!
//! Overview: a [`Manager`] owns an [`Engine`] (whose journal and events serve every layer),
//! the attached model ([`Manager::attach`]) with its tensor-layer view, the proxy's settings (the
//! `server` section; the proxy crate runs them), and a record of the semantic changes made
//! through it, so [`Manager::export_configuration`] can write them as one JSON file. It is
//! `Send + Sync` (parking_lot locks) and every change emits the engine's patch event.
//!
//! - [`Manager::optimize_model`]: a preset across all layers as one undo group, with a
//!   per-layer report;
//! - [`Manager::apply_safety_filters`]: NaN/Inf/subnormal/outlier scan per tensor, optional
//!   undoable repair, and the preset's response filters turned on;
//! - [`Manager::boost_inference_speed`]: prefetch (and optionally pin) the model's pages,
//!   reporting the resident fraction before and after; turn on the response cache;
//! - presets: [`Manager::save_preset`] / [`Manager::load_preset`] (the user's config dir first,
//!   then the shipped `presets/`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hotpatch_gguf::GgufModel;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::config::{
    self, ApplyError, ApplyOptions, ApplyReport, ConfigError, Configuration, Preview,
    ServerSettings, TensorPatch,
};
use crate::residency::{self, FileMap, Pinned};
use crate::tensor::{
    OtherModel, Selection, TensorError, TensorLayer, TransformOp, TransformReport, ValueQuery,
    ValueSearch, WeightEdit,
};
use crate::{Bytes, Engine, EngineError, Memory, Mode, RegionId};

/// What the manager refuses.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// No model is attached.
    #[error("no model is attached (attach one first)")]
    NotAttached,
    /// The engine refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The tensor layer refused.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// No second model is attached ([`Manager::attach_other`]).
    #[error("no second model is open (open model B first)")]
    NoOther,
    /// A configuration could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A configuration was not applied.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// A preset name or file problem.
    #[error("preset {name}: {why}")]
    Preset {
        /// The preset.
        name: String,
        /// Why.
        why: String,
    },
    /// The model's files do not make one GGUF model (a split shard missing or inconsistent).
    #[error(transparent)]
    Model(#[from] hotpatch_gguf::GgufError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

type Result<T, E = ManagerError> = std::result::Result<T, E>;

struct Attached {
    /// The file (the first shard of a split model).
    path: PathBuf,
    /// Every file, in shard order, with its region (`tensors.regions()` in the same order).
    shards: Vec<(PathBuf, RegionId)>,
    tensors: TensorLayer,
    /// The files as opened, read-only (the parsed index of every shard, as in the file).
    file: Arc<GgufModel>,
}

/// A recorded semantic change, tied to the undo step that made it.
struct Recorded {
    live: Live,
    patch: RecordedPatch,
}

/// When a recorded change is still in effect (exported).
#[derive(Clone, Copy)]
enum Live {
    /// While the engine's undo entry is in its history (`None`: it changed nothing).
    Engine(Option<u64>),
    /// While the metadata journal's step is pending.
    Meta(u64),
    /// Saved into the file (the history was cleared by re-attaching): for good.
    Saved,
}

enum RecordedPatch {
    Tensor(TensorPatch),
    Bytes(config::BytePatch),
    Meta(config::MetadataPatch),
}

/// The model a session's recipe applies to: the file as first attached, before any save.
#[derive(Clone)]
struct Base {
    identity: config::ModelIdentity,
    /// Where the tensor data of its first file lay: a save that rewrote the header (which only
    /// the first file holds) moved every tensor of that file, and byte patches and protections
    /// made afterwards are recorded at the original offsets.
    layout: Option<BaseLayout>,
}

#[derive(Clone)]
struct BaseLayout {
    data_offset: u64,
    tensors: std::collections::HashMap<String, u64>,
}

/// The unified manager.
pub struct Manager {
    engine: Engine,
    model: RwLock<Option<Attached>>,
    /// The second model (model B of a diff, the source of a copy), read-only.
    other: RwLock<Option<Arc<OtherModel>>>,
    server: RwLock<ServerSettings>,
    response_filters_enabled: RwLock<bool>,
    pinned: Mutex<Option<Pinned>>,
    recorded: Mutex<Vec<Recorded>>,
    base: Mutex<Option<Base>>,
    protections: Mutex<Vec<config::Protection>>,
    preset_dirs: Vec<PathBuf>,
    /// Staged metadata edits (see [`crate::metadata`]).
    pub(crate) meta: crate::metadata::MetaJournal,
}

/// The per-layer report of [`Manager::optimize_model`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizeReport {
    /// Layers 1/2: byte patches applied and already present.
    pub bytes: (usize, usize),
    /// Tensors: one report per tensor transformed.
    pub tensors: Vec<TransformReport>,
    /// Protections made.
    pub protections: usize,
    /// Metadata edits staged (pending until Save).
    pub metadata_edits: usize,
    /// Server: rules now configured for the proxy, cache on or off.
    pub server_rules: usize,
    /// Response cache on.
    pub cache_enabled: bool,
    /// The undo entry of the whole preset.
    pub change: Option<u64>,
    /// The preview it was applied after.
    pub preview: Preview,
}

/// What [`Manager::apply_safety_filters`] found and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SafetyReport {
    /// The scan (counts per tensor, first hits).
    pub scan: ValueSearch,
    /// Repairs made (one per repaired tensor and kind), undoable as one group.
    pub repairs: Vec<TransformReport>,
    /// The undo entry of the repair.
    pub change: Option<u64>,
    /// Response filter rules turned on.
    pub response_filters: usize,
    /// The scan was stopped by the progress callback: `scan` is partial, nothing was repaired.
    pub canceled: bool,
}

/// What [`Manager::boost_inference_speed`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoostReport {
    /// Resident fraction of the model file before (None where the OS cannot say).
    pub resident_before: Option<f64>,
    /// After.
    pub resident_after: Option<f64>,
    /// Bytes prefetched.
    pub prefetched_bytes: u64,
    /// Pages pinned (mlock), or why not.
    pub pinned: Result<u64, String>,
    /// The response cache is on.
    pub cache_enabled: bool,
}

/// Information on the attached model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttachInfo {
    /// The file.
    pub path: PathBuf,
    /// Tensors.
    pub tensors: usize,
    /// Architecture.
    pub architecture: Option<String>,
    /// Identity (fingerprints).
    pub identity: config::ModelIdentity,
}

impl Default for Manager {
    fn default() -> Self {
        Manager::initialize()
    }
}

impl Manager {
    /// A manager with a fresh engine, no model, default proxy settings, and the user's preset
    /// directory (`<config dir>/hotpatch-studio/presets`); the shipped presets are compiled in
    /// ([`SHIPPED_PRESETS`]).
    pub fn initialize() -> Manager {
        let mut preset_dirs = Vec::new();
        if let Some(d) = crate::platform::user_config_dir() {
            preset_dirs.push(d.join("hotpatch-studio").join("presets"));
        }
        Manager {
            engine: Engine::new(),
            model: RwLock::new(None),
            other: RwLock::new(None),
            server: RwLock::new(ServerSettings::default()),
            response_filters_enabled: RwLock::new(false),
            pinned: Mutex::new(None),
            recorded: Mutex::new(Vec::new()),
            base: Mutex::new(None),
            protections: Mutex::new(Vec::new()),
            preset_dirs,
            meta: Default::default(),
        }
    }

    /// Replaces the user's preset directories (first = where [`Manager::save_preset`] writes);
    /// the shipped presets stay available after them.
    pub fn with_preset_dirs(mut self, dirs: Vec<PathBuf>) -> Self {
        self.preset_dirs = dirs;
        self
    }

    /// The preset directories, the user's (where [`Manager::save_preset`] writes) first.
    pub fn preset_dirs(&self) -> &[PathBuf] {
        &self.preset_dirs
    }

    /// The engine (journal, events, undo/redo).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Opens a model in `mode` and attaches every layer to it (a previously attached model is
    /// detached; save it first). A shard of a split model (`name-00002-of-00003.gguf`) opens
    /// the whole model: every shard is mapped as its own region, in `mode`, and the tensor layer sees
    /// the tensors of all of them ([`TensorLayer::attach_shards`]).
    pub fn attach(&self, path: impl AsRef<Path>, mode: Mode) -> Result<AttachInfo> {
        self.detach()?;
        let file = GgufModel::open(path.as_ref())?;
        self.attach_model(Arc::new(file), mode)
    }

    /// [`Manager::attach`] of a model already opened (read-only) by the caller: its files are
    /// mapped again as the engine's regions, in `mode`; `file` stays the session's view of
    /// them as opened ([`Manager::model`]).
    pub fn attach_model(&self, file: Arc<GgufModel>, mode: Mode) -> Result<AttachInfo> {
        self.detach()?;
        let paths: Vec<PathBuf> = file.shards.iter().map(|s| s.path().to_path_buf()).collect();
        let mut shards: Vec<(PathBuf, RegionId)> = Vec::with_capacity(paths.len());
        let unmap_all = |shards: &[(PathBuf, RegionId)]| {
            for (_, r) in shards {
                let _ = self.engine.unmap_region(*r);
            }
        };
        for p in paths {
            match self.engine.open(&p, mode) {
                Ok(r) => shards.push((p, r)),
                Err(e) => {
                    unmap_all(&shards);
                    return Err(e.into());
                }
            }
        }
        let regions: Vec<RegionId> = shards.iter().map(|(_, r)| *r).collect();
        let tensors = match TensorLayer::attach_shards(&self.engine, &regions) {
            Ok(t) => t,
            Err(e) => {
                unmap_all(&shards);
                return Err(e.into());
            }
        };
        let identity = config::layer_identity(&tensors);
        let first = shards[0].0.clone();
        let info = AttachInfo {
            path: first.clone(),
            tensors: tensors.index().tensors.len(),
            architecture: tensors.index().architecture().map(str::to_string),
            identity,
        };
        *self.model.write() = Some(Attached {
            path: first,
            shards,
            tensors,
            file,
        });
        let layout = self.model.read().as_ref().map(|m| {
            let index = m.tensors.index();
            BaseLayout {
                data_offset: index.data_offset,
                tensors: index
                    .tensors
                    .iter()
                    .filter(|t| t.shard == 0)
                    .map(|t| (t.name.clone(), t.offset))
                    .collect(),
            }
        });
        *self.base.lock() = Some(Base {
            identity: info.identity.clone(),
            layout,
        });
        Ok(info)
    }

    /// Attaches the file a save just wrote, keeping the session's recipe: the changes still
    /// in effect stay recorded (for good: the undo history starts over) and the exported
    /// configuration keeps the identity of the model first attached, which a fresh copy of
    /// the original has.
    pub(crate) fn reattach_saved(&self, path: &Path, mode: Mode) -> Result<AttachInfo> {
        let kept: Vec<Recorded> = {
            let live = self.live_steps();
            self.recorded
                .lock()
                .drain(..)
                .filter(|r| live.contains(&r.live))
                .map(|r| Recorded {
                    live: Live::Saved,
                    patch: r.patch,
                })
                .collect()
        };
        let base = self.base.lock().clone();
        let protections = self.protections.lock().clone();
        let info = self.attach(path, mode)?;
        *self.recorded.lock() = kept;
        if base.is_some() {
            *self.base.lock() = base;
        }
        self.restore_protections(protections)?;
        Ok(info)
    }

    /// The offset, in the model as first attached, of `len` bytes at `offset` of file `shard`
    /// of the attached model: the same when the layout is the same (always for files after
    /// the first: only the first holds the header a save rewrites); inside a tensor's data, the
    /// same place of that tensor (a save that rewrote the header moved it); else unchanged (a
    /// header range after a header rewrite has no counterpart in the original).
    fn base_offset(&self, shard: u32, offset: u64, len: u64) -> u64 {
        self.map_layout(shard, offset, len, true).unwrap_or(offset)
    }

    /// The inverse of [`Manager::base_offset`]: where `len` bytes at `offset` of the model as
    /// first attached are in the attached file now; `None` for a header range after a save
    /// rewrote the header.
    fn current_offset(&self, shard: u32, offset: u64, len: u64) -> Option<u64> {
        self.map_layout(shard, offset, len, false)
    }

    /// Maps a range of the first file between the layout as first attached and the current
    /// one (`to_base`: current → first attached).
    fn map_layout(&self, shard: u32, offset: u64, len: u64, to_base: bool) -> Option<u64> {
        let base = self.base.lock();
        let Some(layout) = base.as_ref().and_then(|b| b.layout.as_ref()) else {
            return Some(offset);
        };
        let Ok(layer) = self.tensors() else {
            return Some(offset);
        };
        let index = layer.index();
        let first = || index.tensors.iter().filter(|t| t.shard == 0);
        let same = shard != 0
            || (index.data_offset == layout.data_offset
                && first().count() == layout.tensors.len()
                && first().all(|t| layout.tensors.get(&t.name) == Some(&t.offset)));
        if same {
            return Some(offset);
        }
        let end = offset.saturating_add(len);
        first().find_map(|t| {
            let then = *layout.tensors.get(&t.name)?;
            let (from, to) = if to_base {
                (t.offset, then)
            } else {
                (then, t.offset)
            };
            (from <= offset && end <= from + t.nbytes).then(|| to + (offset - from))
        })
    }

    /// Which recorded changes are in effect now.
    fn live_steps(&self) -> LiveSteps {
        LiveSteps {
            engine: self.engine.history().iter().map(|h| h.id).collect(),
            meta: self.meta.entries().0.iter().map(|e| e.id).collect(),
        }
    }

    /// Records the metadata patches of journal step `id` for export.
    pub(crate) fn record_metadata(&self, id: u64, patches: Vec<config::MetadataPatch>) {
        self.recorded
            .lock()
            .extend(patches.into_iter().map(|p| Recorded {
                live: Live::Meta(id),
                patch: RecordedPatch::Meta(p),
            }));
    }

    /// Detaches the model (unsaved staged changes are discarded).
    pub fn detach(&self) -> Result<()> {
        if let Some(m) = self.model.write().take() {
            for (_, r) in &m.shards {
                self.engine.unmap_region(*r)?;
            }
        }
        *self.pinned.lock() = None;
        self.recorded.lock().clear();
        *self.base.lock() = None;
        self.protections.lock().clear();
        self.meta.clear();
        Ok(())
    }

    /// The attached model's region (its first shard's for a split model: the file whose
    /// header holds the model's metadata).
    pub fn region(&self) -> Result<RegionId> {
        self.model
            .read()
            .as_ref()
            .map(|m| m.shards[0].1)
            .ok_or(ManagerError::NotAttached)
    }

    /// The attached model's files with their regions, in shard order (one for a single-file
    /// model).
    pub fn shards(&self) -> Result<Vec<(PathBuf, RegionId)>> {
        self.model
            .read()
            .as_ref()
            .map(|m| m.shards.clone())
            .ok_or(ManagerError::NotAttached)
    }

    /// The attached model as opened: every file mapped read-only with its parsed index (the
    /// header as in the file; staged edits are read through [`Manager::tensors`]).
    pub fn model(&self) -> Result<Arc<GgufModel>> {
        self.model
            .read()
            .as_ref()
            .map(|m| m.file.clone())
            .ok_or(ManagerError::NotAttached)
    }

    /// Opens `path` read-only as the session's second model (model B of a diff), replacing
    /// the previous one. It stays attached when model A changes.
    pub fn attach_other(
        &self,
        path: impl AsRef<Path>,
    ) -> std::result::Result<Arc<OtherModel>, hotpatch_gguf::GgufError> {
        let p = path.as_ref();
        let other = Arc::new(OtherModel::from_model(p, GgufModel::open(p)?));
        *self.other.write() = Some(other.clone());
        Ok(other)
    }

    /// The second model, if one is attached.
    pub fn other(&self) -> Option<Arc<OtherModel>> {
        self.other.read().clone()
    }

    /// Closes the second model.
    pub fn detach_other(&self) {
        *self.other.write() = None;
    }

    /// Copies `select` of `tensor` from the second model into the attached one: one undo
    /// step, recorded (and exported) as a `lerp` with `t = 1` towards the second model's file.
    /// Same-type blocks arrive byte for byte; across types the values are re-encoded.
    pub fn copy_from_other(&self, tensor: &str, select: &Selection) -> Result<TransformReport> {
        let other = self.other().ok_or(ManagerError::NoOther)?;
        let path = other
            .path()
            .to_str()
            .ok_or_else(|| EngineError::InvalidArgument {
                what: "model B's path",
                why: format!(
                    "{} is not valid UTF-8 (a configuration could not name it)",
                    other.path().display()
                ),
            })?;
        let op = TransformOp::Lerp {
            model: path.to_string(),
            t: 1.0,
        };
        self.transform(tensor, select, &op)
    }

    /// The memory layer (memory of the attached model).
    pub fn memory(&self) -> Memory<'_> {
        self.engine.memory()
    }

    /// The bytes layer (bytes of any file).
    pub fn bytes(&self) -> Bytes<'_> {
        self.engine.bytes()
    }

    /// The tensor layer (tensors of the attached model).
    pub fn tensors(&self) -> Result<TensorLayer> {
        self.model
            .read()
            .as_ref()
            .map(|m| m.tensors.clone())
            .ok_or(ManagerError::NotAttached)
    }

    /// Re-reads the attached model's header into the tensor layer (after a byte edit of the
    /// header changed the tensor index, say). Fails when the header no longer parses.
    pub fn refresh_tensors(&self) -> Result<()> {
        let mut model = self.model.write();
        let attached = model.as_mut().ok_or(ManagerError::NotAttached)?;
        attached.tensors.refresh()?;
        Ok(())
    }

    /// The server layer (the proxy's settings).
    pub fn server(&self) -> ServerSettings {
        self.server.read().clone()
    }

    /// Replaces the proxy's settings.
    pub fn set_server(&self, s: ServerSettings) {
        *self.server.write() = s;
    }

    /// Whether `applySafetyFilters` turned the response filters on.
    pub fn response_filters_enabled(&self) -> bool {
        *self.response_filters_enabled.read()
    }

    // ----- recorded edits -------------------------------------------------------------------

    /// Sets one element (recorded for export).
    pub fn modify_weight(&self, tensor: &str, index: u64, value: f32) -> Result<WeightEdit> {
        let before = self.engine.history().last().map(|h| h.id);
        let edit = self.tensors()?.modify_weight(tensor, index, value)?;
        // The edit's own undo entry, if it changed anything (an edit to the same value
        // records nothing and is not exported).
        let change = self
            .engine
            .history()
            .last()
            .map(|h| h.id)
            .filter(|&id| Some(id) != before);
        self.recorded.lock().push(Recorded {
            live: Live::Engine(change),
            patch: RecordedPatch::Tensor(TensorPatch {
                tensor: tensor.to_string(),
                select: Selection::Elements {
                    indices: vec![index],
                },
                transform: TransformOp::Set { value },
            }),
        });
        Ok(edit)
    }

    /// What [`Manager::modify_weight`] would store, without changing anything (nothing is
    /// recorded).
    pub fn preview_weight(&self, tensor: &str, index: u64, value: f32) -> Result<WeightEdit> {
        Ok(self.tensors()?.preview_weight(tensor, index, value)?)
    }

    /// Transforms a selection of a tensor (recorded for export).
    pub fn transform(
        &self,
        tensor: &str,
        select: &Selection,
        op: &TransformOp,
    ) -> Result<TransformReport> {
        self.transform_with(tensor, select, op, &mut |_| true)
    }

    /// [`Manager::transform`] with progress (elements) and cancel (`progress` returns `false`:
    /// nothing is written, nothing recorded).
    pub fn transform_with(
        &self,
        tensor: &str,
        select: &Selection,
        op: &TransformOp,
        progress: crate::ProgressFn<'_>,
    ) -> Result<TransformReport> {
        // The second model when the lerp goes towards its file (a copy from B), else the file
        // opened for this transform.
        let other = match op {
            TransformOp::Lerp { model, .. } => Some(
                match self.other().filter(|o| o.path() == Path::new(model)) {
                    Some(o) => o,
                    None => Arc::new(OtherModel::open(model)?),
                },
            ),
            _ => None,
        };
        let rep = self
            .tensors()?
            .transform_with(tensor, select, op, other.as_deref(), progress)?;
        self.recorded.lock().push(Recorded {
            live: Live::Engine(rep.change),
            patch: RecordedPatch::Tensor(TensorPatch {
                tensor: tensor.to_string(),
                select: select.clone(),
                transform: op.clone(),
            }),
        });
        Ok(rep)
    }

    /// The region of file `shard` (0-based) of the attached model; an error names the number
    /// of files when there is no such shard.
    pub fn shard_region(&self, shard: u32) -> Result<RegionId> {
        let shards = self.shards()?;
        shards.get(shard as usize).map(|(_, r)| *r).ok_or_else(|| {
            EngineError::InvalidArgument {
                what: "shard",
                why: format!(
                    "file {} does not exist: the model has {} file(s)",
                    u64::from(shard) + 1,
                    shards.len()
                ),
            }
            .into()
        })
    }

    /// Writes raw bytes at an absolute offset of file `shard` of the model (0 for a single
    /// file; recorded for export with the original bytes it replaced).
    pub fn patch_bytes(&self, shard: u32, offset: u64, bytes: &[u8]) -> Result<()> {
        let region = self.shard_region(shard)?;
        let original = self.engine.read(region, offset, bytes.len() as u64)?;
        let applied = self.engine.memory().write(region, offset, bytes)?;
        let base_offset = self.base_offset(shard, offset, bytes.len() as u64);
        self.recorded.lock().push(Recorded {
            live: Live::Engine(applied.change),
            patch: RecordedPatch::Bytes(config::BytePatch {
                shard,
                offset: base_offset,
                original: config::HexBytes(original),
                patched: config::HexBytes(bytes.to_vec()),
                tensor: None,
            }),
        });
        Ok(())
    }

    /// Runs a byte operation on file `shard` of the attached model (0 for a single file)
    /// with the header guard on (see
    /// [`crate::Ops::keeping_gguf`]), attributed to `source`, and records for export each of
    /// `ranges` (absolute `(offset, len)`) whose bytes it changed, as a byte patch with the
    /// bytes before and after. `ranges` must cover every byte the operation may change. When a
    /// range touches the header, the tensor layer re-reads it.
    pub fn bytes_op(
        &self,
        shard: u32,
        source: &str,
        ranges: &[(u64, u64)],
        op: impl FnOnce(&Bytes<'_>, RegionId) -> Result<crate::Applied, EngineError>,
    ) -> Result<crate::Applied> {
        let region = self.shard_region(shard)?;
        let mut before = Vec::with_capacity(ranges.len());
        for &(offset, len) in ranges {
            before.push(self.engine.read(region, offset, len)?);
        }
        let bytes = self.engine.bytes().with_source(source).keeping_gguf();
        let applied = op(&bytes, region)?;
        let data_offset = self.engine.gguf(region).map_or(0, |i| i.data_offset);
        let mut changed = Vec::new();
        for (&(offset, len), original) in ranges.iter().zip(before) {
            let patched = self.engine.read(region, offset, len)?;
            if patched != original {
                changed.push((self.base_offset(shard, offset, len), original, patched));
            }
        }
        let mut recorded = self.recorded.lock();
        for (offset, original, patched) in changed {
            recorded.push(Recorded {
                live: Live::Engine(applied.change),
                patch: RecordedPatch::Bytes(config::BytePatch {
                    shard,
                    offset,
                    original: config::HexBytes(original),
                    patched: config::HexBytes(patched),
                    tensor: None,
                }),
            });
        }
        drop(recorded);
        if ranges.iter().any(|&(offset, _)| offset < data_offset) {
            self.refresh_tensors()?;
        }
        Ok(applied)
    }

    /// Makes a range of file `shard` of the attached model read-only for every layer
    /// (recorded for export, at the offset the model as first attached has); returns the
    /// protection id.
    pub fn protect_range(&self, shard: u32, offset: u64, len: u64) -> Result<u64> {
        let id = self.engine_protect(shard, offset, len)?;
        self.protections.lock().push(config::Protection::Range {
            shard,
            offset: self.base_offset(shard, offset, len),
            len,
        });
        Ok(id)
    }

    fn engine_protect(&self, shard: u32, offset: u64, len: u64) -> Result<u64> {
        let region = self.shard_region(shard)?;
        Ok(self
            .engine
            .bytes()
            .set_protection(region, offset, len, true)?
            .ok_or_else(|| EngineError::invalid("protection", "no id returned"))?)
    }

    /// Puts the recorded protections (in the coordinates of the model as first attached) in
    /// force again on the attached file, after a save attached it anew. A range in the header
    /// of a file whose header the save rewrote has no counterpart any more and is dropped.
    fn restore_protections(&self, recorded: Vec<config::Protection>) -> Result<()> {
        let layer = self.tensors()?;
        let mut kept = Vec::with_capacity(recorded.len());
        for p in recorded {
            match &p {
                config::Protection::Tensor { name } => {
                    for t in layer.matching(name) {
                        layer.lock(&t.name, None, false)?;
                    }
                }
                config::Protection::Range { shard, offset, len } => {
                    let Some(at) = self.current_offset(*shard, *offset, *len) else {
                        continue;
                    };
                    self.engine_protect(*shard, at, *len)?;
                }
            }
            kept.push(p);
        }
        *self.protections.lock() = kept;
        Ok(())
    }

    /// Removes every protection lying inside `offset..offset+len` of file `shard` of the
    /// attached model (and its export record); returns how many were removed.
    pub fn unprotect_range(&self, shard: u32, offset: u64, len: u64) -> Result<usize> {
        let region = self.shard_region(shard)?;
        let count = |e: &Engine| {
            e.protections()
                .iter()
                .filter(|p| p.region == region)
                .count()
        };
        let before = count(&self.engine);
        self.engine
            .bytes()
            .set_protection(region, offset, len, false)?;
        let offset = self.base_offset(shard, offset, len);
        let end = offset.saturating_add(len);
        self.protections.lock().retain(|p| match p {
            config::Protection::Range {
                shard: s,
                offset: o,
                len: l,
            } => !(*s == shard && *o >= offset && o.saturating_add(*l) <= end),
            config::Protection::Tensor { .. } => true,
        });
        Ok(before - count(&self.engine))
    }

    /// Locks a tensor (recorded for export).
    pub fn lock_tensor(&self, name: &str) -> Result<u64> {
        let id = self.tensors()?.lock(name, None, false)?;
        self.protections.lock().push(config::Protection::Tensor {
            name: name.to_string(),
        });
        Ok(id)
    }

    /// Removes every whole-tensor lock of `name` (made by [`Manager::lock_tensor`] or an
    /// imported configuration) and forgets it for export. Returns how many locks were removed.
    pub fn unlock_tensor(&self, name: &str) -> Result<usize> {
        let layer = self.tensors()?;
        let t = layer.tensor(name)?;
        let (start, end) = (t.offset, t.offset + t.nbytes);
        let reason = format!("tensor {name}");
        let ids: Vec<u64> = self
            .engine
            .protections()
            .into_iter()
            .filter(|p| p.region == layer.region_of(t) && p.start == start && p.end == end)
            .filter(|p| p.reason == reason)
            .map(|p| p.id)
            .collect();
        for &id in &ids {
            layer.unlock(id)?;
        }
        self.protections
            .lock()
            .retain(|p| !matches!(p, config::Protection::Tensor { name: n } if n == name));
        Ok(ids.len())
    }

    /// Whether a whole-tensor lock of `name` is in force.
    pub fn tensor_locked(&self, name: &str) -> Result<bool> {
        let layer = self.tensors()?;
        let t = layer.tensor(name)?;
        let reason = format!("tensor {name}");
        Ok(self.engine.protections().iter().any(|p| {
            p.region == layer.region_of(t)
                && p.start == t.offset
                && p.end == t.offset + t.nbytes
                && p.reason == reason
        }))
    }

    // ----- configurations -------------------------------------------------------------------

    /// The changes made through the manager that are still in effect (not undone, pending or
    /// saved): tensor edits, byte patches and metadata edits in the order they were made, the
    /// protections and the proxy settings, as one configuration for the model as first
    /// attached (its identity survives saves, so the recipe applies to a fresh copy).
    pub fn export_configuration(&self) -> Result<Configuration> {
        let layer = self.tensors()?;
        let identity = match &*self.base.lock() {
            Some(b) => b.identity.clone(),
            None => config::layer_identity(&layer),
        };
        let mut c = Configuration {
            model: Some(identity),
            ..Configuration::default()
        };
        let live = self.live_steps();
        for r in self.recorded.lock().iter() {
            if !live.contains(&r.live) {
                continue;
            }
            match &r.patch {
                RecordedPatch::Tensor(p) => c.tensor_patches.push(p.clone()),
                RecordedPatch::Bytes(b) => c.byte_patches.push(b.clone()),
                RecordedPatch::Meta(m) => c.metadata.push(m.clone()),
            }
        }
        c.protections = self.protections.lock().clone();
        let server = self.server();
        if server != ServerSettings::default() {
            c.server = Some(server);
        }
        c.version = c.required_version();
        Ok(c)
    }

    /// Parses a configuration and previews it against the attached model.
    pub fn import_configuration(&self, text: &str) -> Result<(Configuration, Preview)> {
        let c = Configuration::from_json(text)?;
        let p = self.preview_configuration(&c)?;
        Ok((c, p))
    }

    /// Previews a configuration against the attached model, its metadata section against the
    /// metadata as it will be saved (pending edits included). Changes nothing.
    pub fn preview_configuration(&self, c: &Configuration) -> Result<Preview> {
        self.preview_configuration_with(c, ApplyOptions::default())
    }

    /// [`Manager::preview_configuration`] with options (the explicit override that lets a
    /// configuration recorded on another model apply: [`ApplyOptions::allow_other_model`]).
    pub fn preview_configuration_with(
        &self,
        c: &Configuration,
        opts: ApplyOptions,
    ) -> Result<Preview> {
        let mut p = config::preview_with(c, &self.tensors()?, &self.staged_metadata()?, opts);
        // `split.*` keys describe how a split model is cut into files (as set_metadata says).
        if self.shards()?.len() > 1 {
            for i in p.items.iter_mut().filter(|i| {
                i.item.starts_with("metadata[")
                    && i.target.starts_with("split.")
                    && i.status == config::ItemStatus::WillChange
            }) {
                i.status = config::ItemStatus::Mismatch;
                i.detail =
                    "describes how this split model is cut into files; it cannot be edited".into();
            }
        }
        Ok(p)
    }

    /// Applies a configuration (after its preview) as one undo step: tensor and byte changes
    /// in one engine group, metadata edits staged (pending until Save) and joined to it; its
    /// server section replaces the proxy settings.
    pub fn apply_configuration(&self, c: &Configuration, source: &str) -> Result<ApplyReport> {
        self.apply_configuration_with(c, source, ApplyOptions::default())
    }

    /// [`Manager::apply_configuration`] with options (see
    /// [`Manager::preview_configuration_with`]).
    pub fn apply_configuration_with(
        &self,
        c: &Configuration,
        source: &str,
        opts: ApplyOptions,
    ) -> Result<ApplyReport> {
        let preview = self.preview_configuration_with(c, opts)?;
        if !preview.applicable() {
            return Err(ApplyError::Refused(preview).into());
        }
        let mut rep =
            config::apply_with(c, &self.tensors()?, source, &self.staged_metadata()?, opts)?;
        rep.metadata_step = self.stage_imported_metadata(&rep.metadata, rep.change);
        let mut rec = self.recorded.lock();
        for p in &c.tensor_patches {
            rec.push(Recorded {
                live: Live::Engine(rep.change),
                patch: RecordedPatch::Tensor(p.clone()),
            });
        }
        for b in &c.byte_patches {
            rec.push(Recorded {
                live: Live::Engine(rep.change),
                patch: RecordedPatch::Bytes(b.clone()),
            });
        }
        drop(rec);
        self.protections
            .lock()
            .extend(c.protections.iter().cloned());
        if let Some(s) = &c.server {
            self.set_server(s.clone());
        }
        Ok(rep)
    }

    /// Applies a preset across all layers as one undo group (`optimizeModel`).
    pub fn optimize_model(&self, preset: &Configuration) -> Result<OptimizeReport> {
        self.optimize_model_with(preset, ApplyOptions::default())
    }

    /// [`Manager::optimize_model`] with options (see [`Manager::preview_configuration_with`]).
    pub fn optimize_model_with(
        &self,
        preset: &Configuration,
        opts: ApplyOptions,
    ) -> Result<OptimizeReport> {
        let name = preset.name.clone().unwrap_or_else(|| "preset".into());
        let rep = self.apply_configuration_with(preset, &format!("preset {name}"), opts)?;
        if let Some(p) = &preset.performance {
            if p.response_cache {
                self.server.write().cache.enabled = true;
            }
        }
        let server = self.server();
        Ok(OptimizeReport {
            bytes: (rep.byte_patches_applied, rep.byte_patches_already_applied),
            tensors: rep.transforms,
            protections: rep.protections.len(),
            metadata_edits: rep.metadata.len(),
            server_rules: server.rules.len(),
            cache_enabled: server.cache.enabled,
            change: rep.change,
            preview: rep.preview,
        })
    }

    /// Scans every tensor for NaN, ±Inf, subnormals and (with a threshold) outliers; with
    /// `settings.repair`, replaces non-finite values, flushes subnormals to 0 and clamps
    /// outliers, as one undo group; turns the server section's response filters on.
    pub fn apply_safety_filters(&self, settings: &config::SafetySettings) -> Result<SafetyReport> {
        self.apply_safety_filters_with_progress(settings, &mut |_, _| true)
    }

    /// [`Manager::apply_safety_filters`] reporting `(bytes scanned, bytes in all)` as the scan
    /// goes. When `progress` returns false the scan stops: the report holds what was scanned
    /// so far with `canceled` set, and nothing is repaired nor turned on.
    pub fn apply_safety_filters_with_progress(
        &self,
        settings: &config::SafetySettings,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<SafetyReport> {
        let layer = self.tensors()?.with_source("safety filters");
        let query = ValueQuery {
            nan: true,
            inf: true,
            subnormal: true,
            above: settings.outlier_threshold,
        };
        let mut canceled = false;
        let scan = layer.search_values("*", &query, 1000, &mut |done, total| {
            let go_on = progress(done, total);
            canceled |= !go_on;
            go_on
        })?;
        if canceled {
            return Ok(SafetyReport {
                scan,
                repairs: Vec::new(),
                change: None,
                response_filters: 0,
                canceled: true,
            });
        }
        let mut repairs = Vec::new();
        let mut change = None;
        if settings.repair {
            let origin = crate::Origin::new(
                crate::Layer::Manager,
                crate::Operation::Other("safety_repair".into()),
                crate::Target::Region(layer.region()),
            );
            let g = self.engine.begin_group(origin);
            let result = (|| -> Result<(), TensorError> {
                for t in scan.tensors.iter().filter(|t| t.flagged()) {
                    if t.nan + t.inf > 0 {
                        repairs.push(layer.transform(
                            &t.tensor,
                            &Selection::All,
                            &TransformOp::ReplaceNonFinite {
                                value: settings.replacement,
                            },
                            None,
                        )?);
                    }
                    if let (Some(th), true) = (settings.outlier_threshold, t.outliers > 0) {
                        repairs.push(layer.transform(
                            &t.tensor,
                            &Selection::All,
                            &TransformOp::Clamp { min: -th, max: th },
                            None,
                        )?);
                    }
                    if t.subnormal > 0 {
                        let idx: Vec<u64> = scan
                            .hits
                            .iter()
                            .filter(|h| {
                                h.tensor == t.tensor
                                    && h.class == crate::tensor::ValueClass::Subnormal
                            })
                            .map(|h| h.index)
                            .collect();
                        if !idx.is_empty() {
                            repairs.push(layer.transform(
                                &t.tensor,
                                &Selection::Elements { indices: idx },
                                &TransformOp::Zero,
                                None,
                            )?);
                        }
                    }
                }
                Ok(())
            })();
            match result {
                Ok(()) => change = g.end()?,
                Err(e) => {
                    g.abort()?;
                    return Err(e.into());
                }
            }
        }
        let n = self.server.read().response_filters().count();
        if settings.response_filters {
            *self.response_filters_enabled.write() = true;
        }
        Ok(SafetyReport {
            scan,
            repairs,
            change,
            response_filters: if settings.response_filters { n } else { 0 },
            canceled: false,
        })
    }

    /// Prefetches the model's pages (and pins them with `lock`), reporting the resident
    /// fraction before and after, and turns on the response cache.
    pub fn boost_inference_speed(&self, lock: bool) -> Result<BoostReport> {
        let path = self
            .model
            .read()
            .as_ref()
            .map(|m| m.path.clone())
            .ok_or(ManagerError::NotAttached)?;
        let io = |source| ManagerError::Io {
            path: path.clone(),
            source,
        };
        let map = FileMap::open(&path).map_err(io)?;
        let before = residency::resident_fraction(&map);
        let prefetched = residency::prefetch(&map) as u64;
        let pinned = if lock {
            match Pinned::lock(&path) {
                Ok(p) => {
                    let n = p.len() as u64;
                    *self.pinned.lock() = Some(p);
                    Ok(n)
                }
                Err(e) => Err(format!("mlock failed: {e} (RLIMIT_MEMLOCK or privileges)")),
            }
        } else {
            Err("not requested".into())
        };
        let after = residency::resident_fraction(&map);
        self.server.write().cache.enabled = true;
        Ok(BoostReport {
            resident_before: before,
            resident_after: after,
            prefetched_bytes: prefetched,
            pinned,
            cache_enabled: true,
        })
    }

    // ----- presets ----------------------------------------------------------------------------

    /// Saves a configuration as a named preset in the first preset directory (the user's).
    pub fn save_preset(&self, name: &str, c: &Configuration) -> Result<PathBuf> {
        check_preset_name(name)?;
        let dir = self
            .preset_dirs
            .first()
            .ok_or_else(|| ManagerError::Preset {
                name: name.into(),
                why: "no preset directory".into(),
            })?;
        std::fs::create_dir_all(dir).map_err(|source| ManagerError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(format!("{name}.json"));
        let mut c = c.clone();
        c.name = Some(name.to_string());
        hotpatch_atomic::write(&path, (c.to_json() + "\n").as_bytes()).map_err(|e| {
            ManagerError::Io {
                path: e.path.clone(),
                source: e.into(),
            }
        })?;
        Ok(path)
    }

    /// Loads a named preset: the first directory holding `<name>.json` wins.
    pub fn load_preset(&self, name: &str) -> Result<Configuration> {
        check_preset_name(name)?;
        for d in &self.preset_dirs {
            let p = d.join(format!("{name}.json"));
            if p.is_file() {
                let text = std::fs::read_to_string(&p).map_err(|source| ManagerError::Io {
                    path: p.clone(),
                    source,
                })?;
                return Configuration::from_json(&text).map_err(|e| ManagerError::Preset {
                    name: name.into(),
                    why: format!("{}: {e}", p.display()),
                });
            }
        }
        if let Some((_, text)) = SHIPPED_PRESETS.iter().find(|(n, _)| *n == name) {
            return Configuration::from_json(text).map_err(|e| ManagerError::Preset {
                name: name.into(),
                why: format!("shipped preset: {e}"),
            });
        }
        Err(ManagerError::Preset {
            name: name.into(),
            why: format!(
                "not found in {:?} nor among the shipped presets",
                self.preset_dirs
            ),
        })
    }

    /// Names of the presets available (user's and shipped), sorted, without duplicates.
    pub fn list_presets(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .preset_dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(str::to_string)
            })
            .filter(|n| n != "schema" && !n.starts_with('.'))
            .chain(SHIPPED_PRESETS.iter().map(|(n, _)| n.to_string()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// The undo steps in effect, to filter recorded changes.
struct LiveSteps {
    engine: std::collections::HashSet<u64>,
    meta: std::collections::HashSet<u64>,
}

impl LiveSteps {
    fn contains(&self, l: &Live) -> bool {
        match *l {
            Live::Engine(c) => c.is_some_and(|id| self.engine.contains(&id)),
            Live::Meta(id) => self.meta.contains(&id),
            Live::Saved => true,
        }
    }
}

/// The presets shipped with hotpatch (`presets/` of the workspace), compiled into the binary: an
/// installed app or a build reused from another checkout has no workspace to read them from. A
/// user preset of the same name takes precedence.
pub const SHIPPED_PRESETS: &[(&str, &str)] = &[
    (
        "ablate-head",
        include_str!("../../../presets/ablate-head.json"),
    ),
    (
        "deterministic-assistant",
        include_str!("../../../presets/deterministic-assistant.json"),
    ),
    ("nan-scrub", include_str!("../../../presets/nan-scrub.json")),
    (
        "protect-embeddings",
        include_str!("../../../presets/protect-embeddings.json"),
    ),
    (
        "redact-secrets",
        include_str!("../../../presets/redact-secrets.json"),
    ),
    ("scale-ffn", include_str!("../../../presets/scale-ffn.json")),
];

fn check_preset_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ManagerError::Preset {
            name: name.into(),
            why: "names use letters, digits, '-' and '_' only".into(),
        })
    }
}
