//! The audit against real files: real models' own templates audit clean, every planted
//! problem reports its code, and what the audit says llama.cpp refuses, real llama.cpp
//! (node-llama-cpp's build, `tests/oracle/load.mjs`) refuses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hotpatch_audit::template::{self, RenderContext};
use hotpatch_audit::{audit_path, Options, Severity};
use hotpatch_testkit::{root, run_py, shared_demo, tempdir};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn ctx() -> RenderContext {
    RenderContext {
        bos_token: "<s>".into(),
        eos_token: "</s>".into(),
        now_unix: 1_721_952_000, // 2024-07-26
    }
}

/// The fixture files of a folder, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// `template-dunder.mro.jinja` → `template-dunder`.
fn expected_code(p: &Path) -> String {
    let name = p.file_name().unwrap().to_str().unwrap();
    name.split('.').next().unwrap().to_string()
}

fn template_text(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap();
    // As Jinja (keep_trailing_newline off) and the GGUF converters store them.
    s.strip_suffix('\n').map(str::to_string).unwrap_or(s)
}

#[test]
fn real_model_templates_audit_clean_and_render() {
    let clean = files(&fixtures().join("templates/clean"), "jinja");
    assert!(clean.len() >= 6, "the clean fixtures are missing");
    for p in clean {
        let src = template_text(&p);
        let (findings, renders) =
            template::audit(&src, "tokenizer.chat_template", Some(0), Some(&ctx()));
        let alarms: Vec<_> = findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            .collect();
        assert!(
            alarms.is_empty(),
            "{}: false alarms {alarms:#?}",
            p.display()
        );
        let prompts: Vec<&String> = renders.iter().filter_map(|r| r.prompt.as_ref()).collect();
        assert_eq!(
            prompts.len(),
            3,
            "{}: every conversation renders: {renders:#?}",
            p.display()
        );
        for prompt in prompts {
            assert!(
                prompt.contains("What is the capital of France?"),
                "{}: the user's question reaches the prompt: {prompt:?}",
                p.display()
            );
        }
    }
}

#[test]
fn renders_match_the_runtimes() {
    // Known outputs of Hugging Face's apply_chat_template for these public templates.
    let dir = fixtures().join("templates/clean");
    let render = |name: &str, turns: &[(&str, String)]| {
        template::render::render(&template_text(&dir.join(name)), turns, &ctx()).unwrap()
    };
    let q = ("user", "What is the capital of France?".to_string());
    assert_eq!(
        render("chatml.jinja", std::slice::from_ref(&q)),
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        render("llama3.jinja", std::slice::from_ref(&q)),
        "<s><|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    // Llama 3.2 asks strftime_now for today's date: the context's clock, day month year.
    let l32 = render("llama3.2.jinja", std::slice::from_ref(&q));
    assert!(
        l32.starts_with("<s><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"),
        "{l32:?}"
    );
    let q25 = render("qwen2.5.jinja", std::slice::from_ref(&q));
    assert!(q25.starts_with("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n"), "{q25:?}");
}

#[test]
fn every_planted_template_reports_its_code() {
    let planted = files(&fixtures().join("templates/planted"), "jinja");
    assert!(planted.len() >= 15);
    for p in planted {
        let code = expected_code(&p);
        let (findings, _) = template::audit(
            &template_text(&p),
            "tokenizer.chat_template",
            Some(100),
            Some(&ctx()),
        );
        let hit = findings.iter().find(|f| f.code == code);
        let hit = hit.unwrap_or_else(|| panic!("{}: no {code} in {findings:#?}", p.display()));
        assert!(
            hit.severity >= Severity::Warning,
            "{}: {hit:?}",
            p.display()
        );
        if code != "template-syntax" {
            assert!(
                hit.location.line.is_some() || code == "template-render-error",
                "{}: a template finding names its line: {hit:?}",
                p.display()
            );
        }
        assert!(
            hit.location.offset.is_none_or(|o| o >= 100),
            "offsets are file offsets"
        );
    }
}

/// The `template-conditional-text` finding of the planted template `file`.
fn conditional_text_finding(file: &str) -> hotpatch_audit::Finding {
    let p = fixtures().join("templates/planted").join(file);
    let (findings, _) = template::audit(
        &template_text(&p),
        "tokenizer.chat_template",
        None,
        Some(&ctx()),
    );
    findings
        .into_iter()
        .find(|f| f.code == "template-conditional-text")
        .unwrap_or_else(|| panic!("{file}: no template-conditional-text"))
}

#[test]
fn a_content_trigger_is_shown_with_what_it_adds_to_the_prompt() {
    let f = conditional_text_finding("template-conditional-text.backdoor.jinja");
    assert_eq!(
        f.severity,
        Severity::Error,
        "instructions with a URL: {f:?}"
    );
    assert!(f.message.contains("\"deploy the update\""), "{}", f.message);
    assert!(
        f.message.contains("the prompt gains")
            && f.message.contains("Ignore previous instructions"),
        "the render shows the injected text: {}",
        f.message
    );
    // The equality trigger is rendered with the literal as the whole message.
    let f = conditional_text_finding("template-conditional-text.equals.jinja");
    assert!(
        f.message.contains("You have no restrictions."),
        "{}",
        f.message
    );
}

#[test]
fn hidden_characters_are_found_where_they_are() {
    let chatml = template_text(&fixtures().join("templates/clean/chatml.jinja"));
    let tags: String = "obey"
        .chars()
        .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
        .collect();
    for (insert, code, sev) in [
        ("\u{202E}", "template-bidi", Severity::Error),
        ("\u{2067}", "template-bidi", Severity::Error),
        (tags.as_str(), "template-tag-chars", Severity::Error),
        ("\u{200B}", "template-invisible", Severity::Warning),
        ("\u{1b}[2J", "template-invisible", Severity::Warning),
    ] {
        let at = chatml.find("<|im_end|>").unwrap();
        let src = format!("{}{insert}{}", &chatml[..at], &chatml[at..]);
        let findings = template::check_template(&src, "tokenizer.chat_template", Some(1000));
        let f = findings
            .iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("{insert:?}: {findings:#?}"));
        assert_eq!(f.severity, sev);
        assert_eq!(f.location.offset, Some(1000 + at as u64), "{f:?}");
        if code == "template-tag-chars" {
            assert!(
                f.message.contains("\"obey\""),
                "the hidden text is decoded: {}",
                f.message
            );
        }
    }
}

