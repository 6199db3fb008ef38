//! Page residency of a model file: how much of it is in RAM, prefetching it, pinning it.
//!
//! Overview: [`resident_fraction`] asks the OS which pages of a read-only map of the file are
//! in memory (`mincore` on Unix); [`prefetch`] advises the kernel to read the file ahead
//! (`madvise(WILLNEED)`) and then touches one byte per page so the pages really are read;
//! [`Pinned`] locks the pages in RAM (`mlock`) until dropped. On platforms without `mincore`
//! the fraction is `None` and prefetching falls back to touching every page. This is the only
//! platform-specific part of `boostInferenceSpeed`.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

/// A read-only map of a whole file, for residency queries.
pub struct FileMap {
    map: Option<Mmap>,
}

impl FileMap {
    /// Maps `path` read-only (an empty file maps to nothing).
    pub fn open(path: &Path) -> std::io::Result<FileMap> {
        let f = File::open(path)?;
        if f.metadata()?.len() == 0 {
            return Ok(FileMap { map: None });
        }
        // SAFETY: read-only map used only to query/advise residency and read single bytes; a
        // concurrent writer can change the values read but not the map's length or validity
        // (the engine never truncates a mapped model).
        let map = unsafe { Mmap::map(&f) }?;
        Ok(FileMap { map: Some(map) })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The page size.
pub fn page_size() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 {
            return p as usize;
        }
    }
    4096
}

/// Fraction (0..=1) of the file's pages resident in RAM, or `None` where the OS cannot say.
pub fn resident_fraction(m: &FileMap) -> Option<f64> {
    let Some(map) = &m.map else { return Some(1.0) };
    #[cfg(unix)]
    {
        let ps = page_size();
        let pages = map.len().div_ceil(ps);
        let mut vec = vec![0u8; pages];
        // SAFETY: the pointer and length describe our live mapping (page-aligned start, as
        // mmap returns); `vec` has one byte per page of that length, as mincore requires.
        let rc = unsafe {
            libc::mincore(
                map.as_ptr() as *mut libc::c_void,
                map.len(),
                vec.as_mut_ptr().cast(),
            )
        };
        if rc != 0 {
            return None;
        }
        let resident = vec.iter().filter(|&&b| b & 1 == 1).count();
        Some(resident as f64 / pages.max(1) as f64)
    }
    #[cfg(not(unix))]
    {
        let _ = map;
        None
    }
}

/// Reads the whole file into the page cache: advise WILLNEED, then touch one byte per page.
/// Returns the bytes covered.
pub fn prefetch(m: &FileMap) -> usize {
    let Some(map) = &m.map else { return 0 };
    #[cfg(unix)]
    {
        let _ = map.advise(memmap2::Advice::WillNeed);
    }
    let ps = page_size();
    let mut acc = 0u8;
    for i in (0..map.len()).step_by(ps) {
        acc = acc.wrapping_add(map[i]);
    }
    std::hint::black_box(acc);
    map.len()
}

/// Pages locked in RAM until this value is dropped.
pub struct Pinned {
    map: Mmap,
}

impl Pinned {
    /// Locks every page of the file in RAM (`mlock`). Fails under `RLIMIT_MEMLOCK` or without
    /// the privilege; the error says so.
    pub fn lock(path: &Path) -> std::io::Result<Pinned> {
        let f = File::open(path)?;
        // SAFETY: as in FileMap::open: read-only, never dereferenced beyond its length.
        let map = unsafe { Mmap::map(&f) }?;
        #[cfg(unix)]
        map.lock()?;
        Ok(Pinned { map })
    }

    /// Bytes pinned.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        #[cfg(unix)]
        let _ = self.map.unlock();
    }
}
