//! The streaming response filter: redact/block patterns over text that arrives in pieces.
//!
//! A [`TextFilter`] is a pipeline of stages, one per enabled `filter_response` rule, each a
//! small state machine holding back a tail window of the text it has seen: the longest
//! possible match of its pattern plus one byte (for `\b` and `$`). Text before the window is
//! final (no match can start there and still grow), so it is emitted; the window waits for
//! the next delta. A match that spans SSE chunk boundaries is therefore seen whole and
//! never leaks. Filtering a text in one piece and in any split gives the same output
//! (property-tested). Everything here is pure: no I/O, no clocks.

use regex::Regex;

use crate::request::Endpoint;
use crate::rules::{FilterAction, RuleSet};

#[derive(Debug, Clone)]
struct Stage {
    rule_id: String,
    regex: Regex,
    action: FilterAction,
    replacement: String,
    /// Bytes held back: longest match + 1.
    window: usize,
    /// Text not yet final.
    pending: String,
    /// The last character already emitted (context for `^` and `\b`).
    context: String,
    hit: bool,
}

/// What a filter step produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterOutput {
    /// Text that is final and may be sent.
    pub text: String,
    /// Set when a block rule matched: the text to end the answer with. Nothing more will
    /// come out of the filter.
    pub blocked: Option<String>,
}

