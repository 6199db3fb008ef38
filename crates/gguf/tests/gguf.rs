//! Integration tests of hotpatch-gguf: against gguf-py (fixtures written at test time),
//! hostile files, writer round trips, split models.

#[path = "gguf/common.rs"]
mod common;
#[path = "gguf/hostile.rs"]
mod hostile;
#[path = "gguf/oracle.rs"]
mod oracle;
#[path = "gguf/roundtrip.rs"]
mod roundtrip;
#[path = "gguf/split.rs"]
mod split;
