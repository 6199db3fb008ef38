//! The engine as an application hosts it (the studio): one [`SessionEngine`] kept for the
//! session and reused by every caller — the Run screen, the behaviour diff and the built-in
//! upstream of the proxy — reloaded only when the session attached other files or regions.
//!
//! - [`EngineHost::with`] runs work on the engine of the session a [`SessionRef`] names,
//!   loading it when needed (one caller at a time; the others wait).
//! - [`run_pair`]: a prompt (plain or through the model's chat template) answered by the
//!   edited and the original model side by side, token by token, with the next-token
//!   comparison of the two.
//! - [`behaviour_diff`]: perplexity, KL (mean, p99) and top-1 agreement of edited against
//!   original over a text ([`crate::evaluate`]).
//! - [`HostBackend`]: the host as the [`Backend`] of the built-in upstream server, so what the
//!   proxy serves is the model being edited, edits included.
//! - [`EngineHost::default_load_buffers`]: [`crate::default_load_buffers`] remembered per file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use hotpatch_core::{Engine, RegionId};
use parking_lot::Mutex;

use crate::backend::{Backend, Generate};
use crate::error::{InferError, Result};
use crate::eval::{evaluate, EvalOptions, EvalReport};
use crate::instance::{GenOptions, Generation, Instance, InstanceOptions, Step};
use crate::liveness::{default_load_buffers, Liveness};
use crate::llama::{ContextOptions, LoadOptions};
use crate::sample::Sampling;
use crate::session::{EngineStatus, NextComparison, SessionEngine, Side};

/// The session to serve: the core engine and the model's files with their regions, in shard
/// order (`Manager::shards`).
#[derive(Clone)]
pub struct SessionRef {
    /// The session's engine.
    pub core: Engine,
    /// Each file of the model with its region.
    pub shards: Vec<(PathBuf, RegionId)>,
}

impl std::fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRef")
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

/// Where a host finds the session to serve (called once per request of the built-in upstream).
pub type SessionSource = dyn Fn() -> Result<SessionRef> + Send + Sync;

/// The options the studio loads its engine with: mapped, not repacked, 2048 tokens of context,
/// every core.
pub fn studio_options() -> InstanceOptions {
    InstanceOptions {
        load: LoadOptions::default(),
        context: ContextOptions {
            n_ctx: 2048,
            n_batch: 512,
            threads: 0,
        },
    }
}

type FileStamp = (PathBuf, u64, Option<SystemTime>);

/// One engine for the session, shared by every caller.
pub struct EngineHost {
    slot: Mutex<Option<SessionEngine>>,
    /// Another model (the Diff screen's B), loaded for [`EngineHost::compare_with`].
    other: Mutex<Option<Instance>>,
    options: InstanceOptions,
    liveness: Mutex<Option<(FileStamp, Arc<Liveness>)>>,
}

impl std::fmt::Debug for EngineHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHost")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for EngineHost {
    fn default() -> Self {
        EngineHost::new(studio_options())
    }
}

impl EngineHost {
    /// A host that loads with `options` (nothing loaded yet).
    pub fn new(options: InstanceOptions) -> EngineHost {
        EngineHost {
            slot: Mutex::new(None),
            other: Mutex::new(None),
            options,
            liveness: Mutex::new(None),
        }
    }

    /// Runs `f` on the engine of `session`, loading it first when none is loaded or the loaded
    /// one serves other files or regions (`progress` sees the load, 0..1, and may cancel it).
    /// One caller at a time: a second waits until the first is done.
    pub fn with<R>(
        &self,
        session: &SessionRef,
        progress: &mut dyn FnMut(f32) -> bool,
        f: impl FnOnce(&mut SessionEngine) -> Result<R>,
    ) -> Result<R> {
        let mut slot = self.slot.lock();
        let e = SessionEngine::ensure(
            &mut slot,
            &session.core,
            &session.shards,
            self.options,
            progress,
        )?;
        f(e)
    }

    /// Drops the loaded engines (their memory and their mappings).
    pub fn release(&self) {
        *self.slot.lock() = None;
        *self.other.lock() = None;
    }

