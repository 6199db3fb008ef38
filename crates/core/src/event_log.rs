//! A bounded, newest-first log of events a front end shows live (the studio's patch log):
//! the newest `capacity` kept for a screen opened later, and at most one watcher that
//! receives every new entry until it returns false. Clones share the log.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

/// A watcher of an [`EventLog`]: receives each new entry until it returns false.
pub type Watcher<T> = Box<dyn Fn(&T) -> bool + Send + Sync>;

/// See the module docs.
pub struct EventLog<T> {
    capacity: usize,
    entries: Arc<Mutex<VecDeque<T>>>,
    watcher: Arc<Mutex<Option<Watcher<T>>>>,
}

impl<T> Clone for EventLog<T> {
    fn clone(&self) -> Self {
        Self {
            capacity: self.capacity,
            entries: Arc::clone(&self.entries),
            watcher: Arc::clone(&self.watcher),
        }
    }
}

impl<T> std::fmt::Debug for EventLog<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("capacity", &self.capacity)
            .field("entries", &self.entries.lock().len())
            .finish_non_exhaustive()
    }
}

impl<T: Clone> EventLog<T> {
    /// An empty log keeping the newest `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Arc::default(),
            watcher: Arc::default(),
        }
    }

    /// Records `entry` (newest first) and shows it to the watcher, dropped once it returns
    /// false.
    pub fn record(&self, entry: T) {
        {
            let mut ev = self.entries.lock();
            ev.push_front(entry.clone());
            ev.truncate(self.capacity);
        }
        let mut w = self.watcher.lock();
        if let Some(f) = w.as_ref() {
            if !f(&entry) {
                *w = None;
            }
        }
    }

    /// Replaces the watcher.
    pub fn watch(&self, watcher: Watcher<T>) {
        *self.watcher.lock() = Some(watcher);
    }

    /// The kept entries, newest first.
    pub fn entries(&self) -> Vec<T> {
        self.entries.lock().iter().cloned().collect()
    }

    /// How many entries are kept now.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_bounded_and_watched_until_declined() {
        let log = EventLog::new(3);
        for i in 1..=5 {
            log.record(i);
        }
        assert_eq!(log.entries(), [5, 4, 3]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        log.clone().watch(Box::new(move |&i| {
            s.lock().push(i);
            i < 7
        }));
        for i in 6..=9 {
            log.record(i);
        }
        assert_eq!(*seen.lock(), [6, 7], "the watcher is dropped after false");
        assert_eq!(log.entries(), [9, 8, 7]);
        assert_eq!(log.len(), 3);
        assert!(!log.is_empty());
    }
}
