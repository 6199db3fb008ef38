//! Pure byte operations shared by every layer: the new bytes of a fill, XOR, bit operation,
//! rotation or reversal; wildcard pattern search; range comparison.
//!
//! These functions only compute; the engine applies their results through the journal. They are
//! public so that other crates (and tests) can use exactly the same semantics on plain slices.
//!
//! Two meanings of *rotate* and of *reverse* are implemented, both useful:
//! - [`BitOp::RotateLeft`]/[`BitOp::RotateRight`] rotate the bits of each byte;
//!   [`rotate_range`] rotates a range by `n` bytes (like `<[u8]>::rotate_left`).
//! - [`reverse_range`] reverses a whole range; [`reverse_elements`] reverses the byte order of
//!   every element of width `w` (endianness swap of u16/u32/u64 arrays).

use memchr::memmem;

use crate::error::{EngineError, Result};

/// A bitwise operation applied to every byte of a range, with a repeating mask.
///
/// The mask repeats over the range (byte `i` uses `mask[i % mask.len()]`).
/// - `And`, `Or`, `Xor`: `b & m`, `b | m`, `b ^ m`.
/// - `Not`: inverts the bits selected by the mask: `b ^ m` (mask `FF` inverts everything).
/// - `Shl(k)`, `Shr(k)`: shifts each byte by `k` bits (0..=7); only the bits selected by the
///   mask take the shifted value: `(b & !m) | ((b << k) & m)`.
/// - `RotateLeft(k)`, `RotateRight(k)`: rotates the bits of each byte by `k`; only the bits
///   selected by the mask take the rotated value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    /// `b & m`.
    And,
    /// `b | m`.
    Or,
    /// `b ^ m`.
    Xor,
    /// Invert the masked bits.
    Not,
    /// Shift left by k bits, masked.
    Shl(u32),
    /// Shift right by k bits, masked.
    Shr(u32),
    /// Rotate the bits of each byte left by k, masked.
    RotateLeft(u32),
    /// Rotate the bits of each byte right by k, masked.
    RotateRight(u32),
}

impl BitOp {
    /// The new value of byte `b` under mask byte `m`.
    #[inline]
    pub fn apply(self, b: u8, m: u8) -> u8 {
        let masked = |v: u8| (b & !m) | (v & m);
        match self {
            BitOp::And => b & m,
            BitOp::Or => b | m,
            BitOp::Xor | BitOp::Not => b ^ m,
            BitOp::Shl(k) => masked(b.checked_shl(k).unwrap_or(0)),
            BitOp::Shr(k) => masked(b.checked_shr(k).unwrap_or(0)),
            BitOp::RotateLeft(k) => masked(b.rotate_left(k % 8)),
            BitOp::RotateRight(k) => masked(b.rotate_right(k % 8)),
        }
    }

    /// A short name for events ("and", "shl3", ...).
    pub fn name(self) -> String {
        match self {
            BitOp::And => "and".into(),
            BitOp::Or => "or".into(),
            BitOp::Xor => "xor".into(),
            BitOp::Not => "not".into(),
            BitOp::Shl(k) => format!("shl{k}"),
            BitOp::Shr(k) => format!("shr{k}"),
            BitOp::RotateLeft(k) => format!("rotl{k}"),
            BitOp::RotateRight(k) => format!("rotr{k}"),
        }
    }

