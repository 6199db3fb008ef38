//! The Run screen's commands: the embedded engine (`hotpatch-infer`) running the session's model
//! — the edited one and the original one side by side — and what default llama.cpp copies at
//! load (the Model screen's measured liveness).
//!
//! The engine is [`AppState::engine`], one [`hotpatch_infer::EngineHost`] for the app: loaded
//! on the first run (about a second for a 135M model), reused until the session attaches other
//! files (open, mode switch), and kept in step with every edit, staged or live, with no reload
//! (`hotpatch_infer::session`). Every command runs on a blocking thread; a run streams each
//! token over a `Channel<RunToken>` and stops at `cancel_job(job)`; the behaviour diff streams
//! [`Progress`] and is canceled the same way.

use serde::{Deserialize, Serialize};
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::Channel;
use tauri::AppHandle;

use hotpatch_infer::{
    behaviour_diff as diff_session, run_pair, Candidate, EvalOptions, EvalReport, Generation,
    RunReport, RunRequest, Sampling, Side, StopReason,
};

use super::blocking;
use crate::commands::edit::ModelMode;
use crate::error::{ErrorCode, IpcError};
use crate::ipc::{Progress, Stage};
use crate::state::AppState;

// ----- IPC types ------------------------------------------------------------------------------

/// Which model of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum RunSide {
    /// The model with the session's edits.
    Edited,
    /// The model as opened.
    Original,
}

impl From<Side> for RunSide {
    fn from(s: Side) -> Self {
        match s {
            Side::Edited => RunSide::Edited,
            Side::Original => RunSide::Original,
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RunSpec {
    /// The prompt, or (with `chat`) the user's message.
    pub prompt: String,
    /// Format it as one user message with the model's own chat template.
    pub chat: bool,
    /// Most tokens per side (1..=1024).
    pub max_tokens: u32,
    /// Next-token candidates to compare (1..=50).
    pub top_k: u32,
    /// 0: greedy (the default); otherwise sampling at this temperature, seeded.
    #[specta(type = Number)]
    pub temperature: f64,
    /// Seed of the sampling (the same seed gives the same answer).
    pub seed: u32,
}

/// One generated token, streamed as it comes.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RunToken {
    /// The job it belongs to.
    pub job: u32,
    /// Which model produced it.
    pub side: RunSide,
    /// Its index in that side's answer.
    pub index: u32,
    /// Token id.
    pub token: i32,
    /// The text it completed (may be empty inside a UTF-8 character).
    pub text: String,
    /// The probability the model gave it.
    #[specta(type = Number)]
    pub prob: f64,
}

/// One side's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// The text.
    pub text: String,
    /// Tokens generated.
    pub tokens: u32,
    /// Why it ended: `end` (the model ended its turn), `length`, `context`, `canceled`, `stop`.
    pub stop: String,
    /// Seconds evaluating the prompt.
    #[specta(type = Number)]
    pub prompt_seconds: f64,
    /// Generated tokens per second.
    #[specta(type = Number)]
    pub tokens_per_second: f64,
}

/// One next-token candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CandidateView {
    /// Token id.
    pub token: i32,
    /// Its text.
    pub text: String,
    /// Probability.
    #[specta(type = Number)]
    pub prob: f64,
    /// Logit.
    #[specta(type = Number)]
    pub logit: f64,
}

/// A token whose probability the edit moved.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ShiftView {
    /// Token id.
    pub token: i32,
    /// Its text.
    pub text: String,
    /// Probability on the edited side.
    #[specta(type = Number)]
    pub p_edited: f64,
    /// Probability on the original side.
    #[specta(type = Number)]
    pub p_original: f64,
}

