//! The `metadata` section: header edits carried by a configuration.
//!
//! Overview: a [`MetadataPatch`] sets a key to a typed value or removes it, and carries the
//! value it expects to find there (`original`, `null` for "the key is absent") so a preview
//! can say whether the model is the one the edit was made on — as a byte patch carries its
//! original bytes. Patches apply in order; each `original` is the value after the patches
//! before it.
//!
//! Values are written as [`TypedValue`]s, typed as GGUF types by the names gguf-py uses:
//!
//! ```json
//! {"type": "UINT32", "value": 4096}
//! {"type": "UINT64", "value": "18446744073709551615"}
//! {"type": "FLOAT32", "value": 1e-5}
//! {"type": "FLOAT64", "value": "nan"}
//! {"type": "STRING", "value": "{% for m in messages %}..."}
//! {"type": "STRING", "hex": "ff00"}
//! {"type": "ARRAY", "element": "INT32", "value": [1, -2, 3]}
//! {"type": "ARRAY", "element": "ARRAY", "value": [{"type": "ARRAY", "element": "UINT8", "value": [1]}]}
//! ```
//!
//! 64-bit integers are written as decimal strings, so no JSON reader rounds them (integers
//! are accepted as JSON numbers too, and read exactly). Floats are JSON numbers, or the
//! strings `"nan"`, `"inf"`, `"-inf"`; a `FLOAT32` is written with the shortest digits that
//! read back to the same `f32`. A string that is not UTF-8 is written as `"hex"` (for an
//! array of strings, `"hex"` is a list of hex strings). Every value is range-checked for its
//! type on reading; an error names the element (`value[3]: 300 is out of range 0..=255`).

use hotpatch_gguf::{MetaArray, MetaEdit, MetaValue, StringArray, ValueType};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::{from_hex, to_hex};
use crate::metadata::{check_key, check_metadata_value, value_type_from_name};

/// One metadata change: set `key` to `patched`, or remove it (`patched: null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataPatch {
    /// The metadata key (`tokenizer.chat_template`).
    pub key: String,
    /// The value expected before the change; `null`: the key is expected to be absent.
    #[serde(deserialize_with = "required")]
    #[schemars(schema_with = "nullable_typed_value", required)]
    pub original: Option<TypedValue>,
    /// The value to set; `null` removes the key.
    #[serde(deserialize_with = "required")]
    #[schemars(schema_with = "nullable_typed_value", required)]
    pub patched: Option<TypedValue>,
}

/// The schema of a required `TypedValue`-or-`null` field.
fn nullable_typed_value(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let value = g.subschema_for::<TypedValue>();
    schemars::json_schema!({"anyOf": [value, {"type": "null"}]})
}

/// An `Option` field that must be present (`null` allowed): serde treats a missing
/// `Option` field as `None` unless the field has its own deserializer.
fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TypedValue>, D::Error> {
    Option::<TypedValue>::deserialize(d)
}

impl MetadataPatch {
    /// The edit this patch makes.
    pub fn edit(&self) -> MetaEdit {
        match &self.patched {
            Some(v) => MetaEdit::Set(self.key.clone(), v.0.clone()),
            None => MetaEdit::Remove(self.key.clone()),
        }
    }

    /// Checks what serde cannot (the key's form, a value the key refuses, a patch that does
    /// nothing): `Err((field, message))` with the field relative to the patch.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        check_key(&self.key).map_err(|m| ("key", m))?;
        if let Some(v) = &self.patched {
            check_metadata_value(&self.key, &v.0).map_err(|m| ("patched", m))?;
        }
        if self.original.is_none() && self.patched.is_none() {
            return Err((
                "patched",
                "both original and patched are null (removing a key that is expected to be absent does nothing)".into(),
            ));
        }
        Ok(())
    }
}

/// A GGUF metadata value with its type, as written in a configuration (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct TypedValue(pub MetaValue);

impl TypedValue {
    /// Whether two values are the same, floats compared by their bits (so a NaN matches
    /// itself and `-0.0` differs from `0.0`, as the bytes in the file do).
    pub fn same(a: &MetaValue, b: &MetaValue) -> bool {
        match (a, b) {
            (MetaValue::F32(x), MetaValue::F32(y)) => x.to_bits() == y.to_bits(),
            (MetaValue::F64(x), MetaValue::F64(y)) => x.to_bits() == y.to_bits(),
            (MetaValue::Array(x), MetaValue::Array(y)) => same_array(x, y),
            _ => a == b,
        }
    }
}

