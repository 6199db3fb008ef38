//! Integration tests of the tensor layer, diff engine, configurations and manager, checked
//! against numpy/gguf-py (the project `.venv`) on demo models generated at test time.

#[path = "tensor/codec.rs"]
mod codec;
#[path = "tensor/common.rs"]
mod common;
#[path = "tensor/config.rs"]
mod config;
#[path = "tensor/config_metadata.rs"]
mod config_metadata;
#[path = "tensor/copy.rs"]
mod copy;
#[path = "tensor/damage.rs"]
mod damage;
#[path = "tensor/diff.rs"]
mod diff;
#[path = "tensor/heatmap.rs"]
mod heatmap;
#[path = "tensor/manager.rs"]
mod manager;
#[path = "tensor/metadata.rs"]
mod metadata;
#[path = "tensor/ops.rs"]
mod ops;
#[path = "tensor/split.rs"]
mod split;
#[path = "tensor/tokens.rs"]
mod tokens;
