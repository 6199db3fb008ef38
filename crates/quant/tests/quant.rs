//! Integration tests of hotpatch-quant against the oracles (gguf-py and the real ggml).
//!
//! One test binary for the crate; the test modules live in `tests/quant/`, the shared oracle
//! harness and test data in `tests/common/` (usable by any test crate root with `mod common;`).

mod common;

#[path = "quant/types_table.rs"]
mod types_table;

#[path = "quant/harness.rs"]
mod harness;

#[path = "quant/codecs.rs"]
mod codecs;

#[path = "quant/api.rs"]
mod api;

// K-quants and IQ types (their own oracle runner in kq/).
#[path = "kq/support.rs"]
mod kq_support;

#[path = "kq/kquant.rs"]
mod kquant;

#[path = "kq/iquant.rs"]
mod iquant;
