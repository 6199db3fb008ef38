//! Fuzzes metadata value text as typed by users; the body and its invariants are
//! `hotpatch_fuzzbodies::meta_value` (also run over `fuzz/seeds/meta_value/` by cargo test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hotpatch_fuzzbodies::meta_value(data);
});
