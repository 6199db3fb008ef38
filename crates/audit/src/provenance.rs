//! Provenance: does a quantized file re-derive, byte for byte, from the base it claims?
//!
//! For each tensor of the quant, the base's tensor of the same name (F16, BF16 or F32) is
//! dequantized and quantized again to the quant's type with this build's quantizers, which
//! are byte-exact with ggml's reference quantizers (`quantize_row_*_ref`, what
//! `llama-quantize` runs without an importance matrix), and the bytes are compared. A tensor
//! of the same type in both files is compared as is (`llama-quantize` copies norms and other
//! small tensors unchanged).
//!
//! Which ggml build: the quantizers are checked in the tests against the `libggml-base.so`
//! node-llama-cpp 3.22.1 ships ([`crate::LLAMA_CPP_BUILD`]). K-quant quantization involves
//! float arithmetic a compiler may contract into fused multiply-adds, so another ggml build
//! can differ in a few blocks: a K-quant tensor that differs in under 1 % of its blocks is a
//! warning saying so, not an error. Quants made with an importance matrix (the file then has
//! `quantize.imatrix.*` keys) do not re-derive from the reference quantizer at all; their
//! differences are reported as unverifiable, not as tampering.
//!
//! Work is row-chunked (memory bounded by a chunk, not a tensor), reports progress in bytes of
//! the quant's data, and stops when the progress callback returns `false`.

use std::path::Path;

use hotpatch_gguf::{GgmlType, GgufModel, TensorInfo};

use crate::{Finding, Severity, Where};

/// Elements re-derived per step (a few MB of f32 at most).
const CHUNK_ELEMENTS: usize = 1 << 20;

/// Why provenance could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// A file could not be opened or read.
    #[error("{0}")]
    Open(String),
    /// The progress callback asked to stop.
    #[error("canceled")]
    Canceled,
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// One finding per tensor that does not re-derive (or cannot be checked), plus a summary.
    pub findings: Vec<Finding>,
    /// Tensors of the quant.
    pub tensors: usize,
    /// Tensors that re-derive byte for byte.
    pub matched: usize,
    /// Tensors that do not.
    pub mismatched: usize,
    /// Tensors that could not be checked (no base tensor of a float type, no quantizer).
    pub unverifiable: usize,
}

impl Provenance {
    /// `N of M tensors re-derive byte for byte (K differ, U unverifiable)`.
    pub fn summary(&self) -> String {
        format!(
            "{} of {} tensors re-derive byte for byte ({} differ, {} unverifiable)",
            self.matched, self.tensors, self.mismatched, self.unverifiable
        )
    }
}