/// The next token after the prompt, edited vs original.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct NextView {
    /// Edited side's top-k.
    pub edited: Vec<CandidateView>,
    /// Original side's top-k.
    pub original: Vec<CandidateView>,
    /// Every token of either top-k, largest change of probability first.
    pub shifts: Vec<ShiftView>,
    /// Whether the most likely token differs.
    pub top1_changed: bool,
    /// KL(edited ‖ original) of the whole distribution, nats.
    #[specta(type = Number)]
    pub kld: f64,
    /// Largest |Δ logit| over the vocabulary.
    #[specta(type = Number)]
    pub max_abs_logit_change: f64,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// The text the model read (chat template applied in chat mode).
    pub prompt_text: String,
    /// Its tokens.
    pub prompt_tokens: u32,
    /// The edited model's answer.
    pub edited: Answer,
    /// The original model's answer.
    pub original: Answer,
    /// The next token after the prompt, compared.
    pub next: NextView,
    /// Whether both answers are the same tokens.
    pub same: bool,
    /// The session revision (`session_revision`) the run started at: the UI says the answer is
    /// stale once the revision moved.
    pub revision: u32,
    /// Private memory the engine holds for edits, both sides.
    #[specta(type = Number)]
    pub private_bytes: u64,
}

/// What the engine serves.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct EngineView {
    /// A model is loaded.
    pub loaded: bool,
    /// A run (or a request of the built-in upstream) is using it now.
    pub busy: bool,
    /// The model's first file.
    pub path: Option<String>,
    /// Staged or live.
    pub mode: Option<ModelMode>,
    /// The original side is loaded too.
    pub original_loaded: bool,
    /// Private memory for edits, both sides.
    #[specta(type = Number)]
    pub private_bytes: u64,
    /// Context length.
    pub n_ctx: u32,
    /// Threads.
    pub threads: u32,
    /// Seconds the edited side took to load.
    #[specta(type = Number)]
    pub load_seconds: f64,
    /// The model has a chat template.
    pub chat_template: bool,
    /// The embedded llama.cpp and the CPU features it uses.
    pub build: String,
}

/// One position of the behaviour diff where the models disagree most.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct WorstView {
    /// Position in the text's tokens.
    pub position: u32,
    /// The text before it.
    pub context: String,
    /// The actual next token.
    pub actual: String,
    /// KL(edited ‖ original) there.
    #[specta(type = Number)]
    pub kld: f64,
    /// Probability the edited model gave the actual token.
    #[specta(type = Number)]
    pub p_edited: f64,
    /// Probability the original gave it.
    #[specta(type = Number)]
    pub p_original: f64,
    /// The edited model's most likely token.
    pub top_edited: String,
    /// The original's.
    pub top_original: String,
}

/// One scored token of the text, for the per-token view.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TokenScoreView {
    /// Position in the text's tokens.
    pub position: u32,
    /// The token's text.
    pub text: String,
    /// KL(edited ‖ original) there.
    #[specta(type = Number)]
    pub kld: f64,
    /// Both models' most likely token is the same.
    pub agree: bool,
}

/// The behaviour diff: edited against original over a text.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct BehaviourView {
    /// The text used: `sample` (the bundled one) or the file's path.
    pub source: String,
    /// Positions scored.
    pub tokens: u32,
    /// Window length (tokens evaluated from an empty context each).
    pub window: u32,
    /// Perplexity of the edited model (`null` when it overflows f64: see `nll_edited`).
    #[specta(type = Option<Number>)]
    pub ppl_edited: Option<f64>,
    /// Perplexity of the original (`null` when it overflows).
    #[specta(type = Option<Number>)]
    pub ppl_original: Option<f64>,
    /// Mean negative log-likelihood of the edited model, nats per token (ln of its perplexity).
    #[specta(type = Number)]
    pub nll_edited: f64,
    /// The original's.
    #[specta(type = Number)]
    pub nll_original: f64,
    /// Mean KL(edited ‖ original), nats.
    #[specta(type = Number)]
    pub kld_mean: f64,
    /// Its 99th percentile.
    #[specta(type = Number)]
    pub kld_p99: f64,
    /// Its largest value.
    #[specta(type = Number)]
    pub kld_max: f64,
    /// Fraction of positions where both models' most likely token is the same.
    #[specta(type = Number)]
    pub top1_agreement: f64,
    /// Where they disagree most, largest KL first.
    pub worst: Vec<WorstView>,
    /// Every scored position in text order (the first 4096).
    pub per_token: Vec<TokenScoreView>,
    /// Seconds spent.
    #[specta(type = Number)]
    pub seconds: f64,
    /// Tokens per second (per model).
    #[specta(type = Number)]
    pub tokens_per_second: f64,
}

