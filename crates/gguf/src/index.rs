//! The parsed header of a GGUF file: metadata entries and the tensor index.

use hotpatch_quant::GgmlType;
use std::fmt;

use crate::value::{MetaArray, MetaValue};
use crate::GgufError;

/// The default data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// A tensor's element type: a ggml type this build knows, or a raw id it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorType {
    /// A known ggml type.
    Known(GgmlType),
    /// An id the spec (as this build knows it) does not list; the tensor is still listed.
    Unknown(u32),
}

impl TensorType {
    /// The type for a raw id.
    pub fn from_id(id: u32) -> TensorType {
        GgmlType::from_id(id).map_or(TensorType::Unknown(id), TensorType::Known)
    }

    /// The raw id.
    pub fn id(self) -> u32 {
        match self {
            TensorType::Known(t) => t.id(),
            TensorType::Unknown(id) => id,
        }
    }

    /// The known type, if any.
    pub fn known(self) -> Option<GgmlType> {
        match self {
            TensorType::Known(t) => Some(t),
            TensorType::Unknown(_) => None,
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorType::Known(t) => f.write_str(t.name()),
            TensorType::Unknown(id) => write!(f, "UNKNOWN({id})"),
        }
    }
}

/// One metadata key/value pair and where it sits in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataEntry {
    /// The key, e.g. `general.architecture`.
    pub key: String,
    /// The value.
    pub value: MetaValue,
    /// Absolute offset of the entry (its key length field).
    pub offset: u64,
    /// Absolute offset of the value's payload (just after its 4-byte type id, which is at
    /// `value_offset - 4`). For a string the payload starts with its 8-byte length.
    pub value_offset: u64,
    /// Length of the payload in bytes (not counting the type id).
    pub value_len: u64,
}

/// One tensor of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// The element type.
    pub ty: TensorType,
    /// Dimensions in ggml order (`ne[0]`, the contiguous one, first).
    pub dims: Vec<u64>,
    /// Absolute offset of the tensor data in its file.
    pub offset: u64,
    /// Data size in bytes. For an unknown type this is the room up to the next tensor (or the
    /// end of the file), an upper bound of the real size.
    pub nbytes: u64,
    /// Number of elements (product of `dims`).
    pub n_elements: u64,
    /// Absolute offset of the tensor info record in the header.
    pub info_offset: u64,
    /// Which file of a split model holds the data (0 for single-file models).
    pub shard: usize,
}

impl TensorInfo {
    /// The known ggml type, or an error naming the tensor.
    pub fn ggml_type(&self) -> Result<GgmlType, GgufError> {
        self.ty.known().ok_or_else(|| GgufError::UnknownTensorType {
            name: self.name.clone(),
            id: self.ty.id(),
        })
    }

    /// The end of the tensor data (absolute, exclusive).
    pub fn end(&self) -> u64 {
        self.offset + self.nbytes
    }
}

/// The parsed header of one GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufIndex {
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Data alignment (`general.alignment`, or 32).
    pub alignment: u64,
    /// Absolute offset where tensor data starts.
    pub data_offset: u64,
    /// Metadata entries in file order.
    pub metadata: Vec<MetadataEntry>,
    /// Tensors in file order.
    pub tensors: Vec<TensorInfo>,
    /// Size of the parsed file (or slice) in bytes.
    pub file_size: u64,
}

impl GgufIndex {
    /// The tensor with this name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The metadata entry with this key.
    pub fn entry(&self, key: &str) -> Option<&MetadataEntry> {
        self.metadata.iter().find(|e| e.key == key)
    }

    /// The value of a metadata key.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.entry(key).map(|e| &e.value)
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// An integer value that fits in `u32` (any integer type is accepted, as llama.cpp's
    /// converters are not consistent about widths).
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        u32::try_from(self.get(key)?.as_u64()?).ok()
    }

    /// An integer value as `u64` (any non-negative integer type).
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// A float value (f32 or f64) as `f64`.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            MetaValue::F32(v) => Some((*v).into()),
            MetaValue::F64(v) => Some(*v),
            _ => None,
        }
    }

    /// An array value.
    pub fn get_array(&self, key: &str) -> Option<&MetaArray> {
        self.get(key)?.as_array()
    }

    /// `general.architecture`, e.g. `"llama"`.
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// An architecture-scoped key: `arch_key("block_count")` reads `llama.block_count`.
    pub fn arch_u32(&self, suffix: &str) -> Option<u32> {
        self.get_u32(&format!("{}.{suffix}", self.architecture()?))
    }

    /// `<arch>.attention.head_count`.
    pub fn head_count(&self) -> Option<u32> {
        self.arch_u32("attention.head_count")
    }

    /// `<arch>.attention.head_count_kv` (falls back to the head count, as llama.cpp does).
    pub fn head_count_kv(&self) -> Option<u32> {
        self.arch_u32("attention.head_count_kv")
            .or_else(|| self.head_count())
    }

    /// `<arch>.block_count`.
    pub fn block_count(&self) -> Option<u32> {
        self.arch_u32("block_count")
    }

    /// `<arch>.embedding_length`.
    pub fn embedding_length(&self) -> Option<u32> {
        self.arch_u32("embedding_length")
    }

    /// End of the last tensor's data (or `data_offset` when there is none).
    pub fn data_end(&self) -> u64 {
        self.tensors
            .iter()
            .map(TensorInfo::end)
            .max()
            .unwrap_or(self.data_offset)
            .max(self.data_offset)
    }
}
