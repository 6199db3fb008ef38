//! Metadata edits: staged in the session, undoable with every other change, written on Save.
//!
//! # Overview
//! The engine edits bytes in place, but a metadata edit usually changes the size of the GGUF
//! header (a longer chat template, a new key), which moves every tensor. So metadata edits are
//! not byte patches: they are kept as a pending list of [`MetaEdit`]s beside the engine's
//! journal ([`MetaJournal`], owned by the [`Manager`]) and written by [`Manager::save`] /
//! [`Manager::save_as`] through the GGUF writer, which copies the tensor data of the model
//! image (so staged tensor edits are included) into a new file, atomically.
//!
//! - **Undo is one timeline.** Each metadata edit remembers the engine's newest undo entry at
//!   the time it was made. [`Manager::undo`] undoes the metadata edit when no engine change
//!   came after it, else the engine's last change; [`Manager::redo`] mirrors that. So a user
//!   who edits a weight, then the chat template, then another weight, undoes them in reverse.
//! - **Pending until saved.** [`Manager::metadata_view`] lists the header as it will be
//!   written, each entry marked unchanged / changed / added / removed.
//! - **Saving with pending metadata rewrites the file** (temp file + rename; for a split model,
//!   the first shard, which holds the metadata; `split.*` keys cannot be edited): the model is
//!   attached again afterwards, which clears the undo history (the recipe for export and the
//!   protections are kept, moved with the bytes they cover). Without pending metadata, Save
//!   is the engine's in-place save of changed ranges and the history survives.
//! - **Text forms.** [`parse_value`] turns what a user typed into a value of a given GGUF type
//!   (an error names the key, the type and what is wrong); [`edit_text`] is the inverse.
//!
//! - **Configurations carry them.** Every edit is recorded (key, the value it replaced, the
//!   new value) and exported in order, net of undo, in the configuration's `metadata`
//!   section ([`crate::config::MetadataPatch`]); an import stages them as pending edits in one
//!   journal step *joined* to the engine group of the same import
//!   ([`MetaJournalEntry::joined`]), so one [`Manager::undo`] reverts the tensor, byte and
//!   metadata changes of an import together. A save that re-attaches keeps the recipe: the
//!   changes in effect stay recorded and the export keeps the identity of the model as first
//!   attached, the one a fresh copy of the original has.

use std::cell::Cell;
use std::io::Read;
use std::path::{Path, PathBuf};

use hotpatch_gguf::{
    apply_edits, write_file, GgufError, MetaArray, MetaEdit, MetaValue, StringArray, TensorData,
    TensorSpec, ValueType, WriteProgress,
};
use parking_lot::Mutex;

use crate::config::{MetadataPatch, TypedValue};
use crate::event::{Operation, Origin, Target};
use crate::manager::{Manager, ManagerError};
use crate::{EngineError, HistoryEntry, Mode, Progress, ProgressFn};

/// Longest metadata key accepted (GGUF's own limit is 65535 bytes; a key longer than this
/// is a mistake, not a name).
pub const MAX_KEY_LEN: usize = 1024;

/// Largest array (in elements) [`edit_text`] turns into editable text.
pub const MAX_EDIT_ARRAY: usize = 4096;

/// A typed value could not be made from the text a user entered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} ({ty}): {why}")]
pub struct ValueError {
    /// The metadata key being edited.
    pub key: String,
    /// The GGUF type name (`UINT32`, `ARRAY[STRING]`, ...).
    pub ty: String,
    /// What is wrong with the text.
    pub why: String,
}

/// The [`ValueType`] gguf-py calls `name` (`"UINT32"`, `"STRING"`, ...).
pub fn value_type_from_name(name: &str) -> Option<ValueType> {
    (0..=12)
        .filter_map(ValueType::from_id)
        .find(|t| t.name().eq_ignore_ascii_case(name))
}

/// Checks a metadata key: non-empty, at most [`MAX_KEY_LEN`] bytes, printable ASCII without
/// spaces (what llama.cpp's keys look like: `tokenizer.chat_template`).
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!(
            "the key is {} bytes long (at most {MAX_KEY_LEN})",
            key.len()
        ));
    }
    if let Some(c) = key.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "key '{key}' contains {c:?}; keys are printable ASCII without spaces"
        ));
    }
    Ok(())
}

/// Checks a value against what its key requires: `general.alignment` must be a `UINT32`
/// power of two, at most 65536 (the writer pads tensor data to it).
pub fn check_metadata_value(key: &str, value: &MetaValue) -> Result<(), String> {
    if key == "general.alignment" {
        match value {
            MetaValue::U32(a) if *a > 0 && a.is_power_of_two() && *a <= 1 << 16 => {}
            _ => {
                return Err(
                    "general.alignment must be a UINT32 power of two (at most 65536)".into(),
                )
            }
        }
    }
    Ok(())
}

/// Parses `text` as a value of the scalar or string type `ty` for `key`.
///
/// Integers are decimal (a leading `-` for signed types), range-checked for the width;
/// floats accept Rust's syntax plus `nan`, `inf`, `-inf`, and refuse finite text that
/// overflows the width; bools are `true` / `false`; strings are taken as is. Arrays go
/// through [`parse_array`].
pub fn parse_value(key: &str, ty: ValueType, text: &str) -> Result<MetaValue, ValueError> {
    let err = |why: String| ValueError {
        key: key.to_string(),
        ty: ty.name().to_string(),
        why,
    };
    scalar(ty, text).map_err(err)
}

