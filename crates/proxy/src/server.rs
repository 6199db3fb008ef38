//! The running proxy: an axum server in front of the upstream, driven by a [`ProxyHandle`].
//!
//! Requests to the three generation endpoints are read (bounded), rewritten by
//! [`process_request`], answered from the cache or sent upstream; answers are filtered by
//! [`process_response`] or, when streamed, by an [`SseRewriter`] inside the response body
//! as each upstream chunk arrives (nothing is buffered beyond the filters' tail windows).
//! Every other request is passed through verbatim, body streamed both ways. Each request
//! ends with a [`ProxyEvent`] on the broadcast channel of [`ProxyHandle::subscribe`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use http_body::Frame;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Sleep;

use crate::cache::{CacheSettings, CacheStats, CachedResponse, ResponseCache};
use crate::event::ProxyEvent;
use crate::request::{cache_key, process_request, Endpoint};
use crate::response::{process_response, SseRewriter};
use crate::rules::{Rule, RuleError, RuleSet, RuleStatus};
use crate::settings::{parse_upstream, ServerSettings, SettingsError, Upstream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Bad settings.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// No upstream configured.
    #[error(
        "server.upstream: not set (give the URL of the LLM server, e.g. http://127.0.0.1:8080)"
    )]
    NoUpstream,
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Header carrying the request id to the upstream and back to the client.
pub const REQUEST_ID_HEADER: &str = "x-hotpatch-request-id";
/// Response header set to `hit` when the answer came from the cache.
pub const CACHE_HEADER: &str = "x-hotpatch-cache";

struct Shared {
    upstream: Upstream,
    response_timeout: Duration,
    idle_timeout: Duration,
    /// Longest silence allowed while reading a client's request body.
    body_read_timeout: Duration,
    body_limit: usize,
    response_limit: usize,
    rules: RwLock<Arc<RuleSet>>,
    cache: Mutex<ResponseCache>,
    events: broadcast::Sender<ProxyEvent>,
    next_id: AtomicU64,
    client: Client<HttpConnector, Body>,
}

