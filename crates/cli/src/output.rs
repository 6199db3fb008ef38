//! Output helpers shared by subcommands: JSON for metadata values and floats, model opening
//! with errors that name the file, and [`safe`], the one escaping of untrusted text for a
//! terminal.

use std::io::{self, Write};
use std::path::Path;

use hotpatch_gguf::{GgufModel, MetaArray, MetaValue};
use serde_json::{json, Value};

/// Text that came from a file, a configuration, the network or the command line, made safe
/// for a terminal: every control character (C0 including ESC, CR, LF and tab; DEL; C1) and every
/// invisible or direction-changing character (bidi overrides and isolates U+202A–202E,
/// U+2066–2069, marks, zero-width characters, tags, line/paragraph separators) is written as an
/// escape (`\n`, `\r`, `\t`, otherwise `\u{1b}`), so a tensor name cannot move the cursor,
/// recolor the screen, fake a line of output or reorder what is shown. Every human-readable
/// output path of the CLI prints untrusted strings through this (JSON output is exact JSON
/// instead: serde escapes control characters there).
pub fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || hotpatch_audit::template::unicode::class_of(c).is_some() => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// [`safe`] for multi-line text shown as text (generated output): keeps newlines and tabs,
/// escapes everything else [`safe`] escapes.
pub fn safe_text(s: &str) -> String {
    s.split('\n')
        .map(|line| line.split('\t').map(safe).collect::<Vec<_>>().join("\t"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// [`safe`] of a path (paths come from the command line and from configurations).
pub fn safe_path(p: &Path) -> String {
    safe(&p.display().to_string())
}

/// Opens a model (split models included); errors name the file.
pub fn open_model(path: &Path) -> anyhow::Result<GgufModel> {
    GgufModel::open(path).map_err(|e| match e {
        // Already names the file.
        hotpatch_gguf::GgufError::Io { .. } | hotpatch_gguf::GgufError::Split { .. } => {
            anyhow::Error::new(e)
        }
        e => anyhow::Error::new(e).context(path.display().to_string()),
    })
}

/// A staged edit session over `model` (split models included); errors name the file once
/// (the reader's own errors name it already: "X: is a directory, ...").
pub fn attach_session(model: &Path) -> anyhow::Result<hotpatch_core::manager::Manager> {
    let m = hotpatch_core::manager::Manager::initialize();
    m.attach(model, hotpatch_core::Mode::Staged).map_err(|e| {
        let shown = model.display().to_string();
        if e.to_string().contains(&shown) {
            anyhow::Error::new(e)
        } else {
            anyhow::Error::new(e).context(shown)
        }
    })?;
    Ok(m)
}

/// Writes all of `buf` at byte `offset` of `file` (a positional write: threads may write
/// different parts of one file at once).
pub fn write_all_at(file: &std::fs::File, buf: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_write(file, buf, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Whether an error is a closed stdout (e.g. `hotpatch inspect m.gguf | head`): not an error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// A float as JSON: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn float_json(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

/// A metadata value serialized straight to JSON (the same JSON as [`value_json`], without
/// building a tree first): 64-bit integers exact, floats as [`float_json`] writes them, strings
/// with invalid UTF-8 replaced, arrays (nested too) element by element.
pub struct MetaJson<'a>(pub &'a MetaValue);

impl serde::Serialize for MetaJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            MetaValue::U8(x) => s.serialize_u8(*x),
            MetaValue::I8(x) => s.serialize_i8(*x),
            MetaValue::U16(x) => s.serialize_u16(*x),
            MetaValue::I16(x) => s.serialize_i16(*x),
            MetaValue::U32(x) => s.serialize_u32(*x),
            MetaValue::I32(x) => s.serialize_i32(*x),
            MetaValue::U64(x) => s.serialize_u64(*x),
            MetaValue::I64(x) => s.serialize_i64(*x),
            MetaValue::F32(x) => float_ser(s, f64::from(*x)),
            MetaValue::F64(x) => float_ser(s, *x),
            MetaValue::Bool(x) => s.serialize_bool(*x),
            MetaValue::String(b) => s.serialize_str(&String::from_utf8_lossy(b)),
            MetaValue::Array(a) => ArrayJson(a).serialize(s),
        }
    }
}

/// A float as [`float_json`] writes it.
fn float_ser<S: serde::Serializer>(s: S, v: f64) -> Result<S::Ok, S::Error> {
    if v.is_nan() {
        s.serialize_str("NaN")
    } else if v.is_infinite() {
        s.serialize_str(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        s.serialize_f64(v)
    }
}

struct ArrayJson<'a>(&'a MetaArray);

impl serde::Serialize for ArrayJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        fn all<S: serde::Serializer, T: serde::Serialize>(
            s: S,
            v: impl ExactSizeIterator<Item = T>,
        ) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for x in v {
                seq.serialize_element(&x)?;
            }
            seq.end()
        }
        struct Float(f64);
        impl serde::Serialize for Float {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                float_ser(s, self.0)
            }
        }
        struct Str<'b>(&'b [u8]);
        impl serde::Serialize for Str<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&String::from_utf8_lossy(self.0))
            }
        }
        match self.0 {
            MetaArray::U8(v) => all(s, v.iter()),
            MetaArray::I8(v) => all(s, v.iter()),
            MetaArray::U16(v) => all(s, v.iter()),
            MetaArray::I16(v) => all(s, v.iter()),
            MetaArray::U32(v) => all(s, v.iter()),
            MetaArray::I32(v) => all(s, v.iter()),
            MetaArray::U64(v) => all(s, v.iter()),
            MetaArray::I64(v) => all(s, v.iter()),
            MetaArray::F32(v) => all(s, v.iter().map(|&x| Float(f64::from(x)))),
            MetaArray::F64(v) => all(s, v.iter().map(|&x| Float(x))),
            MetaArray::Bool(v) => all(s, v.iter()),
            MetaArray::String(v) => all(s, v.iter().map(Str)),
            MetaArray::Array(v) => all(s, v.iter().map(ArrayJson)),
        }
    }
}

