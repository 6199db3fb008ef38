//! Import = preview, then apply as one undo group.
//!
//! [`preview`] checks every item of a configuration against the attached model without
//! changing anything: which tensors a patch matches and how many elements it selects, whether
//! a byte patch finds its expected original bytes (or is already applied), whether a protected
//! tensor exists; whether a metadata edit finds the value it expects (`current → new`, or
//! already applied); and whether the model is the one the configuration was recorded on (exact
//! fingerprint) or another quantization of it (shape fingerprint). A configuration recorded on
//! another model (its shape fingerprint differs) is a mismatch (item `model`) unless the user
//! overrides it explicitly ([`ApplyOptions::allow_other_model`]); a tensor or byte patch that a
//! protection of the same configuration covers is a mismatch too (the protection wins, the
//! conflict is reported instead of writing into a range the file says to lock). [`apply`]
//! refuses a configuration whose preview has a mismatch, then applies every tensor and byte change
//! inside one engine group and returns the metadata edits to stage; the
//! [`crate::manager::Manager`] stages them joined to that group, so a single undo reverts the
//! whole import.

use serde::Serialize;

use hotpatch_gguf::MetaValue;

use super::metadata::describe;
use super::{Configuration, MetadataPatch, ModelIdentity, Protection, TypedValue};
use crate::event::{Layer, Operation, Origin, Target};
use crate::tensor::{OtherModel, TensorError, TensorLayer, TransformOp, TransformReport};

/// What would happen to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// It will change the model (or lock it).
    WillChange,
    /// Already in the model (a byte patch whose patched bytes are there).
    AlreadyApplied,
    /// It does not fit this model (see the detail).
    Mismatch,
    /// Informational (server settings are applied by the proxy).
    Info,
}

/// One line of a preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewItem {
    /// Path of the item in the configuration (`tensor_patches[2]`).
    pub item: String,
    /// What it targets (a tensor name, `offset 0x1234`).
    pub target: String,
    /// What would happen.
    pub status: ItemStatus,
    /// Details: elements selected, bytes, or why it does not match.
    pub detail: String,
    /// For a metadata edit that will change the model: the value now and the value after,
    /// each in one short line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<ValueChange>,
}

/// A metadata value before and after an edit, each a short line (`UINT32 512`, `absent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueChange {
    /// The value the model holds now (with pending edits), or `absent`.
    pub from: String,
    /// The value after the edit, or `absent` for a removal.
    pub to: String,
    /// When both are UTF-8 strings: the whole text now, for a text diff (`from` is clipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_text: Option<String>,
    /// ... and the whole text after the edit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_text: Option<String>,
}

/// The whole text of a UTF-8 string value (`None` for other values).
fn whole_text(v: Option<&MetaValue>) -> Option<String> {
    match v {
        Some(MetaValue::String(s)) => std::str::from_utf8(s).ok().map(str::to_owned),
        _ => None,
    }
}

/// The preview of a configuration against a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// The configuration was recorded on this exact file layout (`None`: no model recorded).
    pub same_file: Option<bool>,
    /// The configuration was recorded on this model or another quantization of it.
    pub same_model: Option<bool>,
    /// One line per item.
    pub items: Vec<PreviewItem>,
}

impl Preview {
    /// Whether every item fits (nothing is a mismatch).
    pub fn applicable(&self) -> bool {
        self.items.iter().all(|i| i.status != ItemStatus::Mismatch)
    }

