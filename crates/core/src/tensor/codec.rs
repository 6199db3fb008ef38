//! Quant-aware storage of new element values.
//!
//! Overview: given the current bytes of a run of whole blocks, their dequantized values and the
//! values wanted for some elements, [`encode_into`] changes as few bits as it can:
//!
//! - **Float and integer types** (block size 1): each changed element is encoded on its own
//!   (F16/BF16 round to nearest; F32 is exact).
//! - **A block where every element is selected** (a transform over whole rows, a tensor, ...):
//!   the block is quantized afresh from the new values (ggml's reference quantizer), which is
//!   the most accurate encoding and has no side effect by definition.
//! - **Otherwise the block's scales are kept** when every changed element's new value lies in
//!   the range its own bits can express with the block's current scales/mins: only that
//!   element's bits change and it takes the nearest value of its grid.
//! - **Else the block is re-quantized** from the new values (the unselected elements keep their
//!   old values as input) and the elements that moved as a side effect are reported.
//!
//! **Nothing finite becomes NaN or Inf.** Every encoding that is not the element's own grid
//! (a float element, a block quantized afresh or re-quantized) is decoded again and checked:
//! when a finite value would be stored as NaN or ±Inf (an F16 element above 65504, a block
//! whose re-computed scale overflows its 16-bit float: Q4_1 near 1e6, Q8_0 near 1e7, Q4_K
//! near 1e9), the edit is refused with [`EncodeError::TooLarge`], which names the largest
//! magnitude the block can hold there (found by bisection with the type's own codec, so it is
//! right for every type without a table). An explicit NaN or Inf asked for in a float tensor
//! is stored as asked.
//!
//! Which bits of a block belong to element `i` alone is not hard-coded per type: it is found by
//! probing (flip one bit of a quantized block, dequantize, see which elements moved) on a few
//! synthetic blocks, once per type, and cached. Enumerating an element's bits then yields its
//! grid. This works for every codec with a dequantizer and quantizer, and can never touch
//! another element: a candidate whose decoding moves any other element is rejected.

use std::collections::HashMap;
use std::sync::OnceLock;

use hotpatch_quant::{dequantize, quantize, CodecError, GgmlType};
use parking_lot::Mutex;

/// An element that moved because its block was re-quantized.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SideEffect {
    /// Flat element index in the tensor.
    pub index: u64,
    /// Value before.
    pub before: f32,
    /// Value after.
    pub after: f32,
}

/// Most side effects listed one by one; beyond, only counted.
pub const MAX_LISTED_SIDE_EFFECTS: usize = 4096;

/// What re-encoding did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct EncodeReport {
    /// Elements whose stored value was asked to change.
    pub elements_changed: u64,
    /// Blocks where only changed elements' bits were written (scales kept).
    pub blocks_kept_scales: u64,
    /// Blocks quantized afresh because every element was selected.
    pub blocks_requantized_whole: u64,
    /// Blocks re-quantized because a value was outside its grid (side effects possible).
    pub blocks_requantized: u64,
    /// Unselected elements whose value changed (all of them counted).
    pub side_effect_count: u64,
    /// The largest |after − before| among side effects.
    pub max_side_effect: f32,
    /// The first [`MAX_LISTED_SIDE_EFFECTS`] side effects.
    pub side_effects: Vec<SideEffect>,
}

impl EncodeReport {
    /// Adds another report's counts and side effects.
    pub fn merge(&mut self, o: EncodeReport) {
        self.elements_changed += o.elements_changed;
        self.blocks_kept_scales += o.blocks_kept_scales;
        self.blocks_requantized_whole += o.blocks_requantized_whole;
        self.blocks_requantized += o.blocks_requantized;
        self.side_effect_count += o.side_effect_count;
        self.max_side_effect = self.max_side_effect.max(o.max_side_effect);
        let room = MAX_LISTED_SIDE_EFFECTS.saturating_sub(self.side_effects.len());
        self.side_effects
            .extend(o.side_effects.into_iter().take(room));
    }
}

