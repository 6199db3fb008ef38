//! Request rewriting: the pure `process_request` and the response-cache key.
//!
//! Only the three generation endpoints are rewritten ([`Endpoint`]); every other path goes
//! through the proxy untouched. Rules run in list order on the parsed JSON body; the result
//! lists the ids of the rules that actually changed something (those count as hits).

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::rules::{CompiledAction, InjectMode, RuleSet};

/// A rewritten endpoint (defined with the rules in `hotpatch-settings`).
pub use hotpatch_settings::Endpoint;

/// A request body the proxy refuses (answered with 400 and this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not JSON.
    #[error("request body is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("request body must be a JSON object")]
    NotObject,
    /// A field the rules need has the wrong shape.
    #[error("request field `{field}`: {message}")]
    Field {
        /// JSON path of the field, e.g. `messages[2].content`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// The outcome of [`process_request`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedRequest {
    /// The rewritten body.
    pub body: Value,
    /// Ids of the rules that changed the request.
    pub applied: Vec<String>,
    /// Whether the client asked for a streamed answer (`"stream": true`).
    pub stream: bool,
}

impl ProcessedRequest {
    /// The body serialized for the upstream.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.body).unwrap_or_default())
    }
}

/// Apply the enabled request rules of `rules` to a request body for `endpoint`. Pure.
pub fn process_request(
    rules: &RuleSet,
    endpoint: Endpoint,
    body: &[u8],
) -> Result<ProcessedRequest, RequestError> {
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| RequestError::Json(e.to_string()))?;
    let obj = value.as_object_mut().ok_or(RequestError::NotObject)?;
    let mut applied = Vec::new();
    for rule in rules.rules() {
        if !rule.applies_to(endpoint) {
            continue;
        }
        let changed = match &rule.action {
            CompiledAction::SystemPrompt { mode, text } => {
                inject_system(obj, endpoint, *mode, text)?
            }
            CompiledAction::Default { name, value } => {
                if obj.get(name).is_none_or(Value::is_null) {
                    obj.insert(name.clone(), value.clone());
                    true
                } else {
                    false
                }
            }
            CompiledAction::Override { name, value } => {
                let changed = obj.get(name) != Some(value);
                obj.insert(name.clone(), value.clone());
                changed
            }
            CompiledAction::Clamp { name, min, max } => clamp(obj, name, *min, *max),
            CompiledAction::Rewrite {
                regex,
                replacement,
                roles,
            } => rewrite(obj, endpoint, regex, replacement, roles)?,
            CompiledAction::Filter(_) => false,
            CompiledAction::Stop(seqs) => merge_stop(obj, seqs)?,
        };
        if changed {
            applied.push(rule.rule.id.clone());
        }
    }
    let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
    Ok(ProcessedRequest {
        body: value,
        applied,
        stream,
    })
}

fn inject_system(
    obj: &mut Map<String, Value>,
    endpoint: Endpoint,
    mode: InjectMode,
    text: &str,
) -> Result<bool, RequestError> {
    if endpoint != Endpoint::ChatCompletions {
        if mode == InjectMode::Replace {
            return Ok(false);
        }
        let Some(prompt) = obj.get_mut("prompt") else {
            return Ok(false);
        };
        let join = |p: &str| match mode {
            InjectMode::Prepend => format!("{text}\n{p}"),
            _ => format!("{p}\n{text}"),
        };
        return match prompt {
            Value::String(p) => {
                *p = join(p);
                Ok(true)
            }
            Value::Array(items) if items.iter().all(Value::is_string) && !items.is_empty() => {
                for item in items {
                    if let Value::String(p) = item {
                        *p = join(p);
                    }
                }
                Ok(true)
            }
            // Token arrays and mixed prompts cannot take text.
            _ => Ok(false),
        };
    }
    let messages = match obj.get_mut("messages") {
        Some(Value::Array(m)) => m,
        Some(_) => {
            return Err(RequestError::Field {
                field: "messages".into(),
                message: "must be an array".into(),
            })
        }
        None => return Ok(false),
    };
    let existing = messages
        .iter()
        .position(|m| m.get("role").and_then(Value::as_str) == Some("system"));
    let Some(i) = existing else {
        messages.insert(0, serde_json::json!({"role": "system", "content": text}));
        return Ok(true);
    };
    let content = messages[i].get_mut("content");
    match content {
        Some(Value::String(c)) => {
            *c = match mode {
                InjectMode::Prepend => format!("{text}\n\n{c}"),
                InjectMode::Append => format!("{c}\n\n{text}"),
                InjectMode::Replace => text.to_owned(),
            };
        }
        Some(Value::Array(parts)) if mode != InjectMode::Replace => {
            let part = serde_json::json!({"type": "text", "text": text});
            if mode == InjectMode::Prepend {
                parts.insert(0, part);
            } else {
                parts.push(part);
            }
        }
        _ => {
            messages[i]["content"] = Value::String(text.to_owned());
        }
    }
    Ok(true)
}

