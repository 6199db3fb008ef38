//! SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format) for CI pipelines: GitHub
//! code scanning, GitLab and most security dashboards read it.
//!
//! One run, one tool (`hotpatch audit`) with one rule per finding code, one result per
//! finding. A GGUF file is binary, so locations are byte offsets (`region.byteOffset`), never
//! text lines; the template line and column, and the tensor or key, are the result's
//! logical location.

use serde_json::{json, Value};

use crate::{Report, Severity};

/// The SARIF `level` of a severity.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Info => "note",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// A path as a URI reference: relative paths stay relative (percent-encoded), absolute ones
/// become `file://` URIs.
pub fn uri_of(path: &str) -> String {
    let mut out = String::new();
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SARIF log of one or more reports.
pub fn to_sarif(reports: &[Report]) -> Value {
    let mut rules: Vec<String> = Vec::new();
    let mut results = Vec::new();
    let mut artifacts = Vec::new();
    for (ai, r) in reports.iter().enumerate() {
        let uri = uri_of(&r.file);
        artifacts.push(json!({"location": {"uri": uri}}));
        for f in &r.findings {
            let rule_index = match rules.iter().position(|c| c == &f.code) {
                Some(i) => i,
                None => {
                    rules.push(f.code.clone());
                    rules.len() - 1
                }
            };
            let mut physical = json!({"artifactLocation": {"uri": uri, "index": ai}});
            if let Some(o) = f.location.offset {
                physical["region"] = json!({"byteOffset": o});
            }
            let mut logical = json!({"name": f.location.text, "kind": "member"});
            if f.location.shard > 0 {
                logical["fullyQualifiedName"] = json!(format!(
                    "file {}: {}",
                    f.location.shard + 1,
                    f.location.text
                ));
            }
            results.push(json!({
                "ruleId": f.code,
                "ruleIndex": rule_index,
                "level": level(f.severity),
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": physical,
                    "logicalLocations": [logical],
                }],
            }));
        }
    }
    let rules: Vec<Value> = rules
        .iter()
        .map(|code| {
            json!({
                "id": code,
                "name": code,
                "shortDescription": {"text": describe(code)},
                "helpUri": "https://example.invalid/hotpatch-studio/docs/AUDIT.md",
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "hotpatch audit",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/hotpatch-studio",
                "rules": rules,
            }},
            "artifacts": artifacts,
            "results": results,
            "properties": {"llamaCpp": crate::LLAMA_CPP_BUILD},
        }],
    })
}

/// A one-line description of a finding code (the rule's short description).
pub fn describe(code: &str) -> &'static str {
    match code {
        "template-dunder" => "The chat template reads a Python internal (dunder) attribute",
        "template-gadget" => "The chat template reads an attribute only sandbox escapes use",
        "template-attr-filter" => "The chat template uses the attr filter",
        "template-computed-name" => "The chat template builds an attribute name from strings",
        "template-global" => "The chat template reaches Jinja2 globals",
        "template-format-gadget" => "The chat template reads attributes through str.format",
        "template-include" => "The chat template loads other templates",
        "template-runaway" => "The chat template runs an unbounded loop or allocation",
        "template-dunder-string" => "The chat template holds a dunder name as a string",
        "template-conditional-text" => "Text that appears only when a message contains a trigger",
        "template-bidi" => "Bidirectional control characters in the chat template",
        "template-tag-chars" => "Unicode tag characters (hidden ASCII) in the chat template",
        "template-invisible" => "Invisible characters in the chat template",
        "template-network-address" => "A network address in the chat template's text",
        "template-syntax" => "The chat template does not parse",
        "template-render-error" => "The chat template fails to render",
        "template-not-text" => "The chat template is not UTF-8 text",
        "metadata-bidi" | "metadata-tag-chars" | "metadata-invisible" => {
            "Hidden characters in descriptive metadata"
        }
        "provenance-mismatch" => "A tensor does not re-derive from the claimed base",
        "provenance-missing" => "A tensor of the quant is missing from the base",
        "provenance-unverifiable" => "A tensor cannot be re-derived by this build",
        "tensor-type-not-decoded" => "A tensor type this build cannot decode",
        _ if code.starts_with("template-") => "A chat template finding",
        _ => "llama.cpp refuses or mishandles the file's structure",
    }
}
