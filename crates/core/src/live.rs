//! Which tensors a running llama.cpp sees when the model file is edited live — on this machine.
//!
//! A live edit changes the page cache of the model file. llama.cpp (CPU backend, `use_mmap`)
//! computes straight from the mapped file for most tensors, so it sees the edit at the next
//! token with no reload. But the CPU backend moves the weights of some matrix multiplications
//! into its own buffers at load (the "extra buffer types": `CPU_REPACK`, and on CPUs with Intel
//! AMX the `AMX` buffer); those tensors are copies and ignore later edits until the model is
//! loaded again. GPU-offloaded weights are copies too (everything here is about CPU inference).
//!
//! Which tensors are copied is **not a constant**: it depends on the CPU's instruction sets
//! (llama.cpp picks a repacked layout per type only when the CPU has the kernels for it, and
//! prebuilt releases load the CPU variant that matches the host) and on the llama.cpp release.
//! So the verdict is computed here for the host CPU ([`CpuInfo::host`]) from the selection rules
//! of llama.cpp's CPU backend (`ggml/src/ggml-cpu/repack.cpp`,
//! `ggml_repack_get_optimal_repack_type`, and the AMX buffer type), as they are in the release
//! this project checks against (node-llama-cpp 3.22.1's prebuilt llama.cpp, the oracle of the
//! test `live_llama::visibility_per_type_holds_on_this_host`):
//! - Only weights of a matrix multiplication are ever moved: tensors of 2 or 3 dimensions.
//!   `token_embd` is read by row lookup (`GET_ROWS`), which the extra buffers do not serve, so
//!   it stays in the map — unless the model ties its output projection to it (no
//!   `output.weight`), in which case the output's copy may be repacked.
//! - x86-64: Q4_0, Q4_K and IQ4_NL are repacked with AVX2 (`ne[1] % 8 == 0`); Q2_K with
//!   AVX-512F. With AMX (`amx_int8`) builds that include the AMX backend also copy F16, Q4_0,
//!   Q4_1, Q8_0, Q4_K, Q5_K, Q6_K and IQ4_XS: the verdict for those becomes
//!   [`LiveVisibility::Unknown`] (F16 was seen copied on an AMX host: edits did not reach it).
//! - aarch64: Q4_0 (`ne[1] % 4 == 0`) and IQ4_NL (`% 4`) with dot-product or int8-matmul
//!   support, Q4_K (`% 8`) likewise; builds with KleidiAI may copy more, so every other matrix
//!   weight is [`LiveVisibility::Unknown`] there.
//! - Other architectures: every matrix weight is [`LiveVisibility::Unknown`].
//!
//! Newer llama.cpp releases may add repacked layouts for more types; an external server started
//! with `--no-repack` (model parameter `use_extra_bufts = false`) keeps every tensor in the map,
//! so it sees every live edit. [`NO_REPACK_HINT`] says so to the user.

use hotpatch_gguf::{TensorInfo, TensorType};
use hotpatch_quant::GgmlType;

use crate::engine::{Engine, RegionId};
use crate::error::Result;

/// Whether a running llama.cpp (CPU, mmap) sees live edits of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveVisibility {
    /// Computed from the mapped file: a live edit shows at the next token.
    Live,
    /// Copied (repacked) into llama.cpp's own buffers at load on this CPU: edits show only
    /// after a reload.
    CopiedAtLoad,
    /// Cannot be determined here: depends on the llama.cpp build (or the CPU is one whose
    /// rules are not known); treat it as possibly copied.
    Unknown,
}

impl LiveVisibility {
    /// The stable lowercase name (`live`, `copied`, `unknown`) used over IPC and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LiveVisibility::Live => "live",
            LiveVisibility::CopiedAtLoad => "copied",
            LiveVisibility::Unknown => "unknown",
        }
    }
}

/// What to tell a user who wants an external llama.cpp to see every live edit.
pub const NO_REPACK_HINT: &str = "start llama-server (or llama-cli) with --no-repack \
     (model parameter use_extra_bufts = false) and mmap on: every tensor then stays in the \
     mapped file and every live edit shows at the next token";

/// The instruction-set facts of a CPU that decide llama.cpp's choice of repacked layouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    /// `x86_64`, `aarch64`, … (`std::env::consts::ARCH`).
    pub arch: String,
    /// The features found, by their `/proc/cpuinfo`-style names (`avx2`, `avx512f`,
    /// `amx_int8`, `neon`, `dotprod`, `i8mm`, `sve`).
    pub features: Vec<String>,
}

