//! The parser: a GGUF byte slice to a [`GgufIndex`], touching only the header.
//!
//! Every size read from the file is checked before it is used: counts against the bytes left
//! (each metadata entry needs at least 13 bytes, each tensor info at least 24, each array
//! element at least its minimum encoding), string lengths against the bytes left, array
//! nesting against [`MAX_NESTING`], dimensions against [`MAX_DIMS`] with checked products.
//! Nothing is allocated from a size that was not checked first, so the memory used is bounded
//! by the size of the header actually present.

use std::collections::HashMap;

use crate::index::{GgufIndex, MetadataEntry, TensorInfo, TensorType, DEFAULT_ALIGNMENT};
use crate::value::{MetaArray, MetaValue, StringArray, ValueType};
use crate::GgufError;

/// The magic bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Deepest array nesting accepted (an array of arrays is depth 2).
pub const MAX_NESTING: usize = 8;
/// Most dimensions a tensor may have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// Files must be smaller than this (2^53) so every offset is exact as an `f64`.
pub const MAX_FILE_SIZE: u64 = 1 << 53;
/// Largest alignment accepted (a sane cap; llama.cpp writers use 32).
pub const MAX_ALIGNMENT: u64 = 1 << 20;

const MIN_KV: u64 = 8 + 4 + 1;
const MIN_TENSOR_INFO: u64 = 8 + 4 + 4 + 8;

/// Parses a whole GGUF file held in `bytes`. Never touches tensor data beyond checking that
/// each tensor's range lies inside `bytes`.
pub fn parse(bytes: &[u8]) -> Result<GgufIndex, GgufError> {
    parse_sized(bytes, bytes.len() as u64)
}

/// Parses the header of a GGUF file of `file_size` bytes from `prefix`, its first bytes
/// (at least up to the end of the tensor infos). Tensor ranges are checked against
/// `file_size`; reading past the end of `prefix` is [`GgufError::Truncated`]. This is how a
/// change to the header can be checked on a copy of the header alone.
pub fn parse_header(prefix: &[u8], file_size: u64) -> Result<GgufIndex, GgufError> {
    if (prefix.len() as u64) > file_size {
        return Err(GgufError::Invalid(format!(
            "header prefix of {} bytes is longer than the file ({file_size} bytes)",
            prefix.len()
        )));
    }
    parse_sized(prefix, file_size)
}

