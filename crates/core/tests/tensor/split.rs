//! Split models (`name-0000k-of-0000n.gguf`, written by gguf-py's GGUFWriter as llama.cpp's
//! gguf-split does) attached as one model: every tensor of every shard readable and editable,
//! saves writing each shard, checked against gguf-py reading the shard files and against the
//! same edits made on the single-file model.

use std::path::{Path, PathBuf};

use hotpatch_core::manager::Manager;
use hotpatch_core::session::split_destinations;
use hotpatch_core::Mode;
use hotpatch_gguf::{GgufModel, MetaValue};
use serde_json::Value;

use crate::common::*;

/// Shard `k` (1-based) of 4 of the split demo `dir/m.gguf`.
fn shard(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("m-{k:05}-of-00004.gguf"))
}

/// The demo model whole (`whole.gguf`) and split into 4 shards of at most 12 tensors.
fn models(dir: &Path) -> PathBuf {
    demo_model(dir, "m.gguf", &["--split-max-tensors", "12"]);
    assert!(
        shard(dir, 4).exists(),
        "39 tensors, 12 per shard → 4 shards"
    );
    demo_model(dir, "whole.gguf", &[])
}

fn dump(model: &Path) -> Value {
    let out = run_py("tests/oracle/gguf_dump.py", &[model.to_str().unwrap()]);
    serde_json::from_str(&out).expect("gguf_dump JSON")
}

/// A tensor's data bytes as a file on disk holds them (split or not).
fn data_on_disk(first: &Path, name: &str) -> Vec<u8> {
    let m = GgufModel::open(first).expect("opens");
    let t = m.tensor(name).expect("tensor").clone();
    m.tensor_data(&t).expect("in range").to_vec()
}

// Tensors of the demo in the first, second and last shard (see the generator's layout).
const IN_FIRST: &str = "blk.0.attn_q.weight"; // Q4_K
const IN_SECOND: &str = "blk.1.attn_output.weight"; // Q2_K
const IN_LAST: &str = "blk.3.ffn_down.weight"; // Q4_K

#[test]
fn any_shard_attaches_the_whole_model_with_every_tensor_readable() {
    let dir = tempdir();
    let whole = models(dir.path());
    let w = Manager::initialize();
    w.attach(&whole, Mode::Staged).unwrap();
    let m = Manager::initialize();
    let info = m.attach(shard(dir.path(), 3), Mode::Staged).unwrap();
    assert_eq!(
        info.path,
        shard(dir.path(), 1),
        "the model is named by its first shard"
    );
    assert_eq!(m.shards().unwrap().len(), 4);
    let (lw, ls) = (w.tensors().unwrap(), m.tensors().unwrap());
    assert_eq!(info.tensors, lw.index().tensors.len());
    assert_eq!(ls.index().tensors.len(), lw.index().tensors.len());
    assert_eq!(
        ls.index().architecture(),
        Some("llama"),
        "metadata of shard 1"
    );
    let last = ls.index().tensor(IN_LAST).unwrap();
    assert_eq!(last.shard, 3);
    assert_eq!(ls.region_of(last), m.shards().unwrap()[3].1);
    for t in &lw.index().tensors {
        assert_eq!(
            ls.extract(&t.name, None).unwrap(),
            lw.extract(&t.name, None).unwrap(),
            "{}: same values through its shard as in the single file",
            t.name
        );
    }
    // gguf-py reading the last shard file agrees with the value read through the session.
    let py = oracle_values(&shard(dir.path(), 4), IN_LAST, dir.path());
    assert_eq!(ls.extract(IN_LAST, None).unwrap(), py);
}

