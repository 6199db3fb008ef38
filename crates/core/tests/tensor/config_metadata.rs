//! Configurations carry metadata edits: export after saves (recipe and fingerprint of the
//! original), preview (current → new, mismatch, already applied), apply as one undo step with
//! the tensor changes, Save writes them; files checked with gguf-py (tests/oracle/gguf_dump.py).

use std::path::Path;

use hotpatch_core::config::{Configuration, ItemStatus, TypedValue};
use hotpatch_core::manager::Manager;
use hotpatch_core::metadata::EntryStatus;
use hotpatch_core::Mode;
use hotpatch_gguf::{MetaArray, MetaValue};
use serde_json::Value;

use crate::common::*;

const TEMPLATE: &str = "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{% endfor %}";

fn dump(model: &Path) -> Value {
    let out = run_py("tests/oracle/gguf_dump.py", &[model.to_str().unwrap()]);
    serde_json::from_str(&out).expect("gguf_dump JSON")
}

fn attach(p: &Path) -> Manager {
    let m = Manager::initialize();
    m.attach(p, Mode::Staged).unwrap();
    m
}

fn staged(m: &Manager, key: &str) -> Option<(MetaValue, EntryStatus)> {
    m.metadata_view()
        .unwrap()
        .into_iter()
        .find(|e| e.key == key)
        .map(|e| (e.value, e.status))
}