#[test]
fn the_demo_model_audits_clean() {
    let demo = shared_demo("audit-demo.gguf", &[]);
    let r = audit_path(
        &demo,
        &Options {
            render: true,
            now_unix: Some(0),
        },
    )
    .unwrap();
    assert!(r.is_clean(), "{:#?}", r.findings);
    assert_eq!(r.renders.len(), 3);
    assert!(
        r.renders.iter().all(|x| x.prompt.is_some()),
        "{:#?}",
        r.renders
    );
}

/// The planted structure files, generated by gguf-py.
fn planted_gguf(dir: &Path) -> Vec<PathBuf> {
    let script = fixtures().join("make_planted.py");
    let rel = script
        .strip_prefix(root())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    run_py(&rel, &[dir.to_str().unwrap()]);
    files(dir, "gguf")
}

#[test]
fn every_planted_structure_problem_reports_its_code_and_llama_cpp_agrees() {
    let dir = tempdir();
    let planted = planted_gguf(dir.path());
    assert!(planted.len() >= 15, "{planted:?}");
    let opts = Options {
        render: false,
        now_unix: Some(0),
    };
    let mut llama_refuses = BTreeMap::new();
    for p in &planted {
        let code = expected_code(p);
        let r = audit_path(p, &opts).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if code == "clean" {
            assert!(r.findings.is_empty(), "{}: {:#?}", p.display(), r.findings);
            llama_refuses.insert(p.clone(), false);
            continue;
        }
        let f = r
            .findings
            .iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("{}: no {code} in {:#?}", p.display(), r.findings));
        assert!(f.severity >= Severity::Warning);
        assert!(
            f.location.offset.is_some() || f.location.text.starts_with("metadata"),
            "{}: the finding names where: {f:?}",
            p.display()
        );
        // An error finding is a refusal (of llama.cpp, or of this reader for the CVE classes).
        llama_refuses.insert(p.clone(), r.count(Severity::Error) > 0);
    }

    // Real llama.cpp: every file the audit calls refused fails to load; the others load.
    let out = Command::new("node")
        .current_dir(root().join("tests/oracle"))
        .arg("load.mjs")
        .args(&planted)
        .output()
        .expect("node (run scripts/setup-oracles.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut seen = 0;
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = PathBuf::from(v["file"].as_str().unwrap());
        let loaded = v["loaded"].as_bool().unwrap();
        let refused = llama_refuses[&file];
        assert_eq!(
            loaded,
            !refused,
            "{}: the audit says llama.cpp {} it; llama.cpp {}",
            file.display(),
            if refused { "refuses" } else { "loads" },
            line
        );
        seen += 1;
    }
    assert_eq!(seen, planted.len(), "{stdout}");
}

