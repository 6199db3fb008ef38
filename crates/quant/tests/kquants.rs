//! K-quant and IQ codecs against the real ggml and gguf-py, and the one-element block editor.
//!
//! Fixtures are generated at test time (seeded random rows of several distributions plus edge
//! cases); the oracles run through `.venv/bin/python` (or `$HOTPATCH_PYTHON`) with
//! `tests/oracle/ggml.py`. Run `scripts/setup-oracles.sh` once first.

#[path = "kq/block.rs"]
mod block_edit;
#[path = "kq/common.rs"]
mod common;
#[path = "kq/iquant.rs"]
mod iquant;
#[path = "kq/kquant.rs"]
mod kquant;
