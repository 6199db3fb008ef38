//! The Server screen: the request/response proxy (`hotpatch-proxy`) run inside the app.
//!
//! Overview: the proxy's settings live in the session [`Manager`] (its `server` section, so a
//! configuration export carries them); [`ProxyControl`] (managed Tauri state) holds the running
//! proxy, if any, and a bounded log of the requests it answered. Every settings change goes
//! through [`ProxyControl::update`]: the new section is validated by the proxy crate (errors
//! name the rule and the field), stored in the manager, and pushed to the running proxy (rules
//! and cache apply at once; hit counters of rules keeping their id are kept). The listening
//! address and the upstream are fixed while the proxy runs.
//!
//! Requests stream to the UI as [`RequestLogEntry`] values over a `Channel` registered with
//! [`watch_proxy_log`]; the newest [`LOG_CAPACITY`] stay in memory for a screen opened later.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hotpatch_core::config::server as core_server;
use hotpatch_core::config::ServerSettings;
use hotpatch_core::manager::Manager;
use hotpatch_proxy::{ProxyEvent, RequestLog, Supervisor, SupervisorError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use specta::Type;
use specta_typescript::Number;
use tauri::ipc::Channel;
use tauri::State;

use crate::error::{ErrorCode, IpcError};
use crate::state::AppState;

/// Requests kept in the in-memory log (newest first).
pub const LOG_CAPACITY: usize = hotpatch_proxy::supervisor::LOG_CAPACITY;

/// How long a stop waits for requests in flight before leaving them to finish alone.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How long the upstream check waits for a TCP connection.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

// ----- IPC types ------------------------------------------------------------------------------

/// An endpoint a rule may be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum RuleEndpoint {
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
    /// OpenAI `POST /v1/completions`.
    Completions,
    /// llama.cpp `POST /completion`.
    LlamaCompletion,
}

/// Where an injected system prompt goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum InjectMode {
    /// Before the client's system prompt.
    Prepend,
    /// After the client's system prompt.
    Append,
    /// Instead of the client's system prompt.
    Replace,
}

/// What a response filter does on a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum FilterAction {
    /// Replace each match.
    Redact,
    /// End the answer at the match.
    Block,
}

/// What a rule does (the rule kinds of `hotpatch-proxy`). Parameter values are JSON text
/// (`0.7`, `true`, `"text"`, `["a","b"]`), as typed in the form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RuleActionSpec {
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
        /// The value as JSON text.
        value: String,
    },
    /// Set a request field, replacing the client's.
    OverrideParameter {
        /// Field name.
        name: String,
        /// The value as JSON text.
        value: String,
    },
    /// Keep a numeric request field inside `[min, max]`.
    ClampParameter {
        /// Field name.
        name: String,
        /// Lower bound.
        min: Option<f64>,
        /// Upper bound.
        max: Option<f64>,
    },
    /// Regex replace in messages (chat) or the prompt (completions).
    RewriteMessages {
        /// Regular expression.
        pattern: String,
        /// Replacement (`$1` refers to a group).
        replacement: String,
        /// Roles rewritten; empty = all.
        roles: Vec<String>,
        /// Case-insensitive match.
        #[serde(rename = "caseInsensitive")]
        case_insensitive: bool,
    },
    /// Redact or block answer text (streamed answers included).
    FilterResponse {
        /// Pattern (regex, or literal text when `literal`).
        pattern: String,
        /// Redact or block.
        action: FilterAction,
        /// Replacement text (default `[REDACTED]` / `[BLOCKED]`).
        replacement: Option<String>,
        /// Treat the pattern as literal text.
        literal: bool,
        /// Case-insensitive match.
        #[serde(rename = "caseInsensitive")]
        case_insensitive: bool,
        /// Longest match in bytes for unbounded patterns.
        #[serde(rename = "maxMatchLen")]
        max_match_len: Option<u32>,
    },
    /// Add stop sequences to the request.
    StopSequences {
        /// The sequences.
        sequences: Vec<String>,
    },
}

/// A rule as the form edits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RuleSpec {
    /// Unique id (shown in the request log).
    pub id: String,
    /// Applied or not.
    pub enabled: bool,
    /// Endpoints it applies to; empty = every rewritten endpoint.
    pub endpoints: Vec<RuleEndpoint>,
    /// What it does.
    pub action: RuleActionSpec,
}

/// A rule with its hit counter.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    /// The rule.
    pub rule: RuleSpec,
    /// Times it changed a request or an answer since the proxy started.
    #[specta(type = Number)]
    pub hits: u64,
}

/// The response cache settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CacheSpec {
    /// Answers are cached.
    pub enabled: bool,
    /// Seconds an answer stays valid.
    #[specta(type = Number)]
    pub ttl_secs: u64,
    /// Most answers kept.
    #[specta(type = Number)]
    pub max_entries: u64,
    /// Most bytes kept.
    #[specta(type = Number)]
    pub max_bytes: u64,
}

