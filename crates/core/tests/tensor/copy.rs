//! The studio's diff workflow on real demo models: the largest differences of a tensor pair
//! against a naive numpy-side computation, and copying a tensor (or rows, or a range) from
//! model B into the attached model A as a recorded, undoable, exportable patch.

use hotpatch_core::diff::{diff_attached, top_differences_attached, DiffOptions};
use hotpatch_core::manager::Manager;
use hotpatch_core::tensor::{Selection, TransformOp};
use hotpatch_core::Mode;
use hotpatch_gguf::GgufModel;

use crate::common::*;

fn bits_differ(a: &[f32], b: &[f32]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()))
}

const PERTURBED: [&str; 5] = [
    "blk.1.ffn_gate.weight", // Q3_K: requantizing its values would not give its bytes back
    "blk.0.attn_q.weight",   // Q4_K
    "blk.0.attn_output.weight", // Q8_0
    "blk.1.attn_q.weight",   // F16
    "blk.2.attn_output.weight", // F32
];

#[test]
fn top_differences_match_a_naive_ranking_of_gguf_py_values() {
    let dir = tempdir();
    let a = demo_model(dir.path(), "a.gguf", &[]);
    let b = demo_model(dir.path(), "b.gguf", &["--perturb", &PERTURBED.join(",")]);
    let m = Manager::initialize();
    m.attach(&a, Mode::Staged).unwrap();
    let layer = m.tensors().unwrap();
    let other = GgufModel::open(&b).unwrap();
    for name in PERTURBED {
        let va = oracle_values(&a, name, dir.path());
        let vb = oracle_values(&b, name, &dir.path().join("b").tap_mkdir());
        // Naive: every differing element, sorted by |a-b| descending, then index ascending.
        let mut all: Vec<(f32, usize)> = va
            .iter()
            .zip(&vb)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| ((x - y).abs(), i))
            .collect();
        all.sort_by(|p, q| q.0.total_cmp(&p.0).then(p.1.cmp(&q.1)));
        let k = 25;
        let got = top_differences_attached(&layer, &other, name, k, None).unwrap();
        assert_eq!(got.len(), k, "{name}");
        let ne0 = layer.tensor(name).unwrap().dims[0];
        for (g, (d, i)) in got.iter().zip(&all) {
            assert_eq!(g.index, *i as u64, "{name}: rank of element {i}");
            assert_eq!((g.row, g.col), (g.index / ne0, g.index % ne0));
            assert_eq!(g.a.to_bits(), va[*i].to_bits(), "{name}[{i}] A");
            assert_eq!(g.b.to_bits(), vb[*i].to_bits(), "{name}[{i}] B");
            assert_eq!(g.delta().abs(), *d);
        }
    }
    // An unperturbed tensor has no differences.
    let none = top_differences_attached(&layer, &other, "blk.3.ffn_up.weight", 10, None).unwrap();
    assert!(none.is_empty());
    // Errors name the tensor and the model.
    let e = top_differences_attached(&layer, &other, "nope", 10, None).unwrap_err();
    assert_eq!(e.to_string(), "model A has no tensor named 'nope'");
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}
impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn copy_from_b_is_exact_recorded_undoable_and_exported() {
    let dir = tempdir();
    let a = demo_model(dir.path(), "a.gguf", &[]);
    let b = demo_model(dir.path(), "b.gguf", &["--perturb", &PERTURBED.join(",")]);
    let other = GgufModel::open(&b).unwrap();
    let bdir = dir.path().join("b").tap_mkdir();
    let copy = TransformOp::Lerp {
        model: b.to_str().unwrap().to_string(),
        t: 1.0,
    };
    let m = Manager::initialize();
    m.attach(&a, Mode::Staged).unwrap();
    let layer = m.tensors().unwrap();
    for name in PERTURBED {
        let before = layer.extract(name, None).unwrap();
        let rep = m.transform(name, &Selection::All, &copy).unwrap();
        assert!(rep.change.is_some(), "{name}: the copy is one undo step");
        // Values: exactly gguf-py's reading of model B.
        let want = oracle_values(&b, name, &bdir);
        let got = layer.extract(name, None).unwrap();
        assert_eq!(bits_differ(&got, &want), None, "{name}: values equal B's");
        // Bytes: exactly B's (same type: whole blocks are copied verbatim, K-quants included).
        let t = layer.tensor(name).unwrap();
        let tb = other.tensor(name).unwrap();
        assert_eq!(
            layer.read_bytes(name, 0, t.nbytes).unwrap(),
            other.tensor_data(tb).unwrap(),
            "{name}: bytes equal B's"
        );
        assert_ne!(before, got, "{name} was perturbed in B");
    }
    // After the copies the diff against B finds nothing.
    let report = diff_attached(&layer, &other, &DiffOptions::default(), &mut |_| {}, None).unwrap();
    assert_eq!(report.identical_count, report.tensors.len());

    // The configuration carries the copies; applied to a fresh A it gives B's bytes.
    let config = m.export_configuration().unwrap();
    assert_eq!(config.tensor_patches.len(), PERTURBED.len());
    let fresh = Manager::initialize();
    fresh.attach(&a, Mode::Staged).unwrap();
    fresh.apply_configuration(&config, "test").unwrap();
    let fl = fresh.tensors().unwrap();
    for name in PERTURBED {
        let t = fl.tensor(name).unwrap();
        assert_eq!(
            fl.read_bytes(name, 0, t.nbytes).unwrap(),
            other.tensor_data(other.tensor(name).unwrap()).unwrap(),
            "{name}: the exported copy reproduces B"
        );
    }

    // Undo restores A; the undone copy is no longer exported.
    let original = GgufModel::open(&a).unwrap();
    let last = PERTURBED[PERTURBED.len() - 1];
    m.engine().undo().unwrap();
    let t = layer.tensor(last).unwrap();
    assert_eq!(
        layer.read_bytes(last, 0, t.nbytes).unwrap(),
        original
            .tensor_data(original.tensor(last).unwrap())
            .unwrap()
    );
    assert_eq!(
        m.export_configuration().unwrap().tensor_patches.len(),
        PERTURBED.len() - 1
    );
}

