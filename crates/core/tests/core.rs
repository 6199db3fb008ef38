//! The integration tests of hotpatch-core, one binary with a module per topic.

mod core {
    mod basics;
    pub mod common;
    mod layers;
}
