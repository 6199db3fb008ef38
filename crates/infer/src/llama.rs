//! The one module that talks to llama.cpp (through `llama-cpp-sys-2`, the bindgen layer under
//! `llama-cpp-2`): model loading, contexts, decoding, logits, the vocabulary, chat templates,
//! the log and graph-evaluation callbacks. Everything above it is safe Rust.
//!
//! Why the `-sys` crate and not `llama-cpp-2`'s safe wrapper: the wrapper hides three things
//! this crate needs — the model parameter `use_extra_bufts` (llama.cpp's `--no-repack`, without
//! which the CPU backend copies some tensor types into its own buffers and no edit of them is
//! ever seen), the graph-evaluation callback `cb_eval` (tensor addresses, activations), and the
//! raw model pointer. The functions used here are llama.h's public C API.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use llama_cpp_sys_2 as sys;
use parking_lot::Mutex;

use crate::error::{InferError, Result};

/// A token id of the model's vocabulary.
pub type Token = i32;

// ----- process-wide: backend and log -------------------------------------------------------

struct LogState {
    /// Lines captured while a probe runs (see [`capture_log`]).
    capture: Option<String>,
    /// Echo llama.cpp's log to stderr (`HOTPATCH_LLAMA_LOG=1`); errors are always echoed.
    echo: bool,
}

static LOG: Mutex<LogState> = Mutex::new(LogState {
    capture: None,
    echo: false,
});
/// Serializes the runs that capture the log (there is one log for the process).
static CAPTURE: Mutex<()> = Mutex::new(());
static INIT: Once = Once::new();

unsafe extern "C" fn log_callback(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for the duration of the call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let mut st = LOG.lock();
    if let Some(buf) = &mut st.capture {
        buf.push_str(&text);
    }
    if st.echo || level == sys::GGML_LOG_LEVEL_ERROR {
        eprint!("llama.cpp: {text}");
    }
}

/// Initializes llama.cpp once per process (backend, log callback).
pub(crate) fn init() {
    INIT.call_once(|| {
        LOG.lock().echo = std::env::var_os("HOTPATCH_LLAMA_LOG").is_some_and(|v| v != "0");
        // SAFETY: `log_callback` is a valid `extern "C"` function for the whole process; the
        // backend is initialized once, before any model is loaded.
        unsafe {
            sys::llama_log_set(Some(log_callback), std::ptr::null_mut());
            sys::llama_backend_init();
        }
    });
}

/// Runs `f` while capturing everything llama.cpp logs (debug level included); returns both.
pub(crate) fn capture_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    init();
    let _one = CAPTURE.lock();
    LOG.lock().capture = Some(String::new());
    let out = f();
    let text = LOG.lock().capture.take().unwrap_or_default();
    (out, text)
}

/// llama.cpp's own description of the CPU features it was built with.
pub fn system_info() -> String {
    init();
    // SAFETY: returns a pointer to a static NUL-terminated string.
    let p = unsafe { sys::llama_print_system_info() };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, static.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

// ----- models ------------------------------------------------------------------------------

/// How to load a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// Let the CPU backend repack tensors into its own buffers (`use_extra_bufts`, llama.cpp's
    /// default). Off (`--no-repack`) keeps every CPU tensor in the mapped file, so every edit
    /// is seen; on is what an external llama.cpp does by default.
    pub repack: bool,
    /// Layers to offload to a GPU backend (0: CPU only). Offloaded weights are copies.
    pub gpu_layers: i32,
}

/// A loaded model (llama.cpp `llama_model`), memory-mapped from its file.
pub struct Model {
    raw: NonNull<sys::llama_model>,
    vocab: NonNull<sys::llama_vocab>,
    path: PathBuf,
    n_vocab: usize,
    options: LoadOptions,
}

// SAFETY: a llama_model is immutable after loading; llama.cpp itself creates contexts of one
// model from several threads (llama-server). Every use here is a read (vocab, metadata) or
// context creation; the weights it points to are changed only through `crate::overlay` while
// no context of this model computes (guarded by the owner's lock).
unsafe impl Send for Model {}
// SAFETY: see `Send`.
unsafe impl Sync for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: `raw` came from llama_model_load_from_file and is freed once, here; every
        // Context holds an `Arc<Model>`, so none outlives it.
        unsafe { sys::llama_model_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("n_vocab", &self.n_vocab)
            .field("options", &self.options)
            .finish()
    }
}

