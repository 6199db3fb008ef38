//! Rendering a chat template the way the runtimes do, on fixed conversations.
//!
//! The environment follows Hugging Face's `apply_chat_template` and llama.cpp's own Jinja
//! engine (`common/jinja`, which copies it): `trim_blocks` and `lstrip_blocks` on, loop
//! controls, the globals `raise_exception`, `strftime_now` and `namespace`, a `tojson` that
//! writes what Python's `json.dumps(ensure_ascii=False)` writes, Python string and dict
//! methods (`.strip()`, `.split()`, `.items()`, via minijinja-contrib's pycompat), and the
//! variables `messages`, `bos_token`, `eos_token`, `add_generation_prompt` (true), `tools`
//! (none) and `enable_thinking` (true, as llama.cpp passes it). Rendering is bounded: fuel
//! limits the instructions a template may run, so a hostile loop ends with an error.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};

use crate::Rendering;

/// Instructions a render may execute (a real template needs a few thousand).
pub const FUEL: u64 = 5_000_000;

/// The variables a template is rendered with, besides the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    /// `bos_token` (the text of `tokenizer.ggml.bos_token_id`, or empty).
    pub bos_token: String,
    /// `eos_token`.
    pub eos_token: String,
    /// What `strftime_now` reports, as Unix seconds (UTC).
    pub now_unix: i64,
}

/// A fixed conversation: its name and `(role, content)` turns.
pub type Conversation = (&'static str, Vec<(&'static str, String)>);

/// The question every conversation asks.
pub const QUESTION: &str = "What is the capital of France?";

/// The fixed conversations every template is rendered on.
pub fn conversations() -> Vec<Conversation> {
    vec![
        ("user", vec![("user", QUESTION.to_string())]),
        (
            "system-user",
            vec![
                ("system", "You are a helpful assistant.".to_string()),
                ("user", QUESTION.to_string()),
            ],
        ),
        (
            "multi-turn",
            vec![
                ("user", "Hi!".to_string()),
                ("assistant", "Hello! How can I help you today?".to_string()),
                ("user", QUESTION.to_string()),
            ],
        ),
    ]
}

fn environment(now_unix: i64) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(100);
    env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("the template raised: {msg}"),
        ))
    });
    env.add_function("strftime_now", move |fmt: String| -> String {
        strftime(&fmt, now_unix)
    });
    env.add_filter("tojson", tojson);
    Ok(env)
}

/// Renders `source` on `turns` with the given context.
pub fn render(
    source: &str,
    turns: &[(&str, String)],
    ctx: &RenderContext,
) -> Result<String, String> {
    let env = environment(ctx.now_unix).map_err(|e| e.to_string())?;
    let source = super::neutralize_generation_tags(source);
    let tmpl = env
        .template_from_named_str("chat_template", &source)
        .map_err(|e| describe(&e))?;
    let messages: Vec<Value> = turns
        .iter()
        .map(|(role, content)| {
            Value::from_pairs([
                ("role", Value::from(*role)),
                ("content", Value::from(content.as_str())),
            ])
        })
        .collect();
    let vars = Value::from_pairs([
        ("messages", Value::from(messages)),
        ("bos_token", Value::from(ctx.bos_token.as_str())),
        ("eos_token", Value::from(ctx.eos_token.as_str())),
        ("add_generation_prompt", Value::from(true)),
        ("tools", Value::from(())),
        ("enable_thinking", Value::from(true)),
    ]);
    tmpl.render(vars).map_err(|e| describe(&e))
}

fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    if let Some(line) = e.line() {
        if !s.contains("line") {
            s.push_str(&format!(" (line {line})"));
        }
    }
    s
}

/// Renders `source` on every fixed conversation.
pub fn render_all(source: &str, key: &str, ctx: &RenderContext) -> Vec<Rendering> {
    conversations()
        .into_iter()
        .map(|(name, turns)| {
            let r = render(source, &turns, ctx);
            Rendering {
                template: key.to_string(),
                conversation: name.to_string(),
                prompt: r.as_ref().ok().cloned(),
                error: r.err(),
            }
        })
        .collect()
}