#[test]
fn a_recipe_survives_save_and_replays_on_a_fresh_copy_byte_for_byte() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    std::fs::copy(&model, dir.path().join("fresh.gguf")).unwrap();
    let fresh = dir.path().join("fresh.gguf");
    // The identity a fresh copy of the original has (another manager, nothing edited).
    let original_identity = attach(&fresh)
        .export_configuration()
        .unwrap()
        .model
        .unwrap();

    // Edit a weight, the chat template, a 64-bit value and remove a key; Save (rewrites the
    // file and re-attaches), then one more metadata edit after the save.
    let m = attach(&model);
    m.modify_weight("blk.1.ffn_down.weight", 3, 0.25).unwrap();
    m.set_metadata("tokenizer.chat_template", MetaValue::string(TEMPLATE))
        .unwrap();
    m.set_metadata("hotpatch.big", MetaValue::U64(u64::MAX - 1))
        .unwrap();
    // Undone: not part of the recipe.
    m.set_metadata("hotpatch.undone", MetaValue::Bool(true))
        .unwrap();
    m.undo().unwrap();
    let rep = m.save(&mut |_| true).unwrap();
    assert!(rep.rewritten && rep.reattached);
    m.remove_metadata("general.name").unwrap();
    m.set_metadata(
        "hotpatch.list",
        MetaValue::Array(MetaArray::I64(vec![i64::MIN, 7])),
    )
    .unwrap();
    m.save(&mut |_| true).unwrap();

    let c = m.export_configuration().unwrap();
    assert_eq!(c.version, 2, "a file with metadata edits is version 2");
    assert_eq!(
        c.model.as_ref().unwrap().fingerprint,
        original_identity.fingerprint,
        "the recipe names the model it applies to, not the rewritten file"
    );
    assert_eq!(
        c.tensor_patches.len(),
        1,
        "the weight edit survives the save"
    );
    let keys: Vec<&str> = c.metadata.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "tokenizer.chat_template",
            "hotpatch.big",
            "general.name",
            "hotpatch.list"
        ]
    );
    assert!(c.metadata[2].patched.is_none(), "a removal");
    assert!(
        c.metadata[2].original.is_some(),
        "it expects the name there"
    );
    assert!(
        c.metadata[1].original.is_none(),
        "an added key expects absence"
    );
    let text = c.to_json();
    assert!(
        text.contains("\"18446744073709551614\""),
        "64-bit as a decimal string"
    );
    assert!(text.contains("\"-9223372036854775808\""));
    let back = Configuration::from_json(&text).unwrap();
    assert_eq!(back, c, "export round-trips");

    // A fresh copy: the preview lists every metadata edit as current → new.
    let m2 = attach(&fresh);
    let (c2, p) = m2.import_configuration(&text).unwrap();
    assert_eq!(p.same_file, Some(true));
    let meta: Vec<_> = p
        .items
        .iter()
        .filter(|i| i.item.starts_with("metadata["))
        .collect();
    assert_eq!(meta.len(), 4);
    assert!(
        meta.iter().all(|i| i.status == ItemStatus::WillChange),
        "{meta:?}"
    );
    assert_eq!(meta[0].target, "tokenizer.chat_template");
    assert!(
        meta[1]
            .detail
            .starts_with("absent → UINT64 18446744073709551614"),
        "{}",
        meta[1].detail
    );
    assert!(meta[2].detail.ends_with("→ absent"), "{}", meta[2].detail);

    let rep = m2.apply_configuration(&c2, "recipe.json").unwrap();
    assert!(rep.change.is_some() && rep.metadata_step.is_some());
    assert_eq!(rep.metadata.len(), 4);
    // Pending metadata in the Model screen's view.
    let (tpl, status) = staged(&m2, "tokenizer.chat_template").unwrap();
    assert_eq!(tpl.as_str(), Some(TEMPLATE));
    assert_ne!(status, EntryStatus::Unchanged, "pending until Save");
    assert_eq!(staged(&m2, "general.name").unwrap().1, EntryStatus::Removed);

    // ONE undo reverts the tensor edit and every metadata edit; one redo brings them back.
    let w = |m: &Manager| {
        m.tensors()
            .unwrap()
            .extract("blk.1.ffn_down.weight", Some(3..4))
            .unwrap()[0]
    };
    assert_eq!(w(&m2), 0.25);
    m2.undo().unwrap();
    assert!(!m2.can_undo(), "the import was one step");
    assert_ne!(w(&m2), 0.25);
    assert!(m2.metadata_journal().is_empty());
    assert!(m2.export_configuration().unwrap().metadata.is_empty());
    m2.redo().unwrap();
    assert_eq!(w(&m2), 0.25);
    assert_eq!(m2.metadata_journal().pending().len(), 4);
    assert!(!m2.can_redo());

    // Save writes them: the file is byte-identical to the edited-and-saved original.
    m2.save(&mut |_| true).unwrap();
    assert_eq!(
        std::fs::read(&fresh).unwrap(),
        std::fs::read(&model).unwrap(),
        "the replayed file is byte-identical"
    );
    let d = dump(&fresh);
    assert_eq!(d["metadata"]["tokenizer.chat_template"]["value"], TEMPLATE);
    assert_eq!(d["metadata"]["hotpatch.big"]["type"], "UINT64");
    assert_eq!(
        d["metadata"]["hotpatch.big"]["value"].as_u64(),
        Some(u64::MAX - 1)
    );
    assert!(d["metadata"].get("general.name").is_none());
    assert!(d["metadata"].get("hotpatch.undone").is_none());
}

