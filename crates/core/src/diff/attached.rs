//! Diffing the attached model — as it is now, staged edits included — against another file.
//!
//! Overview: the studio compares the model open in the session (the [`TensorLayer`] of a
//! [`crate::manager::Manager`]) with a second model opened read-only ([`GgufModel`]).
//! [`with_attached`] lends both tensor lists to a closure, side A read from the engine's
//! current bytes under its read lock (writes wait until the closure returns), side B from the
//! other file's map; [`diff_attached`] and [`top_differences_attached`] are the two uses.
//! [`Manager::diff_other`] and [`Manager::top_differences_other`] run them on the session's
//! own pair: the attached model and its second model ([`Manager::attach_other`]).

use std::sync::atomic::AtomicBool;

use hotpatch_gguf::GgufModel;

use super::{
    diff_models, tensors_of, top_differences, DiffError, DiffOptions, DiffPoint, DiffProgress,
    DiffReport, DiffTensor,
};
use crate::manager::{Manager, ManagerError};
use crate::tensor::TensorLayer;

/// At most this many progress reports (plus the last) reach the caller of
/// [`Manager::diff_other`].
pub const PROGRESS_REPORTS: u64 = 200;

/// Why [`Manager::diff_other`] (or [`Manager::top_differences_other`]) stopped: the session
/// has no pair to compare, or the diff itself refused.
#[derive(Debug, thiserror::Error)]
pub enum OtherDiffError {
    /// No model attached, or no second model.
    #[error(transparent)]
    Session(#[from] ManagerError),
    /// The diff refused (or was cancelled).
    #[error(transparent)]
    Diff(#[from] DiffError),
}

impl Manager {
    /// Compares the attached model (A, staged edits included) with the second model (B), on
    /// up to 4 threads. `report` gets at most [`PROGRESS_REPORTS`] reports (a new one once
    /// 1/200 of the bytes passed, and the last); `canceled` is asked at every step, and `true`
    /// stops the run ([`DiffError::Cancelled`]).
    pub fn diff_other(
        &self,
        report: &mut dyn FnMut(DiffProgress),
        canceled: &dyn Fn() -> bool,
    ) -> Result<DiffReport, OtherDiffError> {
        let other = self.other().ok_or(ManagerError::NoOther)?;
        let layer = self.tensors()?;
        let stop = AtomicBool::new(false);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let mut last = 0u64;
        let mut progress = |p: DiffProgress| {
            let step = (p.total_bytes / PROGRESS_REPORTS).max(1);
            if p.done_bytes >= p.total_bytes || p.done_bytes.saturating_sub(last) >= step {
                last = p.done_bytes;
                report(p);
            }
            if canceled() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        };
        Ok(diff_attached(
            &layer,
            other.model(),
            &DiffOptions { map: None, threads },
            &mut progress,
            Some(&stop),
        )?)
    }

    /// The `k` largest differences of tensor `name` between the attached model (A) and the
    /// second model (B).
    pub fn top_differences_other(
        &self,
        name: &str,
        k: usize,
    ) -> Result<Vec<DiffPoint>, OtherDiffError> {
        let other = self.other().ok_or(ManagerError::NoOther)?;
        let layer = self.tensors()?;
        Ok(top_differences_attached(
            &layer,
            other.model(),
            name,
            k,
            None,
        )?)
    }
}

/// Runs `f` on the tensors of the attached model (A, current bytes) and of `other` (B).
pub fn with_attached<R>(
    layer: &TensorLayer,
    other: &GgufModel,
    f: impl FnOnce(&[DiffTensor<'_>], &[DiffTensor<'_>]) -> R,
) -> Result<R, DiffError> {
    let b = tensors_of(other).map_err(|e| DiffError::Unreadable {
        model: "B",
        why: e.to_string(),
    })?;
    layer.engine().view(|v| {
        let a = layer
            .index()
            .tensors
            .iter()
            .map(|t| {
                let data = v.bytes(layer.region_of(t), t.offset, t.nbytes)?;
                Ok(DiffTensor::of(t, data))
            })
            .collect::<Result<Vec<_>, crate::EngineError>>()
            .map_err(|e| DiffError::Unreadable {
                model: "A",
                why: e.to_string(),
            })?;
        Ok(f(&a, &b))
    })
}

/// Compares the attached model (A) with `other` (B); see [`diff_models`].
pub fn diff_attached(
    layer: &TensorLayer,
    other: &GgufModel,
    options: &DiffOptions,
    progress: &mut dyn FnMut(DiffProgress),
    cancel: Option<&AtomicBool>,
) -> Result<DiffReport, DiffError> {
    with_attached(layer, other, |a, b| {
        diff_models(a, b, options, progress, cancel)
    })?
}

/// The `k` largest differences of tensor `name` between the attached model (A) and `other`
/// (B); see [`top_differences`].
pub fn top_differences_attached(
    layer: &TensorLayer,
    other: &GgufModel,
    name: &str,
    k: usize,
    cancel: Option<&AtomicBool>,
) -> Result<Vec<DiffPoint>, DiffError> {
    with_attached(layer, other, |a, b| {
        let (ta, tb) = pair(a, b, name)?;
        top_differences(ta, tb, k, cancel)
    })?
}

/// The tensor `name` in both lists, or why not.
pub fn pair<'s, 'a>(
    a: &'s [DiffTensor<'a>],
    b: &'s [DiffTensor<'a>],
    name: &str,
) -> Result<(&'s DiffTensor<'a>, &'s DiffTensor<'a>), DiffError> {
    let find = |ts: &'s [DiffTensor<'a>], model: &'static str| {
        ts.iter()
            .find(|t| t.name == name)
            .ok_or_else(|| DiffError::NoSuchTensor {
                model,
                name: name.to_string(),
            })
    };
    Ok((find(a, "A")?, find(b, "B")?))
}
