//! The proxy in front of real llama.cpp inference: `tests/oracle/openai-server.mjs`
//! (node-llama-cpp, CPU, mmap) serving the demo model generated at test time. Greedy
//! decoding makes the model's answers reproducible, so every answer through the proxy is
//! compared with the same request sent directly to the upstream.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use http::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::*;

/// The demo model, generated once per test process and shared (see
/// [`hotpatch_testkit::shared_demo`]: none reads a half-written model).
fn demo_model() -> PathBuf {
    hotpatch_testkit::shared_demo("demo.gguf", &[])
}

struct Upstream {
    url: String,
    _child: Child,
}

async fn spawn_upstream() -> Upstream {
    let oracle = hotpatch_testkit::root().join("tests/oracle");
    assert!(
        oracle.join("node_modules/node-llama-cpp").exists(),
        "node-llama-cpp missing under tests/oracle/node_modules — run scripts/setup-oracles.sh"
    );
    let mut child = Command::new("node")
        .arg(oracle.join("openai-server.mjs"))
        .arg(demo_model())
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node (is Node.js installed?)");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .expect("openai-server.mjs starts within 120 s")
        .expect("read its stdout")
        .expect("it prints its port");
    let port = json(line.as_bytes())["port"]
        .as_u64()
        .expect("{\"port\": N}");
    Upstream {
        url: format!("http://127.0.0.1:{port}"),
        _child: child,
    }
}

async fn last_request(up: &Upstream) -> Value {
    let (_, _, body) = send(&format!("{}/__last_request", up.url), Method::GET, &[], "").await;
    json(&body)["body"].clone()
}

