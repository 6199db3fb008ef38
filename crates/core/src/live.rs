//! Which tensors a running llama.cpp sees when the model file is edited live.
//!
//! A live edit changes the page cache of the model file. llama.cpp (CPU backend, `use_mmap`)
//! computes straight from the mapped file for most tensors, so it sees the edit at the next
//! token with no reload. But the CPU backend *repacks* some types into its own interleaved
//! buffers at load (the "extra buffer types", `ggml_backend_cpu_repack_buffer_type`); those
//! tensors are copies and ignore later edits until the model is loaded again. GPU-offloaded
//! weights are copies too (this table is about CPU inference).
//!
//! # Evidence
//! Measured with `tests/oracle/hold.mjs` (node-llama-cpp 3.22.1, its prebuilt linux-x64 CPU
//! llama.cpp, `useMmap: true`, `gpuLayers: 0`) on an x86-64 AMD EPYC with AVX2 (no AVX-512),
//! over the demo model (`scripts/make_demo_model.py`): for every tensor in turn, its blocks were
//! written in reverse order through a shared writable map while the model stayed loaded, then
//! greedy generation ran again and the bytes were restored
//! (test `live_llama::visibility_per_type_matches_the_table`, which re-checks this table).
//! - Generation changed (Live) for every tensor of type F32, F16, BF16, Q8_0 (all shapes,
//!   including `token_embd` and `output`), Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, Q6_K.
//! - Generation did not change (CopiedAtLoad) for every Q4_0 and Q4_K tensor: these are
//!   repacked on AVX2.
//! - Not measured: every other type ([`LiveVisibility::Unknown`]). The CPU library also holds
//!   repack code for IQ4_NL, MXFP4 and (other instruction sets) Q8_0, so which of them is
//!   copied depends on the CPU; treat them as possibly copied.
//!
//! node-llama-cpp 3.22.1 does not expose llama.cpp's `use_extra_bufts` model parameter (the
//! CLI's `--no-repack`): its addon (`llama/addon/AddonModel.cpp`) sets load mode, GPU layers,
//! `check_tensors`, lazy mode and `no_alloc`, never `use_extra_bufts`. With llama.cpp's own
//! tools, `--no-repack` is meant to keep them in the map; no llama.cpp binary exists here to
//! check it (see NOTES.md), so this table describes the default configuration.

use hotpatch_gguf::TensorType;
use hotpatch_quant::GgmlType;

use crate::engine::{Engine, RegionId};
use crate::error::Result;

/// Whether a running llama.cpp (CPU, mmap) sees live edits of a tensor type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveVisibility {
    /// Computed from the mapped file: a live edit shows at the next token.
    Live,
    /// Copied (repacked) into llama.cpp's own buffers at load: edits show only after a reload.
    CopiedAtLoad,
    /// Not measured.
    Unknown,
}

/// The measured visibility of live edits for a ggml type (see the module docs for evidence).
pub fn live_visibility(ty: GgmlType) -> LiveVisibility {
    use GgmlType as T;
    match ty {
        T::F32
        | T::F16
        | T::BF16
        | T::Q8_0
        | T::Q4_1
        | T::Q5_0
        | T::Q5_1
        | T::Q2_K
        | T::Q3_K
        | T::Q5_K
        | T::Q6_K => LiveVisibility::Live,
        T::Q4_0 | T::Q4_K => LiveVisibility::CopiedAtLoad,
        _ => LiveVisibility::Unknown,
    }
}

/// One tensor and whether a running llama.cpp will see live edits of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorLiveness {
    /// Tensor name.
    pub name: String,
    /// Type name.
    pub ty: String,
    /// Absolute data offset.
    pub offset: u64,
    /// Data length.
    pub nbytes: u64,
    /// The verdict.
    pub visibility: LiveVisibility,
}

impl Engine {
    /// Every tensor of a GGUF region with whether a running llama.cpp (CPU, mmap) will see
    /// live edits of it — what the UI lists before a live session.
    pub fn live_visibility(&self, region: RegionId) -> Result<Vec<TensorLiveness>> {
        let index = self.gguf(region)?;
        Ok(index
            .tensors
            .iter()
            .map(|t| TensorLiveness {
                name: t.name.clone(),
                ty: crate::structure::type_name(t.ty),
                offset: t.offset,
                nbytes: t.nbytes,
                visibility: match t.ty {
                    TensorType::Known(k) => live_visibility(k),
                    TensorType::Unknown(_) => LiveVisibility::Unknown,
                },
            })
            .collect())
    }
}
