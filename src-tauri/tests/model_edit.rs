//! The Model screen's commands without a window: metadata edits (typed parsing, errors that
//! name the key and type), undo/redo, Save As read back by gguf-py, recent files, split
//! shards, the live-visibility rows.

use std::path::{Path, PathBuf};

use hotpatch_gguf::{write_file, GgufModel, MetaValue, TensorData, TensorSpec, TensorType};
use hotpatch_studio::commands::edit::{
    check_dest, do_undo, metadata_text_of, save_with, session_metadata_of, set_metadata_of,
};
use hotpatch_studio::commands::model::{attach_session, live_row, shards_of};
use hotpatch_studio::error::ErrorCode;
use hotpatch_studio::state::AppState;
use serde_json::Value;

use hotpatch_testkit::{run_py, tempdir};

fn demo(dir: &Path) -> PathBuf {
    hotpatch_testkit::demo_model(dir, "m.gguf", &[])
}

fn dump(p: &Path) -> Value {
    serde_json::from_str(&run_py("tests/oracle/gguf_dump.py", &[p.to_str().unwrap()]))
        .expect("dump json")
}

fn opened(path: &Path) -> AppState {
    let state = AppState::default();
    let file = GgufModel::open(path).expect("opens");
    attach_session(&state, path, file).expect("attaches");
    state
}

fn status(state: &AppState, key: &str) -> Option<String> {
    session_metadata_of(state.session())
        .unwrap()
        .into_iter()
        .find(|r| r.key == key)
        .map(|r| r.status)
}

#[test]
fn metadata_edit_undo_redo_and_save_as_read_back_by_gguf_py() {
    let dir = tempdir();
    let model = demo(dir.path());
    let before = dump(&model);
    let state = opened(&model);
    let m = state.session();

    // Bad input: typed errors naming key and type; nothing staged.
    let e = set_metadata_of(m, "llama.context_length", "UINT32", None, "abc").unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert_eq!(
        e.message,
        "llama.context_length (UINT32): 'abc' is not a whole number"
    );
    let e = set_metadata_of(m, "llama.context_length", "UINT32", None, "4294967296").unwrap_err();
    assert!(e.message.contains("out of range"), "{}", e.message);
    let e = set_metadata_of(m, "k", "UINT33", None, "1").unwrap_err();
    assert!(
        e.message.contains("unknown value type 'UINT33'"),
        "{}",
        e.message
    );
    let e = set_metadata_of(m, "k", "ARRAY", None, "[1]").unwrap_err();
    assert!(e.message.contains("element type"), "{}", e.message);
    assert!(!m.is_modified());

    // A scalar, the chat template, an array and a new key.
    let s = set_metadata_of(m, "llama.context_length", "UINT32", None, "4096").unwrap();
    assert!(s.modified && s.can_undo && s.pending_metadata == 1);
    let template = "{{ messages | length }}\n";
    set_metadata_of(m, "tokenizer.chat_template", "STRING", None, template).unwrap();
    set_metadata_of(m, "hotpatch.ids", "ARRAY", Some("INT32"), "[3, -1, 7]").unwrap();
    assert_eq!(
        status(&state, "llama.context_length").as_deref(),
        Some("changed")
    );
    assert_eq!(status(&state, "hotpatch.ids").as_deref(), Some("added"));
    assert_eq!(
        metadata_text_of(m, "hotpatch.ids").unwrap(),
        "[3, -1, 7]",
        "the full edit text of the array"
    );
    // The token list (279 strings) is editable as a JSON list that parses back to itself.
    let tokens = metadata_text_of(m, "tokenizer.ggml.tokens").unwrap();
    let parsed: Vec<String> = serde_json::from_str(&tokens).unwrap();
    assert_eq!(
        serde_json::to_value(&parsed).unwrap(),
        before["metadata"]["tokenizer.ggml.tokens"]["value"]
    );

    // Undo / redo move through the steps; the table follows.
    let s = do_undo(&state, true).unwrap();
    assert_eq!(s.history.iter().filter(|h| h.undone).count(), 1);
    assert_eq!(status(&state, "hotpatch.ids"), None);
    do_undo(&state, true).unwrap();
    assert_eq!(
        status(&state, "tokenizer.chat_template").as_deref(),
        Some("unchanged")
    );
    do_undo(&state, false).unwrap();
    do_undo(&state, false).unwrap();
    assert_eq!(status(&state, "hotpatch.ids").as_deref(), Some("added"));
    let e = do_undo(&state, false).unwrap_err();
    assert_eq!(e.code, ErrorCode::Refused, "nothing to redo: {}", e.message);

    // Save As: the new file is the open model, gguf-py reads the new values, tensors identical.
    std::env::set_var("HOTPATCH_RECENT", dir.path().join("recent.json"));
    let out = dir.path().join("saved.gguf");
    let mut reports = 0;
    let r = save_with(&state, Some(out.clone()), &mut |_| {
        reports += 1;
        true
    })
    .unwrap();
    assert!(reports > 0 && r.rewritten && r.reattached);
    assert_eq!(
        state.require_model().unwrap().shards[0].path(),
        out.as_path()
    );
    assert!(!state.session().is_modified());
    let after = dump(&out);
    let md = &after["metadata"];
    assert_eq!(md["llama.context_length"]["value"], 4096);
    assert_eq!(md["tokenizer.chat_template"]["value"], template);
    assert_eq!(md["hotpatch.ids"]["value"], serde_json::json!([3, -1, 7]));
    assert_eq!(md["hotpatch.ids"]["element"], "INT32");
    assert_eq!(after["tensors"], before["tensors"]);
    // The shell's parsed index is the new file's: its metadata lists the new key.
    assert!(state
        .require_model()
        .unwrap()
        .index()
        .entry("hotpatch.ids")
        .is_some());
    // Recent files: the saved file first.
    let recent = hotpatch_studio::commands::model::recent_files();
    assert_eq!(
        recent.first().map(|r| r.path.clone()),
        Some(out.canonicalize().unwrap().display().to_string())
    );
}