/// Cache counters of the running proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct CacheCounters {
    /// Answers held.
    #[specta(type = Number)]
    pub entries: u64,
    /// Bytes held.
    #[specta(type = Number)]
    pub bytes: u64,
    /// Lookups answered from the cache.
    #[specta(type = Number)]
    pub hits: u64,
    /// Lookups that found nothing fresh.
    #[specta(type = Number)]
    pub misses: u64,
    /// Answers dropped to respect the bounds.
    #[specta(type = Number)]
    pub evictions: u64,
}

/// Whether the proxy runs, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    /// The proxy is listening.
    pub running: bool,
    /// `http://127.0.0.1:8090` while running.
    pub listening: Option<String>,
    /// The upstream it forwards to while running.
    pub upstream: Option<String>,
    /// While running on the built-in upstream: what it serves (the open model, edits
    /// included, by the embedded llama.cpp); `null` for an external upstream.
    pub builtin: Option<String>,
    /// Unix time (ms) it started.
    #[specta(type = Option<Number>)]
    pub started_unix_ms: Option<u64>,
    /// Requests answered since it started.
    #[specta(type = Number)]
    pub requests: u64,
    /// Cache counters while running.
    pub cache: Option<CacheCounters>,
}

/// Everything the Server screen shows.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ServerView {
    /// Upstream URL (`http://host:port`), if set.
    pub upstream: Option<String>,
    /// Listening address.
    pub bind: String,
    /// Listening port (0 = any free port).
    pub port: u16,
    /// The rules, in the order they apply.
    pub rules: Vec<RuleView>,
    /// The cache settings.
    pub cache: CacheSpec,
    /// The running state.
    pub status: ProxyStatus,
}

/// What the proxy did with the cache for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum CacheOutcome {
    /// Answered from the cache.
    Hit,
    /// Looked up (or cacheable) and sent upstream.
    Miss,
    /// A path the proxy passes through untouched (never cached).
    Pass,
}

/// One request in the live log.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RequestLogEntry {
    /// Request id (also the `x-hotpatch-request-id` header).
    #[specta(type = Number)]
    pub id: u64,
    /// Unix time (ms) it arrived.
    #[specta(type = Number)]
    pub time_unix_ms: u64,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status sent to the client.
    pub status: u16,
    /// Status the upstream answered, if reached.
    pub upstream_status: Option<u16>,
    /// Ids of the rules that changed the request or the answer.
    pub rules_applied: Vec<String>,
    /// Cache outcome.
    pub cache: CacheOutcome,
    /// A block rule ended the answer.
    pub blocked: bool,
    /// The answer was streamed (SSE).
    pub streamed: bool,
    /// Milliseconds until the response headers.
    #[specta(type = Number)]
    pub latency_ms: f64,
    /// Milliseconds until the body was complete.
    #[specta(type = Number)]
    pub duration_ms: f64,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

impl From<&ProxyEvent> for RequestLogEntry {
    fn from(e: &ProxyEvent) -> Self {
        RequestLogEntry {
            id: e.id,
            time_unix_ms: e.started_unix_ms,
            method: e.method.clone(),
            path: e.path.clone(),
            status: e.status,
            upstream_status: e.upstream_status,
            rules_applied: e.rules_applied.clone(),
            cache: if e.endpoint.is_none() {
                CacheOutcome::Pass
            } else if e.cache_hit {
                CacheOutcome::Hit
            } else {
                CacheOutcome::Miss
            },
            blocked: e.blocked,
            streamed: e.streamed,
            latency_ms: e.latency_us as f64 / 1000.0,
            duration_ms: e.duration_us as f64 / 1000.0,
            error: e.error.clone(),
        }
    }
}

/// Result of probing the upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamCheck {
    /// A TCP connection to the upstream's host and port succeeded.
    pub reachable: bool,
    /// `host:port` probed.
    pub authority: String,
    /// Connect time in ms when reachable.
    #[specta(type = Option<Number>)]
    pub connect_ms: Option<f64>,
    /// Why not, when unreachable.
    pub error: Option<String>,
}

// ----- conversions ----------------------------------------------------------------------------

fn bad(message: impl Into<String>) -> IpcError {
    IpcError::new(ErrorCode::BadRequest, message)
}

fn endpoint_to_core(e: RuleEndpoint) -> core_server::Endpoint {
    match e {
        RuleEndpoint::ChatCompletions => core_server::Endpoint::ChatCompletions,
        RuleEndpoint::Completions => core_server::Endpoint::Completions,
        RuleEndpoint::LlamaCompletion => core_server::Endpoint::LlamaCompletion,
    }
}

fn endpoint_from_core(e: core_server::Endpoint) -> RuleEndpoint {
    match e {
        core_server::Endpoint::ChatCompletions => RuleEndpoint::ChatCompletions,
        core_server::Endpoint::Completions => RuleEndpoint::Completions,
        core_server::Endpoint::LlamaCompletion => RuleEndpoint::LlamaCompletion,
    }
}

fn parse_value(id: &str, value: &str) -> Result<serde_json::Value, IpcError> {
    serde_json::from_str(value.trim()).map_err(|e| {
        bad(format!(
            "rule {id:?}: action.value: {value:?} is not JSON ({e}); write 0.7, true, \"text\" or [\"a\", \"b\"]"
        ))
    })
}

