//! llama.cpp's mapping of one model file, found and written to.
//!
//! With repacking off, llama.cpp's CPU backend computes from one read-only shared mapping per
//! model file. [`MappedFile::locate`] finds it from the addresses of the weights the graph
//! reads (recorded by the graph callback, [`crate::llama::Context::weights_seen`]) and checks,
//! byte for byte, that they are the file's tensors at `base + offset`. [`MappedFile::write`]
//! then puts bytes where llama.cpp reads them without touching the file: the pages written
//! are first replaced by private copy-on-write pages of the same file range
//! ([`crate::platform::map_private`]), so the cost is one page (4 KiB) per page written,
//! and the file on disk, the page cache and every other process are untouched.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{InferError, Result};
use crate::llama::WeightSeen;
use crate::platform;

/// The buffer name of ggml's CPU buffer over host memory (the mapped file).
pub const MAPPED_BUFFER: &str = "CPU_Mapped";

/// llama.cpp's mapping of one file of the model.
#[derive(Debug)]
pub(crate) struct MappedFile {
    path: PathBuf,
    file: File,
    /// Address of file offset 0 in llama.cpp's mapping.
    base: usize,
    /// File range `[start, end)` llama.cpp keeps mapped and computes from (tensor data).
    span: (u64, u64),
    page: u64,
    /// Pages (file offset / page) replaced by private copies.
    overlaid: BTreeSet<u64>,
}

/// A tensor of the file as the index lists it: (name, absolute offset, bytes).
pub(crate) type IndexedTensor<'a> = (&'a str, u64, u64);