/// One tensor and where default llama.cpp keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct BufferRow {
    /// Tensor name.
    pub name: String,
    /// Type name.
    pub ty: String,
    /// The backend buffer holding it (`CPU_Mapped`: the file itself; `CPU_REPACK`: a copy), or
    /// `null` when the graph never reads it.
    pub buffer: Option<String>,
    /// A copy made at load: an external llama.cpp sees edits of it only after a reload.
    pub copied: bool,
}

/// What an external llama.cpp with default settings copies at load, on this machine.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct LoadBuffersView {
    /// The model file measured.
    pub path: String,
    /// Every tensor, in index order.
    pub rows: Vec<BufferRow>,
    /// How many are copied.
    pub copied: u32,
    /// llama.cpp's "repack tensor" log lines.
    pub repack_log: Vec<String>,
    /// The embedded llama.cpp's CPU feature line.
    pub system_info: String,
    /// How to make an external llama-server see every edit.
    pub hint: String,
    /// Seconds the measurement took (0 when remembered).
    #[specta(type = Number)]
    pub seconds: f64,
}

// ----- conversions ----------------------------------------------------------------------------

fn stop_name(s: StopReason) -> &'static str {
    match s {
        StopReason::EndOfText => "end",
        StopReason::Length => "length",
        StopReason::Stop => "stop",
        StopReason::ContextFull => "context",
        StopReason::Canceled => "canceled",
    }
}

fn answer(g: &Generation) -> Answer {
    Answer {
        text: g.text.clone(),
        tokens: g.tokens.len() as u32,
        stop: stop_name(g.stop).into(),
        prompt_seconds: g.prompt_seconds,
        tokens_per_second: g.tokens.len() as f64 / g.gen_seconds.max(1e-9),
    }
}

fn candidate(c: &Candidate) -> CandidateView {
    CandidateView {
        token: c.token,
        text: c.text.clone(),
        prob: c.prob as f64,
        logit: c.logit as f64,
    }
}

/// The UI's form of a run's report (`revision`: the app's revision counter at the start).
pub fn run_result(r: &RunReport, revision: u32) -> RunResult {
    RunResult {
        prompt_text: r.prompt_text.clone(),
        prompt_tokens: r.prompt_tokens as u32,
        edited: answer(&r.edited),
        original: answer(&r.original),
        next: NextView {
            edited: r.next.edited.iter().map(candidate).collect(),
            original: r.next.original.iter().map(candidate).collect(),
            shifts: r
                .next
                .shifts
                .iter()
                .map(|s| ShiftView {
                    token: s.token,
                    text: s.text.clone(),
                    p_edited: s.p_edited as f64,
                    p_original: s.p_original as f64,
                })
                .collect(),
            top1_changed: r.next.top1_changed,
            kld: r.next.kld,
            max_abs_logit_change: r.next.max_abs_logit_change as f64,
        },
        same: r.same,
        revision,
        private_bytes: r.private_bytes,
    }
}

/// The UI's form of a behaviour diff.
pub fn behaviour_view(r: &EvalReport, source: String) -> BehaviourView {
    BehaviourView {
        source,
        tokens: r.tokens as u32,
        window: r.window as u32,
        ppl_edited: Some(r.ppl).filter(|p| p.is_finite()),
        ppl_original: r.ppl_b.filter(|p| p.is_finite()),
        nll_edited: r.nll,
        nll_original: r.nll_b.unwrap_or(f64::NAN),
        kld_mean: r.kld_mean.unwrap_or(0.0),
        kld_p99: r.kld_p99.unwrap_or(0.0),
        kld_max: r.kld_max.unwrap_or(0.0),
        top1_agreement: r.top1_agreement.unwrap_or(1.0),
        worst: r
            .worst
            .iter()
            .map(|w| WorstView {
                position: w.position as u32,
                context: w.context.clone(),
                actual: w.actual.clone(),
                kld: w.kld,
                p_edited: w.p_a,
                p_original: w.p_b,
                top_edited: w.top_a.clone(),
                top_original: w.top_b.clone(),
            })
            .collect(),
        per_token: r
            .per_token
            .iter()
            .map(|t| TokenScoreView {
                position: t.position as u32,
                text: t.text.clone(),
                kld: t.kld,
                agree: t.agree,
            })
            .collect(),
        seconds: r.seconds,
        tokens_per_second: r.tokens_per_second,
    }
}

