//! A fast OpenAI-compatible upstream for the proxy benchmark (`scripts/bench/proxy.sh`):
//! answers every POST to `/v1/chat/completions` at once with the same small chat
//! completion (streamed as 8 SSE chunks when the request says `"stream": true`), so what
//! the benchmark measures is the proxy, not a model.
//!
//! Usage: `cargo run --release -p hotpatch-proxy --example fast_upstream -- PORT`

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use http_body_util::BodyExt;

const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"demo","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a fixed answer from the benchmark upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#;

async fn answer(req: Request) -> Response {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let stream = body.windows(14).any(|w| w == b"\"stream\":true")
        || body.windows(15).any(|w| w == b"\"stream\": true");
    let mut resp = if stream {
        let mut sse = String::new();
        for word in [
            "Hello! ",
            "This ",
            "is ",
            "a ",
            "fixed ",
            "answer ",
            "from ",
            "the bench.",
        ] {
            sse.push_str(&format!(
                "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"demo\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{word}\"}},\"finish_reason\":null}}]}}\n\n"
            ));
        }
        sse.push_str("data: [DONE]\n\n");
        let mut r = Response::new(Body::from(sse));
        r.headers_mut()
            .insert("content-type", "text/event-stream".parse().unwrap());
        r
    } else {
        let mut r = Response::new(Body::from(ANSWER));
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        r
    };
    resp.headers_mut()
        .insert("x-upstream", "fast".parse().unwrap());
    resp
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(18081);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:{port}: {e}"))
        .tap_io(|t| {
            let _ = t.set_nodelay(true);
        });
    println!("fast upstream on http://127.0.0.1:{port}");
    let app = Router::new().fallback(answer);
    axum::serve(listener, app).await.expect("serve");
}