    /// The mismatching items.
    pub fn mismatches(&self) -> impl Iterator<Item = &PreviewItem> {
        self.items
            .iter()
            .filter(|i| i.status == ItemStatus::Mismatch)
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyReport {
    /// The preview it was applied after.
    pub preview: Preview,
    /// One report per tensor transformed.
    pub transforms: Vec<TransformReport>,
    /// Byte patches written.
    pub byte_patches_applied: usize,
    /// Byte patches skipped because already applied.
    pub byte_patches_already_applied: usize,
    /// Protection ids made.
    pub protections: Vec<u64>,
    /// The undo entry of the tensor and byte changes (`None` when none changed).
    pub change: Option<u64>,
    /// The metadata edits to stage (those not already in the model), in order.
    pub metadata: Vec<MetadataPatch>,
    /// Metadata edits skipped because the model already holds their value.
    pub metadata_already_applied: usize,
    /// The metadata journal step the manager staged them as (`None`: no metadata edit).
    pub metadata_step: Option<u64>,
}

/// How a configuration may be applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Apply a configuration recorded on another model (its shape fingerprint differs from
    /// this model's): the explicit override of `hotpatch apply --allow-other-model` and of the
    /// studio's "Apply to this model anyway". Without it such a configuration is refused.
    pub allow_other_model: bool,
}

/// Why an import was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The preview found items that do not fit this model; nothing was changed.
    #[error("configuration does not fit this model: {}", first_mismatch(.0))]
    Refused(Preview),
    /// A change failed; everything the import had changed was reverted.
    #[error("{0}")]
    Tensor(#[from] TensorError),
}

fn first_mismatch(p: &Preview) -> String {
    let n = p.mismatches().count();
    match p.mismatches().next() {
        Some(m) => format!(
            "{} ({}): {}{}",
            m.item,
            m.target,
            m.detail,
            if n > 1 {
                format!(" (and {} more)", n - 1)
            } else {
                String::new()
            }
        ),
        None => "no mismatch".into(),
    }
}

/// Checks a configuration against the model of `layer` without changing anything; metadata
/// edits are checked against the model's header as it is in the file.
pub fn preview(config: &Configuration, layer: &TensorLayer) -> Preview {
    let header: Vec<(String, MetaValue)> = layer
        .index()
        .metadata
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    preview_against(config, layer, &header)
}

/// What each metadata edit would do, applied in order to `current` (the metadata as it will be
/// saved): one item per edit, and the edits that will change something.
fn metadata_items(
    patches: &[MetadataPatch],
    current: &[(String, MetaValue)],
) -> (Vec<PreviewItem>, Vec<MetadataPatch>) {
    let mut state: Vec<(String, MetaValue)> = current.to_vec();
    let (mut items, mut changes) = (Vec::new(), Vec::new());
    let same = |a: Option<&MetaValue>, b: Option<&TypedValue>| match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => TypedValue::same(x, &y.0),
        _ => false,
    };
    for (i, p) in patches.iter().enumerate() {
        let found = state.iter().find(|(k, _)| *k == p.key).map(|(_, v)| v);
        let new = p.patched.as_ref().map(|v| &v.0);
        let (status, detail) = if same(found, p.patched.as_ref()) {
            (
                ItemStatus::AlreadyApplied,
                format!("already {}", describe(found)),
            )
        } else if same(found, p.original.as_ref()) {
            changes.push(p.clone());
            (
                ItemStatus::WillChange,
                format!("{} → {}", describe(found), describe(new)),
            )
        } else {
            (
                ItemStatus::Mismatch,
                format!(
                    "expected {} but the model holds {}",
                    describe(p.original.as_ref().map(|v| &v.0)),
                    describe(found)
                ),
            )
        };
        let values = (status == ItemStatus::WillChange).then(|| {
            let (from_text, to_text) = match (whole_text(found), whole_text(new)) {
                (Some(a), Some(b)) => (Some(a), Some(b)),
                _ => (None, None),
            };
            ValueChange {
                from: describe(found),
                to: describe(new),
                from_text,
                to_text,
            }
        });
        items.push(PreviewItem {
            item: format!("metadata[{i}]"),
            target: p.key.clone(),
            status,
            detail,
            values,
        });
        // Later edits were recorded after this one: check them against its result.
        match new {
            Some(v) => match state.iter_mut().find(|(k, _)| *k == p.key) {
                Some(slot) => slot.1 = v.clone(),
                None => state.push((p.key.clone(), v.clone())),
            },
            None => state.retain(|(k, _)| *k != p.key),
        }
    }
    (items, changes)
}

/// [`preview`] with the metadata section checked against `metadata`, the model's metadata as
/// it will be saved (the header with a session's pending edits applied).
pub fn preview_against(
    config: &Configuration,
    layer: &TensorLayer,
    metadata: &[(String, MetaValue)],
) -> Preview {
    preview_with(config, layer, metadata, ApplyOptions::default())
}

/// One line naming a model identity: `smol.gguf: llama, 272 tensors`.
fn describe_identity(m: &ModelIdentity) -> String {
    format!(
        "{}{}, {} tensors",
        m.file_name
            .as_deref()
            .map(|f| format!("{f}: "))
            .unwrap_or_default(),
        m.architecture.as_deref().unwrap_or("no architecture"),
        m.tensor_count,
    )
}