/// Turns a run's arguments into the engine's request, checked by `RunRequest::validate`.
pub fn run_request(spec: &RunSpec) -> Result<RunRequest, IpcError> {
    let r = RunRequest {
        prompt: spec.prompt.clone(),
        chat: spec.chat,
        max_tokens: spec.max_tokens as usize,
        top_k: spec.top_k as usize,
        sampling: Sampling {
            temperature: spec.temperature as f32,
            top_k: 40,
            top_p: 0.95,
            seed: spec.seed as u64,
        },
    };
    r.validate()?;
    Ok(r)
}

// ----- commands -------------------------------------------------------------------------------

/// Runs a prompt on the edited and the original model side by side (job `job`; Stop is
/// `cancel_job(job)`), streaming every token over `on_token`. The engine loads on the first
/// run and follows every later edit with no reload. A stopped run returns what was generated.
#[tauri::command]
#[specta::specta]
pub async fn run_prompt(
    app: AppHandle,
    spec: RunSpec,
    job: u32,
    on_token: Channel<RunToken>,
) -> Result<RunResult, IpcError> {
    blocking(app, move |s| {
        run(s, &spec, job, &mut |t| {
            let _ = on_token.send(t);
        })
    })
    .await
}

/// [`run_prompt`] without Tauri: `send` gets every token.
pub fn run(
    state: &AppState,
    spec: &RunSpec,
    job: u32,
    send: &mut dyn FnMut(RunToken),
) -> Result<RunResult, IpcError> {
    let req = run_request(spec)?;
    let session = state.session_ref()?;
    let job = state.jobs.register(job);
    let revision = state.revision() as u32;
    let mut counts = [0u32; 2];
    let report = state
        .engine
        .with(&session, &mut |_| !job.is_canceled(), |se| {
            run_pair(se, &req, &mut |side, step| {
                let n = &mut counts[side as usize];
                send(RunToken {
                    job: job.id(),
                    side: side.into(),
                    index: *n,
                    token: step.token,
                    text: step.text.clone(),
                    prob: step.prob as f64,
                });
                *n += 1;
                !job.is_canceled()
            })
        })?;
    Ok(run_result(&report, revision))
}

/// What the engine serves now (nothing until the first run).
#[tauri::command]
#[specta::specta]
pub fn engine_status(state: tauri::State<'_, AppState>) -> EngineView {
    engine_view(&state)
}

/// [`engine_status`] without Tauri.
pub fn engine_view(state: &AppState) -> EngineView {
    let (status, busy) = match state.engine.status() {
        Ok(s) => (s, false),
        Err(()) => (None, true),
    };
    let build = hotpatch_infer::build_info();
    match status {
        Some(s) => EngineView {
            loaded: true,
            busy,
            path: Some(s.path.display().to_string()),
            mode: Some(s.mode.into()),
            original_loaded: s.original_loaded,
            private_bytes: s.private_bytes,
            n_ctx: s.n_ctx,
            threads: s.threads,
            load_seconds: s.load_seconds,
            chat_template: s.chat_template,
            build,
        },
        None => EngineView {
            loaded: busy,
            busy,
            path: None,
            mode: None,
            original_loaded: false,
            private_bytes: 0,
            n_ctx: 0,
            threads: 0,
            load_seconds: 0.0,
            chat_template: false,
            build,
        },
    }
}

/// The behaviour diff of the session: perplexity of the edited and the original model, KL
/// (mean, p99) and top-1 agreement over `text_path` (a UTF-8 file) or, without one, the
/// bundled public-domain sample; at most `max_tokens` tokens (0: all). Job `job`, progress over
/// `on_progress`, cancelable.
#[tauri::command]
#[specta::specta]
pub async fn behaviour_diff(
    app: AppHandle,
    text_path: Option<String>,
    max_tokens: u32,
    job: u32,
    on_progress: Channel<Progress>,
) -> Result<BehaviourView, IpcError> {
    blocking(app, move |s| {
        diff(s, text_path.as_deref(), max_tokens, job, &on_progress)
    })
    .await
}

