//! Tensors larger than one piece of parallel work (`diff`'s 1 Mi elements, `--raw-f32`'s
//! 256 Ki): the real-size fixture of `scripts/make_big_model.py`, at a vocabulary of 4,096 rows
//! (4,096 × 640 Q8_0 = 2.6 M values, three diff pieces and ten output pieces), checked against
//! gguf-py.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

const ORACLE: &str = "crates/cli/tests/oracle/big_tensor.py";

fn big_model(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let p = dir.join(name);
    let mut args = vec![p.to_str().unwrap(), "--rows", "4096"];
    args.extend_from_slice(extra);
    run_py("scripts/make_big_model.py", &args);
    p
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn raw_f32_over_many_pieces_matches_gguf_py() {
    let dir = tempdir();
    let m = big_model(dir.path(), "big.gguf", &[]);
    let ms = m.to_str().unwrap();
    let want = dir.path().join("want.f32");
    run_py(
        ORACLE,
        &["values", ms, "token_embd.weight", want.to_str().unwrap()],
    );
    let want = f32s(&std::fs::read(&want).unwrap());
    assert_eq!(want.len(), 4096 * 640);
    // The whole tensor, then a slice that starts and ends inside Q8_0 blocks and spans pieces.
    for (start, count) in [(None, None), (Some(100_003u64), Some(700_001u64))] {
        let out = dir.path().join("got.f32");
        let mut args = vec![
            "tensor".to_string(),
            ms.to_string(),
            "token_embd.weight".into(),
            "--raw-f32".into(),
            out.to_str().unwrap().into(),
        ];
        if let (Some(s), Some(c)) = (start, count) {
            args.extend([
                "--start".into(),
                s.to_string(),
                "--count".into(),
                c.to_string(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = hotpatch(&args);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let got = f32s(&std::fs::read(&out).unwrap());
        let s = start.unwrap_or(0) as usize;
        let n = count.map_or(want.len(), |c| c as usize);
        assert_eq!(got.len(), n, "one f32 per element asked for");
        let bad = (0..n).find(|&i| got[i].to_bits() != want[s + i].to_bits());
        assert_eq!(
            bad, None,
            "every value equals gguf-py's, bit for bit, in file order (pieces written at their place)"
        );
    }
}

#[test]
fn diff_of_a_tensor_split_over_threads_matches_numpy_and_one_thread() {
    let dir = tempdir();
    let a = big_model(dir.path(), "a.gguf", &[]);
    let b = big_model(dir.path(), "b.gguf", &["--perturb"]);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let runs: Vec<Value> = ["1", "2", "3"]
        .iter()
        .map(|t| ok_json(&["diff", a, b, "--json", "--map", "16x64", "--threads", t]))
        .collect();
    assert_eq!(
        runs[0], runs[1],
        "2 threads give exactly what 1 thread gives"
    );
    assert_eq!(
        runs[0], runs[2],
        "3 threads give exactly what 1 thread gives"
    );
    let t = runs[0]["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "token_embd.weight")
        .expect("token_embd compared")
        .clone();
    assert_eq!(t["bytes_identical"], Value::Bool(false));
    let want: Value =
        serde_json::from_str(&run_py(ORACLE, &["diff", a, b, "token_embd.weight"])).unwrap();
    assert_eq!(
        t["n_diff"], want["n_diff"],
        "differing elements counted exactly"
    );
    for key in ["max_abs", "mean_abs", "rmse", "cosine"] {
        let (g, e) = (t[key].as_f64().unwrap(), want[key].as_f64().unwrap());
        assert!(
            (g - e).abs() <= 1e-6 * e.abs().max(1e-12),
            "{key}: ours {g}, numpy {e} (the unchanged pieces count in the sums too)"
        );
    }
    // Rows 38 %..42 % were perturbed: in a 64-row map of 4,096 rows, cells rows 24..=26 only.
    let map = &t["map"];
    let cells: Vec<f64> = map["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_f64().unwrap())
        .collect();
    let w = map["width"].as_u64().unwrap() as usize;
    let hot: Vec<usize> = (0..cells.len() / w)
        .filter(|r| cells[r * w..(r + 1) * w].iter().any(|&c| c > 0.0))
        .collect();
    assert_eq!(hot, vec![24, 25, 26], "only the perturbed rows differ");
    // The identical tensors keep the byte fast path.
    let same = runs[0]["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["bytes_identical"] == Value::Bool(true))
        .count();
    assert_eq!(
        same, 18,
        "every tensor but the two perturbed ones is byte-identical"
    );
}

#[test]
fn search_of_a_real_size_layout_matches_a_naive_scan() {
    let dir = tempdir();
    let m = big_model(dir.path(), "big.gguf", &[]);
    let bytes = std::fs::read(&m).unwrap();
    // A two-byte pattern with a wildcard: thousands of matches, spread over the whole file.
    let pat = [0x7fu8, 0x00];
    let want: Vec<u64> = (0..bytes.len().saturating_sub(2))
        .filter(|&i| bytes[i] == pat[0] && bytes[i + 2] == pat[1])
        .map(|i| i as u64)
        .collect();
    assert!(want.len() > 100, "the pattern occurs often enough to test");
    let got = ok_json(&[
        "search",
        m.to_str().unwrap(),
        "7f ?? 00",
        "--json",
        "--limit",
        "1000000",
    ]);
    let offsets: Vec<u64> = got["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, want, "every match, once, in file order");
}