/// The `model` item: whether the configuration was recorded on this model.
fn model_item(recorded: &ModelIdentity, here: &ModelIdentity, opts: ApplyOptions) -> PreviewItem {
    let (status, detail) = if opts.allow_other_model {
        (
            ItemStatus::Info,
            format!(
                "recorded on another model ({}); this one is {}; applied anyway, as asked",
                describe_identity(recorded),
                describe_identity(here)
            ),
        )
    } else {
        (
            ItemStatus::Mismatch,
            format!(
                "recorded on another model ({}; this one is {}): applied only with an explicit \
                 override",
                describe_identity(recorded),
                describe_identity(here)
            ),
        )
    };
    PreviewItem {
        item: "model".into(),
        target: recorded
            .file_name
            .clone()
            .unwrap_or_else(|| "recorded model".into()),
        status,
        detail,
        values: None,
    }
}

/// Whether byte range `a..a+alen` and `b..b+blen` overlap.
fn overlaps(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    a < b.saturating_add(blen) && b < a.saturating_add(alen)
}

/// The first protection of `config` covering tensor `t` (by name, or a range over its data).
fn protection_of_tensor(config: &Configuration, t: &hotpatch_gguf::TensorInfo) -> Option<usize> {
    config.protections.iter().position(|p| match p {
        Protection::Tensor { name } => crate::tensor::glob_match(name, &t.name),
        Protection::Range { shard, offset, len } => {
            *shard as usize == t.shard && overlaps(*offset, *len, t.offset, t.nbytes)
        }
    })
}

/// The first protection of `config` covering a byte patch of file `shard`, or the tensor it
/// lies in.
fn protection_of_bytes(
    config: &Configuration,
    layer: &TensorLayer,
    shard: u32,
    offset: u64,
    len: u64,
) -> Option<usize> {
    config.protections.iter().position(|p| match p {
        Protection::Range {
            shard: s,
            offset: o,
            len: l,
        } => *s == shard && overlaps(*o, *l, offset, len),
        Protection::Tensor { name } => layer
            .matching(name)
            .iter()
            .any(|t| t.shard == shard as usize && overlaps(t.offset, t.nbytes, offset, len)),
    })
}

fn conflict_detail(j: usize) -> String {
    format!(
        "protections[{j}] of this configuration locks it: the protection wins (remove the patch \
         or the protection)"
    )
}