fn clamp(obj: &mut Map<String, Value>, name: &str, min: Option<f64>, max: Option<f64>) -> bool {
    let Some(v) = obj.get_mut(name) else {
        return false;
    };
    let Some(x) = v.as_f64() else { return false };
    let mut y = x;
    if let Some(lo) = min {
        y = y.max(lo);
    }
    if let Some(hi) = max {
        y = y.min(hi);
    }
    if y == x {
        return false;
    }
    let integral = v.is_i64() || v.is_u64();
    *v = if integral && y.fract() == 0.0 && y.abs() < 9.0e15 {
        // Keep integer fields integers (llama.cpp rejects `"top_k": 40.0`).
        Value::from(y as i64)
    } else if integral {
        Value::from(if x < y { y.ceil() } else { y.floor() } as i64)
    } else {
        serde_json::Number::from_f64(y).map_or(Value::Null, Value::Number)
    };
    true
}

fn rewrite_text(s: &mut String, regex: &regex::Regex, replacement: &str) -> bool {
    match regex.replace_all(s, replacement) {
        std::borrow::Cow::Borrowed(_) => false,
        std::borrow::Cow::Owned(new) => {
            let changed = new != *s;
            *s = new;
            changed
        }
    }
}

fn rewrite(
    obj: &mut Map<String, Value>,
    endpoint: Endpoint,
    regex: &regex::Regex,
    replacement: &str,
    roles: &[String],
) -> Result<bool, RequestError> {
    let mut changed = false;
    if endpoint != Endpoint::ChatCompletions {
        match obj.get_mut("prompt") {
            Some(Value::String(p)) => changed |= rewrite_text(p, regex, replacement),
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::String(p) = item {
                        changed |= rewrite_text(p, regex, replacement);
                    }
                }
            }
            _ => {}
        }
        return Ok(changed);
    }
    let Some(messages) = obj.get_mut("messages") else {
        return Ok(false);
    };
    let Value::Array(messages) = messages else {
        return Err(RequestError::Field {
            field: "messages".into(),
            message: "must be an array".into(),
        });
    };
    for (i, m) in messages.iter_mut().enumerate() {
        let Value::Object(m) = m else {
            return Err(RequestError::Field {
                field: format!("messages[{i}]"),
                message: "must be an object".into(),
            });
        };
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if !roles.is_empty() && !roles.iter().any(|r| r == role) {
            continue;
        }
        match m.get_mut("content") {
            Some(Value::String(c)) => changed |= rewrite_text(c, regex, replacement),
            Some(Value::Array(parts)) => {
                for part in parts {
                    if let Some(Value::String(t)) = part.get_mut("text") {
                        changed |= rewrite_text(t, regex, replacement);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(changed)
}

fn merge_stop(obj: &mut Map<String, Value>, seqs: &[String]) -> Result<bool, RequestError> {
    let mut stop: Vec<Value> = match obj.remove("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![Value::String(s)],
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(RequestError::Field {
                field: "stop".into(),
                message: "must be a string or an array of strings".into(),
            })
        }
    };
    let mut changed = false;
    for s in seqs {
        if !stop.iter().any(|v| v.as_str() == Some(s)) {
            stop.push(Value::String(s.clone()));
            changed = true;
        }
    }
    obj.insert("stop".into(), Value::Array(stop));
    Ok(changed)
}

/// Fields that do not change what the model answers (transport, bookkeeping, llama.cpp
/// performance knobs); they are left out of the cache key.
pub const CACHE_IGNORED_FIELDS: &[&str] = &[
    "user",
    "cache_prompt",
    "id_slot",
    "timings_per_token",
    "stream_options",
    "n_threads",
    "metadata",
];

/// The response-cache key of a (rewritten) request: the endpoint plus canonical JSON (object
/// keys sorted at every level) of the body minus [`CACHE_IGNORED_FIELDS`]. `stream` stays in
/// the key: a streamed answer is replayed as a stream, a plain one as JSON.
pub fn cache_key(endpoint: Endpoint, body: &Value) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(match endpoint {
        Endpoint::ChatCompletions => "chat:",
        Endpoint::Completions => "completions:",
        Endpoint::LlamaCompletion => "completion:",
    });
    match body {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .keys()
                .filter(|k| !CACHE_IGNORED_FIELDS.contains(&k.as_str()))
                .collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(&Value::String(k.clone()), &mut out);
                out.push(':');
                canonical(&map[k], &mut out);
            }
            out.push('}');
        }
        other => canonical(other, &mut out),
    }
    out
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(&Value::String(k.clone()), out);
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        // Scalars serialize canonically already.
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rule;
    use serde_json::json;

    fn set(rules: Value) -> RuleSet {
        let rules: Vec<Rule> = serde_json::from_value(rules).expect("rules JSON");
        RuleSet::compile(&rules).expect("rules compile")
    }

    fn run(rules: &RuleSet, ep: Endpoint, body: Value) -> ProcessedRequest {
        process_request(rules, ep, &serde_json::to_vec(&body).unwrap()).expect("valid request")
    }

    #[test]
    fn system_prompt_modes() {
        let chat = json!({"messages": [{"role": "system", "content": "Base."}, {"role": "user", "content": "hi"}]});
        for (mode, want) in [
            ("prepend", "Be brief.\n\nBase."),
            ("append", "Base.\n\nBe brief."),
            ("replace", "Be brief."),
        ] {
            let rules = set(
                json!([{"id": "sp", "action": {"type": "system_prompt", "mode": mode, "text": "Be brief."}}]),
            );
            let out = run(&rules, Endpoint::ChatCompletions, chat.clone());
            assert_eq!(
                out.body["messages"][0]["content"], want,
                "mode {mode} on an existing system message"
            );
            assert_eq!(
                out.body["messages"].as_array().unwrap().len(),
                2,
                "no message added when one exists"
            );
            assert_eq!(out.applied, vec!["sp"]);
        }
        let rules = set(
            json!([{"id": "sp", "action": {"type": "system_prompt", "mode": "append", "text": "S"}}]),
        );
        let out = run(
            &rules,
            Endpoint::ChatCompletions,
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(
            out.body["messages"][0],
            json!({"role": "system", "content": "S"}),
            "inserted first when absent"
        );
        let out = run(&rules, Endpoint::Completions, json!({"prompt": "Q"}));
        assert_eq!(out.body["prompt"], "Q\nS", "append on a raw prompt");
        let rules = set(
            json!([{"id": "sp", "action": {"type": "system_prompt", "mode": "replace", "text": "S"}}]),
        );
        let out = run(&rules, Endpoint::LlamaCompletion, json!({"prompt": "Q"}));
        assert!(
            out.applied.is_empty() && out.body["prompt"] == "Q",
            "replace does not apply to raw prompts"
        );
    }

    #[test]
    fn defaults_overrides_clamps() {
        let rules = set(json!([
            {"id": "d", "action": {"type": "default_parameter", "name": "temperature", "value": 0.2}},
            {"id": "dn", "action": {"type": "default_parameter", "name": "n_probs", "value": 3}},
            {"id": "o", "action": {"type": "override_parameter", "name": "samplers", "value": ["top_k", "temperature"]}},
            {"id": "c", "action": {"type": "clamp_parameter", "name": "top_k", "min": 1, "max": 40}},
            {"id": "cm", "action": {"type": "clamp_parameter", "name": "max_tokens", "max": 64}},
            {"id": "off", "enabled": false, "action": {"type": "override_parameter", "name": "cache_prompt", "value": false}},
            {"id": "only_llama", "endpoints": ["llama_completion"], "action": {"type": "override_parameter", "name": "grammar", "value": "root ::= \"x\""}}
        ]));
        let out = run(
            &rules,
            Endpoint::ChatCompletions,
            json!({"temperature": 0.9, "top_k": 100, "max_tokens": 10, "cache_prompt": true}),
        );
        assert_eq!(
            out.body["temperature"], 0.9,
            "a default never replaces a value the client sent"
        );
        assert_eq!(out.body["n_probs"], 3, "a default fills an absent field");
        assert_eq!(out.body["samplers"], json!(["top_k", "temperature"]));
        assert_eq!(
            out.body["top_k"],
            json!(40),
            "clamped to max and still an integer"
        );
        assert_eq!(out.body["max_tokens"], 10, "inside the range: untouched");
        assert_eq!(out.body["cache_prompt"], true, "disabled rule does nothing");
        assert!(
            out.body.get("grammar").is_none(),
            "rule limited to another endpoint"
        );
        assert_eq!(
            out.applied,
            vec!["dn", "o", "c"],
            "only rules that changed something count"
        );
        let out = run(
            &rules,
            Endpoint::LlamaCompletion,
            json!({"prompt": "x", "top_k": 0}),
        );
        assert_eq!(out.body["top_k"], json!(1));
        assert_eq!(out.body["grammar"], "root ::= \"x\"");
    }

    #[test]
    fn rewrite_and_stop() {
        let rules = set(json!([
            {"id": "rw", "action": {"type": "rewrite_messages", "pattern": "(?i)\\bfoo\\b", "replacement": "bar", "roles": ["user"]}},
            {"id": "st", "action": {"type": "stop_sequences", "sequences": ["\n\n", "END"]}}
        ]));
        let out = run(
            &rules,
            Endpoint::ChatCompletions,
            json!({
                "messages": [{"role": "system", "content": "foo"}, {"role": "user", "content": "Foo food foo"},
                             {"role": "user", "content": [{"type": "text", "text": "foo"}]}],
                "stop": "END"
            }),
        );
        assert_eq!(
            out.body["messages"][0]["content"], "foo",
            "system role not in the role list"
        );
        assert_eq!(out.body["messages"][1]["content"], "bar food bar");
        assert_eq!(
            out.body["messages"][2]["content"][0]["text"], "bar",
            "content parts are rewritten"
        );
        assert_eq!(
            out.body["stop"],
            json!(["END", "\n\n"]),
            "merged, existing kept first, no duplicate"
        );
        assert_eq!(out.applied, vec!["rw", "st"]);
        let err =
            process_request(&rules, Endpoint::ChatCompletions, br#"{"stop": 5}"#).unwrap_err();
        assert!(
            matches!(err, RequestError::Field { ref field, .. } if field == "stop"),
            "{err}"
        );
        assert!(matches!(
            process_request(&rules, Endpoint::Completions, b"[1]"),
            Err(RequestError::NotObject)
        ));
        assert!(matches!(
            process_request(&rules, Endpoint::Completions, b"{"),
            Err(RequestError::Json(_))
        ));
    }

    #[test]
    fn cache_key_is_canonical() {
        let a = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "user": "alice", "cache_prompt": true});
        let b = json!({"cache_prompt": false, "messages": [{"content": "x", "role": "user"}], "model": "m"});
        assert_eq!(
            cache_key(Endpoint::ChatCompletions, &a),
            cache_key(Endpoint::ChatCompletions, &b),
            "key order and output-neutral fields do not change the key"
        );
        let c = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.5});
        assert_ne!(
            cache_key(Endpoint::ChatCompletions, &a),
            cache_key(Endpoint::ChatCompletions, &c)
        );
        assert_ne!(
            cache_key(Endpoint::ChatCompletions, &a),
            cache_key(Endpoint::Completions, &a)
        );
        let s =
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": true});
        assert_ne!(
            cache_key(Endpoint::ChatCompletions, &b),
            cache_key(Endpoint::ChatCompletions, &s),
            "streamed and plain answers are cached apart"
        );
    }

    #[test]
    fn endpoints_from_path() {
        assert_eq!(
            Endpoint::from_path("/v1/chat/completions"),
            Some(Endpoint::ChatCompletions)
        );
        assert_eq!(
            Endpoint::from_path("/completion"),
            Some(Endpoint::LlamaCompletion)
        );
        assert_eq!(Endpoint::from_path("/v1/models"), None);
    }
}
