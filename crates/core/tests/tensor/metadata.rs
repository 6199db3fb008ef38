//! Staged metadata edits: one undo timeline with engine edits, Save / Save As through the
//! GGUF writer, checked by reading the written files with gguf-py (tests/oracle/gguf_dump.py).

use std::path::Path;

use hotpatch_core::manager::Manager;
use hotpatch_core::metadata::EntryStatus;
use hotpatch_core::session::StepKind;
use hotpatch_core::{EngineError, Mode};
use hotpatch_gguf::MetaValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

fn dump(model: &Path) -> Value {
    let out = run_py("tests/oracle/gguf_dump.py", &[model.to_str().unwrap()]);
    serde_json::from_str(&out).expect("gguf_dump JSON")
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const TEMPLATE: &str = "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}\n{% endfor %}\
                        {% if add_generation_prompt %}<|assistant|>\n{% endif %}";

#[test]
fn save_as_writes_metadata_edits_and_staged_tensor_bytes() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let before = dump(&model);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();

    // A weight edit (engine) and metadata edits of every kind.
    m.modify_weight("blk.2.attn_output.weight", 5, 0.75)
        .unwrap();
    m.set_metadata("tokenizer.chat_template", MetaValue::string(TEMPLATE))
        .unwrap();
    m.set_metadata("llama.context_length", MetaValue::U32(4096))
        .unwrap();
    m.set_metadata("hotpatch.note", MetaValue::string("edited"))
        .unwrap();
    m.remove_metadata("general.name").unwrap();
    assert!(m.is_modified());

    let view = m.metadata_view().unwrap();
    let status = |k: &str| view.iter().find(|e| e.key == k).map(|e| e.status);
    assert_eq!(status("llama.context_length"), Some(EntryStatus::Changed));
    assert_eq!(status("hotpatch.note"), Some(EntryStatus::Added));
    assert_eq!(status("general.name"), Some(EntryStatus::Removed));
    assert_eq!(status("general.architecture"), Some(EntryStatus::Unchanged));

    // The edited tensor's bytes as the image holds them now.
    let layer = m.tensors().unwrap();
    let t = layer
        .index()
        .tensor("blk.2.attn_output.weight")
        .unwrap()
        .clone();
    let image = m.engine().read(layer.region(), t.offset, t.nbytes).unwrap();
    let edited_sha = sha(&image);

    let out = dir.path().join("saved.gguf");
    let mut calls = 0;
    let rep = m
        .save_as(&out, &mut |p| {
            calls += 1;
            assert!(p.done <= p.total);
            true
        })
        .unwrap();
    assert!(calls > 0);
    assert_eq!(rep.bytes_written, std::fs::metadata(&out).unwrap().len());
    assert!(rep.reattached);
    // Save As switches to the new file, with nothing pending.
    assert_eq!(m.attached().unwrap().0, out);
    assert!(!m.is_modified());
    assert!(!m.can_undo());

    let after = dump(&out);
    let md = &after["metadata"];
    assert_eq!(md["tokenizer.chat_template"]["value"], TEMPLATE);
    assert_eq!(md["llama.context_length"]["value"], 4096);
    assert_eq!(md["llama.context_length"]["type"], "UINT32");
    assert_eq!(md["hotpatch.note"]["value"], "edited");
    assert!(md.get("general.name").is_none());
    // Every other key as gguf-py read it before.
    for (k, v) in before["metadata"].as_object().unwrap() {
        if [
            "tokenizer.chat_template",
            "llama.context_length",
            "general.name",
        ]
        .contains(&k.as_str())
        {
            continue;
        }
        assert_eq!(&md[k], v, "metadata {k}");
    }
    // Tensors: byte-identical, except the edited one, which holds the image's bytes.
    let (tb, ta) = (&before["tensors"], &after["tensors"]);
    assert_eq!(tb.as_object().unwrap().len(), ta.as_object().unwrap().len());
    for (name, info) in tb.as_object().unwrap() {
        if name == "blk.2.attn_output.weight" {
            assert_ne!(info["sha256"], ta[name]["sha256"]);
            assert_eq!(ta[name]["sha256"], edited_sha.as_str());
        } else {
            assert_eq!(info, &ta[name], "tensor {name}");
        }
    }
    // The original file is untouched.
    assert_eq!(dump(&model), before);
}

