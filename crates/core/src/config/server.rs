//! The `server` section: settings of the request/response proxy.
//!
//! A plain serde mirror of `hotpatch_proxy::ProxySettings` (same JSON shape, same defaults),
//! kept here so that the core — which must not depend on tokio — can read, validate, preview
//! and write a whole configuration. The proxy crate (or the CLI) converts this section into its
//! own settings type through JSON, so the two can never disagree silently: a test in the CLI
//! crate round-trips every shipped preset's server section through both types.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Settings of the proxy (the `server` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on (default 127.0.0.1: loopback only).
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free port. Default 8090.
    pub port: u16,
    /// Upstream base URL, `http://host:port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Time allowed to connect to the upstream, in ms (default 2000).
    pub connect_timeout_ms: u64,
    /// Time allowed for the upstream to answer (response headers), in ms (default 120000).
    pub response_timeout_ms: u64,
    /// Longest silence allowed inside a streamed upstream body, in ms (default 120000).
    pub idle_timeout_ms: u64,
    /// Largest request body accepted, in bytes (default 8 MiB).
    pub body_limit_bytes: usize,
    /// Largest non-streamed upstream answer read to rewrite, in bytes (default 64 MiB).
    pub response_limit_bytes: usize,
    /// The rules, applied in order.
    pub rules: Vec<Rule>,
    /// The response cache.
    pub cache: CacheSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8090,
            upstream: None,
            connect_timeout_ms: 2_000,
            response_timeout_ms: 120_000,
            idle_timeout_ms: 120_000,
            body_limit_bytes: 8 << 20,
            response_limit_bytes: 64 << 20,
            rules: Vec::new(),
            cache: CacheSettings::default(),
        }
    }
}

/// Response cache settings (`server.cache`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Whether answers are cached (default false).
    pub enabled: bool,
    /// Seconds an answer stays valid (default 300).
    pub ttl_secs: u64,
    /// Most answers kept (default 1000).
    pub max_entries: usize,
    /// Most bytes kept (default 64 MiB).
    pub max_bytes: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            ttl_secs: 300,
            max_entries: 1000,
            max_bytes: 64 << 20,
        }
    }
}

/// An endpoint the proxy rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
    /// OpenAI `POST /v1/completions`.
    Completions,
    /// llama.cpp `POST /completion`.
    LlamaCompletion,
}

/// One proxy rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique identifier.
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

/// Where an injected system prompt goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InjectMode {
    /// Before the existing system prompt.
    Prepend,
    /// After the existing system prompt.
    Append,
    /// Instead of the existing system prompt.
    Replace,
}

/// What a response filter does on a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterAction {
    /// Replace each match.
    Redact,
    /// End the answer at the match.
    Block,
}

/// The action of a proxy rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleAction {
    /// Inject a system prompt.
    SystemPrompt {
        /// Placement.
        mode: InjectMode,
        /// The text.
        text: String,
    },
    /// Set a request field when the client did not send it.
    DefaultParameter {
        /// Field name.
        name: String,
        /// Value.
        value: Value,
    },
    /// Set a request field, replacing the client's.
    OverrideParameter {
        /// Field name.
        name: String,
        /// Value.
        value: Value,
    },
    /// Keep a numeric request field inside `[min, max]`.
    ClampParameter {
        /// Field name.
        name: String,
        /// Lower bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Upper bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// Regex replace in messages or the prompt.
    RewriteMessages {
        /// Regular expression.
        pattern: String,
        /// Replacement.
        replacement: String,
        /// Roles rewritten; empty = all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
        /// Case-insensitive.
        #[serde(default)]
        case_insensitive: bool,
    },
    /// Redact or block answer text.
    FilterResponse {
        /// Pattern (regex, or literal when `literal`).
        pattern: String,
        /// Redact or block.
        action: FilterAction,
        /// Replacement text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replacement: Option<String>,
        /// Literal pattern.
        #[serde(default)]
        literal: bool,
        /// Case-insensitive.
        #[serde(default)]
        case_insensitive: bool,
        /// Longest match in bytes for unbounded patterns.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_match_len: Option<usize>,
    },
    /// Add stop sequences.
    StopSequences {
        /// The sequences.
        sequences: Vec<String>,
    },
}

impl ServerSettings {
    /// The response-filter rules (what `applySafetyFilters` turns on).
    pub fn response_filters(&self) -> impl Iterator<Item = &Rule> {
        self.rules
            .iter()
            .filter(|r| matches!(r.action, RuleAction::FilterResponse { .. }))
    }

    /// A summary of the section for previews: rule kinds by id, cache state.
    pub fn summary(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for r in &self.rules {
            let kind = serde_json::to_value(&r.action)
                .ok()
                .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            m.insert(
                format!("rule {}", r.id),
                format!("{kind}{}", if r.enabled { "" } else { " (disabled)" }),
            );
        }
        m.insert(
            "cache".into(),
            if self.cache.enabled {
                "on".into()
            } else {
                "off".into()
            },
        );
        m
    }
}
