//! The response cache: answers keyed by the normalized request ([`crate::cache_key`]),
//! with a time-to-live and bounds on entries and bytes (least recently used evicted first).
//!
//! A streamed answer is stored as the list of chunks the client received, and replayed as a
//! stream of the same chunks. Time is passed in, so the structure is testable without clocks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Cache settings (the `server.cache` object of the configuration), defined with the rest of
/// the settings in `hotpatch-settings`.
pub use hotpatch_settings::CacheSettings;

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedResponse {
    /// HTTP status (always a success status).
    pub status: u16,
    /// The `content-type` header.
    pub content_type: String,
    /// The body as the client received it, chunk by chunk.
    pub chunks: Vec<Bytes>,
}

impl CachedResponse {
    /// Size of the body.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug)]
struct Entry {
    response: Arc<CachedResponse>,
    inserted: Instant,
    size: usize,
    tick: u64,
}

/// Counters of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Answers held.
    pub entries: usize,
    /// Bytes held (keys and bodies).
    pub bytes: usize,
    /// Lookups that found a fresh answer.
    pub hits: u64,
    /// Lookups that found nothing (or an expired answer).
    pub misses: u64,
    /// Answers dropped to respect the bounds.
    pub evictions: u64,
}

/// A bounded LRU cache with a TTL.
#[derive(Debug, Default)]
pub struct ResponseCache {
    settings: CacheSettings,
    map: HashMap<String, Entry>,
    lru: BTreeMap<u64, String>,
    tick: u64,
    stats: CacheStats,
}

impl ResponseCache {
    /// An empty cache with `settings`.
    pub fn new(settings: CacheSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Current settings.
    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    /// Change settings; entries beyond the new bounds are evicted, disabling clears.
    pub fn set_settings(&mut self, settings: CacheSettings) {
        self.settings = settings;
        if !self.settings.enabled {
            self.clear();
        }
        self.shrink(0);
    }

    /// Drop every entry.
    pub fn clear(&mut self) {
        self.map.clear();
        self.lru.clear();
        self.stats.entries = 0;
        self.stats.bytes = 0;
    }

    /// Counters.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.map.remove(key) {
            self.lru.remove(&e.tick);
            self.stats.bytes -= e.size;
            self.stats.entries -= 1;
        }
    }

    /// A fresh answer for `key`, if any (marks it most recently used).
    pub fn get(&mut self, key: &str, now: Instant) -> Option<Arc<CachedResponse>> {
        if !self.settings.enabled {
            return None;
        }
        let ttl = Duration::from_secs(self.settings.ttl_secs);
        let fresh = match self.map.get(key) {
            Some(e) => now.saturating_duration_since(e.inserted) < ttl,
            None => {
                self.stats.misses += 1;
                return None;
            }
        };
        if !fresh {
            self.remove(key);
            self.stats.misses += 1;
            return None;
        }
        self.tick += 1;
        let tick = self.tick;
        let e = self.map.get_mut(key)?;
        self.lru.remove(&e.tick);
        e.tick = tick;
        self.lru.insert(tick, key.to_owned());
        self.stats.hits += 1;
        Some(e.response.clone())
    }

    /// Evict least recently used entries until `extra` more bytes and one more entry fit.
    fn shrink(&mut self, extra: usize) {
        let need_entry = usize::from(extra > 0);
        while !self.map.is_empty()
            && (self.stats.entries + need_entry > self.settings.max_entries
                || self.stats.bytes + extra > self.settings.max_bytes)
        {
            let Some((_, key)) = self.lru.pop_first() else {
                break;
            };
            if let Some(e) = self.map.remove(&key) {
                self.stats.bytes -= e.size;
                self.stats.entries -= 1;
                self.stats.evictions += 1;
            }
        }
    }

    /// Store an answer; answers larger than the byte bound are not stored. Returns whether
    /// it was stored.
    pub fn insert(&mut self, key: String, response: CachedResponse, now: Instant) -> bool {
        if !self.settings.enabled || self.settings.max_entries == 0 {
            return false;
        }
        let size = key.len() + response.len();
        if size > self.settings.max_bytes {
            return false;
        }
        self.remove(&key);
        self.shrink(size);
        self.tick += 1;
        self.lru.insert(self.tick, key.clone());
        self.map.insert(
            key,
            Entry {
                response: Arc::new(response),
                inserted: now,
                size,
                tick: self.tick,
            },
        );
        self.stats.entries += 1;
        self.stats.bytes += size;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(n: usize) -> CachedResponse {
        CachedResponse {
            status: 200,
            content_type: "application/json".into(),
            chunks: vec![Bytes::from(vec![b'x'; n])],
        }
    }

    fn cache(max_entries: usize, max_bytes: usize) -> ResponseCache {
        ResponseCache::new(CacheSettings {
            enabled: true,
            ttl_secs: 10,
            max_entries,
            max_bytes,
        })
    }

    #[test]
    fn ttl_expires() {
        let mut c = cache(10, 1000);
        let t0 = Instant::now();
        assert!(c.insert("k".into(), resp(3), t0));
        assert_eq!(
            c.get("k", t0 + Duration::from_secs(9)).map(|r| r.len()),
            Some(3),
            "fresh before the TTL"
        );
        assert!(
            c.get("k", t0 + Duration::from_secs(10)).is_none(),
            "expired at the TTL"
        );
        assert_eq!(c.stats().entries, 0, "expired entry is dropped");
        assert_eq!((c.stats().hits, c.stats().misses), (1, 1));
    }

    #[test]
    fn bounded_by_entries_and_bytes_lru() {
        let t = Instant::now();
        let mut c = cache(2, 1000);
        c.insert("a".into(), resp(1), t);
        c.insert("b".into(), resp(1), t);
        assert!(c.get("a", t).is_some());
        c.insert("c".into(), resp(1), t);
        assert!(c.get("b", t).is_none(), "b was least recently used");
        assert!(c.get("a", t).is_some() && c.get("c", t).is_some());
        let mut c = cache(100, 25);
        c.insert("a".into(), resp(9), t);
        c.insert("b".into(), resp(9), t);
        c.insert("c".into(), resp(9), t);
        assert_eq!(c.stats().entries, 2, "30 bytes do not fit in 25");
        assert!(c.stats().bytes <= 25);
        assert!(
            !c.insert("big".into(), resp(30), t),
            "larger than the whole cache"
        );
        assert_eq!(c.stats().evictions, 1);
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let mut c = ResponseCache::new(CacheSettings::default());
        assert!(!c.insert("k".into(), resp(1), Instant::now()));
        assert!(c.get("k", Instant::now()).is_none());
    }
}
