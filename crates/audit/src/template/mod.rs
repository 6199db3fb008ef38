//! The chat template: parsed with a real Jinja engine (minijinja's syntax tree, the
//! `unstable_machinery` API), walked for injection gadgets and content triggers
//! ([`tree`]), scanned for hidden characters ([`unicode`]) and network addresses
//! ([`net`]), and rendered on fixed conversations ([`render`]) to show the prompt the model
//! really sees — and, for each content trigger, what the prompt gains when a user writes it.

use hotpatch_gguf::GgufIndex;
use minijinja::machinery;
use minijinja::syntax::SyntaxConfig;

use crate::{Finding, Rendering, Severity, Where};

pub mod net;
pub mod render;
pub mod tree;
pub mod unicode;

pub use render::{render_all, RenderContext};

/// `tokenizer.chat_template` and its named variants (`tokenizer.chat_template.tool_use`).
pub fn is_template_key(key: &str) -> bool {
    key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.")
}

impl RenderContext {
    /// The context a model's own tokenizer gives: its BOS/EOS token texts.
    pub fn from_index(index: &GgufIndex, now_unix: Option<i64>) -> RenderContext {
        let token = |key: &str| -> String {
            let Some(id) = index.get_u64(key) else {
                return String::new();
            };
            index
                .get_array("tokenizer.ggml.tokens")
                .and_then(|a| a.as_strings())
                .and_then(|s| s.get(usize::try_from(id).ok()?))
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        RenderContext {
            bos_token: token("tokenizer.ggml.bos_token_id"),
            eos_token: token("tokenizer.ggml.eos_token_id"),
            now_unix: now_unix.unwrap_or_else(now_unix_time),
        }
    }
}

/// The current time as Unix seconds.
pub fn now_unix_time() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Replaces Hugging Face's `{% generation %}` / `{% endgeneration %}` tags (its
/// AssistantTracker extension, which only marks spans) by comments of the same length, so
/// the template parses and every offset stays where it was.
pub fn neutralize_generation_tags(source: &str) -> std::borrow::Cow<'_, str> {
    if !source.contains("generation") {
        return source.into();
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(open) = rest.find("{%") {
        out.push_str(&rest[..open]);
        let tag = &rest[open..];
        let Some(close) = tag.find("%}") else {
            out.push_str(tag);
            return out.into();
        };
        let inner = tag[2..close].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if inner == "generation" || inner == "endgeneration" {
            let len = close + 2;
            out.push_str("{#");
            out.push_str(&" ".repeat(len - 4));
            out.push_str("#}");
        } else {
            out.push_str(&tag[..close + 2]);
        }
        rest = &tag[close + 2..];
    }
    out.push_str(rest);
    out.into()
}

fn syntax() -> SyntaxConfig {
    SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .unwrap_or_default()
}

/// The template findings of `source` (no rendering). `base` is the file offset of the
/// template's first byte, so findings can name where in the file.
pub fn check_template(source: &str, key: &str, base: Option<u64>) -> Vec<Finding> {
    audit(source, key, base, None).0
}

/// Every template finding, and — with a context — the renders on the fixed conversations,
/// with each content trigger rendered to show what it adds to the prompt.
pub fn audit(
    source: &str,
    key: &str,
    base: Option<u64>,
    ctx: Option<&RenderContext>,
) -> (Vec<Finding>, Vec<Rendering>) {
    let mut findings = Vec::new();
    for hit in unicode::scan(source) {
        findings.push(Finding::new(
            hit.class.severity(),
            hit.class.code(),
            format!(
                "{} in the template: text a reviewer does not see (or sees reordered) but the \
                 model reads",
                hit.describe()
            ),
            Where {
                text: format!("{key} line {}, column {}", hit.line, hit.column),
                offset: base.map(|b| b + hit.byte as u64),
                line: Some(hit.line),
                column: Some(hit.column),
                shard: 0,
            },
        ));
    }
    let prepared = neutralize_generation_tags(source);
    let mut triggers = Vec::new();
    match machinery::parse(&prepared, "chat_template", syntax()) {
        Err(e) => findings.push(Finding::new(
            Severity::Warning,
            "template-syntax",
            format!(
                "the template does not parse as Jinja ({}): runtimes refuse it or fall back to \
                 a built-in format, so the prompt is not what the file says",
                e.detail().unwrap_or("syntax error")
            ),
            Where {
                text: format!("{key} line {}", e.line().unwrap_or(0)),
                line: e.line().and_then(|l| u32::try_from(l).ok()),
                offset: base.and_then(|b| e.range().map(|r| b + r.start as u64)),
                ..Where::default()
            },
        )),
        Ok(root) => {
            let a = tree::analyze(&root, key, base);
            findings.extend(a.findings);
            triggers = a.triggers;
        }
    }

    let renders = match ctx {
        Some(ctx) => render_all(source, key, ctx),
        None => Vec::new(),
    };
    for t in &triggers {
        let evidence = ctx.map(|c| trigger_evidence(source, t, c));
        findings.push(trigger_finding(t, evidence));
    }
    let unparsed = findings.iter().any(|f| f.code == "template-syntax");
    if unparsed {
        // Said once, by the syntax finding.
    } else if !renders.is_empty() && renders.iter().all(|r| r.prompt.is_none()) {
        let err = renders[0].error.clone().unwrap_or_default();
        findings.push(Finding::new(
            Severity::Warning,
            "template-render-error",
            format!("the template renders none of the standard conversations: {err}"),
            Where::text(key.to_string()),
        ));
    } else {
        for r in renders.iter().filter(|r| r.error.is_some()) {
            findings.push(Finding::new(
                Severity::Info,
                "template-render-error",
                format!(
                    "the template refuses the '{}' conversation: {}",
                    r.conversation,
                    r.error.as_deref().unwrap_or("")
                ),
                Where::text(key.to_string()),
            ));
        }
    }
    (findings, renders)
}

/// What the prompt gains, rendered with a user message carrying the trigger against the
/// plain question.
fn trigger_evidence(
    source: &str,
    t: &tree::Trigger,
    ctx: &RenderContext,
) -> Result<String, String> {
    let q = render::QUESTION;
    let content = match t.how {
        "starts with" => format!("{} {q}", t.literal),
        "ends with" => format!("{q} {}", t.literal),
        "equals" => t.literal.clone(),
        _ => format!("{q} {}", t.literal),
    };
    let base = render::render(source, &[("user", q.to_string())], ctx)?;
    let with = render::render(source, &[("user", content.clone())], ctx)?;
    // Put the plain question back where the user's text was, so only what the template
    // added differs.
    let with = with.replacen(&content, q, 1);
    let prefix = base
        .chars()
        .zip(with.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let (b_rest, w_rest): (Vec<char>, Vec<char>) = (
        base.chars().skip(prefix).collect(),
        with.chars().skip(prefix).collect(),
    );
    let suffix = b_rest
        .iter()
        .rev()
        .zip(w_rest.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let added: String = w_rest[..w_rest.len() - suffix].iter().collect();
    let removed: String = b_rest[..b_rest.len() - suffix].iter().collect();
    Ok(match (added.is_empty(), removed.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!("the prompt gains {added:?}"),
        (true, false) => format!("the prompt loses {removed:?}"),
        (false, false) => format!("the prompt replaces {removed:?} with {added:?}"),
    })
}

fn trigger_finding(t: &tree::Trigger, evidence: Option<Result<String, String>>) -> Finding {
    let emitted: Vec<String> = t
        .emitted
        .iter()
        .take(3)
        .map(|s| {
            let short: String = s.chars().take(160).collect();
            format!("{short:?}")
        })
        .collect();
    let words: usize = t.emitted.iter().map(|s| s.split_whitespace().count()).sum();
    let has_addr = t.emitted.iter().any(|s| net::find(s).is_some());
    let severity = if has_addr || words >= 5 {
        Severity::Error
    } else {
        Severity::Warning
    };
    let mut message = format!(
        "text that appears only when a message's content {} {:?}: the template then emits {}",
        t.how,
        t.literal,
        emitted.join(", ")
    );
    match evidence {
        Some(Ok(e)) if !e.is_empty() => {
            message.push_str(&format!(
                "; rendered with a user message that {} it, {e}",
                t.how
            ));
        }
        Some(Ok(_)) => message.push_str(
            "; rendering a user message with it left the prompt unchanged (the branch may need \
             another role or turn)",
        ),
        Some(Err(e)) => message.push_str(&format!("; rendering the trigger failed: {e}")),
        None => {}
    }
    Finding::new(
        severity,
        "template-conditional-text",
        message,
        t.location.clone(),
    )
}
