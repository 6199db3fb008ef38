//! The Run screen's commands on the real SmolLM2-135M-Instruct (installed by scripts/setup.sh)
//! with the real embedded llama.cpp: both sides answer, a staged edit made through the session
//! shows on the edited side only with no reload, undo brings the original answer back, the
//! behaviour diff and the measured liveness answer, and the proxy on the built-in upstream
//! serves the edited model.

use std::path::PathBuf;
use std::sync::Arc;

use hotpatch_studio::commands::diff::open_b;
use hotpatch_studio::commands::edit::do_undo;
use hotpatch_studio::commands::model::{attach_session, open_with_progress};
use hotpatch_studio::commands::run::{
    diff, diff_b, engine_view, measure_buffers, run, RunSide, RunSpec, RunToken,
};
use hotpatch_studio::commands::server::ProxyControl;
use hotpatch_studio::error::ErrorCode;
use hotpatch_studio::state::AppState;
use tauri::ipc::Channel;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotpatch-run-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn spec() -> RunSpec {
    RunSpec {
        prompt: "The capital of France is".into(),
        chat: false,
        max_tokens: 3,
        top_k: 5,
        temperature: 0.0,
        seed: 0,
    }
}

/// POSTs a completion to the proxy at `listening`; returns the answer's JSON.
async fn complete(listening: &str, prompt: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = listening.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = serde_json::json!({"prompt": prompt, "max_tokens": 3}).to_string();
    let req = format!(
        "POST /v1/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn both_sides_answer_follow_a_staged_edit_and_undo_and_the_proxy_serves_the_edit() {
    let path = tmp("smollm2.gguf");
    std::fs::copy(hotpatch_testkit::smollm2(), &path).expect("copy SmolLM2");
    let on_disk = std::fs::read(&path).unwrap();
    let state = Arc::new(AppState::default());
    let file = open_with_progress(path.clone(), 1, |_| {}).expect("open");
    attach_session(&state, &path, file).expect("attach staged");

    let mut tokens: Vec<RunToken> = Vec::new();
    let first = run(&state, &spec(), 10, &mut |t| tokens.push(t)).expect("first run");
    assert!(
        first.edited.text.starts_with(" Paris") && first.original.text.starts_with(" Paris"),
        "SmolLM2 answers ' Paris' greedily on both sides: {:?} / {:?}",
        first.edited.text,
        first.original.text
    );
    assert!(first.same && !first.next.top1_changed);
    assert_eq!(first.next.edited[0].text, " Paris");
    let streamed: String = tokens
        .iter()
        .filter(|t| t.side == RunSide::Edited)
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(streamed, first.edited.text, "every token was streamed");
    assert!(tokens.iter().all(|t| t.job == 10));
    let loaded = engine_view(&state);
    assert!(loaded.loaded && loaded.original_loaded && loaded.chat_template);

    let edit = state
        .session()
        .modify_weight("output_norm.weight", 0, 3000.0)
        .expect("edit the final norm");
    assert!(edit.stored > 2999.0, "F32 stores 3000 exactly");
    let edited = run(&state, &spec(), 11, &mut |_| {}).expect("run after the edit");
    assert!(
        !edited.same && edited.next.top1_changed && edited.next.kld > 0.0,
        "the edited side changed: {:?}",
        edited.edited.text
    );
    assert_eq!(
        edited.original.text, first.original.text,
        "the original did not"
    );
    assert!(
        edited.revision > first.revision,
        "the revision moved with the edit"
    );
    assert_eq!(
        engine_view(&state).load_seconds,
        loaded.load_seconds,
        "the same engine served both runs (no reload)"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        on_disk,
        "staged: the file is untouched"
    );

    let ch = Channel::new(|_| Ok(()));
    let b = diff(&state, None, 64, 12, &ch).expect("behaviour diff");
    assert_eq!(b.source, "sample");
    assert!(b.kld_mean > 0.0 && b.top1_agreement < 1.0, "{b:?}");
    assert_eq!(b.per_token.len() as u32, b.tokens);
    // A (edited) against B = the same file as on disk: the edit is the whole difference.
    assert_eq!(
        diff_b(&state, None, 64, 17, &ch).unwrap_err().code,
        ErrorCode::BadRequest,
        "no model B yet"
    );
    open_b(&state, path.to_str().unwrap()).expect("open B");
    let ab = diff_b(&state, None, 64, 18, &ch).expect("A vs B");
    assert_eq!(
        (ab.kld_mean, ab.top1_agreement, ab.tokens),
        (b.kld_mean, b.top1_agreement, b.tokens),
        "A vs the unedited file measures what edited vs original does"
    );
    let bad = diff(&state, Some("/nonexistent/text.txt"), 64, 13, &ch).unwrap_err();
    assert_eq!(bad.code, ErrorCode::Io, "{}", bad.message);
    assert!(
        bad.message.contains("/nonexistent/text.txt"),
        "{}",
        bad.message
    );

    // The proxy on the built-in upstream serves the model as edited.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let proxy = ProxyControl::default();
    let source_state = Arc::clone(&state);
    let backend: Arc<dyn hotpatch_infer::Backend> = Arc::new(hotpatch_infer::HostBackend::new(
        Arc::clone(&state.engine),
        Box::new(move || {
            source_state
                .session_ref()
                .map_err(|e| hotpatch_infer::InferError::Invalid {
                    what: "model",
                    message: e.message,
                })
        }),
    ));
    let mut settings = state.session().server();
    settings.port = 0;
    state.session().set_server(settings);
    rt.block_on(async {
        proxy
            .start_builtin(state.session(), backend, "smollm2.gguf".into())
            .await
            .expect("start on the built-in upstream");
        let view = proxy.view(state.session());
        assert_eq!(view.status.builtin.as_deref(), Some("smollm2.gguf"));
        assert!(
            view.upstream.is_none(),
            "the user's upstream setting is left as it was"
        );
        let listening = view.status.listening.clone().unwrap();
        let answer = complete(&listening, "The capital of France is").await;
        let text = answer["choices"][0]["text"].as_str().unwrap().to_string();
        assert_eq!(
            text, edited.edited.text,
            "the proxy serves the edited model"
        );
        proxy.stop().await.unwrap();
    });

    do_undo(&state, true).expect("undo");
    let back = run(&state, &spec(), 14, &mut |_| {}).expect("run after undo");
    assert_eq!(
        back.edited.text, first.edited.text,
        "undo: the answer is back"
    );
    assert!(back.same && back.next.kld == 0.0 && back.next.max_abs_logit_change == 0.0);
    let same = diff_b(&state, None, 64, 19, &ch).expect("A vs B after undo");
    assert_eq!(
        same.kld_mean, 0.0,
        "after undo A and B are the same model: KL 0"
    );
    assert_eq!(same.top1_agreement, 1.0);

    let l1 = measure_buffers(&state, 15, &ch).expect("measure liveness");
    let n = hotpatch_gguf::GgufModel::open(&path).unwrap().tensors.len();
    assert_eq!(l1.rows.len(), n, "one row per tensor");
    for r in &l1.rows {
        assert_eq!(
            r.copied,
            r.buffer
                .as_deref()
                .is_some_and(|b| b != hotpatch_infer::MAPPED_BUFFER),
            "{}: copied means held outside the mapped file ({:?})",
            r.name,
            r.buffer
        );
    }
    assert_eq!(
        l1.copied as usize,
        l1.rows.iter().filter(|r| r.copied).count()
    );
    assert!(l1.hint.contains("--no-repack"), "{}", l1.hint);
    let l2 = measure_buffers(&state, 16, &ch).unwrap();
    assert_eq!(l2.rows, l1.rows);
    assert_eq!(l2.seconds, l1.seconds, "remembered, not measured again");
}
