//! Editing one element of a quantized block in place.
//!
//! # Overview
//! A weight editor that changes a single element of a quantized tensor should not re-encode
//! the whole block: ggml's quantizers are not idempotent for K-quants (re-quantizing a
//! dequantized Q3_K block changes about half of them), so a re-encode would silently move the
//! block's other 255 values. This module instead keeps the block's scales and mins and looks
//! for the element's code (its 2–8 bits) whose value, decoded exactly as the dequantizer
//! decodes it, is nearest the target:
//!
//! - [`nearest`] reports that value and code without touching the block, or `None` when the
//!   target is more than half a step outside what the block's current scales can express;
//! - [`set_element`] writes the code into the block (only that element's bits change);
//! - [`patch_element`] does the same on a copy and returns the new block bytes;
//! - [`requantize_element`] is the fallback when the value is not representable: it
//!   re-quantizes the whole block with the element replaced and reports how every other element
//!   moved, so the caller can show the side effect.
//!
//! Supported: the legacy types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), the K-quants (Q2_K..Q6_K),
//! IQ4_NL, IQ4_XS, TQ2_0, MXFP4, and the float types F32, F16 and BF16 (one element per
//! "block"; the value is rounded as the float codec rounds it). Grid IQ types, TQ1_0 (five
//! elements share a base-3 byte), Q8_1 and Q8_K (they carry per-block sums) are refused with
//! [`BlockError::Unsupported`].
//!
//! ```
//! use hotpatch_quant::{block, dequantize, quantize, GgmlType};
//! let x: Vec<f32> = (0..256).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
//! let mut q = vec![0u8; GgmlType::Q4_K.type_size()];
//! quantize(GgmlType::Q4_K, &x, &mut q).unwrap();
//! let before = q.clone();
//! // Ask for 0.3 at element 10: the stored value is the nearest level of its sub-block.
//! let stored = block::set_element(GgmlType::Q4_K, &mut q, 10, 0.3).unwrap().expect("in range");
//! let mut y = vec![0f32; 256];
//! dequantize(GgmlType::Q4_K, &q, &mut y).unwrap();
//! assert_eq!(y[10], stored);
//! // Scales and every other element's bits are untouched.
//! assert_eq!(q[..16], before[..16]);
//! ```

use crate::kquants::{half_at, q3_k_scales, scale_min_k4};
use crate::{CodecError, GgmlType};

/// Why a block edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// This type has no single-element editor (see the module docs for the list).
    #[error("editing one element of a {ty} block is not supported")]
    Unsupported {
        /// The tensor type.
        ty: GgmlType,
    },
    /// The block slice is not exactly one block of the type.
    #[error("{ty}: a block is {expected} bytes, got {got}")]
    BlockLength {
        /// The tensor type.
        ty: GgmlType,
        /// Bytes per block of `ty`.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The element index is not inside the block.
    #[error("{ty}: element {index} is outside the block of {block_size}")]
    Index {
        /// The tensor type.
        ty: GgmlType,
        /// The index asked for.
        index: usize,
        /// Elements per block of `ty`.
        block_size: usize,
    },
    /// Re-quantizing or decoding the block failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Where a value can go in a block without changing its scales.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// The value the element will decode to (exactly what the dequantizer returns).
    pub value: f32,
    /// The element's new code (quant level index; for floats the raw bits).
    pub code: u32,
    /// The element's current code.
    pub previous_code: u32,
}

/// A block with one element changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Patched {
    /// The value the element now decodes to.
    pub value: f32,
    /// The new block bytes (same length as the input block).
    pub bytes: Vec<u8>,
}

/// A block re-quantized because the new value did not fit its scales.
#[derive(Debug, Clone, PartialEq)]
pub struct Requantized {
    /// The new block bytes.
    pub bytes: Vec<u8>,
    /// Every element of the block as it decoded before the edit.
    pub before: Vec<f32>,
    /// Every element of the block as it decodes after the edit (the edited element included).
    pub after: Vec<f32>,
}

impl Requantized {
    /// The value the edited element decodes to now.
    pub fn value(&self, index: usize) -> f32 {
        self.after[index]
    }

    /// Indices of the *other* elements whose decoded value changed.
    pub fn moved(&self, index: usize) -> Vec<usize> {
        (0..self.before.len())
            .filter(|&i| i != index && self.before[i].to_bits() != self.after[i].to_bits())
            .collect()
    }
}

/// Whether [`nearest`] / [`set_element`] handle this type.
pub fn supports(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        F32 | F16
            | BF16
            | Q4_0
            | Q4_1
            | Q5_0
            | Q5_1
            | Q8_0
            | Q2_K
            | Q3_K
            | Q4_K
            | Q5_K
            | Q6_K
            | IQ4_NL
            | IQ4_XS
            | TQ2_0
            | MXFP4
    )
}

