//! Tensor-edit arguments as a front end passes them — a value typed by the user, a selection and a
//! transform named by their kind with optional fields — checked and turned into the core's
//! [`Selection`] and [`TransformOp`]. Errors name the argument ([`ArgError`]).

use crate::tensor::{Selection, TransformOp};

/// An argument that cannot be used; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArgError(pub String);

/// An f32 as text: the shortest decimal that reads back as the same f32, or `NaN`,
/// `Infinity`, `-Infinity` (what TypeScript's `Number()` reads).
pub fn f32_text(x: f32) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        // Debug is the shortest round-trip form, with an exponent for very large/small values.
        format!("{x:?}")
    }
}

/// Parses a value typed by the user: a decimal number (`0.5`, `-1e-3`) or `nan`, `inf`,
/// `-inf`, `infinity` (any case). Refuses anything else, and finite text outside the f32 range.
pub fn parse_value(text: &str) -> Result<f32, ArgError> {
    let t = text.trim();
    let bad = |why: &str| ArgError(format!("value \"{t}\": {why}"));
    if t.is_empty() {
        return Err(bad("empty (type a number)"));
    }
    let lower = t.to_ascii_lowercase();
    let word = lower.trim_start_matches(['+', '-']);
    if matches!(word, "nan" | "inf" | "infinity") {
        return lower.parse::<f32>().map_err(|_| bad("not a number"));
    }
    if !t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return Err(bad("not a number"));
    }
    let v: f32 = t.parse().map_err(|_| bad("not a number"))?;
    if v.is_infinite() {
        return Err(bad("outside the f32 range (±3.4e38)"));
    }
    Ok(v)
}

/// Which elements a transform touches, by kind name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectionArgs {
    /// `all`, `rows`, `columns`, `range` (flat elements), `elements` or `head`.
    pub kind: String,
    /// First row / column / element (`rows`, `columns`, `range`).
    pub start: Option<u64>,
    /// One past the last (`rows`, `columns`, `range`).
    pub end: Option<u64>,
    /// Flat element indices (`elements`).
    pub indices: Option<Vec<u64>>,
    /// Attention head number (`head`).
    pub head: Option<u32>,
}

/// What a transform does, by operation name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransformArgs {
    /// `scale`, `add`, `set`, `clamp`, `zero`, `negate`, `noise`, `replace_non_finite`, `lerp`.
    pub op: String,
    /// The parameter of `scale` (factor), `add`, `set`, `replace_non_finite` (value), `lerp` (t).
    pub value: Option<f32>,
    /// Lower bound of `clamp`.
    pub min: Option<f32>,
    /// Upper bound of `clamp`.
    pub max: Option<f32>,
    /// Seed of `noise`.
    pub seed: Option<u64>,
    /// Standard deviation of `noise`.
    pub std: Option<f32>,
    /// The other model of `lerp`.
    pub model: Option<String>,
}

fn need<T>(v: Option<T>, op: &str, field: &str) -> Result<T, ArgError> {
    v.ok_or_else(|| ArgError(format!("transform {op}: '{field}' is required")))
}

/// The core selection for `a`.
pub fn selection_of(a: &SelectionArgs) -> Result<Selection, ArgError> {
    let k = a.kind.as_str();
    Ok(match k {
        "all" => Selection::All,
        "rows" => Selection::Rows {
            start: need(a.start, k, "start")?,
            end: need(a.end, k, "end")?,
        },
        "columns" => Selection::Columns {
            start: need(a.start, k, "start")?,
            end: need(a.end, k, "end")?,
        },
        "range" => Selection::Range {
            start: need(a.start, k, "start")?,
            end: need(a.end, k, "end")?,
        },
        "elements" => {
            let indices = need(a.indices.clone(), k, "indices")?;
            if indices.is_empty() {
                return Err(ArgError(
                    "selection elements: the list of indices is empty".into(),
                ));
            }
            Selection::Elements { indices }
        }
        "head" => Selection::Head {
            head: need(a.head, k, "head")?,
        },
        other => {
            return Err(ArgError(format!(
                "unknown selection kind '{other}' (all, rows, columns, range, elements, head)"
            )))
        }
    })
}

/// The core operation for `a`.
pub fn op_of(a: &TransformArgs) -> Result<TransformOp, ArgError> {
    let o = a.op.as_str();
    Ok(match o {
        "scale" => TransformOp::Scale {
            factor: need(a.value, o, "value")?,
        },
        "add" => TransformOp::Add {
            value: need(a.value, o, "value")?,
        },
        "set" => TransformOp::Set {
            value: need(a.value, o, "value")?,
        },
        "clamp" => TransformOp::Clamp {
            min: need(a.min, o, "min")?,
            max: need(a.max, o, "max")?,
        },
        "zero" => TransformOp::Zero,
        "negate" => TransformOp::Negate,
        "noise" => TransformOp::Noise {
            seed: need(a.seed, o, "seed")?,
            std: need(a.std, o, "std")?,
        },
        "replace_non_finite" => TransformOp::ReplaceNonFinite {
            value: need(a.value, o, "value")?,
        },
        "lerp" => TransformOp::Lerp {
            model: need(a.model.clone(), o, "model")?,
            t: need(a.value, o, "value")?,
        },
        other => {
            return Err(ArgError(format!(
                "unknown transform '{other}' (scale, add, set, clamp, zero, negate, noise, replace_non_finite, lerp)"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_strictly() {
        assert_eq!(parse_value(" 0.5 ").unwrap(), 0.5);
        assert_eq!(parse_value("-1e-3").unwrap(), -0.001);
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("-inf").unwrap(), f32::NEG_INFINITY);
        assert_eq!(parse_value("Infinity").unwrap(), f32::INFINITY);
        for bad in ["abc", "", "0x10", "1,5", "1e39", "5 5"] {
            let e = parse_value(bad).unwrap_err();
            assert!(e.0.contains(bad.trim()), "{bad}: {e}");
        }
    }

    #[test]
    fn f32_text_reads_back_exactly() {
        for x in [0.1f32, -1.5, 1e-7, 3.402_823_5e38, 1e-45, 0.0] {
            assert_eq!(f32_text(x).parse::<f32>().unwrap().to_bits(), x.to_bits());
        }
        assert_eq!(f32_text(f32::NAN), "NaN");
        assert_eq!(f32_text(f32::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn transform_args_name_what_is_missing() {
        let a = TransformArgs {
            op: "clamp".into(),
            min: Some(-1.0),
            ..TransformArgs::default()
        };
        let e = op_of(&a).unwrap_err();
        assert!(e.0.contains("'max'"), "{e}");
        let a = TransformArgs {
            op: "scale".into(),
            value: Some(2.0),
            ..TransformArgs::default()
        };
        assert_eq!(op_of(&a).unwrap(), TransformOp::Scale { factor: 2.0 });
        let s = SelectionArgs {
            kind: "diagonal".into(),
            ..SelectionArgs::default()
        };
        assert!(selection_of(&s).unwrap_err().0.contains("diagonal"));
        let s = SelectionArgs {
            kind: "elements".into(),
            indices: Some(vec![]),
            ..SelectionArgs::default()
        };
        assert!(selection_of(&s).unwrap_err().0.contains("empty"));
        let s = SelectionArgs {
            kind: "rows".into(),
            start: Some(1),
            end: Some(3),
            ..SelectionArgs::default()
        };
        assert_eq!(
            selection_of(&s).unwrap(),
            Selection::Rows { start: 1, end: 3 }
        );
    }
}
