//! The vocabulary's token texts, a range at a time: the Tensors screen shows the text of token
//! `id` beside row `id` of `token_embd.weight` and `output.weight` (their rows are token ids).
//!
//! The vocabulary is the metadata array `tokenizer.ggml.tokens`, as the session sees it
//! (a pending edit of that key included). A real vocabulary has 128k–262k entries: a range is
//! read straight from the compact [`StringArray`](hotpatch_gguf::StringArray) without copying
//! the array or building the whole metadata view.

use hotpatch_gguf::{MetaArray, MetaEdit, MetaValue};

use crate::manager::{Manager, ManagerError};

/// The metadata key of the vocabulary.
pub const TOKENS_KEY: &str = "tokenizer.ggml.tokens";

/// Most token texts one call returns.
pub const MAX_TOKEN_RANGE: u64 = 4096;

/// Token texts `start ..` of a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTexts {
    /// Tokens in the whole vocabulary (0 when the model has none).
    pub vocab: u64,
    /// The first id of `texts`.
    pub start: u64,
    /// The texts of ids `start .. start + texts.len()` (bytes that are not UTF-8 replaced by
    /// U+FFFD). Shorter than asked at the end of the vocabulary; at most [`MAX_TOKEN_RANGE`].
    pub texts: Vec<String>,
}

/// Texts of ids `start .. start + count` of `tokens` (the value of `tokenizer.ggml.tokens`;
/// `None`, or a value that is not an array of strings, is an empty vocabulary). Ids past the
/// end are left out; `count` is capped at [`MAX_TOKEN_RANGE`].
pub fn token_texts_of(tokens: Option<&MetaValue>, start: u64, count: u64) -> TokenTexts {
    let Some(MetaArray::String(strings)) = tokens.and_then(MetaValue::as_array) else {
        return TokenTexts {
            vocab: 0,
            start,
            texts: Vec::new(),
        };
    };
    let vocab = strings.len() as u64;
    let end = start.saturating_add(count.min(MAX_TOKEN_RANGE)).min(vocab);
    let texts = (start..end)
        .filter_map(|id| strings.get(usize::try_from(id).ok()?))
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    TokenTexts {
        vocab,
        start,
        texts,
    }
}

impl Manager {
    /// Texts of token ids `start .. start + count` of the attached model's vocabulary, pending
    /// metadata edits included (see [`token_texts_of`]).
    pub fn token_texts(&self, start: u64, count: u64) -> Result<TokenTexts, ManagerError> {
        let region = self.region()?;
        let index = self.engine().gguf(region)?;
        // The last pending edit of the key wins; without one, the file's value.
        let pending = self.meta.pending();
        let edited = pending.iter().rev().find_map(|e| match e {
            MetaEdit::Set(k, v) if k == TOKENS_KEY => Some(Some(v)),
            MetaEdit::Remove(k) if k == TOKENS_KEY => Some(None),
            _ => None,
        });
        let value = match edited {
            Some(v) => v,
            None => index.get(TOKENS_KEY),
        };
        Ok(token_texts_of(value, start, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpatch_gguf::StringArray;

    fn vocab(words: &[&[u8]]) -> MetaValue {
        MetaValue::Array(MetaArray::String(
            words.iter().copied().collect::<StringArray>(),
        ))
    }

    #[test]
    fn a_range_of_texts_clipped_at_the_end() {
        let v = vocab(&[
            b"<s>",
            b"</s>",
            "\u{2581}the".as_bytes(),
            b"a",
            b"\xff\xfeb",
        ]);
        let t = token_texts_of(Some(&v), 1, 2);
        assert_eq!(t.vocab, 5);
        assert_eq!(t.start, 1);
        assert_eq!(t.texts, vec!["</s>".to_string(), "\u{2581}the".to_string()]);
        // Past the end: what is there; invalid UTF-8 replaced, not dropped.
        let t = token_texts_of(Some(&v), 3, 10);
        assert_eq!(
            t.texts,
            vec!["a".to_string(), "\u{fffd}\u{fffd}b".to_string()]
        );
        assert!(token_texts_of(Some(&v), 5, 3).texts.is_empty());
        assert!(token_texts_of(Some(&v), u64::MAX, u64::MAX)
            .texts
            .is_empty());
    }

    #[test]
    fn the_range_is_capped() {
        let words: Vec<Vec<u8>> = (0..5000).map(|i| format!("t{i}").into_bytes()).collect();
        let v = MetaValue::Array(MetaArray::String(words.iter().collect::<StringArray>()));
        let t = token_texts_of(Some(&v), 100, 100_000);
        assert_eq!(t.vocab, 5000);
        assert_eq!(t.texts.len() as u64, MAX_TOKEN_RANGE);
        assert_eq!(t.texts[0], "t100");
        assert_eq!(
            t.texts.last().unwrap(),
            &format!("t{}", 100 + MAX_TOKEN_RANGE - 1)
        );
    }

    #[test]
    fn no_vocabulary_is_empty() {
        assert_eq!(token_texts_of(None, 0, 10).vocab, 0);
        let not_strings = MetaValue::Array(MetaArray::U32(vec![1, 2, 3]));
        let t = token_texts_of(Some(&not_strings), 0, 10);
        assert_eq!((t.vocab, t.texts.len()), (0, 0));
        assert_eq!(token_texts_of(Some(&MetaValue::U32(7)), 0, 1).vocab, 0);
    }
}