fn same_array(a: &MetaArray, b: &MetaArray) -> bool {
    match (a, b) {
        (MetaArray::F32(x), MetaArray::F32(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
        }
        (MetaArray::F64(x), MetaArray::F64(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
        }
        (MetaArray::Array(x), MetaArray::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_array(p, q))
        }
        _ => a == b,
    }
}

impl Serialize for TypedValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        to_json(&self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for TypedValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        from_json(&v)
            .map(TypedValue)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for TypedValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TypedValue".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let all = [
            "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING",
            "ARRAY", "UINT64", "INT64", "FLOAT64",
        ];
        schemars::json_schema!({
            "description": "A GGUF metadata value with its type (gguf-py's type names). 64-bit integers as decimal strings; floats as numbers or \"nan\", \"inf\", \"-inf\"; a string that is not UTF-8 as \"hex\".",
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"enum": all},
                "element": {"enum": all, "description": "Element type of an ARRAY."},
                "value": {
                    "description": "The value: a number or boolean for the types of that kind, a decimal string for UINT64/INT64, a string for STRING, a list for ARRAY (nested arrays as TypedValue objects).",
                    "type": ["number", "boolean", "string", "array"]
                },
                "hex": {
                    "description": "A STRING's bytes (or an ARRAY of STRING's, one hex string each) when they are not UTF-8.",
                    "type": ["string", "array"]
                }
            },
            "additionalProperties": false
        })
    }
}

/// The JSON form of a value.
pub fn to_json(v: &MetaValue) -> Value {
    let ty = v.value_type().name();
    match v {
        MetaValue::String(s) => match std::str::from_utf8(s) {
            Ok(t) => json!({"type": ty, "value": t}),
            Err(_) => json!({"type": ty, "hex": to_hex(s)}),
        },
        MetaValue::Array(a) => {
            let mut m = Map::new();
            m.insert("type".into(), ty.into());
            m.insert("element".into(), a.element_type().name().into());
            let (key, items) = array_items(a);
            m.insert(key.into(), Value::Array(items));
            Value::Object(m)
        }
        scalar => json!({"type": ty, "value": scalar_json(scalar)}),
    }
}

fn f32_json(x: f32) -> Value {
    if x.is_finite() {
        // The shortest digits of the f32, which read back (as f32) to the same value.
        x.to_string()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    } else {
        non_finite(f64::from(x))
    }
}

fn f64_json(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or_else(|| non_finite(x), Value::Number)
}

fn non_finite(x: f64) -> Value {
    Value::String(
        if x.is_nan() {
            "nan"
        } else if x > 0.0 {
            "inf"
        } else {
            "-inf"
        }
        .into(),
    )
}

fn scalar_json(v: &MetaValue) -> Value {
    match *v {
        MetaValue::U8(x) => x.into(),
        MetaValue::I8(x) => x.into(),
        MetaValue::U16(x) => x.into(),
        MetaValue::I16(x) => x.into(),
        MetaValue::U32(x) => x.into(),
        MetaValue::I32(x) => x.into(),
        MetaValue::U64(x) => x.to_string().into(),
        MetaValue::I64(x) => x.to_string().into(),
        MetaValue::F32(x) => f32_json(x),
        MetaValue::F64(x) => f64_json(x),
        MetaValue::Bool(b) => b.into(),
        // Strings and arrays are not scalars; to_json handles them.
        MetaValue::String(_) | MetaValue::Array(_) => Value::Null,
    }
}