#[test]
fn edits_in_several_shards_save_into_each_file_as_on_the_single_file() {
    let dir = tempdir();
    let whole = models(dir.path());
    let before: Vec<Vec<u8>> = (1..=4)
        .map(|k| std::fs::read(shard(dir.path(), k)).unwrap())
        .collect();
    let edits = [
        (IN_FIRST, 17u64, 0.5f32),
        (IN_SECOND, 300, -0.25),
        (IN_LAST, 1000, 0.125),
    ];
    let (w, m) = (Manager::initialize(), Manager::initialize());
    w.attach(&whole, Mode::Staged).unwrap();
    m.attach(shard(dir.path(), 1), Mode::Staged).unwrap();
    for (name, i, v) in edits {
        let a = w.modify_weight(name, i, v).unwrap();
        let b = m.modify_weight(name, i, v).unwrap();
        assert_eq!(a.stored, b.stored, "{name}: same stored value");
        assert_eq!(a.side_effects, b.side_effects, "{name}: same block effects");
    }
    // One undo step per edit, the last undone and redone across shards.
    m.undo().unwrap();
    assert_ne!(
        m.tensors().unwrap().value(IN_LAST, 1000).unwrap(),
        w.tensors().unwrap().value(IN_LAST, 1000).unwrap()
    );
    m.redo().unwrap();
    let mut reports = Vec::new();
    w.save(&mut |_| true).unwrap();
    let out = m
        .save(&mut |p| {
            reports.push(p);
            true
        })
        .unwrap();
    assert!(
        !out.rewritten,
        "no metadata pending: each shard saved in place"
    );
    assert!(reports.windows(2).all(|p| p[0].done <= p[1].done));
    let total: u64 = before.iter().map(|b| b.len() as u64).sum();
    assert!(reports.iter().all(|p| p.total == total && p.done <= total));
    // Shard 4 changed, shard 3 (no edit) is byte-identical.
    assert_eq!(std::fs::read(shard(dir.path(), 3)).unwrap(), before[2]);
    for k in [1, 2, 4] {
        assert_ne!(std::fs::read(shard(dir.path(), k)).unwrap(), before[k - 1]);
    }
    // Every edited tensor holds the single-file model's bytes, as read by an independent
    // reader; gguf-py reads the stored values from the shard files.
    for (name, i, _) in edits {
        assert_eq!(
            data_on_disk(&shard(dir.path(), 1), name),
            data_on_disk(&whole, name),
            "{name}"
        );
        let t = GgufModel::open(shard(dir.path(), 1)).unwrap();
        let k = t.tensor(name).unwrap().shard + 1;
        let py = oracle_values(&shard(dir.path(), k), name, dir.path());
        assert_eq!(py[i as usize], m.tensors().unwrap().value(name, i).unwrap());
    }
}

#[test]
fn save_as_writes_a_split_model_of_as_many_shards() {
    let dir = tempdir();
    models(dir.path());
    let m = Manager::initialize();
    m.attach(shard(dir.path(), 2), Mode::Staged).unwrap();
    m.modify_weight(IN_LAST, 5, 1.0).unwrap();
    let stored = m.tensors().unwrap().value(IN_LAST, 5).unwrap();
    let original = std::fs::read(shard(dir.path(), 4)).unwrap();
    let dest = dir.path().join("copy.gguf");
    let out = m.save_as(&dest, &mut |_| true).unwrap();
    let first = dir.path().join("copy-00001-of-00004.gguf");
    assert_eq!(out.path, first);
    assert_eq!(
        m.attached().unwrap().0,
        first,
        "the copy is the open model now"
    );
    assert!(!dest.exists(), "no file under the plain name");
    assert_eq!(std::fs::read(shard(dir.path(), 4)).unwrap(), original);
    let copy = GgufModel::open(dir.path().join("copy-00003-of-00004.gguf")).unwrap();
    assert_eq!(copy.shards.len(), 4);
    let py = oracle_values(
        &dir.path().join("copy-00004-of-00004.gguf"),
        IN_LAST,
        dir.path(),
    );
    assert_eq!(py[5], stored);
    // The same names again (the open model's own files) are refused, nothing written.
    let err = m.save_as(&first, &mut |_| true).unwrap_err();
    assert!(err.to_string().contains("use Save"), "{err}");
    assert_eq!(
        split_destinations(&dir.path().join("x-00002-of-00004.gguf"), 4)[3],
        dir.path().join("x-00004-of-00004.gguf")
    );
    assert_eq!(
        split_destinations(&dir.path().join("x-00001-of-00002.gguf"), 4)[0],
        dir.path().join("x-00001-of-00002-00001-of-00004.gguf"),
        "a shard name of another count is kept whole"
    );
}

