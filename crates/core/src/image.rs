//! One mapped region of a file: the model image (staged or live) or an extra window.
//!
//! - **Staged**: a private copy-on-write map (`memmap2::MmapOptions::map_copy`). Edits stay in
//!   this process; [`Region::save`] writes only the changed ranges back in place through the
//!   crash-safety journal ([`crate::wal`]).
//! - **Live**: a shared writable map (`map_mut`). Every write lands in the page cache at once,
//!   so any process mapping the same file (a llama.cpp on CPU with mmap) sees it. With
//!   [`LiveSync::Journaled`] (the default) each write is preceded by a durable journal and
//!   followed by an `msync`, so a crash at any point leaves the file old or new.
//! - **ReadOnly**: a read-only map (compare, search, a reference model).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::error::{EngineError, Result};
use crate::rangeset::RangeSet;
use crate::wal::{self, RecoveryReport};
use crate::{platform, RegionId};

/// How a region is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Private copy-on-write map; Save writes changed ranges back.
    Staged,
    /// Shared writable map; writes reach the file (and other processes) at once.
    Live,
    /// Read-only map; every write is refused.
    ReadOnly,
}

/// Durability of live writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LiveSync {
    /// Journal (fsynced) before each write, `msync` after: crash-safe. The default.
    #[default]
    Journaled,
    /// Write straight into the page cache: fastest, not crash-safe (a crash mid-write may
    /// leave a torn range). For experiments where the file is a scratch copy.
    PageCacheOnly,
}

/// A progress report: `done` of `total` units (bytes or ranges, as the operation says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// A progress callback; returning `false` asks to cancel (honoured where cancelling is safe).
pub type ProgressFn<'a> = &'a mut dyn FnMut(Progress) -> bool;

/// What a Save did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// Ranges written back.
    pub ranges: usize,
    /// Data bytes written into the model file.
    pub bytes_written: u64,
    /// Size of the journal written (and deleted) for crash safety.
    pub journal_bytes: u64,
}

enum Map {
    Mut(MmapMut),
    Ro(Mmap),
    Empty,
}

/// A mapped file window.
pub(crate) struct Region {
    pub id: RegionId,
    pub path: PathBuf,
    file: File,
    file_writable: bool,
    pub mode: Mode,
    pub file_offset: u64,
    pub file_len: u64,
    pub len: u64,
    map: Map,
    /// Region-relative ranges changed since the last save (staged only).
    pub dirty: RangeSet,
    pub live_sync: LiveSync,
    /// Page-protected spans (region-relative, page-aligned in memory).
    pub page_locked: Vec<(u64, u64)>,
    /// The GGUF index (whole-file regions starting with the magic), or why parsing failed.
    pub gguf: Option<std::result::Result<std::sync::Arc<hotpatch_gguf::GgufIndex>, String>>,
}

