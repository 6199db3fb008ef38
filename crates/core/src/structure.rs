//! The GGUF structure of a region: which bytes are the header, each metadata entry, each
//! tensor info, padding, and each tensor's data — the labels the bytes layer's hex view shows over the
//! bytes, and the tensor ranges that tensor locks protect.
//!
//! A region opened on a whole file that starts with the GGUF magic is parsed at open
//! ([`hotpatch_gguf::parse`], O(header)) and re-parsed whenever a write touches the header, so
//! the labels follow byte edits. A file that is not GGUF (or a broken one) still opens:
//! the bytes layer works on any bytes; [`crate::Engine::gguf`] then explains why there is no index.

use std::sync::Arc;

use hotpatch_gguf::{GgufIndex, TensorType};

use crate::engine::{Engine, Patch, RegionId, View};
use crate::error::{EngineError, Result};

/// What a span of bytes is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpanKind {
    /// Magic, version, tensor count, metadata count.
    Header,
    /// One metadata entry (key, type, value).
    Metadata {
        /// The key.
        key: String,
    },
    /// One tensor info (name, dims, type, offset).
    TensorInfo {
        /// Tensor name.
        name: String,
    },
    /// Alignment padding.
    Padding,
    /// One tensor's data.
    TensorData {
        /// Tensor name.
        name: String,
        /// Type name (e.g. "Q4_K"), or "type N" for an unknown id.
        ty: String,
    },
    /// Bytes after the last tensor.
    Trailing,
}

/// A labelled byte range `[start, end)` (absolute file offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Start.
    pub start: u64,
    /// End, exclusive.
    pub end: u64,
    /// What it is.
    pub kind: SpanKind,
}

/// The name of a tensor type for display.
pub fn type_name(ty: TensorType) -> String {
    match ty {
        TensorType::Known(t) => t.name().to_string(),
        TensorType::Unknown(id) => format!("type {id}"),
    }
}

/// Labels every byte of a GGUF file described by `index`, in order, gaps as padding.
pub fn layout(index: &GgufIndex) -> Vec<Span> {
    let mut spans = Vec::with_capacity(1 + index.metadata.len() + 2 * index.tensors.len());
    spans.push(Span {
        start: 0,
        end: 24.min(index.file_size),
        kind: SpanKind::Header,
    });
    for m in &index.metadata {
        spans.push(Span {
            start: m.offset,
            end: m.value_offset + m.value_len,
            kind: SpanKind::Metadata { key: m.key.clone() },
        });
    }
    for t in &index.tensors {
        let len = 8 + t.name.len() as u64 + 4 + 8 * t.dims.len() as u64 + 4 + 8;
        spans.push(Span {
            start: t.info_offset,
            end: t.info_offset + len,
            kind: SpanKind::TensorInfo {
                name: t.name.clone(),
            },
        });
    }
    for t in &index.tensors {
        spans.push(Span {
            start: t.offset,
            end: t.offset + t.nbytes,
            kind: SpanKind::TensorData {
                name: t.name.clone(),
                ty: type_name(t.ty),
            },
        });
    }
    spans.sort_by_key(|s| (s.start, s.end));
    let mut out = Vec::with_capacity(spans.len() * 2);
    let mut pos = 0u64;
    for s in spans {
        if s.start > pos {
            out.push(Span {
                start: pos,
                end: s.start,
                kind: SpanKind::Padding,
            });
        }
        pos = pos.max(s.end);
        out.push(s);
    }
    if pos < index.file_size {
        out.push(Span {
            start: pos,
            end: index.file_size,
            kind: SpanKind::Trailing,
        });
    }
    out
}

/// Largest header copy the guard parses (a header edit that makes the header claim more
/// than this is refused rather than checked over a copy of the whole file).
const MAX_GUARD_PREFIX: u64 = 256 << 20;

