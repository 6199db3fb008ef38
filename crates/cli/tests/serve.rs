//! `hotpatch serve`: starts on a free port, prints its address, answers, prints one line per
//! request, and refuses bad configurations with one line naming the field.

mod cli_common;
use cli_common::{hotpatch_cmd as hotpatch, listening_addr};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;

#[test]
fn serve_prints_address_and_one_line_per_request() {
    // A port nothing listens on: the upstream is down, so every request gets a 502.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.json");
    std::fs::write(
        &config,
        r#"{"version": 1, "server": {"port": 9, "rules": [{"id": "t", "action": {"type": "override_parameter", "name": "temperature", "value": 0}}]}}"#,
    )
    .unwrap();
    let mut child = hotpatch()
        .args([
            "serve",
            "--upstream",
            &format!("http://{closed}"),
            "--port",
            "0",
        ])
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .spawn()
        .expect("hotpatch runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    let addr = listening_addr(&first);
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0") && !addr.ends_with(":9"),
        "--port 0 overrides the config and the real port is printed: {addr}"
    );

    let mut s = TcpStream::connect(&addr).expect("the proxy listens");
    let body = r#"{"prompt": "x"}"#;
    write!(s, "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 502"),
        "upstream down gives 502: {resp}"
    );
    assert!(resp.contains("upstream_unavailable"));

    let line = lines.next().expect("a request line").unwrap();
    child.kill().ok();
    child.wait().ok();
    assert!(line.starts_with("#1 POST /v1/completions 502 "), "{line}");
    assert!(
        line.contains("rules=t") && line.contains("cache=miss") && line.contains("error: upstream"),
        "{line}"
    );
}

#[test]
fn serve_refuses_bad_config_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.json");
    std::fs::write(&config, r#"{"version": 1, "server": {"rules": [{"id": "c", "action": {"type": "clamp_parameter", "name": "grammar", "max": 1}}]}}"#).unwrap();
    let out = hotpatch()
        .args(["serve", "--upstream", "http://127.0.0.1:1", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.rules[0] (id \"c\").action.name"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let out = hotpatch()
        .args(["serve", "--upstream", "https://example.invalid"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.upstream"));
}

#[test]
fn serve_refuses_a_zero_cache_ttl_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ttl.json");
    std::fs::write(
        &config,
        r#"{"version": 1, "server": {"cache": {"enabled": true, "ttl_secs": 0}}}"#,
    )
    .unwrap();
    let out = hotpatch()
        .args(["serve", "--upstream", "http://127.0.0.1:1", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.cache.ttl_secs"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}