#[test]
fn copy_of_rows_and_ranges_keeps_the_rest_and_converts_types() {
    let dir = tempdir();
    let a = demo_model(dir.path(), "a.gguf", &[]);
    let b = demo_model(dir.path(), "b.gguf", &["--perturb", &PERTURBED.join(",")]);
    let bdir = dir.path().join("b").tap_mkdir();
    let copy = TransformOp::Lerp {
        model: b.to_str().unwrap().to_string(),
        t: 1.0,
    };
    let m = Manager::initialize();
    m.attach(&a, Mode::Staged).unwrap();
    let layer = m.tensors().unwrap();

    // Rows 3..9 of the Q4_K tensor (256 columns = one block per row): those rows are B's,
    // the others A's, bit for bit.
    let name = "blk.0.attn_q.weight";
    let va = oracle_values(&a, name, dir.path());
    let vb = oracle_values(&b, name, &bdir);
    m.transform(name, &Selection::Rows { start: 3, end: 9 }, &copy)
        .unwrap();
    let got = layer.extract(name, None).unwrap();
    let (r0, r1) = (3 * 256, 9 * 256);
    assert_eq!(bits_differ(&got[..r0], &va[..r0]), None, "rows before");
    assert_eq!(bits_differ(&got[r0..r1], &vb[r0..r1]), None, "copied rows");
    assert_eq!(bits_differ(&got[r1..], &va[r1..]), None, "rows after");

    // A flat range 10..300 of the Q8_0 tensor: the blocks it covers whole (32..288) are B's
    // exactly; elements outside the range's blocks are untouched.
    let name = "blk.0.attn_output.weight";
    let va = oracle_values(&a, name, dir.path());
    let vb = oracle_values(&b, name, &bdir);
    m.transform(
        name,
        &Selection::Range {
            start: 10,
            end: 300,
        },
        &copy,
    )
    .unwrap();
    let got = layer.extract(name, None).unwrap();
    assert_eq!(
        bits_differ(&got[32..288], &vb[32..288]),
        None,
        "whole blocks"
    );
    assert_eq!(
        bits_differ(&got[320..], &va[320..]),
        None,
        "untouched blocks"
    );
    // In the partial blocks the copied values are B's rounded to A's Q8_0 grid.
    for i in (10..32).chain(288..300) {
        assert!(
            (got[i] - vb[i]).abs() < 0.002,
            "element {i}: {} vs {}",
            got[i],
            vb[i]
        );
    }

    // Across types: into the F32 variant of A, a Q4_K tensor of B arrives as its exact
    // dequantized values.
    let a32 = demo_model(dir.path(), "a32.gguf", &["--variant", "f32"]);
    let m32 = Manager::initialize();
    m32.attach(&a32, Mode::Staged).unwrap();
    let name = "blk.0.attn_q.weight";
    let vb = oracle_values(&b, name, &bdir);
    m32.transform(name, &Selection::All, &copy).unwrap();
    let got = m32.tensors().unwrap().extract(name, None).unwrap();
    assert_eq!(
        bits_differ(&got, &vb),
        None,
        "Q4_K values land exactly in F32"
    );
}
