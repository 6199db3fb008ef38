//! The `server` section: settings of the request/response proxy.
//!
//! One definition, in the tokio-free `hotpatch-settings` crate, shared with the proxy: the core
//! reads, validates, previews and writes it as part of a [`Configuration`](super::Configuration),
//! and the proxy compiles the same value into its runtime rule set. Re-exported here so that a
//! configuration's types are all reachable from `hotpatch_core::config`.

pub use hotpatch_settings::rules::{
    Endpoint, FilterAction, InjectMode, Rule, RuleAction, RuleError,
};
pub use hotpatch_settings::server::{
    parse_upstream, CacheSettings, ServerSettings, SettingsError, Upstream,
};
