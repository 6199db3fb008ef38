//! The largest element differences of one tensor pair ("jump to the largest differences").
//!
//! Overview: [`top_differences`] streams both tensors through the dequantizers in
//! [`CHUNK_ELEMENTS`](super::CHUNK_ELEMENTS) chunks and keeps the `k` elements with the
//! largest |A−B| in a bounded min-heap, so memory is O(k) whatever the tensor's size. Ties are
//! broken by the lower flat index, so the list is deterministic. Element pairs where a side is
//! NaN or ±Inf and the two differ rank above every finite difference (their |A−B| counts as +∞,
//! as in the difference map); equal pairs (including NaN against NaN) are never listed.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::{byte_range, checked_type, DiffError, DiffTensor, CHUNK_ELEMENTS};

/// The most elements [`top_differences`] lists.
pub const MAX_TOP_K: usize = 10_000;

/// One element where the two tensors differ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DiffPoint {
    /// Flat element index (ggml order).
    pub index: u64,
    /// Row (`index / ne[0]`).
    pub row: u64,
    /// Column (`index % ne[0]`).
    pub col: u64,
    /// The value in model A.
    pub a: f32,
    /// The value in model B.
    pub b: f32,
}

impl DiffPoint {
    /// `A − B` (NaN or ±Inf when a side is not finite).
    pub fn delta(&self) -> f32 {
        self.a - self.b
    }
}

/// The ranking key of a pair: |A−B|, +∞ for differing non-finite pairs, `None` when equal.
pub(super) fn score(x: f32, y: f32) -> Option<f32> {
    if x == y || (x.is_nan() && y.is_nan()) {
        return None;
    }
    let d = (x - y).abs();
    Some(if d.is_nan() { f32::INFINITY } else { d })
}

/// A heap entry: larger score first, then lower index.
#[derive(Clone, Copy)]
struct Entry {
    score: f32,
    index: u64,
    a: f32,
    b: f32,
}

impl Entry {
    fn key(&self) -> (f32, Reverse<u64>) {
        (self.score, Reverse(self.index))
    }
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == CmpOrdering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        let (s, i) = self.key();
        let (t, j) = o.key();
        s.total_cmp(&t).then(i.cmp(&j))
    }
}

/// The `k` elements where `a` and `b` differ most, largest |A−B| first (ties: lower index
/// first). Both tensors must have the same shape; their types may differ (both are
/// dequantized). `cancel`, when raised, stops the scan between chunks.
pub fn top_differences(
    a: &DiffTensor<'_>,
    b: &DiffTensor<'_>,
    k: usize,
    cancel: Option<&AtomicBool>,
) -> Result<Vec<DiffPoint>, DiffError> {
    if k == 0 || k > MAX_TOP_K {
        return Err(DiffError::BadCount {
            count: k,
            max: MAX_TOP_K,
        });
    }
    let (ta, tb) = comparable(a, b)?;
    let ne0 = a.dims.first().copied().unwrap_or(1).max(1);
    if ta == tb && a.data == b.data {
        return Ok(Vec::new());
    }
    let n = usize::try_from(a.n_elements().unwrap_or(0)).unwrap_or(usize::MAX);
    let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::with_capacity(k + 1);
    let mut va = vec![0f32; CHUNK_ELEMENTS];
    let mut vb = vec![0f32; CHUNK_ELEMENTS];
    let mut start = 0usize;
    while start < n {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(DiffError::Cancelled);
        }
        let len = CHUNK_ELEMENTS.min(n - start);
        let (ca, cb) = (&mut va[..len], &mut vb[..len]);
        hotpatch_quant::dequantize(ta, &a.data[byte_range(ta, start, len)], ca).map_err(|e| {
            DiffError::NotComparable {
                name: a.name.to_string(),
                why: format!("model A: {e}"),
            }
        })?;
        hotpatch_quant::dequantize(tb, &b.data[byte_range(tb, start, len)], cb).map_err(|e| {
            DiffError::NotComparable {
                name: a.name.to_string(),
                why: format!("model B: {e}"),
            }
        })?;
        // Below the heap's minimum nothing can enter: skip those pairs cheaply.
        let mut floor = if heap.len() == k {
            heap.peek().map_or(0.0, |e| e.0.score)
        } else {
            0.0
        };
        for (i, (&x, &y)) in ca.iter().zip(cb.iter()).enumerate() {
            let Some(s) = score(x, y) else { continue };
            if heap.len() == k && s <= floor {
                // Equal scores lose to the earlier (lower) index already held.
                continue;
            }
            heap.push(Reverse(Entry {
                score: s,
                index: (start + i) as u64,
                a: x,
                b: y,
            }));
            if heap.len() > k {
                heap.pop();
            }
            if heap.len() == k {
                floor = heap.peek().map_or(0.0, |e| e.0.score);
            }
        }
        start += len;
    }
    let mut out: Vec<Entry> = heap.into_iter().map(|e| e.0).collect();
    out.sort_by(|x, y| y.cmp(x));
    Ok(out
        .into_iter()
        .map(|e| DiffPoint {
            index: e.index,
            row: e.index / ne0,
            col: e.index % ne0,
            a: e.a,
            b: e.b,
        })
        .collect())
}