    /// The behaviour diff of the session's model as edited (A) against another model `other`
    /// (B: a finetune, another quantization) over `text` — perplexity of each, KL(A ‖ B) mean
    /// and p99, top-1 agreement, the per-token view. Both must share the vocabulary and the
    /// tokenizer. B is loaded on first use and kept while it is the same file.
    pub fn compare_with(
        &self,
        session: &SessionRef,
        other: &Path,
        text: &str,
        options: EvalOptions,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<EvalReport> {
        self.with(session, &mut |_| true, |se| {
            let a = se.instance(Side::Edited)?;
            let mut slot = self.other.lock();
            if slot.as_ref().is_none_or(|b| b.model().path() != other) {
                *slot = None;
                *slot = Some(Instance::load(other, self.options, &mut |_| true)?);
            }
            let b = slot.as_mut().ok_or_else(|| InferError::Invalid {
                what: "model B",
                message: "not loaded".into(),
            })?;
            let mut r = evaluate(a, Some(b), text, options, progress)?;
            r.per_token.truncate(MAX_PER_TOKEN);
            Ok(r)
        })
    }

    /// What the loaded engine serves, `Ok(None)` when none is loaded; `Err(())` while another
    /// caller is using it (the status would have to wait for a whole generation).
    #[allow(clippy::result_unit_err)]
    pub fn status(&self) -> std::result::Result<Option<EngineStatus>, ()> {
        match self.slot.try_lock() {
            Some(s) => Ok(s.as_ref().map(SessionEngine::status)),
            None => Err(()),
        }
    }

    /// Which tensors an external llama.cpp with default settings copies at load
    /// ([`default_load_buffers`]), remembered while the file's size and modification time stay.
    pub fn default_load_buffers(&self, path: &Path) -> Result<Arc<Liveness>> {
        let meta = std::fs::metadata(path).map_err(|e| InferError::io("read", path, e))?;
        let stamp: FileStamp = (path.to_path_buf(), meta.len(), meta.modified().ok());
        if let Some((s, l)) = self.liveness.lock().as_ref() {
            if *s == stamp {
                return Ok(Arc::clone(l));
            }
        }
        let l = Arc::new(default_load_buffers(path)?);
        *self.liveness.lock() = Some((stamp, Arc::clone(&l)));
        Ok(l)
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    /// The prompt, or (with `chat`) the user's message.
    pub prompt: String,
    /// Format the prompt as one user message with the model's own chat template.
    pub chat: bool,
    /// Most tokens to generate per side.
    pub max_tokens: usize,
    /// How many next-token candidates to compare.
    pub top_k: usize,
    /// Token choice (greedy by default).
    pub sampling: Sampling,
}

impl Default for RunRequest {
    fn default() -> Self {
        RunRequest {
            prompt: String::new(),
            chat: false,
            max_tokens: 48,
            top_k: 10,
            sampling: Sampling::default(),
        }
    }
}

/// Most tokens a run may generate per side.
pub const MAX_RUN_TOKENS: usize = 1024;
/// Most next-token candidates a run may compare.
pub const MAX_RUN_TOP_K: usize = 50;
/// Highest sampling temperature a run accepts.
pub const MAX_RUN_TEMPERATURE: f32 = 5.0;

impl RunRequest {
    /// Checks the arguments a front end passes on: a prompt that is not blank, tokens in
    /// `1..=1024`, candidates in `1..=50`, a finite temperature in `0..=5`. The error names the
    /// argument (`max tokens: 0 is not in 1..=1024`).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &'static str, message: String| Err(InferError::Invalid { what, message });
        if self.prompt.trim().is_empty() {
            return bad("prompt", "empty (type a prompt first)".into());
        }
        if !(1..=MAX_RUN_TOKENS).contains(&self.max_tokens) {
            return bad(
                "max tokens",
                format!("{} is not in 1..={MAX_RUN_TOKENS}", self.max_tokens),
            );
        }
        if !(1..=MAX_RUN_TOP_K).contains(&self.top_k) {
            return bad(
                "top-k",
                format!("{} is not in 1..={MAX_RUN_TOP_K}", self.top_k),
            );
        }
        let t = self.sampling.temperature;
        if !t.is_finite() || !(0.0..=MAX_RUN_TEMPERATURE).contains(&t) {
            return bad("temperature", format!("{t} is not in 0..=5 (0 is greedy)"));
        }
        Ok(())
    }
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// The text the model read (the chat template applied, with `chat`).
    pub prompt_text: String,
    /// Its tokens.
    pub prompt_tokens: usize,
    /// The edited model's answer.
    pub edited: Generation,
    /// The original model's answer.
    pub original: Generation,
    /// The next-token distributions after the prompt, compared.
    pub next: NextComparison,
    /// Whether the two answers are the same tokens.
    pub same: bool,
    /// The session revision the run started at (`Engine::last_event_id`).
    pub revision: u64,
    /// Private memory the engine holds for edits, both sides (bytes).
    pub private_bytes: u64,
}

/// Runs `req` on both sides: the next-token comparison after the prompt first, then both
/// answers, token by token, alternating (`on_token(side, step)` sees each; `false` stops
/// both). The answers stop at `max_tokens`, at the end of the model's turn, or on cancel.
pub fn run_pair(
    se: &mut SessionEngine,
    req: &RunRequest,
    on_token: &mut dyn FnMut(Side, &Step) -> bool,
) -> Result<RunReport> {
    if req.prompt.is_empty() {
        return Err(InferError::Invalid {
            what: "prompt",
            message: "the prompt is empty".into(),
        });
    }
    let revision = se.revision();
    let prompt_text = if req.chat {
        se.instance(Side::Edited)?
            .chat_prompt(&[("user".to_string(), req.prompt.clone())])?
    } else {
        req.prompt.clone()
    };
    let prompt = se.instance(Side::Edited)?.tokenize_prompt(&prompt_text)?;
    let n_ctx = se.instance(Side::Edited)?.n_ctx() as usize;
    if prompt.len() + 1 > n_ctx {
        return Err(InferError::ContextFull {
            needed: prompt.len() + 1,
            n_ctx,
        });
    }
    let next = se.compare_next(&prompt, req.top_k.clamp(1, 100))?;
    let options = GenOptions {
        max_tokens: req.max_tokens,
        sampling: req.sampling,
        stop: Vec::new(),
    };
    let (edited, original) = se.generate_pair(&prompt, &options, true, on_token)?;
    let original = original.ok_or_else(|| InferError::Invalid {
        what: "side",
        message: "the original side did not run".into(),
    })?;
    Ok(RunReport {
        prompt_text,
        prompt_tokens: prompt.len(),
        same: edited.tokens == original.tokens,
        edited,
        original,
        next,
        revision,
        private_bytes: se.private_bytes(),
    })
}

/// Limits of [`behaviour_diff`]'s per-token view.
pub const MAX_PER_TOKEN: usize = 4096;

/// The behaviour diff of the session: the edited model (A) against the original (B) over
/// `text`. `progress(done, total)` counts tokens and may return `false` to cancel. The
/// per-token view keeps the first [`MAX_PER_TOKEN`] positions.
pub fn behaviour_diff(
    se: &mut SessionEngine,
    text: &str,
    options: EvalOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<EvalReport> {
    let (a, b) = se.both()?;
    let mut r = evaluate(a, Some(b), text, options, progress)?;
    r.per_token.truncate(MAX_PER_TOKEN);
    Ok(r)
}

/// Most bytes of a text file [`read_text`] takes (an evaluation of more is hours of work).
pub const MAX_TEXT_BYTES: u64 = 16 << 20;

/// The evaluation text a front end names: the file at `path` ([`read_text`]; blank: none) or
/// the bundled sample; with its name for the report (the path, or `sample`).
pub fn eval_text(path: Option<&str>) -> Result<(String, String)> {
    Ok(match path.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => (read_text(Path::new(p))?, p.to_owned()),
        None => (crate::SAMPLE_TEXT.to_owned(), "sample".to_owned()),
    })
}

/// Reads a user's evaluation text: a UTF-8 file of at most [`MAX_TEXT_BYTES`].
pub fn read_text(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| InferError::io("read", path, e))?;
    if !meta.is_file() {
        return Err(InferError::Invalid {
            what: "text",
            message: format!("{} is not a file", path.display()),
        });
    }
    if meta.len() > MAX_TEXT_BYTES {
        return Err(InferError::Invalid {
            what: "text",
            message: format!(
                "{} holds {} bytes; an evaluation text may hold at most {MAX_TEXT_BYTES}",
                path.display(),
                meta.len()
            ),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| InferError::io("read", path, e))?;
    String::from_utf8(bytes).map_err(|e| InferError::Invalid {
        what: "text",
        message: format!(
            "{} is not UTF-8 text (byte {} is not valid UTF-8)",
            path.display(),
            e.utf8_error().valid_up_to()
        ),
    })
}

/// The host as the backend of the built-in upstream: each request runs on the edited side of
/// the session `source` names at that moment (loading the engine if the session changed).
pub struct HostBackend {
    host: Arc<EngineHost>,
    source: Box<SessionSource>,
}

impl std::fmt::Debug for HostBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBackend").finish_non_exhaustive()
    }
}

