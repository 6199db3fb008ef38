//! The `server` section: settings of the request/response proxy.
//!
//! Every field has a default, unknown fields are refused, and [`ServerSettings::from_json`]
//! reports the path of a bad field (`server.rules[2] (id "x").action.pattern`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules::{self, Rule, RuleAction, RuleError};

/// Settings of the proxy (the `server` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on (default 127.0.0.1: loopback only).
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free port (reported by the handle). Default 8090.
    pub port: u16,
    /// Upstream base URL, `http://host:port` (a path prefix is allowed). Required to serve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Time allowed to connect to the upstream, in ms (default 2000).
    pub connect_timeout_ms: u64,
    /// Time allowed for the upstream to answer (response headers), in ms (default 120000).
    pub response_timeout_ms: u64,
    /// Longest silence allowed inside a streamed upstream body, in ms (default 120000).
    pub idle_timeout_ms: u64,
    /// Time a client has to send a request's head (request line and headers), in ms (default
    /// 10000); also how long an idle keep-alive client connection stays open. A client slower
    /// than that is disconnected.
    pub header_read_timeout_ms: u64,
    /// Longest silence allowed while a client sends a request body, in ms (default 30000); a
    /// stalled body gets 408 and the connection is closed.
    pub body_read_timeout_ms: u64,
    /// How long an idle connection to the upstream is kept for reuse, in ms (default 30000).
    pub pool_idle_timeout_ms: u64,
    /// Largest request body accepted, in bytes (default 8 MiB); larger gets 413.
    pub body_limit_bytes: usize,
    /// Largest non-streamed upstream answer the proxy reads to rewrite, in bytes (default 64 MiB).
    pub response_limit_bytes: usize,
    /// The rules, applied in order.
    pub rules: Vec<Rule>,
    /// The response cache.
    pub cache: CacheSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8090,
            upstream: None,
            connect_timeout_ms: 2_000,
            response_timeout_ms: 120_000,
            idle_timeout_ms: 120_000,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            pool_idle_timeout_ms: 30_000,
            body_limit_bytes: 8 << 20,
            response_limit_bytes: 64 << 20,
            rules: Vec::new(),
            cache: CacheSettings::default(),
        }
    }
}

/// Response cache settings (the `server.cache` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Whether answers are cached (default false).
    pub enabled: bool,
    /// Seconds an answer stays valid (default 300).
    pub ttl_secs: u64,
    /// Most answers kept (default 1000).
    pub max_entries: usize,
    /// Most bytes kept, keys included (default 64 MiB).
    pub max_bytes: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            ttl_secs: 300,
            max_entries: 1000,
            max_bytes: 64 << 20,
        }
    }
}

/// The smallest `max_bytes` a cache may have (1 KiB).
pub const MIN_CACHE_BYTES: usize = 1024;

impl CacheSettings {
    /// Check the limits serde cannot: an answer lives at least a second, the cache holds at
    /// least one answer and 1 KiB. The error names the field (`server.cache.ttl_secs`).
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |field: &str, message: &str| {
            Err(SettingsError::Invalid {
                field: format!("cache.{field}"),
                message: message.into(),
            })
        };
        if self.ttl_secs == 0 {
            return invalid("ttl_secs", "must be at least 1 second");
        }
        if self.max_entries == 0 {
            return invalid("max_entries", "must be at least 1");
        }
        if self.max_bytes < MIN_CACHE_BYTES {
            return invalid("max_bytes", "must be at least 1024 bytes");
        }
        Ok(())
    }
}

/// Settings that cannot be used. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// JSON that does not fit the settings type.
    #[error("server.{path}: {message}")]
    Json {
        /// Path of the field (`rules[0].action.type`), `.` for the root.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A bad value.
    #[error("server.{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A rule that does not compile.
    #[error("server.{0}")]
    Rule(RuleError),
}

impl From<RuleError> for SettingsError {
    fn from(e: RuleError) -> Self {
        Self::Rule(e)
    }
}

/// A parsed upstream URL (`http` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `host:port`.
    pub authority: String,
    /// Path prefix without trailing slash (may be empty).
    pub prefix: String,
}

/// Parse an upstream base URL.
pub fn parse_upstream(url: &str) -> Result<Upstream, SettingsError> {
    let bad = |message: String| SettingsError::Invalid {
        field: "upstream".into(),
        message,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(bad(format!("scheme {other:?} is not supported (use http://; put a TLS terminator in front of remote servers)")))
        }
        None => return Err(bad(format!("{url:?} has no scheme (expected http://host:port)"))),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| bad(format!("{url:?} has no host")))?;
    if uri.query().is_some() {
        return Err(bad(format!("{url:?} must not have a query")));
    }
    let authority = if authority.port().is_some() {
        authority.as_str().to_owned()
    } else {
        format!("{}:80", authority.host())
    };
    Ok(Upstream {
        authority,
        prefix: uri.path().trim_end_matches('/').to_owned(),
    })
}