#[test]
fn preview_says_what_does_not_match_and_apply_refuses_it() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = attach(&model);
    let name = staged(&m, "general.name").unwrap().0;
    let json = |original: &str| {
        format!(
            r#"{{"version": 2, "metadata": [
                {{"key": "general.name", "original": {original}, "patched": {{"type": "STRING", "value": "renamed"}}}},
                {{"key": "hotpatch.x", "original": null, "patched": {{"type": "FLOAT32", "value": 0.1}}}}
            ]}}"#
        )
    };
    let wrong = json(r#"{"type": "STRING", "value": "some other model"}"#);
    let (c, p) = m.import_configuration(&wrong).unwrap();
    assert!(!p.applicable());
    let item = &p.items[0];
    assert_eq!(item.status, ItemStatus::Mismatch);
    assert!(
        item.detail
            .contains("expected STRING \"some other model\" but the model holds STRING"),
        "{}",
        item.detail
    );
    assert_eq!(p.items[1].status, ItemStatus::WillChange);
    let e = m.apply_configuration(&c, "wrong.json").unwrap_err();
    assert!(e.to_string().contains("metadata[0] (general.name)"), "{e}");
    assert!(m.metadata_journal().is_empty(), "nothing staged");

    // The right original applies; the same file again is "already applied" and stages nothing.
    let right = json(&serde_json::to_string(&TypedValue(name)).unwrap());
    let (c, p) = m.import_configuration(&right).unwrap();
    assert!(p.applicable(), "{p:?}");
    let rep = m.apply_configuration(&c, "right.json").unwrap();
    assert_eq!(rep.change, None, "no tensor change");
    assert!(rep.metadata_step.is_some());
    assert_eq!(
        staged(&m, "hotpatch.x").unwrap().0,
        MetaValue::F32(0.1),
        "FLOAT32 0.1 read back exactly"
    );
    let (c, p) = m.import_configuration(&right).unwrap();
    assert!(
        p.items
            .iter()
            .all(|i| i.status == ItemStatus::AlreadyApplied),
        "{p:?}"
    );
    let rep = m.apply_configuration(&c, "right.json").unwrap();
    assert_eq!(rep.metadata_already_applied, 2);
    assert_eq!(rep.metadata_step, None);
    // A metadata-only import is one undo step too.
    assert_eq!(m.metadata_journal().entries().0.len(), 1);
    m.undo().unwrap();
    assert!(m.metadata_journal().is_empty());
}

#[test]
fn bad_metadata_sections_are_refused_naming_the_field() {
    let cases = [
        (
            r#"{"version": 1, "metadata": [{"key": "a", "original": null, "patched": {"type": "BOOL", "value": true}}]}"#,
            "metadata: a metadata section needs version 2",
        ),
        (r#"{"version": 4}"#, "version: version 4 is not supported"),
        (
            r#"{"version": 2, "metadata": [{"key": "a", "patched": {"type": "BOOL", "value": true}}]}"#,
            "metadata[0]: missing field `original`",
        ),
        (
            r#"{"version": 2, "metadata": [{"key": "a", "original": null, "patched": null, "x": 1}]}"#,
            "metadata[0].x: unknown field `x`",
        ),
        (
            r#"{"version": 2, "metadata": [{"key": "a b", "original": null, "patched": {"type": "BOOL", "value": true}}]}"#,
            "metadata[0].key: key 'a b' contains ' '",
        ),
        (
            r#"{"version": 2, "metadata": [{"key": "a", "original": null, "patched": {"type": "UINT8", "value": 256}}]}"#,
            "metadata[0].patched: value: 256 is out of range 0..=255",
        ),
        (
            r#"{"version": 2, "metadata": [{"key": "a", "original": null, "patched": {"type": "UINT64", "value": 1.5}}]}"#,
            "metadata[0].patched: value: '1.5' is not a whole number",
        ),
        (
            r#"{"version": 2, "metadata": [{"key": "general.alignment", "original": null, "patched": {"type": "UINT32", "value": 3}}]}"#,
            "metadata[0].patched: general.alignment must be a UINT32 power of two",
        ),
        (
            r#"{"version": 2, "metadata": [{"key": "a", "original": null, "patched": null}]}"#,
            "metadata[0].patched: both original and patched are null",
        ),
    ];
    for (text, want) in cases {
        let e = Configuration::from_json(text).unwrap_err().to_string();
        assert!(e.starts_with(want), "{text}\n  gave: {e}\n  want: {want}");
    }
    // A version 1 file without metadata still reads.
    assert!(Configuration::from_json(r#"{"version": 1}"#).is_ok());
}

#[test]
fn a_split_model_takes_metadata_edits_but_not_its_split_keys() {
    let dir = tempdir();
    demo_model(dir.path(), "m.gguf", &["--split-max-tensors", "12"]);
    let first = dir.path().join("m-00001-of-00004.gguf");
    let m = attach(&first);
    let count = staged(&m, "split.count")
        .expect("a split model has split.count")
        .0;
    let text = format!(
        r#"{{"version": 2, "metadata": [
            {{"key": "hotpatch.note", "original": null, "patched": {{"type": "STRING", "value": "split"}}}},
            {{"key": "split.count", "original": {}, "patched": {{"type": "UINT16", "value": 9}}}}
        ]}}"#,
        serde_json::to_string(&TypedValue(count)).unwrap()
    );
    let (c, p) = m.import_configuration(&text).unwrap();
    assert_eq!(p.items[0].status, ItemStatus::WillChange);
    assert_eq!(p.items[1].status, ItemStatus::Mismatch);
    assert!(
        p.items[1].detail.contains("cannot be edited"),
        "{}",
        p.items[1].detail
    );
    assert!(m.apply_configuration(&c, "split.json").is_err());
    assert!(m.metadata_journal().is_empty(), "nothing staged");
}

