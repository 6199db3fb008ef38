//! Crash-safe file replacement, written once for every file the project saves (models, their
//! journals, configurations, presets, the recent-files list).
//!
//! Overview: [`write_with`] writes a new version of `dest` into a temporary file beside it
//! (`.NAME.hotpatch-write-PID-N.tmp`, same directory so the rename cannot cross file systems),
//! flushes it to disk, gives it the mode (and, where the OS allows, the owner and group) of the
//! file it replaces, renames it over `dest` and fsyncs the directory. A reader of `dest` sees
//! the old file or the new one, never a mix; a crash leaves `dest` as it was plus the temporary
//! file.
//!
//! **Leftovers are cleaned up, never a live writer's.** The writer holds an exclusive lock
//! ([`std::fs::File::lock`], `flock` on Unix) on its temporary file until the rename, so
//! [`clean_stale`] (called before every write, and by the engine when it opens a model) removes
//! only temporary files of `dest` that nobody holds and nobody wrote for a moment — those an
//! interrupted writer (killed, crashed, out of disk) left. The names older builds used
//! (`.hotpatch-write-XXXXXX.tmp` from the GGUF writer, `.NAME.hotpatch-tmp-PID` from Save As,
//! and the fixed names of the journal, preset and recent-files writers (`NAME.tmp`,
//! `.NAME.tmp`) are recognised too.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("hotpatch-atomic-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let dest = dir.join("settings.json");
//! hotpatch_atomic::write(&dest, b"{}\n").unwrap();
//! assert_eq!(std::fs::read(&dest).unwrap(), b"{}\n");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// A temporary file of this build that nobody holds is removed once it has not been written
/// for this long (the writer locks it right after creating it; this closes that window).
pub const STALE_AFTER: Duration = Duration::from_secs(2);

/// A temporary file of an older build (which held no lock) is removed once it has not been
/// written for this long (a live writer writes continuously).
pub const STALE_AFTER_UNLOCKED: Duration = Duration::from_secs(30);

/// What failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct Error {
    /// The operation (`create`, `write`, `fsync`, `rename`, ...).
    pub op: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

impl Error {
    fn new(op: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::new(e.source.kind(), e.to_string())
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_name(dest: &Path) -> Result<OsString, Error> {
    dest.file_name().map(|n| n.to_owned()).ok_or_else(|| {
        Error::new(
            "name",
            dest,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path has no file name",
            ),
        )
    })
}

/// The prefix of every temporary file of `dest` written by this build: `.NAME.hotpatch-write-`.
fn temp_prefix(name: &OsString) -> String {
    format!(".{}.hotpatch-write-", name.to_string_lossy())
}

/// Whether `entry` (a file name in `dest`'s directory) is a temporary file a writer of `dest`
/// may have left, and how long it must have been idle before it counts as left: this build's
/// writers lock their file, older builds' did not.
fn temp_of(entry: &str, name: &str) -> Option<Duration> {
    if entry.starts_with(&format!(".{name}.hotpatch-write-")) && entry.ends_with(".tmp") {
        Some(STALE_AFTER)
    } else if (entry.starts_with(".hotpatch-write-") && entry.ends_with(".tmp"))
        || entry.starts_with(&format!(".{name}.hotpatch-tmp-"))
        || entry == format!("{name}.tmp")
        || entry == format!(".{name}.tmp")
    {
        Some(STALE_AFTER_UNLOCKED)
    } else {
        None
    }
}

/// Removes the temporary files interrupted writers of `dest` left in its directory: those no
/// live writer holds (their lock is free) and none wrote for [`STALE_AFTER`]
/// ([`STALE_AFTER_UNLOCKED`] for the names of older builds). Returns the files removed. Errors
/// (an unreadable directory, a file removed meanwhile) are not fatal: the file is left for a
/// later call.
pub fn clean_stale(dest: &Path) -> Vec<PathBuf> {
    let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(parent_dir(dest)) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let entry = e.file_name().to_string_lossy().into_owned();
        let Some(idle) = temp_of(&entry, &name) else {
            continue;
        };
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let recent = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_none_or(|age| age < idle);
        if recent {
            continue;
        }
        // A live writer holds its lock until the rename: skip what someone holds.
        let Ok(f) = OpenOptions::new().read(true).open(&path) else {
            continue;
        };
        if f.try_lock().is_err() {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
        // The lock goes with `f`, after the name is gone.
    }
    removed
}

/// Fsyncs the directory holding `path`, so that a rename or delete in it is durable. (On
/// Windows directories cannot be opened for sync; renames there are durable via the file.)
pub fn sync_dir(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        let dir = parent_dir(path);
        let d = File::open(dir).map_err(|e| Error::new("open directory", dir, e))?;
        d.sync_all()
            .map_err(|e| Error::new("fsync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Gives `tmp` the mode, owner and group of `dest` (the file it will replace), as far as the OS
/// allows: an unprivileged user cannot give a file away, so the owner is kept only when it is
/// the user's own (or the user is root), the group when the user is a member.
#[cfg(unix)]
fn keep_identity(tmp: &File, tmp_path: &Path, dest: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dest) else {
        // A new file: the mode a plain create gives (0666 less the umask).
        return Ok(());
    };
    if std::os::unix::fs::fchown(tmp, Some(meta.uid()), Some(meta.gid())).is_err() {
        let _ = std::os::unix::fs::fchown(tmp, None, Some(meta.gid()));
    }
    // After chown, which may clear set-id bits.
    tmp.set_permissions(meta.permissions())
        .map_err(|e| Error::new("set the mode of", tmp_path, e))
}

#[cfg(not(unix))]
fn keep_identity(tmp: &File, tmp_path: &Path, dest: &Path) -> Result<(), Error> {
    if let Ok(meta) = std::fs::metadata(dest) {
        tmp.set_permissions(meta.permissions())
            .map_err(|e| Error::new("set the permissions of", tmp_path, e))?;
    }
    Ok(())
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Replaces `dest` with what `write` writes into the temporary file (see the module docs).
/// `write` gets the open, locked temporary file and its path; when it fails (or asks to stop)
/// the temporary file is removed and `dest` is left as it was. Errors of this crate convert
/// into `E`.
pub fn write_with<T, E>(
    dest: &Path,
    write: impl FnOnce(&File, &Path) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<Error>,
{
    let name = file_name(dest)?;
    let dir = parent_dir(dest);
    clean_stale(dest);
    let (tmp_path, file) = loop {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let p = dir.join(format!(
            "{}{}-{n}.tmp",
            temp_prefix(&name),
            std::process::id()
        ));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => break (p, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::new("create", &p, e).into()),
        }
    };
    let result = (|| -> Result<T, E> {
        file.lock().map_err(|e| Error::new("lock", &tmp_path, e))?;
        let out = write(&file, &tmp_path)?;
        keep_identity(&file, &tmp_path, dest)?;
        file.sync_all()
            .map_err(|e| Error::new("fsync", &tmp_path, e))?;
        std::fs::rename(&tmp_path, dest).map_err(|e| Error::new("rename to", dest, e))?;
        Ok(out)
    })();
    match result {
        Ok(out) => {
            drop(file);
            sync_dir(dest)?;
            Ok(out)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_path);
            Err(e)
        }
    }
}

/// Replaces `dest` with `bytes` (see [`write_with`]).
pub fn write(dest: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_with(dest, |mut f, p| {
        f.write_all(bytes).map_err(|e| Error::new("write", p, e))
    })
}
