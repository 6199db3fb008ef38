//! Output helpers shared by subcommands: JSON for metadata values and floats, model opening
//! with errors that name the file.

use std::io::{self, Write};
use std::path::Path;

use hotpatch_gguf::{GgufModel, MetaArray, MetaValue};
use serde_json::{json, Value};

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
    match v {
        MetaValue::String(s) => {
            let s = String::from_utf8_lossy(s);
            let one: String = s.chars().take(80).collect::<String>().replace('\n', "\\n");
            if s.chars().count() > 80 {
                format!("{one:?}… ({} bytes)", s.len())
            } else {
                format!("{one:?}")
            }
        }
        MetaValue::Array(a) => {
            let j = array_json(a);
            let items = j.as_array().map(Vec::as_slice).unwrap_or_default();
            let head: Vec<String> = items.iter().take(6).map(Value::to_string).collect();
            let more = if items.len() > 6 { ", …" } else { "" };
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
