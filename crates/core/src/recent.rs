//! The recently opened models: a small list kept in the user's config directory.
//!
//! # Overview
//! [`RecentFiles`] is a JSON file (`<config dir>/hotpatch-studio/recent.json` by default, see
//! [`RecentFiles::default_location`]) holding absolute paths, most recent first, without
//! duplicates, at most [`RecentFiles::limit`] of them. [`RecentFiles::touch`] moves or adds a
//! path to the front; [`RecentFiles::list`] reports which entries no longer exist (so the UI
//! can mark them rather than silently dropping a file on an unmounted disk). A missing or
//! unreadable list file is an empty list; a corrupt one is replaced on the next write.
//! Writes are atomic (temp file + rename).

use std::path::{Path, PathBuf};

/// How many entries are kept by default.
pub const DEFAULT_LIMIT: usize = 12;

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEntry {
    /// Absolute path.
    pub path: PathBuf,
    /// Whether the file exists now.
    pub exists: bool,
}

/// The recent-files list stored at one path.
#[derive(Debug, Clone)]
pub struct RecentFiles {
    file: PathBuf,
    limit: usize,
}

impl RecentFiles {
    /// The list stored in `file`, keeping at most `limit` entries (at least 1).
    pub fn new(file: impl Into<PathBuf>, limit: usize) -> Self {
        RecentFiles {
            file: file.into(),
            limit: limit.max(1),
        }
    }

    /// `<user config dir>/hotpatch-studio/recent.json`, if the OS has a config dir.
    pub fn default_location() -> Option<PathBuf> {
        crate::platform::user_config_dir().map(|d| d.join("hotpatch-studio").join("recent.json"))
    }

    /// The file the list lives in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The maximum number of entries.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn load(&self) -> Vec<PathBuf> {
        let Ok(text) = std::fs::read_to_string(&self.file) else {
            return Vec::new();
        };
        let Ok(paths) = serde_json::from_str::<Vec<String>>(&text) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = Vec::new();
        for p in paths.into_iter().map(PathBuf::from) {
            if p.is_absolute() && !out.contains(&p) && out.len() < self.limit {
                out.push(p);
            }
        }
        out
    }

    fn store(&self, paths: &[PathBuf]) -> std::io::Result<()> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let strings: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let text = serde_json::to_string_pretty(&strings).map_err(std::io::Error::other)?;
        Ok(hotpatch_atomic::write(
            &self.file,
            (text + "\n").as_bytes(),
        )?)
    }

    /// The entries, most recent first, each marked whether it exists.
    pub fn list(&self) -> Vec<RecentEntry> {
        self.load()
            .into_iter()
            .map(|path| RecentEntry {
                exists: path.is_file(),
                path,
            })
            .collect()
    }

    /// Puts `path` first (made absolute; moved up if already listed), dropping the oldest
    /// beyond the limit.
    pub fn touch(&self, path: &Path) -> std::io::Result<Vec<RecentEntry>> {
        let abs = absolute(path)?;
        let mut paths = self.load();
        paths.retain(|p| *p != abs);
        paths.insert(0, abs);
        paths.truncate(self.limit);
        self.store(&paths)?;
        Ok(self.list())
    }

    /// Removes `path` from the list (no error if absent).
    pub fn forget(&self, path: &Path) -> std::io::Result<Vec<RecentEntry>> {
        let mut paths = self.load();
        let abs = absolute(path).unwrap_or_else(|_| path.to_path_buf());
        paths.retain(|p| *p != abs && p != path);
        self.store(&paths)?;
        Ok(self.list())
    }

    /// Removes every entry whose file is gone.
    pub fn prune_missing(&self) -> std::io::Result<Vec<RecentEntry>> {
        let paths: Vec<PathBuf> = self.load().into_iter().filter(|p| p.is_file()).collect();
        self.store(&paths)?;
        Ok(self.list())
    }
}

/// `path` made absolute (canonical when it exists, so two spellings of one file dedup).
fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if let Ok(c) = path.canonicalize() {
        return Ok(c);
    }
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, RecentFiles) {
        let dir = tempfile::tempdir().unwrap();
        let list = RecentFiles::new(dir.path().join("cfg").join("recent.json"), 3);
        (dir, list)
    }

    fn names(v: &[RecentEntry]) -> Vec<String> {
        v.iter()
            .map(|e| e.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn most_recent_first_deduplicated_and_bounded() {
        let (dir, list) = setup();
        assert!(list.list().is_empty());
        let f = |n: &str| {
            let p = dir.path().join(n);
            std::fs::write(&p, b"x").unwrap();
            p
        };
        let (a, b, c, d) = (f("a.gguf"), f("b.gguf"), f("c.gguf"), f("d.gguf"));
        list.touch(&a).unwrap();
        list.touch(&b).unwrap();
        assert_eq!(names(&list.touch(&a).unwrap()), ["a.gguf", "b.gguf"]);
        // Another spelling of the same file does not duplicate it.
        let other = dir.path().join(".").join("b.gguf");
        assert_eq!(names(&list.touch(&other).unwrap()), ["b.gguf", "a.gguf"]);
        list.touch(&c).unwrap();
        assert_eq!(
            names(&list.touch(&d).unwrap()),
            ["d.gguf", "c.gguf", "b.gguf"]
        );
        // Persisted: a new handle on the same file sees the same list.
        let again = RecentFiles::new(list.file(), 3);
        assert_eq!(names(&again.list()), ["d.gguf", "c.gguf", "b.gguf"]);
        // Missing files are marked, then pruned on request.
        std::fs::remove_file(&c).unwrap();
        let v = list.list();
        assert_eq!(
            v.iter().map(|e| e.exists).collect::<Vec<_>>(),
            [true, false, true]
        );
        assert_eq!(names(&list.prune_missing().unwrap()), ["d.gguf", "b.gguf"]);
        assert_eq!(names(&list.forget(&d).unwrap()), ["b.gguf"]);
    }

    #[test]
    fn corrupt_or_hostile_list_files_read_as_empty_or_filtered() {
        let (_dir, list) = setup();
        std::fs::create_dir_all(list.file().parent().unwrap()).unwrap();
        std::fs::write(list.file(), b"{not json").unwrap();
        assert!(list.list().is_empty());
        std::fs::write(
            list.file(),
            br#"["relative/path.gguf", "/x/a.gguf", "/x/a.gguf", "/x/b.gguf", "/x/c.gguf", "/x/d.gguf"]"#,
        )
        .unwrap();
        let v = list.list();
        assert_eq!(names(&v), ["a.gguf", "b.gguf", "c.gguf"]);
        assert!(v.iter().all(|e| !e.exists));
    }
}
