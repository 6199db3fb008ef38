//! The event the proxy emits for every request it answered (plain data, serde-ready).

use serde::{Deserialize, Serialize};

use crate::request::Endpoint;

/// One request through the proxy, reported when its answer is complete (or aborted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyEvent {
    /// Request id, increasing from 1 for each proxy; also sent to the client and the upstream
    /// as the `x-hotpatch-request-id` header.
    pub id: u64,
    /// Unix time the request arrived, in milliseconds.
    pub started_unix_ms: u64,
    /// HTTP method.
    pub method: String,
    /// Path and query as received.
    pub path: String,
    /// The rewritten endpoint, `None` for passed-through paths.
    pub endpoint: Option<Endpoint>,
    /// Status sent to the client.
    pub status: u16,
    /// Status the upstream answered, `None` if it was not reached (error, cache hit).
    pub upstream_status: Option<u16>,
    /// Ids of the rules that changed the request or the answer.
    pub rules_applied: Vec<String>,
    /// Whether the answer came from the response cache.
    pub cache_hit: bool,
    /// Whether a block rule ended the answer.
    pub blocked: bool,
    /// Whether the answer was streamed (SSE).
    pub streamed: bool,
    /// Microseconds until the response headers were sent.
    pub latency_us: u64,
    /// Microseconds until the body was complete.
    pub duration_us: u64,
    /// Request body bytes received from the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// What went wrong, if anything (upstream unreachable, timeout, stream cut).
    pub error: Option<String>,
}
