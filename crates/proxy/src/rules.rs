//! Rules: what the proxy changes in requests and responses.
//!
//! A [`Rule`] is the serializable form (it lives in the `server.rules` array of the
//! configuration JSON); [`RuleSet::compile`] validates a list of them (regexes compiled,
//! parameter values type-checked against the llama.cpp / OpenAI field they target) into the
//! form the pure request/response functions use. Each compiled rule carries an enabled flag
//! and a hit counter that the running proxy updates without recompiling.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::request::Endpoint;

/// One rule as written in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique identifier, reported in events and used to enable/disable the rule.
    pub id: String,
    /// Whether the rule is applied (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Endpoints the rule applies to; empty means every rewritten endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// What the rule does.
    pub action: RuleAction,
}

fn default_true() -> bool {
    true
}

/// Where an injected system prompt goes relative to an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectMode {
    /// Before the existing system prompt (or as a new first system message).
    Prepend,
    /// After the existing system prompt (or as a new first system message).
    Append,
    /// Instead of the existing system prompt (or as a new first system message).
    Replace,
}

/// What a response filter does when its pattern matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterAction {
    /// Replace each match by the replacement text.
    Redact,
    /// Stop the answer at the match: the matched text is never sent, the answer ends with
    /// the replacement text and `finish_reason: "content_filter"`.
    Block,
}

/// The action of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleAction {
    /// Inject a system prompt. On `/v1/completions` and `/completion` (a raw `prompt`),
    /// `prepend`/`append` add the text before/after the prompt (separated by a newline) and
    /// `replace` does not apply.
    SystemPrompt {
        /// Placement relative to an existing system prompt.
        mode: InjectMode,
        /// The text to inject.
        text: String,
    },
    /// Set a top-level request field only when the client did not send it.
    DefaultParameter {
        /// Field name (e.g. `temperature`, `n_probs`, `samplers`).
        name: String,
        /// The value to set.
        value: Value,
    },
    /// Set a top-level request field, replacing what the client sent.
    OverrideParameter {
        /// Field name.
        name: String,
        /// The value to set.
        value: Value,
    },
    /// Keep a numeric request field inside `[min, max]` (only when present and numeric).
    ClampParameter {
        /// Field name.
        name: String,
        /// Lower bound (inclusive).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Upper bound (inclusive).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// Regex replace in message contents (chat) or in the prompt (completions).
    RewriteMessages {
        /// Regular expression (Rust `regex` syntax).
        pattern: String,
        /// Replacement (`$1`, `${name}` refer to groups).
        replacement: String,
        /// Roles whose messages are rewritten; empty means all roles.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
        /// Match case-insensitively.
        #[serde(default)]
        case_insensitive: bool,
    },
    /// Redact or block text of the answer, streamed or not.
    FilterResponse {
        /// Pattern: a regular expression, or literal text when `literal` is true.
        pattern: String,
        /// Redact or block.
        action: FilterAction,
        /// Text put in place of a redacted match / after a block (default `[REDACTED]` or
        /// `[BLOCKED]`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replacement: Option<String>,
        /// Treat `pattern` as literal text.
        #[serde(default)]
        literal: bool,
        /// Match case-insensitively.
        #[serde(default)]
        case_insensitive: bool,
        /// Longest match in bytes, for patterns of unbounded length (`a+`): the tail the
        /// streaming filter holds back. Bounded patterns compute it themselves.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_match_len: Option<usize>,
    },
    /// Add stop sequences to the request's `stop` field (merged, deduplicated).
    StopSequences {
        /// The sequences to add.
        sequences: Vec<String>,
    },
}

impl RuleAction {
    /// Short name of the kind of action (the serde tag).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SystemPrompt { .. } => "system_prompt",
            Self::DefaultParameter { .. } => "default_parameter",
            Self::OverrideParameter { .. } => "override_parameter",
            Self::ClampParameter { .. } => "clamp_parameter",
            Self::RewriteMessages { .. } => "rewrite_messages",
            Self::FilterResponse { .. } => "filter_response",
            Self::StopSequences { .. } => "stop_sequences",
        }
    }
}