/// The two tensors' types, if they have the same shape and both can be read as f32.
pub(super) fn comparable(
    a: &DiffTensor<'_>,
    b: &DiffTensor<'_>,
) -> Result<(hotpatch_quant::GgmlType, hotpatch_quant::GgmlType), DiffError> {
    let refuse = |why: String| DiffError::NotComparable {
        name: a.name.to_string(),
        why,
    };
    if a.dims != b.dims {
        return Err(refuse(format!(
            "shapes differ: {:?} in model A, {:?} in model B",
            a.dims, b.dims
        )));
    }
    let ta = checked_type(a).map_err(|w| refuse(format!("model A: {w}")))?;
    let tb = checked_type(b).map_err(|w| refuse(format!("model B: {w}")))?;
    Ok((ta, tb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_tensor<'a>(name: &'a str, dims: &'a [u64], data: &'a [u8]) -> DiffTensor<'a> {
        DiffTensor {
            name,
            type_id: 0,
            dims,
            data,
        }
    }

    fn bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn ranks_by_abs_difference_then_index_and_skips_equal_pairs() {
        let a = [0.0f32, 1.0, 2.0, 3.0, f32::NAN, 5.0, -0.0, 7.0];
        let b = [0.5f32, 1.0, 0.0, 3.5, f32::NAN, 5.0, 0.0, f32::INFINITY];
        let dims = [4u64, 2];
        let (da, db) = (bytes(&a), bytes(&b));
        let (ta, tb) = (f32_tensor("t", &dims, &da), f32_tensor("t", &dims, &db));
        let top = top_differences(&ta, &tb, 10, None).unwrap();
        let idx: Vec<u64> = top.iter().map(|p| p.index).collect();
        // 7: Inf; 2: |2-0| = 2; 0 and 3: 0.5 each, index 0 first. 1, 5 equal; 4 NaN==NaN;
        // 6: -0 == +0.
        assert_eq!(idx, vec![7, 2, 0, 3]);
        assert_eq!((top[1].row, top[1].col), (0, 2));
        assert_eq!((top[0].row, top[0].col), (1, 3));
        assert_eq!(top[1].delta(), 2.0);
        let two = top_differences(&ta, &tb, 3, None).unwrap();
        assert_eq!(
            two.iter().map(|p| p.index).collect::<Vec<_>>(),
            vec![7, 2, 0],
            "the tie at 0.5 goes to the lower index"
        );
    }

    #[test]
    fn refuses_bad_counts_and_shapes() {
        let d = bytes(&[1.0, 2.0]);
        let (d1, d2) = ([2u64], [1u64, 2]);
        let (a, b) = (f32_tensor("t", &d1, &d), f32_tensor("t", &d2, &d));
        assert!(matches!(
            top_differences(&a, &a, 0, None),
            Err(DiffError::BadCount { .. })
        ));
        assert!(matches!(
            top_differences(&a, &b, 5, None),
            Err(DiffError::NotComparable { .. })
        ));
    }
}
