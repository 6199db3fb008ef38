//! Which model the app opens at launch (`hotpatch_core::launch`): the first command-line
//! argument that is not a flag, `$HOTPATCH_MODEL`, then the demo model
//! `demo/hotpatch-demo.gguf`, looked for above the working directory, above the executable and
//! in the source tree the binary was built from.

use std::path::{Path, PathBuf};

use hotpatch_core::launch;

pub use hotpatch_core::launch::DEMO_MODEL;

fn roots() -> Vec<PathBuf> {
    // The checkout this binary was built from (src-tauri/..).
    launch::default_roots(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// The model to open at launch, if any can be found.
pub fn startup_model(args: impl IntoIterator<Item = String>) -> Option<PathBuf> {
    launch::startup_model(args, std::env::var_os("HOTPATCH_MODEL"), &roots())
}

/// The demo model, if one of the usual places holds it.
pub fn find_demo_model() -> Option<PathBuf> {
    launch::find_demo_model(&roots())
}