/// Python's `json.dumps(value, ensure_ascii=False)` (with `indent=` when given).
fn tojson(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let _: Option<Value> = kwargs.get("ensure_ascii")?;
    let _: Option<Value> = kwargs.get("separators")?;
    let _: Option<Value> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        Some(i) if i.kind() == ValueKind::Number => usize::try_from(i).ok(),
        Some(i) if i.kind() == ValueKind::String => Some(i.as_str().map_or(0, str::len)),
        _ => None,
    };
    let mut out = String::new();
    write_json(&v, indent, 0, &mut out)?;
    Ok(Value::from(out))
}

fn write_json(
    v: &Value,
    indent: Option<usize>,
    depth: usize,
    out: &mut String,
) -> Result<(), Error> {
    if depth > 64 {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson: value nested too deep",
        ));
    }
    let newline = |out: &mut String, d: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * d));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if let Ok(i) = i64::try_from(v.clone()) {
                if !v.to_string().contains('.') {
                    out.push_str(&i.to_string());
                    return Ok(());
                }
            }
            let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
            if f.is_nan() {
                out.push_str("NaN");
            } else if f.is_infinite() {
                out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
            } else if f.fract() == 0.0 && f.abs() < 1e16 {
                out.push_str(&format!("{f:.1}"));
            } else {
                out.push_str(&format!("{f}"));
            }
        }
        ValueKind::String | ValueKind::Bytes => {
            out.push('"');
            for c in v.to_string().chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{8}' => out.push_str("\\b"),
                    '\u{c}' => out.push_str("\\f"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json(item, indent, depth + 1, out)?;
            }
            newline(out, depth);
            out.push(']');
        }
        ValueKind::Map => {
            let keys: Vec<Value> = v.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json(&Value::from(k.to_string()), None, depth + 1, out)?;
                out.push_str(": ");
                write_json(&v.get_item(k)?, indent, depth + 1, out)?;
            }
            newline(out, depth);
            out.push('}');
        }
        _ => {
            let s = v.to_string();
            write_json(&Value::from(s), indent, depth, out)?;
        }
    }
    Ok(())
}

/// `(year, month, day)` of a day count since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// C `strftime` for the fields chat templates use, in UTC.
pub fn strftime(fmt: &str, unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let yday = days - {
        // days of Jan 1 of year y
        let mut lo = days - 366;
        while civil(lo).0 < y {
            lo += 1;
        }
        lo
    } + 1;
    let month = MONTHS[(m - 1) as usize];
    let mut out = String::new();
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('b') | Some('h') => out.push_str(&month[..3]),
            Some('B') => out.push_str(month),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('I') => out.push_str(&format!("{:02}", if hh % 12 == 0 { 12 } else { hh % 12 })),
            Some('p') => out.push_str(if hh < 12 { "AM" } else { "PM" }),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('F') => out.push_str(&format!("{y}-{m:02}-{d:02}")),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_matches_known_dates() {
        // 2024-07-26 00:00:00 UTC, a Friday (the date Llama 3.1's template defaults to).
        assert_eq!(strftime("%d %b %Y", 1_721_952_000), "26 Jul 2024");
        assert_eq!(
            strftime("%A %B %e, %j %H:%M:%S %%", 1_721_952_000 + 3_723),
            "Friday July 26, 208 01:02:03 %"
        );
        assert_eq!(strftime("%Y-%m-%d", 0), "1970-01-01");
        assert_eq!(strftime("%F", 951_782_400), "2000-02-29");
    }

    #[test]
    fn tojson_is_pythons() {
        let env = environment(0).unwrap();
        let out = env
            .render_str(
                "{{ {'a': 1, 'b': [true, none, 'é\"'], 'c': 1.5} | tojson }}|{{ [1] | tojson(indent=2) }}",
                (),
            )
            .unwrap();
        assert_eq!(
            out,
            "{\"a\": 1, \"b\": [true, null, \"é\\\"\"], \"c\": 1.5}|[\n  1\n]"
        );
    }
}
