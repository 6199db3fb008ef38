//! The bodies of the fuzz targets in `fuzz/`: one function per parser of untrusted input.
//! Each takes any bytes and panics only when an invariant breaks (a parser panicking on its
//! own is a bug too), and return whether the input was accepted far enough for the invariants
//! to be checked (the seed corpus test asserts that some are). libFuzzer runs them there (`cargo +nightly fuzz run NAME`); the tests of
//! this crate run them over the committed seed corpus `fuzz/seeds/NAME/` with stable cargo,
//! so a fixed crash stays fixed.

use hotpatch_core::config::Configuration;
use hotpatch_core::metadata::{edit_text, parse_array, parse_value};
use hotpatch_core::ops::Pattern;
use hotpatch_gguf::ValueType;
use hotpatch_proxy::{process_request, process_response, Endpoint, Rule, RuleSet, SseRewriter};

/// A fuzz body: true when the input got far enough for its invariants to be checked.
pub type Body = fn(&[u8]) -> bool;

/// Every target, by the name of its folder in `fuzz/corpus/` and of its `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Body)] = &[
    ("config", config),
    ("proxy_rewrite", proxy_rewrite),
    ("sse_filter", sse_filter),
    ("hex_pattern", hex_pattern),
    ("meta_value", meta_value),
];

/// Splits `data` at its first NUL: (before, after); all of it is `before` when there is none.
fn split0(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// A configuration's text (what `hotpatch apply` and the studio's import read): parsed and
/// validated, or refused with an error; an accepted one written back reads as the same value.
pub fn config(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(c) = Configuration::from_json(text) else {
        return false;
    };
    let back = c.to_json();
    let again = Configuration::from_json(&back)
        .unwrap_or_else(|e| panic!("an accepted configuration written back is refused: {e}"));
    assert_eq!(c, again, "written back, the configuration changed");
    true
}

fn rules_of(json: &[u8]) -> Option<RuleSet> {
    let rules: Vec<Rule> = serde_json::from_slice(json).ok()?;
    RuleSet::compile(&rules).ok()
}

fn endpoint_of(b: u8) -> Endpoint {
    match b % 3 {
        0 => Endpoint::ChatCompletions,
        1 => Endpoint::Completions,
        _ => Endpoint::LlamaCompletion,
    }
}

/// The proxy's rewriting of a request body and of a whole (non-streamed) answer. Input:
/// rules as JSON, NUL, one byte choosing the endpoint, then the body. A rewritten request is
/// still a JSON object.
pub fn proxy_rewrite(data: &[u8]) -> bool {
    let (rules, rest) = split0(data);
    let Some(rules) = rules_of(rules) else {
        return false;
    };
    let Some((&e, body)) = rest.split_first() else {
        return false;
    };
    let endpoint = endpoint_of(e);
    if let Ok(p) = process_request(&rules, endpoint, body) {
        let out = p.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("a rewritten request is not JSON: {e}"));
        assert!(v.is_object(), "a rewritten request is not a JSON object");
    }
    let _ = process_response(&rules, endpoint, body);
    true
}

/// Runs an SSE stream through a rewriter, fed in pieces of the given sizes; the bytes sent to
/// the client, or `None` when the stream was refused.
fn sse_run(
    rules: &RuleSet,
    endpoint: Endpoint,
    stream: &[u8],
    pieces: &[usize],
) -> Option<Vec<u8>> {
    let mut r = SseRewriter::new(rules, endpoint);
    let mut out = Vec::new();
    let mut rest = stream;
    let mut sizes = pieces.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&rest.len())).clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        let step = r.push(piece).ok()?;
        out.extend_from_slice(&step.bytes);
        if step.done {
            return Some(out);
        }
    }
    out.extend_from_slice(&r.finish());
    Some(out)
}