/// [`behaviour_diff`] without Tauri.
pub fn diff(
    state: &AppState,
    text_path: Option<&str>,
    max_tokens: u32,
    job: u32,
    on_progress: &Channel<Progress>,
) -> Result<BehaviourView, IpcError> {
    let (text, source) = eval_text(text_path)?;
    let session = state.session_ref()?;
    let job = state.jobs.register(job);
    job.send(on_progress, Stage::Read, 0, 0, "loading the engine");
    let options = EvalOptions {
        max_tokens: max_tokens as usize,
        worst: 20,
        ..Default::default()
    };
    let mut progress = progress_to(&job, on_progress, "behaviour diff");
    let report = state
        .engine
        .with(&session, &mut |_| !job.is_canceled(), |se| {
            diff_session(se, &text, options, &mut progress)
        })?;
    job.send(
        on_progress,
        Stage::Done,
        report.tokens as u64,
        report.tokens as u64,
        format!(
            "behaviour diff: {} tokens, KL mean {:.4}",
            report.tokens,
            report.kld_mean.unwrap_or(0.0)
        ),
    );
    Ok(behaviour_view(&report, source))
}

/// The behaviour diff of the open model as edited (A) against the Diff screen's model B over
/// `text_path` (or the bundled sample): perplexity of each, KL(A ‖ B) mean and p99, top-1
/// agreement — what `llama-perplexity --kl-divergence` measures offline. In the result,
/// `*_edited` is A and `*_original` is B. Job `job`, progress over `on_progress`, cancelable.
#[tauri::command]
#[specta::specta]
pub async fn diff_behaviour(
    app: AppHandle,
    text_path: Option<String>,
    max_tokens: u32,
    job: u32,
    on_progress: Channel<Progress>,
) -> Result<BehaviourView, IpcError> {
    blocking(app, move |s| {
        diff_b(s, text_path.as_deref(), max_tokens, job, &on_progress)
    })
    .await
}

/// [`diff_behaviour`] without Tauri.
pub fn diff_b(
    state: &AppState,
    text_path: Option<&str>,
    max_tokens: u32,
    job: u32,
    on_progress: &Channel<Progress>,
) -> Result<BehaviourView, IpcError> {
    let (text, source) = eval_text(text_path)?;
    let session = state.session_ref()?;
    let b = state
        .session()
        .other()
        .map(|d| d.path().to_path_buf())
        .ok_or_else(|| {
            IpcError::new(
                ErrorCode::BadRequest,
                "no model B is open (open one on the Diff screen first)",
            )
        })?;
    let job = state.jobs.register(job);
    job.send(on_progress, Stage::Read, 0, 0, "loading the models");
    let options = EvalOptions {
        max_tokens: max_tokens as usize,
        worst: 20,
        ..Default::default()
    };
    let report = state
        .engine
        .compare_with(
            &session,
            &b,
            &text,
            options,
            &mut progress_to(&job, on_progress, "A vs B"),
        )
        .map_err(|e| IpcError::from(e).with_context(&b.display().to_string()))?;
    job.send(
        on_progress,
        Stage::Done,
        report.tokens as u64,
        report.tokens as u64,
        format!(
            "A vs B: {} tokens, KL mean {:.4}",
            report.tokens,
            report.kld_mean.unwrap_or(0.0)
        ),
    );
    Ok(behaviour_view(&report, source))
}

/// The evaluation text: the file at `path` (UTF-8) or the bundled sample; and how to name it
/// (`hotpatch_infer::eval_text`).
fn eval_text(path: Option<&str>) -> Result<(String, String), IpcError> {
    Ok(hotpatch_infer::eval_text(path)?)
}