/// The first `k` items of an array (a copy of at most `k` items).
fn array_head(a: &MetaArray, k: usize) -> MetaArray {
    fn head<T: Clone>(v: &[T], k: usize) -> Vec<T> {
        v[..k.min(v.len())].to_vec()
    }
    match a {
        MetaArray::U8(v) => MetaArray::U8(head(v, k)),
        MetaArray::I8(v) => MetaArray::I8(head(v, k)),
        MetaArray::U16(v) => MetaArray::U16(head(v, k)),
        MetaArray::I16(v) => MetaArray::I16(head(v, k)),
        MetaArray::U32(v) => MetaArray::U32(head(v, k)),
        MetaArray::I32(v) => MetaArray::I32(head(v, k)),
        MetaArray::U64(v) => MetaArray::U64(head(v, k)),
        MetaArray::I64(v) => MetaArray::I64(head(v, k)),
        MetaArray::F32(v) => MetaArray::F32(head(v, k)),
        MetaArray::F64(v) => MetaArray::F64(head(v, k)),
        MetaArray::Bool(v) => MetaArray::Bool(head(v, k)),
        MetaArray::String(v) => {
            let mut out = hotpatch_gguf::StringArray::new();
            for s in v.iter().take(k) {
                out.push(s);
            }
            MetaArray::String(out)
        }
        MetaArray::Array(v) => MetaArray::Array(head(v, k)),
    }
}

/// A string value as JSON (invalid UTF-8 replaced, as no JSON string can hold it).
fn str_json(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// A metadata value as JSON: 64-bit integers exact, arrays (nested too) as arrays.
pub fn value_json(v: &MetaValue) -> Value {
    match v {
        MetaValue::U8(x) => json!(x),
        MetaValue::I8(x) => json!(x),
        MetaValue::U16(x) => json!(x),
        MetaValue::I16(x) => json!(x),
        MetaValue::U32(x) => json!(x),
        MetaValue::I32(x) => json!(x),
        MetaValue::U64(x) => json!(x),
        MetaValue::I64(x) => json!(x),
        MetaValue::F32(x) => float_json(f64::from(*x)),
        MetaValue::F64(x) => float_json(*x),
        MetaValue::Bool(x) => json!(x),
        MetaValue::String(s) => str_json(s),
        MetaValue::Array(a) => array_json(a),
    }
}

fn array_json(a: &MetaArray) -> Value {
    Value::Array(match a {
        MetaArray::U8(v) => v.iter().map(|x| json!(x)).collect(),
        MetaArray::I8(v) => v.iter().map(|x| json!(x)).collect(),
        MetaArray::U16(v) => v.iter().map(|x| json!(x)).collect(),
        MetaArray::I16(v) => v.iter().map(|x| json!(x)).collect(),
        MetaArray::U32(v) => v.iter().map(|x| json!(x)).collect(),
        MetaArray::I32(v) => v.iter().map(|x| json!(x)).collect(),
        MetaArray::U64(v) => v.iter().map(|x| json!(x)).collect(),
        MetaArray::I64(v) => v.iter().map(|x| json!(x)).collect(),
        MetaArray::F32(v) => v.iter().map(|&x| float_json(f64::from(x))).collect(),
        MetaArray::F64(v) => v.iter().map(|&x| float_json(x)).collect(),
        MetaArray::Bool(v) => v.iter().map(|x| json!(x)).collect(),
        MetaArray::String(s) => s.iter().map(str_json).collect(),
        MetaArray::Array(v) => v.iter().map(array_json).collect(),
    })
}

/// Writes one f32 as a JSON value (shortest representation that reads back as the same f32).
pub fn write_f32_json(w: &mut impl Write, v: f32, buf: &mut ryu::Buffer) -> io::Result<()> {
    if v.is_nan() {
        w.write_all(b"\"NaN\"")
    } else if v.is_infinite() {
        w.write_all(if v > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        })
    } else {
        w.write_all(buf.format_finite(v).as_bytes())
    }
}

/// A short, one-line rendering of a metadata value for people.
pub fn value_short(v: &MetaValue) -> String {
    safe(&value_short_raw(v))
}

fn value_short_raw(v: &MetaValue) -> String {
    match v {
        MetaValue::String(s) => {
            let s = String::from_utf8_lossy(s);
            let one: String = s.chars().take(80).collect();
            if s.chars().count() > 80 {
                format!("{one:?}… ({} bytes)", s.len())
            } else {
                format!("{one:?}")
            }
        }
        MetaValue::Array(a) => {
            // Only the first six items are rendered (a 262,144-token vocabulary is not turned
            // into JSON to show six of them).
            let head = array_json(&array_head(a, 6));
            let head: Vec<String> = head
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(Value::to_string)
                .collect();
            let more = if a.len() > 6 { ", …" } else { "" };
            format!(
                "[{}{more}] ({} × {})",
                head.join(", "),
                a.len(),
                a.element_type()
            )
        }
        v => value_json(v).to_string(),
    }
}
