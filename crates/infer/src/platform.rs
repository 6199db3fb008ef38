//! The platform-specific part: replacing pages of a file mapping that llama.cpp made with a
//! private copy-on-write mapping of the same file range (and back).
//!
//! llama.cpp maps each model file once, read-only and shared (`mmap(NULL, size, PROT_READ,
//! MAP_SHARED, fd, 0)` on POSIX), and with repacking off its CPU backend computes straight from
//! that mapping. Mapping a page of the same file over it with `MAP_PRIVATE | MAP_FIXED` changes
//! nothing llama.cpp can see (the page reads as the file does) until we write into it; then the
//! kernel copies that one page and only this process's view changes — the file and every other
//! process keep the old bytes. Mapping `MAP_SHARED` over it again drops the private copy.
//!
//! POSIX only (Linux, macOS). Windows cannot replace part of a view in place; there
//! [`map_private`] reports `Unsupported` and staged edits need a reload.

use std::fs::File;
use std::io;

/// The memory page size.
pub(crate) fn page_size() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            return n as usize;
        }
    }
    4096
}

/// Replaces `[addr, addr+len)` — page-aligned, inside a live read-only shared mapping of
/// `file` at `file_offset` (so `addr` ↔ `file_offset`) — with a private, writable,
/// copy-on-write mapping of the same file range.
///
/// # Safety
/// The range must lie inside a mapping of this very file at this very offset that the caller
/// is allowed to replace (llama.cpp's, while no computation reads it), so that the bytes seen
/// through those addresses do not change by the replacement.
#[cfg(unix)]
pub(crate) unsafe fn map_private(
    addr: usize,
    len: usize,
    file: &File,
    file_offset: u64,
) -> io::Result<()> {
    remap(addr, len, file, file_offset, true)
}

/// Puts a read-only shared mapping of the file back over `[addr, addr+len)`, dropping the
/// private copies made by [`map_private`].
///
/// # Safety
/// As [`map_private`]: the range must be one that [`map_private`] replaced.
#[cfg(unix)]
pub(crate) unsafe fn map_shared(
    addr: usize,
    len: usize,
    file: &File,
    file_offset: u64,
) -> io::Result<()> {
    remap(addr, len, file, file_offset, false)
}

#[cfg(unix)]
fn remap(addr: usize, len: usize, file: &File, file_offset: u64, private: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let page = page_size();
    if !addr.is_multiple_of(page)
        || !len.is_multiple_of(page)
        || !file_offset.is_multiple_of(page as u64)
        || len == 0
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "overlay range is not page-aligned",
        ));
    }
    let off = libc::off_t::try_from(file_offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    let (prot, flags) = if private {
        (
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_FIXED,
        )
    } else {
        (libc::PROT_READ, libc::MAP_SHARED | libc::MAP_FIXED)
    };
    // SAFETY: the caller guarantees (see `map_private`) that `[addr, addr+len)` is part of a
    // mapping of `file` at `file_offset` that may be replaced; MAP_FIXED replaces exactly that
    // range atomically with a mapping of the same file bytes, so no reader sees unmapped or
    // different memory. The fd is valid for the call (the kernel keeps its own reference).
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            prot,
            flags,
            file.as_raw_fd(),
            off,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    if p as usize != addr {
        return Err(io::Error::other("mmap MAP_FIXED returned another address"));
    }
    Ok(())
}

/// Not available: see the module docs.
///
/// # Safety
/// None needed; it does nothing.
#[cfg(not(unix))]
pub(crate) unsafe fn map_private(_: usize, _: usize, _: &File, _: u64) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "copy-on-write overlays of llama.cpp's mapping need POSIX mmap",
    ))
}

/// Not available: see the module docs.
///
/// # Safety
/// None needed; it does nothing.
#[cfg(not(unix))]
pub(crate) unsafe fn map_shared(_: usize, _: usize, _: &File, _: u64) -> io::Result<()> {
    Ok(())
}