/// The value element `index` of `block` decodes to.
pub fn element(ty: GgmlType, block: &[u8], index: usize) -> Result<f32, BlockError> {
    let slot = slot(ty, block, index)?;
    Ok(match slot.map {
        Map::Float => {
            let mut v = [0f32; 1];
            crate::dequantize(ty, block, &mut v)?;
            v[0]
        }
        _ => slot.level(slot.read(block)),
    })
}

/// The value nearest `target` that element `index` can hold with the block's current scales,
/// or `None` when `target` is not finite or lies more than half a step beyond the block's
/// smallest or largest level. Ties between two levels go to the current code, else the lower
/// code. Float elements (F32/F16/BF16) hold whatever the float codec rounds `target` to,
/// NaN and infinities included; `None` only when a finite target overflows to infinity.
pub fn nearest(
    ty: GgmlType,
    block: &[u8],
    index: usize,
    target: f32,
) -> Result<Option<Placement>, BlockError> {
    let slot = slot(ty, block, index)?;
    let cur = slot.read(block);
    if let Map::Float = slot.map {
        let mut bits = vec![0u8; ty.type_size()];
        crate::quantize(ty, &[target], &mut bits)?;
        let mut v = [0f32; 1];
        crate::dequantize(ty, &bits, &mut v)?;
        let code = bits
            .iter()
            .rev()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        if target.is_finite() && !v[0].is_finite() {
            return Ok(None);
        }
        return Ok(Some(Placement {
            value: v[0],
            code,
            previous_code: cur,
        }));
    }
    if !target.is_finite() {
        return Ok(None);
    }
    let n = slot.n_codes;
    let mut best = cur;
    let mut best_err = (slot.level(cur) - target).abs();
    for code in 0..n {
        let err = (slot.level(code) - target).abs();
        if err < best_err {
            best = code;
            best_err = err;
        }
    }
    let v = slot.level(best);
    if !v.is_finite() || best_err.is_nan() {
        return Ok(None);
    }
    if v != target {
        // The step to the next distinct level on the target's side; past the extreme level,
        // the step on the other side stands in for it.
        let toward = |above: bool| {
            (0..n)
                .map(|c| slot.level(c))
                .filter(|&l| if above { l > v } else { l < v })
                .map(|l| (l - v).abs())
                .fold(f32::INFINITY, f32::min)
        };
        let mut step = toward(target > v);
        if step.is_infinite() {
            step = toward(target < v);
        }
        if step.is_infinite() || best_err > step / 2.0 {
            return Ok(None);
        }
    }
    Ok(Some(Placement {
        value: v,
        code: best,
        previous_code: cur,
    }))
}

/// Sets element `index` of `block` to the value nearest `target` that the block's current
/// scales allow, changing only that element's bits, and returns the stored value; `None`
/// (block untouched) when `target` is not representable (see [`nearest`]).
pub fn set_element(
    ty: GgmlType,
    block: &mut [u8],
    index: usize,
    target: f32,
) -> Result<Option<f32>, BlockError> {
    let Some(p) = nearest(ty, block, index, target)? else {
        return Ok(None);
    };
    let slot = slot(ty, block, index)?;
    slot.write(block, p.code);
    Ok(Some(p.value))
}

/// [`set_element`] on a copy: the stored value and the new block bytes, or `None`.
pub fn patch_element(
    ty: GgmlType,
    block: &[u8],
    index: usize,
    target: f32,
) -> Result<Option<Patched>, BlockError> {
    let mut bytes = block.to_vec();
    Ok(set_element(ty, &mut bytes, index, target)?.map(|value| Patched { value, bytes }))
}

/// Re-quantizes the block with element `index` replaced by `target` (the fallback when
/// [`nearest`] says `None`), returning the new bytes and every element before and after.
pub fn requantize_element(
    ty: GgmlType,
    block: &[u8],
    index: usize,
    target: f32,
) -> Result<Requantized, BlockError> {
    check(ty, block, index)?;
    let mut before = vec![0f32; ty.block_size()];
    crate::dequantize(ty, block, &mut before)?;
    let mut values = before.clone();
    values[index] = target;
    let mut bytes = vec![0u8; ty.type_size()];
    crate::quantize(ty, &values, &mut bytes)?;
    let mut after = vec![0f32; ty.block_size()];
    crate::dequantize(ty, &bytes, &mut after)?;
    Ok(Requantized {
        bytes,
        before,
        after,
    })
}

// ---------------------------------------------------------------------------------------------
// Per-type element layout
// ---------------------------------------------------------------------------------------------

