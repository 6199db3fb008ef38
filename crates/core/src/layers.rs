//! The memory layer (the attached model's bytes by offset) and the bytes layer (raw bytes of
//! any file), over the engine.
//!
//! Both are thin: each operation computes its new bytes with [`crate::ops`] under the write
//! lock and applies them through [`Engine::apply_computed`] (validated first, journaled,
//! undoable, one event tagged with the layer). [`Engine::memory`] addresses the attached
//! model's mapped regions; [`Engine::bytes`] is the same machinery for any file, header
//! included (a plain file opened as a region without a GGUF index), plus the byte-level
//! transforms (XOR key, bit operations, rotations, reversals) and cross-file comparison.

use std::path::Path;
use std::sync::Arc;

use crate::engine::{Applied, Engine, OpenOptions, Patch, RegionId};
use crate::error::{EngineError, Result};
use crate::event::{Layer, Operation, Origin, Target};
use crate::image::{Mode, Progress, ProgressFn, SaveReport};
use crate::ops::{self, BitOp, Comparison, Pattern};

/// A bounds-checked handle to bytes of a region: what crosses IPC instead of a raw pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pointer {
    /// The region.
    pub region: RegionId,
    /// Region-relative offset.
    pub offset: u64,
    /// Length.
    pub len: u64,
    /// The address in this process (for display; never dereferenced from outside).
    pub address: usize,
}

/// One search hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    /// The region.
    pub region: RegionId,
    /// Region-relative offset of the first byte.
    pub offset: u64,
}

/// Where to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every mapped region.
    All,
    /// One whole region.
    Region(RegionId),
    /// A range of one region.
    Range(RegionId, u64, u64),
}

/// Operations of one layer: the memory layer is [`Engine::memory`], the bytes layer [`Engine::bytes`].
#[derive(Clone)]
pub struct Ops<'e> {
    engine: &'e Engine,
    layer: Layer,
    source: Option<Arc<str>>,
    keep_gguf: bool,
}

/// The memory layer.
pub type Memory<'e> = Ops<'e>;
/// The bytes layer.
pub type Bytes<'e> = Ops<'e>;

impl Engine {
    /// The memory layer: the attached model's memory.
    pub fn memory(&self) -> Memory<'_> {
        Ops {
            engine: self,
            layer: Layer::Memory,
            source: None,
            keep_gguf: false,
        }
    }

    /// The bytes layer: raw bytes of any file.
    pub fn bytes(&self) -> Bytes<'_> {
        Ops {
            engine: self,
            layer: Layer::Bytes,
            source: None,
            keep_gguf: false,
        }
    }
}

const SEARCH_CHUNK: usize = 64 << 20;

impl<'e> Ops<'e> {
    /// The same layer, with every change attributed to `source` (e.g. "ui", a preset name).
    pub fn with_source(mut self, source: impl Into<Arc<str>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The same layer with the header guard on: a write that touches the header of a region
    /// holding a valid GGUF file and would leave that header unparseable is refused with
    /// [`EngineError::BreaksGguf`] before any byte changes (see
    /// [`crate::structure::check_header_kept`]). Edits that keep the header valid pass.
    pub fn keeping_gguf(mut self) -> Self {
        self.keep_gguf = true;
        self
    }

    /// The engine underneath.
    pub fn engine(&self) -> &'e Engine {
        self.engine
    }