/// `("value", items)`, or `("hex", items)` for a string array holding a non-UTF-8 string.
fn array_items(a: &MetaArray) -> (&'static str, Vec<Value>) {
    fn map<T: Copy>(v: &[T], f: impl Fn(T) -> Value) -> Vec<Value> {
        v.iter().map(|&x| f(x)).collect()
    }
    let items = match a {
        MetaArray::U8(v) => map(v, Value::from),
        MetaArray::I8(v) => map(v, Value::from),
        MetaArray::U16(v) => map(v, Value::from),
        MetaArray::I16(v) => map(v, Value::from),
        MetaArray::U32(v) => map(v, Value::from),
        MetaArray::I32(v) => map(v, Value::from),
        MetaArray::U64(v) => map(v, |x| x.to_string().into()),
        MetaArray::I64(v) => map(v, |x| x.to_string().into()),
        MetaArray::F32(v) => map(v, f32_json),
        MetaArray::F64(v) => map(v, f64_json),
        MetaArray::Bool(v) => map(v, Value::from),
        MetaArray::String(s) => {
            let text: Option<Vec<Value>> = s
                .iter()
                .map(|b| std::str::from_utf8(b).ok().map(Value::from))
                .collect();
            match text {
                Some(t) => t,
                None => return ("hex", s.iter().map(|b| to_hex(b).into()).collect()),
            }
        }
        MetaArray::Array(v) => v
            .iter()
            .map(|inner| to_json(&MetaValue::Array(inner.clone())))
            .collect(),
    };
    ("value", items)
}

/// Reads the JSON form of a value; the error names the part that is wrong.
pub fn from_json(v: &Value) -> Result<MetaValue, String> {
    let obj = v.as_object().ok_or_else(|| {
        format!(
            "expected an object like {{\"type\": \"UINT32\", \"value\": 1}}, got {}",
            kind(v)
        )
    })?;
    let ty_name = obj
        .get("type")
        .ok_or("missing field `type`")?
        .as_str()
        .ok_or("type: expected a type name such as \"UINT32\"")?;
    let ty = value_type_from_name(ty_name)
        .ok_or_else(|| format!("type: unknown GGUF type {ty_name:?}"))?;
    let allowed: &[&str] = match ty {
        ValueType::Array => &["type", "element", "value", "hex"],
        ValueType::String => &["type", "value", "hex"],
        _ => &["type", "value"],
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown field `{k}` for type {}", ty.name()));
    }
    let payload = |hex_ok: bool| -> Result<(bool, &Value), String> {
        match (obj.get("value"), obj.get("hex")) {
            (Some(v), None) => Ok((false, v)),
            (None, Some(h)) if hex_ok => Ok((true, h)),
            (Some(_), Some(_)) => Err("give either `value` or `hex`, not both".into()),
            _ => Err("missing field `value`".into()),
        }
    };
    match ty {
        ValueType::String => match payload(true)? {
            (false, Value::String(s)) => Ok(MetaValue::String(s.as_bytes().to_vec())),
            (true, Value::String(h)) => from_hex(h)
                .map(MetaValue::String)
                .map_err(|e| format!("hex: {e}")),
            (hex, other) => Err(format!(
                "{}: expected a string, got {}",
                if hex { "hex" } else { "value" },
                kind(other)
            )),
        },
        ValueType::Array => {
            let el_name = obj
                .get("element")
                .ok_or("missing field `element` (the ARRAY's element type)")?
                .as_str()
                .ok_or("element: expected a type name such as \"INT32\"")?;
            let element = value_type_from_name(el_name)
                .ok_or_else(|| format!("element: unknown GGUF type {el_name:?}"))?;
            let (hex, items) = payload(element == ValueType::String)?;
            let field = if hex { "hex" } else { "value" };
            let items = items
                .as_array()
                .ok_or_else(|| format!("{field}: expected a list, got {}", kind(items)))?;
            array_from_json(element, hex, items).map_err(|e| format!("{field}{e}"))
        }
        _ => {
            let (_, v) = payload(false)?;
            scalar_from_json(ty, v).map_err(|e| format!("value: {e}"))
        }
    }
}

/// The JSON kind of `v`, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn scalar_from_json(ty: ValueType, v: &Value) -> Result<MetaValue, String> {
    let text = match (ty, v) {
        (ValueType::Bool, Value::Bool(b)) => return Ok(MetaValue::Bool(*b)),
        (ValueType::Bool, other) => {
            return Err(format!("expected true or false, got {}", kind(other)))
        }
        (_, Value::Number(n)) => n.to_string(),
        // Decimal strings for every integer type (required in practice for 64-bit values)
        // and nan/inf for floats.
        (_, Value::String(s)) => s.clone(),
        (_, other) => {
            return Err(format!(
                "expected a {} number, got {}",
                ty.name(),
                kind(other)
            ))
        }
    };
    crate::metadata::parse_value("", ty, &text).map_err(|e| e.why)
}