/// [`preview_against`] with options: [`ApplyOptions::allow_other_model`] turns the `model`
/// mismatch of a configuration recorded on another model into an informational line.
pub fn preview_with(
    config: &Configuration,
    layer: &TensorLayer,
    metadata: &[(String, MetaValue)],
    opts: ApplyOptions,
) -> Preview {
    let (mut same_file, mut same_model) = (None, None);
    let mut items = Vec::new();
    if let Some(m) = &config.model {
        let here = layer_identity(layer);
        same_file = Some(here.fingerprint == m.fingerprint);
        same_model = Some(here.shape_fingerprint == m.shape_fingerprint);
        if same_model == Some(false) {
            items.push(model_item(m, &here, opts));
        }
    }
    for (i, op) in config.surgery.iter().enumerate() {
        // Surgery makes a new file; applying to the attached model in place cannot do it.
        items.push(PreviewItem {
            item: format!("surgery[{i}]"),
            target: op.name().into(),
            status: ItemStatus::Mismatch,
            detail: "surgery writes a new file: run it with `hotpatch apply CONFIG MODEL --out FILE` or the Surgery screen".into(),
            values: None,
        });
    }
    for (i, p) in config.tensor_patches.iter().enumerate() {
        let item = format!("tensor_patches[{i}]");
        let matched = layer.matching(&p.tensor);
        if matched.is_empty() {
            items.push(PreviewItem {
                item,
                target: p.tensor.clone(),
                status: ItemStatus::Mismatch,
                detail: "no tensor of this model matches".into(),
                values: None,
            });
            continue;
        }
        if let TransformOp::Lerp { model, .. } = &p.transform {
            if let Err(e) = OtherModel::open(model) {
                items.push(PreviewItem {
                    item,
                    target: p.tensor.clone(),
                    status: ItemStatus::Mismatch,
                    detail: e.to_string(),
                    values: None,
                });
                continue;
            }
        }
        for t in matched {
            if let Some(j) = protection_of_tensor(config, t) {
                items.push(PreviewItem {
                    item: item.clone(),
                    target: t.name.clone(),
                    status: ItemStatus::Mismatch,
                    detail: conflict_detail(j),
                    values: None,
                });
                continue;
            }
            let resolved = p.select.resolve(&t.name, &t.dims, layer.heads());
            let (status, detail) = match resolved {
                Ok(r) => match layer.extract(&t.name, Some(0..0)) {
                    Ok(_) => (
                        ItemStatus::WillChange,
                        format!(
                            "{} {} elements ({})",
                            p.transform.name(),
                            crate::tensor::count(&r),
                            t.ty
                        ),
                    ),
                    Err(e) => (ItemStatus::Mismatch, e.to_string()),
                },
                Err(e) => (ItemStatus::Mismatch, e.to_string()),
            };
            items.push(PreviewItem {
                item: item.clone(),
                target: t.name.clone(),
                status,
                detail,
                values: None,
            });
        }
    }
    for (i, b) in config.byte_patches.iter().enumerate() {
        let item = format!("byte_patches[{i}]");
        let target = match layer.regions().len() {
            1 => format!("offset {:#x}", b.offset),
            n => format!(
                "file {} of {n}, offset {:#x}",
                u64::from(b.shard) + 1,
                b.offset
            ),
        };
        let len = b.original.0.len() as u64;
        let found = layer
            .shard_region(b.shard)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                layer
                    .engine()
                    .read(r, b.offset, len)
                    .map_err(|e| e.to_string())
            });
        let conflict = protection_of_bytes(config, layer, b.shard, b.offset, len);
        let breaks = || -> Option<String> {
            let region = layer.shard_region(b.shard).ok()?;
            let patch = crate::engine::Patch::new(region, b.offset, b.patched.0.clone());
            layer
                .engine()
                .view(|v| crate::structure::check_header_kept(v, &[patch]))
                .err()
                .map(|e| e.to_string())
        };
        let (status, detail) = match found {
            Err(e) => (ItemStatus::Mismatch, e),
            Ok(_) if conflict.is_some() => (
                ItemStatus::Mismatch,
                conflict_detail(conflict.unwrap_or_default()),
            ),
            Ok(f) if f == b.original.0 && b.offset < header_end(layer, b.shard) => match breaks() {
                Some(why) => (ItemStatus::Mismatch, why),
                None => (ItemStatus::WillChange, format!("{len} bytes")),
            },
            Ok(f) if f == b.original.0 => (ItemStatus::WillChange, format!("{len} bytes")),
            Ok(f) if f == b.patched.0 => (
                ItemStatus::AlreadyApplied,
                format!("{len} bytes already hold the patched value"),
            ),
            Ok(f) => (
                ItemStatus::Mismatch,
                format!(
                    "expected {} but the model holds {}",
                    super::to_hex(&b.original.0),
                    super::to_hex(&f)
                ),
            ),
        };
        items.push(PreviewItem {
            item,
            target,
            status,
            detail,
            values: None,
        });
    }
    for (i, p) in config.protections.iter().enumerate() {
        let item = format!("protections[{i}]");
        match p {
            Protection::Tensor { name } => {
                let n = layer.matching(name).len();
                items.push(PreviewItem {
                    item,
                    target: name.clone(),
                    status: if n > 0 {
                        ItemStatus::WillChange
                    } else {
                        ItemStatus::Mismatch
                    },
                    detail: if n > 0 {
                        format!("lock {n} tensor(s)")
                    } else {
                        "no tensor of this model matches".into()
                    },
                    values: None,
                });
            }
            Protection::Range { shard, offset, len } => {
                let ok = layer.shard_region(*shard).is_ok_and(|r| {
                    let e = layer.engine();
                    e.read(r, *offset, (*len).min(1)).is_ok()
                        && e.read(r, offset + len - 1, 1).is_ok()
                });
                items.push(PreviewItem {
                    item,
                    target: format!("offset {offset:#x}+{len}"),
                    status: if ok {
                        ItemStatus::WillChange
                    } else {
                        ItemStatus::Mismatch
                    },
                    detail: if ok {
                        "lock range".into()
                    } else {
                        "range is outside the model".into()
                    },
                    values: None,
                });
            }
        }
    }
    items.extend(metadata_items(&config.metadata, metadata).0);
    if let Some(s) = &config.server {
        items.push(PreviewItem {
            item: "server".into(),
            target: "proxy".into(),
            status: ItemStatus::Info,
            detail: format!(
                "{} rule(s), cache {}",
                s.rules.len(),
                if s.cache.enabled { "on" } else { "off" }
            ),
            values: None,
        });
    }
    Preview {
        same_file,
        same_model,
        items,
    }
}

