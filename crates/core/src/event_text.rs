//! The words a log row uses for an engine [`Event`](crate::Event)'s origin: its layer, its
//! operation and what it addressed (the studio's patch log shows these).

use crate::{Layer, Operation, Target};

/// The layer's name in a log row (`bytes`).
pub fn layer_name(l: Layer) -> &'static str {
    match l {
        Layer::Memory => "memory",
        Layer::Bytes => "bytes",
        Layer::Tensor => "tensor",
        Layer::Server => "server",
        Layer::Manager => "manager",
        Layer::Engine => "engine",
    }
}

/// The operation's name in a log row (`xor`, `bit and`; a higher layer's `transform:scale` as
/// `scale`).
pub fn operation_name(o: &Operation) -> String {
    match o {
        Operation::Write => "write".into(),
        Operation::WriteBatch => "write batch".into(),
        Operation::Fill => "fill".into(),
        Operation::Copy => "copy".into(),
        Operation::Swap => "swap".into(),
        Operation::XorKey => "xor".into(),
        Operation::BitOp(s) => format!("bit {s}"),
        Operation::RotateRange => "rotate".into(),
        Operation::Reverse => "reverse".into(),
        Operation::ReverseElements => "reverse elements".into(),
        Operation::Undo => "undo".into(),
        Operation::Redo => "redo".into(),
        Operation::Group => "group".into(),
        Operation::TemporaryApply => "temporary apply".into(),
        Operation::TemporaryRevert => "temporary revert".into(),
        Operation::TemporaryRevertFailed(why) => format!("temporary revert failed: {why}"),
        Operation::Save => "save".into(),
        Operation::SaveAs => "save as".into(),
        Operation::Recovered => "recovered".into(),
        Operation::Protect => "protect".into(),
        Operation::Unprotect => "unprotect".into(),
        Operation::MapRegion => "map".into(),
        Operation::UnmapRegion => "unmap".into(),
        // Higher layers name their operations `layer:op_name` (`transform:scale`).
        Operation::Other(s) => s.rsplit(':').next().unwrap_or(s).replace('_', " "),
    }
}

/// What the change addressed, in a log row (`0x40 +16 B`, a tensor name, a file name).
pub fn target_text(t: &Target) -> String {
    match t {
        Target::Range { offset, len, .. } => format!("0x{offset:x} +{len} B"),
        Target::Ranges { offset, count, .. } => format!("{count} ranges from 0x{offset:x}"),
        Target::Tensor { name, .. } => name.clone(),
        Target::Region(_) => "whole model".into(),
        Target::File(p) => p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        Target::None => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_as_words() {
        assert_eq!(layer_name(Layer::Bytes), "bytes");
        assert_eq!(operation_name(&Operation::XorKey), "xor");
        assert_eq!(operation_name(&Operation::BitOp("and".into())), "bit and");
        assert_eq!(
            operation_name(&Operation::Other("transform:replace_non_finite".into())),
            "replace non finite"
        );
        assert_eq!(target_text(&Target::None), "—");
        assert_eq!(target_text(&Target::File("/a/b/m.gguf".into())), "m.gguf");
    }
}