async fn text_of(url: &str, body: &Value) -> String {
    let (status, _, bytes) = post_json(url, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let v = json(&bytes);
    if let Some(c) = v.get("content") {
        return c.as_str().unwrap().to_owned();
    }
    let c = &v["choices"][0];
    c["message"]["content"]
        .as_str()
        .or_else(|| c["text"].as_str())
        .expect("answer text")
        .to_owned()
}

/// Streamed answer: (concatenated text, number of SSE data events, raw bytes).
async fn stream_of(url: &str, body: &Value) -> (String, usize, bytes::Bytes, http::HeaderMap) {
    let (status, headers, bytes) = post_json(url, body).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = std::str::from_utf8(&bytes).expect("UTF-8 SSE");
    (sse_text(text), sse_data(text).len(), bytes.clone(), headers)
}

#[tokio::test]
async fn real_llama_upstream() {
    let up = spawn_upstream().await;
    let prompt = "hello world";
    // 1. What the model says, asked directly (greedy).
    let direct = text_of(
        &format!("{}/v1/completions", up.url),
        &json!({"prompt": prompt, "max_tokens": 24}),
    )
    .await;
    let chars: Vec<char> = direct.chars().collect();
    assert!(
        chars.len() >= 6,
        "the demo model answers with some text: {direct:?}"
    );
    let pattern: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let redacted = |s: &str| s.replace(&pattern, "[REDACTED]");
    assert_ne!(
        redacted(&direct),
        direct,
        "the pattern comes from the answer itself"
    );

    let rules = json!([
        {"id": "greedy", "action": {"type": "clamp_parameter", "name": "temperature", "max": 0.0}},
        {"id": "terse", "endpoints": ["chat_completions"], "action": {"type": "system_prompt", "mode": "prepend", "text": "You are terse."}},
        {"id": "nprobs", "endpoints": ["llama_completion"], "action": {"type": "default_parameter", "name": "n_probs", "value": 2}},
        {"id": "samplers", "endpoints": ["llama_completion"], "action": {"type": "override_parameter", "name": "samplers", "value": ["top_k", "temperature"]}},
        {"id": "cacheprompt", "endpoints": ["llama_completion"], "action": {"type": "override_parameter", "name": "cache_prompt", "value": true}},
        {"id": "stop", "action": {"type": "stop_sequences", "sequences": ["<|never|>"]}},
        {"id": "redact", "action": {"type": "filter_response", "pattern": pattern, "literal": true, "action": "redact"}}
    ]);
    let (h, proxy_url, mut events) = proxy(&up.url, json!({"rules": rules})).await;

    // 2. /v1/completions through the proxy: temperature clamped to greedy upstream, answer redacted.
    let req = json!({"prompt": prompt, "max_tokens": 24, "temperature": 0.9, "seed": 7});
    let got = text_of(&format!("{proxy_url}/v1/completions"), &req).await;
    let seen = last_request(&up).await;
    assert_eq!(
        seen["temperature"].as_f64(),
        Some(0.0),
        "the clamp reached the upstream: {seen}"
    );
    assert_eq!(
        seen["stop"],
        json!(["<|never|>"]),
        "stop sequence merged: {seen}"
    );
    assert_eq!(
        got,
        redacted(&direct),
        "greedy answer of the real model, with the pattern redacted"
    );
    let ev = next_event(&mut events).await;
    assert_eq!(ev.rules_applied, vec!["greedy", "stop", "redact"]);
    assert_eq!(ev.upstream_status, Some(200));

    // 3. The same, streamed: token chunks arrive as SSE events and are redacted across them.
    let (text, n_events, _, _) = stream_of(
        &format!("{proxy_url}/v1/completions"),
        &json!({"prompt": prompt, "max_tokens": 24, "temperature": 0.9, "stream": true}),
    )
    .await;
    assert_eq!(
        text,
        redacted(&direct),
        "streamed answer equals the plain one"
    );
    assert!(
        n_events >= 4,
        "answer streamed in several events, got {n_events}"
    );
    assert!(next_event(&mut events).await.streamed);

    // 4. Chat: the system prompt is injected; the answer equals asking directly with it.
    let direct_chat_req = json!({"max_tokens": 24, "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hello"}]});
    let direct_chat = text_of(&format!("{}/v1/chat/completions", up.url), &direct_chat_req).await;
    let chat_req = json!({"max_tokens": 24, "messages": [{"role": "user", "content": "hello"}]});
    let got = text_of(&format!("{proxy_url}/v1/chat/completions"), &chat_req).await;
    let seen = last_request(&up).await;
    assert_eq!(
        seen["messages"][0],
        json!({"role": "system", "content": "You are terse."})
    );
    assert_eq!(got, redacted(&direct_chat));
    let mut stream_req = chat_req.clone();
    stream_req["stream"] = json!(true);
    let (text, _, _, _) = stream_of(&format!("{proxy_url}/v1/chat/completions"), &stream_req).await;
    assert_eq!(
        text,
        redacted(&direct_chat),
        "streamed chat equals the plain one"
    );

    // 5. llama.cpp's /completion: llama-specific fields set, answer streamed and redacted.
    let direct_llama = text_of(
        &format!("{}/completion", up.url),
        &json!({"prompt": prompt, "n_predict": 24}),
    )
    .await;
    assert_eq!(
        direct_llama, direct,
        "same model, same greedy answer on both endpoints"
    );
    let (text, _, raw, _) = stream_of(
        &format!("{proxy_url}/completion"),
        &json!({"prompt": prompt, "n_predict": 24, "stream": true}),
    )
    .await;
    let seen = last_request(&up).await;
    assert_eq!(
        (seen["n_probs"].clone(), seen["cache_prompt"].clone()),
        (json!(2), json!(true)),
        "{seen}"
    );
    assert_eq!(seen["samplers"], json!(["top_k", "temperature"]));
    assert_eq!(text, redacted(&direct));
    let last: Value =
        serde_json::from_str(sse_data(std::str::from_utf8(&raw).unwrap()).last().unwrap()).unwrap();
    assert_eq!(last["stop"], true, "llama.cpp's final chunk is kept");

    // 6. Cache: the second identical streamed request is replayed, the upstream not asked.
    h.set_cache_enabled(true);
    let url = format!("{proxy_url}/v1/chat/completions");
    let (_, _, first, h1) = stream_of(&url, &stream_req).await;
    let before = last_request(&up).await;
    let (_, _, second, h2) = stream_of(&url, &stream_req).await;
    assert!(h1.get(hotpatch_proxy::CACHE_HEADER).is_none());
    assert_eq!(h2[hotpatch_proxy::CACHE_HEADER], "hit");
    assert_eq!(first, second, "replayed stream is byte-identical");
    assert_eq!(last_request(&up).await, before);

    // 7. Everything else passes through.
    let (_, _, direct_models) = send(&format!("{}/v1/models", up.url), Method::GET, &[], "").await;
    let (_, _, proxied_models) =
        send(&format!("{proxy_url}/v1/models"), Method::GET, &[], "").await;
    assert_eq!(direct_models, proxied_models);

    let hits: Vec<(String, u64)> = h.rules().into_iter().map(|r| (r.rule.id, r.hits)).collect();
    let hits_of = |id: &str| hits.iter().find(|(i, _)| i == id).map(|(_, n)| *n).unwrap();
    assert_eq!(
        hits_of("terse"),
        4,
        "chat requests: plain, streamed, and two for the cache check"
    );
    // Completions plain + streamed + llama streamed; chat answers (plain, streamed, the
    // cache's first) only if they contain the pattern; a cache hit replays filtered bytes.
    let chat_hits = if direct_chat.contains(&pattern) { 3 } else { 0 };
    assert_eq!(hits_of("redact"), 3 + chat_hits, "{hits:?}");
    assert_eq!(
        hits_of("greedy"),
        2,
        "only the requests that sent a temperature above 0"
    );
    assert_eq!(
        hits_of("stop"),
        7,
        "every generation request through the proxy, cache hit included"
    );
    h.shutdown().await;
    let _ = std::fs::remove_dir_all(demo_model().parent().expect("model dir"));
}