#[test]
fn undo_through_an_import_takes_its_metadata_and_later_edits_with_it() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = attach(&model);
    let text = r#"{"version": 2,
        "tensor_patches": [{"tensor": "output_norm.weight", "transform": {"op": "scale", "factor": 2}}],
        "metadata": [{"key": "hotpatch.a", "original": null, "patched": {"type": "INT8", "value": -1}}]}"#;
    let (c, _) = m.import_configuration(text).unwrap();
    let rep = m.apply_configuration(&c, "a.json").unwrap();
    let change = rep.change.unwrap();
    m.set_metadata("hotpatch.b", MetaValue::Bool(false))
        .unwrap();
    assert_eq!(m.metadata_journal().pending().len(), 2);
    assert_eq!(
        m.undo_through(change).unwrap(),
        2,
        "the later edit, then the import"
    );
    assert!(
        m.metadata_journal().is_empty(),
        "no orphaned metadata of the import"
    );
    assert!(!m.can_undo());
    assert!(m.undo_through(change).is_err(), "no longer in the history");
    // Redo brings the import back whole (tensor and metadata), then the later edit.
    m.redo().unwrap();
    assert_eq!(staged(&m, "hotpatch.a").unwrap().0, MetaValue::I8(-1));
    assert!(staged(&m, "hotpatch.b").is_none());
    m.redo().unwrap();
    assert_eq!(staged(&m, "hotpatch.b").unwrap().0, MetaValue::Bool(false));
}

#[test]
fn byte_patches_made_after_a_header_rewrite_are_recorded_at_the_original_offsets() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let fresh = dir.path().join("fresh.gguf");
    std::fs::copy(&model, &fresh).unwrap();
    let tensor_at =
        |m: &Manager, name: &str| m.tensors().unwrap().index().tensor(name).unwrap().offset;

    let m = attach(&model);
    let before = tensor_at(&m, "output_norm.weight");
    // A longer template: the header grows, every tensor moves.
    m.set_metadata(
        "tokenizer.chat_template",
        MetaValue::string(TEMPLATE.repeat(20)),
    )
    .unwrap();
    m.save(&mut |_| true).unwrap();
    let after = tensor_at(&m, "output_norm.weight");
    assert!(after > before, "the tensor moved ({before} → {after})");
    m.patch_bytes(0, after + 8, &3.0f32.to_le_bytes()).unwrap();
    m.save(&mut |_| true).unwrap();

    let c = m.export_configuration().unwrap();
    assert_eq!(c.byte_patches.len(), 1);
    assert_eq!(
        c.byte_patches[0].offset,
        before + 8,
        "recorded where a fresh copy has it"
    );
    let m2 = attach(&fresh);
    let (c2, p) = m2.import_configuration(&c.to_json()).unwrap();
    assert!(p.applicable(), "{p:?}");
    m2.apply_configuration(&c2, "moved.json").unwrap();
    m2.save(&mut |_| true).unwrap();
    assert_eq!(
        std::fs::read(&fresh).unwrap(),
        std::fs::read(&model).unwrap()
    );
    assert_eq!(
        oracle_values(&fresh, "output_norm.weight", dir.path())[2],
        3.0,
        "gguf-py reads the written float"
    );
}
