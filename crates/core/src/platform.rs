//! Small platform shims: positional file I/O and directory fsync.

use std::fs::File;
use std::path::{Path, PathBuf};

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
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    hotpatch_atomic::sync_dir(path).map_err(EngineError::from)
}

/// The CPU features that decide llama.cpp's repacked weight layouts, found at run time
/// (`/proc/cpuinfo`-style names). Empty on architectures without such features.
pub(crate) fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            found.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push("avx512f");
        }
        if amx_int8() {
            found.push("amx_int8");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            found.push("neon");
        }
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            found.push("dotprod");
        }
        if std::arch::is_aarch64_feature_detected!("i8mm") {
            found.push("i8mm");
        }
        if std::arch::is_aarch64_feature_detected!("sve") {
            found.push("sve");
        }
    }
    found
}

/// Whether the CPU reports Intel AMX-INT8 (CPUID leaf 7, EDX bit 25). The OS must also enable
/// the tile state; on Linux the kernel lists `amx_int8` in /proc/cpuinfo only then, so that is
/// read where it exists.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
fn amx_int8() -> bool {
    #[cfg(target_os = "linux")]
    {
        if let Ok(text) = std::fs::read_to_string("/proc/cpuinfo") {
            return text
                .lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|l| l.split_whitespace().any(|f| f == "amx_int8"));
        }
    }
    false
}

/// The OS's per-user configuration directory: `$XDG_CONFIG_HOME` or `~/.config` on Linux,
/// `~/Library/Application Support` on macOS, `%APPDATA%` on Windows.
pub(crate) fn user_config_dir() -> Option<PathBuf> {
    if cfg!(windows) {
        return std::env::var_os("APPDATA").map(PathBuf::from);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        return home.map(|h| h.join("Library/Application Support"));
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| h.join(".config")))
}
