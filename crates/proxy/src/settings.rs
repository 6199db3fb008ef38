//! Proxy settings: the `server` section of the configuration JSON.
//!
//! The type is defined once, in the tokio-free `hotpatch-settings` crate, and shared with the
//! edit engine's configurations; it is re-exported here. Every field has a default, unknown
//! fields are refused, and [`ServerSettings::from_json`] reports the path of a bad field
//! (`server.rules[2] (id "x").action.pattern`).

pub use hotpatch_settings::server::{
    parse_upstream, CacheSettings, ServerSettings, SettingsError, Upstream,
};
