//! Shared test support for hotpatch-quant: the codec oracles ([`oracle`]) and deterministic
//! test data ([`data`]). Include it from a test crate root with `mod common;`.
pub mod data;
pub mod oracle;