    pub(crate) fn validate(self) -> Result<()> {
        match self {
            BitOp::Shl(k) | BitOp::Shr(k) | BitOp::RotateLeft(k) | BitOp::RotateRight(k)
                if k > 7 =>
            {
                Err(EngineError::invalid(
                    "bit count",
                    format!("{k} is not in 0..=7"),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Applies `op` with the repeating `mask` to `data` in place. An empty mask is refused.
pub fn bit_op(data: &mut [u8], op: BitOp, mask: &[u8]) -> Result<()> {
    op.validate()?;
    if mask.is_empty() {
        return Err(EngineError::invalid("mask", "empty"));
    }
    if mask.len() == 1 {
        let m = mask[0];
        data.iter_mut().for_each(|b| *b = op.apply(*b, m));
    } else {
        for (b, m) in data.iter_mut().zip(mask.iter().cycle()) {
            *b = op.apply(*b, *m);
        }
    }
    Ok(())
}

/// XORs `data` with `key` repeated (byte `i` ^= `key[i % key.len()]`). An empty key is refused.
pub fn xor_key(data: &mut [u8], key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(EngineError::invalid("key", "empty"));
    }
    bit_op(data, BitOp::Xor, key)
}

/// Fills `data` with `pattern` repeated. An empty pattern is refused.
pub fn fill(data: &mut [u8], pattern: &[u8]) -> Result<()> {
    if pattern.is_empty() {
        return Err(EngineError::invalid("pattern", "empty"));
    }
    if pattern.len() == 1 {
        data.fill(pattern[0]);
    } else {
        for chunk in data.chunks_mut(pattern.len()) {
            chunk.copy_from_slice(&pattern[..chunk.len()]);
        }
    }
    Ok(())
}

/// Rotates the range by `n` bytes: positive `n` moves bytes towards the start
/// (`rotate_left`), negative towards the end. `n` is taken modulo the length.
pub fn rotate_range(data: &mut [u8], n: i64) {
    if data.is_empty() {
        return;
    }
    let len = data.len() as i64;
    let k = n.rem_euclid(len) as usize;
    data.rotate_left(k);
}

/// Reverses the whole range.
pub fn reverse_range(data: &mut [u8]) {
    data.reverse();
}

/// Reverses the byte order of every element of `width` bytes. The length must be a multiple of
/// `width` and `width` must not be 0.
pub fn reverse_elements(data: &mut [u8], width: usize) -> Result<()> {
    if width == 0 {
        return Err(EngineError::invalid("width", "0"));
    }
    if !data.len().is_multiple_of(width) {
        return Err(EngineError::invalid(
            "width",
            format!(
                "range length {} is not a multiple of element width {width}",
                data.len()
            ),
        ));
    }
    data.chunks_exact_mut(width).for_each(<[u8]>::reverse);
    Ok(())
}

/// The result of comparing two ranges of equal length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// Offset (relative to the start of the ranges) of the first differing byte, if any.
    pub first_difference: Option<u64>,
    /// How many bytes differ.
    pub differing: u64,
    /// How many bytes were compared.
    pub len: u64,
}

impl Comparison {
    /// True when the ranges are identical.
    pub fn equal(&self) -> bool {
        self.differing == 0
    }
}

/// Counts the bytes of `x` that are not zero.
#[inline]
fn nonzero_bytes(x: u64) -> u32 {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // High bit of each byte set iff the byte is nonzero.
    let t = ((x & LO7).wrapping_add(LO7)) | x;
    (t & !LO7).count_ones()
}

/// Compares two equal-length slices: first differing offset and number of differing bytes.
/// Equal 4 KiB chunks are skipped with a `memcmp`-class slice comparison.
pub fn compare(a: &[u8], b: &[u8]) -> Comparison {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut first = None;
    let mut differing = 0u64;
    const CHUNK: usize = 4096;
    for (ci, (ca, cb)) in a.chunks(CHUNK).zip(b.chunks(CHUNK)).enumerate() {
        if ca == cb {
            continue;
        }
        let base = ci * CHUNK;
        let mut wa = ca.chunks_exact(8);
        let mut wb = cb.chunks_exact(8);
        let mut pos = 0usize;
        for (x, y) in (&mut wa).zip(&mut wb) {
            let xa = u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
            let xb = u64::from_le_bytes(y.try_into().unwrap_or([0; 8]));
            let d = xa ^ xb;
            if d != 0 {
                if first.is_none() {
                    first = Some((base + pos + (d.trailing_zeros() / 8) as usize) as u64);
                }
                differing += u64::from(nonzero_bytes(d));
            }
            pos += 8;
        }
        for (x, y) in wa.remainder().iter().zip(wb.remainder()) {
            if x != y {
                if first.is_none() {
                    first = Some((base + pos) as u64);
                }
                differing += 1;
            }
            pos += 1;
        }
    }
    Comparison {
        first_difference: first,
        differing,
        len: len as u64,
    }
}

/// A byte pattern with wildcards, e.g. parsed from `"DE AD ?? EF"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    items: Vec<Option<u8>>,
    /// Start and length of the longest literal run (the part searched with memmem).
    anchor: (usize, usize),
}

impl Pattern {
    /// Builds a pattern from items (`None` = any byte). An empty pattern is refused.
    pub fn new(items: Vec<Option<u8>>) -> Result<Pattern> {
        if items.is_empty() {
            return Err(EngineError::BadPattern {
                position: 0,
                why: "empty pattern".into(),
            });
        }
        let mut best = (0usize, 0usize);
        let mut run_start = 0usize;
        for i in 0..=items.len() {
            let literal = items.get(i).is_some_and(Option::is_some);
            if !literal {
                let run = i - run_start;
                if run > best.1 {
                    best = (run_start, run);
                }
                run_start = i + 1;
            }
        }
        Ok(Pattern {
            items,
            anchor: best,
        })
    }

    /// A pattern of literal bytes only.
    pub fn literal(bytes: &[u8]) -> Result<Pattern> {
        Pattern::new(bytes.iter().copied().map(Some).collect())
    }

    /// Parses hex text: byte pairs, optionally separated by whitespace; `??` (or `?`) is a
    /// wildcard byte. Errors name the character position.
    pub fn parse_hex(text: &str) -> Result<Pattern> {
        let mut items = Vec::new();
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut i = 0;
        while i < chars.len() {
            let (pos, c) = chars[i];
            if c.is_whitespace() || c == ',' {
                i += 1;
                continue;
            }
            if c == '?' {
                items.push(None);
                i += if chars.get(i + 1).is_some_and(|(_, c)| *c == '?') {
                    2
                } else {
                    1
                };
                continue;
            }
            let hi = c.to_digit(16).ok_or_else(|| EngineError::BadPattern {
                position: pos,
                why: format!("{c:?} is not a hex digit or '?'"),
            })?;
            let (pos2, c2) = *chars.get(i + 1).ok_or_else(|| EngineError::BadPattern {
                position: pos,
                why: "odd number of hex digits".into(),
            })?;
            let lo = c2.to_digit(16).ok_or_else(|| EngineError::BadPattern {
                position: pos2,
                why: format!("{c2:?} is not a hex digit (bytes are two digits)"),
            })?;
            items.push(Some((hi * 16 + lo) as u8));
            i += 2;
        }
        Pattern::new(items)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Never true (empty patterns are refused); present for API completeness.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items (`None` = wildcard).
    pub fn items(&self) -> &[Option<u8>] {
        &self.items
    }

    #[inline]
    fn matches_at(&self, hay: &[u8], at: usize) -> bool {
        match hay.get(at..at + self.items.len()) {
            Some(w) => w
                .iter()
                .zip(&self.items)
                .all(|(b, p)| p.is_none_or(|p| p == *b)),
            None => false,
        }
    }

    /// Calls `hit(offset)` for every match in `hay` (overlapping matches included), in order,
    /// until `hit` returns false. The longest literal run is located with `memchr::memmem`,
    /// then the rest of the pattern is verified.
    pub fn for_each_match(&self, hay: &[u8], mut hit: impl FnMut(usize) -> bool) {
        let n = self.items.len();
        if hay.len() < n {
            return;
        }
        let (astart, alen) = self.anchor;
        if alen == 0 {
            // All wildcards: every position matches.
            for at in 0..=hay.len() - n {
                if !hit(at) {
                    return;
                }
            }
            return;
        }
        let needle: Vec<u8> = self.items[astart..astart + alen]
            .iter()
            .map(|b| b.unwrap_or(0))
            .collect();
        let finder = memmem::Finder::new(&needle);
        // Anchor positions that can start a full match: astart..=hay.len()-n+astart.
        let last_anchor = hay.len() - n + astart;
        let mut from = astart;
        while from <= last_anchor {
            let window = &hay[from..(last_anchor + alen).min(hay.len())];
            let Some(rel) = finder.find(window) else {
                return;
            };
            let apos = from + rel;
            let at = apos - astart;
            if (alen == n || self.matches_at(hay, at)) && !hit(at) {
                return;
            }
            from = apos + 1;
        }
    }

    /// Every match offset in `hay`, at most `limit` of them (error when more exist).
    pub fn find_all(&self, hay: &[u8], limit: usize) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let mut over = false;
        self.for_each_match(hay, |at| {
            if out.len() == limit {
                over = true;
                return false;
            }
            out.push(at as u64);
            true
        });
        if over {
            return Err(EngineError::LimitReached {
                what: "matches",
                limit,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_bytes_counts() {
        assert_eq!(nonzero_bytes(0), 0);
        assert_eq!(nonzero_bytes(u64::MAX), 8);
        assert_eq!(nonzero_bytes(0x0100_0000_0080_0001), 3);
    }

    #[test]
    fn pattern_overlapping_and_wildcards() {
        let p = Pattern::parse_hex("aa ?? aa").unwrap();
        let hay = [0xaa, 1, 0xaa, 2, 0xaa, 0xaa, 0xaa];
        assert_eq!(
            p.find_all(&hay, 100).unwrap(),
            vec![0, 2, 4],
            "overlapping matches are all reported"
        );
        let q = Pattern::parse_hex("?? ??").unwrap();
        assert_eq!(
            q.find_all(&hay, 100).unwrap().len(),
            6,
            "all-wildcard pattern matches every position"
        );
        assert!(
            Pattern::parse_hex("a").is_err(),
            "odd digit count is an error"
        );
        assert!(matches!(
            Pattern::parse_hex("zz"),
            Err(EngineError::BadPattern { position: 0, .. })
        ));
    }

    #[test]
    fn compare_counts() {
        let a = vec![0u8; 10_000];
        let mut b = a.clone();
        b[5000] = 1;
        b[9999] = 2;
        b[5003] = 3;
        let c = compare(&a, &b);
        assert_eq!(c.first_difference, Some(5000));
        assert_eq!(c.differing, 3);
    }
}