fn scalar(ty: ValueType, text: &str) -> Result<MetaValue, String> {
    let t = text.trim();
    let int = |min: i128, max: i128| -> Result<i128, String> {
        if t.is_empty() {
            return Err("no value given".into());
        }
        let v: i128 = t
            .parse()
            .map_err(|_| format!("'{t}' is not a whole number"))?;
        if v < min || v > max {
            return Err(format!("{v} is out of range {min}..={max}"));
        }
        Ok(v)
    };
    let float = |max: f64| -> Result<f64, String> {
        if t.is_empty() {
            return Err("no value given".into());
        }
        let v: f64 = match t.to_ascii_lowercase().as_str() {
            "nan" => f64::NAN,
            "inf" | "+inf" | "infinity" => f64::INFINITY,
            "-inf" | "-infinity" => f64::NEG_INFINITY,
            _ => {
                let v: f64 = t.parse().map_err(|_| format!("'{t}' is not a number"))?;
                if !v.is_finite() || v.abs() > max {
                    return Err(format!("{t} is too large for this type (max {max:e})"));
                }
                v
            }
        };
        Ok(v)
    };
    // The casts below are exact: each value was range-checked for its width just before.
    Ok(match ty {
        ValueType::U8 => MetaValue::U8(int(0, u8::MAX.into())? as u8),
        ValueType::I8 => MetaValue::I8(int(i8::MIN.into(), i8::MAX.into())? as i8),
        ValueType::U16 => MetaValue::U16(int(0, u16::MAX.into())? as u16),
        ValueType::I16 => MetaValue::I16(int(i16::MIN.into(), i16::MAX.into())? as i16),
        ValueType::U32 => MetaValue::U32(int(0, u32::MAX.into())? as u32),
        ValueType::I32 => MetaValue::I32(int(i32::MIN.into(), i32::MAX.into())? as i32),
        ValueType::U64 => MetaValue::U64(int(0, u64::MAX.into())? as u64),
        ValueType::I64 => MetaValue::I64(int(i64::MIN.into(), i64::MAX.into())? as i64),
        // Read as f32 directly (correctly rounded, so f32::MAX's shortest digits, which are
        // above f32::MAX as an f64, still read); the f64 path gives nan/inf and the errors.
        ValueType::F32 => match t.parse::<f32>() {
            Ok(x) if x.is_finite() => MetaValue::F32(x),
            _ => MetaValue::F32(float(f32::MAX.into())? as f32),
        },
        ValueType::F64 => MetaValue::F64(float(f64::MAX)?),
        ValueType::Bool => match t {
            "true" => MetaValue::Bool(true),
            "false" => MetaValue::Bool(false),
            _ => return Err(format!("'{t}' is not true or false")),
        },
        // Strings are taken verbatim (leading/trailing whitespace is meaningful in templates).
        ValueType::String => MetaValue::String(text.as_bytes().to_vec()),
        ValueType::Array => return Err("arrays are edited as a JSON list".into()),
    })
}

/// Parses a JSON list (`[1, 2, 3]`, `["a", "b"]`, `[true]`) as an array of `element` values.
/// Numbers may also be given as strings (`["18446744073709551615"]`) so 64-bit values are
/// exact. Arrays of arrays are not editable as text.
pub fn parse_array(key: &str, element: ValueType, text: &str) -> Result<MetaValue, ValueError> {
    let err = |why: String| ValueError {
        key: key.to_string(),
        ty: format!("ARRAY[{}]", element.name()),
        why,
    };
    let items: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| err(format!("not a JSON list: {e}")))?;
    if element == ValueType::Array {
        return Err(err("arrays of arrays cannot be edited as text".into()));
    }
    if element == ValueType::String {
        let mut s = StringArray::with_capacity(items.len(), 0);
        for (i, v) in items.iter().enumerate() {
            match v {
                serde_json::Value::String(x) => s.push(x.as_bytes()),
                other => return Err(err(format!("element {i} is {other}, not a string"))),
            }
        }
        return Ok(MetaValue::Array(MetaArray::String(s)));
    }
    let mut values = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let text = match v {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) if element != ValueType::Bool => s.clone(),
            serde_json::Value::Bool(b) if element == ValueType::Bool => b.to_string(),
            other => {
                return Err(err(format!(
                    "element {i} is {other}, not a {}",
                    element.name()
                )))
            }
        };
        values.push(scalar(element, &text).map_err(|w| err(format!("element {i}: {w}")))?);
    }
    Ok(MetaValue::Array(scalar_array(element, values)))
}

/// Scalars of type `element` (numbers or bools, as `values` holds them; any other value is
/// skipped: callers parse each element as `element` first) as one GGUF array.
pub(crate) fn scalar_array(element: ValueType, values: Vec<MetaValue>) -> MetaArray {
    macro_rules! collect {
        ($variant:ident) => {
            MetaArray::$variant(
                values
                    .into_iter()
                    .filter_map(|v| match v {
                        MetaValue::$variant(x) => Some(x),
                        _ => None,
                    })
                    .collect(),
            )
        };
    }
    match element {
        ValueType::U8 => collect!(U8),
        ValueType::I8 => collect!(I8),
        ValueType::U16 => collect!(U16),
        ValueType::I16 => collect!(I16),
        ValueType::U32 => collect!(U32),
        ValueType::I32 => collect!(I32),
        ValueType::U64 => collect!(U64),
        ValueType::I64 => collect!(I64),
        ValueType::F32 => collect!(F32),
        ValueType::F64 => collect!(F64),
        ValueType::Bool => collect!(Bool),
        ValueType::String => MetaArray::String(StringArray::with_capacity(0, 0)),
        ValueType::Array => MetaArray::Array(Vec::new()),
    }
}

