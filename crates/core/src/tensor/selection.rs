//! Which elements of a tensor an operation touches.
//!
//! A [`Selection`] is what a user or a configuration says ("rows 3..5", "attention head 2");
//! [`Selection::resolve`] turns it, for one concrete tensor, into sorted, disjoint flat element
//! ranges in ggml order (element `i` of a tensor with dims `[ne0, ne1, ..]` sits at row
//! `i / ne0`, column `i % ne0`). Resolution is checked: every index must be inside the tensor.

// Resolved selections are lists of ranges; a one-range list is a real value here.
#![allow(clippy::single_range_in_vec_init)]

use std::ops::Range;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A set of elements of one tensor, in the terms a user thinks in.
///
/// A *row* is a contiguous run of `ne[0]` elements (row `r` = elements `r·ne0 .. (r+1)·ne0`);
/// a *column* `c` is element `c` of every row. Ranges are half-open (`end` excluded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Selection {
    /// Every element.
    #[default]
    All,
    /// Flat element indices `start..end` (ggml order).
    Range {
        /// First element.
        start: u64,
        /// One past the last element.
        end: u64,
    },
    /// Rows `start..end` (each `ne[0]` elements).
    Rows {
        /// First row.
        start: u64,
        /// One past the last row.
        end: u64,
    },
    /// Columns `start..end` of every row.
    Columns {
        /// First column.
        start: u64,
        /// One past the last column.
        end: u64,
    },
    /// These flat element indices (any order; duplicates are merged).
    Elements {
        /// Flat indices in ggml order.
        indices: Vec<u64>,
    },
    /// The weights of one attention head, from the model's head count: the head's output rows
    /// of `attn_q`/`attn_k`/`attn_v` (K and V use the KV head count), its input columns of
    /// `attn_output`. Other tensors refuse this selection.
    Head {
        /// Head number, from 0.
        head: u32,
    },
}

/// The attention geometry of a model, read from its metadata (`<arch>.attention.head_count`,
/// `head_count_kv`, `embedding_length`, optional `key_length`/`value_length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadGeometry {
    /// Query heads.
    pub n_head: u64,
    /// Key/value heads (grouped-query attention), = `n_head` when absent.
    pub n_head_kv: u64,
    /// Elements per key head (`key_length`, else `embedding_length / n_head`).
    pub head_dim_k: u64,
    /// Elements per value head (`value_length`, else `head_dim_k`).
    pub head_dim_v: u64,
}

/// Why a selection does not fit a tensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// An index or range end is past the tensor's extent.
    #[error("{what} {value} is out of range for tensor '{tensor}' (limit {limit})")]
    OutOfRange {
        /// The tensor.
        tensor: String,
        /// `"element"`, `"row"`, `"column"`, `"head"`.
        what: &'static str,
        /// The offending value.
        value: u64,
        /// The exclusive limit.
        limit: u64,
    },
    /// `start > end`.
    #[error("range {start}..{end} of tensor '{tensor}' is reversed")]
    Reversed {
        /// The tensor.
        tensor: String,
        /// Start.
        start: u64,
        /// End.
        end: u64,
    },
    /// A head selection on a tensor that is not an attention projection, or a model without
    /// head metadata.
    #[error("cannot select a head of tensor '{tensor}': {reason}")]
    NoHeads {
        /// The tensor.
        tensor: String,
        /// Why.
        reason: String,
    },
}

/// Which way a tensor's heads are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadAxis {
    Rows,
    Columns,
}

impl Selection {
    /// Resolves the selection for a tensor of `dims` (ggml order) named `name` into sorted,
    /// disjoint, non-empty flat ranges.
    pub fn resolve(
        &self,
        name: &str,
        dims: &[u64],
        heads: Option<&HeadGeometry>,
    ) -> Result<Vec<Range<u64>>, SelectionError> {
        let n: u64 = dims.iter().product();
        let ne0 = dims.first().copied().unwrap_or(1);
        let rows = n.checked_div(ne0).unwrap_or(0);
        let oor = |what, value, limit| SelectionError::OutOfRange {
            tensor: name.to_string(),
            what,
            value,
            limit,
        };
        let check = |start: u64, end: u64, limit: u64, what| {
            if start > end {
                Err(SelectionError::Reversed {
                    tensor: name.to_string(),
                    start,
                    end,
                })
            } else if end > limit {
                Err(oor(what, end, limit))
            } else {
                Ok(())
            }
        };
        let mut out = match self {
            Selection::All => vec![0..n],
            Selection::Range { start, end } => {
                check(*start, *end, n, "element")?;
                vec![*start..*end]
            }
            Selection::Rows { start, end } => {
                check(*start, *end, rows, "row")?;
                vec![start * ne0..end * ne0]
            }
            Selection::Columns { start, end } => {
                check(*start, *end, ne0, "column")?;
                columns(rows, ne0, *start, *end)
            }
            Selection::Elements { indices } => {
                let mut v = indices.clone();
                v.sort_unstable();
                v.dedup();
                if let Some(&last) = v.last() {
                    if last >= n {
                        return Err(oor("element", last, n));
                    }
                }
                let mut ranges: Vec<Range<u64>> = Vec::new();
                for i in v {
                    match ranges.last_mut() {
                        Some(r) if r.end == i => r.end += 1,
                        _ => ranges.push(i..i + 1),
                    }
                }
                ranges
            }
            Selection::Head { head } => {
                let (axis, n_heads, head_dim) = head_layout(name, heads)?;
                let h = u64::from(*head);
                if h >= n_heads {
                    return Err(oor("head", h, n_heads));
                }
                let (start, end) = (h * head_dim, (h + 1) * head_dim);
                match axis {
                    HeadAxis::Rows => {
                        check(start, end, rows, "row")?;
                        vec![start * ne0..end * ne0]
                    }
                    HeadAxis::Columns => {
                        check(start, end, ne0, "column")?;
                        columns(rows, ne0, start, end)
                    }
                }
            }
        };
        out.retain(|r| r.start < r.end);
        Ok(out)
    }
}