fn parse_sized(bytes: &[u8], size: u64) -> Result<GgufIndex, GgufError> {
    if size >= MAX_FILE_SIZE {
        return Err(GgufError::FileTooLarge { size });
    }
    let mut r = Reader { bytes, pos: 0 };
    let magic = r.take(4, || "magic".into())?;
    if magic != MAGIC {
        let mut found = [0u8; 4];
        found.copy_from_slice(magic);
        return Err(GgufError::BadMagic { found });
    }
    let version = r.u32(|| "version".into())?;
    if !(2..=3).contains(&version) {
        let swapped = version.swap_bytes();
        if (1..=3).contains(&swapped) {
            return Err(GgufError::BigEndian { version: swapped });
        }
        return Err(GgufError::UnsupportedVersion { version });
    }
    let tensor_count_at = r.pos;
    let tensor_count = r.u64(|| "tensor count".into())?;
    let kv_count_at = r.pos;
    let kv_count = r.u64(|| "metadata entry count".into())?;
    r.check_count(kv_count, MIN_KV, kv_count_at, || {
        "metadata entry count".into()
    })?;
    r.check_count(tensor_count, MIN_TENSOR_INFO, tensor_count_at, || {
        "tensor count".into()
    })?;

    let mut metadata = Vec::with_capacity(prealloc(kv_count));
    let mut seen_keys: HashMap<String, u64> = HashMap::with_capacity(prealloc(kv_count));
    for i in 0..kv_count {
        let offset = r.pos;
        let key_bytes = r.string(|| format!("key of metadata entry {i}"))?;
        let key = std::str::from_utf8(key_bytes)
            .map_err(|_| GgufError::InvalidUtf8 {
                what: format!("key of metadata entry {i}"),
                offset: offset + 8,
            })?
            .to_owned();
        if let Some(&first) = seen_keys.get(&key) {
            return Err(GgufError::DuplicateKey { key, offset, first });
        }
        let type_at = r.pos;
        let type_id = r.u32(|| format!("type of metadata '{key}'"))?;
        let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::BadValueType {
            what: format!("metadata '{key}'"),
            offset: type_at,
            type_id,
        })?;
        let value_offset = r.pos;
        let value = r.value(ty, &key, 1)?;
        seen_keys.insert(key.clone(), offset);
        metadata.push(MetadataEntry {
            key,
            value,
            offset,
            value_offset,
            value_len: r.pos - value_offset,
        });
    }

    let alignment = match metadata.iter().find(|e| e.key == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(e) => check_alignment(e)?,
    };

    let mut tensors = Vec::with_capacity(prealloc(tensor_count));
    let mut seen_names: HashMap<String, usize> = HashMap::with_capacity(prealloc(tensor_count));
    for index in 0..tensor_count as usize {
        let info_offset = r.pos;
        let name_bytes = r.string(|| format!("name of tensor {index}"))?;
        let name = std::str::from_utf8(name_bytes)
            .map_err(|_| GgufError::InvalidUtf8 {
                what: format!("name of tensor {index}"),
                offset: info_offset + 8,
            })?
            .to_owned();
        if let Some(&first) = seen_names.get(&name) {
            return Err(GgufError::DuplicateTensor {
                name,
                index,
                offset: info_offset,
                first,
            });
        }
        let bad = |offset: u64, problem: String| GgufError::BadTensor {
            name: name.clone(),
            index,
            offset,
            problem,
        };
        let ndims_at = r.pos;
        let n_dims = r.u32(|| format!("dimension count of tensor '{name}' (index {index})"))?;
        if n_dims as usize > MAX_DIMS {
            return Err(bad(
                ndims_at,
                format!("{n_dims} dimensions, at most {MAX_DIMS} allowed"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        let mut n_elements: u64 = 1;
        for d in 0..n_dims {
            let at = r.pos;
            let v = r.u64(|| format!("dimension {d} of tensor '{name}' (index {index})"))?;
            if v > i64::MAX as u64 {
                return Err(bad(
                    at,
                    format!("dimension {d} is {v}, negative as ggml's int64"),
                ));
            }
            n_elements = n_elements
                .checked_mul(v)
                .filter(|&n| n <= i64::MAX as u64)
                .ok_or_else(|| {
                    bad(
                        at,
                        format!("element count overflows at dimension {d} ({v})"),
                    )
                })?;
            dims.push(v);
        }
        let type_at = r.pos;
        let ty = TensorType::from_id(r.u32(|| format!("type of tensor '{name}' (index {index})"))?);
        let off_at = r.pos;
        let rel = r.u64(|| format!("data offset of tensor '{name}' (index {index})"))?;
        if rel % alignment != 0 {
            return Err(bad(
                off_at,
                format!("data offset {rel} is not a multiple of the alignment {alignment}"),
            ));
        }
        let nbytes = match ty {
            TensorType::Known(t) => {
                let bs = t.block_size() as u64;
                let first = dims.first().copied().unwrap_or(1);
                if first % bs != 0 {
                    return Err(bad(
                        type_at,
                        format!(
                            "first dimension {first} is not a multiple of the {t} block size {bs}"
                        ),
                    ));
                }
                (n_elements / bs)
                    .checked_mul(t.type_size() as u64)
                    .ok_or_else(|| {
                        bad(
                            type_at,
                            format!("data size of {n_elements} {t} elements overflows"),
                        )
                    })?
            }
            TensorType::Unknown(_) => 0,
        };
        seen_names.insert(name.clone(), index);
        tensors.push(TensorInfo {
            name,
            ty,
            dims,
            offset: rel,
            nbytes,
            n_elements,
            info_offset,
            shard: 0,
        });
    }

    let header_end = r.pos;
    let data_offset = align_up(header_end, alignment)
        .ok_or_else(|| GgufError::Invalid("data offset overflows".into()))?;
    place_tensors(&mut tensors, data_offset, size)?;
    Ok(GgufIndex {
        version,
        alignment,
        data_offset,
        metadata,
        tensors,
        file_size: size,
    })
}

/// How many items to reserve room for up front: a count that passed [`Reader::check_count`]
/// is bounded by the file size, not by the header, so large counts grow as items are parsed.
fn prealloc(count: u64) -> usize {
    count.min(4096) as usize
}

/// Rounds `v` up to a multiple of `align` (a power of two).
pub(crate) fn align_up(v: u64, align: u64) -> Option<u64> {
    Some(v.checked_add(align - 1)? & !(align - 1))
}

fn check_alignment(e: &MetadataEntry) -> Result<u64, GgufError> {
    let bad = |problem: String| GgufError::BadAlignment {
        offset: e.offset,
        problem,
    };
    let MetaValue::U32(a) = e.value else {
        return Err(bad(format!(
            "type is {}, expected UINT32",
            e.value.value_type()
        )));
    };
    let a = u64::from(a);
    if a == 0 || !a.is_power_of_two() || a > MAX_ALIGNMENT {
        return Err(bad(format!(
            "{a} is not a power of two between 1 and {MAX_ALIGNMENT}"
        )));
    }
    Ok(a)
}

/// Turns relative offsets into absolute ones, checks every range lies inside the file and that
/// no two overlap, and sizes unknown-type tensors by the room they have.
fn place_tensors(tensors: &mut [TensorInfo], data_offset: u64, size: u64) -> Result<(), GgufError> {
    for (index, t) in tensors.iter_mut().enumerate() {
        let oob = |t: &TensorInfo, problem: String| GgufError::BadTensor {
            name: t.name.clone(),
            index,
            offset: t.info_offset,
            problem,
        };
        let Some(start) = data_offset.checked_add(t.offset) else {
            return Err(oob(t, format!("data offset {} overflows", t.offset)));
        };
        let end = start.checked_add(t.nbytes);
        match end {
            Some(end) if end <= size => {}
            _ => {
                return Err(oob(
                    t,
                    format!(
                        "data [{start:#x}, +{}) extends past end of file (size {size})",
                        t.nbytes
                    ),
                ))
            }
        }
        t.offset = start;
    }
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| (tensors[i].offset, tensors[i].nbytes));
    // Sized first: an unknown-type tensor gets the room up to the next tensor's start.
    for w in 0..order.len() {
        let i = order[w];
        if let TensorType::Unknown(_) = tensors[i].ty {
            let next_start = order.get(w + 1).map_or(size, |&j| tensors[j].offset);
            tensors[i].nbytes = next_start - tensors[i].offset;
        }
    }
    // Then every tensor is compared with the one reaching furthest so far (not just its
    // neighbour: an empty tensor in between must not hide an overlap).
    let mut furthest: Option<usize> = None;
    for &i in &order {
        let cur = &tensors[i];
        if cur.nbytes == 0 {
            continue; // Empty tensors occupy nothing and may share an offset with anything.
        }
        if let Some(p) = furthest {
            let prev = &tensors[p];
            if cur.offset < prev.end() {
                return Err(GgufError::Overlap {
                    name: cur.name.clone(),
                    index: i,
                    start: cur.offset,
                    end: cur.end(),
                    other: prev.name.clone(),
                    other_start: prev.offset,
                    other_end: prev.end(),
                });
            }
        }
        if furthest.is_none_or(|p| cur.end() > tensors[p].end()) {
            furthest = Some(i);
        }
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: u64,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> u64 {
        self.bytes.len() as u64 - self.pos
    }

    fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos,
                needed: n,
                size: self.bytes.len() as u64,
            });
        }
        let start = self.pos as usize;
        self.pos += n;
        Ok(&self.bytes[start..start + n as usize])
    }

    fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A GGUF string: u64 length then bytes. The length is checked against the bytes left.
    fn string(&mut self, what: impl Fn() -> String) -> Result<&'a [u8], GgufError> {
        let len = self.u64(|| format!("length of {}", what()))?;
        self.take(len, what)
    }

    fn check_count(
        &self,
        count: u64,
        min_each: u64,
        offset: u64,
        what: impl FnOnce() -> String,
    ) -> Result<(), GgufError> {
        let remaining = self.remaining();
        if count > remaining / min_each {
            return Err(GgufError::CountTooLarge {
                what: what(),
                offset,
                count,
                remaining,
                min_each,
            });
        }
        Ok(())
    }

    fn value(&mut self, ty: ValueType, key: &str, depth: usize) -> Result<MetaValue, GgufError> {
        let what = || format!("value of metadata '{key}'");
        Ok(match ty {
            ValueType::U8 => MetaValue::U8(self.array::<1>(what)?[0]),
            ValueType::I8 => MetaValue::I8(i8::from_le_bytes(self.array(what)?)),
            ValueType::U16 => MetaValue::U16(u16::from_le_bytes(self.array(what)?)),
            ValueType::I16 => MetaValue::I16(i16::from_le_bytes(self.array(what)?)),
            ValueType::U32 => MetaValue::U32(u32::from_le_bytes(self.array(what)?)),
            ValueType::I32 => MetaValue::I32(i32::from_le_bytes(self.array(what)?)),
            ValueType::F32 => MetaValue::F32(f32::from_le_bytes(self.array(what)?)),
            ValueType::U64 => MetaValue::U64(u64::from_le_bytes(self.array(what)?)),
            ValueType::I64 => MetaValue::I64(i64::from_le_bytes(self.array(what)?)),
            ValueType::F64 => MetaValue::F64(f64::from_le_bytes(self.array(what)?)),
            ValueType::Bool => {
                let at = self.pos;
                MetaValue::Bool(self.bool(at, &what)?)
            }
            ValueType::String => MetaValue::String(self.string(what)?.to_vec()),
            ValueType::Array => MetaValue::Array(self.meta_array(key, depth)?),
        })
    }

    fn bool(&mut self, at: u64, what: &dyn Fn() -> String) -> Result<bool, GgufError> {
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(GgufError::BadBool {
                what: what(),
                offset: at,
                value,
            }),
        }
    }

    /// An array (element type, count, elements). Nesting is depth-limited: a file cannot make
    /// this recurse more than [`MAX_NESTING`] levels.
    fn meta_array(&mut self, key: &str, depth: usize) -> Result<MetaArray, GgufError> {
        let what = || format!("array in metadata '{key}' (depth {depth})");
        let start = self.pos;
        if depth > MAX_NESTING {
            return Err(GgufError::NestingTooDeep {
                what: format!("metadata '{key}'"),
                offset: start,
                max: MAX_NESTING,
            });
        }
        let type_id = self.u32(|| format!("element type of {}", what()))?;
        let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::BadValueType {
            what: what(),
            offset: start,
            type_id,
        })?;
        let count_at = self.pos;
        let count = self.u64(|| format!("element count of {}", what()))?;
        self.check_count(count, ty.min_size() as u64, count_at, || {
            format!("element count of {}", what())
        })?;
        let n = count as usize;
        macro_rules! fixed {
            ($variant:ident, $t:ty) => {{
                const W: usize = std::mem::size_of::<$t>();
                let raw = self.take(count * W as u64, what)?;
                MetaArray::$variant(
                    raw.chunks_exact(W)
                        .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; W])))
                        .collect(),
                )
            }};
        }
        Ok(match ty {
            ValueType::U8 => MetaArray::U8(self.take(count, what)?.to_vec()),
            ValueType::I8 => fixed!(I8, i8),
            ValueType::U16 => fixed!(U16, u16),
            ValueType::I16 => fixed!(I16, i16),
            ValueType::U32 => fixed!(U32, u32),
            ValueType::I32 => fixed!(I32, i32),
            ValueType::F32 => fixed!(F32, f32),
            ValueType::U64 => fixed!(U64, u64),
            ValueType::I64 => fixed!(I64, i64),
            ValueType::F64 => fixed!(F64, f64),
            ValueType::Bool => {
                let at = self.pos;
                let raw = self.take(count, what)?;
                let mut v = Vec::with_capacity(n);
                for (i, &b) in raw.iter().enumerate() {
                    match b {
                        0 | 1 => v.push(b == 1),
                        value => {
                            return Err(GgufError::BadBool {
                                what: format!("element {i} of {}", what()),
                                offset: at + i as u64,
                                value,
                            })
                        }
                    }
                }
                MetaArray::Bool(v)
            }
            ValueType::String => {
                let mut s = StringArray::with_capacity(prealloc(count), 0);
                for i in 0..count {
                    s.push(self.string(|| format!("string {i} of {}", what()))?);
                }
                MetaArray::String(s)
            }
            ValueType::Array => {
                // Not pre-sized: each inner array is paid for by the bytes it consumes.
                let mut v = Vec::new();
                for _ in 0..count {
                    v.push(self.meta_array(key, depth + 1)?);
                }
                MetaArray::Array(v)
            }
        })
    }
}
