//! The diff engine against numpy on gguf-py-dequantized values.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use hotpatch_core::diff::{
    diff_models, tensors_of, DiffError, DiffOptions, DiffReport, DiffStatus,
};
use hotpatch_gguf::GgufModel;
use serde_json::Value;

use crate::common::*;

fn run(a: &std::path::Path, b: &std::path::Path, options: &DiffOptions) -> DiffReport {
    let ma = GgufModel::open(a).expect("open A");
    let mb = GgufModel::open(b).expect("open B");
    let (ta, tb) = (tensors_of(&ma).unwrap(), tensors_of(&mb).unwrap());
    let mut calls = 0u64;
    let mut last = None;
    let report = diff_models(
        &ta,
        &tb,
        options,
        &mut |p| {
            calls += 1;
            last = Some(p);
        },
        None,
    )
    .expect("diff");
    let last = last.expect("progress was reported");
    assert_eq!(last.done_bytes, last.total_bytes, "progress ends at 100 %");
    assert_eq!(last.done_tensors, last.total_tensors);
    if options.threads <= 1 {
        assert!(
            calls >= ta.len() as u64,
            "one thread reports after every piece: at least once per tensor"
        );
    } else {
        // The calling thread reports after each of its own pieces (no channel wake-ups from
        // the workers): at least the start and the end.
        assert!(
            calls >= 2,
            "progress at the start and at the end ({calls} calls)"
        );
    }
    report
}

fn check_against_numpy(report: &DiffReport, oracle_json: &str) {
    let want: HashMap<String, Value> = serde_json::from_str(oracle_json).expect("oracle JSON");
    assert_eq!(
        report.tensors.len(),
        want.len(),
        "same aligned tensors as numpy"
    );
    for t in &report.tensors {
        let w = &want[&t.name];
        assert_eq!(t.status, DiffStatus::Compared, "{}", t.name);
        assert_eq!(t.type_a, w["type_a"].as_str().unwrap(), "{}", t.name);
        assert_eq!(t.type_b, w["type_b"].as_str().unwrap(), "{}", t.name);
        assert_eq!(
            t.n_diff,
            w["n_diff"].as_u64().unwrap(),
            "{}: differing elements are counted exactly",
            t.name
        );
        assert_eq!(t.identical, t.n_diff == 0, "{}", t.name);
        // max_abs is one element's difference, rounded to f32 by the subtraction (numpy subtracts
        // in f64): equal within one f32 rounding.
        let (g, e) = (t.max_abs.unwrap(), w["max_abs"].as_f64().unwrap());
        assert!(close(g, e, 1e-7), "{}: max_abs ours {g}, numpy {e}", t.name);
        for key in ["mean_abs", "rmse", "rel_error", "cosine", "snr_db"] {
            let got = match key {
                "mean_abs" => t.mean_abs,
                "rmse" => t.rmse,
                "rel_error" => t.rel_error,
                "cosine" => t.cosine,
                _ => t.snr_db,
            };
            match (got, w[key].as_f64()) {
                (Some(g), Some(e)) => {
                    assert!(
                        close(g, e, 1e-5),
                        "{} {key}: ours {g}, numpy {e} (sums in f32 per 256 then f64)",
                        t.name
                    )
                }
                (None, None) => {}
                (g, e) => panic!("{} {key}: ours {g:?}, numpy {e:?}", t.name),
            }
        }
    }
}

#[test]
fn perturbed_copy_ranks_exactly_the_perturbed_tensors_first() {
    let dir = tempdir();
    let a = demo_model(dir.path(), "a.gguf", &[]);
    let perturbed = ["blk.1.ffn_down.weight", "blk.2.attn_q.weight"];
    let b = demo_model(dir.path(), "b.gguf", &["--perturb", &perturbed.join(",")]);
    let report = run(&a, &b, &DiffOptions::default());
    let top: Vec<&str> = report.tensors[..2]
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let mut top_sorted = top.clone();
    top_sorted.sort();
    assert_eq!(
        top_sorted, perturbed,
        "the two perturbed tensors rank first"
    );
    for t in &report.tensors[2..] {
        assert!(
            t.identical && t.bytes_identical,
            "{} was not perturbed, so its bytes are identical",
            t.name
        );
        assert_eq!(t.rmse, Some(0.0));
    }
    for t in &report.tensors[..2] {
        assert!(
            !t.identical && t.rmse.unwrap() > 0.0,
            "{} was perturbed",
            t.name
        );
    }
    assert_eq!(report.identical_count, report.tensors.len() - 2);
    assert!(report.only_in_a.is_empty() && report.only_in_b.is_empty());
    check_against_numpy(
        &report,
        &oracle(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]),
    );

    // Two threads give the same report.
    let par = run(
        &a,
        &b,
        &DiffOptions {
            threads: 2,
            ..DiffOptions::default()
        },
    );
    assert_eq!(par, report, "the threaded run gives the same report");
}