/// A rule list that cannot be compiled. The message names the rule and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rules[{index}] (id {id:?}).{field}: {message}")]
pub struct RuleError {
    /// Position in the rule list.
    pub index: usize,
    /// The rule's id.
    pub id: String,
    /// The offending field, e.g. `action.pattern`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Longest match the streaming filter supports holding back (bytes).
pub const MAX_FILTER_WINDOW: usize = 64 * 1024;
/// Hold-back used for unbounded patterns without `max_match_len`.
pub const DEFAULT_FILTER_WINDOW: usize = 256;

/// A compiled response filter.
#[derive(Debug)]
pub struct CompiledFilter {
    /// Index of the owning rule in the [`RuleSet`].
    pub rule: usize,
    /// The pattern.
    pub regex: Regex,
    /// Redact or block.
    pub action: FilterAction,
    /// Replacement text.
    pub replacement: String,
    /// Longest possible match in bytes.
    pub max_len: usize,
}

/// The compiled form of one rule.
#[derive(Debug)]
pub enum CompiledAction {
    /// See [`RuleAction::SystemPrompt`].
    SystemPrompt {
        /// Placement.
        mode: InjectMode,
        /// Text.
        text: String,
    },
    /// See [`RuleAction::DefaultParameter`].
    Default {
        /// Field.
        name: String,
        /// Value.
        value: Value,
    },
    /// See [`RuleAction::OverrideParameter`].
    Override {
        /// Field.
        name: String,
        /// Value.
        value: Value,
    },
    /// See [`RuleAction::ClampParameter`].
    Clamp {
        /// Field.
        name: String,
        /// Lower bound.
        min: Option<f64>,
        /// Upper bound.
        max: Option<f64>,
    },
    /// See [`RuleAction::RewriteMessages`].
    Rewrite {
        /// Pattern.
        regex: Regex,
        /// Replacement.
        replacement: String,
        /// Roles (empty = all).
        roles: Vec<String>,
    },
    /// See [`RuleAction::FilterResponse`] (index into [`RuleSet::filters`]).
    Filter(usize),
    /// See [`RuleAction::StopSequences`].
    Stop(Vec<String>),
}

/// A compiled rule with its runtime state.
#[derive(Debug)]
pub struct CompiledRule {
    /// The rule as configured (its `enabled` field is the initial state only).
    pub rule: Rule,
    /// The compiled action.
    pub action: CompiledAction,
    enabled: AtomicBool,
    hits: AtomicU64,
}

impl CompiledRule {
    /// Whether the rule is currently enabled.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Times the rule changed a request or a response.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Whether the rule applies to `endpoint` (and is enabled).
    pub fn applies_to(&self, endpoint: Endpoint) -> bool {
        self.enabled()
            && (self.rule.endpoints.is_empty() || self.rule.endpoints.contains(&endpoint))
    }
}

/// Snapshot of one rule's state, for the UI and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStatus {
    /// The rule (with `enabled` reflecting the current state).
    pub rule: Rule,
    /// Times it changed a request or a response.
    pub hits: u64,
}

/// A validated, compiled list of rules. Rules apply in list order.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    filters: Vec<CompiledFilter>,
}

/// The JSON type a known request field must have.
#[derive(Clone, Copy)]
enum FieldType {
    Number,
    Integer,
    Bool,
    String,
    StringArray,
    StringOrStringArray,
    Object,
}

impl FieldType {
    fn describe(self) -> &'static str {
        match self {
            Self::Number => "a number",
            Self::Integer => "an integer",
            Self::Bool => "a boolean",
            Self::String => "a string",
            Self::StringArray => "an array of strings",
            Self::StringOrStringArray => "a string or an array of strings",
            Self::Object => "an object",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        let str_array = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        match self {
            Self::Number => v.is_number(),
            Self::Integer => v.is_i64() || v.is_u64(),
            Self::Bool => v.is_boolean(),
            Self::String => v.is_string(),
            Self::StringArray => str_array(v),
            Self::StringOrStringArray => v.is_string() || str_array(v),
            Self::Object => v.is_object(),
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Self::Number | Self::Integer)
    }
}