/// The text a user edits for a value: the number, `true`/`false`, the string itself, or a
/// JSON list for arrays (64-bit integers as numbers, which JSON carries exactly as text).
/// `None` for arrays of arrays, arrays longer than [`MAX_EDIT_ARRAY`] and strings that are not
/// UTF-8.
pub fn edit_text(v: &MetaValue) -> Option<String> {
    Some(match v {
        MetaValue::U8(x) => x.to_string(),
        MetaValue::I8(x) => x.to_string(),
        MetaValue::U16(x) => x.to_string(),
        MetaValue::I16(x) => x.to_string(),
        MetaValue::U32(x) => x.to_string(),
        MetaValue::I32(x) => x.to_string(),
        MetaValue::U64(x) => x.to_string(),
        MetaValue::I64(x) => x.to_string(),
        MetaValue::F32(x) => x.to_string(),
        MetaValue::F64(x) => x.to_string(),
        MetaValue::Bool(b) => b.to_string(),
        MetaValue::String(s) => String::from_utf8(s.clone()).ok()?,
        MetaValue::Array(a) => {
            if a.len() > MAX_EDIT_ARRAY {
                return None;
            }
            let items: Vec<String> = match a {
                MetaArray::U8(v) => v.iter().map(u8::to_string).collect(),
                MetaArray::I8(v) => v.iter().map(i8::to_string).collect(),
                MetaArray::U16(v) => v.iter().map(u16::to_string).collect(),
                MetaArray::I16(v) => v.iter().map(i16::to_string).collect(),
                MetaArray::U32(v) => v.iter().map(u32::to_string).collect(),
                MetaArray::I32(v) => v.iter().map(i32::to_string).collect(),
                MetaArray::U64(v) => v.iter().map(u64::to_string).collect(),
                MetaArray::I64(v) => v.iter().map(i64::to_string).collect(),
                MetaArray::F32(v) => v.iter().map(|x| json_float(f64::from(*x))).collect(),
                MetaArray::F64(v) => v.iter().map(|x| json_float(*x)).collect(),
                MetaArray::Bool(v) => v.iter().map(bool::to_string).collect(),
                MetaArray::String(s) => s
                    .iter()
                    .map(|b| std::str::from_utf8(b).ok().map(json_string))
                    .collect::<Option<Vec<_>>>()?,
                MetaArray::Array(_) => return None,
            };
            format!("[{}]", items.join(", "))
        }
    })
}

fn json_float(x: f64) -> String {
    if x.is_finite() {
        x.to_string()
    } else {
        // JSON has no NaN/inf: quoted, which parse_array accepts.
        format!("\"{x}\"")
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// How a metadata entry differs from the model's current header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    /// As in the file.
    Unchanged,
    /// A pending edit changes the value (or its type).
    Changed,
    /// A pending edit adds the key.
    Added,
    /// A pending edit removes the key (the value shown is the current one).
    Removed,
}

/// One metadata entry as it will be saved.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaEntryView {
    /// The key.
    pub key: String,
    /// The value (for removed keys, the value being removed).
    pub value: MetaValue,
    /// What is pending for it.
    pub status: EntryStatus,
    /// Offset of the entry in the current file (`None` for added keys).
    pub offset: Option<u64>,
}

/// One step of staged metadata edits in the journal: one edit made in the Model screen, or
/// every metadata edit of one imported configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaJournalEntry {
    /// Sequence number (unique in the session).
    pub id: u64,
    /// The edits, applied in order.
    pub edits: Vec<MetaEdit>,
    /// The engine's newest undo entry when the edits were made (orders the two journals).
    pub after_engine: Option<u64>,
    /// The edits belong to the engine step `after_engine` (an import that changed tensors
    /// or bytes too): undone and redone together with it, as one step.
    pub joined: bool,
}

#[derive(Debug, Default)]
struct JournalState {
    undo: Vec<MetaJournalEntry>,
    redo: Vec<MetaJournalEntry>,
    next: u64,
}

/// The pending metadata edits of a session, with their own undo/redo stacks; the [`Manager`]
/// interleaves them with the engine's journal.
#[derive(Debug, Default)]
pub struct MetaJournal {
    st: Mutex<JournalState>,
}

impl MetaJournal {
    /// The pending edits, oldest first.
    pub fn pending(&self) -> Vec<MetaEdit> {
        self.st
            .lock()
            .undo
            .iter()
            .flat_map(|e| e.edits.iter().cloned())
            .collect()
    }

    /// Whether any edit is pending.
    pub fn is_empty(&self) -> bool {
        self.st.lock().undo.is_empty()
    }

    /// The pending entries (oldest first) and the undone ones (next redo last).
    pub fn entries(&self) -> (Vec<MetaJournalEntry>, Vec<MetaJournalEntry>) {
        let st = self.st.lock();
        (st.undo.clone(), st.redo.clone())
    }

    /// Whether step `id` is pending (made and not undone).
    pub fn is_pending(&self, id: u64) -> bool {
        self.st.lock().undo.iter().any(|e| e.id == id)
    }