/// Reads `items` as an array of `element`; the error starts with `[i]` naming the element.
fn array_from_json(element: ValueType, hex: bool, items: &[Value]) -> Result<MetaValue, String> {
    let at = |i: usize, e: String| format!("[{i}]: {e}");
    if element == ValueType::String {
        let mut s = StringArray::with_capacity(items.len(), 0);
        for (i, v) in items.iter().enumerate() {
            match (hex, v) {
                (false, Value::String(t)) => s.push(t.as_bytes()),
                (true, Value::String(h)) => s.push(&from_hex(h).map_err(|e| at(i, e))?),
                (_, other) => return Err(at(i, format!("expected a string, got {}", kind(other)))),
            }
        }
        return Ok(MetaValue::Array(MetaArray::String(s)));
    }
    if element == ValueType::Array {
        let mut inner = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            match from_json(v).map_err(|e| at(i, e))? {
                MetaValue::Array(a) => inner.push(a),
                other => {
                    return Err(at(
                        i,
                        format!("expected an ARRAY, got {}", other.value_type().name()),
                    ))
                }
            }
        }
        return Ok(MetaValue::Array(MetaArray::Array(inner)));
    }
    let mut values = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        values.push(scalar_from_json(element, v).map_err(|e| at(i, e))?);
    }
    Ok(MetaValue::Array(crate::metadata::scalar_array(
        element, values,
    )))
}

