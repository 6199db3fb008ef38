//! Can this GGUF file be trusted? An audit of what a model file holds besides weights.
//!
//! A GGUF file is code as well as data: its chat template is a Jinja program every runtime
//! executes, and its header is parsed by C++ that has had CVEs from counts and sizes that lie.
//! [`audit_path`] / [`audit_model`] look at a file before anyone runs it:
//!
//! - **structure** ([`structure`]): what llama.cpp refuses or mishandles (the rules of
//!   [`hotpatch_gguf::llama`], shared with `inspect` and the save path), and what this reader
//!   itself refuses, each finding naming where (offset, tensor, key);
//! - **template** ([`template`]): the chat template parsed into minijinja's syntax tree and
//!   walked for injection gadgets, text that appears only when a message contains something,
//!   invisible or bidirectional Unicode and network addresses; then rendered on fixed
//!   conversations to show the prompt the model will really see;
//! - **provenance** ([`provenance`]): whether each tensor of a quantized file re-derives,
//!   byte for byte, from a claimed F16/BF16/F32 base.
//!
//! Every finding has a [`Severity`], a stable `code`, a message and a [`Where`]. A report is
//! "clean" when it has no warning and no error: info findings (a template that raises on a
//! conversation shape it does not support, a tensor type this build cannot decode) describe
//! the file without accusing it, so real models' own files audit clean.
//!
//! ```
//! use hotpatch_audit::template::check_template;
//! let findings = check_template("{{ messages.__class__ }}", "tokenizer.chat_template", None);
//! assert!(findings.iter().any(|f| f.code == "template-dunder"));
//! ```
#![deny(missing_docs)]

use std::path::Path;

use hotpatch_gguf::GgufModel;
use serde::Serialize;

pub mod provenance;
pub mod sarif;
pub mod structure;
pub mod template;

pub use hotpatch_gguf::llama::LLAMA_CPP_BUILD;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A fact worth knowing; not a reason to distrust the file.
    Info,
    /// Suspicious, or something llama.cpp mishandles: look before running it.
    Warning,
    /// Hostile, or something llama.cpp refuses.
    Error,
}

impl Severity {
    /// `info`, `warning` or `error`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Where a finding is: a description plus, when known, the byte offset in the file and the
/// line/column inside a chat template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Where {
    /// For people: `tensor 'blk.0.attn_q.weight'`, `tokenizer.chat_template line 3, column 9`.
    pub text: String,
    /// Absolute byte offset in the file (of the first file for split models unless `shard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// 1-based line inside the template, for template findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column (in characters) inside the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// Which file of a split model (0-based; omitted for the first).
    #[serde(skip_serializing_if = "is_zero")]
    pub shard: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl Where {
    /// A place known only by description.
    pub fn text(text: impl Into<String>) -> Where {
        Where {
            text: text.into(),
            ..Where::default()
        }
    }

    /// A place with a byte offset.
    pub fn at(text: impl Into<String>, offset: Option<u64>) -> Where {
        Where {
            text: text.into(),
            offset,
            ..Where::default()
        }
    }

    /// One line for people: the text, then the offset in hex.
    pub fn display(&self) -> String {
        let mut s = self.text.clone();
        if let Some(o) = self.offset {
            s.push_str(&format!(" (offset {o:#x})"));
        }
        if self.shard > 0 {
            s.push_str(&format!(" in file {}", self.shard + 1));
        }
        s
    }
}

/// One thing the audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// A stable kebab-case code (`template-dunder`, `tensor-name-too-long`, …).
    pub code: String,
    /// What is wrong, in one or two sentences.
    pub message: String,
    /// Where.
    #[serde(rename = "where")]
    pub location: Where,
}

impl Finding {
    /// A finding.
    pub fn new(
        severity: Severity,
        code: impl Into<String>,
        message: impl Into<String>,
        location: Where,
    ) -> Finding {
        Finding {
            severity,
            code: code.into(),
            message: message.into(),
            location,
        }
    }
}

/// A chat template rendered on one fixed conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendering {
    /// Which template (`tokenizer.chat_template`, or a named one).
    pub template: String,
    /// The conversation's name (`system-user`, `multi-turn`, …).
    pub conversation: String,
    /// The prompt text, exactly as the model will see it (special tokens as text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Why rendering failed (a `raise_exception` of the template, an unknown filter, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an audit found in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The file audited.
    pub file: String,
    /// Every finding, most severe first.
    pub findings: Vec<Finding>,
    /// The templates rendered on the fixed conversations.
    pub renders: Vec<Rendering>,
}

