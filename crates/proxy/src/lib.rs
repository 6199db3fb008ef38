//! Request/response hotpatch proxy for OpenAI-compatible LLM servers (tokio).
//!
//! A local reverse proxy in front of a llama.cpp server, Ollama, vLLM or any server speaking
//! the OpenAI HTTP API. Requests to `/v1/chat/completions`, `/v1/completions` and llama.cpp's
//! `/completion` are rewritten by [`Rule`]s (system prompt injection, parameter defaults,
//! overrides and clamps, message rewrites, extra stop sequences) and their answers filtered
//! (redact/block patterns, streamed answers included, matches spanning SSE chunks caught);
//! answers can be cached by normalized request. Everything else passes through verbatim.
//!
//! The layers:
//! - [`settings`]: [`ServerSettings`], the `server` section of the configuration JSON, and
//!   the rule definitions — both defined once in the tokio-free `hotpatch-settings` crate
//!   (shared with the edit engine's configurations) and re-exported here;
//! - [`rules`]: the compiled rules with their runtime state ([`RuleSet`]);
//! - [`request`] / [`response`] / [`filter`]: the pure rewriting functions
//!   ([`process_request`], [`process_response`], [`SseRewriter`], [`TextFilter`]) — no I/O;
//! - [`cache`]: the bounded TTL response cache;
//! - [`server`]: the running proxy ([`start`] → [`ProxyHandle`]) emitting a [`ProxyEvent`]
//!   per request;
//! - [`engine`]: the built-in upstream, an OpenAI-compatible server answering from the
//!   embedded llama.cpp engine (`hotpatch-infer`), for a machine with no other LLM server;
//! - [`supervisor`]: a running proxy for a front end ([`Supervisor`]: built-in upstream, event
//!   pump into an [`EventSink`] such as the bounded [`RequestLog`]) and [`probe_upstream`].

pub mod cache;
pub mod engine;
pub mod event;
pub mod filter;
pub mod request;
pub mod response;
pub mod rules;
pub mod server;
pub mod settings;
pub mod supervisor;

pub use cache::{CacheSettings, CacheStats, CachedResponse, ResponseCache};
pub use engine::{start_engine_server, EngineServer, EngineServerError};
pub use event::ProxyEvent;
pub use filter::{FilterOutput, TextFilter};
pub use request::{cache_key, process_request, Endpoint, ProcessedRequest, RequestError};
pub use response::{process_response, ProcessedResponse, SseError, SseOutput, SseRewriter};
pub use rules::{FilterAction, InjectMode, Rule, RuleAction, RuleError, RuleSet, RuleStatus};
pub use server::{start, ProxyError, ProxyHandle, CACHE_HEADER, REQUEST_ID_HEADER};
pub use settings::{ServerSettings, SettingsError};
pub use supervisor::{
    probe_upstream, EventSink, RequestLog, Supervisor, SupervisorError, UpstreamProbe,
};
