//! The settings of the hotpatch proxy: the `server` section of a configuration file.
//!
//! Overview: one definition of the section, shared by the edit engine (`hotpatch-core`, which
//! reads, validates, previews and writes whole configurations and must not depend on tokio) and
//! the proxy (`hotpatch-proxy`, which compiles the rules into its runtime `RuleSet`). The
//! types derive serde and JSON Schema (published in `presets/schema.json` through the core's
//! configuration schema); [`ServerSettings::from_json`] and [`ServerSettings::validate`]
//! report the path of a bad field (`server.rules[2] (id "x").action.pattern: ...`).
//!
//! - [`server`]: [`ServerSettings`], [`CacheSettings`], the upstream URL ([`parse_upstream`]);
//! - [`rules`]: [`Rule`] and its actions, and their validated, compiled form
//!   ([`rules::compile`]: regexes built, parameter values type-checked).
//!
//! ```
//! use hotpatch_settings::ServerSettings;
//! let s = ServerSettings::from_json(r#"{"port": 9000}"#).unwrap();
//! assert_eq!(s.port, 9000);
//! let e = ServerSettings::from_json(r#"{"cache": {"ttl": 3}}"#).unwrap_err();
//! assert!(e.to_string().starts_with("server.cache"), "{e}");
//! ```

pub mod rules;
pub mod server;

pub use rules::{Endpoint, FilterAction, InjectMode, Rule, RuleAction, RuleError};
pub use server::{parse_upstream, CacheSettings, ServerSettings, SettingsError, Upstream};