/// Controls a running proxy. Dropping it (or calling [`ProxyHandle::shutdown`]) stops the
/// proxy: no new connections; requests in flight finish.
pub struct ProxyHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Start a proxy with `settings` on the current tokio runtime. Returns once it listens.
pub async fn start(settings: ServerSettings) -> Result<ProxyHandle, ProxyError> {
    settings.validate()?;
    let upstream = parse_upstream(settings.upstream.as_deref().ok_or(ProxyError::NoUpstream)?)?;
    let rules = RuleSet::compile(&settings.rules).map_err(SettingsError::from)?;
    let addr = SocketAddr::new(settings.bind, settings.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ProxyError::Bind { addr, source })?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)));
    // The pool's idle timeout only works with a timer driving it: without one, idle upstream
    // connections stayed open for good (267 after a burst).
    let client = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_millis(settings.pool_idle_timeout_ms))
        .build(connector);
    let (events, _) = broadcast::channel(1024);
    let shared = Arc::new(Shared {
        upstream,
        response_timeout: Duration::from_millis(settings.response_timeout_ms),
        idle_timeout: Duration::from_millis(settings.idle_timeout_ms),
        body_read_timeout: Duration::from_millis(settings.body_read_timeout_ms),
        body_limit: settings.body_limit_bytes,
        response_limit: settings.response_limit_bytes,
        rules: RwLock::new(Arc::new(rules)),
        cache: Mutex::new(ResponseCache::new(settings.cache.clone())),
        events,
        next_id: AtomicU64::new(1),
        client,
    });
    let router = Router::new().fallback(handle).with_state(shared.clone());
    let header_timeout = Duration::from_millis(settings.header_read_timeout_ms);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router, header_timeout, stopped));
    Ok(ProxyHandle {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

impl ProxyHandle {
    /// The address the proxy listens on (the real port when settings asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Receive an event for every request answered from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ProxyEvent> {
        self.shared.events.subscribe()
    }

    /// Every rule with its enabled state and hit count.
    pub fn rules(&self) -> Vec<RuleStatus> {
        self.shared.rules.read().status()
    }

    /// Enable or disable a rule by id; false if there is none.
    pub fn set_rule_enabled(&self, id: &str, enabled: bool) -> bool {
        self.shared.rules.read().set_enabled(id, enabled)
    }

    /// Replace the rule list (hit counters of rules keeping their id are kept).
    pub fn set_rules(&self, rules: &[Rule]) -> Result<(), RuleError> {
        let new = RuleSet::compile(rules)?;
        let mut cur = self.shared.rules.write();
        new.carry_state_from(&cur);
        *cur = Arc::new(new);
        Ok(())
    }

    /// Append a rule.
    pub fn add_rule(&self, rule: Rule) -> Result<(), RuleError> {
        let mut rules = self.shared.rules.read().to_rules();
        rules.push(rule);
        self.set_rules(&rules)
    }

    /// Remove a rule by id; false if there is none.
    pub fn remove_rule(&self, id: &str) -> bool {
        let mut rules = self.shared.rules.read().to_rules();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        before != rules.len() && self.set_rules(&rules).is_ok()
    }

    /// Turn the response cache on or off (off also empties it).
    pub fn set_cache_enabled(&self, enabled: bool) {
        let mut cache = self.shared.cache.lock();
        let settings = CacheSettings {
            enabled,
            ..cache.settings().clone()
        };
        cache.set_settings(settings);
    }

    /// Replace the cache settings.
    pub fn set_cache_settings(&self, settings: CacheSettings) {
        self.shared.cache.lock().set_settings(settings);
    }

    /// Cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.shared.cache.lock().stats()
    }

    /// Empty the cache.
    pub fn clear_cache(&self) {
        self.shared.cache.lock().clear();
    }

    /// Stop accepting connections and wait for requests in flight to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Accepts connections until `stopped`, each served by hyper's HTTP/1 server with a header read
/// timeout (a client that trickles or stalls its request head, or keeps an idle keep-alive
/// connection silent, is disconnected after `header_timeout`); then shuts down gracefully (idle
/// connections close, requests in flight finish).
async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    header_timeout: Duration,
    mut stopped: oneshot::Receiver<()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    loop {
        let tcp = tokio::select! {
            _ = &mut stopped => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    // Out of file descriptors and the like: wait, as axum::serve does.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Latency matters more than packet count for small JSON answers and SSE chunks.
        let _ = tcp.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let conn = http.serve_connection(TokioIo::new(tcp), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"message": message, "type": "hotpatch_proxy_error", "code": code}});
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

/// Event under construction.
struct Tracker {
    shared: Arc<Shared>,
    rules: Arc<RuleSet>,
    t0: Instant,
    event: ProxyEvent,
}

impl Tracker {
    fn emit(mut self, status: u16) {
        self.event.status = status;
        let us = self.t0.elapsed().as_micros() as u64;
        if self.event.latency_us == 0 {
            self.event.latency_us = us;
        }
        self.event.duration_us = us;
        self.rules.record_hits(&self.event.rules_applied);
        let _ = self.shared.events.send(self.event);
    }

    fn error(mut self, status: StatusCode, code: &str, message: String) -> Response {
        let resp = json_error(status, code, &message);
        self.event.error = Some(message);
        self.event.bytes_out = body_len(&resp);
        self.emit(status.as_u16());
        resp
    }
}

fn body_len(resp: &Response) -> u64 {
    http_body::Body::size_hint(resp.body()).exact().unwrap_or(0)
}

fn add_unique(list: &mut Vec<String>, ids: Vec<String>) {
    for id in ids {
        if !list.contains(&id) {
            list.push(id);
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let t0 = Instant::now();
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let path_q = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let endpoint = if parts.method == Method::POST {
        Endpoint::from_path(parts.uri.path())
    } else {
        None
    };
    let rules = shared.rules.read().clone();
    let declared_len = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut tracker = Tracker {
        shared: shared.clone(),
        rules,
        t0,
        event: ProxyEvent {
            id,
            started_unix_ms: unix_ms(),
            method: parts.method.to_string(),
            path: path_q.clone(),
            endpoint,
            status: 0,
            upstream_status: None,
            rules_applied: Vec::new(),
            cache_hit: false,
            blocked: false,
            streamed: false,
            latency_us: 0,
            duration_us: 0,
            bytes_in: declared_len.unwrap_or(0),
            bytes_out: 0,
            error: None,
        },
    };
    if declared_len.is_some_and(|n| n > shared.body_limit as u64) {
        let msg = format!(
            "request body of {} bytes exceeds the limit of {} bytes",
            declared_len.unwrap_or(0),
            shared.body_limit
        );
        return tracker.error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", msg);
    }
    let uri: Uri = match format!(
        "http://{}{}{}",
        shared.upstream.authority, shared.upstream.prefix, path_q
    )
    .parse()
    {
        Ok(u) => u,
        Err(e) => {
            return tracker.error(
                StatusCode::BAD_REQUEST,
                "bad_path",
                format!("cannot forward {path_q:?}: {e}"),
            )
        }
    };
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    headers.insert(REQUEST_ID_HEADER, HeaderValue::from(id));

    // A client that stalls its body is cut after the body read timeout (not held forever).
    let body = ReadTimeout::new(body, shared.body_read_timeout);
    let Some(endpoint) = endpoint else {
        // Pass-through: body streamed to the upstream, bounded by the limit.
        let body = Body::new(Limited::new(body, shared.body_limit));
        return forward(tracker, parts.method, uri, headers, body, None).await;
    };

    let bytes = match Limited::new(body, shared.body_limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let msg = format!(
                "request body exceeds the limit of {} bytes",
                shared.body_limit
            );
            return tracker.error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", msg);
        }
        Err(e) if e.is::<BodyTimeout>() => {
            return tracker.error(StatusCode::REQUEST_TIMEOUT, "body_timeout", e.to_string());
        }
        Err(e) => {
            return tracker.error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("cannot read request body: {e}"),
            )
        }
    };
    tracker.event.bytes_in = bytes.len() as u64;
    let processed = match process_request(&tracker.rules, endpoint, &bytes) {
        Ok(p) => p,
        Err(e) => return tracker.error(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()),
    };
    tracker.event.rules_applied = processed.applied.clone();
    tracker.event.streamed = processed.stream;
    let key = {
        let mut cache = shared.cache.lock();
        if cache.settings().enabled {
            let key = cache_key(endpoint, &processed.body);
            if let Some(hit) = cache.get(&key, Instant::now()) {
                drop(cache);
                return replay(tracker, &hit, id);
            }
            Some(key)
        } else {
            None
        }
    };
    let body = processed.to_bytes();
    headers.remove(header::ACCEPT_ENCODING); // the filters need plain text
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    forward(
        tracker,
        Method::POST,
        uri,
        headers,
        Body::from(body),
        Some((endpoint, key)),
    )
    .await
}

fn replay(mut tracker: Tracker, hit: &CachedResponse, id: u64) -> Response {
    tracker.event.cache_hit = true;
    tracker.event.bytes_out = hit.len() as u64;
    let body = Body::new(Replay(hit.chunks.iter().cloned().collect()));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(hit.status).unwrap_or(StatusCode::OK);
    let h = resp.headers_mut();
    if let Ok(ct) = HeaderValue::from_str(&hit.content_type) {
        h.insert(header::CONTENT_TYPE, ct);
    }
    h.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
    h.insert(REQUEST_ID_HEADER, HeaderValue::from(id));
    let status = hit.status;
    tracker.emit(status);
    resp
}

/// A cached answer replayed chunk by chunk (a streamed answer stays a stream).
struct Replay(std::collections::VecDeque<Bytes>);

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

fn classify(e: &hyper_util::client::legacy::Error) -> (StatusCode, &'static str) {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<http_body_util::LengthLimitError>() {
            return (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        }
        if s.is::<BodyTimeout>() {
            return (StatusCode::REQUEST_TIMEOUT, "body_timeout");
        }
        src = s.source();
    }
    (StatusCode::BAD_GATEWAY, "upstream_unavailable")
}

