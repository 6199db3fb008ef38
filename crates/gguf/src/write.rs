//! The writer: a new GGUF file from metadata and tensor data sources, streamed, atomic; and
//! in-place metadata edits that keep the encoded size.
//!
//! [`write_file`] lays the header out (every tensor at the next multiple of the alignment, as
//! llama.cpp's writers do), writes it to a temporary file in the destination directory, copies
//! each tensor's data in bounded chunks (memory use does not grow with the model), pads, syncs
//! and renames over the destination. A failure at any point leaves the destination untouched.
//!
//! ```no_run
//! use hotpatch_gguf::{rewrite, GgufFile, MetaEdit, MetaValue};
//! let src = GgufFile::open("model.gguf")?;
//! let edits = [MetaEdit::Set("tokenizer.chat_template".into(), MetaValue::string("{{ messages }}"))];
//! rewrite(&src, &edits, "model-edited.gguf".as_ref(), &mut |p| eprintln!("{}/{}", p.done, p.total))?;
//! # Ok::<(), hotpatch_gguf::GgufError>(())
//! ```

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use crate::index::{GgufIndex, MetadataEntry, TensorType, DEFAULT_ALIGNMENT};
use crate::read::{align_up, MAX_ALIGNMENT, MAX_DIMS};
use crate::value::{MetaArray, MetaValue};
use crate::{GgufError, GgufFile};

/// Bytes copied between two progress reports (and the copy buffer size for readers).
const CHUNK: usize = 4 << 20;

/// Where a tensor's bytes come from.
pub enum TensorData<'a> {
    /// A slice (typically of a memory map: pages are read as they are copied).
    Bytes(&'a [u8]),
    /// A reader yielding exactly `len` bytes.
    Reader {
        /// The source.
        reader: Box<dyn Read + 'a>,
        /// How many bytes it yields.
        len: u64,
    },
}

impl TensorData<'_> {
    fn len(&self) -> u64 {
        match self {
            TensorData::Bytes(b) => b.len() as u64,
            TensorData::Reader { len, .. } => *len,
        }
    }
}

/// A tensor to write.
pub struct TensorSpec<'a> {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: TensorType,
    /// Dimensions in ggml order.
    pub dims: Vec<u64>,
    /// Its bytes.
    pub data: TensorData<'a>,
}

/// Progress of a write: tensor data bytes written so far out of the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteProgress {
    /// Bytes written.
    pub done: u64,
    /// Bytes to write.
    pub total: u64,
}

/// A metadata change for [`rewrite`].
#[derive(Debug, Clone, PartialEq)]
pub enum MetaEdit {
    /// Sets a key (replacing its value, whatever its type or size, or appending it).
    Set(String, MetaValue),
    /// Removes a key (no error if absent).
    Remove(String),
}

/// The layout of a file about to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The encoded header (magic .. last tensor info), without the padding after it.
    pub header: Vec<u8>,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    /// Absolute offset of each tensor's data.
    pub offsets: Vec<u64>,
    /// Total file size.
    pub file_size: u64,
    /// The alignment used.
    pub alignment: u64,
}

/// The shape of one tensor for [`layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorShape<'a> {
    /// Name.
    pub name: &'a str,
    /// Type.
    pub ty: TensorType,
    /// Dimensions, ggml order.
    pub dims: &'a [u64],
    /// Data size in bytes.
    pub nbytes: u64,
}