struct ProgressCtx<'a> {
    f: &'a mut dyn FnMut(f32) -> bool,
}

unsafe extern "C" fn progress_trampoline(p: f32, ud: *mut c_void) -> bool {
    // SAFETY: `ud` is the `ProgressCtx` that `Model::load` keeps alive across the load call.
    let ctx = unsafe { &mut *(ud as *mut ProgressCtx<'_>) };
    (ctx.f)(p)
}

impl Model {
    /// Loads `path` mapped (mmap), CPU only unless `options.gpu_layers` says otherwise.
    /// `progress` gets 0..1 and may return `false` to cancel.
    pub fn load(
        path: &Path,
        options: LoadOptions,
        progress: &mut dyn FnMut(f32) -> bool,
    ) -> Result<Model> {
        init();
        let meta = std::fs::metadata(path).map_err(|e| InferError::io("open", path, e))?;
        if !meta.is_file() {
            return Err(InferError::BadModel {
                path: path.to_path_buf(),
                message: "not a file".into(),
            });
        }
        let cpath = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
            InferError::BadModel {
                path: path.to_path_buf(),
                message: "path contains a NUL byte".into(),
            }
        })?;
        let canceled = AtomicBool::new(false);
        let mut wrapped = |p: f32| {
            let go = progress(p);
            if !go {
                canceled.store(true, Ordering::SeqCst);
            }
            go
        };
        let mut ctx = ProgressCtx { f: &mut wrapped };
        // SAFETY: default params are plain data; we then set documented fields. The progress
        // user data points at `ctx`, alive until llama_model_load_from_file returns.
        let raw = unsafe {
            let mut p = sys::llama_model_default_params();
            p.load_mode = sys::LLAMA_LOAD_MODE_MMAP;
            p.use_extra_bufts = options.repack;
            p.n_gpu_layers = options.gpu_layers;
            p.check_tensors = false;
            p.progress_callback = Some(progress_trampoline);
            p.progress_callback_user_data = &mut ctx as *mut ProgressCtx<'_> as *mut c_void;
            sys::llama_model_load_from_file(cpath.as_ptr(), p)
        };
        let Some(raw) = NonNull::new(raw) else {
            if canceled.load(Ordering::SeqCst) {
                return Err(InferError::Canceled);
            }
            return Err(InferError::BadModel {
                path: path.to_path_buf(),
                message: "llama.cpp refused to load it (unsupported architecture, truncated or \
                          corrupt file; run with HOTPATCH_LLAMA_LOG=1 for llama.cpp's reason)"
                    .into(),
            });
        };
        // SAFETY: `raw` is a valid model; the vocab lives as long as the model.
        let vocab = unsafe { sys::llama_model_get_vocab(raw.as_ptr()) };
        let Some(vocab) = NonNull::new(vocab as *mut sys::llama_vocab) else {
            // SAFETY: valid model, freed once on this error path.
            unsafe { sys::llama_model_free(raw.as_ptr()) };
            return Err(InferError::BadModel {
                path: path.to_path_buf(),
                message: "the model has no vocabulary".into(),
            });
        };
        // SAFETY: valid vocab.
        let n = unsafe { sys::llama_vocab_n_tokens(vocab.as_ptr()) };
        Ok(Model {
            raw,
            vocab,
            path: path.to_path_buf(),
            n_vocab: usize::try_from(n).unwrap_or(0),
            options,
        })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How it was loaded.
    pub fn options(&self) -> LoadOptions {
        self.options
    }

    /// Vocabulary size (the length of a logits row).
    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    /// The context length the model was trained with.
    pub fn n_ctx_train(&self) -> u32 {
        // SAFETY: valid model.
        let n = unsafe { sys::llama_model_n_ctx_train(self.raw.as_ptr()) };
        u32::try_from(n).unwrap_or(0)
    }

    /// Number of layers (blocks).
    pub fn n_layer(&self) -> u32 {
        // SAFETY: valid model.
        let n = unsafe { sys::llama_model_n_layer(self.raw.as_ptr()) };
        u32::try_from(n).unwrap_or(0)
    }

    /// Width of the residual stream.
    pub fn n_embd(&self) -> usize {
        // SAFETY: valid model.
        let n = unsafe { sys::llama_model_n_embd(self.raw.as_ptr()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// llama.cpp's one-line description ("llama 135M Q4_1").
    pub fn description(&self) -> String {
        let mut buf = vec![0u8; 256];
        // SAFETY: valid model; the buffer and its length match.
        let n = unsafe {
            sys::llama_model_desc(
                self.raw.as_ptr(),
                buf.as_mut_ptr() as *mut c_char,
                buf.len(),
            )
        };
        buf.truncate(usize::try_from(n).unwrap_or(0).min(255));
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Text → tokens. `add_special` adds BOS/EOS where the model asks for them;
    /// `parse_special` turns special-token text (`<|im_start|>`) into those tokens.
    pub fn tokenize(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<Token>> {
        let len = i32::try_from(text.len()).map_err(|_| InferError::Invalid {
            what: "text",
            message: format!("{} bytes is too long to tokenize", text.len()),
        })?;
        let mut out: Vec<Token> = vec![0; text.len() + 8];
        for _ in 0..2 {
            let cap = i32::try_from(out.len()).unwrap_or(i32::MAX);
            // SAFETY: valid vocab; `text` is `len` bytes; `out` holds `cap` tokens.
            let n = unsafe {
                sys::llama_tokenize(
                    self.vocab.as_ptr(),
                    text.as_ptr() as *const c_char,
                    len,
                    out.as_mut_ptr(),
                    cap,
                    add_special,
                    parse_special,
                )
            };
            if n >= 0 {
                out.truncate(n as usize);
                return Ok(out);
            }
            if n == i32::MIN {
                break;
            }
            out.resize(n.unsigned_abs() as usize, 0);
        }
        Err(InferError::Invalid {
            what: "text",
            message: "llama.cpp could not tokenize it".into(),
        })
    }

    /// The bytes of one token (`special`: render control tokens such as `<|im_end|>`).
    pub fn piece(&self, token: Token, special: bool) -> Vec<u8> {
        let mut buf = vec![0u8; 32];
        for _ in 0..2 {
            let cap = i32::try_from(buf.len()).unwrap_or(i32::MAX);
            // SAFETY: valid vocab; the buffer holds `cap` bytes.
            let n = unsafe {
                sys::llama_token_to_piece(
                    self.vocab.as_ptr(),
                    token,
                    buf.as_mut_ptr() as *mut c_char,
                    cap,
                    0,
                    special,
                )
            };
            if n >= 0 {
                buf.truncate(n as usize);
                return buf;
            }
            buf.resize(n.unsigned_abs() as usize, 0);
        }
        Vec::new()
    }

    /// Whether `token` ends a generation (EOS, EOT, `<|im_end|>`...).
    pub fn is_eog(&self, token: Token) -> bool {
        // SAFETY: valid vocab; llama.cpp checks the id.
        unsafe { sys::llama_vocab_is_eog(self.vocab.as_ptr(), token) }
    }

    /// Whether `token` is a valid id of this vocabulary.
    pub fn valid_token(&self, token: Token) -> bool {
        token >= 0 && (token as usize) < self.n_vocab
    }

    /// The chat template stored in the model (`tokenizer.chat_template`), if any.
    pub fn chat_template(&self) -> Option<String> {
        // SAFETY: valid model; a NULL name asks for the default template; the returned string
        // lives as long as the model.
        let p = unsafe { sys::llama_model_chat_template(self.raw.as_ptr(), std::ptr::null()) };
        if p.is_null() {
            return None;
        }
        // SAFETY: non-null NUL-terminated string owned by the model.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    /// Formats a conversation with the model's own chat template (llama.cpp's template
    /// engine, which recognizes the common template families), ending with the assistant's
    /// turn opened.
    pub fn apply_chat_template(&self, messages: &[(String, String)]) -> Result<String> {
        let template = self.chat_template().ok_or_else(|| InferError::Invalid {
            what: "chat",
            message: format!(
                "{} has no chat template (tokenizer.chat_template); use a plain prompt",
                self.path.display()
            ),
        })?;
        let tmpl = CString::new(template).map_err(|_| InferError::Invalid {
            what: "chat template",
            message: "contains a NUL byte".into(),
        })?;
        let owned: Vec<(CString, CString)> = messages
            .iter()
            .map(|(r, c)| {
                Ok((
                    CString::new(r.as_str()).map_err(|_| nul("role"))?,
                    CString::new(c.as_str()).map_err(|_| nul("message"))?,
                ))
            })
            .collect::<Result<_>>()?;
        let msgs: Vec<sys::llama_chat_message> = owned
            .iter()
            .map(|(r, c)| sys::llama_chat_message {
                role: r.as_ptr(),
                content: c.as_ptr(),
            })
            .collect();
        let total: usize = messages.iter().map(|(r, c)| r.len() + c.len()).sum();
        let mut buf = vec![0u8; total * 2 + 256];
        for _ in 0..2 {
            let cap = i32::try_from(buf.len()).unwrap_or(i32::MAX);
            // SAFETY: template and messages are NUL-terminated strings alive for the call;
            // the buffer holds `cap` bytes.
            let n = unsafe {
                sys::llama_chat_apply_template(
                    tmpl.as_ptr(),
                    msgs.as_ptr(),
                    msgs.len(),
                    true,
                    buf.as_mut_ptr() as *mut c_char,
                    cap,
                )
            };
            if n < 0 {
                return Err(InferError::Invalid {
                    what: "chat template",
                    message: "llama.cpp does not recognize this model's chat template; use a \
                              plain prompt"
                        .into(),
                });
            }
            let n = n as usize;
            if n <= buf.len() {
                buf.truncate(n);
                return String::from_utf8(buf).map_err(|_| InferError::Invalid {
                    what: "chat template",
                    message: "produced invalid UTF-8".into(),
                });
            }
            buf.resize(n, 0);
        }
        Err(InferError::Invalid {
            what: "chat template",
            message: "output kept growing".into(),
        })
    }
}

fn nul(what: &'static str) -> InferError {
    InferError::Invalid {
        what,
        message: "contains a NUL byte".into(),
    }
}

// ----- graph evaluation callback -----------------------------------------------------------

/// A weight tensor as llama.cpp computes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightSeen {
    /// Tensor name (as in the GGUF file).
    pub name: String,
    /// Address of its data.
    pub data: usize,
    /// Bytes.
    pub nbytes: usize,
    /// Name of the backend buffer holding it: `CPU_Mapped` (the mapped file), `CPU_REPACK`
    /// (llama.cpp's repacked copy), `CPU` (a plain copy), a GPU buffer...
    pub buffer: String,
}

/// An intermediate result captured during a decode: `ne0` values per row, `rows` rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// Values per row (the innermost dimension).
    pub ne0: usize,
    /// Rows (tokens, for residual-stream tensors).
    pub rows: usize,
    /// Row-major f32 values.
    pub data: Vec<f32>,
}

#[derive(Default)]
enum CbMode {
    #[default]
    Off,
    Weights(Vec<WeightSeen>),
    Capture {
        want: Vec<String>,
        got: Vec<(String, Captured)>,
    },
}

#[derive(Default)]
struct CbState {
    mode: CbMode,
}

fn tensor_name(t: &sys::ggml_tensor) -> String {
    let bytes: Vec<u8> = t
        .name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

unsafe extern "C" fn eval_callback(t: *mut sys::ggml_tensor, ask: bool, ud: *mut c_void) -> bool {
    if t.is_null() || ud.is_null() {
        return !ask;
    }
    // SAFETY: `ud` is the context's boxed CbState; ggml calls this on the thread running
    // llama_decode, which holds `&mut Context`, so no other reference to it is live.
    let st = unsafe { &mut *(ud as *mut CbState) };
    // SAFETY: ggml passes a valid graph node.
    let node = unsafe { &*t };
    match &mut st.mode {
        CbMode::Off => !ask,
        CbMode::Weights(seen) => {
            if ask {
                for &src in &node.src {
                    if src.is_null() {
                        continue;
                    }
                    // SAFETY: non-null sources of a live graph node are valid tensors.
                    let s = unsafe { &*src };
                    if s.op != sys::GGML_OP_NONE || s.buffer.is_null() || s.data.is_null() {
                        continue;
                    }
                    // SAFETY: a valid buffer of a valid tensor.
                    let usage = unsafe { sys::ggml_backend_buffer_get_usage(s.buffer) };
                    if usage != sys::GGML_BACKEND_BUFFER_USAGE_WEIGHTS {
                        continue;
                    }
                    let name = tensor_name(s);
                    if seen.iter().any(|w| w.name == name) {
                        continue;
                    }
                    // SAFETY: valid buffer; the name is a static or buffer-owned C string.
                    let bname = unsafe {
                        let p = sys::ggml_backend_buffer_name(s.buffer);
                        if p.is_null() {
                            String::new()
                        } else {
                            CStr::from_ptr(p).to_string_lossy().into_owned()
                        }
                    };
                    // SAFETY: valid tensor.
                    let nbytes = unsafe { sys::ggml_nbytes(src) };
                    seen.push(WeightSeen {
                        name,
                        data: s.data as usize,
                        nbytes,
                        buffer: bname,
                    });
                }
            }
            !ask
        }
        CbMode::Capture { want, got } => {
            let name = tensor_name(node);
            if ask {
                return want.contains(&name);
            }
            if node.type_ == sys::GGML_TYPE_F32 && !node.buffer.is_null() {
                let ne0 = usize::try_from(node.ne[0]).unwrap_or(0);
                // SAFETY: valid tensor.
                let n = unsafe { sys::ggml_nelements(t) };
                let n = usize::try_from(n).unwrap_or(0);
                // SAFETY: valid tensor.
                let contiguous = unsafe { sys::ggml_is_contiguous(t) };
                if ne0 > 0 && n % ne0 == 0 && contiguous {
                    let mut data = vec![0f32; n];
                    // SAFETY: the tensor holds `n` contiguous f32 values (checked above); the
                    // destination has room for exactly those bytes.
                    unsafe {
                        sys::ggml_backend_tensor_get(
                            t,
                            data.as_mut_ptr() as *mut c_void,
                            0,
                            n * std::mem::size_of::<f32>(),
                        )
                    };
                    got.push((
                        name,
                        Captured {
                            ne0,
                            rows: n / ne0,
                            data,
                        },
                    ));
                }
            }
            true
        }
    }
}

unsafe extern "C" fn abort_callback(ud: *mut c_void) -> bool {
    if ud.is_null() {
        return false;
    }
    // SAFETY: `ud` is the context's `Arc<AtomicBool>` payload, alive as long as the context.
    let flag = unsafe { &*(ud as *const AtomicBool) };
    flag.load(Ordering::Relaxed)
}

// ----- contexts ----------------------------------------------------------------------------

/// How to create a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextOptions {
    /// Context length in tokens (KV cache size).
    pub n_ctx: u32,
    /// Tokens per decode call (prompt evaluation batch).
    pub n_batch: u32,
    /// Threads (0: every available core).
    pub threads: u32,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            n_ctx: 2048,
            n_batch: 512,
            threads: 0,
        }
    }
}

/// The number of threads llama.cpp uses when asked for 0.
pub fn default_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Which positions of a decoded batch produce logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outputs {
    /// Only the last token (generation).
    Last,
    /// Every token (perplexity, KL).
    All,
}

/// A llama.cpp context: KV cache and compute buffers for one sequence.
pub struct Context {
    raw: NonNull<sys::llama_context>,
    batch: sys::llama_batch,
    model: Arc<Model>,
    n_ctx: u32,
    n_batch: u32,
    threads: u32,
    cb: Box<CbState>,
    abort: Arc<AtomicBool>,
    /// Output positions of the last decode, in batch order.
    last_outputs: usize,
}

// SAFETY: a llama_context may be used from any thread, one at a time; `Context` methods take
// `&mut self` for everything that computes, and the callback state is owned by it.
unsafe impl Send for Context {}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: both were created in `Context::new` and are freed once, here; the model
        // (kept alive by `self.model`) outlives them.
        unsafe {
            sys::llama_batch_free(self.batch);
            sys::llama_free(self.raw.as_ptr());
        }
    }
}

impl Context {
    /// A context over `model`.
    pub fn new(model: Arc<Model>, options: ContextOptions) -> Result<Context> {
        let n_ctx = options.n_ctx.clamp(16, 1 << 20);
        let n_batch = options.n_batch.clamp(1, n_ctx);
        let threads = if options.threads == 0 {
            default_threads()
        } else {
            options.threads
        };
        let mut cb = Box::<CbState>::default();
        let abort = Arc::new(AtomicBool::new(false));
        // SAFETY: default params are plain data; the callbacks' user data point at boxed /
        // Arc'd state owned by the returned Context, which frees the llama context first.
        let raw = unsafe {
            let mut p = sys::llama_context_default_params();
            p.n_ctx = n_ctx;
            p.n_batch = n_batch;
            p.n_ubatch = n_batch;
            p.n_seq_max = 1;
            p.n_threads = threads as i32;
            p.n_threads_batch = threads as i32;
            p.no_perf = true;
            p.cb_eval = Some(eval_callback);
            p.cb_eval_user_data = &mut *cb as *mut CbState as *mut c_void;
            p.abort_callback = Some(abort_callback);
            p.abort_callback_data = Arc::as_ptr(&abort) as *mut c_void;
            sys::llama_init_from_model(model.raw.as_ptr(), p)
        };
        let raw = NonNull::new(raw).ok_or_else(|| InferError::Llama {
            what: "create a context",
            message: format!("llama_init_from_model failed (n_ctx {n_ctx}): out of memory?"),
        })?;
        // SAFETY: plain allocation of a token batch of `n_batch` entries, one sequence.
        let batch = unsafe { sys::llama_batch_init(n_batch as i32, 0, 1) };
        Ok(Context {
            raw,
            batch,
            model,
            n_ctx,
            n_batch,
            threads,
            cb,
            abort,
            last_outputs: 0,
        })
    }

    /// Context length.
    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    /// Threads used.
    pub fn threads(&self) -> u32 {
        self.threads
    }

    /// A flag that, once set, makes the running decode stop (it returns
    /// [`InferError::Canceled`]); cleared at the start of each [`Context::decode`].
    pub fn abort_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.abort)
    }

    /// Forgets every token (clears the KV cache).
    pub fn clear(&mut self) {
        // SAFETY: valid context; its memory handle is valid while it lives.
        unsafe {
            let mem = sys::llama_get_memory(self.raw.as_ptr());
            if !mem.is_null() {
                sys::llama_memory_clear(mem, true);
            }
        }
    }

    /// Evaluates `tokens` at positions `pos0..` (in batches of `n_batch`). With
    /// [`Outputs::All`] the whole slice must fit one batch, and every position has logits.
    pub fn decode(&mut self, tokens: &[Token], pos0: u32, outputs: Outputs) -> Result<()> {
        if tokens.is_empty() {
            return Err(InferError::Invalid {
                what: "tokens",
                message: "nothing to evaluate".into(),
            });
        }
        let end = pos0 as usize + tokens.len();
        if end > self.n_ctx as usize {
            return Err(InferError::ContextFull {
                needed: end,
                n_ctx: self.n_ctx as usize,
            });
        }
        if outputs == Outputs::All && tokens.len() > self.n_batch as usize {
            return Err(InferError::Invalid {
                what: "tokens",
                message: format!(
                    "{} tokens with every logit exceed the batch of {}",
                    tokens.len(),
                    self.n_batch
                ),
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| !self.model.valid_token(t)) {
            return Err(InferError::Invalid {
                what: "tokens",
                message: format!(
                    "token id {bad} is outside the vocabulary of {}",
                    self.model.n_vocab
                ),
            });
        }
        self.abort.store(false, Ordering::SeqCst);
        let chunks = tokens.chunks(self.n_batch as usize);
        let n_chunks = chunks.len();
        let mut pos = pos0 as i32;
        for (ci, chunk) in chunks.enumerate() {
            let last_chunk = ci + 1 == n_chunks;
            // SAFETY: the batch was allocated for `n_batch` tokens with one sequence id each;
            // `chunk.len() <= n_batch`.
            unsafe {
                let b = &mut self.batch;
                for (i, &t) in chunk.iter().enumerate() {
                    *b.token.add(i) = t;
                    *b.pos.add(i) = pos + i as i32;
                    *b.n_seq_id.add(i) = 1;
                    *(*b.seq_id.add(i)) = 0;
                    let out = match outputs {
                        Outputs::All => true,
                        Outputs::Last => last_chunk && i + 1 == chunk.len(),
                    };
                    *b.logits.add(i) = out as i8;
                }
                b.n_tokens = chunk.len() as i32;
            }
            // SAFETY: valid context and a filled batch.
            let rc = unsafe { sys::llama_decode(self.raw.as_ptr(), self.batch) };
            match rc {
                0 => {}
                2 => {
                    self.clear();
                    return Err(InferError::Canceled);
                }
                1 => {
                    return Err(InferError::ContextFull {
                        needed: end,
                        n_ctx: self.n_ctx as usize,
                    })
                }
                _ => {
                    return Err(InferError::Llama {
                        what: "decode",
                        message: format!("llama_decode returned {rc}"),
                    })
                }
            }
            pos += chunk.len() as i32;
        }
        self.last_outputs = match outputs {
            Outputs::All => tokens.len(),
            Outputs::Last => 1,
        };
        Ok(())
    }

    /// The logits row of output `i` of the last decode (0-based in batch order; with
    /// [`Outputs::Last`] there is one, `0`).
    pub fn logits(&self, i: usize) -> Result<&[f32]> {
        if i >= self.last_outputs {
            return Err(InferError::Invalid {
                what: "logits",
                message: format!("output {i} of {} does not exist", self.last_outputs),
            });
        }
        let idx = if self.last_outputs == 1 { -1 } else { i as i32 };
        // SAFETY: valid context; llama.cpp returns a row of n_vocab floats for a position that
        // had output enabled in the last decode (checked above), or NULL.
        let p = unsafe { sys::llama_get_logits_ith(self.raw.as_ptr(), idx) };
        if p.is_null() {
            return Err(InferError::Llama {
                what: "logits",
                message: format!("no logits for output {i}"),
            });
        }
        // SAFETY: a row of n_vocab floats owned by the context, valid until the next decode
        // (which needs `&mut self`, so the borrow ends first).
        Ok(unsafe { std::slice::from_raw_parts(p, self.model.n_vocab) })
    }

    /// Runs one decode of `tokens` from position 0 while recording every weight tensor the
    /// graph reads: its address and the buffer holding it. Clears the KV cache before and after.
    pub fn weights_seen(&mut self, tokens: &[Token]) -> Result<Vec<WeightSeen>> {
        self.clear();
        self.cb.mode = CbMode::Weights(Vec::new());
        let r = self.decode(tokens, 0, Outputs::Last);
        let mode = std::mem::take(&mut self.cb.mode);
        self.clear();
        r?;
        match mode {
            CbMode::Weights(v) => Ok(v),
            _ => Ok(Vec::new()),
        }
    }

    /// Decodes `tokens` from position 0 and returns the named intermediate tensors
    /// (llama.cpp graph names, e.g. `l_out-5` for the residual stream after block 5).
    pub fn capture(
        &mut self,
        tokens: &[Token],
        names: &[String],
    ) -> Result<Vec<(String, Captured)>> {
        self.clear();
        self.cb.mode = CbMode::Capture {
            want: names.to_vec(),
            got: Vec::new(),
        };
        // With every position an output, llama.cpp keeps every row in the last block too
        // (with only the last, it drops the other rows before the last block's output).
        let outputs = if tokens.len() <= self.n_batch as usize {
            Outputs::All
        } else {
            Outputs::Last
        };
        let r = self.decode(tokens, 0, outputs);
        let mode = std::mem::take(&mut self.cb.mode);
        self.clear();
        r?;
        match mode {
            CbMode::Capture { got, .. } => Ok(got),
            _ => Ok(Vec::new()),
        }
    }
}