/// A short, one-line rendering of a value for previews: `UINT32 4096`, `STRING "Hello…"`
/// (at most about 60 characters of text), `ARRAY[INT32] ×3 [1, -2, 3]`; `absent` for `None`.
pub fn describe(v: Option<&MetaValue>) -> String {
    const MAX: usize = 60;
    let clip = |s: String| -> String {
        if s.chars().count() > MAX {
            let mut t: String = s.chars().take(MAX).collect();
            t.push('…');
            t
        } else {
            s
        }
    };
    let Some(v) = v else {
        return "absent".into();
    };
    match v {
        MetaValue::String(s) => match std::str::from_utf8(s) {
            // Clipped inside the quotes: `STRING "{% for m in…"`.
            Ok(t) => format!("STRING {:?}", clip(t.to_string())),
            Err(_) => format!("STRING ({} bytes, not UTF-8)", s.len()),
        },
        MetaValue::Array(a) => {
            let head = format!("ARRAY[{}] ×{}", a.element_type().name(), a.len());
            let (_, items) = array_items(a);
            let text: Vec<String> = items.iter().take(8).map(Value::to_string).collect();
            let more = if a.len() > 8 { ", …" } else { "" };
            format!("{head} {}", clip(format!("[{}{more}]", text.join(", "))))
        }
        scalar => {
            let j = scalar_json(scalar);
            let text = j.as_str().map_or_else(|| j.to_string(), str::to_string);
            format!("{} {text}", scalar.value_type().name())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: MetaValue) {
        let j = to_json(&v);
        let text = j.to_string();
        let back = from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert!(TypedValue::same(&back, &v), "{text}: {back:?} != {v:?}");
    }

    #[test]
    fn every_type_round_trips_through_json_text() {
        for v in [
            MetaValue::U8(255),
            MetaValue::I8(-128),
            MetaValue::U16(65535),
            MetaValue::I16(-32768),
            MetaValue::U32(u32::MAX),
            MetaValue::I32(i32::MIN),
            MetaValue::U64(u64::MAX),
            MetaValue::I64(i64::MIN),
            MetaValue::F32(0.1),
            MetaValue::F32(f32::MIN_POSITIVE / 3.0),
            MetaValue::F32(f32::MAX),
            MetaValue::F32(f32::NAN),
            MetaValue::F32(f32::NEG_INFINITY),
            MetaValue::F32(-0.0),
            MetaValue::F64(0.1),
            MetaValue::F64(f64::INFINITY),
            MetaValue::Bool(true),
            MetaValue::string("{% for m in messages %}\n\"x\"{% endfor %}"),
            MetaValue::String(vec![0xff, 0, 0x80]),
            MetaValue::Array(MetaArray::U64(vec![u64::MAX, 0, 1 << 53 | 1])),
            MetaValue::Array(MetaArray::I64(vec![i64::MIN, -1])),
            MetaValue::Array(MetaArray::F32(vec![0.5, f32::NAN, 1e-45])),
            MetaValue::Array(MetaArray::F64(vec![])),
            MetaValue::Array(MetaArray::Bool(vec![true, false])),
            MetaValue::Array(MetaArray::String(["a", "b\"c", ""].into_iter().collect())),
            MetaValue::Array(MetaArray::String(
                [&b"ok"[..], &[0xc3, 0x28][..]].into_iter().collect(),
            )),
            MetaValue::Array(MetaArray::Array(vec![
                MetaArray::U8(vec![1, 2]),
                MetaArray::String(["x"].into_iter().collect()),
                MetaArray::Array(vec![MetaArray::I16(vec![-1])]),
            ])),
        ] {
            round_trip(v);
        }
    }

    #[test]
    fn sixty_four_bit_integers_are_decimal_strings() {
        let j = to_json(&MetaValue::U64(18_446_744_073_709_551_615));
        assert_eq!(
            j,
            json!({"type": "UINT64", "value": "18446744073709551615"})
        );
        let j = to_json(&MetaValue::Array(MetaArray::I64(vec![
            -9_007_199_254_740_993,
        ])));
        assert_eq!(j["value"], json!(["-9007199254740993"]));
        // JSON integers are read exactly too.
        let v = from_json(&json!({"type": "UINT64", "value": 9007199254740993u64})).unwrap();
        assert_eq!(v, MetaValue::U64(9_007_199_254_740_993));
    }

    #[test]
    fn float32_is_written_with_its_shortest_digits() {
        assert_eq!(to_json(&MetaValue::F32(0.1))["value"], json!(0.1));
        assert_eq!(to_json(&MetaValue::F32(1e-5))["value"], json!(1e-5));
        assert_eq!(to_json(&MetaValue::F64(f64::NAN))["value"], json!("nan"));
    }

    #[test]
    fn bad_values_name_what_is_wrong() {
        let e = |v: Value| from_json(&v).unwrap_err();
        assert_eq!(
            e(json!({"type": "UINT8", "value": 256})),
            "value: 256 is out of range 0..=255"
        );
        assert_eq!(
            e(json!({"type": "ARRAY", "element": "UINT8", "value": [1, 300]})),
            "value[1]: 300 is out of range 0..=255"
        );
        assert!(e(json!({"type": "UINT32", "value": "abc"})).contains("'abc'"));
        assert!(e(json!({"type": "UINT32", "value": 1.5})).contains("whole number"));
        assert!(e(json!({"type": "UINT128", "value": 1})).starts_with("type: unknown GGUF type"));
        assert!(e(json!({"type": "BOOL", "value": 1})).contains("true or false"));
        assert!(e(json!({"type": "STRING", "value": 1})).contains("expected a string"));
        assert!(e(json!({"type": "STRING", "hex": "0g"})).starts_with("hex: "));
        assert!(e(json!({"type": "UINT32", "valu": 1})).contains("unknown field `valu`"));
        assert!(e(json!({"type": "UINT32"})).contains("missing field `value`"));
        assert!(e(json!({"type": "ARRAY", "value": []})).contains("element"));
        assert!(
            e(json!({"type": "ARRAY", "element": "INT8", "value": 3})).contains("expected a list")
        );
        assert_eq!(
            e(
                json!({"type": "ARRAY", "element": "ARRAY", "value": [{"type": "UINT8", "value": 1}]})
            ),
            "value[0]: expected an ARRAY, got UINT8"
        );
        assert!(e(json!({"type": "FLOAT32", "value": 1e39})).contains("too large"));
        assert!(e(json!("UINT32")).starts_with("expected an object"));
    }

    #[test]
    fn descriptions_are_short() {
        assert_eq!(describe(None), "absent");
        assert_eq!(describe(Some(&MetaValue::U32(7))), "UINT32 7");
        assert_eq!(
            describe(Some(&MetaValue::U64(u64::MAX))),
            "UINT64 18446744073709551615"
        );
        let long = MetaValue::string("x".repeat(500));
        let d = describe(Some(&long));
        assert!(d.starts_with("STRING \"xxx") && d.ends_with("x…\""), "{d}");
        assert!(d.chars().count() < 80, "{d}");
        let a = MetaValue::Array(MetaArray::I32((0..20).collect()));
        assert_eq!(
            describe(Some(&a)),
            "ARRAY[INT32] ×20 [0, 1, 2, 3, 4, 5, 6, 7, …]"
        );
    }
}
