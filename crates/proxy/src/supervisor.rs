//! Running a proxy for a front end: the one supervisor the studio's Server screen and
//! `hotpatch serve` share.
//!
//! [`Supervisor::start`] starts the proxy (in front of the settings' upstream, or of a built-in
//! upstream serving an embedded engine on a loopback port of its own) and a *pump*: a task that
//! receives every [`ProxyEvent`] and hands it to an [`EventSink`] — the studio's bounded
//! [`RequestLog`], the CLI's one line per request. A receiver too slow for the event channel
//! learns how many events it missed ([`EventSink::lagged`]) and goes on.
//! [`probe_upstream`] checks an upstream URL with a TCP connection.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;

use crate::engine::{start_engine_server, EngineServer, EngineServerError};
use crate::event::ProxyEvent;
use crate::server::{start, ProxyError, ProxyHandle};
use crate::settings::{parse_upstream, ServerSettings, SettingsError};

/// Requests a [`RequestLog`] keeps by default (newest first).
pub const LOG_CAPACITY: usize = 500;

/// How long [`probe_upstream`] waits for a TCP connection by default.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the pump delivers the proxy's events.
pub trait EventSink: Send + 'static {
    /// One request answered. `Break` stops the pump (the proxy keeps running).
    fn event(&mut self, event: &ProxyEvent) -> ControlFlow<()>;
    /// `skipped` events were lost because this sink was too slow.
    fn lagged(&mut self, skipped: u64) -> ControlFlow<()>;
}

/// Delivers every event of `events` to `sink` until the channel closes (the proxy stopped) or
/// the sink asks to stop.
pub async fn pump(mut events: broadcast::Receiver<ProxyEvent>, mut sink: impl EventSink) {
    loop {
        let flow = match events.recv().await {
            Ok(e) => sink.event(&e),
            Err(RecvError::Lagged(n)) => sink.lagged(n),
            Err(RecvError::Closed) => break,
        };
        if flow.is_break() {
            break;
        }
    }
}

/// A watcher of a [`RequestLog`]: receives every new event until it returns false.
pub type Watcher = Box<dyn Fn(&ProxyEvent) -> bool + Send + Sync>;

#[derive(Default)]
struct LogState {
    entries: VecDeque<ProxyEvent>,
    requests: u64,
}

/// A bounded log of the requests a proxy answered, newest first, kept across runs (a screen
/// opened later sees the recent past), with a request counter that also counts the events a
/// slow pump missed, and at most one watcher. Clones share the log.
#[derive(Clone)]
pub struct RequestLog {
    capacity: usize,
    state: Arc<Mutex<LogState>>,
    watcher: Arc<Mutex<Option<Watcher>>>,
}

impl Default for RequestLog {
    fn default() -> Self {
        Self::new(LOG_CAPACITY)
    }
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("RequestLog")
            .field("capacity", &self.capacity)
            .field("entries", &s.entries.len())
            .field("requests", &s.requests)
            .finish_non_exhaustive()
    }
}

impl RequestLog {
    /// An empty log keeping the newest `capacity` requests.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            state: Arc::default(),
            watcher: Arc::default(),
        }
    }

    /// Records one request and shows it to the watcher (dropped once it returns false).
    pub fn record(&self, event: &ProxyEvent) {
        {
            let mut s = self.state.lock();
            s.requests += 1;
            s.entries.push_front(event.clone());
            s.entries.truncate(self.capacity);
        }
        let mut w = self.watcher.lock();
        if let Some(f) = w.as_ref() {
            if !f(event) {
                *w = None;
            }
        }
    }

    /// Counts `skipped` requests the pump missed (not in the log, but answered).
    pub fn skipped(&self, skipped: u64) {
        self.state.lock().requests += skipped;
    }

    /// Requests answered since the log was created (cleared entries included).
    pub fn requests(&self) -> u64 {
        self.state.lock().requests
    }

    /// The kept requests, newest first.
    pub fn entries(&self) -> Vec<ProxyEvent> {
        self.state.lock().entries.iter().cloned().collect()
    }

    /// Replaces the watcher (`None`: no watcher) and returns the kept requests, newest first.
    pub fn watch(&self, watcher: Option<Watcher>) -> Vec<ProxyEvent> {
        *self.watcher.lock() = watcher;
        self.entries()
    }

    /// Empties the log (the request counter stays).
    pub fn clear(&self) {
        self.state.lock().entries.clear();
    }
}

impl EventSink for RequestLog {
    fn event(&mut self, event: &ProxyEvent) -> ControlFlow<()> {
        self.record(event);
        ControlFlow::Continue(())
    }

    fn lagged(&mut self, skipped: u64) -> ControlFlow<()> {
        self.skipped(skipped);
        ControlFlow::Continue(())
    }
}