fn columns(rows: u64, ne0: u64, start: u64, end: u64) -> Vec<Range<u64>> {
    if start == 0 && end == ne0 {
        return vec![0..rows * ne0];
    }
    (0..rows).map(|r| r * ne0 + start..r * ne0 + end).collect()
}

fn head_layout(
    name: &str,
    heads: Option<&HeadGeometry>,
) -> Result<(HeadAxis, u64, u64), SelectionError> {
    let no = |reason: &str| SelectionError::NoHeads {
        tensor: name.to_string(),
        reason: reason.to_string(),
    };
    let g = heads.ok_or_else(|| no("the model has no attention head count in its metadata"))?;
    let role = name.rsplit('.').nth(1).unwrap_or("");
    match role {
        "attn_q" => Ok((HeadAxis::Rows, g.n_head, g.head_dim_k)),
        "attn_k" => Ok((HeadAxis::Rows, g.n_head_kv, g.head_dim_k)),
        "attn_v" => Ok((HeadAxis::Rows, g.n_head_kv, g.head_dim_v)),
        "attn_output" => Ok((HeadAxis::Columns, g.n_head, g.head_dim_v)),
        _ => Err(no(
            "only attn_q, attn_k, attn_v and attn_output weights have heads",
        )),
    }
}

/// Number of elements in resolved ranges.
pub fn count(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters (including none)
/// and every other character matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(
            "blk.*.ffn_down.weight",
            "blk.12.ffn_down.weight"
        ));
        assert!(!glob_match("blk.*.ffn_down.weight", "blk.12.ffn_up.weight"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYbc"));
        assert!(!glob_match("a*b", "a"));
    }

    const G: HeadGeometry = HeadGeometry {
        n_head: 4,
        n_head_kv: 2,
        head_dim_k: 64,
        head_dim_v: 64,
    };

    #[test]
    fn heads_select_rows_of_q_and_columns_of_output() {
        let q = Selection::Head { head: 1 }
            .resolve("blk.0.attn_q.weight", &[256, 256], Some(&G))
            .unwrap();
        assert_eq!(
            q,
            vec![64 * 256..128 * 256],
            "head 1 of Q = output rows 64..128"
        );
        let o = Selection::Head { head: 3 }
            .resolve("blk.0.attn_output.weight", &[256, 256], Some(&G))
            .unwrap();
        assert_eq!(o.len(), 256, "one column range per row");
        assert_eq!(
            o[1],
            256 + 192..256 + 256,
            "head 3 of the output projection = input columns 192..256"
        );
        let err = Selection::Head { head: 2 }
            .resolve("blk.0.attn_k.weight", &[256, 128], Some(&G))
            .unwrap_err();
        assert!(
            matches!(
                err,
                SelectionError::OutOfRange {
                    what: "head",
                    value: 2,
                    limit: 2,
                    ..
                }
            ),
            "K has 2 KV heads: {err}"
        );
    }

    #[test]
    fn elements_are_sorted_merged_and_checked() {
        let r = Selection::Elements {
            indices: vec![5, 3, 4, 9, 4],
        }
        .resolve("t", &[10], None)
        .unwrap();
        assert_eq!(r, vec![3..6, 9..10]);
        let e = Selection::Elements { indices: vec![10] }
            .resolve("t", &[10], None)
            .unwrap_err();
        assert!(matches!(
            e,
            SelectionError::OutOfRange {
                value: 10,
                limit: 10,
                ..
            }
        ));
        let e = Selection::Rows { start: 3, end: 1 }
            .resolve("t", &[4, 4], None)
            .unwrap_err();
        assert!(matches!(e, SelectionError::Reversed { .. }));
    }
}
