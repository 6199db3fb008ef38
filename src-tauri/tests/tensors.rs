//! The Tensors screen's commands on a copy of the demo model, checked against gguf-py
//! (llama.cpp's reader/dequantizer, the project `.venv`): heatmap tiles and value windows
//! (binary layouts), statistics, the edit preview against the edit and the saved file, and
//! refusals with typed codes.

use std::path::{Path, PathBuf};
use std::process::Command;

use hotpatch_core::heatmap::Viewport;
use hotpatch_studio::commands::model::{attach_session, open_with_progress};
use hotpatch_studio::commands::tensors::{
    histogram, set_lock, stats, tile_bytes, transform, weight, window_bytes, SelectionArgs,
    TransformArgs, TILE_HEADER,
};
use hotpatch_studio::error::ErrorCode;
use hotpatch_studio::state::AppState;

use hotpatch_testkit::python;

fn py(script: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(python())
        .args(["-c", script])
        .args(args)
        .output()
        .expect("python runs (scripts/setup-oracles.sh)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A fresh demo model (generated at test time) opened into a new app state.
fn open_copy(name: &str) -> (PathBuf, AppState) {
    let dir = std::env::temp_dir().join(format!(
        "hotpatch-studio-tensors-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = hotpatch_testkit::demo_model(&dir, "m.gguf", &[]);
    let state = AppState::default();
    let file = open_with_progress(path.clone(), 1, |_| {}).expect("the copy opens");
    attach_session(&state, &path, file).expect("attach");
    (path, state)
}

/// gguf-py's dequantized values of a tensor, row-major as a (rows, ne0) matrix.
fn gguf_py_values(path: &Path, name: &str) -> Vec<f32> {
    let script = r#"
import sys, numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
r = GGUFReader(sys.argv[1])
t = next(t for t in r.tensors if t.name == sys.argv[2])
v = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
sys.stdout.buffer.write(v.tobytes())
"#;
    py(script, &[path.to_str().unwrap(), name])
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

const Q4K: &str = "blk.0.attn_q.weight"; // 256 × 256

#[test]
fn tile_and_window_match_gguf_py() {
    let (path, state) = open_copy("tile");
    let v = gguf_py_values(&path, Q4K);
    let full = Viewport {
        row0: 0,
        col0: 0,
        rows: 256,
        cols: 256,
    };
    let bytes = tile_bytes(&state, Q4K, full, 64, 32).unwrap();
    let head: Vec<u32> = bytes[..TILE_HEADER]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(head, vec![64, 32, 2, 0]);
    let planes = f32s(&bytes[TILE_HEADER..]);
    assert_eq!(planes.len(), 2 * 64 * 32);
    // Cell (i, j) covers rows 8i..8i+8, cols 4j..4j+4.
    for i in 0..32usize {
        for j in 0..64usize {
            let cell: Vec<f32> = (0..8)
                .flat_map(|r| (0..4).map(move |c| (8 * i + r) * 256 + 4 * j + c))
                .map(|k| v[k])
                .collect();
            let mean = cell.iter().map(|&x| f64::from(x)).sum::<f64>() / 32.0;
            let peak = cell
                .iter()
                .copied()
                .fold(0f32, |a, x| if x.abs() > a.abs() { x } else { a });
            let k = i * 64 + j;
            assert!((f64::from(planes[k]) - mean).abs() < 1e-6, "mean ({i},{j})");
            assert_eq!(planes[64 * 32 + k].abs(), peak.abs(), "peak ({i},{j})");
        }
    }
    let vp = Viewport {
        row0: 100,
        col0: 7,
        rows: 3,
        cols: 50,
    };
    let win = f32s(&window_bytes(&state, Q4K, vp).unwrap());
    for r in 0..3usize {
        for c in 0..50usize {
            assert_eq!(
                win[r * 50 + c].to_bits(),
                v[(100 + r) * 256 + 7 + c].to_bits()
            );
        }
    }
    let st = stats(&state, Q4K, &mut |_| true).unwrap();
    let min = v.iter().copied().fold(f32::INFINITY, f32::min);
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!((st.rows, st.cols, st.count), (256, 256, 65536));
    assert_eq!(
        (st.min, st.max, st.abs_max),
        (min, max, min.abs().max(max.abs()))
    );
    let h = histogram(&state, Q4K, 10, None, None, &mut |_| true).unwrap();
    assert_eq!(h.counts.iter().sum::<u64>(), 65536);
}

#[test]
fn stats_and_histogram_report_progress_and_cancel_as_jobs() {
    let (_path, state) = open_copy("stats-jobs");
    // Progress in elements, up to the tensor's count (twice for a histogram without a range:
    // a statistics pass, then a binning pass).
    let mut seen = Vec::new();
    let st = stats(&state, Q4K, &mut |p| {
        seen.push((p.done, p.total));
        true
    })
    .unwrap();
    assert_eq!(st.count, 65536);
    assert_eq!(seen.first(), Some(&(0, 65536)));
    assert_eq!(seen.last(), Some(&(65536, 65536)));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    seen.clear();
    let h = histogram(&state, Q4K, 10, None, None, &mut |p| {
        seen.push((p.done, p.total));
        true
    })
    .unwrap();
    assert_eq!(seen.last(), Some(&(2 * 65536, 2 * 65536)));
    assert_eq!(h.stats, st, "the histogram's statistics are the statistics");
    // A job canceled from the UI (here before it started, as a fast Cancel click can be)
    // stops with the Canceled code, for both commands.
    let job = state.jobs.register(41);
    assert!(state.jobs.cancel(41));
    let e = stats(&state, Q4K, &mut |_| !job.is_canceled()).unwrap_err();
    assert_eq!(e.code, ErrorCode::Canceled, "{}", e.message);
    let e = histogram(&state, Q4K, 10, None, None, &mut |_| !job.is_canceled()).unwrap_err();
    assert_eq!(e.code, ErrorCode::Canceled, "{}", e.message);
    // A cancel in the middle of the histogram's second pass, too.
    let e = histogram(&state, Q4K, 10, None, None, &mut |p| p.done < 65536).unwrap_err();
    assert_eq!(e.code, ErrorCode::Canceled, "{}", e.message);
    drop(job);
    // The state is untouched: the same statistics again.
    assert_eq!(stats(&state, Q4K, &mut |_| true).unwrap(), st);
}

#[test]
fn requests_outside_the_tensor_are_bad_requests() {
    let (_path, state) = open_copy("bounds");
    let past = Viewport {
        row0: 250,
        col0: 0,
        rows: 10,
        cols: 256,
    };
    let e = tile_bytes(&state, Q4K, past, 10, 10).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);
    assert!(e.message.contains("outside"), "{}", e.message);
    let ok = Viewport { row0: 0, ..past };
    assert_eq!(
        tile_bytes(&state, Q4K, ok, 0, 10).unwrap_err().code,
        ErrorCode::BadRequest
    );
    assert_eq!(
        tile_bytes(&state, "nope", ok, 10, 10).unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        histogram(&state, Q4K, 10, Some(1.0), None, &mut |_| true)
            .unwrap_err()
            .code,
        ErrorCode::BadRequest
    );
}

#[test]
fn preview_is_the_edit_and_the_saved_file_holds_it() {
    let (path, state) = open_copy("preview");
    let index = 77 * 256 + 130;
    let preview = weight(&state, Q4K, index, "0.75", false).unwrap();
    assert!(!preview.applied);
    assert_eq!(preview.block_len, 256);
    assert_eq!(preview.block_first, index / 256 * 256);
    let before = gguf_py_values(&path, Q4K);
    let edit = weight(&state, Q4K, index, "0.75", true).unwrap();
    assert_eq!(
        (edit.stored.clone(), edit.side_effects.clone()),
        (preview.stored.clone(), preview.side_effects.clone())
    );
    // Save through the session's engine, then gguf-py reads what the edit reported.
    let session = state.session();
    session
        .engine()
        .save(session.region().unwrap(), &mut |_| true)
        .unwrap();
    let after = gguf_py_values(&path, Q4K);
    assert_eq!(after[index as usize], edit.stored.parse::<f32>().unwrap());
    for se in &edit.side_effects {
        assert_eq!(before[se.index as usize], se.before.parse::<f32>().unwrap());
        assert_eq!(after[se.index as usize], se.after.parse::<f32>().unwrap());
    }
    let moved: std::collections::HashSet<u64> = edit.side_effects.iter().map(|s| s.index).collect();
    for (k, (a, b)) in before.iter().zip(&after).enumerate() {
        if k as u64 != index && !moved.contains(&(k as u64)) {
            assert_eq!(a.to_bits(), b.to_bits(), "element {k} unchanged");
        }
    }
}

#[test]
fn bad_values_and_locked_tensors_are_refused() {
    let (_path, state) = open_copy("refusals");
    for bad in ["abc", "", "1e40", "0x1"] {
        let e = weight(&state, Q4K, 0, bad, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest, "{bad}: {}", e.message);
    }
    let e = weight(&state, Q4K, 65536, "1", false).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);
    // NaN cannot live in a Q4_K block.
    let e = weight(&state, Q4K, 0, "nan", false).unwrap_err();
    assert_eq!(e.code, ErrorCode::Refused, "{}", e.message);
    // F32 stores NaN as asked.
    let nan = weight(&state, "blk.2.attn_output.weight", 3, "NaN", true).unwrap();
    assert_eq!(nan.stored, "NaN");
    assert!(set_lock(&state, Q4K, true).unwrap());
    let e = weight(&state, Q4K, 0, "0.5", false).unwrap_err();
    assert_eq!(e.code, ErrorCode::Refused);
    assert!(e.message.contains("protected"), "{}", e.message);
    let sel = SelectionArgs {
        kind: "rows".into(),
        start: Some(0),
        end: Some(1),
        indices: None,
        head: None,
    };
    let zero = TransformArgs {
        op: "zero".into(),
        value: None,
        min: None,
        max: None,
        seed: None,
        std: None,
        model: None,
    };
    assert_eq!(
        transform(&state, Q4K, &sel, &zero, &mut |_| true)
            .unwrap_err()
            .code,
        ErrorCode::Refused
    );
    assert!(!set_lock(&state, Q4K, false).unwrap());
    let canceled = transform(&state, Q4K, &sel, &zero, &mut |_| false).unwrap_err();
    assert_eq!(
        canceled.code,
        ErrorCode::Canceled,
        "a cancel maps to Canceled: {}",
        canceled.message
    );
    let r = transform(&state, Q4K, &sel, &zero, &mut |_| true).unwrap();
    assert_eq!(r.elements_selected, 256);
    assert_eq!(
        r.blocks_requantized_whole, 1,
        "one whole Q4_K row = one block"
    );
}