/// Types of the request fields of the OpenAI API and of llama.cpp's server that rules may
/// set; other names are accepted with any value.
fn known_field(name: &str) -> Option<FieldType> {
    use FieldType::*;
    Some(match name {
        "temperature" | "top_p" | "min_p" | "typical_p" | "presence_penalty"
        | "frequency_penalty" | "repeat_penalty" | "dynatemp_range" | "dynatemp_exponent"
        | "xtc_probability" | "xtc_threshold" | "mirostat_tau" | "mirostat_eta"
        | "dry_multiplier" | "dry_base" | "top_n_sigma" => Number,
        "top_k"
        | "max_tokens"
        | "max_completion_tokens"
        | "n_predict"
        | "n_probs"
        | "seed"
        | "n"
        | "repeat_last_n"
        | "n_keep"
        | "mirostat"
        | "dry_allowed_length"
        | "dry_penalty_last_n"
        | "min_keep"
        | "top_logprobs"
        | "id_slot"
        | "n_indent" => Integer,
        "cache_prompt"
        | "stream"
        | "ignore_eos"
        | "return_tokens"
        | "post_sampling_probs"
        | "timings_per_token"
        | "echo" => Bool,
        "grammar" | "model" | "user" => String,
        "samplers" | "dry_sequence_breakers" => StringArray,
        "stop" => StringOrStringArray,
        "json_schema" | "response_format" | "logit_bias" | "stream_options" => Object,
        _ => return None,
    })
}