/// The supervised proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The built-in upstream could not listen.
    #[error(transparent)]
    Engine(#[from] EngineServerError),
    /// The proxy refused its settings or could not listen.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

/// A running proxy, its built-in upstream if any, and the pump feeding its events to a sink.
pub struct Supervisor {
    handle: ProxyHandle,
    upstream: String,
    engine: Option<EngineServer>,
    started_unix_ms: u64,
    pump: JoinHandle<()>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("listening", &self.handle.local_addr())
            .field("upstream", &self.upstream)
            .field("builtin", &self.engine.is_some())
            .finish_non_exhaustive()
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Supervisor {
    /// Starts the proxy with `settings` on the current tokio runtime, its events pumped into
    /// `sink`. With `builtin`, the upstream is an OpenAI-compatible server of that engine on a
    /// loopback port of its own (the settings' upstream is ignored); without, the settings'
    /// upstream, which must be set. Nothing keeps running when this fails.
    pub async fn start(
        mut settings: ServerSettings,
        builtin: Option<Arc<dyn hotpatch_infer::Backend>>,
        sink: impl EventSink,
    ) -> Result<Self, SupervisorError> {
        let engine = match builtin {
            Some(backend) => {
                let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
                let server = start_engine_server(backend, loopback).await?;
                settings.upstream = Some(server.url());
                Some(server)
            }
            None => None,
        };
        let upstream = settings.upstream.clone().unwrap_or_default();
        let handle = match start(settings).await {
            Ok(h) => h,
            Err(e) => {
                if let Some(server) = engine {
                    server.shutdown().await;
                }
                return Err(e.into());
            }
        };
        let pump = tokio::spawn(pump(handle.subscribe(), sink));
        Ok(Self {
            handle,
            upstream,
            engine,
            started_unix_ms: now_unix_ms(),
            pump,
        })
    }

    /// The running proxy (rules, cache, address).
    pub fn handle(&self) -> &ProxyHandle {
        &self.handle
    }

    /// The upstream URL it forwards to (the built-in upstream's loopback URL if it runs on one).
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Whether it runs in front of a built-in upstream.
    pub fn is_builtin(&self) -> bool {
        self.engine.is_some()
    }

    /// Unix time (ms) it started.
    pub fn started_unix_ms(&self) -> u64 {
        self.started_unix_ms
    }

    /// Waits until the pump ends: the sink asked to stop (or the proxy's events closed).
    pub async fn pump_finished(&mut self) {
        let _ = (&mut self.pump).await;
    }

    /// Stops: no new connections; requests in flight get `grace` to finish (`None`: as long
    /// as they need), then the built-in upstream stops the same way (a generation in flight
    /// ends at its next token once its client is gone) and the pump ends.
    pub async fn stop(self, grace: Option<Duration>) {
        async fn within(grace: Option<Duration>, f: impl std::future::Future<Output = ()>) {
            match grace {
                Some(g) => {
                    let _ = tokio::time::timeout(g, f).await;
                }
                None => f.await,
            }
        }
        within(grace, self.handle.shutdown()).await;
        if let Some(server) = self.engine {
            within(grace, server.shutdown()).await;
        }
        self.pump.abort();
    }
}

/// Result of probing an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamProbe {
    /// A TCP connection to the upstream's host and port succeeded.
    pub reachable: bool,
    /// `host:port` probed.
    pub authority: String,
    /// Connect time when reachable.
    pub connect: Option<Duration>,
    /// Why not, when unreachable.
    pub error: Option<String>,
}

/// Probes `url`'s host and port with a TCP connection, waiting at most `timeout`. A URL the
/// proxy would refuse is an error naming `server.upstream`.
pub async fn probe_upstream(url: &str, timeout: Duration) -> Result<UpstreamProbe, SettingsError> {
    let u = parse_upstream(url.trim())?;
    let t = Instant::now();
    let outcome = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&u.authority)).await;
    let (reachable, connect, error) = match outcome {
        Ok(Ok(_)) => (true, Some(t.elapsed()), None),
        Ok(Err(e)) => (false, None, Some(e.to_string())),
        Err(_) => (
            false,
            None,
            Some(format!("no answer within {} s", timeout.as_secs())),
        ),
    };
    Ok(UpstreamProbe {
        reachable,
        authority: u.authority,
        connect,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64) -> ProxyEvent {
        ProxyEvent {
            id,
            started_unix_ms: 0,
            method: "POST".into(),
            path: "/v1/completions".into(),
            endpoint: None,
            status: 200,
            upstream_status: Some(200),
            rules_applied: vec![],
            cache_hit: false,
            blocked: false,
            streamed: false,
            latency_us: 0,
            duration_us: 0,
            bytes_in: 0,
            bytes_out: 0,
            error: None,
        }
    }

    fn ids(log: &RequestLog) -> Vec<u64> {
        log.entries().iter().map(|e| e.id).collect()
    }

    #[test]
    fn the_log_keeps_the_newest_entries_and_counts_every_request() {
        let log = RequestLog::new(3);
        for id in 1..=5 {
            log.record(&event(id));
        }
        assert_eq!(ids(&log), [5, 4, 3], "newest first, bounded");
        assert_eq!(log.requests(), 5);
        log.skipped(2);
        assert_eq!(log.requests(), 7, "missed events still count");
        log.clear();
        assert!(log.entries().is_empty());
        assert_eq!(log.requests(), 7, "clearing keeps the counter");
        assert_eq!(RequestLog::default().capacity, LOG_CAPACITY);
    }

    #[test]
    fn a_watcher_sees_new_entries_until_it_declines() {
        let log = RequestLog::new(10);
        log.record(&event(1));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let past = log.watch(Some(Box::new(move |e| {
            s.lock().push(e.id);
            e.id < 3
        })));
        assert_eq!(past.iter().map(|e| e.id).collect::<Vec<_>>(), [1]);
        for id in 2..=5 {
            log.record(&event(id));
        }
        assert_eq!(*seen.lock(), [2, 3], "dropped after returning false");
        assert!(log.watch(None).len() == 5);
    }

    #[tokio::test]
    async fn the_pump_counts_what_a_slow_sink_missed() {
        let (tx, rx) = broadcast::channel(2);
        for id in 1..=5 {
            tx.send(event(id)).unwrap();
        }
        drop(tx);
        let log = RequestLog::new(10);
        pump(rx, log.clone()).await;
        assert_eq!(log.requests(), 5, "3 lagged + 2 received");
        assert_eq!(ids(&log), [5, 4]);
    }

    #[tokio::test]
    async fn a_sink_can_stop_the_pump() {
        struct First(Arc<Mutex<Vec<u64>>>);
        impl EventSink for First {
            fn event(&mut self, e: &ProxyEvent) -> ControlFlow<()> {
                self.0.lock().push(e.id);
                ControlFlow::Break(())
            }
            fn lagged(&mut self, _: u64) -> ControlFlow<()> {
                ControlFlow::Continue(())
            }
        }
        let (tx, rx) = broadcast::channel(8);
        tx.send(event(1)).unwrap();
        tx.send(event(2)).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        pump(rx, First(Arc::clone(&seen))).await;
        assert_eq!(*seen.lock(), [1], "ends although the channel is open");
    }

    #[tokio::test]
    async fn probing_an_upstream() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = listener.local_addr().unwrap();
        let p = probe_upstream(&format!(" http://{up} "), PROBE_TIMEOUT)
            .await
            .unwrap();
        assert!(
            p.reachable && p.connect.is_some() && p.error.is_none(),
            "{p:?}"
        );
        assert_eq!(p.authority, up.to_string());
        drop(listener);
        let p = probe_upstream(&format!("http://{up}"), PROBE_TIMEOUT)
            .await
            .unwrap();
        assert!(
            !p.reachable && p.connect.is_none() && p.error.is_some(),
            "{p:?}"
        );
        let e = probe_upstream("https://example.invalid", PROBE_TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("server.upstream"), "{e}");
    }

    #[tokio::test]
    async fn a_supervised_proxy_logs_each_request_and_stops() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // An upstream nothing listens on: every request gets a 502, and is logged.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let settings = ServerSettings {
            upstream: Some(format!("http://{closed}")),
            port: 0,
            ..ServerSettings::default()
        };
        let log = RequestLog::new(10);
        let sup = Supervisor::start(settings, None, log.clone())
            .await
            .unwrap();
        assert_eq!(sup.upstream(), format!("http://{closed}"));
        assert!(!sup.is_builtin() && sup.started_unix_ms() > 0);
        let mut s = tokio::net::TcpStream::connect(sup.handle().local_addr())
            .await
            .unwrap();
        let body = r#"{"prompt": "x"}"#;
        let req = format!("POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        s.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
        for _ in 0..200 {
            if log.requests() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(ids(&log), [1]);
        assert_eq!(log.entries()[0].status, 502);
        sup.stop(Some(Duration::from_secs(3))).await;

        let no_upstream = ServerSettings {
            port: 0,
            ..ServerSettings::default()
        };
        let e = Supervisor::start(no_upstream, None, RequestLog::new(1))
            .await
            .unwrap_err();
        assert!(
            matches!(e, SupervisorError::Proxy(ProxyError::NoUpstream)),
            "{e}"
        );
    }
}
