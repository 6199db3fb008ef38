//! Rules: what the proxy changes in requests and responses, and their validation.
//!
//! A [`Rule`] is the serializable form (it lives in the `server.rules` array of the
//! configuration JSON); [`compile`] validates a list of them (regexes compiled, parameter
//! values type-checked against the llama.cpp / OpenAI field they target) into the form the
//! proxy's pure request/response functions use ([`Compiled`]). The proxy wraps that form in its
//! runtime `RuleSet` (enabled flags and hit counters); the edit engine uses it to check a
//! configuration's rules without running a proxy.

use regex::{Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A rewritten endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// OpenAI `POST /v1/chat/completions` (also `/chat/completions`).
    ChatCompletions,
    /// OpenAI `POST /v1/completions` (also `/completions`).
    Completions,
    /// llama.cpp `POST /completion`.
    LlamaCompletion,
}

impl Endpoint {
    /// The endpoint served at `path` (query excluded), if it is one the proxy rewrites.
    pub fn from_path(path: &str) -> Option<Self> {
        match path.trim_end_matches('/') {
            "/v1/chat/completions" | "/chat/completions" => Some(Self::ChatCompletions),
            "/v1/completions" | "/completions" => Some(Self::Completions),
            "/completion" => Some(Self::LlamaCompletion),
            _ => None,
        }
    }
}

/// One rule as written in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterAction {
    /// Replace each match by the replacement text.
    Redact,
    /// Stop the answer at the match: the matched text is never sent, the answer ends with
    /// the replacement text and `finish_reason: "content_filter"`.
    Block,
}

/// The action of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// Index of the owning rule in the rule list.
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
    /// See [`RuleAction::FilterResponse`] (index into [`Compiled::filters`]).
    Filter(usize),
    /// See [`RuleAction::StopSequences`].
    Stop(Vec<String>),
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

/// A validated rule list in compiled form: one action per rule, in rule order, and the
/// response filters those actions point to.
#[derive(Debug, Default)]
pub struct Compiled {
    /// The compiled action of each rule, in rule order.
    pub actions: Vec<CompiledAction>,
    /// The response filters, in rule order ([`CompiledAction::Filter`] indexes this list).
    pub filters: Vec<CompiledFilter>,
}

/// Validate and compile `rules`. Errors name the rule (index and id) and the field.
pub fn compile(rules: &[Rule]) -> Result<Compiled, RuleError> {
    let mut set = Compiled::default();
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
                        return Err(err("action.min", format!("{lo} is greater than max {hi}")));
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
        set.actions.push(action);
    }
    Ok(set)
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
        let e = compile(&[bad]).expect_err("samplers must be an array of strings");
        assert_eq!(e.field, "action.value");
        assert!(e.to_string().contains("samplers"), "{e}");
        let good = rule(
            "s",
            json!({"type": "override_parameter", "name": "samplers", "value": ["top_k", "temperature"]}),
        );
        compile(&[good]).expect("array of strings is what llama.cpp takes");
        let bad = rule(
            "c",
            json!({"type": "clamp_parameter", "name": "grammar", "max": 1.0}),
        );
        assert_eq!(compile(&[bad]).unwrap_err().field, "action.name");
        let bad = rule(
            "n",
            json!({"type": "default_parameter", "name": "n_probs", "value": 1.5}),
        );
        assert_eq!(compile(&[bad]).unwrap_err().field, "action.value");
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
        let e = compile(&rules).unwrap_err();
        assert_eq!(
            (e.index, e.id.as_str(), e.field.as_str()),
            (1, "b", "action.pattern")
        );
        let dup = [
            rule("a", json!({"type": "stop_sequences", "sequences": ["x"]})),
            rules[0].clone(),
        ];
        assert_eq!(compile(&dup).unwrap_err().message, "duplicate rule id");
        let empty = rule(
            "e",
            json!({"type": "filter_response", "pattern": "a*", "action": "redact"}),
        );
        assert_eq!(
            compile(&[empty]).unwrap_err().message,
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
        let set = compile(&rules).unwrap();
        let lens: Vec<usize> = set.filters.iter().map(|f| f.max_len).collect();
        assert_eq!(
            lens,
            vec![6, DEFAULT_FILTER_WINDOW, 10],
            "literal length, default window, declared window"
        );
    }

    #[test]
    fn kind_is_the_serde_tag() {
        let actions = [
            json!({"type": "system_prompt", "mode": "append", "text": "t"}),
            json!({"type": "default_parameter", "name": "n", "value": 1}),
            json!({"type": "override_parameter", "name": "n", "value": 1}),
            json!({"type": "clamp_parameter", "name": "n", "max": 1.0}),
            json!({"type": "rewrite_messages", "pattern": "a", "replacement": "b"}),
            json!({"type": "filter_response", "pattern": "a", "action": "block"}),
            json!({"type": "stop_sequences", "sequences": ["x"]}),
        ];
        for a in actions {
            let r = rule("k", a.clone());
            assert_eq!(Some(r.action.kind()), a["type"].as_str());
        }
    }
}
