//! `hotpatch run`, `hotpatch eval` and `hotpatch serve --model` with the embedded llama.cpp on
//! a real model (SmolLM2-135M-Instruct Q4_1, installed by `scripts/setup.sh`).

mod cli_common;
use cli_common::{hotpatch_cmd as hotpatch, listening_addr};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};

use hotpatch_testkit as kit;
use serde_json::Value;

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "hotpatch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// `eval`'s options in these tests: JSON, 200 tokens, one thread, 128-token windows.
const EVAL_ARGS: [&str; 7] = [
    "--json",
    "--max-tokens",
    "200",
    "--threads",
    "1",
    "--window",
    "128",
];

#[test]
fn run_answers_greedily_with_json_text() {
    let run = |extra: &[&str]| {
        hotpatch()
            .args(["run"])
            .arg(kit::smollm2())
            .args([
                "--prompt",
                "The capital of France is",
                "--max-tokens",
                "3",
                "--threads",
                "1",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let v = json_of(&run(&["--json"]));
    let text = v["text"].as_str().unwrap();
    assert!(text.starts_with(" Paris"), "greedy SmolLM2: {text:?}");
    assert_eq!(v["tokens"].as_array().unwrap().len(), 3);
    let plain = run(&[]);
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout).trim_end(),
        text.trim_end(),
        "plain output is the text"
    );
}

#[test]
fn eval_a_against_itself_has_zero_kl_and_full_agreement() {
    let dir = kit::tempdir();
    let text = dir.path().join("t.txt");
    std::fs::write(&text, hotpatch_infer::SAMPLE_TEXT).unwrap();
    let m = kit::smollm2();
    let out = hotpatch()
        .arg("eval")
        .arg(&m)
        .arg(&m)
        .arg("--text")
        .arg(&text)
        .args(EVAL_ARGS)
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["kld_mean"].as_f64(), Some(0.0), "{v}");
    assert_eq!(v["kld_p99"].as_f64(), Some(0.0));
    assert_eq!(v["top1_agreement"].as_f64(), Some(1.0));
    assert_eq!(v["ppl"], v["ppl_b"]);
    let ppl = v["ppl"].as_f64().unwrap();
    assert!(ppl > 1.0 && ppl < 200.0, "{ppl}");
    let alone = hotpatch()
        .arg("eval")
        .arg(&m)
        .args(EVAL_ARGS)
        .output()
        .unwrap();
    let a = json_of(&alone);
    assert_eq!(a["ppl"], v["ppl"], "the bundled sample is the default text");
    assert!(a.get("kld_mean").is_none(), "no B, no KL: {a}");
}

#[test]
fn run_and_eval_refuse_bad_input_with_one_line() {
    let dir = kit::tempdir();
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"GGUF but not really").unwrap();
    for args in [
        vec![
            "run".to_string(),
            junk.display().to_string(),
            "--prompt".into(),
            "x".into(),
        ],
        vec!["eval".to_string(), junk.display().to_string()],
        vec![
            "eval".to_string(),
            kit::smollm2().display().to_string(),
            "--text".into(),
            dir.path().join("none.txt").display().to_string(),
        ],
    ] {
        let out = hotpatch().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("junk.gguf") || err.contains("none.txt"),
            "names the file: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

struct Server {
    child: Child,
    addr: String,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(model: &Path, config: Option<&Path>) -> Server {
    let mut cmd = hotpatch();
    cmd.arg("serve")
        .arg("--model")
        .arg(model)
        .args(["--port", "0", "--threads", "1"]);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("hotpatch serve runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    let addr = listening_addr(&first);
    assert!(
        first.contains("engine"),
        "names the built-in upstream: {first}"
    );
    Server { child, addr, lines }
}

fn post(addr: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("the proxy listens");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The body of a chunked HTTP/1.1 response, de-chunked.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

fn completion_text(body: &str) -> String {
    let v: Value = serde_json::from_str(&dechunk(body))
        .or_else(|_| serde_json::from_str(body))
        .unwrap_or_else(|e| panic!("{e}: {body}"));
    v["choices"][0]["text"]
        .as_str()
        .or(v["choices"][0]["message"]["content"].as_str())
        .unwrap_or_else(|| panic!("no text: {v}"))
        .to_string()
}

/// The built-in upstream answers through the proxy; an in-place edit of the file (with
/// `hotpatch edit --in-place`) shows in the very next answer, with no restart.
#[test]
fn serve_model_answers_and_an_in_place_edit_shows_in_the_next_answer() {
    let dir = kit::tempdir();
    let model = dir.path().join("served.gguf");
    std::fs::copy(kit::smollm2(), &model).unwrap();
    let mut srv = serve(&model, None);
    let req = r#"{"prompt": "The capital of France is", "max_tokens": 3}"#;
    let (status, body) = post(&srv.addr, "/v1/completions", req);
    assert_eq!(status, 200, "{body}");
    let before = completion_text(&body);
    assert!(before.starts_with(" Paris"), "{before:?}");
    let line = srv.lines.next().unwrap().unwrap();
    assert!(line.starts_with("#1 POST /v1/completions 200"), "{line}");

    // Zero the final norm in place: every logit becomes 0, greedy picks token 0.
    let index = hotpatch_gguf::GgufModel::open(&model).unwrap();
    let n = index.tensor("output_norm.weight").unwrap().dims[0];
    let mut edit = hotpatch();
    edit.arg("edit").arg(&model);
    for i in 0..n {
        edit.arg("--set").arg(format!("output_norm.weight[{i}]=0"));
    }
    let out = edit.arg("--in-place").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = post(&srv.addr, "/v1/completions", req);
    assert_eq!(status, 200, "{body}");
    let after = completion_text(&body);
    assert_ne!(
        after, before,
        "the server computes from the edited file at once"
    );
}

#[test]
fn serve_model_streams_chat_with_the_proxy_rules_in_front() {
    let dir = kit::tempdir();
    let config = dir.path().join("c.json");
    std::fs::write(
        &config,
        r#"{"version": 1, "server": {"rules": [{"id": "no-paris", "action": {"type": "filter_response", "pattern": "Paris", "action": "redact", "replacement": "[city]", "literal": true}}]}}"#,
    )
    .unwrap();
    let srv = serve(&kit::smollm2(), Some(&config));
    let req = r#"{"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 16, "stream": true}"#;
    let (status, body) = post(&srv.addr, "/v1/chat/completions", req);
    assert_eq!(status, 200, "{body}");
    let sse = dechunk(&body);
    let mut text = String::new();
    let mut done = false;
    for line in sse.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
        assert_eq!(v["object"], "chat.completion.chunk");
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    assert!(done, "the stream ends with [DONE]: {sse}");
    assert!(
        text.contains("[city]") && !text.contains("Paris"),
        "the proxy's filter redacts the engine's answer: {text:?}"
    );
    let (status, body) = post(&srv.addr, "/v1/completions", r#"{"prompt": 5}"#);
    assert_eq!(status, 400, "a bad request is refused: {body}");
    assert!(body.contains("prompt"), "{body}");
}