impl MappedFile {
    /// Finds llama.cpp's mapping of `path` from the weights it computes with.
    /// `tensors` is this file's tensor index. Fails, writing nothing, when a tensor of this
    /// file is held in another buffer (repacked, copied, on a GPU), when the addresses do not
    /// agree on one mapping, or when the bytes there are not the file's.
    pub fn locate(
        path: &Path,
        tensors: &[IndexedTensor<'_>],
        seen: &[WeightSeen],
    ) -> Result<MappedFile> {
        let file = File::open(path).map_err(|e| InferError::io("open", path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| InferError::io("stat", path, e))?
            .len();
        let mut base: Option<usize> = None;
        let mut span = (u64::MAX, 0u64);
        let mut checked = 0usize;
        for w in seen {
            let Some(&(name, offset, nbytes)) = tensors.iter().find(|t| t.0 == w.name) else {
                continue;
            };
            if w.buffer != MAPPED_BUFFER {
                return Err(InferError::NotMapped(format!(
                    "llama.cpp holds tensor {name} of {} in its own buffer {} (a copy), not in \
                     the mapped file",
                    path.display(),
                    w.buffer
                )));
            }
            let b = w.data.checked_sub(offset as usize).ok_or_else(|| {
                InferError::NotMapped(format!("tensor {name}: address below its file offset"))
            })?;
            match base {
                None => base = Some(b),
                Some(b0) if b0 != b => {
                    return Err(InferError::NotMapped(format!(
                        "tensor {name} of {} is not where the other tensors' mapping puts it",
                        path.display()
                    )))
                }
                Some(_) => {}
            }
            if offset + nbytes > file_len || (w.nbytes as u64) != nbytes {
                return Err(InferError::NotMapped(format!(
                    "tensor {name}: llama.cpp's size {} differs from the index's {nbytes}",
                    w.nbytes
                )));
            }
            // The first bytes at the address must be the file's (what llama.cpp mapped).
            let n = nbytes.min(256) as usize;
            let mut disk = vec![0u8; n];
            read_exact_at(&file, &mut disk, offset).map_err(|e| InferError::io("read", path, e))?;
            // SAFETY: llama.cpp reports `w.data` as the start of `w.nbytes >= n` readable bytes
            // of a live weight buffer (the model is loaded and not being freed).
            let mem = unsafe { std::slice::from_raw_parts(w.data as *const u8, n) };
            if mem != disk.as_slice() {
                return Err(InferError::NotMapped(format!(
                    "the bytes llama.cpp computes with for tensor {name} are not those of {}",
                    path.display()
                )));
            }
            span.0 = span.0.min(offset);
            span.1 = span.1.max(offset + nbytes);
            checked += 1;
        }
        let Some(base) = base else {
            return Err(InferError::NotMapped(format!(
                "llama.cpp computes with no tensor of {} from its mapping",
                path.display()
            )));
        };
        // The span is the range of the tensors llama.cpp computes with: it keeps at least that
        // mapped (a tensor outside it is not read, so its bytes cannot change any output).
        let page = platform::page_size() as u64;
        if base % page as usize != 0 {
            return Err(InferError::NotMapped(format!(
                "llama.cpp's mapping of {} is not page-aligned (checked {checked} tensors)",
                path.display()
            )));
        }
        Ok(MappedFile {
            path: path.to_path_buf(),
            file,
            base,
            span,
            page,
            overlaid: BTreeSet::new(),
        })
    }

    /// Page size.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// Bytes held in private copies.
    pub fn private_bytes(&self) -> u64 {
        self.overlaid.len() as u64 * self.page
    }

    /// Pages replaced by private copies, as page numbers.
    pub fn overlaid_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.overlaid.iter().copied()
    }

    /// Clips `offset..offset+len` to the span; `None` when outside it.
    pub fn clip(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        let s = offset.max(self.span.0);
        let e = offset.saturating_add(len).min(self.span.1);
        (s < e).then_some((s, e - s))
    }

    /// What llama.cpp computes with at `offset..offset+len` (inside the span).
    pub fn read(&self, offset: u64, len: u64) -> Result<&[u8]> {
        let (s, l) = self
            .clip(offset, len)
            .filter(|&(s, l)| s == offset && l == len)
            .ok_or_else(|| InferError::Invalid {
                what: "read",
                message: format!(
                    "{offset}+{len} is outside the tensor data of {}",
                    self.path.display()
                ),
            })?;
        // SAFETY: the span lies inside llama.cpp's live mapping of this file (checked by
        // `locate`: every tensor of the file is mapped there); the model outlives `self`.
        Ok(
            unsafe {
                std::slice::from_raw_parts((self.base + s as usize) as *const u8, l as usize)
            },
        )
    }

    /// Writes `bytes` at file offset `offset` into what llama.cpp computes with (the part
    /// inside the span; header bytes are not read by the engine after load). Replaces the
    /// pages first with private copies, so the file stays as it is. The caller must make
    /// sure no computation runs meanwhile.
    pub fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let Some((s, l)) = self.clip(offset, bytes.len() as u64) else {
            return Ok(());
        };
        let first = s / self.page;
        let last = (s + l - 1) / self.page;
        let mut p = first;
        while p <= last {
            if self.overlaid.contains(&p) {
                p += 1;
                continue;
            }
            let run_start = p;
            while p <= last && !self.overlaid.contains(&p) {
                p += 1;
            }
            let off = run_start * self.page;
            let len = (p - run_start) * self.page;
            // SAFETY: pages `run_start..p` contain bytes of the span, which llama.cpp keeps
            // mapped (page-rounded inward only at the file's ends, and the span's first and
            // last pages hold tensor data, so they are mapped); `base + off` is where that
            // mapping shows file offset `off`; the caller holds the lock that keeps
            // computations off this model while we replace the pages.
            unsafe {
                platform::map_private(self.base + off as usize, len as usize, &self.file, off)
            }
            .map_err(|e| InferError::io("map a private copy over", &self.path, e))?;
            self.overlaid.extend(run_start..p);
        }
        let src = &bytes[(s - offset) as usize..(s - offset + l) as usize];
        // SAFETY: `s..s+l` is inside the span, now private writable pages of our own (just
        // mapped above or earlier); `src` is a distinct Rust slice, so they do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                (self.base + s as usize) as *mut u8,
                l as usize,
            )
        };
        Ok(())
    }

    /// Drops every private copy: llama.cpp sees the file again.
    pub fn reset(&mut self) -> Result<()> {
        let pages: Vec<u64> = std::mem::take(&mut self.overlaid).into_iter().collect();
        let mut i = 0;
        while i < pages.len() {
            let start = pages[i];
            let mut end = start + 1;
            i += 1;
            while i < pages.len() && pages[i] == end {
                end += 1;
                i += 1;
            }
            let off = start * self.page;
            let len = (end - start) * self.page;
            // SAFETY: these pages were replaced by `map_private` over llama.cpp's mapping of
            // this file at these offsets; mapping the file shared again restores what llama.cpp
            // mapped.
            unsafe {
                platform::map_shared(self.base + off as usize, len as usize, &self.file, off)
            }
            .map_err(|e| InferError::io("map the file back over", &self.path, e))?;
        }
        Ok(())
    }
}

fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
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
