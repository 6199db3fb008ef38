//! The integration tests of hotpatch-core, one binary with a module per topic.

mod core {
    mod baseline;
    mod basics;
    pub mod common;
    mod crash;
    mod gguf;
    mod layers;
    mod live_llama;
    pub mod oracle;
    mod property;
    mod stress;
}
