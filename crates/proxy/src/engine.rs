//! The built-in upstream: an OpenAI-compatible HTTP server answering from the embedded engine
//! (`hotpatch-infer`), so the proxy works on a machine with no other LLM server.
//!
//! Routes: `POST /v1/completions`, `POST /v1/chat/completions` (both with `"stream": true` as
//! server-sent events ending in `data: [DONE]`), `GET /v1/models`, `GET /health`. Generation is
//! greedy unless the request sets `temperature` > 0 (then `top_p`, `top_k` and `seed` apply);
//! `max_tokens` defaults to 256; `stop` is a string or a list. The engine runs on tokio's
//! blocking threads, one request at a time (a second waits); a client that disconnects stops
//! its generation at the next token. Since the engine computes from the mapped model file,
//! an in-place or live edit of the file shows in the next answer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use hotpatch_infer::{Backend, GenOptions, InferError, Sampling};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Why the engine server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct EngineServerError {
    /// The address.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: std::io::Error,
}

struct Shared {
    backend: Arc<dyn Backend>,
    next: AtomicU64,
}

/// A running engine server; dropping it stops it.
pub struct EngineServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EngineServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl EngineServer {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL (`http://ADDR`), what the proxy takes as upstream.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for requests in flight.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for EngineServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts the engine server on `addr` (port 0: any free port) on the current runtime.
pub async fn start_engine_server(
    backend: Arc<dyn Backend>,
    addr: SocketAddr,
) -> Result<EngineServer, EngineServerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| EngineServerError { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EngineServerError { addr, source })?;
    let shared = Arc::new(Shared {
        backend,
        next: AtomicU64::new(1),
    });
    let router = Router::new().fallback(handle).with_state(shared);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(EngineServer {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        &json!({"error": {"message": message.into(), "type": kind}}),
    )
}

fn engine_error(e: &InferError) -> Response {
    match e {
        InferError::Invalid { .. } | InferError::ContextFull { .. } => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            e.to_string(),
        ),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            e.to_string(),
        ),
    }
}

async fn handle(State(sh): State<Arc<Shared>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().trim_end_matches('/');
    match (&method, path) {
        (&Method::GET, "/health") => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/v1/models") => {
            let b = Arc::clone(&sh.backend);
            match tokio::task::spawn_blocking(move || b.model_id()).await {
                Ok(Ok(id)) => json_response(
                    StatusCode::OK,
                    &json!({"object": "list", "data": [{"id": id, "object": "model", "owned_by": "hotpatch"}]}),
                ),
                Ok(Err(e)) => engine_error(&e),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    e.to_string(),
                ),
            }
        }
        (&Method::POST, "/v1/completions") => complete(sh, &body, false).await,
        (&Method::POST, "/v1/chat/completions") => complete(sh, &body, true).await,
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "{method} {path}: the built-in engine serves POST /v1/completions, POST \
                 /v1/chat/completions, GET /v1/models, GET /health"
            ),
        ),
    }
}

/// A request's generation settings, validated.
fn gen_options(v: &Value) -> Result<GenOptions, String> {
    let num = |k: &str| -> Result<Option<f64>, String> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("{k} must be a number")),
        }
    };
    let max_tokens = num("max_tokens")?
        .or(num("max_completion_tokens")?)
        .unwrap_or(256.0);
    if !(0.0..=1_000_000.0).contains(&max_tokens) || max_tokens.fract() != 0.0 {
        return Err("max_tokens must be a whole number from 0 to 1000000".into());
    }
    let temperature = num("temperature")?.unwrap_or(0.0);
    if !(0.0..=100.0).contains(&temperature) {
        return Err("temperature must be between 0 and 100".into());
    }
    let top_p = num("top_p")?.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&top_p) || top_p == 0.0 {
        return Err("top_p must be in (0, 1]".into());
    }
    let top_k = num("top_k")?.unwrap_or(0.0);
    if top_k < 0.0 || top_k.fract() != 0.0 {
        return Err("top_k must be a whole number ≥ 0".into());
    }
    let seed = num("seed")?.unwrap_or(0.0);
    let stop = match v.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or("stop must hold strings")
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("stop must be a string or a list of strings".into()),
    };
    Ok(GenOptions {
        max_tokens: max_tokens as usize,
        sampling: Sampling {
            temperature: temperature as f32,
            top_k: top_k as usize,
            top_p: top_p as f32,
            seed: seed as u64,
        },
        stop,
    })
}

/// The messages of a chat request as (role, text).
fn messages(v: &Value) -> Result<Vec<(String, String)>, String> {
    let arr = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages must be a list")?;
    if arr.is_empty() {
        return Err("messages is empty".into());
    }
    arr.iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m
                .get("role")
                .and_then(Value::as_str)
                .ok_or(format!("messages[{i}].role must be a string"))?;
            let content = match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(""),
                None | Some(Value::Null) => String::new(),
                Some(_) => return Err(format!("messages[{i}].content must be text")),
            };
            Ok((role.to_string(), content))
        })
        .collect()
}

