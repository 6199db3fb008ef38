//! Cancelable long-running work: the registry a front end keeps of its running jobs.
//!
//! The front end picks a job id (a `u32` unique within its window), passes it to a long
//! operation and may cancel that id at any time. The operation registers the id
//! ([`Jobs::register`]) and either polls [`Job::is_canceled`] or hands a progress callback to
//! a core function (core's progress callbacks return `false` to stop; [`throttled`] builds
//! one). A cancel that arrives before the operation registered its job is remembered, so a
//! fast double-click on Cancel is never lost. Dropping the [`Job`] forgets the id.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::Progress;

/// How many early cancels are remembered (ids canceled before their job registered).
pub const EARLY_CANCELS: usize = 256;

/// The registry of running jobs (one per app).
#[derive(Debug, Default)]
pub struct Jobs {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    running: HashMap<u32, Arc<AtomicBool>>,
    canceled_early: HashSet<u32>,
}

impl Jobs {
    /// Registers job `id` and returns its handle; if `id` was already canceled, the job
    /// starts canceled.
    pub fn register(&self, id: u32) -> Job {
        let mut reg = self.inner.lock();
        let early = reg.canceled_early.remove(&id);
        let flag = Arc::new(AtomicBool::new(early));
        reg.running.insert(id, flag.clone());
        Job {
            id,
            canceled: flag,
            registry: self.inner.clone(),
        }
    }

    /// Cancels job `id`. Returns whether it was running (an unknown id is remembered, at most
    /// [`EARLY_CANCELS`] of them).
    pub fn cancel(&self, id: u32) -> bool {
        let mut reg = self.inner.lock();
        if let Some(flag) = reg.running.get(&id) {
            flag.store(true, Ordering::SeqCst);
            return true;
        }
        if reg.canceled_early.len() >= EARLY_CANCELS {
            reg.canceled_early.clear();
        }
        reg.canceled_early.insert(id);
        false
    }

    /// Ids of the jobs running now (for tests and diagnostics).
    pub fn running(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.inner.lock().running.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}

/// One running job; unregisters itself when dropped.
#[derive(Debug)]
pub struct Job {
    id: u32,
    canceled: Arc<AtomicBool>,
    registry: Arc<Mutex<Registry>>,
}

impl Job {
    /// The id the front end chose.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether the front end asked to stop.
    pub fn is_canceled(&self) -> bool {
        self.canceled.load(Ordering::SeqCst)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.registry.lock().running.remove(&self.id);
    }
}

/// A core-style progress callback (`FnMut(Progress) -> bool`) that passes a report to `send`
/// at most every 1/200 of the total (the first and the last always), and returns `false`
/// (stop) once `canceled` says so.
pub fn throttled<'a>(
    mut send: impl FnMut(&Progress) + 'a,
    canceled: impl Fn() -> bool + 'a,
) -> impl FnMut(Progress) -> bool + 'a {
    let mut last_sent: Option<u64> = None;
    move |p: Progress| {
        let step = (p.total / 200).max(1);
        let due = match last_sent {
            None => true,
            Some(prev) => p.done >= p.total || p.done.saturating_sub(prev) >= step,
        };
        if due {
            last_sent = Some(p.done);
            send(&p);
        }
        !canceled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_reaches_a_running_job_and_drop_unregisters() {
        let jobs = Jobs::default();
        let job = jobs.register(7);
        assert!(!job.is_canceled(), "a fresh job is not canceled");
        assert_eq!(jobs.running(), vec![7]);
        assert!(jobs.cancel(7), "job 7 is running, so cancel finds it");
        assert!(job.is_canceled(), "the flag the job polls is set");
        drop(job);
        assert!(jobs.running().is_empty(), "a dropped job is forgotten");
    }

    #[test]
    fn a_cancel_before_register_is_not_lost() {
        let jobs = Jobs::default();
        assert!(!jobs.cancel(3), "job 3 is not running yet");
        let job = jobs.register(3);
        assert!(
            job.is_canceled(),
            "the early cancel applies when the job registers"
        );
        let other = jobs.register(4);
        assert!(
            !other.is_canceled(),
            "an early cancel is for its own id only"
        );
        assert_eq!(job.id(), 3);
    }

    #[test]
    fn early_cancels_are_bounded() {
        let jobs = Jobs::default();
        for id in 0..EARLY_CANCELS as u32 + 1 {
            jobs.cancel(id);
        }
        assert!(!jobs.register(0).is_canceled(), "the oldest were forgotten");
        assert!(jobs.register(EARLY_CANCELS as u32).is_canceled());
    }

    #[test]
    fn progress_is_throttled_and_stops_on_cancel() {
        let sent = std::cell::RefCell::new(Vec::new());
        let stop = std::cell::Cell::new(false);
        let mut f = throttled(|p| sent.borrow_mut().push(p.done), || stop.get());
        for done in 0..=1000 {
            assert!(f(Progress { done, total: 1000 }));
        }
        stop.set(true);
        assert!(!f(Progress {
            done: 1000,
            total: 1000
        }));
        drop(f);
        let sent = sent.into_inner();
        assert_eq!(sent.first(), Some(&0));
        assert_eq!(sent.last(), Some(&1000));
        assert!(sent.len() <= 203, "at most ~200 reports: {}", sent.len());
    }
}
