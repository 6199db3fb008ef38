//! Configuration files on disk: reading one with errors that name the path (a directory, a
//! file over [`MAX_CONFIG_BYTES`] — refused before reading —, bytes that are not UTF-8), and
//! writing one atomically through `hotpatch-atomic` (temporary file beside the target, fsync,
//! rename; the mode of a replaced file kept). The studio and the CLI both use these.

use std::path::{Path, PathBuf};

use super::{Configuration, MAX_CONFIG_BYTES};

/// A configuration file that cannot be read or written. The message names the path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The operating system refused (missing file, missing folder, permissions).
    #[error("{}: {source}", path.display())]
    Io {
        /// The path it refused.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path cannot hold a configuration (a directory, no file name, too large, not text).
    #[error("{}: {message}", path.display())]
    Refused {
        /// The path.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl ConfigFileError {
    fn refused(path: &Path, message: impl Into<String>) -> Self {
        Self::Refused {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Reads a configuration file's text, refusing one larger than [`MAX_CONFIG_BYTES`] before
/// reading it.
pub fn read_text(path: &Path) -> Result<String, ConfigFileError> {
    let meta = std::fs::metadata(path).map_err(|e| ConfigFileError::io(path, e))?;
    if meta.is_dir() {
        return Err(ConfigFileError::refused(
            path,
            "is a directory, not a configuration file",
        ));
    }
    if meta.len() > MAX_CONFIG_BYTES as u64 {
        return Err(ConfigFileError::refused(
            path,
            format!(
                "{} bytes; a configuration is at most {MAX_CONFIG_BYTES} bytes",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| ConfigFileError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        ConfigFileError::refused(
            path,
            format!(
                "not UTF-8 text (byte {}): not a configuration file",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Writes `text` to `path` atomically (`hotpatch_atomic::write`).
pub fn write_text(path: &Path, text: &str) -> Result<(), ConfigFileError> {
    if path.is_dir() {
        return Err(ConfigFileError::refused(
            path,
            "is a directory; give a file name",
        ));
    }
    if path.file_name().is_none() {
        return Err(ConfigFileError::refused(path, "no file name"));
    }
    hotpatch_atomic::write(path, text.as_bytes())
        .map_err(|e| ConfigFileError::io(&e.path, e.source))
}

/// Writes `config` to `path` atomically as its JSON and a final newline.
pub fn write(path: &Path, config: &Configuration) -> Result<(), ConfigFileError> {
    write_text(path, &(config.to_json() + "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_refused_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let e = read_text(d).unwrap_err();
        assert!(
            matches!(e, ConfigFileError::Refused { .. }) && e.to_string().contains("directory"),
            "{e}"
        );
        let bin = d.join("bin.json");
        std::fs::write(&bin, [b'{', 0xff, 0xfe]).unwrap();
        let e = read_text(&bin).unwrap_err().to_string();
        assert!(e.contains("not UTF-8") && e.contains("byte 1"), "{e}");
        assert!(e.starts_with(&bin.display().to_string()), "{e}");
        let e = read_text(&d.join("missing.json")).unwrap_err();
        assert!(matches!(e, ConfigFileError::Io { .. }), "{e}");
        assert!(e.to_string().contains("missing.json"), "{e}");

        let e = write_text(d, "{}").unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let e = write_text(&d.join("no/such/dir/x.json"), "{}").unwrap_err();
        assert!(matches!(e, ConfigFileError::Io { .. }), "{e}");
        assert!(e.to_string().contains("no/such/dir"), "{e}");
    }

    #[test]
    fn a_written_configuration_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        std::fs::write(&p, "old").unwrap();
        let c = Configuration {
            name: Some("n".into()),
            ..Configuration::default()
        };
        write(&p, &c).unwrap();
        let text = read_text(&p).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(Configuration::from_json(&text).unwrap(), c);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