fn prompt_text(v: &Value) -> Result<String, String> {
    match v.get("prompt") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
            Ok(a[0].as_str().unwrap_or_default().to_string())
        }
        Some(Value::Array(_)) => Err("prompt: one string is supported (a list of one)".into()),
        _ => Err("prompt must be a string".into()),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A response body fed from a channel (server-sent events).
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(http_body::Frame::data(b))))
    }
}

async fn complete(sh: Arc<Shared>, body: &[u8], chat: bool) -> Response {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the body must be a JSON object",
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("the body is not JSON: {e}"),
            )
        }
    };
    let options = match gen_options(&v) {
        Ok(o) => o,
        Err(m) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", m),
    };
    let input = if chat {
        messages(&v).map(Err)
    } else {
        prompt_text(&v).map(Ok)
    };
    let input = match input {
        Ok(i) => i,
        Err(m) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", m),
    };
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let n = sh.next.fetch_add(1, Ordering::Relaxed);
    let id = if chat {
        format!("chatcmpl-{n}")
    } else {
        format!("cmpl-{n}")
    };
    let created = now();
    let backend = Arc::clone(&sh.backend);
    let model = {
        let b = Arc::clone(&backend);
        tokio::task::spawn_blocking(move || b.model_id())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| "hotpatch".into())
    };
    let run = move |on_step: &mut dyn FnMut(&hotpatch_infer::Step) -> bool| {
        let prompt = match &input {
            Ok(p) => p.clone(),
            Err(msgs) => backend.chat_prompt(msgs)?,
        };
        backend.complete(&prompt, &options, on_step)
    };
    if !stream {
        let r = tokio::task::spawn_blocking(move || run(&mut |_| true)).await;
        let g = match r {
            Ok(Ok(g)) => g,
            Ok(Err(e)) => return engine_error(&e),
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    e.to_string(),
                )
            }
        };
        let usage = json!({
            "prompt_tokens": g.prompt_tokens,
            "completion_tokens": g.tokens.len(),
            "total_tokens": g.prompt_tokens + g.tokens.len(),
        });
        let choice = if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": g.text}, "finish_reason": g.stop.finish_reason()})
        } else {
            json!({"index": 0, "text": g.text, "logprobs": null, "finish_reason": g.stop.finish_reason()})
        };
        let object = if chat {
            "chat.completion"
        } else {
            "text_completion"
        };
        return json_response(
            StatusCode::OK,
            &json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice], "usage": usage}),
        );
    }
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = move |text: Option<&str>, finish: Option<&str>, first: bool| -> Bytes {
        let choice = if chat {
            let mut delta = serde_json::Map::new();
            if first {
                delta.insert("role".into(), json!("assistant"));
            }
            if let Some(t) = text {
                delta.insert("content".into(), json!(t));
            }
            json!({"index": 0, "delta": delta, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish})
        };
        let v = json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice]});
        Bytes::from(format!("data: {v}\n\n"))
    };
    tokio::task::spawn_blocking(move || {
        let mut first = true;
        let r = run(&mut |s| {
            let b = chunk(Some(&s.text), None, first);
            first = false;
            tx.blocking_send(b).is_ok()
        });
        match r {
            Ok(g) => {
                let _ = tx.blocking_send(chunk(None, Some(g.stop.finish_reason()), first));
            }
            Err(e) => {
                let v = json!({"error": {"message": e.to_string(), "type": "server_error"}});
                let _ = tx.blocking_send(Bytes::from(format!("data: {v}\n\n")));
            }
        }
        let _ = tx.blocking_send(Bytes::from_static(b"data: [DONE]\n\n"));
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::new(ChannelBody(rx)))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated_and_named() {
        let o = gen_options(&json!({"max_tokens": 5, "stop": "x"})).unwrap();
        assert_eq!(o.max_tokens, 5);
        assert_eq!(o.stop, vec!["x".to_string()]);
        assert_eq!(o.sampling.temperature, 0.0, "greedy by default");
        assert!(gen_options(&json!({"max_tokens": -1}))
            .unwrap_err()
            .contains("max_tokens"));
        assert!(gen_options(&json!({"temperature": "hot"}))
            .unwrap_err()
            .contains("temperature"));
        assert!(gen_options(&json!({"stop": [1]}))
            .unwrap_err()
            .contains("stop"));
        assert!(gen_options(&json!({"top_p": 0}))
            .unwrap_err()
            .contains("top_p"));
    }

    #[test]
    fn chat_messages_accept_text_parts() {
        let m = messages(&json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]}
        ]}))
        .unwrap();
        assert_eq!(m[1], ("user".to_string(), "hi there".to_string()));
        assert!(messages(&json!({"messages": []}))
            .unwrap_err()
            .contains("empty"));
        assert!(messages(&json!({"messages": [{"content": "x"}]}))
            .unwrap_err()
            .contains("role"));
    }
}
