//! Files on disk: one GGUF file mapped read-only, and split models opened as one.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::index::{GgufIndex, TensorInfo};
use crate::GgufError;

/// One GGUF file, memory-mapped read-only and parsed.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    map: Option<Mmap>,
    /// The parsed header.
    pub index: GgufIndex,
}

impl GgufFile {
    /// Maps `path` read-only and parses its header (O(header): tensor data is not read).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| GgufError::io(path, e))?;
        let meta = file.metadata().map_err(|e| GgufError::io(path, e))?;
        if meta.is_dir() {
            // Mapping a directory fails with "No such device (os error 19)": say what it is.
            return Err(GgufError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "is a directory, not a GGUF file (open the .gguf file inside it)",
                ),
            ));
        }
        let len = meta.len();
        if len >= crate::MAX_FILE_SIZE {
            return Err(GgufError::FileTooLarge { size: len });
        }
        // An empty file cannot be mapped on every platform; parse it as an empty slice so the
        // error is the usual "truncated magic".
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the map is read-only and private to this value. Another process may still
            // change the file underneath (the live-edit feature does exactly that); the parsed
            // index is a copy and every later access re-checks ranges against the map length,
            // so a concurrent writer can change values read but not cause out-of-bounds access.
            Some(unsafe { Mmap::map(&file) }.map_err(|e| GgufError::io(path, e))?)
        };
        let index = crate::parse(map.as_deref().unwrap_or(&[]))?;
        Ok(GgufFile {
            path: path.to_owned(),
            map,
            index,
        })
    }

    /// The path this file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole mapped file.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The data bytes of a tensor of this file.
    pub fn tensor_data(&self, t: &TensorInfo) -> Result<&[u8], GgufError> {
        slice_of(self.bytes(), t, &self.path)
    }
}

fn slice_of<'a>(bytes: &'a [u8], t: &TensorInfo, path: &Path) -> Result<&'a [u8], GgufError> {
    usize::try_from(t.offset)
        .ok()
        .zip(usize::try_from(t.end()).ok())
        .and_then(|(s, e)| bytes.get(s..e))
        .ok_or_else(|| {
            GgufError::Invalid(format!(
                "tensor '{}' data [{:#x}, {:#x}) is not inside {} (size {})",
                t.name,
                t.offset,
                t.end(),
                path.display(),
                bytes.len()
            ))
        })
}

/// A model made of one GGUF file or of several split shards
/// (`name-00001-of-00003.gguf`, llama.cpp's `gguf-split` layout), presented as one tensor list.
///
/// Metadata is the first shard's. Each tensor's [`TensorInfo::shard`] says which file holds
/// its data; offsets are absolute in that file.
#[derive(Debug)]
pub struct GgufModel {
    /// The shards in order (one for a single-file model).
    pub shards: Vec<GgufFile>,
    /// Every tensor of every shard, in shard order then file order.
    pub tensors: Vec<TensorInfo>,
}

/// Split metadata keys, as llama.cpp's gguf-split writes them.
pub const SPLIT_COUNT: &str = "split.count";
/// The 0-based shard number key.
pub const SPLIT_NO: &str = "split.no";
/// The total tensor count key.
pub const SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

impl GgufModel {
    /// Opens `path`; if it is a shard of a split model (by its `split.count` metadata or a
    /// `-NNNNN-of-MMMMM.gguf` file name), finds and opens every shard. Errors name the missing
    /// or inconsistent shard.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufModel, GgufError> {
        let path = path.as_ref();
        let first = GgufFile::open(path)?;
        let paths = split_paths(path, &first.index)?;
        let mut first = Some(first);
        let mut shards = Vec::with_capacity(paths.len());
        for p in &paths {
            match first.take_if(|f| f.path == *p) {
                Some(f) => shards.push(f),
                None => shards.push(GgufFile::open(p)?),
            }
        }
        let indexes: Vec<(&Path, &GgufIndex)> =
            shards.iter().map(|f| (f.path(), &f.index)).collect();
        let tensors = merge_shards(&indexes)?;
        Ok(GgufModel { shards, tensors })
    }

    /// The first shard's header (metadata of the model).
    pub fn index(&self) -> &GgufIndex {
        &self.shards[0].index
    }

    /// The tensor with this name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The data of a tensor, from whichever shard holds it.
    pub fn tensor_data(&self, t: &TensorInfo) -> Result<&[u8], GgufError> {
        let f = self.shards.get(t.shard).ok_or_else(|| {
            GgufError::Invalid(format!(
                "tensor '{}' names shard {} of {}",
                t.name,
                t.shard + 1,
                self.shards.len()
            ))
        })?;
        slice_of(f.bytes(), t, &f.path)
    }

    /// Whether the model is split over several files.
    pub fn is_split(&self) -> bool {
        self.shards.len() > 1
    }
}

