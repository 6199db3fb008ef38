//! The embedded engine against real llama.cpp on real models: SmolLM2-135M-Instruct (installed
//! by `scripts/setup.sh`) and the generated all-types demo model. Nothing here asserts a CPU
//! fact of the host: which types llama.cpp repacks is read from llama.cpp and checked for
//! consistency with what an edit does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hotpatch_core::{Engine, Layer, Mode, Operation, Origin, Patch, RegionId, Target};
use hotpatch_infer::{
    default_load_buffers, direction, evaluate, mean_residual, ContextOptions, EvalOptions,
    GenOptions, InferError, Instance, InstanceOptions, LoadOptions, Pool, SessionEngine, Side,
    MAPPED_BUFFER,
};
use hotpatch_testkit as kit;

fn opts() -> InstanceOptions {
    InstanceOptions {
        load: LoadOptions::default(),
        context: ContextOptions {
            n_ctx: 512,
            n_batch: 128,
            threads: 1,
        },
    }
}

fn load(path: &Path) -> Instance {
    Instance::load(path, opts(), &mut |_| true).expect("load the model")
}

fn copy_of(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(src, &p).expect("copy the model");
    p
}

fn origin() -> Origin {
    Origin::new(
        Layer::Memory,
        Operation::Write,
        Target::Range {
            region: RegionId(0),
            offset: 0,
            len: 0,
        },
    )
}

fn demo() -> PathBuf {
    kit::shared_demo("infer-demo.gguf", &[])
}

/// One tensor per ggml type that the demo model's graph reads, with its offset and block size.
fn one_tensor_per_type(path: &Path) -> BTreeMap<String, (String, u64, u64, u64)> {
    let m = hotpatch_gguf::GgufModel::open(path).unwrap();
    let mut out = BTreeMap::new();
    for t in &m.tensors {
        let ty = t.ggml_type().unwrap();
        // token_embd is read by row (get_rows): an edit of rows the prompt does not use cannot
        // show; every other tensor is read whole.
        if t.name == "token_embd.weight" {
            continue;
        }
        out.entry(ty.name().to_string()).or_insert((
            t.name.clone(),
            t.offset,
            t.nbytes,
            ty.type_size() as u64,
        ));
    }
    out
}

/// The tensor's blocks in reverse order (changes values, keeps every block well-formed).
fn reversed_blocks(bytes: &[u8], block: u64) -> Vec<u8> {
    bytes
        .chunks(block as usize)
        .rev()
        .flatten()
        .copied()
        .collect()
}

