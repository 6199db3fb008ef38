//! The crash-safety journal beside a model file (`<model>.hotpatch-journal`).
//!
//! Before any byte of a file is changed in place (a staged Save, or a live write), the engine
//! writes a journal holding, for every range about to change, its file offset, the original
//! bytes and the new bytes; the journal is written to a temporary name, fsynced, renamed into
//! place and the directory fsynced. Only then are the ranges written and the file fsynced;
//! finally the journal is deleted (and the directory fsynced).
//!
//! **Recovery rolls forward.** When a journal exists at open, its new bytes are written again
//! and the journal is deleted, so the file becomes *fully new*. Why forward and not back: the
//! journal only exists (under its final name) once it is complete and durable, which happens
//! after the user asked for the change and before the first byte of the file was touched; the
//! file then holds, per byte, either the old or the new value, and completing the change is what
//! the user asked for (a Save that was pressed, a live edit that a running llama.cpp may already
//! have read). A crash before the rename leaves only a temporary file, which is ignored and
//! removed: the file is then *fully old*. Recovery first checks that the file still matches the
//! journal (same length; every journaled byte equal to its old or its new value); if another
//! program changed the file since, it refuses ([`EngineError::JournalConflict`]) and touches
//! nothing.
//!
//! Format (little-endian): magic `HPJRNL\0\x01`, u64 file length, u64 record count, records
//! (u64 offset, u64 len, old bytes, new bytes), u64 FNV-1a 64 of everything before, magic
//! `HPJEND\0\x01`. Records never overlap.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};
use crate::platform;

const MAGIC: &[u8; 8] = b"HPJRNL\0\x01";
const END: &[u8; 8] = b"HPJEND\0\x01";

/// One range about to change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    /// Absolute file offset.
    pub offset: u64,
    /// Bytes currently in the file.
    pub old: &'a [u8],
    /// Bytes about to be written.
    pub new: &'a [u8],
}

/// The journal path for a model path.
pub fn journal_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".hotpatch-journal");
    PathBuf::from(s)
}

struct Fnv(u64);
impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Writes the journal durably (the shared atomic writer: temp file, fsync, rename, fsync dir).
/// Returns its size in bytes.
pub(crate) fn write_intent(path: &Path, file_len: u64, records: &[Record<'_>]) -> Result<u64> {
    let fin = journal_path(path);
    hotpatch_atomic::write_with(&fin, |f, tmp| -> Result<u64> {
        let err = |source| EngineError::io("write journal", tmp, source);
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut h = Fnv::new();
        let mut size = 0u64;
        let mut put = |w: &mut std::io::BufWriter<&File>, bytes: &[u8]| -> std::io::Result<()> {
            h.update(bytes);
            size += bytes.len() as u64;
            w.write_all(bytes)
        };
        (|| -> std::io::Result<()> {
            put(&mut w, MAGIC)?;
            put(&mut w, &file_len.to_le_bytes())?;
            put(&mut w, &(records.len() as u64).to_le_bytes())?;
            for r in records {
                debug_assert_eq!(r.old.len(), r.new.len());
                put(&mut w, &r.offset.to_le_bytes())?;
                put(&mut w, &(r.old.len() as u64).to_le_bytes())?;
                put(&mut w, r.old)?;
                put(&mut w, r.new)?;
            }
            Ok(())
        })()
        .map_err(err)?;
        let sum = h.0;
        w.write_all(&sum.to_le_bytes()).map_err(err)?;
        w.write_all(END).map_err(err)?;
        w.flush().map_err(err)?;
        Ok(size + 16)
    })
}

/// Deletes the journal after the change reached the file durably.
pub(crate) fn clear(path: &Path) -> Result<()> {
    let fin = journal_path(path);
    std::fs::remove_file(&fin).map_err(|e| EngineError::io("delete journal", &fin, e))?;
    platform::sync_dir(&fin)
}

/// What recovery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The journal that was found.
    pub journal: PathBuf,
    /// Ranges rolled forward.
    pub ranges: usize,
    /// Bytes rewritten.
    pub bytes: u64,
    /// Journaled bytes that already held the new value (the crash came after them).
    pub already_new: u64,
}

struct Parsed {
    file_len: u64,
    /// (offset, start of old bytes in the journal, len)
    records: Vec<(u64, usize, usize)>,
}

