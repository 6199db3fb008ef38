//! The tensor layer: tensor-aware operations by tensor name and element index.
//!
//! Overview:
//! - [`TensorLayer`] is the tensor layer on an attached model region: `modifyWeight(s)`,
//!   `extractTensorWeights`, `transformTensorWeights`, `cloneTensor`, `swapTensors`,
//!   `injectTemporaryData`, `applyMemoryPatch`, value search, `lock/unlockMemoryRegion`, and
//!   tensor-scoped byte access. Every change goes through the engine's journal (validated
//!   first, one undo step, one event tagged [`crate::Layer::Tensor`]).
//! - [`Selection`] says which elements (all, rows, columns, element list, flat range, one
//!   attention head) and resolves them against a tensor's shape;
//! - [`TransformOp`] says what to do with their values (scale, add, set, clamp, zero, negate,
//!   seeded noise, replace non-finite, lerp with another model), computed on f32;
//! - [`encode_into`] stores new values quant-aware: the block's scales are kept when the value
//!   lies on the element's grid, else only that block is re-quantized and the side effects on
//!   its other elements are reported.
//!
//! ```no_run
//! use hotpatch_core::{Engine, Mode};
//! use hotpatch_core::tensor::{Selection, TensorLayer, TransformOp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::new();
//! let region = engine.open("model.gguf", Mode::Staged)?;
//! let layer = TensorLayer::attach(&engine, region)?;
//! let edit = layer.modify_weight("blk.0.attn_q.weight", 1234, 0.5)?;
//! println!("stored {} (asked {})", edit.stored, edit.requested);
//! layer.transform("blk.0.attn_output.weight", &Selection::Head { head: 1 }, &TransformOp::Zero, None)?;
//! engine.undo()?;
//! # Ok(()) }
//! ```

mod codec;
mod layer;
mod selection;
mod transform;

pub use codec::{
    check_finite, element_bits, encode_into, EncodeError, EncodeReport, SideEffect,
    MAX_LISTED_SIDE_EFFECTS,
};
pub use layer::{
    head_geometry, OtherModel, TensorError, TensorLayer, TensorScan, TransformReport, ValueClass,
    ValueHit, ValueQuery, ValueSearch, WeightChange, WeightEdit,
};
pub use selection::{count, glob_match, HeadGeometry, Selection, SelectionError};
pub use transform::{noise_z, splitmix64, TransformError, TransformOp};