#[test]
fn across_types_matches_numpy() {
    // F16 variant against the mixed one: F16 vs Q4_K, Q5_K, Q6_K, Q8_0, Q4_0, BF16, ... for the
    // same underlying weights.
    let dir = tempdir();
    let a = demo_model(dir.path(), "f16.gguf", &["--variant", "f16"]);
    let b = demo_model(dir.path(), "mixed.gguf", &[]);
    let report = run(&a, &b, &DiffOptions::default());
    let kinds: std::collections::HashSet<&str> =
        report.tensors.iter().map(|t| t.type_b.as_str()).collect();
    for k in ["Q4_K", "Q2_K", "Q8_0", "Q4_0", "BF16", "F16"] {
        assert!(kinds.contains(k), "the mixed model has {k} tensors");
    }
    check_against_numpy(
        &report,
        &oracle(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]),
    );
    // Lower-bit types are further from F16 than Q8_0: Q2_K's relative error beats Q8_0's.
    let rel = |ty: &str| {
        report
            .tensors
            .iter()
            .filter(|t| t.type_b == ty)
            .map(|t| t.rel_error.unwrap())
            .fold(0.0, f64::max)
    };
    assert!(
        rel("Q2_K") > 10.0 * rel("Q8_0"),
        "Q2_K {} vs Q8_0 {}",
        rel("Q2_K"),
        rel("Q8_0")
    );
}

#[test]
fn map_cancel_and_lone_tensors() {
    let dir = tempdir();
    let a = demo_model(dir.path(), "a.gguf", &[]);
    let b = demo_model(dir.path(), "b.gguf", &["--perturb", "output.weight"]);
    let ma = GgufModel::open(&a).unwrap();
    let mb = GgufModel::open(&b).unwrap();
    let ta = tensors_of(&ma).unwrap();
    let mut tb = tensors_of(&mb).unwrap();
    tb.retain(|t| t.name != "blk.0.attn_q.weight");

    let opts = DiffOptions {
        map: Some((64, 16)),
        threads: 1,
    };
    let report = diff_models(&ta, &tb, &opts, &mut |_| {}, None).unwrap();
    assert_eq!(
        report.only_in_a.len(),
        1,
        "blk.0.attn_q.weight was removed from B"
    );
    assert_eq!(report.only_in_a[0].name, "blk.0.attn_q.weight");
    let out = &report.tensors[0];
    assert_eq!(out.name, "output.weight");
    let map = out.map.as_ref().unwrap();
    assert_eq!((map.width, map.height), (64, 16));
    let max_cell = map.cells.iter().copied().fold(0f32, f32::max);
    assert_eq!(
        f64::from(max_cell),
        out.max_abs.unwrap(),
        "the map's largest cell is the tensor's max |a-b|"
    );
    assert!(
        map.cells.iter().all(|&c| c > 0.0),
        "noise on every element reaches every cell"
    );
    let same = report
        .tensors
        .iter()
        .find(|t| t.name == "token_embd.weight")
        .unwrap();
    assert!(
        same.map.as_ref().unwrap().cells.iter().all(|&c| c == 0.0),
        "identical tensor: all-zero map"
    );

    // Cancel: raised before the run, the first chunk stops it.
    let cancel = AtomicBool::new(true);
    let err = diff_models(
        &ta,
        &tb,
        &DiffOptions::default(),
        &mut |_| {},
        Some(&cancel),
    )
    .unwrap_err();
    assert_eq!(err, DiffError::Cancelled);
    let err = diff_models(
        &ta,
        &tb,
        &DiffOptions {
            map: Some((0, 3)),
            threads: 1,
        },
        &mut |_| {},
        None,
    )
    .unwrap_err();
    assert!(matches!(err, DiffError::BadMapSize { .. }));
}