    fn push(&self, edits: Vec<MetaEdit>, after_engine: Option<u64>, joined: bool) -> u64 {
        let mut st = self.st.lock();
        st.next += 1;
        let id = st.next;
        st.undo.push(MetaJournalEntry {
            id,
            edits,
            after_engine,
            joined: joined && after_engine.is_some(),
        });
        st.redo.clear();
        id
    }

    /// Forgets every edit (after a save, or when the model is detached).
    pub fn clear(&self) {
        let mut st = self.st.lock();
        st.undo.clear();
        st.redo.clear();
    }
}

/// One step of the session's undo history (engine change or metadata edit), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStep {
    /// `engine` or `metadata`.
    pub kind: StepKind,
    /// The id in its journal.
    pub id: u64,
    /// A one-line description ("tensor edit blk.0.attn_q.weight", "set tokenizer.chat_template").
    pub label: String,
    /// Bytes the step covers (0 for metadata edits).
    pub bytes: u64,
    /// Whether the step was undone (and can be redone).
    pub undone: bool,
}

/// Which journal a [`SessionStep`] lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// The engine's byte journal.
    Engine,
    /// The pending metadata edits.
    Metadata,
}

/// What [`Manager::undo`] / [`Manager::redo`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoOutcome {
    /// Which journal moved.
    pub kind: StepKind,
    /// The step's id.
    pub id: u64,
}

/// What a [`Manager::save`] or [`Manager::save_as`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveOutcome {
    /// The file written.
    pub path: PathBuf,
    /// Bytes written (changed ranges for an in-place save, the whole file for a rewrite).
    pub bytes_written: u64,
    /// Whether the whole file was rewritten (pending metadata edits, or Save As).
    pub rewritten: bool,
    /// Whether the model was attached again (the undo history was cleared).
    pub reattached: bool,
}

/// Where "Save As `dest`" writes a model of `n` files: `[dest]` for one file; for a split model
/// the shards `X-00001-of-0000N.gguf` … — `X` is `dest` without its `-NNNNN-of-MMMMM.gguf` part
/// when it names a shard of a model of `n` files, else `dest` without `.gguf`.
pub fn split_destinations(dest: &Path, n: usize) -> Vec<PathBuf> {
    if n <= 1 {
        return vec![dest.to_path_buf()];
    }
    let prefix = match hotpatch_gguf::split_name(dest) {
        Some((prefix, _, count)) if count == n as u64 => prefix,
        _ => {
            let s = dest.to_string_lossy();
            s.strip_suffix(".gguf").unwrap_or(&s).to_string()
        }
    };
    (1..=n)
        .map(|i| PathBuf::from(format!("{prefix}-{i:05}-of-{n:05}.gguf")))
        .collect()
}

/// Progress of a save over several files: file `i`'s own progress (in whatever unit its save
/// counts: changed bytes in place, file bytes for a rewrite) scaled to its size, so the whole
/// save reports `done` of `total` = the sizes of all files, rising monotonically.
struct Totals<'f> {
    sizes: Vec<u64>,
    before: Vec<u64>,
    total: u64,
    progress: ProgressFn<'f>,
}

impl<'f> Totals<'f> {
    fn new(sizes: &[u64], progress: ProgressFn<'f>) -> Self {
        let before = sizes
            .iter()
            .scan(0u64, |acc, &s| {
                let b = *acc;
                *acc += s;
                Some(b)
            })
            .collect();
        Totals {
            sizes: sizes.to_vec(),
            before,
            total: sizes.iter().sum(),
            progress,
        }
    }

    /// File `i` reports `p`: forward it as a share of all files.
    fn report(&mut self, i: usize, p: Progress) -> bool {
        let size = self.sizes[i];
        let done = if p.total == 0 {
            size
        } else {
            (u128::from(p.done.min(p.total)) * u128::from(size) / u128::from(p.total)) as u64
        };
        (self.progress)(Progress {
            done: self.before[i] + done,
            total: self.total,
        })
    }
}

/// A one-line label for an engine history entry.
pub fn describe_origin(o: &Origin) -> String {
    let op = match &o.operation {
        Operation::Other(s) | Operation::BitOp(s) => s.replace('_', " "),
        op => {
            let s = format!("{op:?}");
            // CamelCase → lower words.
            let mut w = String::new();
            for (i, c) in s.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    w.push(' ');
                }
                w.push(c.to_ascii_lowercase());
            }
            w
        }
    };
    let layer = format!("{:?}", o.layer).to_lowercase();
    let target = match &o.target {
        Target::Tensor { name, .. } => format!(" {name}"),
        Target::Range { offset, len, .. } => format!(" {len} B at {offset:#x}"),
        Target::Ranges { offset, count, .. } => format!(" {count} ranges from {offset:#x}"),
        Target::File(p) => format!(" {}", p.display()),
        _ => String::new(),
    };
    format!("{layer}: {op}{target}")
}

fn describe_edits(edits: &[MetaEdit]) -> String {
    match edits {
        [MetaEdit::Set(k, v)] => format!("metadata: set {k} ({})", v.value_type().name()),
        [MetaEdit::Remove(k)] => format!("metadata: remove {k}"),
        many => format!("metadata: {} edits from a configuration", many.len()),
    }
}

/// A [`Read`] over a slice that fails once `cancel` is set (how a write is cancelled).
struct CancelReader<'a> {
    data: &'a [u8],
    cancel: &'a Cell<bool>,
}

