//! Cancelable long-running work.
//!
//! The UI picks a job id (a `u32` unique within the window), passes it to a long command along
//! with a `Channel<Progress>`, and may call [`cancel_job`] with the same id at any time. The
//! command registers the id ([`Jobs::register`]) and either polls [`Job::is_canceled`] or hands
//! [`Job::progress_fn`] to a core function (core's progress callbacks return `false` to stop).
//! A cancel that arrives before the command registered its job is remembered, so a fast
//! double-click on Cancel is never lost. Dropping the [`Job`] forgets the id.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tauri::ipc::Channel;
use tauri::State;

use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

/// How many early cancels are remembered (ids canceled before their job registered).
const EARLY_CANCELS: usize = 256;

/// The registry of running jobs (one per app, in [`AppState`]).
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
    /// Registers job `id` and returns its handle; if the UI already canceled `id`, the job
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

    /// Cancels job `id`. Returns whether it was running (an unknown id is remembered, bounded).
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
    /// The id the UI chose.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether the UI asked to stop.
    pub fn is_canceled(&self) -> bool {
        self.canceled.load(Ordering::SeqCst)
    }

    /// `Err(Canceled)` once the UI asked to stop, for `?` between steps.
    pub fn check(&self) -> Result<(), IpcError> {
        if self.is_canceled() {
            Err(IpcError::new(ErrorCode::Canceled, "canceled"))
        } else {
            Ok(())
        }
    }

    /// Sends one progress message for this job (a closed channel is ignored: the window may
    /// have reloaded, which must not fail the work itself).
    pub fn send(
        &self,
        channel: &Channel<Progress>,
        stage: Stage,
        done: u64,
        total: u64,
        message: impl Into<String>,
    ) {
        let _ = channel.send(Progress {
            job: self.id,
            stage,
            done,
            total,
            message: message.into(),
        });
    }

    /// A core-style progress callback (`FnMut(hotpatch_core::Progress) -> bool`): forwards each
    /// report to `channel` as `stage` with `message`, at most every 1/200 of the total, and
    /// returns `false` (stop) once the job is canceled.
    pub fn progress_fn<'a>(
        &'a self,
        channel: &'a Channel<Progress>,
        stage: Stage,
        message: &'a str,
    ) -> impl FnMut(hotpatch_core::Progress) -> bool + 'a {
        let mut last_sent: Option<u64> = None;
        move |p: hotpatch_core::Progress| {
            let step = (p.total / 200).max(1);
            let due = match last_sent {
                None => true,
                Some(prev) => p.done >= p.total || p.done.saturating_sub(prev) >= step,
            };
            if due {
                last_sent = Some(p.done);
                self.send(channel, stage, p.done, p.total, message);
            }
            !self.is_canceled()
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.registry.lock().running.remove(&self.id);
    }
}

/// Asks job `job` to stop. Returns whether it was running (a job not yet registered is
/// canceled as soon as it registers).
#[tauri::command]
#[specta::specta]
pub fn cancel_job(job: u32, state: State<'_, AppState>) -> bool {
    state.jobs.cancel(job)
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
        assert_eq!(job.check().unwrap_err().code, ErrorCode::Canceled);
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
    }
}
