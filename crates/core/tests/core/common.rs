#![allow(dead_code)] // helpers shared by test modules; not every module uses every helper
//! Shared helpers: scratch directories and deterministic data.

use std::path::PathBuf;

/// A fresh empty directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("hotpatch-core-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// xorshift64*: deterministic pseudo-random numbers for tests.
pub use hotpatch_testkit::Rng;

/// A file of `len` deterministic bytes.
pub fn data_file(dir: &std::path::Path, name: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let data = Rng(seed | 1).bytes(len);
    let p = dir.join(name);
    std::fs::write(&p, &data).expect("write data file");
    (p, data)
}

/// FNV-1a 64 of bytes (to print compact evidence in messages).
pub fn hash(b: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
