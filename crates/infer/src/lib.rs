//! The embedded inference engine: llama.cpp running the model the studio is editing, so that
//! "what did my edit do" is answered in tokens and probabilities.
//!
//! - [`Instance`]: a model loaded mapped with repacking off (llama.cpp's `--no-repack`, model
//!   parameter `use_extra_bufts = false`), so its CPU backend computes straight from the mapped
//!   file for every tensor type; greedy (or seeded) generation, next-token top-k, logits,
//!   tokenization, the model's own chat template.
//! - [`SessionEngine`]: the edited and the original model of an edit session
//!   ([`hotpatch_core::Engine`]), each edit reaching them with no reload in both modes (see
//!   [`session`] for how and what it costs).
//! - [`evaluate`]: perplexity, KL divergence (mean, p99), top-1 agreement of two models over a
//!   text, with the positions where they disagree most.
//! - [`default_load_buffers`]: which tensors an external llama.cpp with default settings copies
//!   at load (repacks) on this machine, from llama.cpp's own buffer assignment.
//! - [`host`]: one engine per session shared by an app's callers ([`EngineHost`]), the
//!   side-by-side run ([`run_pair`]), the behaviour diff of the session ([`behaviour_diff`]) and
//!   the built-in upstream's backend ([`HostBackend`]).
//! - [`mean_residual`] / [`direction`]: residual-stream activations through `cb_eval`.
//!
//! llama.cpp is vendored and built by `llama-cpp-sys-2` (cmake; CPU by default; GPU backends
//! are the `cuda`, `vulkan`, `metal`, `rocm` features, off by default). No tauri, no tokio.
//!
//! ```no_run
//! use hotpatch_infer::{GenOptions, Instance, InstanceOptions};
//! let mut m = Instance::load("model.gguf".as_ref(), InstanceOptions::default(), &mut |_| true)?;
//! let prompt = m.tokenize_prompt("The capital of France is")?;
//! let g = m.generate(&prompt, &GenOptions { max_tokens: 8, ..Default::default() }, &mut |_| true)?;
//! println!("{}", g.text);
//! # Ok::<(), hotpatch_infer::InferError>(())
//! ```

mod activations;
mod backend;
mod error;
mod eval;
pub mod host;
mod instance;
mod liveness;
mod llama;
mod overlay;
mod platform;
mod sample;
pub mod session;

pub use activations::{direction, mean_residual, Direction, Pool};
pub use backend::{Backend, Generate};
pub use error::{InferError, Result};
pub use eval::{evaluate, quantile, EvalOptions, EvalReport, TokenDiff, TokenScore};
pub use host::{
    behaviour_diff, eval_text, read_text, run_pair, studio_options, EngineHost, HostBackend,
    RunReport, RunRequest, SessionRef, SessionSource,
};
pub use instance::{
    generate_with, tensor_index, GenOptions, Generation, Generator, Instance, InstanceOptions,
    Step, StopReason, TensorEntry,
};
pub use liveness::{default_load_buffers, Liveness, TensorBuffer};
pub use llama::{
    default_threads, system_info, Captured, ContextOptions, LoadOptions, Outputs, Token, WeightSeen,
};
pub use overlay::MAPPED_BUFFER;
pub use sample::{argmax, top_k, Candidate, Sampler, Sampling, Utf8Stream};
pub use session::{EngineStatus, NextComparison, SessionEngine, Side, SyncReport, TokenShift};

/// The bundled evaluation text (public domain: passages of the United States Declaration of
/// Independence, 1776; see `crates/infer/data/README.md`).
pub const SAMPLE_TEXT: &str = include_str!("../data/sample.txt");

/// What this build of the engine is: llama.cpp's CPU feature line and the build's settings.
pub fn build_info() -> String {
    format!(
        "llama.cpp via llama-cpp-sys-2 0.1.161; {}",
        system_info().trim()
    )
}