impl RuleSpec {
    /// The rule in the configuration's form. Values are parsed here; everything else (ids,
    /// regexes, value types) is checked by the proxy crate in [`ProxyControl::update`].
    pub fn to_core(&self) -> Result<core_server::Rule, IpcError> {
        use core_server::RuleAction as A;
        let id = self.id.trim().to_owned();
        let action = match &self.action {
            RuleActionSpec::SystemPrompt { mode, text } => A::SystemPrompt {
                mode: match mode {
                    InjectMode::Prepend => core_server::InjectMode::Prepend,
                    InjectMode::Append => core_server::InjectMode::Append,
                    InjectMode::Replace => core_server::InjectMode::Replace,
                },
                text: text.clone(),
            },
            RuleActionSpec::DefaultParameter { name, value } => A::DefaultParameter {
                name: name.trim().to_owned(),
                value: parse_value(&id, value)?,
            },
            RuleActionSpec::OverrideParameter { name, value } => A::OverrideParameter {
                name: name.trim().to_owned(),
                value: parse_value(&id, value)?,
            },
            RuleActionSpec::ClampParameter { name, min, max } => {
                for (field, v) in [("min", min), ("max", max)] {
                    if v.is_some_and(|v| !v.is_finite()) {
                        return Err(bad(format!(
                            "rule {id:?}: action.{field}: must be a finite number"
                        )));
                    }
                }
                if min.is_none() && max.is_none() {
                    return Err(bad(format!(
                        "rule {id:?}: action: give a min, a max or both"
                    )));
                }
                A::ClampParameter {
                    name: name.trim().to_owned(),
                    min: *min,
                    max: *max,
                }
            }
            RuleActionSpec::RewriteMessages {
                pattern,
                replacement,
                roles,
                case_insensitive,
            } => A::RewriteMessages {
                pattern: pattern.clone(),
                replacement: replacement.clone(),
                roles: roles
                    .iter()
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty())
                    .collect(),
                case_insensitive: *case_insensitive,
            },
            RuleActionSpec::FilterResponse {
                pattern,
                action,
                replacement,
                literal,
                case_insensitive,
                max_match_len,
            } => A::FilterResponse {
                pattern: pattern.clone(),
                action: match action {
                    FilterAction::Redact => core_server::FilterAction::Redact,
                    FilterAction::Block => core_server::FilterAction::Block,
                },
                replacement: replacement.clone(),
                literal: *literal,
                case_insensitive: *case_insensitive,
                max_match_len: max_match_len.map(|n| n as usize),
            },
            RuleActionSpec::StopSequences { sequences } => {
                if sequences.iter().all(String::is_empty) {
                    return Err(bad(format!(
                        "rule {id:?}: action.sequences: give at least one stop sequence"
                    )));
                }
                A::StopSequences {
                    sequences: sequences
                        .iter()
                        .filter(|s| !s.is_empty())
                        .cloned()
                        .collect(),
                }
            }
        };
        Ok(core_server::Rule {
            id,
            enabled: self.enabled,
            endpoints: self
                .endpoints
                .iter()
                .copied()
                .map(endpoint_to_core)
                .collect(),
            action,
        })
    }

    /// The form's view of a configured rule.
    pub fn from_core(r: &core_server::Rule) -> RuleSpec {
        use core_server::RuleAction as A;
        let action = match &r.action {
            A::SystemPrompt { mode, text } => RuleActionSpec::SystemPrompt {
                mode: match mode {
                    core_server::InjectMode::Prepend => InjectMode::Prepend,
                    core_server::InjectMode::Append => InjectMode::Append,
                    core_server::InjectMode::Replace => InjectMode::Replace,
                },
                text: text.clone(),
            },
            A::DefaultParameter { name, value } => RuleActionSpec::DefaultParameter {
                name: name.clone(),
                value: value.to_string(),
            },
            A::OverrideParameter { name, value } => RuleActionSpec::OverrideParameter {
                name: name.clone(),
                value: value.to_string(),
            },
            A::ClampParameter { name, min, max } => RuleActionSpec::ClampParameter {
                name: name.clone(),
                min: *min,
                max: *max,
            },
            A::RewriteMessages {
                pattern,
                replacement,
                roles,
                case_insensitive,
            } => RuleActionSpec::RewriteMessages {
                pattern: pattern.clone(),
                replacement: replacement.clone(),
                roles: roles.clone(),
                case_insensitive: *case_insensitive,
            },
            A::FilterResponse {
                pattern,
                action,
                replacement,
                literal,
                case_insensitive,
                max_match_len,
            } => RuleActionSpec::FilterResponse {
                pattern: pattern.clone(),
                action: match action {
                    core_server::FilterAction::Redact => FilterAction::Redact,
                    core_server::FilterAction::Block => FilterAction::Block,
                },
                replacement: replacement.clone(),
                literal: *literal,
                case_insensitive: *case_insensitive,
                max_match_len: max_match_len.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            },
            A::StopSequences { sequences } => RuleActionSpec::StopSequences {
                sequences: sequences.clone(),
            },
        };
        RuleSpec {
            id: r.id.clone(),
            enabled: r.enabled,
            endpoints: r
                .endpoints
                .iter()
                .copied()
                .map(endpoint_from_core)
                .collect(),
            action,
        }
    }
}

