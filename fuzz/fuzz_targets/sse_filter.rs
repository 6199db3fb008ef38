//! Fuzzes the proxy's SSE filter over streamed answers, fed whole and in pieces; the body and its invariants are
//! `hotpatch_fuzzbodies::sse_filter` (also run over `fuzz/seeds/sse_filter/` by cargo test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hotpatch_fuzzbodies::sse_filter(data);
});
