//! Element-wise transforms of tensor values, on f32.
//!
//! [`TransformOp::apply`] computes new values for a slice of dequantized values whose first
//! element has flat index `first` in its tensor; it is pure, so the same function serves the
//! editor, configurations and tests. Quantized storage is handled by the caller (see
//! [`super::codec`]): values go in dequantized and come out as what the user asked for.
//!
//! Seeded noise is a function of `(seed, flat index)` only, so the result does not depend on
//! how a tensor is chunked: element `i` gets `x + f32(std · z)` where `z` is a standard normal
//! made by Box–Muller from two splitmix64 outputs (see [`noise_z`]), easy to reproduce in
//! numpy (the tests do).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One element-wise operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransformOp {
    /// `x · factor`.
    Scale {
        /// Multiplier.
        factor: f32,
    },
    /// `x + value`.
    Add {
        /// Addend.
        value: f32,
    },
    /// `value`.
    Set {
        /// The new value.
        value: f32,
    },
    /// `min(max(x, min), max)`; NaN stays NaN.
    Clamp {
        /// Lower bound.
        min: f32,
        /// Upper bound (≥ `min`).
        max: f32,
    },
    /// `0`.
    Zero,
    /// `−x`.
    Negate,
    /// `x + std · z`, `z` standard normal from `(seed, element index)`.
    Noise {
        /// Seed of the generator.
        seed: u64,
        /// Standard deviation (≥ 0).
        std: f32,
    },
    /// NaN, +Inf and −Inf become `value`; finite values are kept.
    ReplaceNonFinite {
        /// The replacement (finite).
        value: f32,
    },
    /// `x + t · (y − x)` where `y` is the same element of the same tensor in another model.
    ///
    /// `t = 1` is a copy: the other model's values exactly (not `x + (y − x)`, which rounds), and
    /// where both tensors have the same type, the other model's bytes for every block the
    /// selection covers whole (so a K-quant block arrives bit for bit, not re-quantized).
    Lerp {
        /// The other model's file.
        model: String,
        /// Interpolation factor: 0 keeps this model, 1 takes the other.
        t: f32,
    },
}