/// Opens both files and runs [`check`].
pub fn check_paths(
    quant: &Path,
    base: &Path,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Provenance, ProvenanceError> {
    let open = |p: &Path| {
        GgufModel::open(p).map_err(|e| ProvenanceError::Open(format!("{}: {e}", p.display())))
    };
    let q = open(quant)?;
    let b = open(base)?;
    check(&q, &b, &base.display().to_string(), progress)
}

fn is_float(t: GgmlType) -> bool {
    matches!(t, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
}

fn place(t: &TensorInfo) -> Where {
    Where {
        text: format!("tensor '{}'", t.name),
        offset: Some(t.offset),
        shard: t.shard,
        ..Where::default()
    }
}

/// Re-derives every tensor of `quant` from `base` (named `base_name` in messages).
pub fn check(
    quant: &GgufModel,
    base: &GgufModel,
    base_name: &str,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Provenance, ProvenanceError> {
    let imatrix = quant
        .index()
        .metadata
        .iter()
        .any(|e| e.key.starts_with("quantize.imatrix"));
    let total: u64 = quant.tensors.iter().map(|t| t.nbytes).sum();
    let mut done = 0u64;
    let mut out = Provenance {
        tensors: quant.tensors.len(),
        ..Provenance::default()
    };
    if !progress(0, total) {
        return Err(ProvenanceError::Canceled);
    }
    for qt in &quant.tensors {
        let verdict = derive_one(quant, base, qt, &mut |d| progress(done + d, total))?;
        done += qt.nbytes;
        match verdict {
            Verdict::Match => out.matched += 1,
            Verdict::Unverifiable(why) => {
                out.unverifiable += 1;
                out.findings.push(Finding::new(
                    Severity::Info,
                    "provenance-unverifiable",
                    why,
                    place(qt),
                ));
            }
            Verdict::Missing => {
                out.mismatched += 1;
                out.findings.push(Finding::new(
                    Severity::Error,
                    "provenance-missing",
                    format!("{base_name} has no tensor of this name: it cannot be derived from it"),
                    place(qt),
                ));
            }
            Verdict::Shape(bd) => {
                out.mismatched += 1;
                out.findings.push(Finding::new(
                    Severity::Error,
                    "provenance-mismatch",
                    format!(
                        "shape {:?} where {base_name} has {bd:?}: not derived from it",
                        qt.dims
                    ),
                    place(qt),
                ));
            }
            Verdict::Differs {
                blocks,
                of,
                first_offset,
                ty,
                base_ty,
            } => {
                let frac = blocks as f64 / of.max(1) as f64;
                let (severity, code, note) =
                    if imatrix && (ty.is_k_quant() || ty.name().starts_with("IQ")) {
                        (
                        Severity::Info,
                        "provenance-unverifiable",
                        " — the file was quantized with an importance matrix (quantize.imatrix.* \
                         keys), which the reference quantizer does not reproduce"
                            .to_string(),
                    )
                    } else if ty.is_k_quant() && frac < 0.01 {
                        (
                            Severity::Warning,
                            "provenance-mismatch",
                            format!(
                            " — few enough to be FMA contraction in another ggml build's K-quant \
                             code; this build matches ggml's quantize_row_{}_ref as compiled in \
                             {}",
                            ty.name().to_ascii_lowercase(),
                            crate::LLAMA_CPP_BUILD
                        ),
                        )
                    } else {
                        (Severity::Error, "provenance-mismatch", String::new())
                    };
                if code == "provenance-unverifiable" {
                    out.unverifiable += 1;
                } else {
                    out.mismatched += 1;
                }
                out.findings.push(Finding::new(
                    severity,
                    code,
                    format!(
                        "{blocks} of {of} {ty} blocks differ from {base_name}'s {base_ty} tensor \
                         quantized again (first at file offset {first_offset:#x}){note}"
                    ),
                    place(qt),
                ));
            }
        }
    }
    if !progress(total, total) {
        return Err(ProvenanceError::Canceled);
    }
    let severity = if out.mismatched == 0 {
        Severity::Info
    } else {
        Severity::Warning
    };
    out.findings.push(Finding::new(
        severity,
        if out.mismatched == 0 {
            "provenance-summary"
        } else {
            "provenance-mismatch"
        },
        format!("{} from {base_name}", out.summary()),
        Where::text("tensor data"),
    ));
    Ok(out)
}

enum Verdict {
    Match,
    Missing,
    Shape(Vec<u64>),
    Unverifiable(String),
    Differs {
        blocks: u64,
        of: u64,
        first_offset: u64,
        ty: GgmlType,
        base_ty: GgmlType,
    },
}

fn derive_one(
    quant: &GgufModel,
    base: &GgufModel,
    qt: &TensorInfo,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<Verdict, ProvenanceError> {
    let Some(bt) = base.tensor(&qt.name) else {
        return Ok(Verdict::Missing);
    };
    if bt.dims != qt.dims {
        return Ok(Verdict::Shape(bt.dims.clone()));
    }
    let (Some(qty), Some(bty)) = (qt.ty.known(), bt.ty.known()) else {
        return Ok(Verdict::Unverifiable(format!(
            "type {} / base type {} unknown to this build",
            qt.ty, bt.ty
        )));
    };
    let qdata = read(quant, qt)?;
    let bdata = read(base, bt)?;
    fn read<'m>(m: &'m GgufModel, t: &TensorInfo) -> Result<&'m [u8], ProvenanceError> {
        m.tensor_data(t)
            .map_err(|e| ProvenanceError::Open(format!("tensor '{}': {e}", t.name)))
    }
    let block_bytes = qty.type_size() as u64;
    if qty == bty {
        // Copied unchanged (or not derived): compare bytes, counted in blocks of the type.
        let (blocks, first) = diff_blocks(qdata, bdata, block_bytes as usize);
        return Ok(if blocks == 0 {
            Verdict::Match
        } else {
            Verdict::Differs {
                blocks,
                of: qdata.len() as u64 / block_bytes,
                first_offset: qt.offset + first * block_bytes,
                ty: qty,
                base_ty: bty,
            }
        });
    }
    if !is_float(bty) {
        return Ok(Verdict::Unverifiable(format!(
            "the base holds this tensor as {bty}, not F16/BF16/F32: {qty} cannot be re-derived \
             from it"
        )));
    }
    if !qty.can_quantize() || !bty.can_dequantize() {
        return Ok(Verdict::Unverifiable(format!(
            "this build has no reference quantizer for {qty} (it needs an importance matrix): \
             the tensor cannot be re-derived"
        )));
    }
    // Whole rows per chunk, so both types' blocks align.
    let row = qt.dims.first().copied().unwrap_or(1) as usize;
    let rows_per_chunk = (CHUNK_ELEMENTS / row.max(1)).max(1);
    let n = qt.n_elements as usize;
    let q_row_bytes = qty.row_bytes(row as u64).unwrap_or(0);
    let b_row_bytes = bty.row_bytes(row as u64).unwrap_or(0);
    if q_row_bytes == 0 || b_row_bytes == 0 || row == 0 {
        return Ok(Verdict::Match); // empty tensor
    }
    let mut f32s = vec![0f32; rows_per_chunk.min(n / row) * row];
    let mut requant = vec![0u8; rows_per_chunk.min(n / row) * q_row_bytes];
    let mut blocks = 0u64;
    let mut first = None;
    let mut r0 = 0usize;
    let n_rows = n / row;
    while r0 < n_rows {
        let rows = rows_per_chunk.min(n_rows - r0);
        let (fs, qs) = (&mut f32s[..rows * row], &mut requant[..rows * q_row_bytes]);
        let bsrc = &bdata[r0 * b_row_bytes..(r0 + rows) * b_row_bytes];
        hotpatch_quant::dequantize(bty, bsrc, fs)
            .map_err(|e| ProvenanceError::Open(format!("tensor '{}' of the base: {e}", bt.name)))?;
        // Row by row, as ggml_quantize_chunk does (K-quant scales are per block, so this only
        // matters for types with row-level state).
        for (src, dst) in fs.chunks(row).zip(qs.chunks_mut(q_row_bytes)) {
            hotpatch_quant::quantize(qty, src, dst)
                .map_err(|e| ProvenanceError::Open(format!("tensor '{}': {e}", qt.name)))?;
        }
        let have = &qdata[r0 * q_row_bytes..(r0 + rows) * q_row_bytes];
        let (d, f) = diff_blocks(have, qs, block_bytes as usize);
        if d > 0 && first.is_none() {
            first = Some((r0 * q_row_bytes) as u64 / block_bytes + f);
        }
        blocks += d;
        r0 += rows;
        if !progress((r0 * q_row_bytes) as u64) {
            return Err(ProvenanceError::Canceled);
        }
    }
    Ok(if blocks == 0 {
        Verdict::Match
    } else {
        Verdict::Differs {
            blocks,
            of: qdata.len() as u64 / block_bytes,
            first_offset: qt.offset + first.unwrap_or(0) * block_bytes,
            ty: qty,
            base_ty: bty,
        }
    })
}

/// How many `block`-byte blocks differ, and the index of the first.
fn diff_blocks(a: &[u8], b: &[u8], block: usize) -> (u64, u64) {
    let mut n = 0u64;
    let mut first = None;
    if a.len() != b.len() {
        return ((a.len().max(b.len()) / block.max(1)) as u64, 0);
    }
    for (i, (x, y)) in a
        .chunks(block.max(1))
        .zip(b.chunks(block.max(1)))
        .enumerate()
    {
        if x != y {
            n += 1;
            first.get_or_insert(i as u64);
        }
    }
    (n, first.unwrap_or(0))
}
