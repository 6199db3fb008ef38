//! Metadata values and the journal of staged metadata edits — a leaf module (it imports
//! nothing of the manager or the configurations).
//!
//! - **Text forms.** [`parse_value`] turns what a user typed into a value of a given GGUF type
//!   (an error names the key, the type and what is wrong); [`edit_text`] is the inverse;
//!   [`check_key`] / [`check_metadata_value`] are the limits every edit is held to.
//! - **The journal.** [`MetaJournal`]: the pending [`MetaEdit`]s of a session with their own
//!   undo/redo stacks, each step remembering the engine's newest undo entry when it was made
//!   ([`MetaJournalEntry::after_engine`]). The session ([`crate::session`]) owns one, interleaves
//!   it with the engine's journal, and writes the pending edits on Save.
//! - [`MetaEntryView`]: one entry of the header as it will be saved.

use hotpatch_gguf::{MetaArray, MetaEdit, MetaValue, StringArray, ValueType};
use parking_lot::Mutex;

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

/// The journal's stacks; the session's undo/redo moves entries between them.
#[derive(Debug, Default)]
pub(crate) struct JournalState {
    pub(crate) undo: Vec<MetaJournalEntry>,
    pub(crate) redo: Vec<MetaJournalEntry>,
    next: u64,
}

/// The pending metadata edits of a session, with their own undo/redo stacks; the
/// [`Manager`](crate::manager::Manager) interleaves them with the engine's journal.
#[derive(Debug, Default)]
pub struct MetaJournal {
    pub(crate) st: Mutex<JournalState>,
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

    pub(crate) fn push(
        &self,
        edits: Vec<MetaEdit>,
        after_engine: Option<u64>,
        joined: bool,
    ) -> u64 {
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