impl CacheSpec {
    fn from_core(c: &core_server::CacheSettings) -> CacheSpec {
        CacheSpec {
            enabled: c.enabled,
            ttl_secs: c.ttl_secs,
            max_entries: c.max_entries as u64,
            max_bytes: c.max_bytes as u64,
        }
    }

    /// The settings in the configuration's form, checked by `CacheSettings::validate`.
    fn to_core(&self) -> Result<core_server::CacheSettings, IpcError> {
        let size = |v: u64, f: &str| {
            usize::try_from(v).map_err(|_| bad(format!("cache.{f}: {v} is too large")))
        };
        let cache = core_server::CacheSettings {
            enabled: self.enabled,
            ttl_secs: self.ttl_secs,
            max_entries: size(self.max_entries, "max_entries")?,
            max_bytes: size(self.max_bytes, "max_bytes")?,
        };
        cache.validate().map_err(|e| bad(e.to_string()))?;
        Ok(cache)
    }
}

/// A configuration's `server` section, validated for the proxy (rules compiled, upstream
/// URL parsed). Errors name the field.
pub fn proxy_settings(s: &ServerSettings) -> Result<ServerSettings, IpcError> {
    s.validate().map_err(|e| bad(e.to_string()))?;
    Ok(s.clone())
}

// ----- the running proxy ----------------------------------------------------------------------

type Watcher = Box<dyn Fn(&RequestLogEntry) -> bool + Send + Sync>;

struct Running {
    proxy: Supervisor,
    /// What the built-in upstream serves, if the proxy runs on one.
    builtin: Option<String>,
}

/// The running proxy (a `hotpatch_proxy::Supervisor`) and its request log (managed Tauri
/// state); the log outlives a run.
#[derive(Default)]
pub struct ProxyControl {
    running: Mutex<Option<Running>>,
    starting: Mutex<bool>,
    log: RequestLog,
}