impl Read for CancelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.get() {
            return Err(std::io::Error::other("cancelled"));
        }
        self.data.read(buf)
    }
}

impl Manager {
    fn engine_top(&self) -> Option<u64> {
        self.engine().history().last().map(|h| h.id)
    }

    /// The staged metadata journal.
    pub fn metadata_journal(&self) -> &MetaJournal {
        &self.meta
    }

    /// Refuses a change of the `split.*` keys of a split model: they say how it is cut into
    /// files, and every file must keep agreeing on them.
    fn refuse_split_key(&self, key: &str, verb: &str) -> Result<(), ManagerError> {
        if key.starts_with("split.") && self.shards()?.len() > 1 {
            return Err(EngineError::InvalidArgument {
                what: "metadata key",
                why: format!(
                    "{key} describes how this split model is cut into files; it cannot be {verb}"
                ),
            }
            .into());
        }
        Ok(())
    }

    /// Stages `key = value` (replacing any value and type, or adding the key). Undoable;
    /// written by the next save.
    pub fn set_metadata(&self, key: &str, value: MetaValue) -> Result<u64, ManagerError> {
        self.region()?;
        check_key(key).map_err(|why| EngineError::InvalidArgument {
            what: "metadata key",
            why,
        })?;
        self.refuse_split_key(key, "edited")?;
        check_metadata_value(key, &value).map_err(|why| EngineError::InvalidArgument {
            what: "metadata value",
            why,
        })?;
        let original = self.staged_value(key)?;
        let patch = MetadataPatch {
            key: key.to_string(),
            original: original.map(TypedValue),
            patched: Some(TypedValue(value.clone())),
        };
        let id = self.meta.push(
            vec![MetaEdit::Set(key.to_string(), value)],
            self.engine_top(),
            false,
        );
        self.record_metadata(id, vec![patch]);
        Ok(id)
    }