/// Why new values cannot be stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// The codec refused (no quantizer for this type, ...).
    #[error("element {index}: {source}")]
    Codec {
        /// First element of the block concerned.
        index: u64,
        /// The codec's error.
        source: CodecError,
    },
    /// A non-finite value asked for in a block-quantized type.
    #[error("element {index}: {value} cannot be stored in a {ty} block (only finite values can)")]
    NonFinite {
        /// The element.
        index: u64,
        /// The value.
        value: f32,
        /// The type.
        ty: GgmlType,
    },
    /// A finite value the type cannot hold: storing it would leave NaN or ±Inf (an F16 or BF16
    /// element out of range, or a block whose re-computed scale overflows its 16-bit float).
    #[error("element {index}: {value:?} is too large for {}: storing it would leave NaN/Inf{}", what(*.ty), limit(*.max))]
    TooLarge {
        /// The element (for a block, the largest of the values asked for in it).
        index: u64,
        /// The value asked for.
        value: f32,
        /// The type.
        ty: GgmlType,
        /// The largest magnitude the block (or element) can hold there, with its other values
        /// as they would be; `None` when no value fits (the block holds non-finite values).
        max: Option<f32>,
    },
    /// A transform turned a finite value into NaN or ±Inf (an f32 overflow, e.g. a scale by
    /// 1e30); nothing is stored.
    #[error("element {index}: {op} turns {before:?} into {after:?}, which is not a finite number (f32 overflow); nothing was changed")]
    Overflow {
        /// The element.
        index: u64,
        /// The operation (`scale`, `add`, ...).
        op: &'static str,
        /// The value before.
        before: f32,
        /// What the operation computed.
        after: f32,
    },
    /// The value is outside the element's grid and the type has no quantizer to re-encode the
    /// block.
    #[error("element {index}: {value} is outside what the block's scales can express ([{lo}, {hi}]) and {ty} blocks cannot be re-quantized here")]
    NotRepresentable {
        /// The element.
        index: u64,
        /// The value.
        value: f32,
        /// Smallest value of the element's grid.
        lo: f32,
        /// Largest value of the element's grid.
        hi: f32,
        /// The type.
        ty: GgmlType,
    },
}

fn what(ty: GgmlType) -> String {
    if ty.block_size() == 1 {
        ty.name().to_string()
    } else {
        format!("a {ty} block (its re-computed scale would overflow)")
    }
}

fn limit(max: Option<f32>) -> String {
    match max {
        Some(m) => format!("; the largest magnitude it can hold there is {m:?}"),
        None => "; no value fits there (the block holds values that are not finite)".into(),
    }
}

