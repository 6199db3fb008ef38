//! Response rewriting: the pure `process_response` (a whole JSON answer) and the
//! [`SseRewriter`] state machine (a streamed answer, chunk by chunk).
//!
//! Both run the answer's text through a [`TextFilter`] per choice: `choices[].message.content`
//! (chat), `choices[].delta.content` (chat, streamed), `choices[].text` (completions) and
//! `content` (llama.cpp `/completion`). A block ends the answer with the rule's replacement
//! and `finish_reason: "content_filter"` (llama.cpp: `stop_type: "content_filter"`); a
//! streamed answer then ends with `data: [DONE]` and the proxy stops reading the upstream.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::filter::{FilterOutput, TextFilter};
use crate::request::Endpoint;
use crate::rules::RuleSet;

/// The outcome of [`process_response`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedResponse {
    /// The (possibly rewritten) body.
    pub body: Vec<u8>,
    /// Ids of the filter rules that matched.
    pub applied: Vec<String>,
    /// Whether a block rule ended the answer.
    pub blocked: bool,
}

/// Where the text of a choice lives.
fn text_slot(endpoint: Endpoint, choice: &mut Value, streamed: bool) -> Option<&mut Value> {
    match endpoint {
        Endpoint::ChatCompletions => choice
            .get_mut(if streamed { "delta" } else { "message" })?
            .get_mut("content"),
        Endpoint::Completions => choice.get_mut("text"),
        Endpoint::LlamaCompletion => choice.get_mut("content"),
    }
}

fn mark_blocked(endpoint: Endpoint, choice: &mut Value) {
    if let Some(obj) = choice.as_object_mut() {
        match endpoint {
            Endpoint::LlamaCompletion => {
                obj.insert("stop".into(), Value::Bool(true));
                obj.insert("stop_type".into(), Value::String("content_filter".into()));
            }
            _ => {
                obj.insert(
                    "finish_reason".into(),
                    Value::String("content_filter".into()),
                );
            }
        }
    }
}

/// Apply the enabled response filters of `rules` to a complete (non-streamed) JSON answer.
/// Bodies that are not JSON, or carry no text where the endpoint puts it, are returned
/// unchanged. Pure.
pub fn process_response(rules: &RuleSet, endpoint: Endpoint, body: &[u8]) -> ProcessedResponse {
    let unchanged = || ProcessedResponse {
        body: body.to_vec(),
        applied: Vec::new(),
        blocked: false,
    };
    let proto = TextFilter::new(rules, endpoint);
    if proto.is_empty() {
        return unchanged();
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return unchanged();
    };
    let mut applied: Vec<String> = Vec::new();
    let mut blocked = false;
    let mut changed = false;
    let mut apply = |choice: &mut Value| {
        let Some(Value::String(text)) = text_slot(endpoint, choice, false) else {
            return;
        };
        let mut f = proto.clone();
        let FilterOutput {
            text: out,
            blocked: b,
        } = f.filter_all(text);
        for id in f.applied() {
            if !applied.contains(&id) {
                applied.push(id);
            }
        }
        let out = match &b {
            Some(msg) => format!("{out}{msg}"),
            None => out,
        };
        if out != *text {
            *text = out;
            changed = true;
        }
        if b.is_some() {
            blocked = true;
            mark_blocked(endpoint, choice);
        }
    };
    if endpoint == Endpoint::LlamaCompletion {
        apply(&mut value);
    } else if let Some(Value::Array(choices)) = value.get_mut("choices") {
        choices.iter_mut().for_each(apply);
    }
    if !changed && !blocked {
        return ProcessedResponse {
            body: body.to_vec(),
            applied,
            blocked,
        };
    }
    let body = serde_json::to_vec(&value).unwrap_or_else(|_| body.to_vec());
    ProcessedResponse {
        body,
        applied,
        blocked,
    }
}

/// A streamed answer that cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event grew past the limit without a blank line ending it.
    #[error("upstream SSE event exceeds {0} bytes")]
    EventTooLarge(usize),
}

/// Longest single SSE event accepted from the upstream.
pub const MAX_SSE_EVENT: usize = 8 * 1024 * 1024;

/// Rewrites a text/event-stream answer chunk by chunk, keeping the filter state (held-back
/// tails) of every choice across chunks. Pure: feed bytes in, get bytes out.
#[derive(Debug)]
pub struct SseRewriter {
    endpoint: Endpoint,
    proto: TextFilter,
    choices: BTreeMap<u64, TextFilter>,
    buf: Vec<u8>,
    /// Last JSON chunk seen: the shape of the synthetic chunk that flushes held-back text.
    template: Option<Value>,
    done: bool,
    /// Length of `buf` already searched for an event terminator.
    scanned: usize,
}