/// Computes the header bytes and where every tensor goes. Checks what a reader would refuse:
/// duplicate keys or names, too many dimensions, a data size that does not match the type and
/// dimensions, a bad `general.alignment`.
pub fn layout(
    version: u32,
    metadata: &[(String, MetaValue)],
    tensors: &[TensorShape<'_>],
) -> Result<Layout, GgufError> {
    if !(2..=3).contains(&version) {
        return Err(GgufError::Invalid(format!(
            "cannot write GGUF version {version} (2 or 3)"
        )));
    }
    let mut keys = HashSet::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for (k, v) in metadata {
        if !keys.insert(k.as_str()) {
            return Err(GgufError::Invalid(format!(
                "metadata key '{k}' given twice"
            )));
        }
        if k == "general.alignment" {
            match v {
                MetaValue::U32(a) if *a > 0 && a.is_power_of_two() && u64::from(*a) <= MAX_ALIGNMENT => {
                    alignment = (*a).into()
                }
                _ => {
                    return Err(GgufError::Invalid(format!(
                        "general.alignment must be a UINT32 power of two up to {MAX_ALIGNMENT}, got {v:?}"
                    )))
                }
            }
        }
        check_nesting(k, v)?;
    }
    let mut h = Vec::new();
    h.extend_from_slice(&crate::MAGIC);
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    h.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        put_str(&mut h, k.as_bytes());
        h.extend_from_slice(&v.value_type().id().to_le_bytes());
        encode_value(&mut h, v);
    }
    let mut names = HashSet::new();
    let mut rel = Vec::with_capacity(tensors.len());
    let mut cursor = 0u64;
    for t in tensors {
        if !names.insert(t.name) {
            return Err(GgufError::Invalid(format!(
                "tensor '{}' given twice",
                t.name
            )));
        }
        if t.dims.len() > MAX_DIMS {
            return Err(GgufError::Invalid(format!(
                "tensor '{}' has {} dimensions (at most {MAX_DIMS})",
                t.name,
                t.dims.len()
            )));
        }
        if let TensorType::Known(ty) = t.ty {
            let n = t.dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
            let want = n.and_then(|n| {
                (n % ty.block_size() as u64 == 0)
                    .then(|| n / ty.block_size() as u64 * ty.type_size() as u64)
            });
            if t.dims
                .first()
                .is_some_and(|&d| d % ty.block_size() as u64 != 0)
                || want != Some(t.nbytes)
            {
                return Err(GgufError::Invalid(format!(
                    "tensor '{}': {} bytes do not match {ty} with dims {:?}",
                    t.name, t.nbytes, t.dims
                )));
            }
        }
        put_str(&mut h, t.name.as_bytes());
        h.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in t.dims {
            h.extend_from_slice(&d.to_le_bytes());
        }
        h.extend_from_slice(&t.ty.id().to_le_bytes());
        h.extend_from_slice(&cursor.to_le_bytes());
        rel.push(cursor);
        cursor = cursor
            .checked_add(t.nbytes)
            .and_then(|c| align_up(c, alignment))
            .ok_or_else(|| GgufError::Invalid("data section size overflows".into()))?;
    }
    let data_offset = align_up(h.len() as u64, alignment)
        .ok_or_else(|| GgufError::Invalid("header too large".into()))?;
    let file_size = data_offset + cursor;
    if file_size >= crate::MAX_FILE_SIZE {
        return Err(GgufError::FileTooLarge { size: file_size });
    }
    Ok(Layout {
        header: h,
        data_offset,
        offsets: rel.iter().map(|r| r + data_offset).collect(),
        file_size,
        alignment,
    })
}

fn check_nesting(key: &str, v: &MetaValue) -> Result<(), GgufError> {
    fn depth(a: &MetaArray) -> usize {
        match a {
            MetaArray::Array(v) => 1 + v.iter().map(depth).max().unwrap_or(0),
            _ => 1,
        }
    }
    if let MetaValue::Array(a) = v {
        if depth(a) > crate::MAX_NESTING {
            return Err(GgufError::Invalid(format!(
                "metadata '{key}': arrays nested deeper than {}",
                crate::MAX_NESTING
            )));
        }
    }
    Ok(())
}

fn put_str(h: &mut Vec<u8>, s: &[u8]) {
    h.extend_from_slice(&(s.len() as u64).to_le_bytes());
    h.extend_from_slice(s);
}