/// The header guard: refuses `patches` when they touch the header of a region that holds a
/// valid GGUF file and the edited header would no longer parse (checked on a copy of the
/// header with the patches applied, O(header)). Regions without a valid index (plain files,
/// windows, already broken headers) pass unchecked.
pub fn check_header_kept(v: &View<'_>, patches: &[Patch]) -> Result<()> {
    let mut regions: Vec<RegionId> = patches.iter().map(|p| p.region).collect();
    regions.sort();
    regions.dedup();
    for region in regions {
        let Ok(index) = v.gguf(region) else {
            continue;
        };
        let ours = || patches.iter().filter(move |p| p.region == region);
        let Some(first) = ours()
            .filter(|p| p.offset < index.data_offset && !p.bytes.is_empty())
            .map(|p| p.offset)
            .min()
        else {
            continue;
        };
        let file_len = v.len(region)?;
        // Start with the current header; grow the copy while the edited header claims more.
        let mut prefix_len = index.data_offset.min(file_len);
        loop {
            let mut prefix = v.bytes(region, 0, prefix_len)?.to_vec();
            for p in ours() {
                let end = p.offset.saturating_add(p.bytes.len() as u64);
                if p.offset >= prefix_len || end <= p.offset {
                    continue;
                }
                let upto = end.min(prefix_len);
                prefix[p.offset as usize..upto as usize]
                    .copy_from_slice(&p.bytes[..(upto - p.offset) as usize]);
            }
            match hotpatch_gguf::parse_header(&prefix, file_len) {
                Ok(_) => break,
                Err(hotpatch_gguf::GgufError::Truncated { .. })
                    if prefix_len < file_len && prefix_len < MAX_GUARD_PREFIX =>
                {
                    prefix_len = prefix_len
                        .saturating_mul(2)
                        .max(4096)
                        .min(file_len)
                        .min(MAX_GUARD_PREFIX);
                }
                Err(e) => {
                    return Err(EngineError::BreaksGguf {
                        region,
                        offset: first,
                        message: e.to_string(),
                    })
                }
            }
        }
    }
    Ok(())
}

impl Engine {
    /// The GGUF index of a region (a whole GGUF file), or why there is none.
    pub fn gguf(&self, region: RegionId) -> Result<Arc<GgufIndex>> {
        self.view(|v| v.gguf(region))
    }

    /// Every labelled span of a GGUF region (see [`layout`]).
    pub fn structure(&self, region: RegionId) -> Result<Vec<Span>> {
        Ok(layout(&*self.gguf(region)?))
    }

    /// The spans overlapping `offset..offset+len` (what a hex view window shows).
    pub fn spans_in(&self, region: RegionId, offset: u64, len: u64) -> Result<Vec<Span>> {
        let all = self.structure(region)?;
        let end = offset.saturating_add(len);
        let first = all.partition_point(|s| s.end <= offset);
        Ok(all[first..]
            .iter()
            .take_while(|s| s.start < end)
            .cloned()
            .collect())
    }

    /// The absolute byte range `(offset, len)` of a tensor's data.
    pub fn tensor_span(&self, region: RegionId, name: &str) -> Result<(u64, u64)> {
        let index = self.gguf(region)?;
        let t = index
            .tensor(name)
            .ok_or_else(|| EngineError::NoSuchTensor {
                region,
                name: name.to_string(),
            })?;
        Ok((t.offset, t.nbytes))
    }

    /// Locks a tensor against changes from every layer (`lockMemoryRegion` on a tensor);
    /// its whole pages are also page-protected. Returns the protection id.
    pub fn lock_tensor(&self, region: RegionId, name: &str) -> Result<u64> {
        let (offset, len) = self.tensor_span(region, name)?;
        self.protect(
            region,
            offset,
            len,
            format!("tensor {name} is locked"),
            true,
        )
    }

    /// Removes every lock on a tensor; returns how many were removed.
    pub fn unlock_tensor(&self, region: RegionId, name: &str) -> Result<usize> {
        let reason = format!("tensor {name} is locked");
        let ids: Vec<u64> = self
            .protections()
            .into_iter()
            .filter(|p| p.region == region && p.reason == reason)
            .map(|p| p.id)
            .collect();
        for id in &ids {
            self.unprotect(*id)?;
        }
        Ok(ids.len())
    }
}
