//! Small platform shims: positional file I/O and directory fsync.

use std::fs::File;
use std::path::Path;

use crate::error::{EngineError, Result};

/// Reads exactly `buf.len()` bytes at `offset`.
pub(crate) fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0usize;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                f,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// Writes all of `buf` at `offset`.
pub(crate) fn write_all_at(f: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0usize;
        while done < buf.len() {
            let n =
                std::os::windows::fs::FileExt::seek_write(f, &buf[done..], offset + done as u64)?;
            done += n;
        }
        Ok(())
    }
}

/// Fsyncs the directory holding `path`, so that a rename or delete in it is durable.
/// (On Windows directories cannot be opened for sync; renames there are durable via the file.)
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let d = File::open(dir).map_err(|e| EngineError::io("open directory", dir, e))?;
        d.sync_all()
            .map_err(|e| EngineError::io("fsync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Locks (`mlock`) or unlocks (`munlock`) the pages of `bytes` in RAM.
pub(crate) fn set_locked(bytes: &[u8], lock: bool) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let result = if lock {
        // The guard would unlock on drop; the region keeps its own `pinned` flag and unlocks
        // explicitly (or the unmap does), so the guard is forgotten.
        region::lock(bytes.as_ptr(), bytes.len()).map(std::mem::forget)
    } else {
        region::unlock(bytes.as_ptr(), bytes.len())
    };
    result.map_err(|e| std::io::Error::other(e.to_string()))
}

/// (resident pages, total pages, page size) of a mapped range, through `mincore`.
#[cfg(target_os = "linux")]
pub(crate) fn residency(bytes: &[u8]) -> Option<(u64, u64, u64)> {
    let page = region::page::size();
    if bytes.is_empty() {
        return Some((0, 0, page as u64));
    }
    let start = bytes.as_ptr() as usize / page * page;
    let end = (bytes.as_ptr() as usize + bytes.len()).div_ceil(page) * page;
    let pages = (end - start) / page;
    let mut vec = vec![0u8; pages];
    // SAFETY: `start..end` is the page-aligned hull of a live mapping owned by the caller, and
    // `vec` has one byte per page as mincore requires.
    let rc = unsafe { libc::mincore(start as *mut libc::c_void, end - start, vec.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    let resident = vec.iter().filter(|b| *b & 1 == 1).count();
    Some((resident as u64, pages as u64, page as u64))
}

/// (resident pages, total pages, page size): not available on this platform.
#[cfg(not(target_os = "linux"))]
pub(crate) fn residency(_bytes: &[u8]) -> Option<(u64, u64, u64)> {
    None
}
