//! Level-of-detail tiles, value windows and histograms of the demo model's tensors, checked
//! against a naive reduction over `hotpatch_quant::dequantize` of the whole tensor and, for the
//! values themselves, against gguf-py's dequantization.

use hotpatch_core::heatmap::{self, Shape, Viewport};
use hotpatch_core::manager::Manager;
use hotpatch_core::tensor::TensorError;
use hotpatch_core::{EngineError, Mode};
use hotpatch_quant::{dequantize, GgmlType};

use crate::common::*;

/// The whole tensor dequantized by the codec crate directly from the file's bytes.
fn naive_values(path: &std::path::Path, name: &str) -> (Vec<f32>, Shape) {
    let file = hotpatch_gguf::GgufModel::open(path).unwrap();
    let t = file.tensor(name).unwrap();
    let ty = t.ty.known().unwrap();
    let data = file.tensor_data(t).unwrap();
    let mut v = vec![0f32; (data.len() / ty.type_size()) * ty.block_size()];
    dequantize(ty, data, &mut v).unwrap();
    (v, Shape::of_dims(&t.dims).unwrap())
}

/// Cell (i, j)'s (mean, peak) by the definition, with its own edges.
fn naive_cell(v: &[f32], s: Shape, vp: Viewport, w: u64, h: u64, i: u64, j: u64) -> (f64, f32) {
    let r0 = vp.row0 + vp.rows * i / h;
    let r1 = vp.row0 + vp.rows * (i + 1) / h;
    let c0 = vp.col0 + vp.cols * j / w;
    let c1 = vp.col0 + vp.cols * (j + 1) / w;
    let (mut sum, mut n, mut peak) = (0f64, 0u64, 0f32);
    for r in r0..r1 {
        for c in c0..c1 {
            let x = v[(r * s.cols + c) as usize];
            sum += f64::from(x);
            n += 1;
            if x.abs() > peak.abs() {
                peak = x;
            }
        }
    }
    (sum / n as f64, peak)
}

fn check_tile(v: &[f32], s: Shape, t: &heatmap::Tile, vp: Viewport, what: &str) {
    let (w, h) = (u64::from(t.width), u64::from(t.height));
    for i in 0..h {
        for j in 0..w {
            let (mean, peak) = naive_cell(v, s, vp, w, h, i, j);
            let k = (i * w + j) as usize;
            assert!(
                close(f64::from(t.mean[k]), mean, 1e-5) || (t.mean[k] as f64 - mean).abs() < 1e-6,
                "{what}: cell ({i},{j}) mean {} vs naive {mean}",
                t.mean[k]
            );
            assert_eq!(
                t.peak[k].abs(),
                peak.abs(),
                "{what}: cell ({i},{j}) peak {} vs naive {peak}",
                t.peak[k]
            );
        }
    }
}

#[test]
fn lod_matches_a_naive_reduction_for_every_type_of_the_demo() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    let layer = m.tensors().unwrap();
    let mut types = std::collections::BTreeSet::new();
    for t in &layer.index().tensors {
        let (v, s) = naive_values(&model, &t.name);
        types.insert(t.ty.known().unwrap());
        let full = s.full();
        let zoom = Viewport {
            row0: s.rows / 3,
            col0: s.cols / 5,
            rows: (s.rows / 2).max(1),
            cols: s.cols / 3,
        };
        let cases = [
            (full, 64, 48),
            (full, 1000, 1000), // one cell per element
            (zoom, 17, 9),
            (zoom, 3, 1),
        ];
        for (vp, w, h) in cases {
            let tile = layer
                .matrix(&t.name, |mx| heatmap::lod(mx, vp, w, h))
                .unwrap()
                .unwrap();
            assert_eq!(u64::from(tile.width), vp.cols.min(u64::from(w)));
            assert_eq!(u64::from(tile.height), vp.rows.min(u64::from(h)));
            check_tile(&v, s, &tile, vp, &format!("{} {vp:?} {w}x{h}", t.name));
        }
        // The exact window equals the naive values.
        let win = layer
            .matrix(&t.name, |mx| heatmap::window(mx, zoom))
            .unwrap()
            .unwrap();
        for r in 0..zoom.rows {
            for c in 0..zoom.cols {
                let naive = v[((zoom.row0 + r) * s.cols + zoom.col0 + c) as usize];
                assert_eq!(
                    win[(r * zoom.cols + c) as usize].to_bits(),
                    naive.to_bits(),
                    "{} window ({r},{c})",
                    t.name
                );
            }
        }
    }
    // The demo covers the float, legacy and K-quant families.
    for ty in [
        GgmlType::F16,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        assert!(types.contains(&ty), "{ty} is in the demo model");
    }
}