impl HostBackend {
    /// A backend over `host`, serving the session `source` returns.
    pub fn new(host: Arc<EngineHost>, source: Box<SessionSource>) -> HostBackend {
        HostBackend { host, source }
    }

    fn with<R>(&self, f: impl FnOnce(&mut SessionEngine) -> Result<R>) -> Result<R> {
        let session = (self.source)()?;
        self.host.with(&session, &mut |_| true, f)
    }
}

impl Backend for HostBackend {
    fn model_id(&self) -> Result<String> {
        self.with(Generate::model_id)
    }
    fn chat_prompt(&self, messages: &[(String, String)]) -> Result<String> {
        self.with(|se| Generate::chat_prompt(se, messages))
    }
    fn complete(
        &self,
        prompt: &str,
        options: &GenOptions,
        on_step: &mut dyn FnMut(&Step) -> bool,
    ) -> Result<Generation> {
        self.with(|se| Generate::complete(se, prompt, options, on_step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eval_text_is_the_file_or_the_sample() {
        let (text, name) = eval_text(Some("  ")).unwrap();
        assert_eq!(
            (text.as_str(), name.as_str()),
            (crate::SAMPLE_TEXT, "sample")
        );
        assert_eq!(eval_text(None).unwrap().1, "sample");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, "We hold these truths").unwrap();
        let path = p.display().to_string();
        let (text, name) = eval_text(Some(&format!(" {path} "))).unwrap();
        assert_eq!(
            (text.as_str(), name.as_str()),
            ("We hold these truths", path.as_str())
        );
        assert!(eval_text(Some("/no/such/file.txt")).is_err());
    }

    #[test]
    fn run_requests_are_checked_naming_the_argument() {
        let ok = RunRequest {
            prompt: "The capital of France is".into(),
            ..RunRequest::default()
        };
        assert!(ok.validate().is_ok());
        let sampled = |t: f32| RunRequest {
            sampling: Sampling {
                temperature: t,
                ..Sampling::default()
            },
            ..ok.clone()
        };
        assert!(sampled(5.0).validate().is_ok(), "the bound is accepted");
        for (r, start) in [
            (
                RunRequest {
                    prompt: "  ".into(),
                    ..ok.clone()
                },
                "prompt: empty",
            ),
            (
                RunRequest {
                    max_tokens: 0,
                    ..ok.clone()
                },
                "max tokens: 0 is not in 1..=1024",
            ),
            (
                RunRequest {
                    max_tokens: 1025,
                    ..ok.clone()
                },
                "max tokens",
            ),
            (
                RunRequest {
                    top_k: 51,
                    ..ok.clone()
                },
                "top-k: 51",
            ),
            (sampled(f32::NAN), "temperature"),
            (sampled(-0.5), "temperature"),
            (sampled(5.5), "temperature"),
        ] {
            let e = r.validate().unwrap_err();
            assert!(matches!(e, InferError::Invalid { .. }), "{e}");
            assert!(e.to_string().starts_with(start), "{start}: {e}");
        }
    }

    #[test]
    fn read_text_refuses_what_is_not_utf8_text_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("hotpatch-host-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.txt");
        std::fs::write(&good, "We hold these truths").unwrap();
        assert_eq!(read_text(&good).unwrap(), "We hold these truths");
        let bad = dir.join("bad.txt");
        std::fs::write(&bad, b"abc\xff\xfe").unwrap();
        let e = read_text(&bad).unwrap_err().to_string();
        assert!(
            e.contains("bad.txt") && e.contains("byte 3"),
            "names the file and the first bad byte: {e}"
        );
        let e = read_text(&dir).unwrap_err().to_string();
        assert!(e.contains("not a file"), "{e}");
        let e = read_text(&dir.join("missing.txt")).unwrap_err().to_string();
        assert!(e.contains("missing.txt"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