/// Reverses the order of the `block`-byte blocks of the `len` bytes at `off` in region `r`, as
/// one journaled edit.
fn reverse_blocks_in(core: &Engine, r: RegionId, off: u64, len: u64, block: u64) {
    core.apply_computed(origin(), |v| {
        Ok(vec![Patch::new(
            r,
            off,
            reversed_blocks(v.bytes(r, off, len)?, block),
        )])
    })
    .unwrap();
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn smollm2_answers_the_capital_of_france_greedily() {
    let mut m = load(&kit::smollm2());
    let prompt = m.tokenize_prompt("The capital of France is").unwrap();
    let g = m
        .generate(
            &prompt,
            &GenOptions {
                max_tokens: 3,
                ..Default::default()
            },
            &mut |_| true,
        )
        .unwrap();
    assert!(
        g.text.starts_with(" Paris"),
        "SmolLM2-135M-Instruct greedily continues with ' Paris' under llama.cpp; got {:?}",
        g.text
    );
    let top = m.next_token(&prompt, 5).unwrap();
    assert_eq!(
        top[0].text, " Paris",
        "top-1 next token is the greedy choice"
    );
    assert!(
        top.windows(2).all(|w| w[0].prob >= w[1].prob),
        "top-k is sorted"
    );
    assert!(top.iter().all(|c| c.prob > 0.0 && c.prob <= 1.0));
}

/// Our greedy tokens equal those of node-llama-cpp's prebuilt llama.cpp (another build of
/// llama.cpp, loaded the default way) on the same prompt.
#[test]
fn greedy_tokens_match_node_llama_cpp() {
    let model = kit::smollm2();
    let prompt_text = "The capital of France is";
    let out = Command::new("node")
        .arg(kit::root().join("tests/oracle/generate.mjs"))
        .arg(&model)
        .arg(prompt_text)
        .arg("8")
        .output()
        .expect("node (tests/oracle/generate.mjs; run scripts/setup.sh --test)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want: Vec<i32> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap() as i32)
        .collect();
    let mut m = load(&model);
    let prompt = m.tokenize_prompt(prompt_text).unwrap();
    let g = m
        .generate(
            &prompt,
            &GenOptions {
                max_tokens: 8,
                ..Default::default()
            },
            &mut |_| true,
        )
        .unwrap();
    assert_eq!(
        g.tokens, want,
        "same greedy tokens as node-llama-cpp: {:?} vs {:?}",
        g.text, v["text"]
    );
}

#[test]
fn chat_prompt_uses_the_models_own_template() {
    let m = load(&kit::smollm2());
    let p = m
        .chat_prompt(&[("user".into(), "What is the capital of France?".into())])
        .unwrap();
    assert!(
        p.contains("<|im_start|>user\nWhat is the capital of France?<|im_end|>"),
        "{p}"
    );
    assert!(
        p.ends_with("<|im_start|>assistant\n"),
        "assistant turn opened: {p:?}"
    );
    let toks = m.tokenize_prompt(&p).unwrap();
    let im_start = m.tokenize_prompt("<|im_start|>").unwrap();
    assert_eq!(im_start.len(), 1, "a control token is one token");
    assert!(
        toks.contains(&im_start[0]),
        "the formatted prompt keeps its control tokens"
    );
}

/// Live mode: a write through the session's shared map reaches the engine at the next call,
/// for every tensor type of the demo model; undo restores the logits bit for bit.
#[test]
fn live_edit_of_every_type_changes_logits_and_undo_restores_them_exactly() {
    let dir = kit::tempdir();
    let model = copy_of(&demo(), dir.path(), "live.gguf");
    let core = Engine::new();
    let r = core.open(&model, Mode::Live).unwrap();
    let mut se =
        SessionEngine::attach(&core, &[(model.clone(), r)], opts(), &mut |_| true).unwrap();
    let prompt = se
        .instance(Side::Edited)
        .unwrap()
        .tokenize_prompt("hello world the model")
        .unwrap();
    let base = se.next_logits(Side::Edited, &prompt).unwrap();
    let types = one_tensor_per_type(&model);
    assert!(
        types.len() >= 10,
        "the demo model covers many types: {types:?}"
    );
    for (ty, (name, off, len, block)) in &types {
        reverse_blocks_in(&core, r, *off, *len, *block);
        let edited = se.next_logits(Side::Edited, &prompt).unwrap();
        assert_ne!(
            bits(&edited),
            bits(&base),
            "{ty} ({name}): a live edit changes the next logits"
        );
        let original = se.next_logits(Side::Original, &prompt).unwrap();
        assert_eq!(
            bits(&original),
            bits(&base),
            "{ty} ({name}): the original side stays original"
        );
        core.undo().unwrap();
        let back = se.next_logits(Side::Edited, &prompt).unwrap();
        assert_eq!(
            bits(&back),
            bits(&base),
            "{ty} ({name}): undo restores the logits bit for bit"
        );
    }
}

/// Staged mode: the edits reach the engine while the file's bytes stay the same.
#[test]
fn staged_edits_reach_the_engine_and_the_file_stays_untouched() {
    let dir = kit::tempdir();
    let model = copy_of(&demo(), dir.path(), "staged.gguf");
    let before = std::fs::read(&model).unwrap();
    let core = Engine::new();
    let r = core.open(&model, Mode::Staged).unwrap();
    let mut se =
        SessionEngine::attach(&core, &[(model.clone(), r)], opts(), &mut |_| true).unwrap();
    let prompt = se
        .instance(Side::Edited)
        .unwrap()
        .tokenize_prompt("hello world the model")
        .unwrap();
    let base = se.next_logits(Side::Edited, &prompt).unwrap();
    let types = one_tensor_per_type(&model);
    for (ty, (name, off, len, block)) in &types {
        reverse_blocks_in(&core, r, *off, *len, *block);
        let edited = se.next_logits(Side::Edited, &prompt).unwrap();
        assert_ne!(
            bits(&edited),
            bits(&base),
            "{ty} ({name}): a staged edit changes the next logits"
        );
        assert_eq!(
            bits(&se.next_logits(Side::Original, &prompt).unwrap()),
            bits(&base)
        );
    }
    assert_eq!(
        std::fs::read(&model).unwrap(),
        before,
        "staged edits never touch the file"
    );
    assert!(
        se.private_bytes() > 0,
        "the edited side holds private pages"
    );
    core.undo_all().unwrap();
    let back = se.next_logits(Side::Edited, &prompt).unwrap();
    assert_eq!(
        bits(&back),
        bits(&base),
        "undoing every edit restores the logits bit for bit"
    );
    // A Save writes the edits to disk: the original side must still be the model as opened.
    core.redo_all().unwrap();
    let edited = se.next_logits(Side::Edited, &prompt).unwrap();
    core.save(r, &mut |_| true).unwrap();
    assert_ne!(std::fs::read(&model).unwrap(), before, "saved");
    assert_eq!(
        bits(&se.next_logits(Side::Edited, &prompt).unwrap()),
        bits(&edited)
    );
    assert_eq!(
        bits(&se.next_logits(Side::Original, &prompt).unwrap()),
        bits(&base),
        "after Save the original side still computes with the bytes as opened"
    );
}

/// An edit made while a generation runs shows from the next token on (the session syncs before
/// every token), and an undo made then restores it.
#[test]
fn generation_sees_an_edit_made_between_tokens() {
    let dir = kit::tempdir();
    let model = copy_of(&kit::smollm2(), dir.path(), "gen.gguf");
    let core = Engine::new();
    let r = core.open(&model, Mode::Staged).unwrap();
    let mut se =
        SessionEngine::attach(&core, &[(model.clone(), r)], opts(), &mut |_| true).unwrap();
    let prompt = se
        .instance(Side::Edited)
        .unwrap()
        .tokenize_prompt("The capital of France is")
        .unwrap();
    let g0 = se
        .generate(
            Side::Edited,
            &prompt,
            &GenOptions {
                max_tokens: 6,
                ..Default::default()
            },
            &mut |_| true,
        )
        .unwrap();
    let norm = hotpatch_gguf::GgufModel::open(&model)
        .unwrap()
        .tensor("output_norm.weight")
        .unwrap()
        .clone();
    let mut n = 0;
    let g1 = se
        .generate(
            Side::Edited,
            &prompt,
            &GenOptions {
                max_tokens: 6,
                ..Default::default()
            },
            &mut |_| {
                n += 1;
                if n == 2 {
                    // Zero the final norm: every later logit becomes 0.
                    core.apply(
                        origin(),
                        vec![Patch::new(r, norm.offset, vec![0u8; norm.nbytes as usize])],
                    )
                    .unwrap();
                }
                true
            },
        )
        .unwrap();
    assert_eq!(
        g1.tokens[..2],
        g0.tokens[..2],
        "the first tokens come before the edit"
    );
    assert_ne!(
        g1.tokens, g0.tokens,
        "tokens after the edit differ: {:?} vs {:?}",
        g1.text, g0.text
    );
    core.undo().unwrap();
    let g2 = se
        .generate(
            Side::Edited,
            &prompt,
            &GenOptions {
                max_tokens: 6,
                ..Default::default()
            },
            &mut |_| true,
        )
        .unwrap();
    assert_eq!(
        g2.tokens, g0.tokens,
        "after undo the generation is the original one"
    );
}

#[test]
fn eval_of_a_model_against_itself_has_zero_kl() {
    let text = std::fs::read_to_string(kit::root().join("crates/infer/data/sample.txt")).unwrap();
    let mut a = load(&kit::smollm2());
    let mut b = load(&kit::smollm2());
    let o = EvalOptions {
        window: 128,
        batch: 64,
        max_tokens: 300,
        worst: 5,
    };
    let r = evaluate(&mut a, Some(&mut b), &text, o, &mut |_, _| true).unwrap();
    assert!(r.tokens >= 200, "scored {}", r.tokens);
    assert_eq!(r.kld_mean, Some(0.0), "same model, same logits: KL 0");
    assert_eq!(r.kld_p99, Some(0.0));
    assert_eq!(r.top1_agreement, Some(1.0));
    assert_eq!(r.ppl_b, Some(r.ppl));
    assert!(
        r.ppl > 1.0 && r.ppl < 200.0,
        "a real model on English text: ppl {}",
        r.ppl
    );
    let alone = evaluate(&mut a, None, &text, o, &mut |_, _| true).unwrap();
    assert_eq!(
        alone.ppl, r.ppl,
        "perplexity does not depend on a second model"
    );
    assert!(alone.kld_mean.is_none());
}

#[test]
fn eval_sees_an_edit_as_divergence() {
    let dir = kit::tempdir();
    let model = copy_of(&kit::smollm2(), dir.path(), "eval.gguf");
    let core = Engine::new();
    let r = core.open(&model, Mode::Staged).unwrap();
    let mut se =
        SessionEngine::attach(&core, &[(model.clone(), r)], opts(), &mut |_| true).unwrap();
    let t = hotpatch_gguf::GgufModel::open(&model)
        .unwrap()
        .tensor("blk.0.ffn_down.weight")
        .unwrap()
        .clone();
    let ty = t.ggml_type().unwrap();
    reverse_blocks_in(&core, r, t.offset, t.nbytes, ty.type_size() as u64);
    let text = std::fs::read_to_string(kit::root().join("crates/infer/data/sample.txt")).unwrap();
    let (a, b) = se.both().unwrap();
    let o = EvalOptions {
        window: 128,
        batch: 64,
        max_tokens: 200,
        worst: 5,
    };
    let rep = evaluate(a, Some(b), &text, o, &mut |_, _| true).unwrap();
    assert!(
        rep.kld_mean.unwrap() > 0.0,
        "an edited block diverges: {rep:?}"
    );
    assert!(rep.kld_p99.unwrap() >= rep.kld_mean.unwrap() * 0.5);
    assert!(rep.top1_agreement.unwrap() < 1.0);
    assert_eq!(rep.worst.len(), 5);
    assert!(
        rep.worst.windows(2).all(|w| w[0].kld >= w[1].kld),
        "worst first"
    );
}

/// Which tensors default llama.cpp copies comes from llama.cpp's buffers, and it is right:
/// a live edit of a tensor it keeps in the mapped file changes the logits of a default-loaded
/// model; an edit of one it copied does not.
#[test]
fn default_load_buffers_tell_which_edits_an_external_llama_cpp_sees() {
    let dir = kit::tempdir();
    let model = copy_of(&demo(), dir.path(), "buffers.gguf");
    let live = default_load_buffers(&model).unwrap();
    assert_eq!(
        live.tensors.len(),
        hotpatch_gguf::GgufModel::open(&model)
            .unwrap()
            .tensors
            .len()
    );
    for t in &live.tensors {
        if let Some(b) = &t.buffer {
            assert_eq!(t.copied, b != MAPPED_BUFFER, "{t:?}");
        }
    }
    for line in &live.repack_log {
        assert!(
            live.copied().any(|t| line.contains(&t.name)),
            "every repack log line names a tensor reported copied: {line}"
        );
    }
    // A default (repacking) instance, edited live through a shared map.
    let mut ext = Instance::load(
        &model,
        InstanceOptions {
            load: LoadOptions {
                repack: true,
                gpu_layers: 0,
            },
            ..opts()
        },
        &mut |_| true,
    )
    .unwrap();
    let prompt = ext.tokenize_prompt("hello world the model").unwrap();
    let base = ext.next_logits(&prompt).unwrap();
    let core = Engine::new();
    let r = core.open(&model, Mode::Live).unwrap();
    let index = hotpatch_gguf::GgufModel::open(&model).unwrap();
    for t in live
        .tensors
        .iter()
        .filter(|t| t.buffer.is_some() && t.name != "token_embd.weight")
    {
        let info = index.tensor(&t.name).unwrap();
        let block = info.ggml_type().unwrap().type_size() as u64;
        reverse_blocks_in(&core, r, info.offset, info.nbytes, block);
        let changed = bits(&ext.next_logits(&prompt).unwrap()) != bits(&base);
        core.undo().unwrap();
        assert_eq!(
            changed,
            !t.copied,
            "{} ({}) in buffer {:?}: copied={} but a live edit {} the default-loaded model",
            t.name,
            t.ty,
            t.buffer,
            t.copied,
            if changed { "changed" } else { "did not change" }
        );
    }
}

#[test]
fn residual_direction_between_two_prompt_sets() {
    let mut m = load(&kit::smollm2());
    let width = m.model().n_embd();
    let a = mean_residual(&mut m, &["The capital of France is".into()], 10, Pool::Mean).unwrap();
    assert_eq!(a.len(), width);
    assert!(a.iter().all(|x| x.is_finite()));
    let pos = vec![
        "How do I bake bread?".to_string(),
        "Tell me about cats.".to_string(),
    ];
    let neg = vec![
        "Bonjour, comment allez-vous ?".to_string(),
        "Wie spät ist es?".to_string(),
    ];
    let d = direction(&mut m, &pos, &neg, 10, Pool::LastToken).unwrap();
    let n: f32 = d.vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((n - 1.0).abs() < 1e-4, "unit vector, got |v| = {n}");
    assert!(d.norm > 0.0);
    let same = direction(&mut m, &pos, &pos, 10, Pool::Mean);
    assert!(matches!(same, Err(InferError::Invalid { .. })), "{same:?}");
    let bad = mean_residual(&mut m, &pos, 999, Pool::Mean);
    assert!(
        matches!(bad, Err(InferError::Invalid { what: "layer", .. })),
        "{bad:?}"
    );
}

#[test]
fn bad_files_are_refused_with_a_clear_error() {
    let dir = kit::tempdir();
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a model at all").unwrap();
    let e = Instance::load(&junk, opts(), &mut |_| true).unwrap_err();
    assert!(e.to_string().contains("junk.gguf"), "names the file: {e}");
    let trunc = dir.path().join("trunc.gguf");
    let bytes = std::fs::read(demo()).unwrap();
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let e = Instance::load(&trunc, opts(), &mut |_| true).unwrap_err();
    assert!(e.to_string().contains("trunc.gguf"), "names the file: {e}");
    let missing = Instance::load(&dir.path().join("none.gguf"), opts(), &mut |_| true).unwrap_err();
    assert_eq!(missing.code(), "Io");
    let mut m = load(&demo());
    let e = m.next_token(&[1_000_000], 3).unwrap_err();
    assert!(
        e.to_string().contains("1000000"),
        "names the bad token: {e}"
    );
    let cancel = Instance::load(&demo(), opts(), &mut |_| false).unwrap_err();
    assert_eq!(cancel.code(), "Canceled");
}

/// Both sides generate token by token, alternating; before an edit they agree, after one the
/// edited side differs while the original keeps its answer; the next-token comparison says so.
#[test]
fn paired_generation_and_next_token_comparison() {
    let dir = kit::tempdir();
    let model = copy_of(&kit::smollm2(), dir.path(), "pair.gguf");
    let core = Engine::new();
    let r = core.open(&model, Mode::Staged).unwrap();
    let mut slot = None;
    let shards = [(model.clone(), r)];
    let se = SessionEngine::ensure(&mut slot, &core, &shards, opts(), &mut |_| true).unwrap();
    let prompt = se.prompt_tokens("The capital of France is", false).unwrap();
    let o = GenOptions {
        max_tokens: 4,
        ..Default::default()
    };
    let mut order = Vec::new();
    let (e, orig) = se
        .generate_pair(&prompt, &o, true, &mut |side, _| {
            order.push(side);
            true
        })
        .unwrap();
    let orig = orig.unwrap();
    assert_eq!(e.tokens, orig.tokens, "no edit: the same answer");
    assert_eq!(
        &order[..4],
        &[Side::Edited, Side::Original, Side::Edited, Side::Original],
        "alternating"
    );
    let c = se.compare_next(&prompt, 5).unwrap();
    assert!(
        !c.top1_changed && c.kld == 0.0 && c.max_abs_logit_change == 0.0,
        "{c:?}"
    );
    let norm = hotpatch_gguf::GgufModel::open(&model)
        .unwrap()
        .tensor("output_norm.weight")
        .unwrap()
        .clone();
    core.apply(
        origin(),
        vec![Patch::new(r, norm.offset, 3000f32.to_le_bytes().to_vec())],
    )
    .unwrap();
    let (e2, o2) = se
        .generate_pair(&prompt, &o, true, &mut |_, _| true)
        .unwrap();
    assert_eq!(
        o2.unwrap().tokens,
        orig.tokens,
        "the original side keeps its answer"
    );
    assert_ne!(
        e2.tokens, e.tokens,
        "one weight of the final norm ×3000 changes the edited answer"
    );
    let c = se.compare_next(&prompt, 5).unwrap();
    assert!(
        c.top1_changed && c.kld > 0.0,
        "{:?}",
        (c.top1_changed, c.kld)
    );
    assert!(!c.shifts.is_empty());
    // The same slot serves the same session; another region id is a reload.
    let again = SessionEngine::ensure(&mut slot, &core, &shards, opts(), &mut |_| true).unwrap();
    assert!(again.has_original(), "reused, not reloaded");
}

/// The studio's host: one engine reused across runs, both sides answering side by side, an
/// edit showing on the edited side only, undo restoring it exactly, the behaviour diff seeing
/// it, and the built-in upstream's backend serving the edited model.
#[test]
fn host_runs_both_sides_follows_edits_and_serves_the_edited_model() {
    use hotpatch_infer::{
        behaviour_diff, run_pair, Backend, EngineHost, HostBackend, RunRequest, SessionRef,
    };
    let dir = kit::tempdir();
    let model = copy_of(&kit::smollm2(), dir.path(), "host.gguf");
    let core = Engine::new();
    let r = core.open(&model, Mode::Staged).unwrap();
    let session = SessionRef {
        core: core.clone(),
        shards: vec![(model.clone(), r)],
    };
    let host = std::sync::Arc::new(EngineHost::new(opts()));
    assert_eq!(
        host.status(),
        Ok(None),
        "nothing loaded before the first run"
    );
    let req = RunRequest {
        prompt: "The capital of France is".into(),
        max_tokens: 3,
        top_k: 5,
        ..Default::default()
    };
    let mut streamed = (String::new(), String::new());
    let first = host
        .with(&session, &mut |_| true, |se| {
            run_pair(se, &req, &mut |side, step| {
                match side {
                    Side::Edited => streamed.0.push_str(&step.text),
                    Side::Original => streamed.1.push_str(&step.text),
                }
                true
            })
        })
        .unwrap();
    assert!(
        first.edited.text.starts_with(" Paris") && first.original.text.starts_with(" Paris"),
        "SmolLM2 greedily answers ' Paris' on both sides: {:?} / {:?}",
        first.edited.text,
        first.original.text
    );
    assert!(first.same && !first.next.top1_changed && first.next.kld == 0.0);
    assert_eq!(
        (streamed.0.as_str(), streamed.1.as_str()),
        (first.edited.text.as_str(), first.original.text.as_str()),
        "the streamed tokens are the answers"
    );
    let loaded = host.status().unwrap().expect("loaded").load_seconds;

    let norm = hotpatch_gguf::GgufModel::open(&model)
        .unwrap()
        .tensor("output_norm.weight")
        .unwrap()
        .clone();
    core.apply(
        origin(),
        vec![Patch::new(r, norm.offset, 3000f32.to_le_bytes().to_vec())],
    )
    .unwrap();
    let edited = host
        .with(&session, &mut |_| true, |se| {
            run_pair(se, &req, &mut |_, _| true)
        })
        .unwrap();
    assert_eq!(
        host.status().unwrap().unwrap().load_seconds,
        loaded,
        "the same engine, not reloaded"
    );
    assert_eq!(
        edited.original.tokens, first.original.tokens,
        "original unchanged"
    );
    assert!(
        !edited.same && edited.next.top1_changed && edited.next.kld > 0.0,
        "one weight of the final norm ×3000 changes the edited answer: {:?}",
        edited.edited.text
    );
    assert!(
        edited.revision > first.revision,
        "the run saw the new revision"
    );
    let report = host
        .with(&session, &mut |_| true, |se| {
            behaviour_diff(
                se,
                hotpatch_infer::SAMPLE_TEXT,
                EvalOptions {
                    max_tokens: 96,
                    ..Default::default()
                },
                &mut |_, _| true,
            )
        })
        .unwrap();
    assert!(report.kld_mean.unwrap() > 0.0 && report.top1_agreement.unwrap() < 1.0);
    assert!(
        report.nll.is_finite()
            && (report.ppl.is_infinite() || (report.nll.exp() / report.ppl - 1.0).abs() < 1e-9),
        "nll is ln(ppl), finite even where ppl overflows: {} {}",
        report.nll,
        report.ppl
    );
    assert_eq!(
        report.per_token.len(),
        report.tokens,
        "one score per position"
    );
    assert!(
        report
            .per_token
            .iter()
            .any(|t| t.kld > 0.0 && !t.text.is_empty()),
        "the per-token view shows where they part"
    );
    let source_core = core.clone();
    let source_shards = session.shards.clone();
    let backend = HostBackend::new(
        host.clone(),
        Box::new(move || {
            Ok(SessionRef {
                core: source_core.clone(),
                shards: source_shards.clone(),
            })
        }),
    );
    let o = GenOptions {
        max_tokens: 3,
        ..Default::default()
    };
    let served = backend
        .complete("The capital of France is", &o, &mut |_| true)
        .unwrap();
    assert_eq!(
        served.tokens, edited.edited.tokens,
        "the built-in upstream serves the edited model"
    );

    core.undo_all().unwrap();
    let back = host
        .with(&session, &mut |_| true, |se| {
            run_pair(se, &req, &mut |_, _| true)
        })
        .unwrap();
    assert_eq!(
        back.edited.tokens, first.edited.tokens,
        "undo: the answer is back"
    );
    assert!(back.same && back.next.kld == 0.0 && back.next.max_abs_logit_change == 0.0);
    let report = host
        .with(&session, &mut |_| true, |se| {
            behaviour_diff(
                se,
                hotpatch_infer::SAMPLE_TEXT,
                EvalOptions {
                    max_tokens: 64,
                    ..Default::default()
                },
                &mut |_, _| true,
            )
        })
        .unwrap();
    assert_eq!(report.kld_mean, Some(0.0), "after undo the models agree");
    assert_eq!(report.top1_agreement, Some(1.0));
    let canceled = host.with(&session, &mut |_| true, |se| {
        behaviour_diff(
            se,
            hotpatch_infer::SAMPLE_TEXT,
            EvalOptions::default(),
            &mut |_, _| false,
        )
    });
    assert!(
        matches!(canceled, Err(InferError::Canceled)),
        "{canceled:?}"
    );
    let empty = host.with(&session, &mut |_| true, |se| {
        run_pair(se, &RunRequest::default(), &mut |_, _| true)
    });
    assert!(
        empty.unwrap_err().to_string().contains("prompt"),
        "an empty prompt is refused, naming it"
    );
}