#[test]
fn windows_match_gguf_py() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    let layer = m.tensors().unwrap();
    for name in [
        "blk.0.attn_q.weight",   // Q4_K
        "blk.2.attn_q.weight",   // Q8_0
        "blk.3.attn_q.weight",   // F16
        "blk.1.ffn_gate.weight", // Q3_K
    ] {
        let py = oracle_values(&model, name, dir.path());
        let s = Shape::of_dims(&layer.tensor(name).unwrap().dims).unwrap();
        let vp = Viewport {
            row0: 5,
            col0: 37,
            rows: 11,
            cols: 100,
        };
        let win = layer
            .matrix(name, |mx| heatmap::window(mx, vp))
            .unwrap()
            .unwrap();
        for r in 0..vp.rows {
            for c in 0..vp.cols {
                let want = py[((vp.row0 + r) * s.cols + vp.col0 + c) as usize];
                assert_eq!(
                    win[(r * vp.cols + c) as usize].to_bits(),
                    want.to_bits(),
                    "{name} ({r},{c})"
                );
            }
        }
        // A peak tile over a 2×2 downsampling: every peak is a gguf-py value of its cell.
        let tile = layer
            .matrix(name, |mx| {
                heatmap::lod(mx, s.full(), (s.cols / 2) as u32, (s.rows / 2) as u32)
            })
            .unwrap()
            .unwrap();
        for i in 0..u64::from(tile.height) {
            for j in 0..u64::from(tile.width) {
                let cell: Vec<f32> = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|&(a, b)| py[((2 * i + a) * s.cols + 2 * j + b) as usize])
                    .collect();
                let best = cell.iter().map(|x| x.abs()).fold(0f32, f32::max);
                let p = tile.peak[(i * u64::from(tile.width) + j) as usize];
                assert!(
                    cell.contains(&p) && p.abs() == best,
                    "{name} cell ({i},{j})"
                );
            }
        }
    }
}

#[test]
fn histogram_counts_match_numpy_style_binning() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    let layer = m.tensors().unwrap();
    let name = "blk.0.attn_q.weight";
    let py = oracle_values(&model, name, dir.path());
    let s = Shape::of_dims(&layer.tensor(name).unwrap().dims).unwrap();
    let h = layer
        .matrix(name, |mx| heatmap::histogram(mx, s.full(), 50, None))
        .unwrap()
        .unwrap();
    let lo = py.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = py.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!((h.lo, h.hi), (lo, hi));
    assert_eq!(h.counts.iter().sum::<u64>(), py.len() as u64);
    let mut want = vec![0u64; 50];
    for &x in &py {
        let k = ((f64::from(x) - f64::from(lo)) / (f64::from(hi) - f64::from(lo)) * 50.0) as usize;
        want[k.min(49)] += 1;
    }
    assert_eq!(h.counts, want);
    let mean = py.iter().map(|&x| f64::from(x)).sum::<f64>() / py.len() as f64;
    assert!(close(h.stats.mean, mean, 1e-9));
}

#[test]
fn preview_shows_the_edit_without_making_it() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    let layer = m.tensors().unwrap();
    let name = "blk.0.attn_q.weight"; // Q4_K: a large value re-quantizes the block
    let before = layer.extract(name, None).unwrap();
    let preview = m.preview_weight(name, 300, 3.0).unwrap();
    assert_eq!(
        layer.extract(name, None).unwrap(),
        before,
        "preview changes nothing"
    );
    assert!(!m.engine().can_undo());
    let edit = m.modify_weight(name, 300, 3.0).unwrap();
    assert_eq!(preview, edit, "the preview is the edit");
    assert!(edit.block_requantized && !edit.side_effects.is_empty());
    let after = layer.extract(name, None).unwrap();
    assert_eq!(after[300], edit.stored);
    for se in &edit.side_effects {
        assert_eq!(after[se.index as usize], se.after);
        assert_eq!(before[se.index as usize], se.before);
    }
    // Bad index and locked tensor are refused like the edit.
    assert!(matches!(
        m.preview_weight(name, 1 << 40, 1.0),
        Err(hotpatch_core::manager::ManagerError::Tensor(
            TensorError::IndexOutOfRange { .. }
        ))
    ));
    m.lock_tensor("blk.2.attn_q.weight").unwrap();
    let locked = m.preview_weight("blk.2.attn_q.weight", 0, 1.0).unwrap_err();
    assert!(
        matches!(
            locked,
            hotpatch_core::manager::ManagerError::Tensor(TensorError::Engine(
                EngineError::Protected { .. }
            ))
        ),
        "{locked:?}"
    );
    assert!(m.tensor_locked("blk.2.attn_q.weight").unwrap());
    assert!(!m.tensor_locked(name).unwrap());
    assert_eq!(m.unlock_tensor("blk.2.attn_q.weight").unwrap(), 1);
    assert!(!m.tensor_locked("blk.2.attn_q.weight").unwrap());
    assert!(m.preview_weight("blk.2.attn_q.weight", 0, 1.0).is_ok());
    assert!(
        m.export_configuration().unwrap().protections.is_empty(),
        "an unlocked tensor is not exported as protected"
    );
}