/// Where tensor data starts in file `shard` of the model (0 when it has no index).
fn header_end(layer: &TensorLayer, shard: u32) -> u64 {
    layer
        .shard_region(shard)
        .ok()
        .and_then(|r| layer.engine().gguf(r).ok())
        .map_or(0, |i| i.data_offset)
}

/// The identity of the model attached to `layer`.
pub fn layer_identity(layer: &TensorLayer) -> ModelIdentity {
    let engine = layer.engine();
    let headers: Vec<Vec<u8>> = layer
        .regions()
        .iter()
        .map(|&r| {
            let end = engine.gguf(r).map_or(0, |i| i.data_offset);
            engine.read(r, 0, end).unwrap_or_default()
        })
        .collect();
    let headers: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
    let name = layer
        .engine()
        .region_info(layer.region())
        .ok()
        .and_then(|i| i.path.file_name().map(|n| n.to_string_lossy().into_owned()));
    ModelIdentity::of(layer.index(), &headers, name)
}

/// Previews (metadata against `metadata`, the metadata as it will be saved), refuses on
/// mismatch, then applies every tensor and byte change as one undo group. Metadata edits are
/// not staged here (the journal belongs to the manager): the ones that change something are
/// returned in [`ApplyReport::metadata`], for [`crate::manager::Manager::apply_configuration`]
/// to stage as part of the same undo step.
pub fn apply(
    config: &Configuration,
    layer: &TensorLayer,
    source: &str,
    metadata: &[(String, MetaValue)],
) -> Result<ApplyReport, ApplyError> {
    apply_with(config, layer, source, metadata, ApplyOptions::default())
}

/// [`apply`] with options (see [`preview_with`]).
pub fn apply_with(
    config: &Configuration,
    layer: &TensorLayer,
    source: &str,
    metadata: &[(String, MetaValue)],
    opts: ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    let preview = preview_with(config, layer, metadata, opts);
    if !preview.applicable() {
        return Err(ApplyError::Refused(preview));
    }
    let (_, meta_changes) = metadata_items(&config.metadata, metadata);
    let layer = layer.clone().with_source(source.to_string());
    let engine = layer.engine().clone();
    let origin = Origin::new(
        Layer::Manager,
        Operation::Other("import_configuration".into()),
        Target::Region(layer.region()),
    )
    .with_source(source.to_string());
    let mut report = ApplyReport {
        preview,
        transforms: Vec::new(),
        byte_patches_applied: 0,
        byte_patches_already_applied: 0,
        protections: Vec::new(),
        change: None,
        metadata_already_applied: config.metadata.len() - meta_changes.len(),
        metadata: meta_changes,
        metadata_step: None,
    };
    let group = engine.begin_group(origin);
    let result = (|| -> Result<(), TensorError> {
        for p in &config.tensor_patches {
            let other = match &p.transform {
                TransformOp::Lerp { model, .. } => Some(OtherModel::open(model)?),
                _ => None,
            };
            let names: Vec<String> = layer
                .matching(&p.tensor)
                .iter()
                .map(|t| t.name.clone())
                .collect();
            for name in names {
                report.transforms.push(layer.transform(
                    &name,
                    &p.select,
                    &p.transform,
                    other.as_ref(),
                )?);
            }
        }
        for b in &config.byte_patches {
            let region = layer.shard_region(b.shard)?;
            let here = engine.read(region, b.offset, b.original.0.len() as u64)?;
            if here == b.patched.0 {
                report.byte_patches_already_applied += 1;
                continue;
            }
            layer.apply_memory_patch(b.shard, b.offset, &b.original.0, &b.patched.0)?;
            report.byte_patches_applied += 1;
        }
        Ok(())
    })();
    match result {
        Ok(()) => report.change = group.end().map_err(TensorError::from)?,
        Err(e) => {
            group.abort().map_err(TensorError::from)?;
            return Err(e.into());
        }
    }
    for p in &config.protections {
        match p {
            Protection::Tensor { name } => {
                let names: Vec<String> = layer
                    .matching(name)
                    .iter()
                    .map(|t| t.name.clone())
                    .collect();
                for n in names {
                    report.protections.push(layer.lock(&n, None, false)?);
                }
            }
            Protection::Range { shard, offset, len } => {
                let region = layer.shard_region(*shard)?;
                report.protections.push(
                    engine
                        .protect(region, *offset, *len, "configuration", false)
                        .map_err(TensorError::from)?,
                );
            }
        }
    }
    Ok(report)
}