/// The proxy's SSE filter (streamed answers; patterns may be split across chunks). Input:
/// rules as JSON, NUL, one byte choosing the endpoint, up to 4 piece sizes and a NUL, then the
/// stream. Fed whole or in those pieces, the client gets the same bytes.
pub fn sse_filter(data: &[u8]) -> bool {
    let (rules, rest) = split0(data);
    let Some(rules) = rules_of(rules) else {
        return false;
    };
    let Some((&e, rest)) = rest.split_first() else {
        return false;
    };
    let (sizes, stream) = split0(rest);
    let pieces: Vec<usize> = sizes
        .iter()
        .take(4)
        .map(|&b| usize::from(b).max(1))
        .collect();
    let endpoint = endpoint_of(e);
    let whole = sse_run(&rules, endpoint, stream, &[stream.len().max(1)]);
    let split = sse_run(
        &rules,
        endpoint,
        stream,
        if pieces.is_empty() { &[1] } else { &pieces },
    );
    if let (Some(whole), Some(split)) = (whole, split) {
        assert!(
            whole == split,
            "fed in pieces {pieces:?} the client got other bytes:\n whole: {:?}\n split: {:?}",
            String::from_utf8_lossy(&whole),
            String::from_utf8_lossy(&split)
        );
        return true;
    }
    false
}

/// Hex search patterns (`"DE AD ?? EF"`, half-wildcards `3?`): parsed or refused; the matches
/// the search reports are exactly those of a naive scan. Input: pattern text, NUL, haystack.
pub fn hex_pattern(data: &[u8]) -> bool {
    let (text, hay) = split0(data);
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let _ = hotpatch_core::ops::parse_hex_bytes(text);
    let Ok(p) = Pattern::parse_hex(text) else {
        return false;
    };
    let items = p.items();
    assert!(!items.is_empty(), "an accepted pattern is never empty");
    let naive: Vec<u64> = (0..hay.len().saturating_sub(items.len() - 1))
        .filter(|&at| {
            hay.len() - at >= items.len()
                && items
                    .iter()
                    .zip(&hay[at..])
                    .all(|(i, &b)| b & i.mask == i.value)
        })
        .map(|at| at as u64)
        .collect();
    let found = p
        .find_all(hay, usize::MAX)
        .expect("no limit: the search does not fail");
    assert_eq!(found, naive, "the search and a naive scan disagree");
    let threaded = p
        .find_all_threads(hay, usize::MAX, 2, &|_, _| {})
        .expect("no limit");
    assert_eq!(
        threaded, naive,
        "the 2-thread search and a naive scan disagree"
    );
    true
}

/// Metadata value text (`--set-meta`, the Model screen's editor, configurations): parsed as
/// the chosen type or refused; an accepted value's edit text parses back to the same value.
/// Input: one byte choosing the type (and one the element type for arrays), then the text.
pub fn meta_value(data: &[u8]) -> bool {
    let Some((&t, rest)) = data.split_first() else {
        return false;
    };
    let Some(ty) = ValueType::from_id(u32::from(t % 13)) else {
        return false;
    };
    let parse = |text: &str| -> Option<hotpatch_gguf::MetaValue> {
        if ty == ValueType::Array {
            let el = ValueType::from_id(u32::from(rest.first().copied().unwrap_or(0) % 13))?;
            parse_array("fuzz.key", el, text).ok()
        } else {
            parse_value("fuzz.key", ty, text).ok()
        }
    };
    let body = if ty == ValueType::Array && !rest.is_empty() {
        &rest[1..]
    } else {
        rest
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let Some(v) = parse(text) else {
        return false;
    };
    let Some(shown) = edit_text(&v) else {
        return true;
    };
    let again = parse(&shown)
        .unwrap_or_else(|| panic!("the edit text {shown:?} of an accepted value is refused"));
    assert_eq!(
        edit_text(&again).as_deref(),
        Some(shown.as_str()),
        "the value changed going through its edit text"
    );
    true
}
