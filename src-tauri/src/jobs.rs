//! Cancelable long-running work.
//!
//! The UI picks a job id (a `u32` unique within the window), passes it to a long command along
//! with a `Channel<Progress>`, and may call [`cancel_job`] with the same id at any time. The
//! command registers the id ([`Jobs::register`]) and either polls [`Job::is_canceled`] or hands
//! [`Job::progress_fn`] to a core function (core's progress callbacks return `false` to stop).
//! A cancel that arrives before the command registered its job is remembered, so a fast
//! double-click on Cancel is never lost. Dropping the [`Job`] forgets the id.

use tauri::ipc::Channel;
use tauri::State;

use hotpatch_core::jobs;

use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

/// The registry of running jobs (one per app, in [`AppState`]): `hotpatch_core::jobs::Jobs`.
#[derive(Debug, Default)]
pub struct Jobs(jobs::Jobs);

impl Jobs {
    /// Registers job `id` and returns its handle; if the UI already canceled `id`, the job
    /// starts canceled.
    pub fn register(&self, id: u32) -> Job {
        Job(self.0.register(id))
    }

    /// Cancels job `id`. Returns whether it was running (an unknown id is remembered, bounded).
    pub fn cancel(&self, id: u32) -> bool {
        self.0.cancel(id)
    }

    /// Ids of the jobs running now (for tests and diagnostics).
    pub fn running(&self) -> Vec<u32> {
        self.0.running()
    }
}

/// One running job (`hotpatch_core::jobs::Job`) with its progress channel helpers;
/// unregisters itself when dropped.
#[derive(Debug)]
pub struct Job(jobs::Job);

impl Job {
    /// The id the UI chose.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Whether the UI asked to stop.
    pub fn is_canceled(&self) -> bool {
        self.0.is_canceled()
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
            job: self.id(),
            stage,
            done,
            total,
            message: message.into(),
        });
    }

    /// A core-style progress callback (`FnMut(hotpatch_core::Progress) -> bool`): forwards each
    /// report to `channel` as `stage` with `message`, at most every 1/200 of the total, and
    /// returns `false` (stop) once the job is canceled (`hotpatch_core::jobs::throttled`).
    pub fn progress_fn<'a>(
        &'a self,
        channel: &'a Channel<Progress>,
        stage: Stage,
        message: &'a str,
    ) -> impl FnMut(hotpatch_core::Progress) -> bool + 'a {
        jobs::throttled(
            move |p| self.send(channel, stage, p.done, p.total, message),
            move || self.is_canceled(),
        )
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
    fn a_canceled_job_checks_as_canceled() {
        let jobs = Jobs::default();
        let job = jobs.register(7);
        assert!(job.check().is_ok());
        assert!(jobs.cancel(7));
        assert_eq!(job.check().unwrap_err().code, ErrorCode::Canceled);
        drop(job);
        assert!(jobs.running().is_empty(), "a dropped job is forgotten");
    }
}
