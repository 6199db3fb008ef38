//! A set of half-open byte ranges, kept merged and sorted (dirty tracking, coalescing).

use std::collections::BTreeMap;

/// Sorted, non-overlapping, non-adjacent half-open ranges `[start, end)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `[start, end)`, merging with overlapping or adjacent ranges.
    pub fn insert(&mut self, mut start: u64, mut end: u64) {
        if start >= end {
            return;
        }
        // A range starting at or before `start` that reaches it.
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.map.remove(&s);
            }
        }
        // Ranges starting inside [start, end].
        let inside: Vec<(u64, u64)> = self.map.range(start..=end).map(|(s, e)| (*s, *e)).collect();
        for (s, e) in inside {
            end = end.max(e);
            self.map.remove(&s);
        }
        self.map.insert(start, end);
    }

    /// The ranges in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.map.iter().map(|(s, e)| (*s, *e))
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Total bytes covered.
    pub fn total(&self) -> u64 {
        self.map.iter().map(|(s, e)| e - s).sum()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// The first range intersecting `[start, end)`, if any.
    pub fn first_overlap(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e > start {
                return Some((s, e));
            }
        }
        self.map.range(start..end).next().map(|(s, e)| (*s, *e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges() {
        let mut r = RangeSet::new();
        r.insert(10, 20);
        r.insert(30, 40);
        r.insert(20, 30);
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![(10, 40)],
            "adjacent ranges merge"
        );
        r.insert(5, 12);
        r.insert(50, 60);
        r.insert(0, 1);
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![(0, 1), (5, 40), (50, 60)]
        );
        assert_eq!(r.first_overlap(39, 51), Some((5, 40)));
        assert_eq!(r.first_overlap(40, 50), None, "gap between ranges is free");
        assert_eq!(r.total(), 1 + 35 + 10);
    }
}
