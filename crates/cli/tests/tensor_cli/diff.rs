//! `hotpatch diff`.

use serde_json::Value;

use crate::common::*;

#[test]
fn diff_json_ranks_perturbed_first_and_matches_numpy() {
    let dir = tempdir();
    let a = demo_model(dir.path(), "a.gguf", &[]);
    let b = demo_model(
        dir.path(),
        "b.gguf",
        &["--perturb", "blk.3.ffn_up.weight,token_embd.weight"],
    );
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let got = ok_json(&["diff", a, b, "--json"]);
    let tensors = got["tensors"].as_array().expect("tensors array");
    let mut top: Vec<&str> = tensors[..2]
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["blk.3.ffn_up.weight", "token_embd.weight"],
        "the perturbed tensors rank first"
    );
    assert!(
        tensors[0]["rmse"].as_f64().unwrap() >= tensors[1]["rmse"].as_f64().unwrap(),
        "ranked by RMSE, largest first"
    );
    for t in &tensors[2..] {
        assert_eq!(
            t["identical"],
            Value::Bool(true),
            "{} is unchanged",
            t["name"]
        );
        assert_eq!(
            t["snr_db"],
            Value::Null,
            "no difference: infinite SNR is null"
        );
    }
    for key in [
        "name",
        "type_a",
        "type_b",
        "identical",
        "max_abs",
        "mean_abs",
        "rmse",
        "cosine",
        "snr_db",
    ] {
        assert!(tensors[0].get(key).is_some(), "the JSON has {key}");
    }
    let numpy: Value =
        serde_json::from_str(&run_py("tests/oracle/tensor_oracle.py", &["diff", a, b])).unwrap();
    for t in &tensors[..2] {
        let name = t["name"].as_str().unwrap();
        let (g, e) = (
            t["rmse"].as_f64().unwrap(),
            numpy[name]["rmse"].as_f64().unwrap(),
        );
        assert!((g - e).abs() <= 1e-5 * e, "{name}: rmse {g} vs numpy {e}");
    }
}

#[test]
fn diff_bad_input_exits_2_with_one_line() {
    let dir = tempdir();
    let a = demo_model(dir.path(), "a.gguf", &[]);
    let missing = dir.path().join("missing.gguf");
    let out = hotpatch(&["diff", a.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "a missing model is bad input");
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.contains("missing.gguf"),
        "the error names the file: {err}"
    );
    let out = hotpatch(&[
        "diff",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
        "--map",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(2), "--map must be WxH");
}