impl std::fmt::Debug for ProxyControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyControl")
            .field("running", &self.running.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl ProxyControl {
    /// Whether the proxy runs.
    pub fn is_running(&self) -> bool {
        self.running.lock().is_some()
    }

    /// The screen's view: the manager's settings, with the running proxy's hit counters and
    /// enabled flags.
    pub fn view(&self, session: &Manager) -> ServerView {
        let s = session.server();
        let running = self.running.lock();
        let live = running.as_ref().map(|r| r.proxy.handle().rules());
        let rules = s
            .rules
            .iter()
            .map(|r| {
                let hits = live
                    .as_ref()
                    .and_then(|l| l.iter().find(|x| x.rule.id == r.id))
                    .map_or(0, |x| x.hits);
                RuleView {
                    rule: RuleSpec::from_core(r),
                    hits,
                }
            })
            .collect();
        let requests = self.log.requests();
        let status = match running.as_ref() {
            None => ProxyStatus {
                running: false,
                listening: None,
                upstream: None,
                builtin: None,
                started_unix_ms: None,
                requests,
                cache: None,
            },
            Some(r) => {
                let c = r.proxy.handle().cache_stats();
                ProxyStatus {
                    running: true,
                    listening: Some(format!("http://{}", r.proxy.handle().local_addr())),
                    upstream: Some(r.proxy.upstream().to_owned()),
                    builtin: r.builtin.clone(),
                    started_unix_ms: Some(r.proxy.started_unix_ms()),
                    requests,
                    cache: Some(CacheCounters {
                        entries: c.entries as u64,
                        bytes: c.bytes as u64,
                        hits: c.hits,
                        misses: c.misses,
                        evictions: c.evictions,
                    }),
                }
            }
        };
        ServerView {
            upstream: s.upstream.clone(),
            bind: s.bind.to_string(),
            port: s.port,
            rules,
            cache: CacheSpec::from_core(&s.cache),
            status,
        }
    }

    /// Changes the settings through `edit`: validated by the proxy crate, stored in the
    /// manager, applied to the running proxy. Nothing changes when `edit` or validation fails.
    pub fn update(
        &self,
        session: &Manager,
        edit: impl FnOnce(&mut ServerSettings) -> Result<(), IpcError>,
    ) -> Result<(), IpcError> {
        let mut s = session.server();
        edit(&mut s)?;
        let proxy = proxy_settings(&s)?;
        let running = self.running.lock();
        if let Some(r) = running.as_ref() {
            r.proxy
                .handle()
                .set_rules(&proxy.rules)
                .map_err(|e| bad(format!("server.{e}")))?;
            r.proxy.handle().set_cache_settings(proxy.cache.clone());
        }
        session.set_server(s);
        Ok(())
    }

    /// Pushes the manager's current settings to the running proxy (after a configuration
    /// import, a preset or boost changed them).
    pub fn sync(&self, session: &Manager) -> Result<(), IpcError> {
        self.update(session, |_| Ok(()))
    }

    /// Starts the proxy with the manager's settings (on the current tokio runtime).
    pub async fn start(&self, session: &Manager) -> Result<(), IpcError> {
        self.start_with(session, None).await
    }

    /// Starts the proxy in front of the built-in upstream: an OpenAI-compatible server of the
    /// embedded engine (`backend`, described by `label`) on a loopback port of its own. The
    /// settings' upstream is left as it is (used again by a later plain start).
    pub async fn start_builtin(
        &self,
        session: &Manager,
        backend: Arc<dyn hotpatch_infer::Backend>,
        label: String,
    ) -> Result<(), IpcError> {
        self.start_with(session, Some((backend, label))).await
    }

    async fn start_with(
        &self,
        session: &Manager,
        builtin: Option<(Arc<dyn hotpatch_infer::Backend>, String)>,
    ) -> Result<(), IpcError> {
        let settings = proxy_settings(&session.server())?;
        if builtin.is_none() && settings.upstream.is_none() {
            return Err(bad(
                "server.upstream: not set (give the URL of the LLM server, e.g. http://127.0.0.1:8080, or start on the built-in engine)",
            ));
        }
        {
            let mut starting = self.starting.lock();
            if *starting || self.is_running() {
                return Err(IpcError::new(
                    ErrorCode::Refused,
                    "the proxy is already running",
                ));
            }
            *starting = true;
        }
        let (backend, label) = builtin.unzip();
        let started = Supervisor::start(settings, backend, self.log.clone()).await;
        let result = match started {
            Err(e) => {
                let code = match e {
                    SupervisorError::Engine(_)
                    | SupervisorError::Proxy(hotpatch_proxy::ProxyError::Bind { .. }) => {
                        ErrorCode::Io
                    }
                    SupervisorError::Proxy(_) => ErrorCode::BadRequest,
                };
                Err(IpcError::new(code, e.to_string()))
            }
            Ok(proxy) => {
                *self.running.lock() = Some(Running {
                    proxy,
                    builtin: label,
                });
                Ok(())
            }
        };
        *self.starting.lock() = false;
        result
    }

    /// Stops the proxy: no new connections; requests in flight get a few seconds to finish.
    pub async fn stop(&self) -> Result<(), IpcError> {
        let Some(r) = self.running.lock().take() else {
            return Err(IpcError::new(
                ErrorCode::Refused,
                "the proxy is not running",
            ));
        };
        r.proxy.stop(Some(STOP_GRACE)).await;
        Ok(())
    }

    /// The log, newest first; `watcher` (if any) then receives every new entry until it
    /// returns false or another watcher replaces it.
    pub fn watch(&self, watcher: Option<Watcher>) -> Vec<RequestLogEntry> {
        let watcher = watcher.map(|f| -> hotpatch_proxy::supervisor::Watcher {
            Box::new(move |e| f(&RequestLogEntry::from(e)))
        });
        self.log
            .watch(watcher)
            .iter()
            .map(RequestLogEntry::from)
            .collect()
    }

    /// Empties the running proxy's response cache (counters stay).
    pub fn clear_cache(&self) -> Result<(), IpcError> {
        match self.running.lock().as_ref() {
            Some(r) => {
                r.proxy.handle().clear_cache();
                Ok(())
            }
            None => Err(IpcError::new(
                ErrorCode::Refused,
                "the proxy is not running",
            )),
        }
    }

    /// Empties the log (the request counter stays).
    pub fn clear_log(&self) {
        self.log.clear();
    }
}

/// Probes `url`'s host and port with a TCP connection.
pub async fn probe_upstream(url: &str) -> Result<UpstreamCheck, IpcError> {
    let p = hotpatch_proxy::probe_upstream(url, CHECK_TIMEOUT)
        .await
        .map_err(|e| bad(e.to_string()))?;
    Ok(UpstreamCheck {
        reachable: p.reachable,
        authority: p.authority,
        connect_ms: p.connect.map(|d| d.as_secs_f64() * 1000.0),
        error: p.error,
    })
}

fn find_rule(s: &ServerSettings, id: &str) -> Result<usize, IpcError> {
    s.rules
        .iter()
        .position(|r| r.id == id)
        .ok_or_else(|| IpcError::new(ErrorCode::NotFound, format!("no rule with id {id:?}")))
}

// ----- commands -------------------------------------------------------------------------------

/// The Server screen's state.
#[tauri::command]
#[specta::specta]
pub fn server_state(state: State<'_, AppState>, proxy: State<'_, ProxyControl>) -> ServerView {
    proxy.view(state.session())
}

/// Sets the upstream URL and the listening address (refused while the proxy runs).
#[tauri::command]
#[specta::specta]
pub fn set_server_address(
    state: State<'_, AppState>,
    proxy: State<'_, ProxyControl>,
    upstream: String,
    bind: String,
    port: u32,
) -> Result<ServerView, IpcError> {
    if proxy.is_running() {
        return Err(IpcError::new(
            ErrorCode::Refused,
            "stop the proxy before changing its upstream or listening address",
        ));
    }
    let upstream = upstream.trim();
    let bind: IpAddr = bind.trim().parse().map_err(|_| {
        bad(format!(
            "server.bind: {bind:?} is not an IP address (e.g. 127.0.0.1)"
        ))
    })?;
    let port = u16::try_from(port)
        .map_err(|_| bad(format!("server.port: {port} is not a port (0..65535)")))?;
    proxy.update(state.session(), |s| {
        s.upstream = (!upstream.is_empty()).then(|| upstream.to_owned());
        s.bind = bind;
        s.port = port;
        Ok(())
    })?;
    Ok(proxy.view(state.session()))
}

/// Adds a rule, or replaces the rule `replace` (keeping its place in the order).
#[tauri::command]
#[specta::specta]
pub fn save_rule(
    state: State<'_, AppState>,
    proxy: State<'_, ProxyControl>,
    rule: RuleSpec,
    replace: Option<String>,
) -> Result<ServerView, IpcError> {
    let rule = rule.to_core()?;
    proxy.update(state.session(), |s| {
        match replace {
            Some(old) => {
                let i = find_rule(s, &old)?;
                s.rules[i] = rule;
            }
            None => s.rules.push(rule),
        }
        Ok(())
    })?;
    Ok(proxy.view(state.session()))
}

/// Deletes a rule.
#[tauri::command]
#[specta::specta]
pub fn delete_rule(
    state: State<'_, AppState>,
    proxy: State<'_, ProxyControl>,
    id: String,
) -> Result<ServerView, IpcError> {
    proxy.update(state.session(), |s| {
        let i = find_rule(s, &id)?;
        s.rules.remove(i);
        Ok(())
    })?;
    Ok(proxy.view(state.session()))
}

/// Enables or disables a rule.
#[tauri::command]
#[specta::specta]
pub fn set_rule_enabled(
    state: State<'_, AppState>,
    proxy: State<'_, ProxyControl>,
    id: String,
    enabled: bool,
) -> Result<ServerView, IpcError> {
    proxy.update(state.session(), |s| {
        let i = find_rule(s, &id)?;
        s.rules[i].enabled = enabled;
        Ok(())
    })?;
    Ok(proxy.view(state.session()))
}

/// Moves a rule one place earlier (`up`) or later in the order rules apply.
#[tauri::command]
#[specta::specta]
pub fn move_rule(
    state: State<'_, AppState>,
    proxy: State<'_, ProxyControl>,
    id: String,
    up: bool,
) -> Result<ServerView, IpcError> {
    proxy.update(state.session(), |s| {
        let i = find_rule(s, &id)?;
        let j = if up { i.checked_sub(1) } else { Some(i + 1) };
        if let Some(j) = j.filter(|&j| j < s.rules.len()) {
            s.rules.swap(i, j);
        }
        Ok(())
    })?;
    Ok(proxy.view(state.session()))
}

/// Replaces the cache settings (turning it off empties it).
#[tauri::command]
#[specta::specta]
pub fn set_cache_settings(
    state: State<'_, AppState>,
    proxy: State<'_, ProxyControl>,
    cache: CacheSpec,
) -> Result<ServerView, IpcError> {
    let cache = cache.to_core()?;
    proxy.update(state.session(), |s| {
        s.cache = cache;
        Ok(())
    })?;
    Ok(proxy.view(state.session()))
}

/// Starts the proxy with the current settings.
#[tauri::command]
#[specta::specta]
pub async fn start_proxy(
    state: State<'_, AppState>,
    proxy: State<'_, ProxyControl>,
) -> Result<ServerView, IpcError> {
    proxy.start(state.session()).await?;
    Ok(proxy.view(state.session()))
}

/// Starts the proxy in front of the built-in upstream: the embedded llama.cpp serving the open
/// model as edited (OpenAI-compatible `/v1/completions` and `/v1/chat/completions`, streaming
/// too), so interception works with no other LLM server; every edit shows in the next answer.
#[tauri::command]
#[specta::specta]
pub async fn start_proxy_engine(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    proxy: State<'_, ProxyControl>,
) -> Result<ServerView, IpcError> {
    let label = state.require_model()?.shards[0]
        .path()
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    proxy
        .start_builtin(state.session(), engine_backend(app), label)
        .await?;
    Ok(proxy.view(state.session()))
}

/// The app's engine as the built-in upstream's backend: each request runs on the session open
/// at that moment (`AppState::engine`, shared with the Run screen).
pub fn engine_backend(app: tauri::AppHandle) -> Arc<dyn hotpatch_infer::Backend> {
    use tauri::Manager as _;
    let host = Arc::clone(&app.state::<AppState>().engine);
    Arc::new(hotpatch_infer::HostBackend::new(
        host,
        Box::new(move || {
            app.state::<AppState>()
                .session_ref()
                .map_err(|e| hotpatch_infer::InferError::Invalid {
                    what: "model",
                    message: e.message,
                })
        }),
    ))
}

/// Stops the proxy.
#[tauri::command]
#[specta::specta]
pub async fn stop_proxy(
    state: State<'_, AppState>,
    proxy: State<'_, ProxyControl>,
) -> Result<ServerView, IpcError> {
    proxy.stop().await?;
    Ok(proxy.view(state.session()))
}

/// Probes whether the upstream URL accepts connections.
#[tauri::command]
#[specta::specta]
pub async fn check_upstream(url: String) -> Result<UpstreamCheck, IpcError> {
    probe_upstream(&url).await
}

/// Returns the request log (newest first) and streams every new request to `channel`.
#[tauri::command]
#[specta::specta]
pub fn watch_proxy_log(
    proxy: State<'_, ProxyControl>,
    channel: Channel<RequestLogEntry>,
) -> Vec<RequestLogEntry> {
    proxy.watch(Some(Box::new(move |e| channel.send(e.clone()).is_ok())))
}

/// Empties the running proxy's response cache.
#[tauri::command]
#[specta::specta]
pub fn clear_proxy_cache(
    state: State<'_, AppState>,
    proxy: State<'_, ProxyControl>,
) -> Result<ServerView, IpcError> {
    proxy.clear_cache()?;
    Ok(proxy.view(state.session()))
}

/// Empties the request log.
#[tauri::command]
#[specta::specta]
pub fn clear_proxy_log(proxy: State<'_, ProxyControl>) {
    proxy.clear_log();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt_rule(id: &str) -> RuleSpec {
        RuleSpec {
            id: id.into(),
            enabled: true,
            endpoints: vec![],
            action: RuleActionSpec::SystemPrompt {
                mode: InjectMode::Prepend,
                text: "be brief".into(),
            },
        }
    }

    #[test]
    fn every_rule_kind_round_trips_through_the_configuration_form() {
        let specs = vec![
            prompt_rule("p"),
            RuleSpec {
                id: "d".into(),
                enabled: false,
                endpoints: vec![RuleEndpoint::Completions, RuleEndpoint::LlamaCompletion],
                action: RuleActionSpec::DefaultParameter {
                    name: "temperature".into(),
                    value: "0.25".into(),
                },
            },
            RuleSpec {
                id: "o".into(),
                enabled: true,
                endpoints: vec![],
                action: RuleActionSpec::OverrideParameter {
                    name: "samplers".into(),
                    value: r#"["top_k","min_p"]"#.into(),
                },
            },
            RuleSpec {
                id: "c".into(),
                enabled: true,
                endpoints: vec![],
                action: RuleActionSpec::ClampParameter {
                    name: "top_k".into(),
                    min: Some(1.0),
                    max: None,
                },
            },
            RuleSpec {
                id: "r".into(),
                enabled: true,
                endpoints: vec![RuleEndpoint::ChatCompletions],
                action: RuleActionSpec::RewriteMessages {
                    pattern: "(?i)secret".into(),
                    replacement: "***".into(),
                    roles: vec!["user".into()],
                    case_insensitive: true,
                },
            },
            RuleSpec {
                id: "f".into(),
                enabled: true,
                endpoints: vec![],
                action: RuleActionSpec::FilterResponse {
                    pattern: "a+".into(),
                    action: FilterAction::Block,
                    replacement: Some("[no]".into()),
                    literal: false,
                    case_insensitive: false,
                    max_match_len: Some(32),
                },
            },
            RuleSpec {
                id: "s".into(),
                enabled: true,
                endpoints: vec![],
                action: RuleActionSpec::StopSequences {
                    sequences: vec!["\n\n".into(), "User:".into()],
                },
            },
        ];
        let core: Vec<_> = specs.iter().map(|s| s.to_core().unwrap()).collect();
        // The configuration JSON is what a file holds; the proxy crate must accept it.
        let settings = ServerSettings {
            upstream: Some("http://127.0.0.1:9".into()),
            rules: core.clone(),
            ..ServerSettings::default()
        };
        let proxy = proxy_settings(&settings).unwrap();
        assert_eq!(proxy.rules.len(), 7);
        let json = serde_json::to_value(&settings).unwrap();
        assert_eq!(json["rules"][1]["action"]["type"], "default_parameter");
        assert_eq!(json["rules"][1]["action"]["value"], 0.25);
        assert_eq!(json["rules"][1]["endpoints"][1], "llama_completion");
        assert_eq!(json["rules"][2]["action"]["value"][1], "min_p");
        assert_eq!(json["rules"][5]["action"]["action"], "block");
        let back: Vec<_> = core.iter().map(RuleSpec::from_core).collect();
        assert_eq!(back, specs);
    }

    #[test]
    fn bad_rules_are_refused_with_the_field_named_and_nothing_changes() {
        let m = Manager::initialize();
        let p = ProxyControl::default();
        p.update(&m, |s| {
            s.rules.push(prompt_rule("keep").to_core()?);
            Ok(())
        })
        .unwrap();
        let before = m.server();
        let value = RuleSpec {
            action: RuleActionSpec::DefaultParameter {
                name: "temperature".into(),
                value: "warm".into(),
            },
            ..prompt_rule("t")
        };
        let e = value.to_core().unwrap_err();
        assert!(
            e.message.contains("action.value") && e.message.contains("warm"),
            "{}",
            e.message
        );
        let typed = RuleSpec {
            action: RuleActionSpec::DefaultParameter {
                name: "temperature".into(),
                value: "\"hot\"".into(),
            },
            ..prompt_rule("t")
        };
        let e = p
            .update(&m, |s| {
                s.rules.push(typed.to_core()?);
                Ok(())
            })
            .unwrap_err();
        assert!(
            e.message.contains("rules[1]") && e.message.contains("must be a number"),
            "{}",
            e.message
        );
        let regex = RuleSpec {
            action: RuleActionSpec::FilterResponse {
                pattern: "(".into(),
                action: FilterAction::Redact,
                replacement: None,
                literal: false,
                case_insensitive: false,
                max_match_len: None,
            },
            ..prompt_rule("x")
        };
        let e = p
            .update(&m, |s| {
                s.rules.push(regex.to_core()?);
                Ok(())
            })
            .unwrap_err();
        assert!(e.message.contains("action.pattern"), "{}", e.message);
        let dup = p
            .update(&m, |s| {
                s.rules.push(prompt_rule("keep").to_core()?);
                Ok(())
            })
            .unwrap_err();
        assert!(dup.message.contains("duplicate"), "{}", dup.message);
        assert_eq!(
            m.server(),
            before,
            "refused edits leave the settings as they were"
        );
        let clamp = RuleSpec {
            action: RuleActionSpec::ClampParameter {
                name: "top_p".into(),
                min: None,
                max: None,
            },
            ..prompt_rule("c")
        };
        assert!(clamp.to_core().is_err(), "a clamp needs a bound");
        let cache = CacheSpec {
            enabled: true,
            ttl_secs: 0,
            max_entries: 10,
            max_bytes: 1 << 20,
        };
        assert!(cache.to_core().unwrap_err().message.contains("ttl_secs"));
    }

    /// A one-answer-per-connection HTTP upstream that records the bodies it receives.
    async fn fake_upstream() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let rec = Arc::clone(&rec);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Headers, then Content-Length bytes of body.
                    let body = loop {
                        let n = s.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                break buf[end + 4..end + 4 + len].to_vec();
                            }
                        }
                    };
                    rec.lock()
                        .push(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
                    let answer = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}"#;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        (url, seen)
    }

    /// POSTs `body` to `addr` + `/v1/chat/completions`; returns the status line.
    async fn post_chat(listening: &str, body: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = listening.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    }

    #[tokio::test]
    async fn a_running_proxy_takes_edits_at_once_and_logs_each_request() {
        let (upstream, seen) = fake_upstream().await;
        let m = Manager::initialize();
        let p = ProxyControl::default();
        assert!(
            p.start(&m).await.unwrap_err().message.contains("upstream"),
            "no upstream yet"
        );
        p.update(&m, |s| {
            s.upstream = Some(upstream.clone());
            s.port = 0;
            s.rules.push(prompt_rule("p").to_core()?);
            Ok(())
        })
        .unwrap();
        p.start(&m).await.unwrap();
        let view = p.view(&m);
        assert!(view.status.running);
        let listening = view.status.listening.clone().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        assert!(p
            .watch(Some(Box::new(move |e| tx
                .lock()
                .unwrap()
                .send(e.clone())
                .is_ok())))
            .is_empty());

        let body = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
        assert!(post_chat(&listening, body).await.contains("200"));
        let got = seen.lock()[0].clone();
        assert_eq!(got["messages"][0]["role"], "system");
        assert_eq!(got["messages"][0]["content"], "be brief");
        assert_eq!(got["messages"][1]["content"], "hi");
        let e = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a log entry");
        assert_eq!(
            (e.status, e.rules_applied.clone(), e.cache),
            (200, vec!["p".to_string()], CacheOutcome::Miss)
        );
        assert_eq!(p.view(&m).rules[0].hits, 1);

        // Disabling the rule reaches the running proxy: the next request is not rewritten.
        p.update(&m, |s| {
            s.rules[0].enabled = false;
            Ok(())
        })
        .unwrap();
        assert!(post_chat(&listening, body).await.contains("200"));
        let got = seen.lock()[1].clone();
        assert_eq!(
            got["messages"].as_array().unwrap().len(),
            1,
            "no system prompt: {got}"
        );
        let e = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(e.rules_applied.is_empty());
        assert_eq!(p.view(&m).rules[0].hits, 1, "hits are kept across edits");
        assert_eq!(p.watch(None).len(), 2, "the log keeps both, newest first");
        assert_eq!(p.watch(None)[0].id, e.id);

        assert!(
            m.server().upstream.is_some(),
            "the manager holds the settings (exported with a configuration)"
        );
        p.stop().await.unwrap();
        assert!(!p.view(&m).status.running);
        assert!(p.stop().await.is_err(), "stopping twice is refused");
    }

    #[test]
    fn proxy_events_map_to_log_entries() {
        let e = ProxyEvent {
            id: 7,
            started_unix_ms: 1_700_000_000_000,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            endpoint: Some(hotpatch_proxy::Endpoint::ChatCompletions),
            status: 200,
            upstream_status: None,
            rules_applied: vec!["p".into()],
            cache_hit: true,
            blocked: false,
            streamed: false,
            latency_us: 1500,
            duration_us: 2500,
            bytes_in: 10,
            bytes_out: 20,
            error: None,
        };
        let l = RequestLogEntry::from(&e);
        assert_eq!(l.cache, CacheOutcome::Hit);
        assert_eq!((l.latency_ms, l.duration_ms), (1.5, 2.5));
        let pass = RequestLogEntry::from(&ProxyEvent {
            endpoint: None,
            cache_hit: false,
            ..e
        });
        assert_eq!(pass.cache, CacheOutcome::Pass);
    }
}