fn describe(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

async fn forward(
    mut tracker: Tracker,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    rewrite: Option<(Endpoint, Option<String>)>,
) -> Response {
    let shared = tracker.shared.clone();
    let mut req = http::Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    let upstream = format!("http://{}", shared.upstream.authority);
    let resp = match tokio::time::timeout(shared.response_timeout, shared.client.request(req)).await
    {
        Err(_) => {
            let msg = format!(
                "upstream {upstream} did not answer within {} ms",
                shared.response_timeout.as_millis()
            );
            return tracker.error(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", msg);
        }
        Ok(Err(e)) => {
            let (status, code) = classify(&e);
            let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "request body exceeds the limit of {} bytes",
                    shared.body_limit
                )
            } else if status == StatusCode::REQUEST_TIMEOUT {
                BodyTimeout(shared.body_read_timeout).to_string()
            } else {
                format!("upstream {upstream} unreachable: {}", describe(&e))
            };
            return tracker.error(status, code, msg);
        }
        Ok(Ok(r)) => r,
    };
    let (mut parts, upstream_body) = resp.into_parts();
    tracker.event.upstream_status = Some(parts.status.as_u16());
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(REQUEST_ID_HEADER, HeaderValue::from(tracker.event.id));
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let success = parts.status.is_success();
    let Some((endpoint, key)) = rewrite.filter(|_| success) else {
        // Pass-through answer (or an upstream error): streamed verbatim.
        tracker.event.latency_us = tracker.t0.elapsed().as_micros() as u64;
        let body = StreamBody::new(upstream_body, None, None, tracker, parts.status.as_u16());
        return Response::from_parts(parts, Body::new(body));
    };
    let is_sse = content_type.starts_with("text/event-stream");
    if is_sse {
        tracker.event.streamed = true;
        let rewriter = tracker
            .rules
            .has_filters_for(endpoint)
            .then(|| SseRewriter::new(&tracker.rules, endpoint));
        if rewriter.is_some() {
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        let recorder = key.map(|key| Recorder {
            key,
            status: parts.status.as_u16(),
            content_type: content_type.clone(),
            chunks: Vec::new(),
            size: 0,
        });
        tracker.event.latency_us = tracker.t0.elapsed().as_micros() as u64;
        let status = parts.status.as_u16();
        let mut body = StreamBody::new(upstream_body, rewriter, recorder, tracker, status);
        body.sse = true;
        return Response::from_parts(parts, Body::new(body));
    }
    // A whole JSON answer: read it (bounded, timed), filter, maybe cache.
    let limited = Limited::new(upstream_body, shared.response_limit);
    let collected = match tokio::time::timeout(shared.idle_timeout, limited.collect()).await {
        Err(_) => {
            let msg = format!(
                "upstream {upstream} stalled sending its answer for {} ms",
                shared.idle_timeout.as_millis()
            );
            return tracker.error(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", msg);
        }
        Ok(Err(e)) => {
            let msg = if e.is::<http_body_util::LengthLimitError>() {
                format!(
                    "upstream answer exceeds the limit of {} bytes",
                    shared.response_limit
                )
            } else {
                format!("upstream {upstream} broke its answer: {}", describe(&*e))
            };
            return tracker.error(StatusCode::BAD_GATEWAY, "upstream_broken", msg);
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    let out = process_response(&tracker.rules, endpoint, &collected);
    add_unique(&mut tracker.event.rules_applied, out.applied);
    tracker.event.blocked = out.blocked;
    let body = Bytes::from(out.body);
    if let Some(key) = key {
        let cached = CachedResponse {
            status: parts.status.as_u16(),
            content_type: content_type.clone(),
            chunks: vec![body.clone()],
        };
        shared.cache.lock().insert(key, cached, Instant::now());
    }
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    tracker.event.bytes_out = body.len() as u64;
    let status = parts.status.as_u16();
    tracker.emit(status);
    Response::from_parts(parts, Body::from(body))
}

/// Records a streamed answer for the cache.
struct Recorder {
    key: String,
    status: u16,
    content_type: String,
    chunks: Vec<Bytes>,
    size: usize,
}

/// The body of a streamed (or passed-through) answer: forwards upstream frames as they
/// come, through the SSE rewriter when filters apply, records them for the cache, enforces
/// the idle timeout and emits the request's event when it ends (or the client goes away).
struct StreamBody {
    inner: Option<Incoming>,
    rewriter: Option<SseRewriter>,
    recorder: Option<Recorder>,
    tracker: Option<Tracker>,
    status: u16,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
    /// An SSE answer: failures end it with an `error` event rather than an abort.
    sse: bool,
}

impl StreamBody {
    fn new(
        inner: Incoming,
        rewriter: Option<SseRewriter>,
        recorder: Option<Recorder>,
        tracker: Tracker,
        status: u16,
    ) -> Self {
        let idle = tracker.shared.idle_timeout;
        Self {
            inner: Some(inner),
            rewriter,
            recorder,
            tracker: Some(tracker),
            status,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            sse: false,
        }
    }

    /// The answer is complete: store it in the cache, emit the event.
    fn complete(&mut self) {
        self.inner = None;
        let Some(mut tracker) = self.tracker.take() else {
            return;
        };
        if let Some(rw) = &self.rewriter {
            add_unique(&mut tracker.event.rules_applied, rw.applied());
            tracker.event.blocked = rw.blocked();
        }
        if let Some(rec) = self.recorder.take() {
            let cached = CachedResponse {
                status: rec.status,
                content_type: rec.content_type,
                chunks: rec.chunks,
            };
            tracker
                .shared
                .cache
                .lock()
                .insert(rec.key, cached, Instant::now());
        }
        tracker.emit(self.status);
    }

    /// The stream failed: report it; an SSE client gets a last `error` event (the way
    /// llama.cpp and OpenAI report mid-stream errors), other bodies are aborted.
    fn broken(&mut self, message: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.sse {
            // Text held back by the filters is final now: filter and release it first.
            let mut out = self
                .rewriter
                .as_mut()
                .map(SseRewriter::finish)
                .unwrap_or_default();
            let event = serde_json::json!({"error": {"message": message, "type": "hotpatch_proxy_error", "code": "upstream_broken"}});
            out.extend_from_slice(format!("data: {event}\n\n").as_bytes());
            let out = self.out(Bytes::from(out));
            self.fail(message);
            return Poll::Ready(Some(Ok(Frame::data(out))));
        }
        self.fail(message.clone());
        Poll::Ready(Some(Err(message.into())))
    }

    fn fail(&mut self, message: String) {
        self.inner = None;
        self.recorder = None;
        if let Some(mut tracker) = self.tracker.take() {
            if let Some(rw) = &self.rewriter {
                add_unique(&mut tracker.event.rules_applied, rw.applied());
            }
            tracker.event.error = Some(message);
            tracker.emit(self.status);
        }
    }

    fn out(&mut self, bytes: Bytes) -> Bytes {
        if let Some(t) = &mut self.tracker {
            t.event.bytes_out += bytes.len() as u64;
        }
        if let Some(rec) = &mut self.recorder {
            rec.size += bytes.len();
            rec.chunks.push(bytes.clone());
            // Answers that could never fit the cache are not kept in memory.
            if let Some(t) = &self.tracker {
                if rec.size > t.shared.cache.lock().settings().max_bytes {
                    self.recorder = None;
                }
            }
        }
        bytes
    }
}

impl http_body::Body for StreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let deadline = tokio::time::Instant::now() + this.idle;
                    this.sleep.as_mut().reset(deadline);
                    let data = match frame.into_data() {
                        Ok(d) => d,
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    };
                    let (data, done) = match &mut this.rewriter {
                        None => (data, false),
                        Some(rw) => match rw.push(&data) {
                            Ok(o) => (Bytes::from(o.bytes), o.done),
                            Err(e) => return this.broken(e.to_string()),
                        },
                    };
                    if done {
                        // Blocked or [DONE]: drop the upstream connection (a llama.cpp
                        // server stops generating when its client goes away).
                        let data = this.out(data);
                        this.complete();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    let ended = this
                        .inner
                        .as_ref()
                        .is_some_and(http_body::Body::is_end_stream);
                    if ended {
                        // The last frame (hyper knows from content-length): finish now, the
                        // body may be dropped without another poll.
                        let data = match &mut this.rewriter {
                            Some(rw) => Bytes::from([&data[..], &rw.finish()].concat()),
                            None => data,
                        };
                        let data = this.out(data);
                        this.complete();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    if data.is_empty() {
                        continue;
                    }
                    let data = this.out(data);
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => {
                    return this.broken(format!("upstream stream broken: {}", describe(&e)));
                }
                Poll::Ready(None) => {
                    this.inner = None;
                    let tail = this
                        .rewriter
                        .as_mut()
                        .map(SseRewriter::finish)
                        .unwrap_or_default();
                    if tail.is_empty() {
                        this.complete();
                        return Poll::Ready(None);
                    }
                    let tail = this.out(Bytes::from(tail));
                    this.complete();
                    return Poll::Ready(Some(Ok(Frame::data(tail))));
                }
                Poll::Pending => {
                    if this.sleep.as_mut().poll(cx).is_ready() {
                        let msg = format!(
                            "upstream sent nothing for {} ms; stream cut",
                            this.idle.as_millis()
                        );
                        return this.broken(msg);
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match (&self.inner, &self.rewriter) {
            (Some(inner), None) => inner.size_hint(),
            _ => http_body::SizeHint::default(),
        }
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        if self.tracker.is_some() {
            self.fail("client went away before the answer was complete".into());
        }
    }
}

/// The client sent nothing of its request body for this long.
#[derive(Debug)]
struct BodyTimeout(Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body stalled: nothing received for {} ms",
            self.0.as_millis()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails with [`BodyTimeout`] when no frame arrives for `limit` (the
/// timer restarts at each frame: a slow but steady upload is fine).
struct ReadTimeout {
    inner: Body,
    limit: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl ReadTimeout {
    fn new(inner: Body, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl http_body::Body for ReadTimeout {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(f) => {
                let deadline = tokio::time::Instant::now() + this.limit;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(f.map(|r| r.map_err(BoxError::from)))
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