/// An evaluation's `progress(done, total)` forwarded to the channel (about every 1 %),
/// returning `false` once the job is canceled.
fn progress_to<'a>(
    job: &'a crate::jobs::Job,
    channel: &'a Channel<Progress>,
    what: &'a str,
) -> impl FnMut(usize, usize) -> bool + 'a {
    let mut last = 0usize;
    move |done, total| {
        if done == total || done >= last + total.div_ceil(100) {
            last = done;
            job.send(
                channel,
                Stage::Compare,
                done as u64,
                total as u64,
                format!("{what}: {done} / {total} tokens"),
            );
        }
        !job.is_canceled()
    }
}

/// Which tensors an external llama.cpp with default settings copies at load on this machine
/// (measured by the embedded llama.cpp: one default load of the open model's file, remembered
/// while the file is unchanged), and how to make it see every edit.
#[tauri::command]
#[specta::specta]
pub async fn load_buffers(
    app: AppHandle,
    job: u32,
    on_progress: Channel<Progress>,
) -> Result<LoadBuffersView, IpcError> {
    blocking(app, move |s| measure_buffers(s, job, &on_progress)).await
}

/// [`load_buffers`] without Tauri.
pub fn measure_buffers(
    state: &AppState,
    job: u32,
    on_progress: &Channel<Progress>,
) -> Result<LoadBuffersView, IpcError> {
    let path = state.require_model()?.shards[0].path().to_path_buf();
    let job = state.jobs.register(job);
    job.send(
        on_progress,
        Stage::Read,
        0,
        0,
        "loading as default llama.cpp does",
    );
    let l = state.engine.default_load_buffers(&path)?;
    let rows: Vec<BufferRow> = l
        .tensors
        .iter()
        .map(|t| BufferRow {
            name: t.name.clone(),
            ty: t.ty.clone(),
            buffer: t.buffer.clone(),
            copied: t.copied,
        })
        .collect();
    let copied = rows.iter().filter(|r| r.copied).count() as u32;
    job.send(
        on_progress,
        Stage::Done,
        1,
        1,
        format!("default llama.cpp copies {copied} tensors at load"),
    );
    Ok(LoadBuffersView {
        path: path.display().to_string(),
        rows,
        copied,
        repack_log: l.repack_log.clone(),
        system_info: l.system_info.trim().to_string(),
        hint: hotpatch_core::NO_REPACK_HINT.to_string(),
        seconds: l.seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(prompt: &str) -> RunSpec {
        RunSpec {
            prompt: prompt.into(),
            chat: false,
            max_tokens: 8,
            top_k: 5,
            temperature: 0.0,
            seed: 0,
        }
    }

    #[test]
    fn run_arguments_are_checked_naming_the_field() {
        let r = run_request(&spec("The capital of France is")).unwrap();
        assert_eq!(r.max_tokens, 8);
        assert_eq!(r.sampling.temperature, 0.0, "greedy by default");
        for (s, field) in [
            (spec("  "), "prompt"),
            (
                RunSpec {
                    max_tokens: 0,
                    ..spec("x")
                },
                "max tokens",
            ),
            (
                RunSpec {
                    top_k: 51,
                    ..spec("x")
                },
                "top-k",
            ),
            (
                RunSpec {
                    temperature: f64::NAN,
                    ..spec("x")
                },
                "temperature",
            ),
        ] {
            let e = run_request(&s).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest);
            assert!(e.message.starts_with(field), "{field}: {}", e.message);
        }
    }

    #[test]
    fn without_a_model_every_engine_command_says_so() {
        let state = AppState::default();
        let e = run(&state, &spec("hello"), 1, &mut |_| {}).unwrap_err();
        assert_eq!(e.code, ErrorCode::NoModel, "{}", e.message);
        let ch = Channel::new(|_| Ok(()));
        assert_eq!(
            diff(&state, None, 16, 2, &ch).unwrap_err().code,
            ErrorCode::NoModel
        );
        assert_eq!(
            measure_buffers(&state, 3, &ch).unwrap_err().code,
            ErrorCode::NoModel
        );
        let v = engine_view(&state);
        assert!(!v.loaded && !v.busy && v.path.is_none());
        assert!(v.build.contains("llama.cpp"), "{}", v.build);
    }
}
