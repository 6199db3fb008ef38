//! `hotpatch diff`, `edit`, `apply`, `scan`, `search`: the built binary on demo models written
//! at test time, checked against gguf-py/numpy (tests/oracle/tensor_oracle.py).

#[path = "tensor_cli/big.rs"]
mod big;
mod cli_common;
#[path = "tensor_cli/common.rs"]
mod common;
#[path = "tensor_cli/damage.rs"]
mod damage;
#[path = "tensor_cli/diff.rs"]
mod diff;
#[path = "tensor_cli/edit.rs"]
mod edit;
#[path = "tensor_cli/server.rs"]
mod server;
#[path = "tensor_cli/surgery.rs"]
mod surgery;