    /// The value `key` has with the pending edits applied (`None`: absent).
    fn staged_value(&self, key: &str) -> Result<Option<MetaValue>, ManagerError> {
        Ok(self
            .staged_metadata()?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v))
    }

    /// The metadata as it will be saved (the header's entries with the pending edits applied).
    pub fn staged_metadata(&self) -> Result<Vec<(String, MetaValue)>, ManagerError> {
        let index = self.engine().gguf(self.region()?)?;
        Ok(apply_edits(&index.metadata, &self.meta.pending()))
    }

    /// Stages the metadata patches of an imported configuration as one step of the undo
    /// timeline, joined to the engine step `change` the import made (if any), so one undo
    /// reverts the whole import. Returns the step id.
    pub(crate) fn stage_imported_metadata(
        &self,
        patches: &[MetadataPatch],
        change: Option<u64>,
    ) -> Option<u64> {
        if patches.is_empty() {
            return None;
        }
        let top = self.engine_top();
        let joined = change.is_some() && change == top;
        let id = self.meta.push(
            patches.iter().map(MetadataPatch::edit).collect(),
            top,
            joined,
        );
        self.record_metadata(id, patches.to_vec());
        Some(id)
    }

    /// Stages the removal of `key`. Refuses a key that the model (with pending edits) lacks.
    pub fn remove_metadata(&self, key: &str) -> Result<u64, ManagerError> {
        self.refuse_split_key(key, "removed")?;
        let current = self.metadata_view()?;
        if !current
            .iter()
            .any(|e| e.key == key && e.status != EntryStatus::Removed)
        {
            return Err(EngineError::InvalidArgument {
                what: "metadata key",
                why: format!("no metadata key '{key}' to remove"),
            }
            .into());
        }
        let original = self.staged_value(key)?;
        let id = self.meta.push(
            vec![MetaEdit::Remove(key.to_string())],
            self.engine_top(),
            false,
        );
        self.record_metadata(
            id,
            vec![MetadataPatch {
                key: key.to_string(),
                original: original.map(TypedValue),
                patched: None,
            }],
        );
        Ok(id)
    }

    /// The metadata as it will be saved: the current header's entries (in order) with the
    /// pending edits applied, each marked; removed keys stay in the list, marked removed.
    pub fn metadata_view(&self) -> Result<Vec<MetaEntryView>, ManagerError> {
        let region = self.region()?;
        let index = self.engine().gguf(region)?;
        let pending = self.meta.pending();
        let after = apply_edits(&index.metadata, &pending);
        let mut out = Vec::with_capacity(after.len());
        for e in &index.metadata {
            match after.iter().find(|(k, _)| *k == e.key) {
                Some((_, v)) => out.push(MetaEntryView {
                    key: e.key.clone(),
                    value: v.clone(),
                    status: if *v == e.value {
                        EntryStatus::Unchanged
                    } else {
                        EntryStatus::Changed
                    },
                    offset: Some(e.offset),
                }),
                None => out.push(MetaEntryView {
                    key: e.key.clone(),
                    value: e.value.clone(),
                    status: EntryStatus::Removed,
                    offset: Some(e.offset),
                }),
            }
        }
        for (k, v) in after {
            if index.entry(&k).is_none() {
                out.push(MetaEntryView {
                    key: k,
                    value: v,
                    status: EntryStatus::Added,
                    offset: None,
                });
            }
        }
        Ok(out)
    }

    /// Whether a save would write anything: pending metadata or staged bytes that differ.
    pub fn is_modified(&self) -> bool {
        if !self.meta.is_empty() {
            return true;
        }
        self.region()
            .ok()
            .and_then(|r| self.engine().differs_from_file(r).ok())
            .unwrap_or(false)
    }

    /// Whether [`Manager::undo`] has something to undo.
    pub fn can_undo(&self) -> bool {
        self.engine().can_undo() || !self.meta.is_empty()
    }

    /// Whether [`Manager::redo`] has something to redo.
    pub fn can_redo(&self) -> bool {
        self.engine().can_redo() || self.meta_redo_is_next()
    }

    fn meta_redo_is_next(&self) -> bool {
        let top = self.engine_top();
        self.meta
            .st
            .lock()
            .redo
            .last()
            .is_some_and(|e| e.after_engine == top && !e.joined)
    }

    /// Undoes the session's last step: the last metadata edit if no engine change came after
    /// it, else the engine's last change.
    pub fn undo(&self) -> Result<UndoOutcome, ManagerError> {
        let top = self.engine_top();
        let last = self
            .meta
            .st
            .lock()
            .undo
            .last()
            .filter(|e| e.after_engine == top)
            .map(|e| (e.id, e.joined));
        if let Some((id, joined)) = last {
            // A joined step undoes its engine part first (outside the journal lock: the
            // engine's events may call back into the manager); if that fails nothing moved.
            if joined {
                self.engine().undo()?;
            }
            let mut st = self.meta.st.lock();
            if let Some(pos) = st.undo.iter().rposition(|e| e.id == id) {
                let e = st.undo.remove(pos);
                st.redo.push(e);
            }
            return Ok(UndoOutcome {
                kind: StepKind::Metadata,
                id,
            });
        }
        let a = self.engine().undo()?;
        Ok(UndoOutcome {
            kind: StepKind::Engine,
            id: a.change.unwrap_or_default(),
        })
    }

    /// Undoes the session's steps, newest first, until engine change `change` is undone:
    /// metadata edits made after it go too (they come later on the one timeline), and so does
    /// the metadata of an import joined to it. Returns the number of steps undone.
    pub fn undo_through(&self, change: u64) -> Result<usize, ManagerError> {
        let in_history = || self.engine().history().iter().any(|h| h.id == change);
        if !in_history() {
            return Err(EngineError::invalid(
                "undo_through",
                format!("change #{change} is not in the undo history"),
            )
            .into());
        }
        let mut n = 0;
        while in_history() {
            self.undo()?;
            n += 1;
        }
        Ok(n)
    }

    /// Redoes the step undone last (see [`Manager::undo`]).
    pub fn redo(&self) -> Result<UndoOutcome, ManagerError> {
        let top = self.engine_top();
        {
            let mut st = self.meta.st.lock();
            if st
                .redo
                .last()
                .is_some_and(|e| e.after_engine == top && !e.joined)
            {
                let e = st.redo.pop().expect("checked non-empty");
                let id = e.id;
                st.undo.push(e);
                return Ok(UndoOutcome {
                    kind: StepKind::Metadata,
                    id,
                });
            }
        }
        let a = self.engine().redo()?;
        // The metadata part of a joined step comes back with its engine step.
        let top = self.engine_top();
        let mut st = self.meta.st.lock();
        if st
            .redo
            .last()
            .is_some_and(|e| e.joined && e.after_engine == top)
        {
            let e = st.redo.pop().expect("checked non-empty");
            st.undo.push(e);
        }
        Ok(UndoOutcome {
            kind: StepKind::Engine,
            id: a.change.unwrap_or_default(),
        })
    }

    /// The session's history: done steps oldest first, then undone steps in redo order
    /// (next redo first), metadata edits placed after the engine step they followed.
    pub fn session_history(&self) -> Vec<SessionStep> {
        let engine_done = self.engine().history();
        let mut engine_undone = self.engine().redo_history();
        engine_undone.reverse();
        let (meta_done, mut meta_undone) = self.meta.entries();
        meta_undone.reverse();
        let eng = |h: &HistoryEntry, undone| SessionStep {
            kind: StepKind::Engine,
            id: h.id,
            label: describe_origin(&h.origin),
            bytes: h.bytes,
            undone,
        };
        let meta = |m: &MetaJournalEntry, undone| SessionStep {
            kind: StepKind::Metadata,
            id: m.id,
            label: describe_edits(&m.edits),
            bytes: 0,
            undone,
        };
        let mut out = Vec::new();
        // Done: metadata edits with no engine step before them come first, then each engine
        // step followed by the metadata edits made right after it.
        let mut mi = meta_done.iter().peekable();
        while let Some(m) = mi.next_if(|m| m.after_engine.is_none()) {
            out.push(meta(m, false));
        }
        for h in &engine_done {
            out.push(eng(h, false));
            while let Some(m) = mi.next_if(|m| m.after_engine == Some(h.id)) {
                out.push(meta(m, false));
            }
        }
        out.extend(mi.map(|m| meta(m, false)));
        // Undone, in the order redo would replay them.
        let top = engine_done.last().map(|h| h.id);
        let mut mi = meta_undone.iter().peekable();
        while let Some(m) = mi.next_if(|m| m.after_engine == top) {
            out.push(meta(m, true));
        }
        for h in &engine_undone {
            out.push(eng(h, true));
            while let Some(m) = mi.next_if(|m| m.after_engine == Some(h.id)) {
                out.push(meta(m, true));
            }
        }
        out
    }

    /// The attached model's file and mapping mode.
    pub fn attached(&self) -> Result<(PathBuf, Mode), ManagerError> {
        let region = self.region()?;
        let info = self.engine().region_info(region)?;
        Ok((info.path, info.mode))
    }

    /// Saves the session into the model's own file (every shard of a split model). Without
    /// pending metadata edits this is the engine's in-place save of each file (changed ranges
    /// only, crash-safe per file; history kept). With them, the file holding the metadata (the
    /// first shard) is rewritten (new header, tensor data of the image copied) atomically, the
    /// other shards are saved in place, and the model is attached again in the same mode
    /// (history cleared). `progress` counts bytes over all files; returning `false` cancels
    /// (a file not yet written is then left as it was).
    pub fn save(&self, progress: ProgressFn<'_>) -> Result<SaveOutcome, ManagerError> {
        let shards = self.shards()?;
        let (path, mode) = self.attached()?;
        let sizes = self.shard_sizes(&shards)?;
        let rewrite = !self.meta.is_empty();
        let mut total = Totals::new(&sizes, progress);
        let mut bytes_written = 0;
        for (i, (_, region)) in shards.iter().enumerate() {
            bytes_written += if i == 0 && rewrite {
                self.write_image(&path, &mut |p| total.report(i, p))?
            } else {
                self.engine()
                    .save(*region, &mut |p| total.report(i, p))?
                    .bytes_written
            };
        }
        if rewrite {
            self.reattach_saved(&path, mode)?;
        }
        Ok(SaveOutcome {
            path,
            bytes_written,
            rewritten: rewrite,
            reattached: rewrite,
        })
    }

    /// Writes the session (staged tensor bytes and pending metadata) to `dest` as a new file,
    /// atomically, then attaches `dest` in the same mode, as "Save As" does in an editor (the
    /// original file is left unchanged; the history is cleared). Refuses the model's own file
    /// (use [`Manager::save`]). A split model is written as a split model of as many shards
    /// (see [`split_destinations`]); the returned path is the first shard's.
    pub fn save_as(
        &self,
        dest: impl AsRef<Path>,
        progress: ProgressFn<'_>,
    ) -> Result<SaveOutcome, ManagerError> {
        let shards = self.shards()?;
        let (_, mode) = self.attached()?;
        let dests = split_destinations(dest.as_ref(), shards.len());
        for d in &dests {
            let Some(d) = d.canonicalize().ok() else {
                continue;
            };
            if let Some((p, _)) = shards
                .iter()
                .find(|(p, _)| p.canonicalize().ok().as_deref() == Some(d.as_path()))
            {
                return Err(EngineError::InvalidArgument {
                    what: "save as",
                    why: format!(
                        "{} is a file of the open model itself; use Save",
                        p.display()
                    ),
                }
                .into());
            }
        }
        let sizes = self.shard_sizes(&shards)?;
        let mut total = Totals::new(&sizes, progress);
        let mut n = 0;
        for (i, ((_, region), d)) in shards.iter().zip(&dests).enumerate() {
            n += if i == 0 && !self.meta.is_empty() {
                self.write_image(d, &mut |p| total.report(i, p))?
            } else {
                self.engine()
                    .save_as(*region, d, &mut |p| total.report(i, p))?
            };
        }
        self.reattach_saved(&dests[0], mode)?;
        Ok(SaveOutcome {
            path: dests[0].clone(),
            bytes_written: n,
            rewritten: true,
            reattached: true,
        })
    }

    fn shard_sizes(&self, shards: &[(PathBuf, crate::RegionId)]) -> Result<Vec<u64>, ManagerError> {
        shards
            .iter()
            .map(|(_, r)| Ok(self.engine().region_info(*r)?.len))
            .collect()
    }

    /// Writes a new GGUF at `dest`: the image's header with the pending metadata applied and
    /// every tensor's bytes from the image. Returns the file size.
    fn write_image(&self, dest: &Path, progress: ProgressFn<'_>) -> Result<u64, ManagerError> {
        let region = self.region()?;
        let index = self.engine().gguf(region)?;
        let meta = apply_edits(&index.metadata, &self.meta.pending());
        let len = self.engine().region_info(region)?.len;
        let cancel = Cell::new(false);
        let result = self.engine().with_bytes(region, 0, len, |bytes| {
            let mut tensors = Vec::with_capacity(index.tensors.len());
            for t in &index.tensors {
                let data = usize::try_from(t.offset)
                    .ok()
                    .zip(usize::try_from(t.end()).ok())
                    .and_then(|(s, e)| bytes.get(s..e))
                    .ok_or_else(|| {
                        GgufError::Invalid(format!(
                            "tensor '{}' data [{:#x}, {:#x}) is outside the model ({len} bytes)",
                            t.name,
                            t.offset,
                            t.end()
                        ))
                    })?;
                tensors.push(TensorSpec {
                    name: t.name.clone(),
                    ty: t.ty,
                    dims: t.dims.clone(),
                    data: TensorData::Reader {
                        reader: Box::new(CancelReader {
                            data,
                            cancel: &cancel,
                        }),
                        len: t.nbytes,
                    },
                });
            }
            let mut report = |p: WriteProgress| {
                if !cancel.get()
                    && !progress(Progress {
                        done: p.done,
                        total: p.total,
                    })
                {
                    cancel.set(true);
                }
            };
            write_file(dest, index.version, &meta, tensors, &mut report)
        })?;
        match result {
            Ok(s) => Ok(s.file_size),
            Err(_) if cancel.get() => Err(EngineError::Cancelled.into()),
            Err(e) => Err(EngineError::Gguf {
                region,
                message: format!("writing {}: {e}", dest.display()),
            }
            .into()),
        }
    }

    /// Attaches the model again in another mode (staged ↔ live). Refuses while anything is
    /// unsaved: switching drops the staged image.
    pub fn switch_mode(&self, mode: Mode) -> Result<(), ManagerError> {
        let (path, current) = self.attached()?;
        if current == mode {
            return Ok(());
        }
        if self.is_modified() {
            return Err(EngineError::InvalidArgument {
                what: "mode",
                why: "save or undo the unsaved changes before switching mode".into(),
            }
            .into());
        }
        self.reattach_saved(&path, mode)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_range_checked_per_width() {
        assert_eq!(
            parse_value("k", ValueType::U8, "255"),
            Ok(MetaValue::U8(255))
        );
        assert_eq!(
            parse_value("k", ValueType::I8, " -128 "),
            Ok(MetaValue::I8(-128))
        );
        assert_eq!(
            parse_value("k", ValueType::U64, "18446744073709551615"),
            Ok(MetaValue::U64(u64::MAX))
        );
        assert_eq!(
            parse_value("k", ValueType::I64, "-9223372036854775808"),
            Ok(MetaValue::I64(i64::MIN))
        );
        let e = parse_value("llama.block_count", ValueType::U32, "abc").unwrap_err();
        assert_eq!(e.key, "llama.block_count");
        assert_eq!(e.ty, "UINT32");
        assert!(e.to_string().contains("llama.block_count (UINT32)"), "{e}");
        assert!(e.why.contains("'abc'"), "{e}");
        assert!(parse_value("k", ValueType::U8, "256").is_err());
        assert!(parse_value("k", ValueType::U32, "-1").is_err());
        assert!(parse_value("k", ValueType::I16, "32768").is_err());
        assert!(parse_value("k", ValueType::U64, "18446744073709551616").is_err());
        assert!(parse_value("k", ValueType::U32, "1.5").is_err());
        assert!(parse_value("k", ValueType::U32, "").is_err());
    }

    #[test]
    fn floats_bools_and_strings() {
        assert_eq!(
            parse_value("k", ValueType::F32, "1e-5"),
            Ok(MetaValue::F32(1e-5))
        );
        assert_eq!(
            parse_value("k", ValueType::F64, "0.1"),
            Ok(MetaValue::F64(0.1))
        );
        assert!(matches!(
            parse_value("k", ValueType::F32, "nan"),
            Ok(MetaValue::F32(x)) if x.is_nan()
        ));
        assert_eq!(
            parse_value("k", ValueType::F32, "-inf"),
            Ok(MetaValue::F32(f32::NEG_INFINITY))
        );
        assert!(parse_value("k", ValueType::F32, "1e39").is_err());
        assert!(parse_value("k", ValueType::F64, "1e309").is_err());
        assert!(parse_value("k", ValueType::F32, "one").is_err());
        assert_eq!(
            parse_value("k", ValueType::Bool, "true"),
            Ok(MetaValue::Bool(true))
        );
        assert!(parse_value("k", ValueType::Bool, "yes").is_err());
        assert_eq!(
            parse_value("k", ValueType::String, "  a\nb "),
            Ok(MetaValue::string("  a\nb "))
        );
    }

    #[test]
    fn arrays_parse_from_json_and_round_trip_through_edit_text() {
        let v = parse_array("k", ValueType::I32, "[1, -2, 3]").unwrap();
        assert_eq!(v, MetaValue::Array(MetaArray::I32(vec![1, -2, 3])));
        assert_eq!(edit_text(&v).as_deref(), Some("[1, -2, 3]"));
        let s = parse_array("k", ValueType::String, r#"["a", "b\"c"]"#).unwrap();
        assert_eq!(
            parse_array("k", ValueType::String, &edit_text(&s).unwrap()),
            Ok(s)
        );
        let big = parse_array("k", ValueType::U64, r#"["18446744073709551615", 7]"#).unwrap();
        assert_eq!(big, MetaValue::Array(MetaArray::U64(vec![u64::MAX, 7])));
        let f = MetaValue::Array(MetaArray::F32(vec![0.5, f32::INFINITY]));
        assert_eq!(
            parse_array("k", ValueType::F32, &edit_text(&f).unwrap()),
            Ok(f)
        );
        let e = parse_array("tok.types", ValueType::U8, "[1, 300]").unwrap_err();
        assert_eq!(e.ty, "ARRAY[UINT8]");
        assert!(e.why.contains("element 1"), "{e}");
        assert!(parse_array("k", ValueType::U8, "1, 2").is_err());
        assert!(parse_array("k", ValueType::String, "[1]").is_err());
        assert!(parse_array("k", ValueType::Bool, "[\"true\"]").is_err());
        assert_eq!(
            parse_array("k", ValueType::Bool, "[true, false]"),
            Ok(MetaValue::Array(MetaArray::Bool(vec![true, false])))
        );
    }

    #[test]
    fn keys_and_type_names() {
        assert!(check_key("tokenizer.chat_template").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("a b").is_err());
        assert!(check_key("é").is_err());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        assert_eq!(value_type_from_name("UINT32"), Some(ValueType::U32));
        assert_eq!(value_type_from_name("float64"), Some(ValueType::F64));
        assert_eq!(value_type_from_name("u32"), None);
    }
}