/// What one [`SseRewriter`] step produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseOutput {
    /// Bytes to send to the client.
    pub bytes: Vec<u8>,
    /// The answer is over (blocked, or `[DONE]` seen): stop reading the upstream.
    pub done: bool,
}

fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

impl SseRewriter {
    /// A rewriter applying the enabled filters of `rules` for `endpoint`.
    pub fn new(rules: &RuleSet, endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            proto: TextFilter::new(rules, endpoint),
            choices: BTreeMap::new(),
            buf: Vec::new(),
            template: None,
            done: false,
            scanned: 0,
        }
    }

    /// Ids of the filter rules that matched so far.
    pub fn applied(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for f in self.choices.values() {
            for id in f.applied() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// Whether a block rule ended the answer.
    pub fn blocked(&self) -> bool {
        self.choices.values().any(TextFilter::is_blocked)
    }

    /// Feed bytes from the upstream.
    pub fn push(&mut self, bytes: &[u8]) -> Result<SseOutput, SseError> {
        let mut out = Vec::with_capacity(bytes.len() + 64);
        if self.done {
            return Ok(SseOutput {
                bytes: out,
                done: true,
            });
        }
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        // Bytes already searched hold no terminator (but may end inside one: back up 2).
        let mut from = self.scanned.saturating_sub(2);
        while let Some((end, next)) = find_event_end(&self.buf[from..]) {
            let event = self.buf[start..from + end].to_vec();
            start = from + next;
            from = start;
            self.event(&event, &mut out);
            if self.done {
                self.buf.clear();
                return Ok(SseOutput {
                    bytes: out,
                    done: true,
                });
            }
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        if self.buf.len() > MAX_SSE_EVENT {
            return Err(SseError::EventTooLarge(MAX_SSE_EVENT));
        }
        Ok(SseOutput {
            bytes: out,
            done: false,
        })
    }

    /// The upstream ended: process a last unterminated event and release held-back text.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        let rest = std::mem::take(&mut self.buf);
        if !rest.iter().all(u8::is_ascii_whitespace) {
            self.event(&rest, &mut out);
        }
        if !self.done {
            self.flush(&mut out);
        }
        self.done = true;
        out
    }

    fn event(&mut self, event: &[u8], out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(event);
        let mut other = Vec::new();
        let mut data: Option<String> = None;
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if let Some(d) = line.strip_prefix("data:") {
                let d = d.strip_prefix(' ').unwrap_or(d);
                match &mut data {
                    Some(acc) => {
                        acc.push('\n');
                        acc.push_str(d);
                    }
                    None => data = Some(d.to_owned()),
                }
            } else if !line.is_empty() {
                other.push(line);
            }
        }
        let raw = |out: &mut Vec<u8>| {
            out.extend_from_slice(event);
            out.extend_from_slice(b"\n\n");
        };
        let Some(data) = data else { return raw(out) };
        if data.trim() == "[DONE]" {
            self.flush(out);
            raw(out);
            self.done = true;
            return;
        }
        let Ok(mut value) = serde_json::from_str::<Value>(&data) else {
            return raw(out);
        };
        let blocked = self.rewrite_chunk(&mut value);
        self.template = Some(value.clone());
        for line in other {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        write_data(out, &value);
        if blocked {
            if self.endpoint != Endpoint::LlamaCompletion {
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            self.done = true;
        }
    }

    /// Filter the text of every choice of one chunk; true if blocked.
    fn rewrite_chunk(&mut self, value: &mut Value) -> bool {
        let endpoint = self.endpoint;
        let mut blocked = false;
        let mut each = |index: u64,
                        choice: &mut Value,
                        finishing: bool,
                        filters: &mut BTreeMap<u64, TextFilter>,
                        proto: &TextFilter| {
            let f = filters.entry(index).or_insert_with(|| proto.clone());
            let mut text_out = String::new();
            let mut block = None;
            if let Some(Value::String(t)) = text_slot(endpoint, choice, true) {
                let o = f.push(t);
                text_out.push_str(&o.text);
                block = o.blocked;
            }
            if block.is_none() && finishing {
                let o = f.finish();
                text_out.push_str(&o.text);
                block = o.blocked;
            }
            if let Some(msg) = &block {
                text_out.push_str(msg);
            }
            match text_slot(endpoint, choice, true) {
                Some(slot) => *slot = Value::String(text_out),
                None if !text_out.is_empty() => set_text(endpoint, choice, text_out),
                None => {}
            }
            if block.is_some() {
                mark_blocked(endpoint, choice);
                blocked = true;
            }
        };
        if endpoint == Endpoint::LlamaCompletion {
            let finishing = value.get("stop").and_then(Value::as_bool).unwrap_or(false);
            each(0, value, finishing, &mut self.choices, &self.proto);
        } else if let Some(Value::Array(choices)) = value.get_mut("choices") {
            for (pos, choice) in choices.iter_mut().enumerate() {
                let index = choice
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(pos as u64);
                let finishing = choice.get("finish_reason").is_some_and(|f| !f.is_null());
                each(index, choice, finishing, &mut self.choices, &self.proto);
            }
        }
        blocked
    }

    /// Emit held-back text of every choice as one synthetic chunk.
    fn flush(&mut self, out: &mut Vec<u8>) {
        let mut pieces = Vec::new();
        let mut blocked = false;
        for (index, f) in &mut self.choices {
            let o = f.finish();
            let mut text = o.text;
            if let Some(msg) = &o.blocked {
                text.push_str(msg);
                blocked = true;
            }
            if !text.is_empty() {
                pieces.push((*index, text, o.blocked.is_some()));
            }
        }
        if pieces.is_empty() {
            return;
        }
        let endpoint = self.endpoint;
        let mut chunk = self.template.clone().unwrap_or_else(|| json!({}));
        if endpoint == Endpoint::LlamaCompletion {
            let (_, text, b) = pieces.remove(0);
            if let Some(obj) = chunk.as_object_mut() {
                obj.insert("content".into(), Value::String(text));
                obj.insert("stop".into(), Value::Bool(b));
            }
            if b {
                mark_blocked(endpoint, &mut chunk);
            }
        } else {
            let choices: Vec<Value> = pieces
                .into_iter()
                .map(|(index, text, b)| {
                    let mut c = json!({"index": index, "finish_reason": null});
                    set_text(endpoint, &mut c, text);
                    if b {
                        mark_blocked(endpoint, &mut c);
                    }
                    c
                })
                .collect();
            if let Some(obj) = chunk.as_object_mut() {
                obj.insert("choices".into(), Value::Array(choices));
                obj.remove("usage");
                obj.remove("timings");
            }
        }
        write_data(out, &chunk);
        if blocked {
            self.done = true;
        }
    }
}

fn set_text(endpoint: Endpoint, choice: &mut Value, text: String) {
    let Some(obj) = choice.as_object_mut() else {
        return;
    };
    match endpoint {
        Endpoint::ChatCompletions => {
            let delta = obj.entry("delta").or_insert_with(|| json!({}));
            if let Some(d) = delta.as_object_mut() {
                d.insert("content".into(), Value::String(text));
            }
        }
        Endpoint::Completions => {
            obj.insert("text".into(), Value::String(text));
        }
        Endpoint::LlamaCompletion => {
            obj.insert("content".into(), Value::String(text));
        }
    }
}

fn write_data(out: &mut Vec<u8>, value: &Value) {
    out.extend_from_slice(b"data: ");
    // Serializing a Value cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rule;

    fn rules(v: Value) -> RuleSet {
        let rules: Vec<Rule> = serde_json::from_value(v).expect("rules JSON");
        RuleSet::compile(&rules).expect("compiles")
    }

    fn redact() -> RuleSet {
        rules(
            json!([{"id": "r", "action": {"type": "filter_response", "pattern": "password", "action": "redact", "literal": true}}]),
        )
    }

    fn chat_chunk(content: &str, finish: Option<&str>) -> String {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
                   "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
        )
    }

    /// Concatenated delta contents of a chat SSE stream.
    fn chat_text(sse: &[u8]) -> String {
        let s = String::from_utf8(sse.to_vec()).unwrap();
        s.split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| {
                let v: Value = serde_json::from_str(d).unwrap();
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn non_streamed_chat_is_redacted() {
        let body = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "my password is x"}, "finish_reason": "stop"}]});
        let out = process_response(
            &redact(),
            Endpoint::ChatCompletions,
            body.to_string().as_bytes(),
        );
        let v: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "my [REDACTED] is x");
        assert_eq!(out.applied, vec!["r"]);
        let untouched = process_response(&redact(), Endpoint::ChatCompletions, b"not json");
        assert_eq!(untouched.body, b"not json", "non-JSON passes through");
    }

    #[test]
    fn non_streamed_block_sets_finish_reason() {
        let set = rules(
            json!([{"id": "b", "action": {"type": "filter_response", "pattern": "rm -rf", "action": "block", "literal": true, "replacement": "[no]"}}]),
        );
        let body =
            json!({"choices": [{"index": 0, "text": "run rm -rf / now", "finish_reason": "stop"}]});
        let out = process_response(&set, Endpoint::Completions, body.to_string().as_bytes());
        let v: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["choices"][0]["text"], "run [no]");
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        assert!(out.blocked);
        let llama = json!({"content": "x rm -rf", "stop": true, "stop_type": "eos"});
        let out = process_response(
            &set,
            Endpoint::LlamaCompletion,
            llama.to_string().as_bytes(),
        );
        let v: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            (v["content"].as_str(), v["stop_type"].as_str()),
            (Some("x [no]"), Some("content_filter"))
        );
    }

    #[test]
    fn sse_redacts_across_chunks_and_byte_splits() {
        let stream = [
            chat_chunk("my pass", None),
            chat_chunk("wo", None),
            chat_chunk("rd is ", None),
            chat_chunk("hunter2", Some("stop")),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        // Split the byte stream at every position in two: SSE framing and filter state must
        // both survive arbitrary TCP segmentation.
        for cut in 0..stream.len() {
            let mut rw = SseRewriter::new(&redact(), Endpoint::ChatCompletions);
            let mut out = rw.push(&stream.as_bytes()[..cut]).unwrap().bytes;
            let second = rw.push(&stream.as_bytes()[cut..]).unwrap();
            out.extend(second.bytes);
            out.extend(rw.finish());
            assert!(second.done, "[DONE] ends the stream");
            assert_eq!(chat_text(&out), "my [REDACTED] is hunter2", "cut at {cut}");
            assert!(String::from_utf8(out)
                .unwrap()
                .ends_with("data: [DONE]\n\n"));
            assert_eq!(rw.applied(), vec!["r"]);
        }
    }

    #[test]
    fn sse_held_back_text_is_flushed_before_done() {
        let stream = [
            chat_chunk("ends with pass", None),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        let mut rw = SseRewriter::new(&redact(), Endpoint::ChatCompletions);
        let out = rw.push(stream.as_bytes()).unwrap();
        assert_eq!(
            chat_text(&out.bytes),
            "ends with pass",
            "the held-back tail is released at the end"
        );
        let s = String::from_utf8(out.bytes).unwrap();
        assert!(s.ends_with("data: [DONE]\n\n"), "{s}");
    }

    #[test]
    fn sse_block_ends_stream() {
        let set = rules(
            json!([{"id": "b", "action": {"type": "filter_response", "pattern": "BAD", "action": "block", "literal": true}}]),
        );
        let mut rw = SseRewriter::new(&set, Endpoint::ChatCompletions);
        let a = rw.push(chat_chunk("ok B", None).as_bytes()).unwrap();
        let b = rw.push(chat_chunk("AD more", None).as_bytes()).unwrap();
        assert!(b.done && !a.done);
        let all = [a.bytes, b.bytes].concat();
        assert_eq!(chat_text(&all), "ok [BLOCKED]");
        let s = String::from_utf8(all).unwrap();
        assert!(
            s.contains("\"finish_reason\":\"content_filter\"") && s.ends_with("data: [DONE]\n\n"),
            "{s}"
        );
        assert!(
            rw.push(chat_chunk("x", None).as_bytes())
                .unwrap()
                .bytes
                .is_empty(),
            "nothing after block"
        );
    }

    #[test]
    fn sse_llama_completion_stop_flushes() {
        let mut rw = SseRewriter::new(&redact(), Endpoint::LlamaCompletion);
        let mut out = rw
            .push(b"data: {\"content\":\"a passw\",\"stop\":false}\n\n")
            .unwrap()
            .bytes;
        out.extend(rw.push(b"data: {\"content\":\"ord\",\"stop\":false}\n\ndata: {\"content\":\"\",\"stop\":true}\n\n").unwrap().bytes);
        out.extend(rw.finish());
        let s = String::from_utf8(out).unwrap();
        let text: String = s
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(|d| {
                serde_json::from_str::<Value>(d).unwrap()["content"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(text, "a [REDACTED]");
    }

    #[test]
    fn sse_passes_comments_and_events() {
        let mut rw = SseRewriter::new(&redact(), Endpoint::ChatCompletions);
        let out = rw
            .push(b": keep-alive\n\nevent: ping\ndata: not json\n\n")
            .unwrap();
        assert_eq!(
            out.bytes,
            b": keep-alive\n\nevent: ping\ndata: not json\n\n".to_vec()
        );
        let err =
            SseRewriter::new(&redact(), Endpoint::ChatCompletions)
                .push(&vec![b'x'; MAX_SSE_EVENT + 1]);
        assert_eq!(err, Err(SseError::EventTooLarge(MAX_SSE_EVENT)));
    }
}