/// Appends the payload of a value (without its type id) in GGUF encoding.
pub fn encode_value(h: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => h.push(*x),
        MetaValue::I8(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U16(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => h.push(u8::from(*x)),
        MetaValue::String(s) => put_str(h, s),
        MetaValue::Array(a) => encode_array(h, a),
        MetaValue::U64(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => h.extend_from_slice(&x.to_le_bytes()),
    }
}

fn encode_array(h: &mut Vec<u8>, a: &MetaArray) {
    h.extend_from_slice(&a.element_type().id().to_le_bytes());
    h.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! each {
        ($v:expr) => {
            for x in $v {
                h.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        MetaArray::U8(v) => h.extend_from_slice(v),
        MetaArray::I8(v) => each!(v),
        MetaArray::U16(v) => each!(v),
        MetaArray::I16(v) => each!(v),
        MetaArray::U32(v) => each!(v),
        MetaArray::I32(v) => each!(v),
        MetaArray::F32(v) => each!(v),
        MetaArray::Bool(v) => h.extend(v.iter().map(|&b| u8::from(b))),
        MetaArray::String(s) => {
            for x in s.iter() {
                put_str(h, x);
            }
        }
        MetaArray::Array(v) => {
            for x in v {
                encode_array(h, x);
            }
        }
        MetaArray::U64(v) => each!(v),
        MetaArray::I64(v) => each!(v),
        MetaArray::F64(v) => each!(v),
    }
}

/// What [`write_file`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    /// Size of the new file.
    pub file_size: u64,
    /// Its data section offset.
    pub data_offset: u64,
    /// Absolute offset of each tensor's data.
    pub offsets: Vec<u64>,
}

/// Writes a new GGUF file at `path` atomically ([`hotpatch_atomic::write_with`]: a temporary
/// file in the same directory, synced, given the mode and owner of the file it replaces, then
/// renamed over `path`). Tensor data is copied in bounded chunks; `progress` is called as
/// data is written.
pub fn write_file(
    path: &Path,
    version: u32,
    metadata: &[(String, MetaValue)],
    tensors: Vec<TensorSpec<'_>>,
    progress: &mut dyn FnMut(WriteProgress),
) -> Result<WriteSummary, GgufError> {
    let shapes: Vec<TensorShape<'_>> = tensors
        .iter()
        .map(|t| TensorShape {
            name: &t.name,
            ty: t.ty,
            dims: &t.dims,
            nbytes: t.data.len(),
        })
        .collect();
    let lay = layout(version, metadata, &shapes)?;
    let total: u64 = shapes.iter().map(|s| s.nbytes).sum();
    drop(shapes);

    // The one atomic writer (temp beside `path`, fsync, rename, fsync dir; mode and owner of
    // the file it replaces kept; leftovers of interrupted writers removed).
    hotpatch_atomic::write_with(path, |file, tmp_path| -> Result<(), GgufError> {
        let io = |e| GgufError::io(tmp_path, e);
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(&lay.header).map_err(io)?;
        let mut pos = lay.header.len() as u64;
        let mut done = 0u64;
        let mut buf = Vec::new();
        progress(WriteProgress { done, total });
        for (t, &at) in tensors.into_iter().zip(&lay.offsets) {
            pad(&mut w, at - pos).map_err(io)?;
            pos = at;
            match t.data {
                TensorData::Bytes(b) => {
                    for c in b.chunks(CHUNK) {
                        w.write_all(c).map_err(io)?;
                        done += c.len() as u64;
                        progress(WriteProgress { done, total });
                    }
                    pos += b.len() as u64;
                }
                TensorData::Reader { mut reader, len } => {
                    if buf.is_empty() {
                        buf = vec![0u8; CHUNK];
                    }
                    let mut left = len;
                    while left > 0 {
                        let n = (left.min(CHUNK as u64)) as usize;
                        reader.read_exact(&mut buf[..n]).map_err(|e| {
                            GgufError::Invalid(format!("reading data of tensor '{}': {e}", t.name))
                        })?;
                        w.write_all(&buf[..n]).map_err(io)?;
                        left -= n as u64;
                        done += n as u64;
                        progress(WriteProgress { done, total });
                    }
                    pos += len;
                }
            }
        }
        pad(&mut w, lay.file_size - pos).map_err(io)?;
        w.flush().map_err(io)?;
        Ok(())
    })?;
    Ok(WriteSummary {
        file_size: lay.file_size,
        data_offset: lay.data_offset,
        offsets: lay.offsets,
    })
}

fn pad(w: &mut impl Write, mut n: u64) -> std::io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        w.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

/// The metadata of `entries` with `edits` applied in order: `Set` replaces in place (keeping
/// the key's position) or appends; `Remove` drops.
pub fn apply_edits(entries: &[MetadataEntry], edits: &[MetaEdit]) -> Vec<(String, MetaValue)> {
    let mut out: Vec<(String, MetaValue)> = entries
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    for e in edits {
        match e {
            MetaEdit::Set(k, v) => match out.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v.clone(),
                None => out.push((k.clone(), v.clone())),
            },
            MetaEdit::Remove(k) => out.retain(|(key, _)| key != k),
        }
    }
    out
}

/// Writes a copy of `src` with metadata `edits` to `out` (atomic, streamed). Tensor data is
/// copied byte for byte; offsets move if the header size or alignment changes.
pub fn rewrite(
    src: &GgufFile,
    edits: &[MetaEdit],
    out: &Path,
    progress: &mut dyn FnMut(WriteProgress),
) -> Result<WriteSummary, GgufError> {
    if out
        .canonicalize()
        .ok()
        .is_some_and(|o| src.path().canonicalize().ok() == Some(o))
    {
        return Err(GgufError::Invalid(format!(
            "refusing to rewrite {} over itself while it is mapped; write elsewhere, or use edit_in_place",
            out.display()
        )));
    }
    let meta = apply_edits(&src.index.metadata, edits);
    let mut tensors = Vec::with_capacity(src.index.tensors.len());
    for t in &src.index.tensors {
        tensors.push(TensorSpec {
            name: t.name.clone(),
            ty: t.ty,
            dims: t.dims.clone(),
            data: TensorData::Bytes(src.tensor_data(t)?),
        });
    }
    write_file(out, src.index.version, &meta, tensors, progress)
}

/// Replaces the value of `key` in a GGUF held in `bytes`, in place, when the new value has the
/// same type and encoded size (e.g. a number, or a string of the same byte length). Returns
/// the byte range written. `general.alignment` can only be set to its current value.
pub fn edit_in_place(
    bytes: &mut [u8],
    key: &str,
    value: &MetaValue,
) -> Result<std::ops::Range<u64>, GgufError> {
    let index = crate::parse(bytes)?;
    let range = in_place_range(&index, key, value)?;
    let mut enc = Vec::with_capacity((range.end - range.start) as usize);
    encode_value(&mut enc, value);
    bytes[range.start as usize..range.end as usize].copy_from_slice(&enc);
    Ok(range)
}

fn in_place_range(
    index: &GgufIndex,
    key: &str,
    value: &MetaValue,
) -> Result<std::ops::Range<u64>, GgufError> {
    let e = index
        .entry(key)
        .ok_or_else(|| GgufError::Invalid(format!("no metadata key '{key}' to edit in place")))?;
    if e.value.value_type() != value.value_type() {
        return Err(GgufError::Invalid(format!(
            "metadata '{key}' is {} and cannot become {} in place; rewrite the file",
            e.value.value_type(),
            value.value_type()
        )));
    }
    if let (MetaValue::Array(a), MetaValue::Array(b)) = (&e.value, value) {
        if a.element_type() != b.element_type() {
            return Err(GgufError::Invalid(format!(
                "metadata '{key}': array element type cannot change in place"
            )));
        }
    }
    let len = value.encoded_len();
    if len != e.value_len {
        return Err(GgufError::Invalid(format!(
            "metadata '{key}': new value takes {len} bytes, the old one {}; only same-size edits are done in place, rewrite the file",
            e.value_len
        )));
    }
    if key == "general.alignment" && e.value != *value {
        return Err(GgufError::Invalid(
            "general.alignment moves every tensor; rewrite the file instead".into(),
        ));
    }
    check_nesting(key, value)?;
    Ok(e.value_offset..e.value_offset + len)
}

/// [`edit_in_place`] on a file: writes only the value's bytes and syncs them.
pub fn edit_file_in_place(
    path: &Path,
    key: &str,
    value: &MetaValue,
) -> Result<std::ops::Range<u64>, GgufError> {
    use std::io::{Seek, SeekFrom};
    let f = GgufFile::open(path)?;
    let range = in_place_range(&f.index, key, value)?;
    drop(f);
    let mut enc = Vec::new();
    encode_value(&mut enc, value);
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| GgufError::io(path, e))?;
    file.seek(SeekFrom::Start(range.start))
        .map_err(|e| GgufError::io(path, e))?;
    file.write_all(&enc).map_err(|e| GgufError::io(path, e))?;
    file.sync_data().map_err(|e| GgufError::io(path, e))?;
    Ok(range)
}