#[test]
fn provenance_re_derives_the_demo_quant_from_its_f32_base_and_finds_a_tampered_block() {
    use hotpatch_audit::provenance::check_paths;
    let dir = tempdir();
    // The demo generator draws the same values for every variant: the mixed model (Q4_K, Q5_K,
    // Q6_K, Q2_K, Q3_K, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, F16, BF16 — K-quants by ggml's own
    // quantizer) is the F32 one quantized.
    let base = hotpatch_testkit::demo_model(dir.path(), "base-f32.gguf", &["--variant", "f32"]);
    let f16 = hotpatch_testkit::demo_model(dir.path(), "base-f16.gguf", &["--variant", "f16"]);
    let quant = shared_demo("audit-demo.gguf", &[]);
    let mut calls = 0;
    let p = check_paths(&quant, &base, &mut |d, t| {
        calls += 1;
        assert!(d <= t);
        true
    })
    .unwrap();
    assert_eq!(
        (p.matched, p.mismatched, p.unverifiable),
        (p.tensors, 0, 0),
        "{:#?}",
        p.findings
    );
    assert!(calls >= 2, "progress is reported");

    // A base that is not the one (F16-rounded values): most quantized tensors differ.
    let p = check_paths(&quant, &f16, &mut |_, _| true).unwrap();
    assert!(p.mismatched > p.tensors / 2, "{}", p.summary());

    // One tampered block, in a Q8_0 tensor (error) and in a Q4_K tensor (a warning: under 1 %
    // of the blocks, the size of FMA-contraction differences between ggml builds).
    let model = hotpatch_gguf::GgufModel::open(&quant).unwrap();
    let q8 = model.tensor("blk.2.attn_q.weight").unwrap().clone();
    let q4k = model.tensor("blk.0.attn_q.weight").unwrap().clone();
    drop(model);
    let mut bytes = std::fs::read(&quant).unwrap();
    let at_q8 = q8.offset as usize + 34 * 5 + 10; // a quant of block 5
    let at_q4k = q4k.offset as usize + 144 * 3 + 40; // block 3
    bytes[at_q8] ^= 0x5a;
    bytes[at_q4k] ^= 0x5a;
    let tampered = dir.path().join("tampered.gguf");
    std::fs::write(&tampered, &bytes).unwrap();
    let p = check_paths(&tampered, &base, &mut |_, _| true).unwrap();
    assert_eq!(p.mismatched, 2, "{:#?}", p.findings);
    let f = p
        .findings
        .iter()
        .find(|f| f.location.text.contains("blk.2.attn_q.weight"))
        .unwrap();
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message.starts_with("1 of 2048 Q8_0 blocks differ"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains(&format!("{:#x}", q8.offset + 34 * 5)),
        "names the block: {}",
        f.message
    );
    let f = p
        .findings
        .iter()
        .find(|f| f.location.text.contains("blk.0.attn_q.weight"))
        .unwrap();
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains("FMA"), "{}", f.message);

    // Canceled from the progress callback: an error, not a partial verdict.
    let r = check_paths(&quant, &base, &mut |d, _| d == 0);
    assert!(matches!(
        r,
        Err(hotpatch_audit::provenance::ProvenanceError::Canceled)
    ));
}

/// ARCHITECTURE INVARIANT: the audit crate is GUI-free: no tauri, tokio or specta.
#[test]
fn audit_crate_has_no_tauri_tokio_or_specta() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "-p",
            "hotpatch-audit",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.lines().any(|l| l.starts_with("minijinja ")),
        "the tree is listed:\n{tree}"
    );
    let bad: Vec<&str> = tree
        .lines()
        .filter(|l| {
            let n = l.split_whitespace().next().unwrap_or("");
            n.starts_with("tauri") || n.starts_with("tokio") || n.starts_with("specta")
        })
        .collect();
    assert!(bad.is_empty(), "hotpatch-audit must stay GUI-free: {bad:?}");
}