/// A transform's parameters are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TransformError {
    /// The parameter, e.g. `"max"`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl TransformOp {
    /// The operation's name as written in JSON (`"scale"`, `"replace_non_finite"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            TransformOp::Scale { .. } => "scale",
            TransformOp::Add { .. } => "add",
            TransformOp::Set { .. } => "set",
            TransformOp::Clamp { .. } => "clamp",
            TransformOp::Zero => "zero",
            TransformOp::Negate => "negate",
            TransformOp::Noise { .. } => "noise",
            TransformOp::ReplaceNonFinite { .. } => "replace_non_finite",
            TransformOp::Lerp { .. } => "lerp",
        }
    }

    /// Checks the parameters (finite numbers, `min ≤ max`, `std ≥ 0`).
    pub fn validate(&self) -> Result<(), TransformError> {
        let finite = |field: &'static str, v: f32| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(TransformError {
                    field,
                    reason: format!("must be a finite number, got {v}"),
                })
            }
        };
        match self {
            TransformOp::Scale { factor } => finite("factor", *factor),
            TransformOp::Add { value }
            | TransformOp::Set { value }
            | TransformOp::ReplaceNonFinite { value } => finite("value", *value),
            TransformOp::Clamp { min, max } => {
                finite("min", *min)?;
                finite("max", *max)?;
                if min > max {
                    return Err(TransformError {
                        field: "max",
                        reason: format!("{max} is below min {min}"),
                    });
                }
                Ok(())
            }
            TransformOp::Noise { std, .. } => {
                finite("std", *std)?;
                if *std < 0.0 {
                    return Err(TransformError {
                        field: "std",
                        reason: format!("must be ≥ 0, got {std}"),
                    });
                }
                Ok(())
            }
            TransformOp::Lerp { model, t } => {
                if model.is_empty() {
                    return Err(TransformError {
                        field: "model",
                        reason: "must name a model file".into(),
                    });
                }
                finite("t", *t)
            }
            TransformOp::Zero | TransformOp::Negate => Ok(()),
        }
    }

    /// Whether the operation copies the other model's values as they are (a lerp with `t = 1`).
    pub fn is_copy(&self) -> bool {
        matches!(self, TransformOp::Lerp { t, .. } if *t == 1.0)
    }

    /// Whether the operation needs another model's values ([`TransformOp::Lerp`]).
    pub fn needs_other(&self) -> bool {
        matches!(self, TransformOp::Lerp { .. })
    }

    /// Transforms `values` in place. `first` is the flat index of `values[0]` in its tensor;
    /// `other` holds the other model's values at the same indices (only for `Lerp`; when it is
    /// `None` a lerp leaves the values unchanged).
    pub fn apply(&self, values: &mut [f32], first: u64, other: Option<&[f32]>) {
        match *self {
            TransformOp::Scale { factor } => values.iter_mut().for_each(|x| *x *= factor),
            TransformOp::Add { value } => values.iter_mut().for_each(|x| *x += value),
            TransformOp::Set { value } => values.fill(value),
            TransformOp::Clamp { min, max } => {
                values.iter_mut().for_each(|x| *x = x.clamp(min, max))
            }
            TransformOp::Zero => values.fill(0.0),
            TransformOp::Negate => values.iter_mut().for_each(|x| *x = -*x),
            TransformOp::Noise { seed, std } => {
                for (i, x) in values.iter_mut().enumerate() {
                    *x += (f64::from(std) * noise_z(seed, first + i as u64)) as f32;
                }
            }
            TransformOp::ReplaceNonFinite { value } => values.iter_mut().for_each(|x| {
                if !x.is_finite() {
                    *x = value;
                }
            }),
            TransformOp::Lerp { t, .. } => {
                if let Some(o) = other {
                    if t == 1.0 {
                        values.iter_mut().zip(o).for_each(|(x, &y)| *x = y);
                        return;
                    }
                    for (x, &y) in values.iter_mut().zip(o) {
                        *x += t * (y - *x);
                    }
                }
            }
        }
    }
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function of `state`.
pub fn splitmix64(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The standard normal deviate of element `index` for `seed`:
/// `u1 = ((splitmix64(seed + (2i+1)·φ) >> 11) + 1) · 2⁻⁵³`, `u2 = (splitmix64(seed + (2i+2)·φ) >> 11) · 2⁻⁵³`,
/// `z = sqrt(−2 ln u1) · cos(2π u2)` (all wrapping u64 arithmetic, f64 math; φ = 0x9E3779B97F4A7C15).
pub fn noise_z(seed: u64, index: u64) -> f64 {
    let s1 = seed.wrapping_add(index.wrapping_mul(2).wrapping_add(1).wrapping_mul(GOLDEN));
    let s2 = seed.wrapping_add(index.wrapping_mul(2).wrapping_add(2).wrapping_mul(GOLDEN));
    let scale = 1.0 / (1u64 << 53) as f64;
    let u1 = ((splitmix64(s1) >> 11) + 1) as f64 * scale;
    let u2 = (splitmix64(s2) >> 11) as f64 * scale;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_chunking_independent_and_roughly_normal() {
        let op = TransformOp::Noise { seed: 7, std: 1.0 };
        let mut whole = vec![0f32; 10_000];
        op.apply(&mut whole, 0, None);
        let mut tail = vec![0f32; 5_000];
        op.apply(&mut tail, 5_000, None);
        assert_eq!(
            &whole[5_000..],
            &tail[..],
            "noise depends on (seed, index) only"
        );
        let mean = whole.iter().map(|&x| f64::from(x)).sum::<f64>() / 1e4;
        let var = whole
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / 1e4;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "N(0,1) sample: mean {mean}, var {var}"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let e = TransformOp::Clamp { min: 1.0, max: 0.0 }
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "max");
        let e = TransformOp::Noise {
            seed: 0,
            std: f32::NAN,
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "std");
    }
}