#[test]
fn save_as_destinations_are_checked() {
    let dir = tempdir();
    assert_eq!(check_dest("  ").unwrap_err().code, ErrorCode::BadRequest);
    let e = check_dest(dir.path().to_str().unwrap()).unwrap_err();
    assert!(e.message.contains("is a directory"), "{}", e.message);
    let e = check_dest(dir.path().join("x.bin").to_str().unwrap()).unwrap_err();
    assert!(e.message.contains(".gguf"), "{}", e.message);
    let e = check_dest(dir.path().join("nope/x.gguf").to_str().unwrap()).unwrap_err();
    assert!(e.message.contains("does not exist"), "{}", e.message);
    assert!(check_dest(dir.path().join("ok.gguf").to_str().unwrap()).is_ok());
}

/// Writes shard `no` (0-based) of `n` holding one F32 tensor `t<no>` of 4 elements.
fn shard(dir: &Path, no: u16, n: u16, total_tensors: u16) -> PathBuf {
    let p = dir.join(format!("split-{:05}-of-{:05}.gguf", no + 1, n));
    let data: Vec<u8> = (0..4u32).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let mut meta = vec![
        ("split.no".to_string(), MetaValue::U16(no)),
        ("split.count".to_string(), MetaValue::U16(n)),
        (
            "split.tensors.count".to_string(),
            MetaValue::I32(total_tensors.into()),
        ),
    ];
    if no == 0 {
        meta.insert(
            0,
            ("general.architecture".into(), MetaValue::string("llama")),
        );
    }
    write_file(
        &p,
        3,
        &meta,
        vec![TensorSpec {
            name: format!("t{no}"),
            ty: TensorType::Known(hotpatch_gguf::GgmlType::F32),
            dims: vec![4],
            data: TensorData::Bytes(&data),
        }],
        &mut |_| {},
    )
    .unwrap();
    p
}

#[test]
fn split_models_list_every_shard_and_name_a_missing_one() {
    let dir = tempdir();
    let first = shard(dir.path(), 0, 3, 3);
    shard(dir.path(), 1, 3, 3);
    let third = shard(dir.path(), 2, 3, 3);
    // Any shard leads to the first one; a plain file stays itself.
    let second = dir.path().join("split-00002-of-00003.gguf");
    let first_of = |p: &Path| PathBuf::from(&shards_of(p).unwrap()[0].path);
    assert_eq!(first_of(&second), first);
    assert_eq!(first_of(&first), first);
    assert_eq!(shards_of(&second).unwrap().len(), 3);
    let rows = shards_of(&first).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().map(|r| r.number).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(rows.iter().all(|r| r.tensors == 1 && r.tensor_bytes == 16));
    assert_eq!(rows[2].file_name, "split-00003-of-00003.gguf");
    assert_eq!(rows[0].file_size, std::fs::metadata(&first).unwrap().len());
    std::fs::remove_file(&third).unwrap();
    let e = shards_of(&first).unwrap_err();
    assert!(
        e.message.contains("shard 3 of 3 is missing"),
        "{}",
        e.message
    );
    // Without its first shard, a later shard does not open: the error names shard 1.
    std::fs::remove_file(&first).unwrap();
    let e = shards_of(&second).unwrap_err();
    assert!(
        e.message.contains("shard 1 of 3 is missing"),
        "{}",
        e.message
    );
    // A plain model is one row.
    let model = demo(dir.path());
    assert_eq!(first_of(&model), model);
    assert_eq!(shards_of(&model).unwrap().len(), 1);
}