fn build_regex(pattern: &str, literal: bool, case_insensitive: bool) -> Result<Regex, String> {
    let src = if literal {
        regex::escape(pattern)
    } else {
        pattern.to_owned()
    };
    RegexBuilder::new(&src)
        .case_insensitive(case_insensitive)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

/// Longest match of `pattern` in bytes, if bounded.
fn max_match_len(pattern: &str, literal: bool, case_insensitive: bool) -> Option<usize> {
    let src = if literal {
        regex::escape(pattern)
    } else {
        pattern.to_owned()
    };
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(case_insensitive)
        .build()
        .parse(&src)
        .ok()?;
    hir.properties().maximum_len()
}

impl RuleSet {
    /// Validate and compile `rules`. Errors name the rule (index and id) and the field.
    pub fn compile(rules: &[Rule]) -> Result<Self, RuleError> {
        let mut set = Self::default();
        for (index, rule) in rules.iter().enumerate() {
            let err = |field: &str, message: String| RuleError {
                index,
                id: rule.id.clone(),
                field: field.to_owned(),
                message,
            };
            if rule.id.trim().is_empty() {
                return Err(err("id", "must not be empty".into()));
            }
            if rules[..index].iter().any(|r| r.id == rule.id) {
                return Err(err("id", "duplicate rule id".into()));
            }
            let check_name = |name: &str| {
                if name.is_empty() {
                    Err(err("action.name", "must not be empty".into()))
                } else {
                    Ok(())
                }
            };
            let check_value = |name: &str, value: &Value| match known_field(name) {
                Some(t) if !t.accepts(value) => Err(err(
                    "action.value",
                    format!("`{name}` must be {}, got {value}", t.describe()),
                )),
                _ => Ok(()),
            };
            let action = match &rule.action {
                RuleAction::SystemPrompt { mode, text } => CompiledAction::SystemPrompt {
                    mode: *mode,
                    text: text.clone(),
                },
                RuleAction::DefaultParameter { name, value } => {
                    check_name(name)?;
                    check_value(name, value)?;
                    CompiledAction::Default {
                        name: name.clone(),
                        value: value.clone(),
                    }
                }
                RuleAction::OverrideParameter { name, value } => {
                    check_name(name)?;
                    check_value(name, value)?;
                    CompiledAction::Override {
                        name: name.clone(),
                        value: value.clone(),
                    }
                }
                RuleAction::ClampParameter { name, min, max } => {
                    check_name(name)?;
                    if let Some(t) = known_field(name) {
                        if !t.numeric() {
                            return Err(err(
                                "action.name",
                                format!(
                                    "`{name}` is not numeric ({}), it cannot be clamped",
                                    t.describe()
                                ),
                            ));
                        }
                    }
                    if min.is_none() && max.is_none() {
                        return Err(err("action", "needs `min`, `max` or both".into()));
                    }
                    for (f, v) in [("action.min", min), ("action.max", max)] {
                        if v.is_some_and(|v| !v.is_finite()) {
                            return Err(err(f, "must be finite".into()));
                        }
                    }
                    if let (Some(lo), Some(hi)) = (min, max) {
                        if lo > hi {
                            return Err(err(
                                "action.min",
                                format!("{lo} is greater than max {hi}"),
                            ));
                        }
                    }
                    CompiledAction::Clamp {
                        name: name.clone(),
                        min: *min,
                        max: *max,
                    }
                }
                RuleAction::RewriteMessages {
                    pattern,
                    replacement,
                    roles,
                    case_insensitive,
                } => {
                    let regex = build_regex(pattern, false, *case_insensitive)
                        .map_err(|m| err("action.pattern", m))?;
                    CompiledAction::Rewrite {
                        regex,
                        replacement: replacement.clone(),
                        roles: roles.clone(),
                    }
                }
                RuleAction::FilterResponse {
                    pattern,
                    action,
                    replacement,
                    literal,
                    case_insensitive,
                    max_match_len: declared,
                } => {
                    if pattern.is_empty() {
                        return Err(err("action.pattern", "must not be empty".into()));
                    }
                    let regex = build_regex(pattern, *literal, *case_insensitive)
                        .map_err(|m| err("action.pattern", m))?;
                    if regex.is_match("") {
                        return Err(err("action.pattern", "matches the empty string".into()));
                    }
                    let computed = max_match_len(pattern, *literal, *case_insensitive);
                    let max_len = match (computed, declared) {
                        (Some(c), Some(d)) => c.min(*d),
                        (Some(c), None) => c,
                        (None, Some(d)) => *d,
                        (None, None) => DEFAULT_FILTER_WINDOW,
                    };
                    if max_len == 0 || max_len > MAX_FILTER_WINDOW {
                        return Err(err(
                            if declared.is_some() { "action.max_match_len" } else { "action.pattern" },
                            format!("longest match is {max_len} bytes; must be 1..={MAX_FILTER_WINDOW} (set max_match_len)"),
                        ));
                    }
                    let replacement = replacement.clone().unwrap_or_else(|| {
                        match action {
                            FilterAction::Redact => "[REDACTED]",
                            FilterAction::Block => "[BLOCKED]",
                        }
                        .to_owned()
                    });
                    set.filters.push(CompiledFilter {
                        rule: index,
                        regex,
                        action: *action,
                        replacement,
                        max_len,
                    });
                    CompiledAction::Filter(set.filters.len() - 1)
                }
                RuleAction::StopSequences { sequences } => {
                    if sequences.is_empty() {
                        return Err(err("action.sequences", "must not be empty".into()));
                    }
                    if let Some(i) = sequences.iter().position(String::is_empty) {
                        return Err(err(
                            &format!("action.sequences[{i}]"),
                            "must not be empty".into(),
                        ));
                    }
                    CompiledAction::Stop(sequences.clone())
                }
            };
            set.rules.push(CompiledRule {
                rule: rule.clone(),
                action,
                enabled: AtomicBool::new(rule.enabled),
                hits: AtomicU64::new(0),
            });
        }
        Ok(set)
    }

    /// The compiled rules, in order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The compiled response filters, in rule order.
    pub fn filters(&self) -> &[CompiledFilter] {
        &self.filters
    }

    /// Rule by id.
    pub fn get(&self, id: &str) -> Option<&CompiledRule> {
        self.rules.iter().find(|r| r.rule.id == id)
    }

    /// Enable or disable a rule; false if no rule has that id.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> bool {
        match self.get(id) {
            Some(r) => {
                r.enabled.store(enabled, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Count one hit for each rule id in `applied`.
    pub fn record_hits(&self, applied: &[String]) {
        for id in applied {
            if let Some(r) = self.get(id) {
                r.hits.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Copy enabled flags and hit counters of rules with the same id from `old`.
    pub fn carry_state_from(&self, old: &RuleSet) {
        for r in &self.rules {
            if let Some(o) = old.get(&r.rule.id) {
                r.hits.store(o.hits(), Ordering::Relaxed);
            }
        }
    }

    /// The rules as configured, with their current enabled state.
    pub fn to_rules(&self) -> Vec<Rule> {
        self.rules
            .iter()
            .map(|r| Rule {
                enabled: r.enabled(),
                ..r.rule.clone()
            })
            .collect()
    }

    /// State of every rule.
    pub fn status(&self) -> Vec<RuleStatus> {
        self.rules
            .iter()
            .map(|r| RuleStatus {
                rule: Rule {
                    enabled: r.enabled(),
                    ..r.rule.clone()
                },
                hits: r.hits(),
            })
            .collect()
    }

    /// Whether any enabled response filter applies to `endpoint`.
    pub fn has_filters_for(&self, endpoint: Endpoint) -> bool {
        self.filters
            .iter()
            .any(|f| self.rules[f.rule].applies_to(endpoint))
    }

    /// Id of the rule at `index`.
    pub fn id_of(&self, index: usize) -> &str {
        &self.rules[index].rule.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(id: &str, action: Value) -> Rule {
        serde_json::from_value(json!({"id": id, "action": action})).expect("valid rule JSON")
    }

    #[test]
    fn type_checks_llama_fields() {
        let bad = rule(
            "s",
            json!({"type": "override_parameter", "name": "samplers", "value": "top_k"}),
        );
        let e = RuleSet::compile(&[bad]).expect_err("samplers must be an array of strings");
        assert_eq!(e.field, "action.value");
        assert!(e.to_string().contains("samplers"), "{e}");
        let good = rule(
            "s",
            json!({"type": "override_parameter", "name": "samplers", "value": ["top_k", "temperature"]}),
        );
        RuleSet::compile(&[good]).expect("array of strings is what llama.cpp takes");
        let bad = rule(
            "c",
            json!({"type": "clamp_parameter", "name": "grammar", "max": 1.0}),
        );
        assert_eq!(RuleSet::compile(&[bad]).unwrap_err().field, "action.name");
        let bad = rule(
            "n",
            json!({"type": "default_parameter", "name": "n_probs", "value": 1.5}),
        );
        assert_eq!(RuleSet::compile(&[bad]).unwrap_err().field, "action.value");
    }

    #[test]
    fn errors_name_rule_and_field() {
        let rules = [
            rule("a", json!({"type": "stop_sequences", "sequences": ["x"]})),
            rule(
                "b",
                json!({"type": "filter_response", "pattern": "(", "action": "redact"}),
            ),
        ];
        let e = RuleSet::compile(&rules).unwrap_err();
        assert_eq!(
            (e.index, e.id.as_str(), e.field.as_str()),
            (1, "b", "action.pattern")
        );
        let dup = [
            rule("a", json!({"type": "stop_sequences", "sequences": ["x"]})),
            rules[0].clone(),
        ];
        assert_eq!(
            RuleSet::compile(&dup).unwrap_err().message,
            "duplicate rule id"
        );
        let empty = rule(
            "e",
            json!({"type": "filter_response", "pattern": "a*", "action": "redact"}),
        );
        assert_eq!(
            RuleSet::compile(&[empty]).unwrap_err().message,
            "matches the empty string"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_value::<Rule>(
            json!({"id": "x", "action": {"type": "stop_sequences", "sequences": [], "oops": 1}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("oops"), "{e}");
        let e = serde_json::from_value::<Rule>(
            json!({"id": "x", "colour": 1, "action": {"type": "stop_sequences", "sequences": []}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn filter_windows() {
        let rules = [
            rule(
                "lit",
                json!({"type": "filter_response", "pattern": "secret", "action": "redact", "literal": true}),
            ),
            rule(
                "unb",
                json!({"type": "filter_response", "pattern": "a+b", "action": "redact"}),
            ),
            rule(
                "dec",
                json!({"type": "filter_response", "pattern": "x+", "action": "block", "max_match_len": 10}),
            ),
        ];
        let set = RuleSet::compile(&rules).unwrap();
        let lens: Vec<usize> = set.filters().iter().map(|f| f.max_len).collect();
        assert_eq!(
            lens,
            vec![6, DEFAULT_FILTER_WINDOW, 10],
            "literal length, default window, declared window"
        );
    }
}
