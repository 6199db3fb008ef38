//! Fuzzes hex search patterns against a naive scan; the body and its invariants are
//! `hotpatch_fuzzbodies::hex_pattern` (also run over `fuzz/seeds/hex_pattern/` by cargo test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hotpatch_fuzzbodies::hex_pattern(data);
});