#[test]
fn save_in_place_with_metadata_rewrites_and_reattaches() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let before = dump(&model);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    m.set_metadata("tokenizer.chat_template", MetaValue::string(TEMPLATE))
        .unwrap();
    let rep = m.save(&mut |_| true).unwrap();
    assert!(rep.rewritten && rep.reattached);
    assert!(!m.is_modified());
    let after = dump(&model);
    assert_eq!(
        after["metadata"]["tokenizer.chat_template"]["value"],
        TEMPLATE
    );
    assert_eq!(after["tensors"], before["tensors"]);
    // The reattached session reads the new header.
    let v = m.metadata_view().unwrap();
    let tpl = v
        .iter()
        .find(|e| e.key == "tokenizer.chat_template")
        .unwrap();
    assert_eq!(tpl.value.as_str(), Some(TEMPLATE));
    assert_eq!(tpl.status, EntryStatus::Unchanged);

    // Without metadata edits, Save is the engine's in-place save and keeps the history.
    m.modify_weight("output_norm.weight", 0, 2.5).unwrap();
    let rep = m.save(&mut |_| true).unwrap();
    assert!(!rep.rewritten && !rep.reattached);
    assert!(m.can_undo());
    let saved = dump(&model);
    assert_ne!(
        saved["tensors"]["output_norm.weight"]["sha256"],
        before["tensors"]["output_norm.weight"]["sha256"]
    );
    let vals = oracle_values(&model, "output_norm.weight", dir.path());
    assert_eq!(vals[0], 2.5);
}

#[test]
fn cancelled_save_as_leaves_no_file_and_keeps_edits() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    m.set_metadata("hotpatch.note", MetaValue::string("x"))
        .unwrap();
    let out = dir.path().join("never.gguf");
    let err = m.save_as(&out, &mut |_| false).unwrap_err();
    assert!(
        matches!(
            err,
            hotpatch_core::manager::ManagerError::Engine(EngineError::Cancelled)
        ),
        "{err}"
    );
    assert!(!out.exists());
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "m.gguf")
        .collect();
    assert!(stray.is_empty(), "left behind: {stray:?}");
    assert!(m.is_modified());
    assert_eq!(m.attached().unwrap().0, model);
    // Refuses to "save as" over the open file.
    assert!(m.save_as(&model, &mut |_| true).is_err());
}

#[test]
fn undo_and_redo_interleave_engine_and_metadata_steps() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    let w0 = m
        .tensors()
        .unwrap()
        .extract("output_norm.weight", None)
        .unwrap()[0];

    m.modify_weight("output_norm.weight", 0, 3.0).unwrap(); // E1
    m.set_metadata("a.one", MetaValue::U32(1)).unwrap(); // M1
    m.modify_weight("output_norm.weight", 0, 4.0).unwrap(); // E2
    m.set_metadata("a.one", MetaValue::U32(2)).unwrap(); // M2

    let kinds = |m: &Manager| {
        m.session_history()
            .iter()
            .map(|s| (s.kind, s.undone))
            .collect::<Vec<_>>()
    };
    use StepKind::{Engine as E, Metadata as M};
    assert_eq!(kinds(&m), [(E, false), (M, false), (E, false), (M, false)]);
    let value = |m: &Manager| {
        let v = m.metadata_view().unwrap();
        v.iter().find(|e| e.key == "a.one").map(|e| e.value.clone())
    };
    let weight = |m: &Manager| {
        m.tensors()
            .unwrap()
            .extract("output_norm.weight", None)
            .unwrap()[0]
    };

    assert_eq!(m.undo().unwrap().kind, M);
    assert_eq!(value(&m), Some(MetaValue::U32(1)));
    assert_eq!(weight(&m), 4.0);
    assert_eq!(m.undo().unwrap().kind, E);
    assert_eq!(weight(&m), 3.0);
    assert_eq!(m.undo().unwrap().kind, M);
    assert_eq!(value(&m), None);
    assert_eq!(m.undo().unwrap().kind, E);
    assert_eq!(weight(&m), w0);
    assert!(!m.can_undo());
    assert!(m.undo().is_err());
    assert_eq!(kinds(&m), [(E, true), (M, true), (E, true), (M, true)]);

    assert_eq!(m.redo().unwrap().kind, E);
    assert_eq!(m.redo().unwrap().kind, M);
    assert_eq!(value(&m), Some(MetaValue::U32(1)));
    assert_eq!(weight(&m), 3.0);
    assert_eq!(m.redo().unwrap().kind, E);
    assert_eq!(m.redo().unwrap().kind, M);
    assert_eq!(value(&m), Some(MetaValue::U32(2)));
    assert!(!m.can_redo());

    // A new engine change after undoing a metadata edit drops that edit from redo.
    m.undo().unwrap(); // M2 undone
    m.modify_weight("output_norm.weight", 1, 5.0).unwrap();
    assert!(!m.can_redo());
    assert_eq!(value(&m), Some(MetaValue::U32(1)));
}