/// How a code turns into the element's value, in the dequantizer's exact `f32` operations.
#[derive(Clone, Copy)]
enum Map {
    /// `a * q(code)`.
    Mul { a: f32, q: Q },
    /// `q(code) * a + b` (Q4_1, Q5_1).
    MulAdd { a: f32, b: f32, q: Q },
    /// `a * q(code) - b` (Q2_K, Q4_K, Q5_K).
    MulSub { a: f32, b: f32, q: Q },
    /// A plain float element (F32/F16/BF16), encoded by the float codec.
    Float,
}

/// The integer a code stands for.
#[derive(Clone, Copy)]
enum Q {
    /// `code + offset`.
    Offset(i32),
    /// The code's byte read as `i8`.
    Signed8,
    /// An entry of a level table.
    Table(&'static [i8; 16]),
}

impl Q {
    #[inline]
    fn get(self, code: u32) -> f32 {
        match self {
            Q::Offset(o) => (code as i32 + o) as f32,
            Q::Signed8 => f32::from(code as u8 as i8),
            Q::Table(t) => f32::from(t[code as usize & 15]),
        }
    }
}

/// One run of an element's code bits: `bits` bits at `shift` in byte `byte`.
#[derive(Clone, Copy)]
struct Field {
    byte: usize,
    shift: u32,
    bits: u32,
}

/// Element `index` of a block: its code fields (low bits first) and its value map.
struct Slot {
    n_codes: u32,
    fields: [Option<Field>; 4],
    map: Map,
}

impl Slot {
    fn level(&self, code: u32) -> f32 {
        match self.map {
            Map::Mul { a, q } => a * q.get(code),
            Map::MulAdd { a, b, q } => q.get(code) * a + b,
            Map::MulSub { a, b, q } => a * q.get(code) - b,
            Map::Float => f32::NAN,
        }
    }

    fn read(&self, block: &[u8]) -> u32 {
        let mut code = 0u32;
        let mut at = 0;
        for f in self.fields.iter().flatten() {
            let mask = (1u32 << f.bits) - 1;
            code |= ((u32::from(block[f.byte]) >> f.shift) & mask) << at;
            at += f.bits;
        }
        code
    }

