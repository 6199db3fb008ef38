//! Fuzzes the proxy's rewriting of request bodies and whole answers; the body and its invariants are
//! `hotpatch_fuzzbodies::proxy_rewrite` (also run over `fuzz/seeds/proxy_rewrite/` by cargo test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hotpatch_fuzzbodies::proxy_rewrite(data);
});
