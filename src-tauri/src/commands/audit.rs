//! Can this file be trusted? The audit of the open model (`hotpatch-audit`), as `hotpatch audit`
//! runs it: `audit_model` (structure, chat template, the prompts it renders) and
//! `audit_provenance` (every tensor re-derived from a claimed F16/BF16/F32 base, as a job).

use std::path::PathBuf;

use hotpatch_audit::provenance::{self, ProvenanceError};
use hotpatch_audit::{Finding, Options, Report};
use serde::Serialize;
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager as _};

use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

/// How serious a finding is (as `hotpatch audit --json` spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum AuditSeverity {
    /// A fact worth knowing, not a reason to distrust the file.
    Info,
    /// Suspicious, or something llama.cpp mishandles.
    Warning,
    /// Hostile, or something llama.cpp refuses.
    Error,
}

impl From<hotpatch_audit::Severity> for AuditSeverity {
    fn from(s: hotpatch_audit::Severity) -> Self {
        match s {
            hotpatch_audit::Severity::Info => AuditSeverity::Info,
            hotpatch_audit::Severity::Warning => AuditSeverity::Warning,
            hotpatch_audit::Severity::Error => AuditSeverity::Error,
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct FindingView {
    /// How serious.
    pub severity: AuditSeverity,
    /// Stable kebab-case code (`template-dunder`, `tensor-name-too-long`, …).
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// Where, for people (`tensor 'x' (offset 0x1c0)`, `tokenizer.chat_template line 3, …`).
    pub location: String,
    /// Absolute byte offset in the file, when known (the Bytes screen can go there).
    #[specta(type = Option<Number>)]
    pub offset: Option<u64>,
    /// Which file of a split model (0-based).
    pub shard: u32,
}

impl From<&Finding> for FindingView {
    fn from(f: &Finding) -> Self {
        FindingView {
            severity: f.severity.into(),
            code: f.code.clone(),
            message: f.message.clone(),
            location: f.location.display(),
            offset: f.location.offset,
            shard: u32::try_from(f.location.shard).unwrap_or(u32::MAX),
        }
    }
}

/// A chat template rendered on one fixed conversation: the prompt the model really sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RenderView {
    /// Which template (`tokenizer.chat_template`, or a named one).
    pub template: String,
    /// The conversation (`system-user`, `multi-turn`, …).
    pub conversation: String,
    /// The rendered prompt, special tokens as text.
    pub prompt: Option<String>,
    /// Why it did not render.
    pub error: Option<String>,
}

/// What the audit of the open model found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    /// The file audited (the file on disk; unsaved edits are not part of it).
    pub file: String,
    /// The llama.cpp build whose refusal rules the structure checks follow.
    pub llama_cpp: String,
    /// No warning and no error.
    pub clean: bool,
    /// Counts per severity.
    pub errors: u32,
    /// Warnings.
    pub warnings: u32,
    /// Info notes.
    pub infos: u32,
    /// Most severe first.
    pub findings: Vec<FindingView>,
    /// The templates rendered on the fixed conversations.
    pub renders: Vec<RenderView>,
}

/// The view of a report.
pub fn audit_view(r: &Report) -> AuditView {
    use hotpatch_audit::Severity as S;
    let n = |s: S| {
        let c = r.findings.iter().filter(|f| f.severity == s).count();
        u32::try_from(c).unwrap_or(u32::MAX)
    };
    AuditView {
        file: r.file.clone(),
        llama_cpp: hotpatch_audit::LLAMA_CPP_BUILD.to_string(),
        clean: r.is_clean(),
        errors: n(S::Error),
        warnings: n(S::Warning),
        infos: n(S::Info),
        findings: r.findings.iter().map(FindingView::from).collect(),
        renders: r
            .renders
            .iter()
            .map(|x| RenderView {
                template: x.template.clone(),
                conversation: x.conversation.clone(),
                prompt: x.prompt.clone(),
                error: x.error.clone(),
            })
            .collect(),
    }
}

/// Audits the open model's file: structure, chat templates and their renders.
#[tauri::command]
#[specta::specta]
pub async fn audit_model(app: AppHandle) -> Result<AuditView, IpcError> {
    super::blocking(app, |state| {
        let model = state.require_model()?;
        let file = model.shards[0].path().display().to_string();
        let report = hotpatch_audit::audit_model(&model, &file, &Options::default());
        Ok(audit_view(&report))
    })
    .await
}

/// Whether the open model re-derives from a claimed base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceView {
    /// The base file checked against.
    pub base: String,
    /// `N of M tensors re-derive byte for byte (K differ, U unverifiable)`.
    pub summary: String,
    /// Tensors of the open model.
    pub tensors: u32,
    /// Tensors that re-derive byte for byte.
    pub matched: u32,
    /// Tensors that do not.
    pub mismatched: u32,
    /// Tensors that could not be checked.
    pub unverifiable: u32,
    /// One finding per tensor that does not re-derive, plus a summary.
    pub findings: Vec<FindingView>,
}

/// Re-derives every tensor of the open model from `base` with the byte-exact quantizers, as a
/// job (`job` is the id the UI picked; progress over `channel`, `cancel_job` stops it).
#[tauri::command]
#[specta::specta]
pub async fn audit_provenance(
    app: AppHandle,
    base: String,
    job: u32,
    channel: Channel<Progress>,
) -> Result<ProvenanceView, IpcError> {
    let base = base.trim().to_string();
    if base.is_empty() {
        return Err(IpcError::new(
            ErrorCode::BadRequest,
            "base model: give the path of the F16/BF16/F32 file this one was quantized from",
        ));
    }
    let run = tauri::async_runtime::spawn_blocking(move || -> Result<ProvenanceView, IpcError> {
        let state = app.state::<AppState>();
        let model = state.require_model()?;
        let job = state.jobs.register(job);
        let base_path = PathBuf::from(&base);
        let opened = hotpatch_gguf::GgufModel::open(&base_path).map_err(|e| {
            let mut err = IpcError::from(e);
            err.message = format!("base model {base}: {}", err.message);
            err
        })?;
        let mut forward = job.progress_fn(
            &channel,
            Stage::Compare,
            "re-deriving tensors from the base",
        );
        let result = provenance::check(&model, &opened, &base, &mut |done, total| {
            forward(hotpatch_core::Progress { done, total })
        });
        drop(forward);
        if let Ok(p) = &result {
            let n = p.tensors as u64;
            job.send(
                &channel,
                Stage::Done,
                n,
                n,
                format!("provenance: {}", p.summary()),
            );
        }
        match result {
            Ok(p) => Ok(ProvenanceView {
                base,
                summary: p.summary(),
                tensors: count(p.tensors),
                matched: count(p.matched),
                mismatched: count(p.mismatched),
                unverifiable: count(p.unverifiable),
                findings: p.findings.iter().map(FindingView::from).collect(),
            }),
            Err(ProvenanceError::Canceled) => Err(IpcError::new(
                ErrorCode::Canceled,
                "provenance check canceled",
            )),
            Err(ProvenanceError::Open(m)) => Err(IpcError::new(ErrorCode::Io, m)),
        }
    });
    run.await
        .map_err(|e| IpcError::new(ErrorCode::Internal, format!("worker failed: {e}")))?
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