    /// Applies the patches `f` computes under the write lock, through the header guard when
    /// it is on.
    fn commit(
        &self,
        origin: Origin,
        f: impl FnOnce(&crate::engine::View<'_>) -> Result<Vec<Patch>>,
    ) -> Result<Applied> {
        let keep = self.keep_gguf;
        self.engine.apply_computed(origin, |v| {
            let patches = f(v)?;
            if keep {
                crate::structure::check_header_kept(v, &patches)?;
            }
            Ok(patches)
        })
    }

    fn origin(&self, operation: Operation, target: Target) -> Origin {
        Origin {
            layer: self.layer,
            operation,
            target,
            source: self.source.clone(),
        }
    }

    fn range_origin(
        &self,
        operation: Operation,
        region: RegionId,
        offset: u64,
        len: u64,
    ) -> Origin {
        self.origin(
            operation,
            Target::Range {
                region,
                offset,
                len,
            },
        )
    }

    /// Computes new bytes of a range from its current bytes and applies them.
    fn transform(
        &self,
        operation: Operation,
        region: RegionId,
        offset: u64,
        len: u64,
        f: impl FnOnce(&mut [u8]) -> Result<()>,
    ) -> Result<Applied> {
        let origin = self.range_origin(operation, region, offset, len);
        self.commit(origin, |v| {
            v.check_writable(region, offset, len)?;
            let mut buf = v.bytes(region, offset, len)?.to_vec();
            f(&mut buf)?;
            Ok(vec![Patch {
                region,
                offset,
                bytes: buf,
            }])
        })
    }

    // ----- files and regions ----------------------------------------------------------------

    /// Loads a file (any file, header included) as a staged region (`loadModel`).
    pub fn load(&self, path: impl AsRef<Path>) -> Result<RegionId> {
        self.engine.open(path, Mode::Staged)
    }

    /// Maps a window of a file as an extra region (`memoryMapRegion`).
    pub fn map_region(
        &self,
        path: impl AsRef<Path>,
        offset: u64,
        len: u64,
        mode: Mode,
    ) -> Result<RegionId> {
        self.engine.map_region(
            path,
            mode,
            OpenOptions {
                window: Some((offset, len)),
                ..OpenOptions::default()
            },
        )
    }

    /// Unmaps a region (`unmapMemoryRegion`).
    pub fn unmap_region(&self, region: RegionId) -> Result<()> {
        self.engine.unmap_region(region)
    }

    /// Saves changed ranges in place, crash-safe (`saveModel`).
    pub fn save(&self, region: RegionId, progress: ProgressFn<'_>) -> Result<SaveReport> {
        self.engine.save(region, progress)
    }

    /// Writes a whole copy atomically (`saveModel` to a new path).
    pub fn save_as(
        &self,
        region: RegionId,
        dest: impl AsRef<Path>,
        progress: ProgressFn<'_>,
    ) -> Result<u64> {
        self.engine.save_as(region, dest, progress)
    }

    // ----- reading ----------------------------------------------------------------------

    /// A bounds-checked handle to a range (`getDirectMemoryPointer` / `getDirectPointer`).
    /// Rust callers wanting the bytes use [`Engine::with_bytes`] (a `&[u8]` under the lock) or
    /// [`Engine::update`] (a journaled `&mut [u8]`).
    pub fn pointer(&self, region: RegionId, offset: u64, len: u64) -> Result<Pointer> {
        self.engine.with_bytes(region, offset, len, |b| Pointer {
            region,
            offset,
            len,
            address: b.as_ptr() as usize,
        })
    }

    /// Reads bytes (`directMemoryRead` / `directRead`).
    pub fn read(&self, region: RegionId, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.engine.read(region, offset, len)
    }

    /// The absolute offset of `offset..offset+len` inside tensor `name`'s data.
    pub fn tensor_offset(
        &self,
        region: RegionId,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<u64> {
        let (start, nbytes) = self.engine.tensor_span(region, name)?;
        match offset.checked_add(len) {
            Some(end) if end <= nbytes => Ok(start + offset),
            _ => Err(EngineError::OutsideTensor {
                name: name.to_string(),
                offset,
                len,
                nbytes,
            }),
        }
    }

    /// Reads bytes of a tensor's data, addressed as (tensor, byte offset).
    pub fn read_tensor(
        &self,
        region: RegionId,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        let at = self.tensor_offset(region, name, offset, len)?;
        self.engine.read(region, at, len)
    }

    /// Writes bytes into a tensor's data, addressed as (tensor, byte offset); the event's
    /// target names the tensor.
    pub fn write_tensor(
        &self,
        region: RegionId,
        name: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<Applied> {
        let at = self.tensor_offset(region, name, offset, bytes.len() as u64)?;
        let origin = self.origin(
            Operation::Write,
            Target::Tensor {
                region,
                name: name.to_string(),
            },
        );
        self.commit(origin, |_| {
            Ok(vec![Patch {
                region,
                offset: at,
                bytes: bytes.to_vec(),
            }])
        })
    }

    // ----- writing ----------------------------------------------------------------------

    /// Writes bytes (`directMemoryWrite` / `directWrite`).
    pub fn write(&self, region: RegionId, offset: u64, bytes: &[u8]) -> Result<Applied> {
        let origin = self.range_origin(Operation::Write, region, offset, bytes.len() as u64);
        self.commit(origin, |_| {
            Ok(vec![Patch {
                region,
                offset,
                bytes: bytes.to_vec(),
            }])
        })
    }

    /// Many writes, all or nothing, one undo step (`directMemoryWriteBatch` / `directWriteBatch`).
    pub fn write_batch(&self, patches: Vec<Patch>) -> Result<Applied> {
        let target = match patches.first() {
            Some(p) => Target::Ranges {
                region: p.region,
                offset: p.offset,
                count: patches.len(),
            },
            None => Target::None,
        };
        self.commit(self.origin(Operation::WriteBatch, target), |_| Ok(patches))
    }

    /// Fills a range with a repeating pattern (`directMemoryFill` / `directFill`).
    pub fn fill(&self, region: RegionId, offset: u64, len: u64, pattern: &[u8]) -> Result<Applied> {
        self.transform(Operation::Fill, region, offset, len, |b| {
            ops::fill(b, pattern)
        })
    }

    /// Copies `len` bytes from (src, src_offset) to (dst, dst_offset) with memmove semantics
    /// (overlap inside one region is correct) (`directMemoryCopy` / `directCopy`).
    pub fn copy(
        &self,
        src: RegionId,
        src_offset: u64,
        dst: RegionId,
        dst_offset: u64,
        len: u64,
    ) -> Result<Applied> {
        let origin = self.range_origin(Operation::Copy, dst, dst_offset, len);
        self.commit(origin, |v| {
            v.check_writable(dst, dst_offset, len)?;
            let bytes = v.bytes(src, src_offset, len)?.to_vec();
            Ok(vec![Patch {
                region: dst,
                offset: dst_offset,
                bytes,
            }])
        })
    }

    /// Swaps two equal-length ranges that do not overlap (`directMemorySwap`).
    pub fn swap(
        &self,
        a: RegionId,
        a_offset: u64,
        b: RegionId,
        b_offset: u64,
        len: u64,
    ) -> Result<Applied> {
        if a == b
            && a_offset < b_offset.saturating_add(len)
            && b_offset < a_offset.saturating_add(len)
            && len > 0
        {
            return Err(EngineError::invalid(
                "swap",
                format!("ranges {a_offset}+{len} and {b_offset}+{len} overlap"),
            ));
        }
        let origin = self.origin(
            Operation::Swap,
            Target::Ranges {
                region: a,
                offset: a_offset,
                count: 2,
            },
        );
        self.commit(origin, |v| {
            let ab = v.bytes(a, a_offset, len)?.to_vec();
            let bb = v.bytes(b, b_offset, len)?.to_vec();
            Ok(vec![
                Patch {
                    region: a,
                    offset: a_offset,
                    bytes: bb,
                },
                Patch {
                    region: b,
                    offset: b_offset,
                    bytes: ab,
                },
            ])
        })
    }

    /// Compares two equal-length ranges, possibly in different regions (two files):
    /// first difference and count of differing bytes (`directMemoryCompare` / `directCompare`).
    pub fn compare(
        &self,
        a: RegionId,
        a_offset: u64,
        b: RegionId,
        b_offset: u64,
        len: u64,
    ) -> Result<Comparison> {
        self.engine.view(|v| {
            Ok(ops::compare(
                v.bytes(a, a_offset, len)?,
                v.bytes(b, b_offset, len)?,
            ))
        })
    }

    /// XORs a range with a key repeated over it (`directXOR`).
    pub fn xor(&self, region: RegionId, offset: u64, len: u64, key: &[u8]) -> Result<Applied> {
        self.transform(Operation::XorKey, region, offset, len, |b| {
            ops::xor_key(b, key)
        })
    }

    /// A bit operation with a repeating mask (`directBitOperation`); see [`BitOp`].
    pub fn bit_op(
        &self,
        region: RegionId,
        offset: u64,
        len: u64,
        op: BitOp,
        mask: &[u8],
    ) -> Result<Applied> {
        self.transform(Operation::BitOp(op.name()), region, offset, len, |b| {
            ops::bit_op(b, op, mask)
        })
    }

    /// Rotates the bits of every byte left by `bits` (negative: right) (`directRotate`, bit
    /// meaning).
    pub fn rotate_bits(
        &self,
        region: RegionId,
        offset: u64,
        len: u64,
        bits: i32,
    ) -> Result<Applied> {
        let k = bits.rem_euclid(8) as u32;
        self.bit_op(region, offset, len, BitOp::RotateLeft(k), &[0xff])
    }

    /// Rotates a range by `n` bytes towards its start (negative: towards its end)
    /// (`directRotate`, byte meaning).
    pub fn rotate_range(&self, region: RegionId, offset: u64, len: u64, n: i64) -> Result<Applied> {
        self.transform(Operation::RotateRange, region, offset, len, |b| {
            ops::rotate_range(b, n);
            Ok(())
        })
    }

    /// Reverses a range (`directReverse`, range meaning).
    pub fn reverse(&self, region: RegionId, offset: u64, len: u64) -> Result<Applied> {
        self.transform(Operation::Reverse, region, offset, len, |b| {
            ops::reverse_range(b);
            Ok(())
        })
    }

    /// Reverses the byte order of each element of `width` bytes (`directReverse`, endianness
    /// meaning).
    pub fn reverse_elements(
        &self,
        region: RegionId,
        offset: u64,
        len: u64,
        width: usize,
    ) -> Result<Applied> {
        self.transform(Operation::ReverseElements, region, offset, len, |b| {
            ops::reverse_elements(b, width)
        })
    }

    // ----- protection -------------------------------------------------------------------

    /// Makes a range read-only (or read-write again) (`setMemoryProtection`). Read-only
    /// returns the protection id; read-write removes every protection that lies inside the
    /// range and returns `None`. Ranges covering whole pages also get page protection.
    pub fn set_protection(
        &self,
        region: RegionId,
        offset: u64,
        len: u64,
        read_only: bool,
    ) -> Result<Option<u64>> {
        if read_only {
            return self
                .engine
                .protect(region, offset, len, "read-only", true)
                .map(Some);
        }
        let end = offset.saturating_add(len);
        for p in self.engine.protections() {
            if p.region == region && p.start >= offset && p.end <= end {
                self.engine.unprotect(p.id)?;
            }
        }
        Ok(None)
    }

    // ----- search -------------------------------------------------------------------------

    /// Finds a hex pattern with `??` wildcards (`directMemorySearch` / `findPattern`).
    pub fn find_hex(&self, pattern: &str, scope: Scope, limit: usize) -> Result<Vec<Match>> {
        self.search(&Pattern::parse_hex(pattern)?, scope, limit, &mut |_| true)
    }

    /// Finds every match of `pattern` in `scope` (overlapping matches included), at most
    /// `limit`; `progress` counts bytes searched and may cancel. Runs under the read lock
    /// (other readers proceed). More than `limit` matches is [`EngineError::LimitReached`].
    pub fn search(
        &self,
        pattern: &Pattern,
        scope: Scope,
        limit: usize,
        progress: ProgressFn<'_>,
    ) -> Result<Vec<Match>> {
        match self.search_upto(pattern, scope, limit, progress)? {
            (_, true) => Err(EngineError::LimitReached {
                what: "matches",
                limit,
            }),
            (found, false) => Ok(found),
        }
    }

    /// Like [`Ops::search`], but more than `limit` matches is not an error: returns the first
    /// `limit` matches and `true` ("more exist"). The search stops at the first extra match.
    pub fn search_upto(
        &self,
        pattern: &Pattern,
        scope: Scope,
        limit: usize,
        progress: ProgressFn<'_>,
    ) -> Result<(Vec<Match>, bool)> {
        let ranges: Vec<(RegionId, u64, u64)> = match scope {
            Scope::All => self
                .engine
                .regions()
                .iter()
                .map(|r| (r.id, 0, r.len))
                .collect(),
            Scope::Region(r) => vec![(r, 0, self.engine.region_info(r)?.len)],
            Scope::Range(r, o, l) => vec![(r, o, l)],
        };
        let total: u64 = ranges.iter().map(|r| r.2).sum();
        let n = pattern.len();
        self.engine.view(|v| {
            let mut out = Vec::new();
            let mut done = 0u64;
            for (region, offset, len) in ranges {
                let hay = v.bytes(region, offset, len)?;
                let mut start = 0usize;
                while start < hay.len() {
                    let end = (start + SEARCH_CHUNK).min(hay.len());
                    let window = &hay[start..(end + n - 1).min(hay.len())];
                    let mut over = false;
                    pattern.for_each_match(window, |at| {
                        if start + at >= end {
                            return false;
                        }
                        if out.len() == limit {
                            over = true;
                            return false;
                        }
                        out.push(Match {
                            region,
                            offset: offset + (start + at) as u64,
                        });
                        true
                    });
                    if over {
                        return Ok((out, true));
                    }
                    done += (end - start) as u64;
                    if !progress(Progress { done, total }) {
                        return Err(EngineError::Cancelled);
                    }
                    start = end;
                }
            }
            Ok((out, false))
        })
    }

    /// Compares `len` bytes at `offset` of `region` with `len` bytes at `other_offset` of
    /// another file (`directCompare` across two files). The other file is mapped read-only
    /// as a temporary window for the comparison and unmapped after.
    pub fn compare_file(
        &self,
        region: RegionId,
        offset: u64,
        other: impl AsRef<Path>,
        other_offset: u64,
        len: u64,
    ) -> Result<Comparison> {
        // Bounds of our side first (no mapping for a request that cannot succeed).
        self.engine.with_bytes(region, offset, len, |_| ())?;
        let other = self.map_region(other, other_offset, len, Mode::ReadOnly)?;
        let result = self.compare(region, offset, other, 0, len);
        let unmapped = self.unmap_region(other);
        let c = result?;
        unmapped?;
        Ok(c)
    }
}

/// Compares two files without loading them into an engine (read-only maps): first difference
/// and count of differing bytes over the common length, plus both lengths.
pub fn compare_files(a: &Path, b: &Path) -> Result<(Comparison, u64, u64)> {
    let map = |p: &Path| -> Result<(Option<memmap2::Mmap>, u64)> {
        let f = std::fs::File::open(p).map_err(|e| EngineError::io("open", p, e))?;
        let len = f
            .metadata()
            .map_err(|e| EngineError::io("stat", p, e))?
            .len();
        if len == 0 {
            return Ok((None, 0));
        }
        // SAFETY: read-only map of a file we do not modify; other programs must not truncate
        // it during the comparison (same contract as the engine's regions).
        let m = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| EngineError::io("map", p, e))?;
        Ok((Some(m), len))
    };
    let (ma, la) = map(a)?;
    let (mb, lb) = map(b)?;
    let sa: &[u8] = ma.as_deref().unwrap_or(&[]);
    let sb: &[u8] = mb.as_deref().unwrap_or(&[]);
    Ok((ops::compare(sa, sb), la, lb))
}
