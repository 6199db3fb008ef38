//! Model surgery (`hotpatch_core::surgery`) on real-layout models written at test time (the
//! demo model; llama fixtures from gguf-py), checked against numpy/gguf-py and ggml's
//! reference quantizer (tests/oracle/surgery_oracle.py) and loaded by real llama.cpp.

#[path = "surgery/adapters.rs"]
mod adapters;
#[path = "surgery/common.rs"]
mod common;
#[path = "surgery/convert.rs"]
mod convert;
#[path = "surgery/layers.rs"]
mod layers;
#[path = "surgery/merge.rs"]
mod merge;