    fn write(&self, block: &mut [u8], code: u32) {
        let mut at = 0;
        for f in self.fields.iter().flatten() {
            let mask = ((1u32 << f.bits) - 1) as u8;
            let v = ((code >> at) as u8) & mask;
            block[f.byte] = (block[f.byte] & !(mask << f.shift)) | (v << f.shift);
            at += f.bits;
        }
    }
}

fn check(ty: GgmlType, block: &[u8], index: usize) -> Result<(), BlockError> {
    if block.len() != ty.type_size() {
        return Err(BlockError::BlockLength {
            ty,
            expected: ty.type_size(),
            got: block.len(),
        });
    }
    if index >= ty.block_size() {
        return Err(BlockError::Index {
            ty,
            index,
            block_size: ty.block_size(),
        });
    }
    Ok(())
}

fn f(byte: usize, shift: u32, bits: u32) -> Option<Field> {
    Some(Field { byte, shift, bits })
}

/// The nibble of element `i` in a `[low nibbles | high nibbles]` run of `half` bytes at `at`.
fn nibble(at: usize, half: usize, i: usize) -> Option<Field> {
    f(at + i % half, if i < half { 0 } else { 4 }, 4)
}

fn slot(ty: GgmlType, b: &[u8], i: usize) -> Result<Slot, BlockError> {
    check(ty, b, i)?;
    let one = |field: Option<Field>, n_codes: u32, map: Map| Slot {
        n_codes,
        fields: [field, None, None, None],
        map,
    };
    let two = |lo: Option<Field>, hi: Option<Field>, n_codes: u32, map: Map| Slot {
        n_codes,
        fields: [lo, hi, None, None],
        map,
    };
    Ok(match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            let n = ty.type_size();
            let fields = [
                f(0, 0, 8),
                if n > 1 { f(1, 0, 8) } else { None },
                f(2, 0, 8).filter(|_| n > 2),
                f(3, 0, 8).filter(|_| n > 3),
            ];
            Slot {
                n_codes: 0,
                fields,
                map: Map::Float,
            }
        }
        GgmlType::Q4_0 => one(
            nibble(2, 16, i),
            16,
            Map::Mul {
                a: half_at(b, 0),
                q: Q::Offset(-8),
            },
        ),
        GgmlType::Q4_1 => one(
            nibble(4, 16, i),
            16,
            Map::MulAdd {
                a: half_at(b, 0),
                b: half_at(b, 2),
                q: Q::Offset(0),
            },
        ),
        GgmlType::Q5_0 => two(
            nibble(6, 16, i),
            f(2 + i / 8, (i % 8) as u32, 1),
            32,
            Map::Mul {
                a: half_at(b, 0),
                q: Q::Offset(-16),
            },
        ),
        GgmlType::Q5_1 => two(
            nibble(8, 16, i),
            f(4 + i / 8, (i % 8) as u32, 1),
            32,
            Map::MulAdd {
                a: half_at(b, 0),
                b: half_at(b, 2),
                q: Q::Offset(0),
            },
        ),
        GgmlType::Q8_0 => one(
            f(2 + i, 0, 8),
            256,
            Map::Mul {
                a: half_at(b, 0),
                q: Q::Signed8,
            },
        ),
        GgmlType::Q2_K => {
            let (h, r) = (i / 128, i % 128);
            let sc = b[i / 16];
            let d = half_at(b, 80);
            let m = half_at(b, 82);
            let map = Map::MulSub {
                a: d * f32::from(sc & 0xF),
                b: m * f32::from(sc >> 4),
                q: Q::Offset(0),
            };
            one(f(16 + 32 * h + r % 32, 2 * (r / 32) as u32, 2), 4, map)
        }
        GgmlType::Q3_K => {
            let (h, r) = (i / 128, i % 128);
            let (g, l) = (r / 32, r % 32);
            let scales = q3_k_scales(&b[96..108]);
            let map = Map::Mul {
                a: half_at(b, 108) * f32::from(scales[i / 16]),
                q: Q::Offset(-4),
            };
            two(
                f(32 + 32 * h + l, 2 * g as u32, 2),
                f(l, (4 * h + g) as u32, 1),
                8,
                map,
            )
        }
        GgmlType::Q4_K | GgmlType::Q5_K => {
            let (j, r) = (i / 64, i % 64);
            let sub = 2 * j + r / 32;
            let (sc, m) = scale_min_k4(sub, &b[4..16]);
            let map = Map::MulSub {
                a: half_at(b, 0) * f32::from(sc),
                b: half_at(b, 2) * f32::from(m),
                q: Q::Offset(0),
            };
            if ty == GgmlType::Q4_K {
                one(f(16 + 32 * j + r % 32, 4 * (r / 32) as u32, 4), 16, map)
            } else {
                two(
                    f(48 + 32 * j + r % 32, 4 * (r / 32) as u32, 4),
                    f(16 + r % 32, sub as u32, 1),
                    32,
                    map,
                )
            }
        }
        GgmlType::Q6_K => {
            let (n, r) = (i / 128, i % 128);
            let (g, l) = (r / 32, r % 32);
            let ql = f(64 * n + l + 32 * (g % 2), 4 * (g / 2) as u32, 4);
            let qh = f(128 + 32 * n + l, 2 * g as u32, 2);
            let sc = b[192 + 8 * n + l / 16 + 2 * g] as i8;
            two(
                ql,
                qh,
                64,
                Map::Mul {
                    a: half_at(b, 208) * f32::from(sc),
                    q: Q::Offset(-32),
                },
            )
        }
        GgmlType::IQ4_NL => one(
            nibble(2, 16, i),
            16,
            Map::Mul {
                a: half_at(b, 0),
                q: Q::Table(crate::iquants::iq4_levels()),
            },
        ),
        GgmlType::IQ4_XS => {
            let ib = i / 32;
            let ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF)
                | (((u16::from_le_bytes([b[2], b[3]]) >> (2 * ib)) & 3) as u8) << 4;
            let dl = half_at(b, 0) * f32::from(i16::from(ls) - 32);
            one(
                nibble(8 + 16 * ib, 16, i % 32),
                16,
                Map::Mul {
                    a: dl,
                    q: Q::Table(crate::iquants::iq4_levels()),
                },
            )
        }
        GgmlType::TQ2_0 => {
            let (j, r) = (i / 128, i % 128);
            one(
                f(32 * j + r % 32, 2 * (r / 32) as u32, 2),
                4,
                Map::Mul {
                    a: half_at(b, 64),
                    q: Q::Offset(-1),
                },
            )
        }
        GgmlType::MXFP4 => {
            let e = b[0];
            let bits = if e < 2 {
                0x0020_0000u32 << e
            } else {
                u32::from(e - 1) << 23
            };
            one(
                nibble(1, 16, i),
                16,
                Map::Mul {
                    a: f32::from_bits(bits),
                    q: Q::Table(&KVALUES_MXFP4),
                },
            )
        }
        _ => return Err(BlockError::Unsupported { ty }),
    })
}

/// MXFP4's E2M1 levels, doubled (ggml's `kvalues_mxfp4`).
static KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];
