//! The vocabulary's token texts through the session (`Manager::token_texts`): the file's
//! `tokenizer.ggml.tokens`, then a pending edit of it, then undo.

use hotpatch_core::manager::Manager;
use hotpatch_core::Mode;
use hotpatch_gguf::{MetaArray, MetaValue, StringArray};

use crate::common::*;

#[test]
fn token_texts_follow_the_session() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    assert!(m.token_texts(0, 1).is_err(), "nothing attached");
    m.attach(&model, Mode::Staged).unwrap();

    // scripts/make_demo_model.py: <unk> <s> </s>, 256 byte tokens, then "▁" + 20 words.
    let t = m.token_texts(0, 3).unwrap();
    assert_eq!(t.vocab, 279);
    assert_eq!(t.texts, ["<unk>", "<s>", "</s>"]);
    let t = m.token_texts(258, 3).unwrap();
    assert_eq!(t.start, 258);
    assert_eq!(t.texts, ["<0xFF>", "\u{2581}hello", "\u{2581}world"]);
    assert_eq!(m.token_texts(278, 5).unwrap().texts, ["\u{2581}undo"]);

    // A pending edit of the vocabulary is what the session shows; undo brings the file's back.
    let words: StringArray = ["x", "y"].iter().collect();
    m.set_metadata(
        "tokenizer.ggml.tokens",
        MetaValue::Array(MetaArray::String(words)),
    )
    .unwrap();
    let t = m.token_texts(0, 10).unwrap();
    assert_eq!(
        (t.vocab, t.texts.clone()),
        (2, vec!["x".to_string(), "y".to_string()])
    );
    m.undo().unwrap();
    assert_eq!(m.token_texts(0, 1).unwrap().texts, ["<unk>"]);
    m.remove_metadata("tokenizer.ggml.tokens").unwrap();
    assert_eq!(m.token_texts(0, 1).unwrap().vocab, 0);
}