/// Stores `new` into `bytes`, a run of whole blocks of `ty` whose first element has flat index
/// `first`; `old` are the current dequantized values of `bytes`; only elements with
/// `selected[i]` and a new value different from the old one (bitwise) are changed.
///
/// On success `bytes` holds the new encoding; dequantize it to get the values actually stored.
pub fn encode_into(
    ty: GgmlType,
    bytes: &mut [u8],
    first: u64,
    old: &[f32],
    new: &[f32],
    selected: &[bool],
) -> Result<EncodeReport, EncodeError> {
    let (bs, ts) = (ty.block_size(), ty.type_size());
    debug_assert_eq!(old.len(), new.len());
    debug_assert_eq!(old.len(), selected.len());
    debug_assert_eq!(bytes.len() / ts * bs, old.len());
    let mut report = EncodeReport::default();
    for (b, block) in bytes.chunks_exact_mut(ts).enumerate() {
        let r = b * bs..(b + 1) * bs;
        let (o, n, s) = (&old[r.clone()], &new[r.clone()], &selected[r.clone()]);
        let base = first + r.start as u64;
        let changed: Vec<usize> = (0..bs)
            .filter(|&i| s[i] && n[i].to_bits() != o[i].to_bits())
            .collect();
        if changed.is_empty() {
            continue;
        }
        report.elements_changed += changed.len() as u64;
        if bs == 1 {
            quantize(ty, n, block).map_err(|source| EncodeError::Codec {
                index: base,
                source,
            })?;
            check_finite(ty, block, base, n, s)?;
            continue;
        }
        if let Some(&i) = changed.iter().find(|&&i| !n[i].is_finite()) {
            return Err(EncodeError::NonFinite {
                index: base + i as u64,
                value: n[i],
                ty,
            });
        }
        if s.iter().all(|&x| x) {
            quantize(ty, n, block).map_err(|source| EncodeError::Codec {
                index: base,
                source,
            })?;
            check_finite(ty, block, base, n, s)?;
            report.blocks_requantized_whole += 1;
            continue;
        }
        let mut trial = block.to_vec();
        let mut out_of_range = None;
        for &i in &changed {
            match set_keeping_scales(ty, &mut trial, o, i, n[i]) {
                Ok(()) => {}
                Err(range) => {
                    out_of_range = Some((i, range));
                    break;
                }
            }
        }
        match out_of_range {
            None => {
                block.copy_from_slice(&trial);
                report.blocks_kept_scales += 1;
            }
            Some((i, (lo, hi))) => {
                if !ty.can_quantize() {
                    return Err(EncodeError::NotRepresentable {
                        index: base + i as u64,
                        value: n[i],
                        lo,
                        hi,
                        ty,
                    });
                }
                let input: Vec<f32> = (0..bs).map(|k| if s[k] { n[k] } else { o[k] }).collect();
                quantize(ty, &input, block).map_err(|source| EncodeError::Codec {
                    index: base,
                    source,
                })?;
                let changed_mask: Vec<bool> = (0..bs).map(|k| changed.contains(&k)).collect();
                let after = check_finite(ty, block, base, &input, &changed_mask)?;
                report.blocks_requantized += 1;
                for k in 0..bs {
                    if !s[k] && after[k].to_bits() != o[k].to_bits() {
                        report.side_effect_count += 1;
                        report.max_side_effect =
                            report.max_side_effect.max((after[k] - o[k]).abs());
                        if report.side_effects.len() < MAX_LISTED_SIDE_EFFECTS {
                            report.side_effects.push(SideEffect {
                                index: base + k as u64,
                                before: o[k],
                                after: after[k],
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Decodes `bytes` (whole blocks of `ty` just encoded from `input`, first element at flat index
/// `first`) and checks that every finite input is stored as a finite value. Returns the decoded
/// values; else [`EncodeError::TooLarge`] for the first block that fails, naming its largest
/// value asked for among `changed` (all of them when none is marked) and the largest magnitude
/// the block can hold there.
pub fn check_finite(
    ty: GgmlType,
    bytes: &[u8],
    first: u64,
    input: &[f32],
    changed: &[bool],
) -> Result<Vec<f32>, EncodeError> {
    let mut out = vec![0f32; input.len()];
    dequantize(ty, bytes, &mut out).map_err(|source| EncodeError::Codec {
        index: first,
        source,
    })?;
    let Some(bad) = (0..input.len()).find(|&k| input[k].is_finite() && !out[k].is_finite()) else {
        return Ok(out);
    };
    let bs = ty.block_size();
    let b = bad / bs;
    let r = b * bs..(b + 1) * bs;
    let (inp, ch) = (&input[r.clone()], &changed[r.clone()]);
    let asked: Vec<usize> = (0..bs).filter(|&k| ch[k] && inp[k].is_finite()).collect();
    let candidates = if asked.is_empty() {
        (0..bs).filter(|&k| inp[k].is_finite()).collect()
    } else {
        asked.clone()
    };
    let at = candidates
        .iter()
        .copied()
        .max_by(|&x, &y| inp[x].abs().total_cmp(&inp[y].abs()))
        .unwrap_or(bad % bs);
    // One element asked for: how large may it be with the others as they are. Several: how
    // far may they all be scaled down together.
    let max = largest_storable(ty, inp, at, asked.len() == 1);
    Err(EncodeError::TooLarge {
        index: first + (r.start + at) as u64,
        value: inp[at],
        ty,
        max,
    })
}

/// Whether one block of `ty` encodes `input` without turning a finite value into NaN/Inf;
/// returns the decoded values when it does.
fn encodes_finite(ty: GgmlType, input: &[f32]) -> Option<Vec<f32>> {
    let mut block = vec![0u8; ty.type_size()];
    quantize(ty, input, &mut block).ok()?;
    let mut out = vec![0f32; input.len()];
    dequantize(ty, &block, &mut out).ok()?;
    input
        .iter()
        .zip(&out)
        .all(|(i, o)| !i.is_finite() || o.is_finite())
        .then_some(out)
}

/// The largest magnitude element `at` of a block holding `input` can be stored with: with
/// `alone`, `input[at]` varies and the others stay; else every value is scaled together.
/// Found by bisection over the f32 bit patterns between 0 and `|input[at]|` with the codec
/// itself (a magnitude fits when no finite value decodes to NaN/Inf); the answer is the value
/// the block then stores. `None` when not even 0 fits.
fn largest_storable(ty: GgmlType, input: &[f32], at: usize, alone: bool) -> Option<f32> {
    let target = input[at].abs();
    let sign = if input[at] < 0.0 { -1.0 } else { 1.0 };
    let trial = |m: f32| -> Option<Vec<f32>> {
        let v: Vec<f32> = if alone {
            let mut v = input.to_vec();
            v[at] = sign * m;
            v
        } else {
            let f = if target > 0.0 { m / target } else { 0.0 };
            input.iter().map(|x| x * f).collect()
        };
        encodes_finite(ty, &v)
    };
    let mut best = trial(0.0)?;
    let (mut lo, mut hi) = (0u32, target.to_bits());
    // Invariant: magnitude `lo` fits, `hi` does not (it failed in the caller).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match trial(f32::from_bits(mid)) {
            Some(out) => {
                lo = mid;
                best = out;
            }
            None => hi = mid,
        }
    }
    Some(best[at].abs())
}

/// Sets element `i` of one block to the nearest value of its grid, touching only its own bits.
/// `old` are the block's values before any change (other elements must keep them).
/// Returns the grid's range as the error when `value` lies outside it (by more than half the
/// grid step at that end) or when the element has no bits of its own.
fn set_keeping_scales(
    ty: GgmlType,
    block: &mut [u8],
    old: &[f32],
    i: usize,
    value: f32,
) -> Result<(), (f32, f32)> {
    let Some(bits) = element_bits(ty).and_then(|m| m.get(i).cloned()) else {
        return Err((f32::NAN, f32::NAN));
    };
    if bits.is_empty() || bits.len() > 12 {
        return Err((f32::NAN, f32::NAN));
    }
    let bs = ty.block_size();
    let mut vals = vec![0f32; bs];
    let mut best: Option<(f32, u32)> = None;
    let mut grid: Vec<f32> = Vec::with_capacity(1 << bits.len());
    let mut cand = block.to_vec();
    for code in 0u32..(1 << bits.len()) {
        write_code(&mut cand, &bits, code);
        if dequantize(ty, &cand, &mut vals).is_err() {
            return Err((f32::NAN, f32::NAN));
        }
        let v = vals[i];
        if !v.is_finite() {
            continue;
        }
        grid.push(v);
        let dist = (v - value).abs();
        if best.is_none_or(|(d, _)| dist < d) {
            best = Some((dist, code));
        }
    }
    grid.sort_by(f32::total_cmp);
    grid.dedup();
    let (Some(&lo), Some(&hi)) = (grid.first(), grid.last()) else {
        return Err((f32::NAN, f32::NAN));
    };
    let half_lo = grid.get(1).map_or(0.0, |&g| (g - lo) / 2.0);
    let half_hi = grid
        .len()
        .checked_sub(2)
        .and_then(|k| grid.get(k))
        .map_or(0.0, |&g| (hi - g) / 2.0);
    if value < lo - half_lo || value > hi + half_hi {
        return Err((lo, hi));
    }
    let Some((_, code)) = best else {
        return Err((lo, hi));
    };
    write_code(&mut cand, &bits, code);
    // Never touch another element: verify on the final block.
    if dequantize(ty, &cand, &mut vals).is_err() {
        return Err((lo, hi));
    }
    let others_same = vals
        .iter()
        .zip(old)
        .enumerate()
        .all(|(k, (a, b))| k == i || a.to_bits() == b.to_bits());
    if !others_same {
        return Err((lo, hi));
    }
    block.copy_from_slice(&cand);
    Ok(())
}

/// Writes `code` into an element's own bits: bit `k` of `code` goes to the `k`-th
/// (byte, bit) position of `bits`.
fn write_code(block: &mut [u8], bits: &[(usize, u8)], code: u32) {
    for (k, &(byte, bit)) in bits.iter().enumerate() {
        let m = 1u8 << bit;
        if code >> k & 1 == 1 {
            block[byte] |= m;
        } else {
            block[byte] &= !m;
        }
    }
}

type BitMap = Vec<Vec<(usize, u8)>>;

/// For each element of a block of `ty`, the (byte, bit) positions that belong to it alone,
/// found by probing and cached per type. `None` for types without a quantizer or dequantizer.
pub fn element_bits(ty: GgmlType) -> Option<&'static BitMap> {
    static CACHE: OnceLock<Mutex<HashMap<GgmlType, Option<&'static BitMap>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(&hit) = cache.lock().get(&ty) {
        return hit;
    }
    let computed = probe(ty).map(|m| &*Box::leak(Box::new(m)));
    *cache.lock().entry(ty).or_insert(computed)
}

fn probe(ty: GgmlType) -> Option<BitMap> {
    if !(ty.is_quantized() && ty.can_quantize() && ty.can_dequantize()) {
        return None;
    }
    let (bs, ts) = (ty.block_size(), ty.type_size());
    // bit -> Some(element) if every probe moved exactly that element; None once disqualified.
    let mut owner: Vec<Option<Option<usize>>> = vec![None; ts * 8];
    let mut state = 0x5eed_u64;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        crate::tensor::splitmix64(state)
    };
    for round in 0..4 {
        let values: Vec<f32> = (0..bs)
            .map(|_| {
                let u = (next() >> 40) as f32 / (1u64 << 24) as f32;
                // Mixed signs and magnitudes so every sub-block has a non-zero scale.
                (u - 0.5) * (1.0 + round as f32)
            })
            .collect();
        let mut block = vec![0u8; ts];
        quantize(ty, &values, &mut block).ok()?;
        let mut base = vec![0f32; bs];
        dequantize(ty, &block, &mut base).ok()?;
        let mut vals = vec![0f32; bs];
        for bit in 0..ts * 8 {
            block[bit / 8] ^= 1 << (bit % 8);
            let ok = dequantize(ty, &block, &mut vals).is_ok();
            block[bit / 8] ^= 1 << (bit % 8);
            if !ok {
                owner[bit] = Some(None);
                continue;
            }
            let mut moved = (0..bs).filter(|&k| vals[k].to_bits() != base[k].to_bits());
            let (first, second) = (moved.next(), moved.next());
            owner[bit] = match (owner[bit], first, second) {
                (Some(None), _, _) => Some(None),
                (_, Some(_), Some(_)) => Some(None),
                (None, Some(e), None) => Some(Some(e)),
                (Some(Some(p)), Some(e), None) if p == e => Some(Some(e)),
                (Some(Some(_)), Some(_), None) => Some(None),
                // Not moved in this probe (e.g. a zero scale): keep what earlier probes found.
                (prev, None, _) => prev,
            };
        }
    }
    let mut map: BitMap = vec![Vec::new(); bs];
    for (bit, o) in owner.iter().enumerate() {
        if let Some(Some(e)) = o {
            map[*e].push((bit / 8, (bit % 8) as u8));
        }
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_quant_bits_are_found_per_element() {
        // Q4_K: 4 bits per element in qs; Q6_K: 4 in ql + 2 in qh.
        let m = element_bits(GgmlType::Q4_K).expect("Q4_K has codecs");
        assert!(
            m.iter().all(|b| b.len() == 4),
            "every Q4_K element owns 4 bits"
        );
        let m = element_bits(GgmlType::Q6_K).expect("Q6_K has codecs");
        assert!(
            m.iter().all(|b| b.len() == 6),
            "every Q6_K element owns 6 bits"
        );
    }
}