impl Report {
    /// Findings of at least this severity.
    pub fn count(&self, at_least: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity >= at_least)
            .count()
    }

    /// No warning and no error (info findings do not count).
    pub fn is_clean(&self) -> bool {
        self.count(Severity::Warning) == 0
    }

    /// Sorts findings most severe first, keeping the order of discovery within a severity.
    pub fn sort(&mut self) {
        self.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    }

    /// The JSON document of `hotpatch audit --json`:
    /// `{"file", "llama_cpp", "clean", "findings": [{"severity", "code", "message", "where",
    /// "offset"?, "line"?, "column"?}], "renders": [...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let findings: Vec<serde_json::Value> = self
            .findings
            .iter()
            .map(|f| {
                let mut o = serde_json::json!({
                    "severity": f.severity.name(),
                    "code": f.code,
                    "message": f.message,
                    "where": f.location.text,
                });
                if let Some(v) = f.location.offset {
                    o["offset"] = v.into();
                }
                if let Some(v) = f.location.line {
                    o["line"] = v.into();
                }
                if let Some(v) = f.location.column {
                    o["column"] = v.into();
                }
                if f.location.shard > 0 {
                    o["shard"] = f.location.shard.into();
                }
                o
            })
            .collect();
        serde_json::json!({
            "file": self.file,
            "llama_cpp": LLAMA_CPP_BUILD,
            "clean": self.is_clean(),
            "findings": findings,
            "renders": self.renders,
        })
    }
}

/// The file cannot be audited at all: it cannot be read, or is not a GGUF file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// What to audit.
#[derive(Debug, Clone)]
pub struct Options {
    /// Render the chat templates on the fixed conversations.
    pub render: bool,
    /// The time `strftime_now` reports, as Unix seconds (UTC). `None`: now.
    pub now_unix: Option<i64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            render: true,
            now_unix: None,
        }
    }
}

/// Audits a file on disk (any file of a split model). Errors only when the file cannot be
/// read or is not GGUF at all; a header this reader refuses is a report with the refusal as
/// an error finding (a hostile header is exactly what an audit should name).
pub fn audit_path(path: &Path, opts: &Options) -> Result<Report, Unreadable> {
    let file = path.display().to_string();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jinja") || e.eq_ignore_ascii_case("j2"))
    {
        return audit_template_file(path, opts);
    }
    match GgufModel::open(path) {
        Ok(model) => Ok(audit_model(&model, &file, opts)),
        Err(e) => match structure::parse_failure(&e) {
            Some(f) => Ok(Report {
                file,
                findings: vec![f],
                renders: Vec::new(),
            }),
            None => Err(Unreadable(format!("{file}: {e}"))),
        },
    }
}

/// Audits a chat template on its own (a `.jinja` / `.j2` file): every template check, and the
/// renders with empty BOS/EOS tokens.
pub fn audit_template_file(path: &Path, opts: &Options) -> Result<Report, Unreadable> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Unreadable(format!("{file}: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Unreadable(format!("{file}: the template is not UTF-8 text")))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let ctx = template::RenderContext {
        bos_token: String::new(),
        eos_token: String::new(),
        now_unix: opts.now_unix.unwrap_or_else(template::now_unix_time),
    };
    let (findings, renders) =
        template::audit(text, "template", Some(0), opts.render.then_some(&ctx));
    let mut report = Report {
        file,
        findings,
        renders,
    };
    report.sort();
    Ok(report)
}

/// Audits an opened model: structure, then every chat template.
pub fn audit_model(model: &GgufModel, file: &str, opts: &Options) -> Report {
    let mut report = Report {
        file: file.to_string(),
        ..Report::default()
    };
    report.findings.extend(structure::check(model));
    let index = model.index();
    for e in &index.metadata {
        if !template::is_template_key(&e.key) {
            continue;
        }
        let Some(source) = e.value.as_str() else {
            report.findings.push(Finding::new(
                Severity::Warning,
                "template-not-text",
                "the chat template is not a UTF-8 string: runtimes cannot use it",
                Where::at(format!("metadata '{}'", e.key), Some(e.value_offset)),
            ));
            continue;
        };
        // The template's text starts after its 8-byte length.
        let base = e.value_offset + 8;
        let ctx = opts
            .render
            .then(|| template::RenderContext::from_index(index, opts.now_unix));
        let (findings, renders) = template::audit(source, &e.key, Some(base), ctx.as_ref());
        report.findings.extend(findings);
        report.renders.extend(renders);
    }
    report
        .findings
        .extend(structure::check_metadata_text(index));
    report.sort();
    report
}