#[test]
fn metadata_edits_rewrite_the_first_shard_and_keep_the_split() {
    let dir = tempdir();
    models(dir.path());
    let before: Vec<Value> = (1..=4).map(|k| dump(&shard(dir.path(), k))).collect();
    let tail: Vec<Vec<u8>> = (2..=4)
        .map(|k| std::fs::read(shard(dir.path(), k)).unwrap())
        .collect();
    let m = Manager::initialize();
    m.attach(shard(dir.path(), 1), Mode::Staged).unwrap();
    let err = m
        .set_metadata("split.count", MetaValue::U16(2))
        .unwrap_err();
    assert!(err.to_string().contains("split.count"), "{err}");
    assert!(m.remove_metadata("split.no").is_err());
    m.set_metadata("tokenizer.chat_template", MetaValue::string("{{ x }}"))
        .unwrap();
    m.modify_weight(IN_SECOND, 3, 0.75).unwrap();
    let stored = m.tensors().unwrap().value(IN_SECOND, 3).unwrap();
    let out = m.save(&mut |_| true).unwrap();
    assert!(out.rewritten && out.reattached);
    assert_eq!(
        m.shards().unwrap().len(),
        4,
        "attached again as a split model"
    );
    let first = dump(&shard(dir.path(), 1));
    assert_eq!(
        first["metadata"]["tokenizer.chat_template"]["value"],
        "{{ x }}"
    );
    for k in ["split.no", "split.count", "split.tensors.count"] {
        assert_eq!(first["metadata"][k], before[0]["metadata"][k], "{k}");
    }
    assert_eq!(
        first["tensors"], before[0]["tensors"],
        "shard 1's tensors kept"
    );
    // Shard 2 got the weight edit in place; shards 3 and 4 are untouched.
    assert_eq!(std::fs::read(shard(dir.path(), 3)).unwrap(), tail[1]);
    assert_eq!(std::fs::read(shard(dir.path(), 4)).unwrap(), tail[2]);
    let py = oracle_values(&shard(dir.path(), 2), IN_SECOND, dir.path());
    assert_eq!(py[3], stored);
    assert_eq!(m.tensors().unwrap().value(IN_SECOND, 3).unwrap(), stored);
}

