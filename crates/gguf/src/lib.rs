//! The GGUF file format: a zero-copy reader and a streaming writer.
//!
//! [`parse`] reads the header of any byte slice holding a GGUF file (a memory map, usually) into
//! a [`GgufIndex`]: version, alignment, every metadata entry with the byte offset of its value,
//! and the tensor index with absolute data offsets. It never touches tensor data, so opening a
//! 100 GB model costs what reading its header costs. Every size in the file is checked before
//! use; a hostile file gets a [`GgufError`] naming the field and its offset, never a panic or
//! an allocation sized by the file.
//!
//! [`GgufFile`] maps one file read-only; [`GgufModel`] opens split models
//! (`model-00001-of-00003.gguf`) as one tensor list. [`write_file`] and [`rewrite`] write new
//! files (atomic, streamed); [`edit_in_place`] changes a value that keeps its size.
//!
//! ```
//! use hotpatch_gguf::{layout, parse, MetaValue, TensorShape, TensorType};
//! use hotpatch_quant::GgmlType;
//! let meta = vec![("general.architecture".to_string(), MetaValue::string("llama"))];
//! let t = TensorShape { name: "w", ty: TensorType::Known(GgmlType::F32), dims: &[4, 2], nbytes: 32 };
//! let lay = layout(3, &meta, &[t])?;
//! let mut file = lay.header.clone();
//! file.resize(lay.file_size as usize, 0);
//! let index = parse(&file)?;
//! assert_eq!(index.architecture(), Some("llama"));
//! assert_eq!(index.tensor("w").unwrap().offset, lay.data_offset);
//! # Ok::<(), hotpatch_gguf::GgufError>(())
//! ```
#![deny(missing_docs)]

mod error;
mod file;
mod index;
pub mod llama;
mod read;
mod value;
mod write;

pub use error::GgufError;
pub use file::{
    merge_shards, split_name, split_paths, GgufFile, GgufModel, SPLIT_COUNT, SPLIT_NO,
    SPLIT_TENSORS_COUNT,
};
pub use hotpatch_quant::GgmlType;
pub use index::{GgufIndex, MetadataEntry, TensorInfo, TensorType, DEFAULT_ALIGNMENT};
pub use read::{parse, parse_header, MAGIC, MAX_ALIGNMENT, MAX_DIMS, MAX_FILE_SIZE, MAX_NESTING};
pub use value::{MetaArray, MetaValue, StringArray, ValueType};
pub use write::{
    apply_edits, edit_file_in_place, edit_in_place, encode_value, layout, rewrite, write_file,
    Layout, MetaEdit, TensorData, TensorShape, TensorSpec, WriteProgress, WriteSummary,
};
