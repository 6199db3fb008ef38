//! Layer 3: tensor-aware operations by tensor name and element index.
//!
//! Overview:
//! - [`Selection`] says which elements (all, rows, columns, element list, flat range, one
//!   attention head) and resolves them against a tensor's shape;
//! - [`TransformOp`] says what to do with their values (scale, add, set, clamp, zero, negate,
//!   seeded noise, replace non-finite, lerp with another model), computed on f32;

mod codec;
mod layer;
mod selection;
mod transform;

pub use codec::{
    element_bits, encode_into, EncodeError, EncodeReport, SideEffect, MAX_LISTED_SIDE_EFFECTS,
};
pub use layer::{
    head_geometry, OtherModel, TensorError, TensorLayer, TensorScan, TransformReport, ValueClass,
    ValueHit, ValueQuery, ValueSearch, WeightChange, WeightEdit,
};
pub use selection::{count, HeadGeometry, Selection, SelectionError};
pub use transform::{noise_z, splitmix64, TransformError, TransformOp};
