//! Structure: what llama.cpp refuses or mishandles, and what this reader refuses.
//!
//! The llama.cpp rules live once, in [`hotpatch_gguf::llama`] (so `inspect`, the studio and
//! the save path report the same); this module turns them into findings (a refusal is an
//! error, a mishandling a warning) and adds the refusals of this reader itself, mapped to the
//! CVE classes they guard against.

use hotpatch_gguf::llama::{self, LlamaIssue, LLAMA_CPP_BUILD, NEWER_TYPES};
use hotpatch_gguf::{GgufError, GgufIndex, GgufModel, TensorType};

use crate::template::unicode;
use crate::{Finding, Severity, Where};

/// A llama.cpp issue as a finding.
pub fn finding_of(i: &LlamaIssue) -> Finding {
    let (severity, what) = if i.refuses {
        (Severity::Error, "llama.cpp refuses this file")
    } else {
        (Severity::Warning, "llama.cpp mishandles this")
    };
    Finding::new(
        severity,
        i.code,
        format!("{what}: {}", i.message),
        Where {
            text: i.subject.clone(),
            offset: i.offset,
            shard: i.shard,
            ..Where::default()
        },
    )
}

/// The structure findings of an opened model.
pub fn check(model: &GgufModel) -> Vec<Finding> {
    let mut out: Vec<Finding> = llama::check_model(model).iter().map(finding_of).collect();
    for t in &model.tensors {
        if let TensorType::Unknown(id) = t.ty {
            if let Some((_, name)) = NEWER_TYPES.iter().find(|&&(i, _)| i == id) {
                out.push(Finding::new(
                    Severity::Info,
                    "tensor-type-not-decoded",
                    format!(
                        "type id {id} ({name}) is known to {LLAMA_CPP_BUILD} but not to this \
                         build's codecs: the tensor is listed, its values are not shown"
                    ),
                    Where {
                        text: format!("tensor '{}'", t.name),
                        offset: Some(t.info_offset),
                        shard: t.shard,
                        ..Where::default()
                    },
                ));
            }
        }
    }
    out
}

/// Invisible or bidirectional characters in the descriptive metadata (`general.*` strings),
/// which tools display to people deciding whether to run the file.
pub fn check_metadata_text(index: &GgufIndex) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in &index.metadata {
        if !e.key.starts_with("general.") {
            continue;
        }
        let Some(s) = e.value.as_str() else { continue };
        for hit in unicode::scan(s) {
            if hit.class == unicode::Class::Invisible {
                continue; // zero-width joiners occur in names with emoji; only the dangerous
            }
            out.push(Finding::new(
                hit.class.severity(),
                hit.class.code_for_metadata(),
                format!("{} in the value of '{}'", hit.describe(), e.key),
                Where::at(
                    format!("metadata '{}'", e.key),
                    Some(e.value_offset + 8 + hit.byte as u64),
                ),
            ));
        }
    }
    out
}

/// A header this reader refuses, as an error finding naming the CVE class it guards against.
/// `None` when the file is not something to audit (unreadable, not GGUF at all).
pub fn parse_failure(e: &GgufError) -> Option<Finding> {
    let (code, class, offset) = match e {
        GgufError::Io { .. } | GgufError::BadMagic { .. } | GgufError::FileTooLarge { .. } => {
            return None
        }
        GgufError::Truncated { what, offset, .. } => {
            if *offset < 4 {
                return None; // shorter than the magic: not a GGUF file
            }
            let class = if what.starts_with("length of") || what.contains("string") {
                "a string length that lies (the CVE-2024-23496 class)"
            } else {
                "a size that lies (the CVE-2024-21802/-21825/-21836/-23605 classes)"
            };
            ("truncated", class, Some(*offset))
        }
        GgufError::CountTooLarge { what, offset, .. } => {
            let class = if what.contains("metadata entry count") {
                "a metadata count that lies (the CVE-2024-21825 class)"
            } else if what.contains("tensor count") {
                "a tensor count that lies (the CVE-2024-21836 class)"
            } else {
                "an array count that lies (the CVE-2024-23605 class)"
            };
            ("count-too-large", class, Some(*offset))
        }
        GgufError::InvalidUtf8 { offset, .. } => (
            "invalid-utf8",
            "a key or name that is not text",
            Some(*offset),
        ),
        GgufError::BadValueType { offset, .. } => (
            "bad-value-type",
            "a value type outside the spec",
            Some(*offset),
        ),
        GgufError::NestingTooDeep { offset, .. } => (
            "nested-array",
            "arrays of arrays nested without bound (llama.cpp refuses any array of arrays)",
            Some(*offset),
        ),
        GgufError::BadBool { offset, .. } => (
            "bad-bool",
            "a bool byte that is neither 0 nor 1 (llama.cpp reads it as true)",
            Some(*offset),
        ),
        GgufError::DuplicateKey { offset, .. } => (
            "duplicate-key",
            "two values for one key (llama.cpp refuses the file too)",
            Some(*offset),
        ),
        GgufError::DuplicateTensor { offset, .. } => (
            "duplicate-tensor",
            "two tensors of one name (llama.cpp refuses the file too)",
            Some(*offset),
        ),
        GgufError::BadTensor {
            offset, problem, ..
        } => {
            let class = if problem.contains("dimensions") {
                "more dimensions than ggml has (the CVE-2024-21802 class)"
            } else if problem.contains("overflow") {
                "a tensor size that overflows (the CVE-2026-33298 class)"
            } else if problem.contains("past end of file") {
                "tensor data outside the file (the CVE-2025-53630 / CVE-2026-27940 classes)"
            } else {
                "a tensor llama.cpp cannot hold"
            };
            ("bad-tensor", class, Some(*offset))
        }
        GgufError::Overlap { start, .. } => (
            "tensor-overlap",
            "two tensors sharing bytes (llama.cpp refuses the file too)",
            Some(*start),
        ),
        GgufError::BadAlignment { offset, .. } => {
            ("bad-alignment", "an unusable alignment", Some(*offset))
        }
        GgufError::BigEndian { .. } | GgufError::UnsupportedVersion { .. } => (
            "unsupported-version",
            "a GGUF version llama.cpp does not read either",
            Some(4),
        ),
        GgufError::Split { .. } => ("split-model", "an incomplete split model", None),
        _ => ("unreadable-header", "a header this reader refuses", None),
    };
    Some(Finding::new(
        Severity::Error,
        code,
        format!("the header is refused ({class}): {e}"),
        Where::at("file header", offset),
    ))
}
