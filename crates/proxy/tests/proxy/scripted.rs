//! The proxy against a scripted upstream (axum): each request says, in its `x-script`
//! header, how the upstream behaves; the upstream records what it received.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::support::*;

#[derive(Debug, Clone)]
struct Received {
    #[allow(dead_code)]
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct Upstream {
    received: Mutex<Vec<Received>>,
    /// "go" signals for the `stepped` script (one per piece after the first).
    go: tokio::sync::Mutex<Option<mpsc::Receiver<()>>>,
}

struct Scripted {
    url: String,
    state: Arc<Upstream>,
    go: mpsc::Sender<()>,
}

impl Scripted {
    fn received(&self) -> Vec<Received> {
        self.state.received.lock().clone()
    }
    fn last_body(&self) -> Value {
        json(
            &self
                .received()
                .last()
                .expect("the upstream got a request")
                .body,
        )
    }
}

fn sse(chunks: &[String]) -> String {
    chunks.iter().map(|c| format!("data: {c}\n\n")).collect()
}

fn chat_chunk(content: &str) -> String {
    json!({"id": "x", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]}).to_string()
}

fn chat_final() -> String {
    json!({"id": "x", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).to_string()
}

fn stream_response(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Response {
    let mut resp = Response::new(Body::new(ChannelBody(rx)));
    resp.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    resp
}

async fn upstream_handler(State(st): State<Arc<Upstream>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    st.received.lock().push(Received {
        path: path.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let script = parts
        .headers
        .get("x-script")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let answer = parts
        .headers
        .get("x-answer")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("hello")
        .to_owned();
    let pieces: Vec<String> = answer.split('|').map(str::to_owned).collect();
    let (tx, rx) = mpsc::channel(16);
    match script.as_str() {
        "slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Response::new(Body::from("too late"))
        }
        "error500" => {
            let mut r = Response::new(Body::from(r#"{"error":{"message":"model exploded"}}"#));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r
        }
        "broken" | "stall" => {
            let stall = script == "stall";
            tokio::spawn(async move {
                let _ = tx
                    .send(Ok(Bytes::from(sse(&[chat_chunk("partial ")]))))
                    .await;
                if stall {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                } else {
                    // Let hyper flush the first chunk: it drops unflushed data when a body fails.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _ = tx
                        .send(Err(std::io::Error::other("upstream crashed")))
                        .await;
                }
            });
            stream_response(rx)
        }
        "stepped" => {
            let mut go = st
                .go
                .lock()
                .await
                .take()
                .expect("one stepped request at a time");
            let st2 = st.clone();
            tokio::spawn(async move {
                for (i, p) in pieces.iter().enumerate() {
                    if i > 0 && go.recv().await.is_none() {
                        break;
                    }
                    if tx
                        .send(Ok(Bytes::from(sse(&[chat_chunk(p)]))))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                let _ = tx
                    .send(Ok(Bytes::from(sse(&[chat_final(), "[DONE]".into()]))))
                    .await;
                *st2.go.lock().await = Some(go);
            });
            stream_response(rx)
        }
        "huge" => Response::new(Body::from(vec![b'z'; 8 << 20])),
        _ if parts.method == Method::POST && parts.uri.path() == "/v1/chat/completions" => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if v["stream"] == true {
                let mut chunks: Vec<String> = pieces.iter().map(|p| chat_chunk(p)).collect();
                chunks.push(chat_final());
                chunks.push("[DONE]".into());
                // Each event in its own write so the proxy sees separate frames.
                tokio::spawn(async move {
                    for c in chunks {
                        let _ = tx.send(Ok(Bytes::from(format!("data: {c}\n\n")))).await;
                    }
                });
                stream_response(rx)
            } else {
                let body = json!({"id": "x", "object": "chat.completion", "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": pieces.concat()}, "finish_reason": "stop"}]});
                let mut r = Response::new(Body::from(body.to_string()));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                r
            }
        }
        _ => {
            let echo = json!({"method": parts.method.as_str(), "path": path, "len": body.len()});
            let mut r = Response::new(Body::from(echo.to_string()));
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r.headers_mut().insert("x-upstream", "yes".parse().unwrap());
            r
        }
    }
}

async fn scripted() -> Scripted {
    let (go, go_rx) = mpsc::channel(16);
    let state = Arc::new(Upstream {
        received: Mutex::default(),
        go: tokio::sync::Mutex::new(Some(go_rx)),
    });
    let app = Router::new()
        .fallback(upstream_handler)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Scripted {
        url: format!("http://{addr}"),
        state,
        go,
    }
}

fn chat(stream: bool) -> Value {
    json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn rewrites_request_and_filters_answer() {
    let up = scripted().await;
    let rules = json!([
        {"id": "sys", "action": {"type": "system_prompt", "mode": "prepend", "text": "Be terse."}},
        {"id": "temp", "action": {"type": "default_parameter", "name": "temperature", "value": 0.1}},
        {"id": "samp", "action": {"type": "override_parameter", "name": "samplers", "value": ["top_k", "temperature"]}},
        {"id": "stop", "action": {"type": "stop_sequences", "sequences": ["###"]}},
        {"id": "pw", "action": {"type": "filter_response", "pattern": "hunter\\d", "action": "redact"}}
    ]);
    let (h, url, mut events) = proxy(&up.url, json!({"rules": rules})).await;
    let (status, headers, body) = send(
        &format!("{url}/v1/chat/completions"),
        Method::POST,
        &[
            ("content-type", "application/json"),
            ("x-answer", "the password is hunter2."),
        ],
        chat(false).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let got = up.last_body();
    assert_eq!(
        got["messages"][0],
        json!({"role": "system", "content": "Be terse."}),
        "system prompt injected upstream"
    );
    assert_eq!(got["temperature"], 0.1, "default filled because absent");
    assert_eq!(
        got["samplers"],
        json!(["top_k", "temperature"]),
        "llama.cpp samplers override"
    );
    assert_eq!(got["stop"], json!(["###"]), "stop sequence merged");
    assert_eq!(
        json(&body)["choices"][0]["message"]["content"],
        "the password is [REDACTED]."
    );
    let id = headers
        .get(hotpatch_proxy::REQUEST_ID_HEADER)
        .expect("request id header")
        .to_str()
        .unwrap()
        .to_owned();
    let ev = next_event(&mut events).await;
    assert_eq!(ev.id.to_string(), id, "event and header carry the same id");
    assert_eq!(ev.rules_applied, vec!["sys", "temp", "samp", "stop", "pw"]);
    assert_eq!(
        (ev.status, ev.upstream_status, ev.cache_hit, ev.streamed),
        (200, Some(200), false, false)
    );
    assert_eq!(ev.bytes_out, body.len() as u64);
    assert!(ev.bytes_in > 0 && ev.error.is_none());
    let hits: Vec<u64> = h.rules().iter().map(|r| r.hits).collect();
    assert_eq!(
        hits,
        vec![1, 1, 1, 1, 1],
        "every rule changed this request once"
    );

    // Disable at runtime: the next request is not injected, counters stay.
    assert!(h.set_rule_enabled("sys", false));
    post_json(&format!("{url}/v1/chat/completions"), &chat(false)).await;
    assert_eq!(
        up.last_body()["messages"].as_array().unwrap().len(),
        1,
        "disabled rule no longer injects"
    );
    assert_eq!(h.rules()[0].hits, 1);
    assert!(!h.rules()[0].rule.enabled);
}

#[tokio::test]
async fn sse_pattern_split_across_chunks_is_redacted() {
    let up = scripted().await;
    let rules = json!([{"id": "pw", "action": {"type": "filter_response", "pattern": "password", "action": "redact", "literal": true}}]);
    let (_h, url, mut events) = proxy(&up.url, json!({"rules": rules})).await;
    let (status, headers, body) = send(
        &format!("{url}/v1/chat/completions"),
        Method::POST,
        &[("x-answer", "my pa|ssw|ord is 42")],
        chat(true).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(sse_text(&text), "my [REDACTED] is 42");
    assert!(
        !text.contains("ssw"),
        "no fragment of the pattern reaches the client: {text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
    let ev = next_event(&mut events).await;
    assert_eq!(ev.rules_applied, vec!["pw"]);
    assert!(ev.streamed && ev.error.is_none() && ev.bytes_out == body.len() as u64);
}

/// The proxy forwards each upstream chunk before the upstream sends the next one.
#[tokio::test]
async fn sse_is_forwarded_chunk_by_chunk() {
    for rules in [
        json!([]),
        json!([{"id": "f", "action": {"type": "filter_response", "pattern": "xyz", "action": "redact", "literal": true}}]),
    ] {
        let up = scripted().await;
        let (_h, url, _events) = proxy(&up.url, json!({"rules": rules})).await;
        let resp = send_raw(
            &format!("{url}/v1/chat/completions"),
            Method::POST,
            &[
                ("x-script", "stepped"),
                (
                    "x-answer",
                    "first piece, long enough to pass the window|second|third",
                ),
            ],
            chat(true).to_string(),
        )
        .await;
        let mut body = resp.into_body();
        let first = next_frame(&mut body).await.expect("a first frame");
        let first = String::from_utf8(first.to_vec()).unwrap();
        assert!(
            sse_text(&first).starts_with("first piece"),
            "first piece arrives while the upstream waits: {first}"
        );
        for _ in 0..2 {
            up.go.send(()).await.unwrap();
        }
        let mut rest = String::new();
        while let Some(f) = next_frame(&mut body).await {
            rest.push_str(std::str::from_utf8(&f).unwrap());
        }
        assert_eq!(
            sse_text(&(first + &rest)),
            "first piece, long enough to pass the windowsecondthird"
        );
    }
}

#[tokio::test]
async fn block_ends_the_stream_with_content_filter() {
    let up = scripted().await;
    let rules = json!([{"id": "no", "action": {"type": "filter_response", "pattern": "rm -rf", "action": "block", "literal": true, "replacement": "[refused]"}}]);
    let (_h, url, mut events) = proxy(&up.url, json!({"rules": rules})).await;
    let (_, _, body) = send(
        &format!("{url}/v1/chat/completions"),
        Method::POST,
        &[("x-answer", "run rm| -rf / then|more|more")],
        chat(true).to_string(),
    )
    .await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(sse_text(&text), "run [refused]");
    assert!(
        text.contains(r#""finish_reason":"content_filter""#) && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    assert!(!text.contains("more"), "nothing after the block");
    assert!(next_event(&mut events).await.blocked);
}

#[tokio::test]
async fn upstream_down_is_a_fast_502() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (_h, url, mut events) = proxy(&format!("http://{closed}"), json!({})).await;
    let (status, headers, body) =
        post_json(&format!("{url}/v1/chat/completions"), &chat(false)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["content-type"], "application/json");
    let v = json(&body);
    assert_eq!(v["error"]["code"], "upstream_unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&closed.to_string()),
        "names the upstream: {v}"
    );
    let ev = next_event(&mut events).await;
    assert_eq!((ev.status, ev.upstream_status), (502, None));
}

#[tokio::test]
async fn slow_upstream_is_504_within_the_timeout() {
    let up = scripted().await;
    let (_h, url, _e) = proxy(&up.url, json!({"response_timeout_ms": 300})).await;
    // The upstream sleeps 30 s; `send` allows 60 s, so a 504 here came from the proxy's timer.
    let (status, _, body) = send(
        &format!("{url}/v1/chat/completions"),
        Method::POST,
        &[("x-script", "slow")],
        chat(false).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(json(&body)["error"]["code"], "upstream_timeout");
    let (status, _, _) = send(
        &format!("{url}/anything"),
        Method::GET,
        &[("x-script", "slow")],
        "",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::GATEWAY_TIMEOUT,
        "pass-through requests are bounded too"
    );
}

#[tokio::test]
async fn upstream_errors_pass_through() {
    let up = scripted().await;
    let rules = json!([{"id": "f", "action": {"type": "filter_response", "pattern": "exploded", "action": "redact"}}]);
    let (_h, url, mut events) = proxy(&up.url, json!({"rules": rules})).await;
    let (status, _, body) = send(
        &format!("{url}/v1/chat/completions"),
        Method::POST,
        &[("x-script", "error500")],
        chat(false).to_string(),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        &body[..],
        br#"{"error":{"message":"model exploded"}}"#,
        "error bodies are the upstream's, unfiltered"
    );
    let ev = next_event(&mut events).await;
    assert_eq!((ev.status, ev.upstream_status), (500, Some(500)));
}

#[tokio::test]
async fn broken_and_stalled_streams_are_cut_and_reported() {
    let up = scripted().await;
    let rules = json!([{"id": "f", "action": {"type": "filter_response", "pattern": "zz", "action": "redact"}}]);
    let (_h, url, mut events) =
        proxy(&up.url, json!({"rules": rules, "idle_timeout_ms": 300})).await;
    for (script, expect) in [
        ("broken", "upstream stream broken"),
        ("stall", "sent nothing for 300 ms"),
    ] {
        let (status, _, body) = send(
            &format!("{url}/v1/chat/completions"),
            Method::POST,
            &[("x-script", script)],
            chat(true).to_string(),
        )
        .await;
        assert_eq!(status, 200, "headers were already sent");
        let text = String::from_utf8(body.to_vec()).unwrap();
        let (before, _) = text
            .rsplit_once("data: {\"error\"")
            .expect("an error event");
        assert_eq!(
            sse_text(before),
            "partial ",
            "{script}: text before the failure is delivered (held-back tail included)"
        );
        let last: Value = serde_json::from_str(sse_data(&text).last().unwrap()).unwrap();
        assert_eq!(
            last["error"]["code"], "upstream_broken",
            "{script}: the stream ends with an error event: {text}"
        );
        let ev = next_event(&mut events).await;
        let err = ev.error.unwrap_or_default();
        assert!(err.contains(expect), "{script}: event error {err:?}");
    }
}

#[tokio::test]
async fn body_limit_gives_413() {
    let up = scripted().await;
    let (_h, url, _e) = proxy(&up.url, json!({"body_limit_bytes": 1000})).await;
    let big = json!({"messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let (status, _, body) = post_json(&format!("{url}/v1/chat/completions"), &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(&body)["error"]["code"], "body_too_large");
    let (status, _, _) = send(&format!("{url}/upload"), Method::PUT, &[], vec![b'a'; 5000]).await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "pass-through bodies are bounded too"
    );
    assert!(
        up.received().is_empty(),
        "nothing over the limit reached the upstream"
    );
    let (status, _, body) = send(
        &format!("{url}/v1/chat/completions"),
        Method::POST,
        &[],
        "{not json",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json(&body)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
}

#[tokio::test]
async fn pass_through_is_verbatim() {
    let up = scripted().await;
    let (_h, url, mut events) = proxy(&up.url, json!({})).await;
    let (status, headers, body) = send(
        &format!("{url}/v1/models?limit=2&x=%20y"),
        Method::GET,
        &[
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("x-keep", "2"),
            ("authorization", "Bearer k"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-upstream"], "yes", "upstream headers come back");
    assert_eq!(
        json(&body)["path"],
        "/v1/models?limit=2&x=%20y",
        "path and query unchanged"
    );
    let got = up.received().pop().unwrap();
    assert_eq!(got.headers["x-keep"], "2");
    assert_eq!(got.headers["authorization"], "Bearer k");
    assert!(
        got.headers.get("x-hop").is_none(),
        "headers named by Connection are hop-by-hop"
    );
    let (status, _, body) = send(&format!("{url}/v1/chat/completions"), Method::GET, &[], "").await;
    assert_eq!(
        (status, json(&body)["method"].as_str()),
        (StatusCode::OK, Some("GET")),
        "GET on a rewritten path passes through"
    );
    let (_, _, body) = send(
        &format!("{url}/huge"),
        Method::GET,
        &[("x-script", "huge")],
        "",
    )
    .await;
    assert_eq!(body.len(), 8 << 20, "large answers stream through whole");
    assert!(body.iter().all(|&b| b == b'z'));
    let (_, _, body) = send(
        &format!("{url}/upload"),
        Method::POST,
        &[],
        vec![7u8; 100_000],
    )
    .await;
    assert_eq!(
        json(&body)["len"],
        100_000,
        "request bodies stream through whole"
    );
    let ev = next_event(&mut events).await;
    assert_eq!(
        (ev.endpoint, ev.path.as_str()),
        (None, "/v1/models?limit=2&x=%20y")
    );
}

#[tokio::test]
async fn cache_replays_plain_and_streamed_answers() {
    let up = scripted().await;
    let (h, url, mut events) =
        proxy(&up.url, json!({"cache": {"enabled": true, "ttl_secs": 60}})).await;
    let endpoint = format!("{url}/v1/chat/completions");
    for stream in [false, true] {
        let a = send(
            &endpoint,
            Method::POST,
            &[("x-answer", "one|two|three")],
            chat(stream).to_string(),
        )
        .await;
        // Same request, keys reordered and an output-neutral field added: same cache key.
        let mut b_req = json!({"user": "someone", "messages": [{"content": "hi", "role": "user"}], "stream": stream, "model": "m"});
        b_req["cache_prompt"] = json!(true);
        let b = send(
            &endpoint,
            Method::POST,
            &[("x-answer", "DIFFERENT")],
            b_req.to_string(),
        )
        .await;
        assert_eq!(
            a.2, b.2,
            "stream={stream}: the cached answer is replayed byte for byte"
        );
        assert_eq!(b.1[hotpatch_proxy::CACHE_HEADER], "hit");
        assert!(a.1.get(hotpatch_proxy::CACHE_HEADER).is_none());
        let e1 = next_event(&mut events).await;
        let e2 = next_event(&mut events).await;
        assert_eq!(
            (e1.cache_hit, e2.cache_hit, e2.upstream_status),
            (false, true, None)
        );
        if stream {
            assert_eq!(b.1["content-type"], "text/event-stream");
            assert_eq!(sse_text(std::str::from_utf8(&b.2).unwrap()), "onetwothree");
        }
    }
    assert_eq!(
        up.received().len(),
        2,
        "one upstream call per distinct request"
    );
    assert_eq!(h.cache_stats().hits, 2);
    h.set_cache_enabled(false);
    post_json(&endpoint, &chat(false)).await;
    assert_eq!(up.received().len(), 3, "cache off: upstream asked again");
}

#[tokio::test]
async fn port_zero_and_shutdown() {
    let up = scripted().await;
    let (h, url, _e) = proxy(&up.url, json!({})).await;
    assert_ne!(h.local_addr().port(), 0, "the bound port is reported");
    assert!(h.local_addr().ip().is_loopback(), "loopback by default");
    let (status, _, _) = send(&format!("{url}/ping"), Method::GET, &[], "").await;
    assert_eq!(status, 200);
    let addr = h.local_addr();
    tokio::time::timeout(Duration::from_secs(10), h.shutdown())
        .await
        .expect("shutdown completes");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening after shutdown"
    );
}
