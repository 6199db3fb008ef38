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

/// Parses literal hex bytes (`"DE AD be ef"`, `"deadbeef"`, commas allowed) for writes,
/// fills, keys and masks. Wildcards are refused; errors name the character position.
pub fn parse_hex_bytes(text: &str) -> Result<Vec<u8>> {
    if let Some((position, _)) = text.char_indices().find(|(_, c)| *c == '?') {
        return Err(EngineError::BadPattern {
            position,
            why: "wildcards ('?') are only allowed in search patterns".into(),
        });
    }
    Ok(Pattern::parse_hex(text)?
        .items()
        .iter()
        .map(|b| b.value)
        .collect())
}

/// One byte of a [`Pattern`]: a byte `b` matches when `b & mask == value`.
///
/// `mask` `FF` is a literal byte, `00` a wildcard (`??`), `F0` / `0F` a half-wildcard whose low
/// / high nibble is free (`3?`, `?3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternByte {
    /// The required bits (only those selected by `mask`; `value & !mask` is always 0).
    pub value: u8,
    /// Which bits must match.
    pub mask: u8,
}

impl PatternByte {
    /// A literal byte.
    pub const fn literal(b: u8) -> PatternByte {
        PatternByte {
            value: b,
            mask: 0xff,
        }
    }

    /// Any byte.
    pub const ANY: PatternByte = PatternByte { value: 0, mask: 0 };

    /// Whether byte `b` matches.
    #[inline]
    pub fn matches(self, b: u8) -> bool {
        b & self.mask == self.value
    }

    /// True for a fully literal byte.
    pub fn is_literal(self) -> bool {
        self.mask == 0xff
    }
}

/// A byte pattern with wildcards, e.g. parsed from `"DE AD ?? EF"` or `"4f 3? ?? 00"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    items: Vec<PatternByte>,
    /// Start and length of the longest literal run (the part searched with memmem).
    anchor: (usize, usize),
}

impl Pattern {
    /// Builds a pattern from items (`None` = any byte). An empty pattern is refused.
    pub fn new(items: Vec<Option<u8>>) -> Result<Pattern> {
        Pattern::masked(
            items
                .into_iter()
                .map(|b| b.map_or(PatternByte::ANY, PatternByte::literal))
                .collect(),
        )
    }