impl CpuInfo {
    /// The CPU this process runs on.
    pub fn host() -> CpuInfo {
        CpuInfo {
            arch: std::env::consts::ARCH.to_string(),
            features: crate::platform::cpu_features()
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }

    /// A CPU given by hand (tests, or a report about another machine).
    pub fn new(arch: &str, features: &[&str]) -> CpuInfo {
        CpuInfo {
            arch: arch.to_string(),
            features: features.iter().map(|f| f.to_string()).collect(),
        }
    }

    /// Whether the CPU has a feature (by its `/proc/cpuinfo`-style name).
    pub fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    /// One line for the user: "x86_64 with avx2, avx512f".
    pub fn summary(&self) -> String {
        if self.features.is_empty() {
            format!("{} (none of the features llama.cpp repacks for)", self.arch)
        } else {
            format!("{} with {}", self.arch, self.features.join(", "))
        }
    }
}

/// The verdict for a type on a CPU when the tensor is a matrix-multiplication weight whose
/// `ne[1]` (row count) is `rows`, with the reason in one sentence.
fn matmul_weight(cpu: &CpuInfo, ty: GgmlType, rows: u64) -> (LiveVisibility, String) {
    use GgmlType as T;
    use LiveVisibility::*;
    let copied = |what: &str| {
        (
            CopiedAtLoad,
            format!(
                "repacked into llama.cpp's own CPU buffers at load on this CPU ({what}): \
                 edits show after a reload"
            ),
        )
    };
    let live = || {
        (
            Live,
            format!(
                "computed straight from the mapped file on this CPU ({}): an edit shows at \
                 the next token",
                cpu.summary()
            ),
        )
    };
    match cpu.arch.as_str() {
        "x86_64" | "x86" => {
            let avx2 = cpu.has("avx2");
            let amx = cpu.has("amx_int8");
            match ty {
                T::Q4_0 | T::Q4_K | T::IQ4_NL if avx2 && rows.is_multiple_of(8) => {
                    copied("AVX2 interleaved 8x8 layout")
                }
                T::Q2_K if cpu.has("avx512f") && rows.is_multiple_of(8) => {
                    copied("AVX-512 interleaved 8x8 layout")
                }
                // The AMX buffer also takes F16 weights (copied as they are, for its F16
                // kernels): seen on an AMX host, where F16 edits did not reach llama.cpp.
                T::F16 | T::Q4_0 | T::Q4_1 | T::Q8_0 | T::Q4_K | T::Q5_K | T::Q6_K | T::IQ4_XS
                    if amx =>
                {
                    (
                        Unknown,
                        "this CPU has AMX: llama.cpp builds with the AMX backend copy this type \
                         into AMX buffers at load, others compute it from the map"
                            .to_string(),
                    )
                }
                _ => live(),
            }
        }
        "aarch64" => {
            let dot = cpu.has("dotprod") || cpu.has("i8mm");
            match ty {
                T::Q4_0 | T::IQ4_NL if dot && rows.is_multiple_of(4) => {
                    copied("ARM interleaved 4-row layout")
                }
                T::Q4_K if dot && rows.is_multiple_of(8) => copied("ARM interleaved 8-row layout"),
                _ => (
                    Unknown,
                    "on ARM, llama.cpp builds with KleidiAI or newer repack kernels may copy \
                     this type at load"
                        .to_string(),
                ),
            }
        }
        other => (
            Unknown,
            format!("the repacking rules of llama.cpp's CPU backend on {other} are not known here"),
        ),
    }
}

/// Whether a running llama.cpp on `cpu` sees live edits of one tensor of a model.
/// `tied_output` is true when the model has no `output.weight` (its output projection reuses
/// `token_embd`).
pub fn tensor_visibility(
    cpu: &CpuInfo,
    t: &TensorInfo,
    tied_output: bool,
) -> (LiveVisibility, String) {
    let ty = match t.ty {
        TensorType::Known(k) => k,
        TensorType::Unknown(id) => {
            return (
                LiveVisibility::Unknown,
                format!("type id {id} is unknown to this build: llama.cpp refuses the file"),
            )
        }
    };
    let matrix = (2..=3).contains(&t.dims.len());
    if !matrix {
        return (
            LiveVisibility::Live,
            "not a matrix weight: llama.cpp never copies it, an edit shows at the next token"
                .to_string(),
        );
    }
    let rows = t.dims[1];
    if t.name == "token_embd.weight" {
        if !tied_output {
            return (
                LiveVisibility::Live,
                "read by row lookup, which llama.cpp serves from the mapped file: an edit \
                 shows at the next token"
                    .to_string(),
            );
        }
        let (vis, why) = matmul_weight(cpu, ty, rows);
        if vis != LiveVisibility::Live {
            return (
                LiveVisibility::Unknown,
                format!(
                    "the input lookup sees edits, but the output projection tied to it is a \
                     matrix weight: {why}"
                ),
            );
        }
        return (vis, why);
    }
    matmul_weight(cpu, ty, rows)
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
    /// Why, in one sentence (names the CPU feature or role that decides it).
    pub reason: String,
}

impl Engine {
    /// Every tensor of a model (the GGUF regions of all its files, in order) with whether a
    /// running llama.cpp (CPU, mmap) on `cpu` will see live edits of it — what the UI lists
    /// before a live session.
    pub fn live_visibility(
        &self,
        regions: &[RegionId],
        cpu: &CpuInfo,
    ) -> Result<Vec<TensorLiveness>> {
        let mut indexes = Vec::with_capacity(regions.len());
        for &r in regions {
            indexes.push(self.gguf(r)?);
        }
        let tied_output = !indexes
            .iter()
            .any(|ix| ix.tensors.iter().any(|t| t.name == "output.weight"));
        Ok(indexes
            .iter()
            .flat_map(|ix| ix.tensors.iter())
            .map(|t| {
                let (visibility, reason) = tensor_visibility(cpu, t, tied_output);
                TensorLiveness {
                    name: t.name.clone(),
                    ty: crate::structure::type_name(t.ty),
                    offset: t.offset,
                    nbytes: t.nbytes,
                    visibility,
                    reason,
                }
            })
            .collect())
    }
}