impl ServerSettings {
    /// Parse settings from the JSON of the `server` section, naming the bad field on error.
    pub fn from_json(json: &str) -> Result<Self, SettingsError> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let settings: Self =
            serde_path_to_error::deserialize(&mut *de).map_err(|e| SettingsError::Json {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        de.end().map_err(|e| SettingsError::Json {
            path: ".".into(),
            message: format!("unexpected data after the JSON value ({e})"),
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Check values serde cannot: limits, the upstream URL, the rules.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |field: &str, message: &str| {
            Err(SettingsError::Invalid {
                field: field.into(),
                message: message.into(),
            })
        };
        for (field, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("response_timeout_ms", self.response_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("pool_idle_timeout_ms", self.pool_idle_timeout_ms),
        ] {
            if v == 0 {
                return invalid(field, "must be at least 1");
            }
        }
        if self.body_limit_bytes == 0 {
            return invalid("body_limit_bytes", "must be at least 1");
        }
        if self.response_limit_bytes == 0 {
            return invalid("response_limit_bytes", "must be at least 1");
        }
        self.cache.validate()?;
        if let Some(u) = &self.upstream {
            parse_upstream(u)?;
        }
        rules::compile(&self.rules)?;
        Ok(())
    }

    /// The response-filter rules (what `applySafetyFilters` turns on).
    pub fn response_filters(&self) -> impl Iterator<Item = &Rule> {
        self.rules
            .iter()
            .filter(|r| matches!(r.action, RuleAction::FilterResponse { .. }))
    }

    /// A summary of the section for previews: rule kinds by id, cache state.
    pub fn summary(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for r in &self.rules {
            m.insert(
                format!("rule {}", r.id),
                format!(
                    "{}{}",
                    r.action.kind(),
                    if r.enabled { "" } else { " (disabled)" }
                ),
            );
        }
        m.insert(
            "cache".into(),
            if self.cache.enabled {
                "on".into()
            } else {
                "off".into()
            },
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bind_loopback() {
        let s = ServerSettings::from_json("{}").unwrap();
        assert_eq!(
            s.bind,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "loopback unless told otherwise"
        );
        assert!(!s.cache.enabled);
        let round: ServerSettings =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(round, s);
    }

    #[test]
    fn errors_name_the_field() {
        let e = ServerSettings::from_json(r#"{"cache": {"ttl": 3}}"#).unwrap_err();
        assert!(e.to_string().starts_with("server.cache"), "{e}");
        assert!(e.to_string().contains("ttl"), "{e}");
        let e =
            ServerSettings::from_json(r#"{"rules": [{"id": "a", "action": {"type": "nope"}}]}"#)
                .unwrap_err();
        assert!(e.to_string().starts_with("server.rules[0]"), "{e}");
        let e = ServerSettings::from_json(r#"{"port": 70000}"#).unwrap_err();
        assert!(e.to_string().starts_with("server.port"), "{e}");
        let e = ServerSettings::from_json(r#"{"upstream": "https://x"}"#).unwrap_err();
        assert!(e.to_string().starts_with("server.upstream"), "{e}");
        let e = ServerSettings::from_json(
            r#"{"rules": [{"id": "a", "action": {"type": "filter_response", "pattern": "[", "action": "redact"}}]}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("server.rules[0] (id \"a\").action.pattern"),
            "{e}"
        );
    }

    #[test]
    fn cache_limits_are_checked_naming_the_field() {
        for (json, field) in [
            (r#"{"cache": {"ttl_secs": 0}}"#, "server.cache.ttl_secs"),
            (
                r#"{"cache": {"max_entries": 0}}"#,
                "server.cache.max_entries",
            ),
            (
                r#"{"cache": {"max_bytes": 1023}}"#,
                "server.cache.max_bytes",
            ),
        ] {
            let e = ServerSettings::from_json(json).unwrap_err();
            assert!(e.to_string().starts_with(field), "{json}: {e}");
        }
        let ok = CacheSettings {
            ttl_secs: 1,
            max_entries: 1,
            max_bytes: MIN_CACHE_BYTES,
            ..CacheSettings::default()
        };
        assert_eq!(ok.validate(), Ok(()), "the bounds themselves are accepted");
        assert_eq!(CacheSettings::default().validate(), Ok(()));
        let mut s = ServerSettings::default();
        s.cache.ttl_secs = 0;
        assert!(
            s.validate().is_err(),
            "ServerSettings::validate checks the cache"
        );
    }

    #[test]
    fn upstream_urls() {
        assert_eq!(
            parse_upstream("http://127.0.0.1:8080").unwrap().authority,
            "127.0.0.1:8080"
        );
        let u = parse_upstream("http://localhost/api/").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.prefix.as_str()),
            ("localhost:80", "/api")
        );
        assert!(parse_upstream("127.0.0.1:8080").is_err(), "no scheme");
    }
}