    /// Builds a pattern from masked bytes (half-wildcards included). An empty pattern is
    /// refused; bits of `value` outside `mask` are cleared.
    pub fn masked(items: Vec<PatternByte>) -> Result<Pattern> {
        if items.is_empty() {
            return Err(EngineError::BadPattern {
                position: 0,
                why: "empty pattern".into(),
            });
        }
        let items: Vec<PatternByte> = items
            .into_iter()
            .map(|p| PatternByte {
                value: p.value & p.mask,
                mask: p.mask,
            })
            .collect();
        let mut best = (0usize, 0usize);
        let mut run_start = 0usize;
        for i in 0..=items.len() {
            let literal = items.get(i).is_some_and(|p| p.is_literal());
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

    /// Parses hex text: bytes of two hex digits, optionally separated by whitespace or commas.
    /// A `?` is a free nibble: `??` is any byte, `3?` any byte `0x30..=0x3F`, `?3` any byte
    /// whose low nibble is 3; a lone `?` (followed by a separator or the end) is any byte.
    /// Errors name the character position.
    pub fn parse_hex(text: &str) -> Result<Pattern> {
        let mut items = Vec::new();
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let nibble = |pos: usize, c: char| -> Result<Option<u8>> {
            if c == '?' {
                return Ok(None);
            }
            c.to_digit(16)
                .map(|d| Some(d as u8))
                .ok_or_else(|| EngineError::BadPattern {
                    position: pos,
                    why: format!("{c:?} is not a hex digit or '?'"),
                })
        };
        let mut i = 0;
        while i < chars.len() {
            let (pos, c) = chars[i];
            if c.is_whitespace() || c == ',' {
                i += 1;
                continue;
            }
            let hi = nibble(pos, c)?;
            let next = chars
                .get(i + 1)
                .filter(|(_, c)| !(c.is_whitespace() || *c == ','));
            let lo = match next {
                Some(&(pos2, c2)) => nibble(pos2, c2)?,
                None if hi.is_none() => {
                    // A lone '?': any byte.
                    items.push(PatternByte::ANY);
                    i += 1;
                    continue;
                }
                None => {
                    return Err(EngineError::BadPattern {
                        position: pos,
                        why: "a byte needs two hex digits (or '?')".into(),
                    })
                }
            };
            let (hv, hm) = hi.map_or((0, 0), |h| (h << 4, 0xf0));
            let (lv, lm) = lo.map_or((0, 0), |l| (l, 0x0f));
            items.push(PatternByte {
                value: hv | lv,
                mask: hm | lm,
            });
            i += 2;
        }
        Pattern::masked(items)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Never true (empty patterns are refused); present for API completeness.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items, one per byte.
    pub fn items(&self) -> &[PatternByte] {
        &self.items
    }

    /// Whether the pattern matches `hay` at offset `at` (false when it does not fit).
    #[inline]
    pub fn matches_at(&self, hay: &[u8], at: usize) -> bool {
        match hay.get(at..at + self.items.len()) {
            Some(w) => w.iter().zip(&self.items).all(|(b, p)| p.matches(*b)),
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
            // No literal byte: check every position (all of them for pure wildcards).
            for at in 0..=hay.len() - n {
                if self.matches_at(hay, at) && !hit(at) {
                    return;
                }
            }
            return;
        }
        let needle: Vec<u8> = self.items[astart..astart + alen]
            .iter()
            .map(|b| b.value)
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

    /// Every match offset in `hay` (overlapping matches included), in order, searched by
    /// `threads` threads over consecutive parts of `hay` (each part reads `len − 1` bytes into
    /// the next, so a match across a boundary is found once, by the part it starts in). At most
    /// `limit` of them (error when more exist); `prepare(offset, len)` is called by the thread
    /// that is about to search a window of `hay` (e.g. to fault its pages in at once).
    pub fn find_all_threads(
        &self,
        hay: &[u8],
        limit: usize,
        threads: usize,
        prepare: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Vec<u64>> {
        /// Bytes searched per step of one thread.
        const WINDOW: usize = 16 << 20;
        self.find_all_windows(hay, limit, threads, WINDOW, prepare)
    }

    /// [`Pattern::find_all_threads`] with windows of `window` bytes (at least 1 thread per
    /// window).
    fn find_all_windows(
        &self,
        hay: &[u8],
        limit: usize,
        threads: usize,
        window: usize,
        prepare: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Vec<u64>> {
        let window = window.max(1);
        let n = self.items.len();
        let threads = threads.clamp(1, hay.len().div_ceil(window).max(1));
        let part = hay.len().div_ceil(threads);
        let search_part = |k: usize| -> Vec<u64> {
            let (from, to) = (k * part, ((k + 1) * part).min(hay.len()));
            let mut out = Vec::new();
            let mut at = from;
            while at < to {
                let end = (at + window).min(to);
                // Matches that start in at..end; the window reaches n - 1 bytes beyond.
                let reach = (end + n - 1).min(hay.len());
                prepare(at, reach - at);
                let mut full = false;
                self.for_each_match(&hay[at..reach], |i| {
                    if at + i >= end {
                        return false;
                    }
                    out.push((at + i) as u64);
                    full = out.len() > limit;
                    !full
                });
                if full {
                    break;
                }
                at = end;
            }
            out
        };
        let parts: Vec<Vec<u64>> = if threads == 1 {
            vec![search_part(0)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (1..threads)
                    .map(|k| s.spawn(move || search_part(k)))
                    .collect();
                let mut all = vec![search_part(0)];
                all.extend(
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
                );
                all
            })
        };
        let mut out = Vec::new();
        for p in parts {
            out.extend(p);
            if out.len() > limit {
                return Err(EngineError::LimitReached {
                    what: "matches",
                    limit,
                });
            }
        }
        Ok(out)
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

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses hex digits (two per byte, whitespace not allowed).
pub fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!(
            "hex string has an odd number of digits ({})",
            s.len()
        ));
    }
    let digit = |c: u8, at: usize| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(format!(
            "'{}' at position {at} is not a hex digit",
            c as char
        )),
    };
    s.as_bytes()
        .chunks_exact(2)
        .enumerate()
        .map(|(i, p)| Ok(digit(p[0], 2 * i)? << 4 | digit(p[1], 2 * i + 1)?))
        .collect()
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
    fn threaded_search_finds_every_match_across_parts_and_windows_once() {
        // Pseudo-random bytes with runs of the pattern planted across every boundary.
        let mut x = 0x9e37_79b9_u32;
        let mut hay: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        for at in [0, 97, 98, 499, 500, 501, 2_499, 4_998, 5_000, 7_777, 9_997] {
            hay[at..at + 3].copy_from_slice(&[0xab, 0xab, 0xab]);
        }
        for text in ["ab ab", "ab ?? ab", "a? ab", "ab"] {
            let p = Pattern::parse_hex(text).unwrap();
            let want = p.find_all(&hay, usize::MAX).unwrap();
            for threads in 1..=4 {
                for window in [1, 7, 100, 500, 20_000] {
                    let got = p
                        .find_all_windows(&hay, usize::MAX, threads, window, &|_, _| {})
                        .unwrap();
                    assert_eq!(
                        got, want,
                        "'{text}', {threads} threads, windows of {window}: the same matches as one pass"
                    );
                }
            }
            if want.len() > 1 {
                let err = p.find_all_windows(&hay, want.len() - 1, 2, 100, &|_, _| {});
                assert!(
                    matches!(err, Err(EngineError::LimitReached { .. })),
                    "more than the limit is an error, as find_all says"
                );
                let ok = p.find_all_windows(&hay, want.len(), 2, 100, &|_, _| {});
                assert_eq!(ok.unwrap(), want, "exactly the limit is fine");
            }
        }
    }

    #[test]
    fn pattern_half_wildcards() {
        let p = Pattern::parse_hex("4f 3? ?? 00").unwrap();
        assert_eq!(
            p.items(),
            &[
                PatternByte::literal(0x4f),
                PatternByte {
                    value: 0x30,
                    mask: 0xf0
                },
                PatternByte::ANY,
                PatternByte::literal(0),
            ],
            "3? fixes the high nibble only"
        );
        let hay = [
            0x4f, 0x31, 0xaa, 0x00, 0x4f, 0x41, 0x00, 0x00, 0x4f, 0x3f, 0x4f, 0x00,
        ];
        // 0: 4f 31 aa 00 matches; 4: 4f 41 (high nibble 4, not 3) no; 8: 4f 3f 4f 00 matches.
        assert_eq!(p.find_all(&hay, 10).unwrap(), vec![0, 8]);
        let low = Pattern::parse_hex("?f").unwrap();
        assert_eq!(
            low.find_all(&hay, 10).unwrap(),
            vec![0, 4, 8, 9, 10],
            "?f: any byte ending in nibble f (no literal anchor, every position checked)"
        );
        let lone = Pattern::parse_hex("4f ? 00").unwrap();
        assert_eq!(
            lone.items()[1],
            PatternByte::ANY,
            "a lone ? is a whole byte"
        );
        assert!(matches!(
            Pattern::parse_hex("4f 3"),
            Err(EngineError::BadPattern { position: 3, .. })
        ));
        assert!(matches!(
            Pattern::parse_hex("4g"),
            Err(EngineError::BadPattern { position: 1, .. })
        ));
    }

    #[test]
    fn hex_bytes_refuse_wildcards() {
        assert_eq!(
            parse_hex_bytes("de AD,be ef").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(parse_hex_bytes("0001ff").unwrap(), vec![0, 1, 0xff]);
        assert!(matches!(
            parse_hex_bytes("00 ?? 01"),
            Err(EngineError::BadPattern { position: 3, .. })
        ));
        assert!(parse_hex_bytes("").is_err(), "no bytes is an error");
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
