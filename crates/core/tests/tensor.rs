//! Integration tests of the tensor layer, diff engine, configurations and manager, checked
//! against numpy/gguf-py (the project `.venv`) on demo models generated at test time.

mod common;
mod diff;
