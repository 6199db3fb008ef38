//! Test helpers: an HTTP client reading bodies frame by frame, a channel-fed body for
//! scripted upstreams, proxy start-up with rules given as JSON.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hotpatch_proxy::{ProxyEvent, ProxyHandle, ServerSettings};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Send a request; returns the response with its body unread.
pub async fn send_raw(
    url: &str,
    method: Method,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> http::Response<Incoming> {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).expect("request builds");
    tokio::time::timeout(Duration::from_secs(60), client().request(req))
        .await
        .expect("the proxy answers within 60 s (it must never hang)")
        .expect("the proxy accepts the connection")
}

/// Send a request and read the whole answer.
pub async fn send(
    url: &str,
    method: Method,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (StatusCode, HeaderMap, Bytes) {
    let resp = send_raw(url, method, headers, body).await;
    let (parts, body) = resp.into_parts();
    let bytes = tokio::time::timeout(Duration::from_secs(60), body.collect())
        .await
        .expect("body within 60 s")
        .expect("body reads")
        .to_bytes();
    (parts.status, parts.headers, bytes)
}

pub async fn post_json(url: &str, body: &Value) -> (StatusCode, HeaderMap, Bytes) {
    send(
        url,
        Method::POST,
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("expected JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// Next data frame of a body (None at the end); panics on a body error.
pub async fn next_frame(body: &mut Incoming) -> Option<Bytes> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .expect("a frame within 30 s")?;
        let frame = frame.expect("body frame reads");
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

/// The `data:` payloads of an SSE text.
pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

/// Concatenated answer text of an SSE stream for a chat/completions/llama endpoint.
pub fn sse_text(text: &str) -> String {
    sse_data(text)
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| {
            let v: Value =
                serde_json::from_str(d).unwrap_or_else(|e| panic!("SSE data is JSON ({e}): {d}"));
            let t = if let Some(c) = v.get("content") {
                c.as_str()
            } else {
                let c = &v["choices"][0];
                c["delta"]["content"]
                    .as_str()
                    .or_else(|| c["text"].as_str())
            };
            t.unwrap_or("").to_owned()
        })
        .collect()
}

/// Start a proxy in front of `upstream` with extra settings (a JSON object merged in).
pub async fn proxy(
    upstream: &str,
    extra: Value,
) -> (ProxyHandle, String, broadcast::Receiver<ProxyEvent>) {
    let mut settings = serde_json::json!({"port": 0, "upstream": upstream});
    if let (Some(s), Value::Object(extra)) = (settings.as_object_mut(), extra) {
        s.extend(extra);
    }
    let settings =
        ServerSettings::from_json(&settings.to_string()).expect("test settings are valid");
    let handle = hotpatch_proxy::start(settings).await.expect("proxy starts");
    let url = format!("http://{}", handle.local_addr());
    let events = handle.subscribe();
    (handle, url, events)
}

/// Next event (waits up to 30 s).
pub async fn next_event(rx: &mut broadcast::Receiver<ProxyEvent>) -> ProxyEvent {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("an event within 30 s")
        .expect("event channel open")
}

/// A response body fed from a channel: the scripted upstream decides when each chunk goes.
pub struct ChannelBody(pub mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}