#[test]
fn a_configuration_from_a_split_model_applies_to_a_fresh_copy() {
    let dir = tempdir();
    models(dir.path());
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for k in 1..=4 {
        std::fs::copy(shard(dir.path(), k), shard(&copy, k)).unwrap();
    }
    let m = Manager::initialize();
    m.attach(shard(dir.path(), 1), Mode::Staged).unwrap();
    m.modify_weight(IN_FIRST, 2, 0.5).unwrap();
    m.modify_weight(IN_LAST, 9, -0.5).unwrap();
    m.lock_tensor(IN_SECOND).unwrap();
    // Raw bytes of the last file (inside the data of its first tensor) and a protected range of
    // the third, recorded with their shard.
    let last = m
        .tensors()
        .unwrap()
        .index()
        .tensor(IN_LAST)
        .unwrap()
        .clone();
    let at = last.offset + 64;
    m.bytes_op(3, "test", &[(at, 2)], |b, r| b.xor(r, at, 2, &[0x01, 0x80]))
        .unwrap();
    let third = m.shard_region(2).unwrap();
    let guarded = m.engine().gguf(third).unwrap().data_offset;
    m.protect_range(2, guarded, 32).unwrap();
    assert!(
        m.patch_bytes(2, guarded, &[0]).is_err(),
        "the range is protected"
    );
    let e = m.patch_bytes(4, 0, &[0]).unwrap_err();
    assert!(e.to_string().contains("the model has 4 file(s)"), "{e}");
    assert!(
        m.modify_weight(IN_SECOND, 0, 1.0).is_err(),
        "a locked tensor of shard 2 refuses edits"
    );
    let c = m.export_configuration().unwrap();
    assert_eq!(c.byte_patches.len(), 1);
    assert_eq!((c.byte_patches[0].shard, c.byte_patches[0].offset), (3, at));
    assert!(c
        .protections
        .contains(&hotpatch_core::config::Protection::Range {
            shard: 2,
            offset: guarded,
            len: 32
        }));
    assert!(
        c.to_json().contains("\"shard\": 3"),
        "the file is named in the JSON"
    );
    m.save(&mut |_| true).unwrap();

    let f = Manager::initialize();
    f.attach(shard(&copy, 4), Mode::Staged).unwrap();
    let (_, preview) = f.import_configuration(&c.to_json()).unwrap();
    assert!(preview.applicable(), "{preview:?}");
    // A byte patch naming a file the model does not have is a mismatch that names it.
    let mut bad = c.clone();
    bad.byte_patches[0].shard = 9;
    let (_, p) = f.import_configuration(&bad.to_json()).unwrap();
    assert!(!p.applicable());
    assert!(
        p.items
            .iter()
            .any(|i| i.detail.contains("file 10 does not exist")),
        "{p:?}"
    );
    f.apply_configuration(&c, "test").unwrap();
    assert!(f.modify_weight(IN_SECOND, 0, 1.0).is_err(), "lock imported");
    let third = f.shard_region(2).unwrap();
    assert!(
        f.engine().memory().write(third, guarded + 8, &[1]).is_err(),
        "range protection imported on the third file"
    );
    f.save(&mut |_| true).unwrap();
    for k in 1..=4 {
        assert_eq!(
            std::fs::read(shard(&copy, k)).unwrap(),
            std::fs::read(shard(dir.path(), k)).unwrap(),
            "shard {k} byte-identical to the edited original"
        );
    }
    // The recipe is tied to the split model's files: the single file is another model.
    let whole = Manager::initialize();
    let info = whole
        .attach(dir.path().join("whole.gguf"), Mode::Staged)
        .unwrap();
    assert_ne!(info.identity.fingerprint, c.model.unwrap().fingerprint);
}

#[test]
fn a_missing_or_foreign_shard_is_named() {
    let dir = tempdir();
    models(dir.path());
    std::fs::rename(shard(dir.path(), 3), dir.path().join("aside.gguf")).unwrap();
    let m = Manager::initialize();
    let err = m.attach(shard(dir.path(), 1), Mode::Staged).unwrap_err();
    assert!(err.to_string().contains("m-00003-of-00004.gguf"), "{err}");
    assert!(m.region().is_err(), "nothing attached");
    // A shard of another model in its place: its split.no says where it belongs.
    std::fs::copy(shard(dir.path(), 2), shard(dir.path(), 3)).unwrap();
    let err = m.attach(shard(dir.path(), 1), Mode::Staged).unwrap_err();
    assert!(err.to_string().contains("shard 3 of 4"), "{err}");
    assert!(m.engine().regions().is_empty(), "no shard left mapped");
}

#[test]
fn live_mode_maps_every_shard_shared() {
    let dir = tempdir();
    models(dir.path());
    let m = Manager::initialize();
    m.attach(shard(dir.path(), 1), Mode::Live).unwrap();
    m.modify_weight(IN_LAST, 0, 0.25).unwrap();
    let stored = m.tensors().unwrap().value(IN_LAST, 0).unwrap();
    // No save: a live write is in the file (the page cache a running server maps) at once.
    let py = oracle_values(&shard(dir.path(), 4), IN_LAST, dir.path());
    assert_eq!(py[0], stored);
}