/// The files of the model that `path` (already parsed as `index`) belongs to, in shard order:
/// `[path]` for a single-file model, else every `-NNNNN-of-MMMMM.gguf` sibling. A split model is
/// recognised by its `split.count` metadata or its file name; errors name the missing shard or
/// the inconsistency. Only checks that the files exist; [`merge_shards`] checks their headers.
pub fn split_paths(path: &Path, index: &GgufIndex) -> Result<Vec<PathBuf>, GgufError> {
    let count = index.get_u64(SPLIT_COUNT).unwrap_or(0);
    let by_name = split_name(path);
    if count <= 1 && by_name.as_ref().is_none_or(|(_, _, n)| *n <= 1) {
        return Ok(vec![path.to_path_buf()]);
    }
    let Some((prefix, _, n)) = by_name else {
        return Err(GgufError::Split {
            problem: format!(
                "{} has {SPLIT_COUNT} = {count} but its name does not end in -NNNNN-of-MMMMM.gguf, so the other shards cannot be found",
                path.display()
            ),
        });
    };
    if count != 0 && count != n {
        return Err(GgufError::Split {
            problem: format!(
                "{} has {SPLIT_COUNT} = {count} but its name says {n} shards",
                path.display()
            ),
        });
    }
    if n > 99_999 {
        return Err(GgufError::Split {
            problem: format!("{n} shards is more than the naming scheme allows"),
        });
    }
    (0..n)
        .map(|i| {
            let p = PathBuf::from(format!("{prefix}-{:05}-of-{n:05}.gguf", i + 1));
            if p == path || p.exists() {
                Ok(p)
            } else {
                Err(GgufError::Split {
                    problem: format!("shard {} of {n} is missing: {}", i + 1, p.display()),
                })
            }
        })
        .collect()
}

/// The tensors of a model made of `shards` (each file's path, for messages, and parsed header,
/// in shard order), as one list in shard order then file order, each [`TensorInfo::shard`] set.
/// With more than one shard, checks what llama.cpp's loader checks: each shard's `split.no` and
/// `split.count`, no tensor in two shards, and the first shard's `split.tensors.count`.
pub fn merge_shards(shards: &[(&Path, &GgufIndex)]) -> Result<Vec<TensorInfo>, GgufError> {
    let n = shards.len() as u64;
    if n == 1 {
        return Ok(shards[0].1.tensors.clone());
    }
    let mut tensors = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (s, (path, index)) in shards.iter().enumerate() {
        let (no, c) = (index.get_u64(SPLIT_NO), index.get_u64(SPLIT_COUNT));
        if no != Some(s as u64) || c != Some(n) {
            return Err(GgufError::Split {
                problem: format!(
                    "{} should be shard {} of {n} ({SPLIT_NO} = {s}, {SPLIT_COUNT} = {n}) but has {SPLIT_NO} = {}, {SPLIT_COUNT} = {}",
                    path.display(),
                    s + 1,
                    no.map_or("absent".into(), |v| v.to_string()),
                    c.map_or("absent".into(), |v| v.to_string()),
                ),
            });
        }
        for t in &index.tensors {
            if let Some(prev) = seen.insert(t.name.as_str(), s) {
                return Err(GgufError::Split {
                    problem: format!(
                        "tensor '{}' is in shard {} and again in shard {}",
                        t.name,
                        prev + 1,
                        s + 1
                    ),
                });
            }
            tensors.push(TensorInfo {
                shard: s,
                ..t.clone()
            });
        }
    }
    if let Some(total) = shards
        .first()
        .and_then(|(_, i)| i.get_u64(SPLIT_TENSORS_COUNT))
    {
        if total != tensors.len() as u64 {
            return Err(GgufError::Split {
                problem: format!(
                    "{SPLIT_TENSORS_COUNT} says {total} tensors but the shards hold {}",
                    tensors.len()
                ),
            });
        }
    }
    Ok(tensors)
}

/// Splits `dir/name-00002-of-00005.gguf` into (`dir/name`, 2, 5).
pub fn split_name(path: &Path) -> Option<(String, u64, u64)> {
    let s = path.to_str()?;
    let stem = s.strip_suffix(".gguf")?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, no) = rest.rsplit_once('-')?;
    let digits = |d: &str| d.len() == 5 && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(count) || !digits(no) {
        return None;
    }
    Some((prefix.to_owned(), no.parse().ok()?, count.parse().ok()?))
}