fn parse(jpath: &Path, j: &[u8]) -> Result<Parsed> {
    let corrupt = |offset: usize, why: &str| EngineError::CorruptJournal {
        path: jpath.to_path_buf(),
        offset: offset as u64,
        why: why.to_string(),
    };
    let u64_at = |at: usize| -> Result<u64> {
        j.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .ok_or_else(|| corrupt(at, "truncated"))
    };
    if j.len() < 40 || &j[..8] != MAGIC {
        return Err(corrupt(0, "missing journal magic"));
    }
    if &j[j.len() - 8..] != END {
        return Err(corrupt(
            j.len() - 8,
            "missing end marker (incomplete journal)",
        ));
    }
    let body_end = j.len() - 16;
    let sum = u64_at(body_end)?;
    let mut h = Fnv::new();
    h.update(&j[..body_end]);
    if h.0 != sum {
        return Err(corrupt(body_end, "checksum mismatch"));
    }
    let file_len = u64_at(8)?;
    let count = u64_at(16)?;
    // Each record takes at least 16 bytes: bound the count before allocating.
    if count > (body_end as u64) / 16 {
        return Err(corrupt(
            16,
            &format!("record count {count} cannot fit in the journal"),
        ));
    }
    let mut records = Vec::with_capacity(count as usize);
    let mut at = 24usize;
    let mut last_end = 0u64;
    for i in 0..count {
        let off = u64_at(at)?;
        let len = u64_at(at + 8)?;
        let data = at + 16;
        let need = len.checked_mul(2).and_then(|n| n.checked_add(data as u64));
        if need.is_none_or(|n| n > body_end as u64) {
            return Err(corrupt(
                at + 8,
                &format!("record {i} length {len} runs past the journal"),
            ));
        }
        let end = off.checked_add(len).filter(|e| *e <= file_len);
        let Some(end) = end else {
            return Err(corrupt(
                at,
                &format!("record {i} range {off}+{len} is outside the file length {file_len}"),
            ));
        };
        if off < last_end {
            return Err(corrupt(
                at,
                &format!("record {i} overlaps the previous one"),
            ));
        }
        last_end = end;
        records.push((off, data, len as usize));
        at = data + 2 * len as usize;
    }
    if at != body_end {
        return Err(corrupt(at, "trailing bytes after the last record"));
    }
    Ok(Parsed { file_len, records })
}

/// Recovers `path` from its journal if one exists (see the module docs: roll forward).
/// Returns `None` when there was nothing to recover. A leftover temporary journal (a crash
/// while it was being written, before any byte of the file changed) is deleted once no live
/// writer holds it.
pub fn recover(path: &Path) -> Result<Option<RecoveryReport>> {
    let jpath = journal_path(path);
    // Temporary journals of writers that died (never a live writer's: see hotpatch-atomic).
    hotpatch_atomic::clean_stale(&jpath);
    let j = match std::fs::read(&jpath) {
        Ok(j) => j,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io("read journal", &jpath, e)),
    };
    let parsed = parse(&jpath, &j)?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| EngineError::io("open for recovery", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| EngineError::io("stat", path, e))?
        .len();
    let conflict = |why: String| EngineError::JournalConflict {
        journal: jpath.clone(),
        path: path.to_path_buf(),
        why,
    };
    if len != parsed.file_len {
        return Err(conflict(format!(
            "file length is {len}, journal expects {}",
            parsed.file_len
        )));
    }
    // Verify everything before writing anything.
    let mut already_new = 0u64;
    let mut cur = Vec::new();
    for &(off, data, n) in &parsed.records {
        cur.resize(n, 0);
        platform::read_exact_at(&f, &mut cur, off)
            .map_err(|e| EngineError::io("read for recovery", path, e))?;
        let old = &j[data..data + n];
        let new = &j[data + n..data + 2 * n];
        for (i, ((c, o), nw)) in cur.iter().zip(old).zip(new).enumerate() {
            if c == nw {
                already_new += 1;
            } else if c != o {
                return Err(conflict(format!(
                    "byte at offset {} is {c:#04x}, neither the journaled old {o:#04x} nor new {nw:#04x}",
                    off + i as u64
                )));
            }
        }
    }
    let mut bytes = 0u64;
    for &(off, data, n) in &parsed.records {
        platform::write_all_at(&f, &j[data + n..data + 2 * n], off)
            .map_err(|e| EngineError::io("write for recovery", path, e))?;
        bytes += n as u64;
    }
    f.sync_all()
        .map_err(|e| EngineError::io("fsync", path, e))?;
    clear(path)?;
    Ok(Some(RecoveryReport {
        journal: jpath,
        ranges: parsed.records.len(),
        bytes,
        already_new,
    }))
}
