//! What every test binary of the CLI shares: running the built `hotpatch`, paths as arguments,
//! and the address `hotpatch serve` prints.
#![allow(dead_code)] // Each test binary uses a different part.

use std::path::Path;
use std::process::{Command, Output};

/// The built `hotpatch`, to be given arguments.
pub fn hotpatch_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hotpatch"))
}

/// Runs the built `hotpatch` with `args` to completion.
pub fn hotpatch(args: &[&str]) -> Output {
    hotpatch_cmd().args(args).output().expect("hotpatch runs")
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The `host:port` of the first line `hotpatch serve` prints (`listening on http://ADDR …`).
pub fn listening_addr(first: &str) -> String {
    first
        .strip_prefix("listening on http://")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned()
}
