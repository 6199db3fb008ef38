//! Split models written by gguf-py's GGUFWriter (`split_max_tensors`).

use hotpatch_gguf::{GgufError, GgufFile, GgufModel};

use crate::common::*;

#[test]
fn split_model_opens_as_one() {
    let dir = tempdir();
    let whole = make_fixture(dir.path(), "whole.gguf", &["--seed", "7"]);
    make_fixture(
        dir.path(),
        "m.gguf",
        &["--seed", "7", "--split-max-tensors", "10"],
    );
    let first = dir.path().join("m-00001-of-00004.gguf");
    assert!(
        first.exists(),
        "gguf-py names shards -0000k-of-0000n (33 tensors, 10 per shard → 4)"
    );
    let whole = GgufFile::open(&whole).expect("single file parses");
    for start in ["m-00001-of-00004.gguf", "m-00003-of-00004.gguf"] {
        let m = GgufModel::open(dir.path().join(start)).expect("split model opens from any shard");
        assert_eq!(m.shards.len(), 4);
        assert_eq!(
            m.tensors.len(),
            whole.index.tensors.len(),
            "every tensor of every shard"
        );
        for (t, w) in m.tensors.iter().zip(&whole.index.tensors) {
            assert_eq!((&t.name, &t.dims, t.ty), (&w.name, &w.dims, w.ty));
            assert_eq!(
                m.tensor_data(t).expect("in range"),
                whole.tensor_data(w).expect("in range"),
                "{}: same bytes through its shard ({}) as in the single-file model",
                t.name,
                t.shard
            );
        }
        assert_eq!(m.tensors[0].shard, 0);
        assert_eq!(m.tensors[32].shard, 3, "tensor 33 is in the 4th shard");
    }
}

#[test]
fn missing_shard_is_named() {
    let dir = tempdir();
    make_fixture(
        dir.path(),
        "m.gguf",
        &["--small", "--split-max-tensors", "1"],
    );
    let second = dir.path().join("m-00002-of-00002.gguf");
    std::fs::remove_file(&second).expect("remove shard 2");
    let err =
        GgufModel::open(dir.path().join("m-00001-of-00002.gguf")).expect_err("a shard is missing");
    assert!(matches!(err, GgufError::Split { .. }), "{err}");
    assert!(
        err.to_string().contains("m-00002-of-00002.gguf"),
        "error names the missing file: {err}"
    );
}

#[test]
fn single_file_model_is_one_shard() {
    let dir = tempdir();
    let p = make_fixture(dir.path(), "one.gguf", &["--small"]);
    let m = GgufModel::open(&p).expect("opens");
    assert!(!m.is_split());
    assert_eq!(m.tensors.len(), 2);
}
