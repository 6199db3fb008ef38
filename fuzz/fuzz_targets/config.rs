//! Fuzzes a configuration's text (hotpatch apply, the studio's import); the body and its invariants are
//! `hotpatch_fuzzbodies::config` (also run over `fuzz/seeds/config/` by cargo test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hotpatch_fuzzbodies::config(data);
});