impl Region {
    /// Opens `path` (rolling a leftover journal forward first) and maps `window` of it
    /// (`None` = the whole file).
    pub fn open(
        id: RegionId,
        path: &Path,
        mode: Mode,
        window: Option<(u64, u64)>,
        live_sync: LiveSync,
    ) -> Result<(Region, Option<RecoveryReport>)> {
        // A directory (or a device) is not a model: mapping one fails with "No such device
        // (os error 19)", which names neither the path's kind nor what to do.
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.is_file() {
                let what = if meta.is_dir() {
                    "is a directory, not a GGUF file (open a .gguf file inside it)"
                } else {
                    "is not a regular file (a device, socket or pipe), not a GGUF file"
                };
                return Err(EngineError::io(
                    "open",
                    path,
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, what),
                ));
            }
        }
        // What interrupted rewrites of this file left beside it (never a live writer's).
        if mode != Mode::ReadOnly {
            hotpatch_atomic::clean_stale(path);
        }
        let recovery = if mode == Mode::ReadOnly && !wal::journal_path(path).exists() {
            None
        } else {
            wal::recover(path)?
        };
        let (file, file_writable) = match mode {
            Mode::Live => (
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| EngineError::io("open for live editing", path, e))?,
                true,
            ),
            Mode::Staged => match OpenOptions::new().read(true).write(true).open(path) {
                Ok(f) => (f, true),
                Err(_) => (
                    File::open(path).map_err(|e| EngineError::io("open", path, e))?,
                    false,
                ),
            },
            Mode::ReadOnly => (
                File::open(path).map_err(|e| EngineError::io("open", path, e))?,
                false,
            ),
        };
        let file_len = file
            .metadata()
            .map_err(|e| EngineError::io("stat", path, e))?
            .len();
        let (file_offset, len) = match window {
            None => (0, file_len),
            Some((o, l)) => {
                if o.checked_add(l).is_none_or(|e| e > file_len) {
                    return Err(EngineError::invalid(
                        "window",
                        format!("{o}+{l} is outside {} (length {file_len})", path.display()),
                    ));
                }
                (o, l)
            }
        };
        let ulen = usize::try_from(len)
            .map_err(|_| EngineError::invalid("window", "larger than the address space"))?;
        let map = if len == 0 {
            Map::Empty
        } else {
            let mut opts = MmapOptions::new();
            opts.offset(file_offset).len(ulen);
            let err = |e| EngineError::io("map", path, e);
            match mode {
                // SAFETY: a file-backed map is only sound while no one truncates the file or
                // writes it behind our back. A private COW map isolates us from writes to pages
                // we changed; the engine never truncates; other programs changing a model file
                // while it is open for editing is outside the contract (documented on `open`).
                Mode::Staged => Map::Mut(unsafe { opts.map_copy(&file) }.map_err(err)?),
                // SAFETY: as above; in live mode the file is shared on purpose: other processes
                // (llama.cpp) read it. We only ever write through this map under the engine's
                // write lock, and readers go through the same lock.
                Mode::Live => Map::Mut(unsafe { opts.map_mut(&file) }.map_err(err)?),
                // SAFETY: as above; read-only.
                Mode::ReadOnly => Map::Ro(unsafe { opts.map(&file) }.map_err(err)?),
            }
        };
        let mut region = Region {
            id,
            path: path.to_path_buf(),
            file,
            file_writable,
            mode,
            file_offset,
            file_len,
            len,
            map,
            dirty: RangeSet::new(),
            live_sync,
            page_locked: Vec::new(),
            gguf: None,
        };
        region.refresh_gguf();
        Ok((region, recovery))
    }

    /// (Re)parses the GGUF header if this region is a whole file starting with the magic.
    pub fn refresh_gguf(&mut self) {
        self.gguf = if self.file_offset == 0
            && self.len == self.file_len
            && self.bytes().starts_with(&hotpatch_gguf::MAGIC)
        {
            Some(
                hotpatch_gguf::parse(self.bytes())
                    .map(std::sync::Arc::new)
                    .map_err(|e| e.to_string()),
            )
        } else {
            None
        };
    }

    /// Where the GGUF header ends (writes before it re-parse the index).
    fn header_end(&self) -> u64 {
        match &self.gguf {
            Some(Ok(i)) => i.data_offset,
            Some(Err(_)) => self.len,
            None => 4,
        }
    }

    /// Whether a staged region's bytes differ from its file: some dirty range no longer holds
    /// what the file holds (an undo back to the saved state leaves ranges dirty whose bytes
    /// are the file's again). Stops at the first difference; a read error counts as one.
    pub fn differs_from_file(&self) -> bool {
        const CHUNK: u64 = 1 << 20;
        let bytes = self.bytes();
        let mut buf = Vec::new();
        for (s, e) in self.dirty.iter() {
            let mut at = s;
            while at < e {
                let n = (e - at).min(CHUNK);
                buf.resize(n as usize, 0);
                if crate::platform::read_exact_at(&self.file, &mut buf, self.file_offset + at)
                    .is_err()
                {
                    return true;
                }
                if bytes[at as usize..(at + n) as usize] != buf[..] {
                    return true;
                }
                at += n;
            }
        }
        false
    }

    /// The whole region's bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.map {
            Map::Mut(m) => m,
            Map::Ro(m) => m,
            Map::Empty => &[],
        }
    }

    fn bytes_mut(&mut self) -> Result<&mut [u8]> {
        match &mut self.map {
            Map::Mut(m) => Ok(m),
            Map::Ro(_) => Err(EngineError::ReadOnlyRegion(self.id)),
            Map::Empty => Ok(&mut []),
        }
    }

    /// Checks that `offset+len` lies in the region; returns it as a usize range.
    pub fn range(&self, offset: u64, len: u64) -> Result<std::ops::Range<usize>> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(offset as usize..end as usize),
            _ => Err(EngineError::OutOfBounds {
                region: self.id,
                offset,
                len,
                region_len: self.len,
            }),
        }
    }

    /// The address of a region-relative offset (for display and page protection).
    pub fn address(&self, offset: u64) -> usize {
        self.bytes().as_ptr() as usize + offset as usize
    }

    /// Writes non-overlapping `(offset, new bytes)` ranges, sorted by offset. Live regions
    /// journal first (crash safety) and msync after; staged regions mark them dirty.
    pub fn write_ranges(&mut self, writes: &[(u64, &[u8])]) -> Result<()> {
        if self.mode == Mode::ReadOnly {
            return Err(EngineError::ReadOnlyRegion(self.id));
        }
        for &(off, new) in writes {
            self.range(off, new.len() as u64)?;
        }
        let journaled =
            self.mode == Mode::Live && self.live_sync == LiveSync::Journaled && !writes.is_empty();
        if journaled {
            let bytes = self.bytes();
            let records: Vec<wal::Record<'_>> = writes
                .iter()
                .map(|&(off, new)| wal::Record {
                    offset: self.file_offset + off,
                    old: &bytes[off as usize..off as usize + new.len()],
                    new,
                })
                .collect();
            wal::write_intent(&self.path, self.file_len, &records)?;
        }
        let mode = self.mode;
        let map = self.bytes_mut()?;
        for &(off, new) in writes {
            map[off as usize..off as usize + new.len()].copy_from_slice(new);
        }
        match mode {
            Mode::Live if journaled => {
                if let Map::Mut(m) = &self.map {
                    for &(off, new) in writes {
                        m.flush_range(off as usize, new.len())
                            .map_err(|e| EngineError::io("msync", &self.path, e))?;
                    }
                }
                wal::clear(&self.path)?;
            }
            Mode::Staged => {
                for &(off, new) in writes {
                    self.dirty.insert(off, off + new.len() as u64);
                }
            }
            _ => {}
        }
        let header_end = self.header_end();
        if self.file_offset == 0 && writes.iter().any(|(off, _)| *off < header_end) {
            self.refresh_gguf();
        }
        Ok(())
    }

    /// Writes the changed ranges back in place (staged), crash-safe; flushes (live).
    pub fn save(&self, progress: ProgressFn<'_>) -> Result<SaveReport> {
        match self.mode {
            Mode::ReadOnly => return Ok(SaveReport::default()),
            Mode::Live => {
                if let Map::Mut(m) = &self.map {
                    m.flush()
                        .map_err(|e| EngineError::io("msync", &self.path, e))?;
                }
                return Ok(SaveReport::default());
            }
            Mode::Staged => {}
        }
        let map = self.bytes();
        // Find the bytes that really differ from the file, in runs (gaps < 64 bytes merged).
        let mut runs: Vec<(u64, Vec<u8>)> = Vec::new(); // (region offset, old bytes)
        let total_dirty = self.dirty.total();
        let mut seen = 0u64;
        for (s, e) in self.dirty.iter() {
            let mut disk = vec![0u8; (e - s) as usize];
            platform::read_exact_at(&self.file, &mut disk, self.file_offset + s)
                .map_err(|e| EngineError::io("read for save", &self.path, e))?;
            let mem = &map[s as usize..e as usize];
            let mut i = 0usize;
            while i < disk.len() {
                if disk[i] == mem[i] {
                    i += 1;
                    continue;
                }
                let start = i;
                let mut last = i;
                while i < disk.len() && i - last < 64 {
                    if disk[i] != mem[i] {
                        last = i;
                    }
                    i += 1;
                }
                runs.push((s + start as u64, disk[start..=last].to_vec()));
                i = last + 1;
            }
            seen += e - s;
            if !progress(Progress {
                done: seen,
                total: total_dirty * 2,
            }) {
                return Err(EngineError::Cancelled);
            }
        }
        if runs.is_empty() {
            return Ok(SaveReport::default());
        }
        if !self.file_writable {
            return Err(EngineError::io(
                "save in place",
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "file was opened read-only; use Save As",
                ),
            ));
        }
        let records: Vec<wal::Record<'_>> = runs
            .iter()
            .map(|(off, old)| wal::Record {
                offset: self.file_offset + off,
                old,
                new: &map[*off as usize..*off as usize + old.len()],
            })
            .collect();
        let journal_bytes = wal::write_intent(&self.path, self.file_len, &records)?;
        // From here on the change is committed: no cancelling.
        let total_new: u64 = records.iter().map(|r| r.new.len() as u64).sum();
        let mut written = 0u64;
        for r in &records {
            platform::write_all_at(&self.file, r.new, r.offset)
                .map_err(|e| EngineError::io("write", &self.path, e))?;
            written += r.new.len() as u64;
            let _ = progress(Progress {
                done: total_dirty + written * total_dirty / total_new.max(1),
                total: total_dirty * 2,
            });
        }
        self.file
            .sync_data()
            .map_err(|e| EngineError::io("fsync", &self.path, e))?;
        wal::clear(&self.path)?;
        Ok(SaveReport {
            ranges: records.len(),
            bytes_written: written,
            journal_bytes,
        })
    }

    /// Writes the region's current bytes to a new file atomically (the shared atomic writer:
    /// temp file in the same directory, fsync, rename, fsync directory; the mode and owner of a
    /// file it replaces kept). Returns the bytes written.
    pub fn save_as(&self, dest: &Path, progress: ProgressFn<'_>) -> Result<u64> {
        if dest.file_name().is_none() {
            return Err(EngineError::invalid(
                "path",
                format!("{} has no file name", dest.display()),
            ));
        }
        hotpatch_atomic::write_with(dest, |f, tmp| -> Result<u64> {
            let data = self.bytes();
            let total = data.len() as u64;
            let mut done = 0u64;
            for chunk in data.chunks(8 << 20) {
                platform::write_all_at(f, chunk, done)
                    .map_err(|e| EngineError::io("write", tmp, e))?;
                done += chunk.len() as u64;
                if !progress(Progress { done, total }) {
                    return Err(EngineError::Cancelled);
                }
            }
            Ok(total)
        })
    }

    /// The whole pages inside `offset..offset+len` (region-relative), if any.
    pub fn whole_pages(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        if len == 0 || matches!(self.map, Map::Empty | Map::Ro(_)) {
            return None;
        }
        let page = region::page::size() as u64;
        let base = self.bytes().as_ptr() as u64;
        let start = (base + offset).div_ceil(page) * page;
        let end = (base + offset + len) / page * page;
        (end > start).then(|| (start - base, end - start))
    }

    /// Sets the memory protection of `offset..offset+len` (page-aligned, inside the map).
    pub fn set_page_protection(&self, offset: u64, len: u64, read_only: bool) -> Result<()> {
        let prot = if read_only {
            region::Protection::READ
        } else {
            region::Protection::READ_WRITE
        };
        let ptr = self.address(offset) as *const u8;
        // SAFETY: `offset..offset+len` lies inside our own live map (checked by the callers via
        // `whole_pages`), page-aligned; changing its protection affects only this mapping, and
        // every write path checks logical protection first, so no write hits a READ page.
        unsafe { region::protect(ptr, len as usize, prot) }.map_err(|e| {
            EngineError::PageProtection {
                region: self.id,
                offset,
                len,
                message: e.to_string(),
            }
        })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // Never leave protected pages behind (the map is unmapped right after, but a reused
        // address range must not inherit anything from us).
        for (off, len) in std::mem::take(&mut self.page_locked) {
            let _ = self.set_page_protection(off, len, false);
        }
    }
}
