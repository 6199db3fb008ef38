//! Which tensors an external llama.cpp with default settings copies at load, told by the
//! embedded llama.cpp itself: load the model the default way (repacking on), run one token,
//! and read which backend buffer holds every weight the graph reads. A weight in a
//! `CPU_REPACK` (or any buffer but the mapped file) is a copy: an edit of the file does not
//! reach it until the model is loaded again. llama.cpp's own log line "repack tensor NAME
//! with TYPE" is kept as evidence.
//!
//! The answer depends on the llama.cpp build (version and the CPU features it was compiled
//! for: see [`crate::build_info`]); it is exact for this engine, and for another llama.cpp
//! of the same version built for the same instruction set on this CPU.

use std::path::Path;
use std::time::Instant;

use crate::error::Result;
use crate::instance::{Instance, InstanceOptions};
use crate::llama::{capture_log, ContextOptions, LoadOptions};
use crate::overlay::MAPPED_BUFFER;

/// One tensor and where default llama.cpp keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TensorBuffer {
    /// Tensor name.
    pub name: String,
    /// Type name.
    pub ty: String,
    /// The backend buffer holding it under default settings (`CPU_Mapped`: the file itself;
    /// `CPU_REPACK`: a repacked copy), or `None` when the graph never reads it.
    pub buffer: Option<String>,
    /// Whether it is a copy (edits of the file reach it only after a reload).
    pub copied: bool,
}

/// The answer for one model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Liveness {
    /// Every tensor of the model, in index order.
    pub tensors: Vec<TensorBuffer>,
    /// llama.cpp's "repack tensor" log lines during the load.
    pub repack_log: Vec<String>,
    /// The CPU features the embedded llama.cpp uses (its system info line).
    pub system_info: String,
    /// Seconds the probe took.
    pub seconds: f64,
}

impl Liveness {
    /// Names of the tensors copied at load.
    pub fn copied(&self) -> impl Iterator<Item = &TensorBuffer> {
        self.tensors.iter().filter(|t| t.copied)
    }
}

/// Loads `path` as an external llama.cpp does by default (mmap, repacking on, CPU) and
/// reports where each tensor lives. Costs one load (repacked tensors are copied into RAM, as
/// they would be by llama-server) and one decoded token.
pub fn default_load_buffers(path: &Path) -> Result<Liveness> {
    let t0 = Instant::now();
    let options = InstanceOptions {
        load: LoadOptions {
            repack: true,
            gpu_layers: 0,
        },
        context: ContextOptions {
            n_ctx: 64,
            n_batch: 16,
            threads: 0,
        },
    };
    let (inst, log) = capture_log(|| Instance::load(path, options, &mut |_| true));
    let inst = inst?;
    let repack_log: Vec<String> = log
        .lines()
        .filter(|l| l.contains("repack tensor"))
        .map(|l| l.trim().to_string())
        .collect();
    let tensors = inst
        .tensors()
        .iter()
        .map(|t| {
            let buffer = inst
                .weights()
                .iter()
                .find(|w| w.name == t.name)
                .map(|w| w.buffer.clone());
            let copied = buffer.as_deref().is_some_and(|b| b != MAPPED_BUFFER);
            TensorBuffer {
                name: t.name.clone(),
                ty: t.ty.clone(),
                buffer,
                copied,
            }
        })
        .collect();
    Ok(Liveness {
        tensors,
        repack_log,
        system_info: crate::llama::system_info(),
        seconds: t0.elapsed().as_secs_f64(),
    })
}
