//! One loaded model with its context: generation, next-token probabilities, logits, and the
//! mapped files that edits are written into.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use hotpatch_gguf::GgufModel;

use crate::error::{InferError, Result};
use crate::llama::{Context, ContextOptions, LoadOptions, Model, Outputs, Token, WeightSeen};
use crate::overlay::{IndexedTensor, MappedFile};
use crate::sample::{self, Candidate, Sampler, Sampling, Utf8Stream};

/// How to load an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstanceOptions {
    /// Model loading (repacking off by default: every edit visible).
    pub load: LoadOptions,
    /// Context size, batch, threads.
    pub context: ContextOptions,
}

/// A tensor of the model as the GGUF index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// Name.
    pub name: String,
    /// Type name (`Q4_K`).
    pub ty: String,
    /// Shard (file) number, 0 for a single-file model.
    pub shard: usize,
    /// Absolute offset of its data in that file.
    pub offset: u64,
    /// Data bytes.
    pub nbytes: u64,
}

/// A loaded model and one context over it.
pub struct Instance {
    model: Arc<Model>,
    ctx: Context,
    shards: Vec<PathBuf>,
    tensors: Vec<TensorEntry>,
    weights: Vec<WeightSeen>,
    /// llama.cpp's mapping of each shard, or why edits cannot reach it.
    files: Vec<std::result::Result<MappedFile, String>>,
    /// Tokens in the KV cache.
    pos: u32,
    load_seconds: f64,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("model", &self.model)
            .field("shards", &self.shards)
            .finish()
    }
}

/// One generated token.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Step {
    /// Token id.
    pub token: Token,
    /// The text this token completed (may be empty inside a UTF-8 character).
    pub text: String,
    /// Probability the model gave it.
    pub prob: f32,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StopReason {
    /// The model ended its turn (an end-of-generation token).
    EndOfText,
    /// `max_tokens` reached.
    Length,
    /// A stop string appeared.
    Stop,
    /// The context is full.
    ContextFull,
    /// The caller stopped it.
    Canceled,
}

impl StopReason {
    /// The OpenAI `finish_reason`.
    pub fn finish_reason(self) -> &'static str {
        match self {
            StopReason::EndOfText | StopReason::Stop | StopReason::Canceled => "stop",
            StopReason::Length | StopReason::ContextFull => "length",
        }
    }
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Generation {
    /// The text generated (stop string excluded).
    pub text: String,
    /// Tokens generated.
    pub tokens: Vec<Token>,
    /// Prompt tokens evaluated.
    pub prompt_tokens: usize,
    /// Why it ended.
    pub stop: StopReason,
    /// Seconds spent evaluating the prompt.
    pub prompt_seconds: f64,
    /// Seconds spent generating.
    pub gen_seconds: f64,
}

/// How to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Token choice (greedy by default).
    pub sampling: Sampling,
    /// Stop strings.
    pub stop: Vec<String>,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            max_tokens: 64,
            sampling: Sampling::default(),
            stop: Vec::new(),
        }
    }
}