#[test]
fn a_split_model_opens_edits_and_saves_as_one() {
    use hotpatch_studio::commands::edit::save_with;
    use hotpatch_studio::commands::model::{open_with_progress, summarize, tensor_row};
    let dir = tempdir();
    let first = shard(dir.path(), 0, 3, 3);
    shard(dir.path(), 1, 3, 3);
    let third = shard(dir.path(), 2, 3, 3);
    let file = open_with_progress(third.clone(), 1, |_| {}).expect("opens from any shard");
    let s = summarize(&file);
    assert_eq!((s.shards, s.tensor_count), (3, 3));
    assert_eq!(
        s.path,
        first.display().to_string(),
        "named by its first shard"
    );
    let sizes: u64 = (1..=3)
        .map(|k| {
            std::fs::metadata(dir.path().join(format!("split-{k:05}-of-00003.gguf")))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(s.file_size, sizes);
    let rows: Vec<_> = file
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| tensor_row(i, t))
        .collect();
    assert_eq!(
        rows.iter()
            .map(|r| (r.name.as_str(), r.shard))
            .collect::<Vec<_>>(),
        [("t0", 0), ("t1", 1), ("t2", 2)]
    );
    let state = AppState::default();
    attach_session(&state, &third, file).expect("attaches every shard");
    let m = state.session();
    m.modify_weight("t2", 1, 7.5).unwrap();
    m.set_metadata("general.name", MetaValue::string("split"))
        .unwrap();
    // The Bytes screen works on one file at a time: the third file's structure labels t2, and
    // a write there changes element 2 of t2 (1.5 = 00 00 c0 3f, little-endian).
    use hotpatch_studio::commands::bytes::{apply, structure, ByteOp, SpanClass};
    let st = structure(&state, 2).unwrap();
    let span = st
        .spans
        .iter()
        .find(|s| s.label.contains("t2") && s.class == SpanClass::TensorData)
        .expect("t2's data labelled");
    let t2 = m.tensors().unwrap().index().tensor("t2").unwrap().clone();
    assert_eq!(st.file_size, std::fs::metadata(&third).unwrap().len());
    assert!(span.start <= t2.offset && t2.offset < span.end);
    apply(
        &state,
        2,
        &ByteOp::Write {
            offset: t2.offset + 8,
            hex: "00 00 c0 3f".into(),
        },
    )
    .unwrap();
    assert_eq!(m.tensors().unwrap().value("t2", 2).unwrap(), 1.5);
    assert_eq!(
        hotpatch_studio::binary::read_range(&state, 2, t2.offset + 8, 4).unwrap(),
        [0, 0, 0xc0, 0x3f]
    );
    let e = structure(&state, 3).unwrap_err();
    assert!(
        e.message.contains("the model has 3 file(s)"),
        "{}",
        e.message
    );
    let out = save_with(&state, None, &mut |_| true).unwrap();
    assert!(out.reattached);
    assert_eq!(out.path, first.display().to_string());
    // The weight went to the third file, the name to the first; the shell sees 3 files again.
    let t = hotpatch_gguf::GgufFile::open(&third).unwrap();
    let data = t.tensor_data(&t.index.tensors[0]).unwrap();
    assert_eq!(f32::from_le_bytes(data[4..8].try_into().unwrap()), 7.5);
    assert_eq!(f32::from_le_bytes(data[8..12].try_into().unwrap()), 1.5);
    let f = hotpatch_gguf::GgufFile::open(&first).unwrap();
    assert_eq!(f.index.get_str("general.name"), Some("split"));
    let model = state.require_model().unwrap();
    assert_eq!(model.shards.len(), 3);
    assert_eq!(m.tensors().unwrap().value("t2", 1).unwrap(), 7.5);
}

#[test]
fn live_rows_carry_the_core_verdicts_for_this_host() {
    use hotpatch_core::{CpuInfo, LiveVisibility, TensorLiveness};
    let row = |v| {
        live_row(TensorLiveness {
            name: "w".into(),
            ty: "Q4_0".into(),
            offset: 0,
            nbytes: 10,
            visibility: v,
            reason: "because".into(),
        })
    };
    assert_eq!(row(LiveVisibility::Live).visibility, "live");
    assert_eq!(row(LiveVisibility::CopiedAtLoad).visibility, "copied");
    assert_eq!(row(LiveVisibility::Unknown).visibility, "unknown");
    assert_eq!(row(LiveVisibility::Live).reason, "because");
    // On the demo model: the command's rows are the core's verdicts for the host CPU.
    let dir = tempdir();
    let model = demo(dir.path());
    let state = opened(&model);
    let m = state.session();
    let cpu = CpuInfo::host();
    let rows = m
        .engine()
        .live_visibility(&[m.region().unwrap()], &cpu)
        .unwrap();
    let q4 = rows
        .iter()
        .find(|r| r.name == "blk.0.ffn_gate.weight")
        .unwrap();
    assert_eq!(q4.ty, "Q4_0");
    let expect = if cpu.arch == "x86_64" && cpu.has("avx2") {
        LiveVisibility::CopiedAtLoad
    } else if cpu.arch == "x86_64" {
        LiveVisibility::Live
    } else {
        q4.visibility
    };
    assert_eq!(q4.visibility, expect, "{}", q4.reason);
}
