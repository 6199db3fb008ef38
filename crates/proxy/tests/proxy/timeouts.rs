//! Slow clients and idle upstream connections are timed out, on real sockets
//! with short configured timeouts: a client trickling or stalling its request head, a silent
//! keep-alive connection, a stalled request body (generation endpoint and pass-through), and
//! the upstream connection pool after a burst (counted by a real TCP upstream). Each check
//! asserts the connection is closed after the timeout and NOT well before it; the margins are
//! generous (seconds), as the machine may be busy.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Full;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// The timeout the tests configure, and how late a close may come (scheduling, busy machine).
const T: Duration = Duration::from_millis(1000);
const LATE: Duration = Duration::from_secs(5);

/// An HTTP/1 upstream on a real socket that answers `{"ok":true}` and counts the connections
/// it accepted and the ones that have closed.
struct CountingUpstream {
    url: String,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

impl CountingUpstream {
    fn open(&self) -> usize {
        self.accepted.load(Ordering::SeqCst) - self.closed.load(Ordering::SeqCst)
    }
}

async fn counting_upstream() -> CountingUpstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (a, c) = (accepted.clone(), closed.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            a.fetch_add(1, Ordering::SeqCst);
            let c = c.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async {
                        // Reads the whole body first, as a real server does before answering.
                        let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                        // A little work, so a burst needs several connections at once.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let mut r =
                            http::Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
                        r.headers_mut()
                            .insert("content-type", "application/json".parse().unwrap());
                        Ok::<_, Infallible>(r)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    CountingUpstream {
        url,
        accepted,
        closed,
    }
}

/// Reads from `tcp` until the peer closes (EOF or reset); returns all bytes read and when.
async fn read_until_closed(tcp: &mut TcpStream, within: Duration) -> (Vec<u8>, Instant) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::timeout(within, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the proxy did not close the connection within {within:?}"));
    (all, end)
}

fn assert_closed_in_time(what: &str, t0: Instant, closed: Instant) {
    let took = closed - t0;
    assert!(
        took >= T.mul_f64(0.8),
        "{what}: closed after {took:?}, well before the {T:?} timeout"
    );
    assert!(took <= T + LATE, "{what}: closed only after {took:?}");
}

async fn timed_proxy(up: &str) -> (hotpatch_proxy::ProxyHandle, String) {
    let (h, url, _events) = proxy(
        up,
        json!({
            "header_read_timeout_ms": T.as_millis() as u64,
            "body_read_timeout_ms": T.as_millis() as u64,
            "pool_idle_timeout_ms": T.as_millis() as u64,
        }),
    )
    .await;
    (h, url.trim_start_matches("http://").to_owned())
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_disconnected() {
    let up = counting_upstream().await;
    let (_h, addr) = timed_proxy(&up.url).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    let t0 = Instant::now();
    tcp.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Slowloris: one header byte every 100 ms, never the blank line.
    let trickle = async {
        for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter()
        {
            if tcp.write_all(&[*b]).await.is_err() {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("still writing after {:?}", t0.elapsed());
    };
    let closed = tokio::time::timeout(T + LATE, trickle)
        .await
        .expect("the trickling client is cut");
    // A write can succeed a little after the close; the read side says exactly.
    let (_, eof) = read_until_closed(&mut tcp, LATE).await;
    assert_closed_in_time("header trickle", t0, closed.min(eof));
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        0,
        "nothing went upstream"
    );
}

#[tokio::test]
async fn a_half_header_and_a_silent_connection_are_disconnected() {
    let up = counting_upstream().await;
    let (_h, addr) = timed_proxy(&up.url).await;
    let mut half = TcpStream::connect(&addr).await.unwrap();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let t0 = Instant::now();
    half.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Half: ")
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        read_until_closed(&mut half, T + LATE),
        read_until_closed(&mut silent, T + LATE)
    );
    assert_closed_in_time("half header", t0, a.1);
    assert_closed_in_time("silent connection", t0, b.1);
}

#[tokio::test]
async fn an_idle_keep_alive_client_connection_is_closed() {
    let up = counting_upstream().await;
    let (_h, addr) = timed_proxy(&up.url).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Read the answer, then stay silent on the kept-alive connection.
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("{\"ok\":true}") {
        let n = tokio::time::timeout(LATE, tcp.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "answered: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let t0 = Instant::now();
    let (_, closed) = read_until_closed(&mut tcp, T + LATE).await;
    assert_closed_in_time("idle keep-alive", t0, closed);
}

#[tokio::test]
async fn a_stalled_request_body_gets_408_and_is_disconnected() {
    let up = counting_upstream().await;
    let (_h, addr) = timed_proxy(&up.url).await;
    for path in ["/v1/chat/completions", "/some/pass-through"] {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":"
        );
        let t0 = Instant::now();
        tcp.write_all(head.as_bytes()).await.unwrap();
        let (answer, closed) = read_until_closed(&mut tcp, T + LATE).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{path}: a stalled body is a 408: {answer}"
        );
        assert!(answer.contains("body_timeout"), "{path}: {answer}");
        assert_closed_in_time(&format!("stalled body {path}"), t0, closed);
    }
}

#[tokio::test]
async fn a_steady_slow_body_is_not_cut() {
    // The body timeout is a silence limit, not a total: 3 pieces 600 ms apart (1.8 s in all,
    // longer than the 1 s timeout) go through.
    let up = counting_upstream().await;
    let (_h, addr) = timed_proxy(&up.url).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    let body = b"{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    let head = format!(
        "POST /pass HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    for piece in body.chunks(body.len().div_ceil(3)) {
        tcp.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let (answer, _) = read_until_closed(&mut tcp, LATE).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn idle_upstream_connections_are_closed_after_a_burst() {
    let up = counting_upstream().await;
    let (_h, addr) = timed_proxy(&up.url).await;
    let url = format!("http://{addr}/v1/models");
    let burst: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { send(&url, Method::GET, &[], Bytes::new()).await.0 })
        })
        .collect();
    for r in burst {
        assert_eq!(r.await.unwrap(), StatusCode::OK);
    }
    let t0 = Instant::now();
    let opened = up.accepted.load(Ordering::SeqCst);
    assert!(
        opened >= 2,
        "the burst used several upstream connections ({opened})"
    );
    tokio::time::sleep(T / 4).await;
    assert!(
        up.open() > 0,
        "pooled connections are kept a while for reuse (all closed after {:?})",
        t0.elapsed()
    );
    while up.open() > 0 {
        assert!(
            t0.elapsed() <= T + LATE,
            "{} of {opened} idle upstream connections still open after {:?}",
            up.open(),
            t0.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        t0.elapsed() >= T.mul_f64(0.8),
        "idled out after {:?}, before the {T:?} pool timeout",
        t0.elapsed()
    );
}