/// Reads a model's tensor index (every shard).
pub fn tensor_index(path: &Path) -> Result<(Vec<PathBuf>, Vec<TensorEntry>)> {
    let m = GgufModel::open(path).map_err(|e| InferError::Gguf {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let shards = m.shards.iter().map(|s| s.path().to_path_buf()).collect();
    let tensors = m
        .tensors
        .iter()
        .map(|t| TensorEntry {
            name: t.name.clone(),
            ty: t.ty.to_string(),
            shard: t.shard,
            offset: t.offset,
            nbytes: t.nbytes,
        })
        .collect();
    Ok((shards, tensors))
}

impl Instance {
    /// Loads `path` (mapped; repacking as `options` say) and finds llama.cpp's mapping of each
    /// of its files. `progress` gets 0..1 and may return `false` to cancel.
    pub fn load(
        path: &Path,
        options: InstanceOptions,
        progress: &mut dyn FnMut(f32) -> bool,
    ) -> Result<Instance> {
        let t0 = Instant::now();
        std::fs::metadata(path).map_err(|e| InferError::io("open", path, e))?;
        let (shards, tensors) = tensor_index(path)?;
        let model = Arc::new(Model::load(path, options.load, progress)?);
        let n_ctx = if options.context.n_ctx == 0 {
            model.n_ctx_train().clamp(256, 4096)
        } else {
            options.context.n_ctx
        };
        let ctx = Context::new(
            Arc::clone(&model),
            ContextOptions {
                n_ctx,
                ..options.context
            },
        )?;
        let mut inst = Instance {
            model,
            ctx,
            shards,
            tensors,
            weights: Vec::new(),
            files: Vec::new(),
            pos: 0,
            load_seconds: 0.0,
        };
        let probe = inst.probe_tokens()?;
        inst.weights = inst.ctx.weights_seen(&probe)?;
        inst.files = (0..inst.shards.len())
            .map(|s| {
                let own: Vec<IndexedTensor<'_>> = inst
                    .tensors
                    .iter()
                    .filter(|t| t.shard == s)
                    .map(|t| (t.name.as_str(), t.offset, t.nbytes))
                    .collect();
                MappedFile::locate(&inst.shards[s], &own, &inst.weights).map_err(|e| e.to_string())
            })
            .collect();
        inst.load_seconds = t0.elapsed().as_secs_f64();
        Ok(inst)
    }

    /// A short prompt every model can evaluate (to see which weights the graph reads).
    fn probe_tokens(&self) -> Result<Vec<Token>> {
        let t = self.model.tokenize("Hello", true, false)?;
        if t.is_empty() {
            Ok(vec![0])
        } else {
            Ok(t)
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model's files.
    pub fn shards(&self) -> &[PathBuf] {
        &self.shards
    }

    /// The tensor index.
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// Every weight the graph reads: address and the buffer holding it.
    pub fn weights(&self) -> &[WeightSeen] {
        &self.weights
    }

    /// Seconds the load took (model, context, locating the mapping).
    pub fn load_seconds(&self) -> f64 {
        self.load_seconds
    }

    /// Context length.
    pub fn n_ctx(&self) -> u32 {
        self.ctx.n_ctx()
    }

    /// Threads.
    pub fn threads(&self) -> u32 {
        self.ctx.threads()
    }

    /// Whether edits of shard `shard` reach this instance (`Err`: why not).
    pub fn editable(&self, shard: usize) -> std::result::Result<(), String> {
        match self.files.get(shard) {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("no shard {shard}")),
        }
    }

    pub(crate) fn file(&self, shard: usize) -> Result<&MappedFile> {
        match self.files.get(shard) {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => Err(InferError::NotMapped(e.clone())),
            None => Err(InferError::Invalid {
                what: "shard",
                message: format!(
                    "the model has {} files, not {}",
                    self.files.len(),
                    shard + 1
                ),
            }),
        }
    }

    pub(crate) fn file_mut(&mut self, shard: usize) -> Result<&mut MappedFile> {
        let n = self.files.len();
        match self.files.get_mut(shard) {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => Err(InferError::NotMapped(e.clone())),
            None => Err(InferError::Invalid {
                what: "shard",
                message: format!("the model has {n} files, not {}", shard + 1),
            }),
        }
    }

    /// Writes `bytes` at `offset` of shard `shard` into what this instance computes with,
    /// leaving the file as it is (private copy-on-write pages). Bytes outside the tensor data
    /// are ignored (llama.cpp read the header at load).
    pub fn write(&mut self, shard: usize, offset: u64, bytes: &[u8]) -> Result<()> {
        self.file_mut(shard)?.write(offset, bytes)
    }

    /// What this instance computes with at `offset..offset+len` of shard `shard`.
    pub fn read(&self, shard: usize, offset: u64, len: u64) -> Result<Vec<u8>> {
        Ok(self.file(shard)?.read(offset, len)?.to_vec())
    }

    /// Drops every private page: the instance computes from the file again.
    pub fn reset_overlays(&mut self) -> Result<()> {
        for f in self.files.iter_mut().flatten() {
            f.reset()?;
        }
        Ok(())
    }

    /// Memory held in private pages (bytes).
    pub fn private_bytes(&self) -> u64 {
        self.files.iter().flatten().map(|f| f.private_bytes()).sum()
    }

    /// A flag that stops the running decode when set.
    pub fn abort_flag(&self) -> Arc<AtomicBool> {
        self.ctx.abort_flag()
    }

    /// Text → tokens as a prompt (BOS where the model wants it; special-token text parsed, so
    /// a chat-formatted prompt keeps its control tokens).
    pub fn tokenize_prompt(&self, text: &str) -> Result<Vec<Token>> {
        self.model.tokenize(text, true, true)
    }

    /// The text of a token (lossy UTF-8; special tokens rendered).
    pub fn token_text(&self, token: Token) -> String {
        String::from_utf8_lossy(&self.model.piece(token, true)).into_owned()
    }

    /// Formats a chat with the model's own template, assistant turn opened.
    pub fn chat_prompt(&self, messages: &[(String, String)]) -> Result<String> {
        self.model.apply_chat_template(messages)
    }

    /// Clears the KV cache and evaluates `tokens`; then [`Instance::logits`] is the
    /// distribution of the next token.
    pub fn start(&mut self, tokens: &[Token]) -> Result<()> {
        self.ctx.clear();
        self.pos = 0;
        self.ctx.decode(tokens, 0, Outputs::Last)?;
        self.pos = tokens.len() as u32;
        Ok(())
    }

    /// Appends one token.
    pub fn advance(&mut self, token: Token) -> Result<()> {
        self.ctx.decode(&[token], self.pos, Outputs::Last)?;
        self.pos += 1;
        Ok(())
    }

    /// Tokens in the KV cache.
    pub fn pos(&self) -> u32 {
        self.pos
    }

    /// The next-token logits after the last [`Instance::start`] / [`Instance::advance`].
    pub fn logits(&self) -> Result<&[f32]> {
        self.ctx.logits(0)
    }

    /// The `k` most probable next tokens after `tokens`, with probabilities and text.
    pub fn next_token(&mut self, tokens: &[Token], k: usize) -> Result<Vec<Candidate>> {
        self.start(tokens)?;
        let l = self.logits()?;
        let mut t = sample::top_k(l, k);
        for c in &mut t {
            c.text = self.token_text(c.token);
        }
        Ok(t)
    }

    /// The next-token logits after `tokens` (a copy).
    pub fn next_logits(&mut self, tokens: &[Token]) -> Result<Vec<f32>> {
        self.start(tokens)?;
        Ok(self.logits()?.to_vec())
    }

    /// Evaluates `tokens` (at most one batch) from position 0 and calls `row(i, logits)` for
    /// every position: the distribution of token `i + 1`.
    pub fn all_logits(
        &mut self,
        tokens: &[Token],
        pos0: u32,
        row: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<()> {
        if pos0 == 0 {
            self.ctx.clear();
        }
        self.ctx.decode(tokens, pos0, Outputs::All)?;
        self.pos = pos0 + tokens.len() as u32;
        for i in 0..tokens.len() {
            row(i, self.ctx.logits(i)?);
        }
        Ok(())
    }

    /// Captures the named intermediate tensors while evaluating `tokens`.
    pub fn capture(
        &mut self,
        tokens: &[Token],
        names: &[String],
    ) -> Result<Vec<(String, crate::Captured)>> {
        self.pos = 0;
        self.ctx.capture(tokens, names)
    }

    /// Greedy (or sampled) generation after `prompt`; `on_step` sees every token and may
    /// return `false` to stop. `before_step` runs before every decode (the session syncs edits
    /// there).
    pub fn generate(
        &mut self,
        prompt: &[Token],
        options: &GenOptions,
        on_step: &mut dyn FnMut(&Step) -> bool,
    ) -> Result<Generation> {
        generate_with(self, prompt, options, &mut |_| Ok(()), on_step)
    }
}

/// A generation in progress, one token per [`Generator::step`] — so two models can generate
/// side by side, token by token.
#[derive(Debug)]
pub struct Generator {
    options: GenOptions,
    sampler: Sampler,
    utf8: Utf8Stream,
    text: String,
    tokens: Vec<Token>,
    stop: Option<StopReason>,
    prompt_tokens: usize,
    prompt_seconds: f64,
    gen_start: Instant,
}

impl Generator {
    /// Evaluates `prompt` on `inst` (after `before(inst)`) and gets ready for the first token.
    pub fn begin(
        inst: &mut Instance,
        prompt: &[Token],
        options: &GenOptions,
        before: &mut dyn FnMut(&mut Instance) -> Result<()>,
    ) -> Result<Generator> {
        if prompt.is_empty() {
            return Err(InferError::Invalid {
                what: "prompt",
                message: "the prompt has no tokens".into(),
            });
        }
        let t0 = Instant::now();
        before(inst)?;
        inst.start(prompt)?;
        Ok(Generator {
            options: options.clone(),
            sampler: Sampler::new(options.sampling),
            utf8: Utf8Stream::default(),
            text: String::new(),
            tokens: Vec::new(),
            stop: (options.max_tokens == 0).then_some(StopReason::Length),
            prompt_tokens: prompt.len(),
            prompt_seconds: t0.elapsed().as_secs_f64(),
            gen_start: Instant::now(),
        })
    }

    /// Whether the generation has ended.
    pub fn done(&self) -> bool {
        self.stop.is_some()
    }

    /// Ends it now (the caller's cancel).
    pub fn cancel(&mut self) {
        if self.stop.is_none() {
            self.stop = Some(StopReason::Canceled);
        }
    }

    /// Picks the next token and, unless the generation ends with it, evaluates it (after
    /// `before(inst)`). `None` once ended.
    pub fn step(
        &mut self,
        inst: &mut Instance,
        before: &mut dyn FnMut(&mut Instance) -> Result<()>,
    ) -> Result<Option<Step>> {
        if self.stop.is_some() {
            return Ok(None);
        }
        let (tok, prob) = {
            let l = inst.logits()?;
            let Some(i) = self.sampler.pick(l) else {
                return Err(InferError::Llama {
                    what: "pick a token",
                    message: "the logits hold NaN (did an edit put NaN or Inf in the weights?)"
                        .into(),
                });
            };
            let lse = sample::log_sum_exp(l);
            (i as Token, ((l[i] as f64) - lse).exp() as f32)
        };
        if inst.model().is_eog(tok) {
            self.stop = Some(StopReason::EndOfText);
            return Ok(None);
        }
        self.tokens.push(tok);
        let piece = inst.model().piece(tok, false);
        let new = self.utf8.push(&piece);
        let before_len = self.text.len();
        self.text.push_str(&new);
        if let Some(cut) = sample::find_stop(&self.text, &self.options.stop) {
            self.text.truncate(cut);
            self.stop = Some(StopReason::Stop);
            let new = self
                .text
                .get(before_len.min(cut)..)
                .unwrap_or("")
                .to_string();
            return Ok(Some(Step {
                token: tok,
                text: new,
                prob,
            }));
        }
        if self.tokens.len() >= self.options.max_tokens {
            self.stop = Some(StopReason::Length);
        } else if inst.pos() + 1 > inst.n_ctx() {
            self.stop = Some(StopReason::ContextFull);
        } else {
            before(inst)?;
            match inst.advance(tok) {
                Ok(()) => {}
                Err(InferError::Canceled) => self.stop = Some(StopReason::Canceled),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(Step {
            token: tok,
            text: new,
            prob,
        }))
    }

    /// The result.
    pub fn finish(mut self) -> Generation {
        let stop = self.stop.unwrap_or(StopReason::Canceled);
        if stop != StopReason::Stop {
            self.text.push_str(&self.utf8.finish());
        }
        Generation {
            text: self.text,
            tokens: self.tokens,
            prompt_tokens: self.prompt_tokens,
            stop,
            prompt_seconds: self.prompt_seconds,
            gen_seconds: self.gen_start.elapsed().as_secs_f64(),
        }
    }
}

/// Generation with a hook run before each decode (`before(instance)`), for callers that must
/// bring the weights up to date first.
pub fn generate_with(
    inst: &mut Instance,
    prompt: &[Token],
    options: &GenOptions,
    before: &mut dyn FnMut(&mut Instance) -> Result<()>,
    on_step: &mut dyn FnMut(&Step) -> bool,
) -> Result<Generation> {
    let mut g = Generator::begin(inst, prompt, options, before)?;
    while let Some(step) = g.step(inst, before)? {
        if !on_step(&step) {
            g.cancel();
        }
    }
    Ok(g.finish())
}