/// A pipeline of response filters for one text stream (one choice of one answer).
#[derive(Debug, Clone, Default)]
pub struct TextFilter {
    stages: Vec<Stage>,
    blocked: bool,
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Stage {
    /// Feed `input`; returns (final text, block message).
    fn push(&mut self, input: &str, last: bool) -> (String, Option<String>) {
        self.pending.push_str(input);
        let cut = if last {
            self.pending.len()
        } else {
            floor_char_boundary(
                &self.pending,
                self.pending.len().saturating_sub(self.window),
            )
        };
        let base = self.context.len();
        let mut hay = String::with_capacity(base + self.pending.len());
        hay.push_str(&self.context);
        hay.push_str(&self.pending);
        let limit = base + cut;
        let mut out = String::new();
        let mut pos = base;
        let mut at = base;
        while at <= hay.len() {
            let Some(m) = self.regex.find_at(&hay, at) else {
                break;
            };
            if m.start() >= limit {
                break;
            }
            if m.is_empty() {
                // An empty match (e.g. a lone `\b`) replaces nothing; step over one char.
                at = m.end() + hay[m.end()..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
            self.hit = true;
            out.push_str(&hay[pos..m.start()]);
            if self.action == FilterAction::Block {
                self.pending.clear();
                return (out, Some(self.replacement.clone()));
            }
            out.push_str(&self.replacement);
            pos = m.end();
            at = m.end();
        }
        let end = pos.max(limit);
        out.push_str(&hay[pos..end]);
        self.context = hay[..end]
            .chars()
            .next_back()
            .map(String::from)
            .unwrap_or_default();
        self.pending = hay[end..].to_owned();
        (out, None)
    }
}

impl TextFilter {
    /// The enabled response filters of `rules` that apply to `endpoint`, in rule order.
    pub fn new(rules: &RuleSet, endpoint: Endpoint) -> Self {
        let stages = rules
            .filters()
            .iter()
            .filter(|f| rules.rules()[f.rule].applies_to(endpoint))
            .map(|f| Stage {
                rule_id: rules.id_of(f.rule).to_owned(),
                regex: f.regex.clone(),
                action: f.action,
                replacement: f.replacement.clone(),
                window: f.max_len + 1,
                pending: String::new(),
                context: String::new(),
                hit: false,
            })
            .collect();
        Self {
            stages,
            blocked: false,
        }
    }

    /// Whether the pipeline has no stage (text passes unchanged).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Whether a block rule has matched.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// Ids of the rules that matched so far.
    pub fn applied(&self) -> Vec<String> {
        self.stages
            .iter()
            .filter(|s| s.hit)
            .map(|s| s.rule_id.clone())
            .collect()
    }

    fn run(&mut self, text: &str, last: bool) -> FilterOutput {
        if self.blocked {
            return FilterOutput::default();
        }
        let mut text = text.to_owned();
        let mut last = last;
        let mut blocked = None;
        for stage in &mut self.stages {
            let (out, b) = stage.push(&text, last);
            text = out;
            if b.is_some() {
                // Later stages flush what came before the blocked match.
                blocked = b;
                last = true;
            }
        }
        if blocked.is_some() {
            self.blocked = true;
        }
        FilterOutput { text, blocked }
    }

    /// Feed the next piece of the answer.
    pub fn push(&mut self, text: &str) -> FilterOutput {
        self.run(text, false)
    }

    /// The answer is complete: release the held-back tail.
    pub fn finish(&mut self) -> FilterOutput {
        self.run("", true)
    }

    /// Filter a whole text at once.
    pub fn filter_all(&mut self, text: &str) -> FilterOutput {
        let mut out = self.push(text);
        if out.blocked.is_none() {
            let tail = self.finish();
            out.text.push_str(&tail.text);
            out.blocked = tail.blocked;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rule;
    use proptest::prelude::*;
    use serde_json::json;

    fn filter(rules: serde_json::Value) -> TextFilter {
        let rules: Vec<Rule> = serde_json::from_value(rules).expect("rules JSON");
        TextFilter::new(
            &RuleSet::compile(&rules).expect("compiles"),
            Endpoint::ChatCompletions,
        )
    }

    fn redact_secret() -> TextFilter {
        filter(json!([
            {"id": "r", "action": {"type": "filter_response", "pattern": "secret", "action": "redact", "literal": true, "replacement": "***"}},
            {"id": "k", "action": {"type": "filter_response", "pattern": "sk-[a-z0-9]{8}", "action": "redact"}}
        ]))
    }

    #[test]
    fn redacts_a_match_split_across_chunks() {
        let mut f = redact_secret();
        let mut sent = String::new();
        for piece in ["the se", "c", "ret key is sk-abc", "d1234 ok"] {
            let out = f.push(piece);
            assert!(
                !out.text.contains("se") || !out.text.contains("cret"),
                "partial match leaked: {:?}",
                out.text
            );
            sent.push_str(&out.text);
            assert!(
                !sent.contains("sk-abc"),
                "the key prefix must be held back until decided: {sent:?}"
            );
        }
        sent.push_str(&f.finish().text);
        assert_eq!(sent, "the *** key is [REDACTED] ok");
        assert_eq!(f.applied(), vec!["r", "k"]);
    }

    #[test]
    fn block_stops_before_the_match() {
        let mut f = filter(
            json!([{"id": "b", "action": {"type": "filter_response", "pattern": "forbidden", "action": "block", "case_insensitive": true}}]),
        );
        let a = f.push("this is FORB");
        let b = f.push("IDDEN text");
        assert_eq!(
            format!("{}{}", a.text, b.text),
            "this is ",
            "text up to the match only"
        );
        assert_eq!(b.blocked.as_deref(), Some("[BLOCKED]"));
        assert_eq!(
            f.push("more"),
            FilterOutput::default(),
            "nothing after a block"
        );
        assert!(f.is_blocked());
    }

    #[test]
    fn anchors_and_word_boundaries_see_context() {
        let mut f = filter(
            json!([{"id": "w", "action": {"type": "filter_response", "pattern": "\\bcat\\b", "action": "redact"}}]),
        );
        let mut s = String::new();
        for p in ["conca", "t ca", "ts cat"] {
            s.push_str(&f.push(p).text);
        }
        s.push_str(&f.finish().text);
        assert_eq!(
            s, "concat cats [REDACTED]",
            "only the whole word, judged across chunks"
        );
        let mut f = filter(
            json!([{"id": "a", "action": {"type": "filter_response", "pattern": "^Sure", "action": "redact", "replacement": ""}}]),
        );
        let mut s = String::new();
        for p in ["Su", "re, Sure", "!"] {
            s.push_str(&f.push(p).text);
        }
        s.push_str(&f.finish().text);
        assert_eq!(s, ", Sure!", "^ matches only at the start of the answer");
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let mut f = filter(
            json!([{"id": "e", "action": {"type": "filter_response", "pattern": "é{1,2}x", "action": "redact"}}]),
        );
        let mut s = String::new();
        for p in ["aé", "é", "éx", "ü"] {
            s.push_str(&f.push(p).text);
        }
        s.push_str(&f.finish().text);
        assert_eq!(s, "aé[REDACTED]ü", "same as filtering \"aéééxü\" whole");
    }

    proptest! {
        #[test]
        fn any_split_equals_whole(text in "[a-dq sk\\-0-9é]{0,80}", cuts in proptest::collection::vec(0usize..100, 0..8)) {
            let text = text.replace("q", "secret");
            let mut whole = redact_secret();
            let expect = whole.filter_all(&text);
            let mut f = redact_secret();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| floor_char_boundary(&text, c % (text.len() + 1))).collect();
            cuts.sort_unstable();
            let mut got = String::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain([text.len()]) {
                got.push_str(&f.push(&text[prev..c]).text);
                prev = c;
            }
            got.push_str(&f.finish().text);
            prop_assert_eq!(got, expect.text);
        }
    }
}