#[test]
fn mode_switch_refuses_unsaved_work_and_reattaches_live() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    m.set_metadata("hotpatch.note", MetaValue::string("x"))
        .unwrap();
    assert!(m.switch_mode(Mode::Live).is_err());
    m.undo().unwrap();
    m.switch_mode(Mode::Live).unwrap();
    assert_eq!(m.attached().unwrap().1, Mode::Live);
    // A live write reaches the file at once.
    m.modify_weight("output_norm.weight", 0, 7.0).unwrap();
    let vals = oracle_values(&model, "output_norm.weight", dir.path());
    assert_eq!(vals[0], 7.0);
    m.switch_mode(Mode::Staged).unwrap();
    assert_eq!(m.attached().unwrap().1, Mode::Staged);
}

#[test]
fn bad_keys_and_removals_are_refused() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    assert!(m.set_metadata("", MetaValue::U8(1)).is_err());
    assert!(m.set_metadata("has space", MetaValue::U8(1)).is_err());
    assert!(m
        .set_metadata("general.alignment", MetaValue::U32(48))
        .is_err());
    let e = m.remove_metadata("no.such.key").unwrap_err();
    assert!(e.to_string().contains("no.such.key"), "{e}");
    m.remove_metadata("general.name").unwrap();
    assert!(m.remove_metadata("general.name").is_err());
}

#[test]
fn protections_survive_a_save_that_rewrites_the_header() {
    use hotpatch_core::config::Protection;
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    let t = m
        .tensors()
        .unwrap()
        .index()
        .tensor("blk.1.ffn_up.weight")
        .unwrap()
        .clone();
    let (at, len) = (t.offset + 100, 16);
    m.lock_tensor("blk.0.attn_k.weight").unwrap();
    m.protect_range(0, at, len).unwrap();
    // A long chat template makes the header longer: every tensor moves.
    m.set_metadata(
        "tokenizer.chat_template",
        MetaValue::string("x".repeat(10_000)),
    )
    .unwrap();
    m.save(&mut |_| true).unwrap();
    let moved = m
        .tensors()
        .unwrap()
        .index()
        .tensor("blk.1.ffn_up.weight")
        .unwrap()
        .offset;
    assert!(
        moved > t.offset,
        "the tensor data moved ({} → {moved})",
        t.offset
    );
    let now = moved + 100;
    assert!(
        m.modify_weight("blk.0.attn_k.weight", 0, 0.5).is_err(),
        "the tensor lock is in force after the save"
    );
    let region = m.region().unwrap();
    assert!(
        m.engine().memory().write(region, now + 4, &[1]).is_err(),
        "the range lock followed its bytes"
    );
    assert!(m.engine().memory().write(region, now + len, &[1]).is_ok());
    m.engine().undo().unwrap();
    // Exported at the original offset: a fresh copy of the model has the bytes there.
    let c = m.export_configuration().unwrap();
    assert!(c.protections.contains(&Protection::Range {
        shard: 0,
        offset: at,
        len
    }));
    assert!(c.protections.contains(&Protection::Tensor {
        name: "blk.0.attn_k.weight".into()
    }));
    assert_eq!(m.unprotect_range(0, now, len).unwrap(), 1);
    assert!(!m
        .export_configuration()
        .unwrap()
        .protections
        .iter()
        .any(|p| matches!(p, Protection::Range { .. })));
    assert!(m.engine().memory().write(region, now + 4, &[1]).is_ok());
}

/// Found by the `meta_value` fuzz target: a long F64 array element typed by a user was parsed to
/// a neighbour of the nearest f64 (serde_json's fast float path), so its edit text read back as
/// another value. Every element is now the nearest f64, as Rust's own parser gives.
#[test]
fn typed_float_array_elements_are_the_nearest_float() {
    use hotpatch_core::metadata::{edit_text, parse_array};
    use hotpatch_gguf::{MetaArray, ValueType};
    let big = format!("1{}e-7", "4".repeat(110));
    let text = format!("[2.5, 7772.5, 2, {big}, 0.1, 1e-310]");
    let v = parse_array("k", ValueType::F64, &text).unwrap();
    let MetaValue::Array(MetaArray::F64(xs)) = &v else {
        panic!("an F64 array: {v:?}");
    };
    let want: Vec<f64> = ["2.5", "7772.5", "2", big.as_str(), "0.1", "1e-310"]
        .iter()
        .map(|s| s.parse::<f64>().unwrap())
        .collect();
    assert_eq!(
        xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    let shown = edit_text(&v).unwrap();
    assert_eq!(
        parse_array("k", ValueType::F64, &shown).unwrap(),
        v,
        "{shown}"
    );
}
