//! The unified manager: presets applied to the demo model, a recipe recorded on the F16
//! variant applied to the Q8_0 variant, safety filters, boost, preset files.

use hotpatch_core::config::{Configuration, ItemStatus, SafetySettings};
use hotpatch_core::manager::Manager;
use hotpatch_core::tensor::{Selection, TransformOp};
use hotpatch_core::Mode;

use crate::common::*;
use crate::config::shipped_presets;

fn snapshot(m: &Manager) -> Vec<(String, Vec<f32>)> {
    let l = m.tensors().unwrap();
    l.index()
        .tensors
        .iter()
        .map(|t| (t.name.clone(), l.extract(&t.name, None).unwrap()))
        .collect()
}

/// Flat indices whose value differs, per tensor (only tensors with differences).
fn changed(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> Vec<(String, Vec<u64>)> {
    a.iter()
        .zip(b)
        .filter_map(|((n, x), (_, y))| {
            let idx: Vec<u64> = (0..x.len())
                .filter(|&i| x[i].to_bits() != y[i].to_bits())
                .map(|i| i as u64)
                .collect();
            (!idx.is_empty()).then(|| (n.clone(), idx))
        })
        .collect()
}

#[test]
fn every_shipped_preset_applies_undoes_and_round_trips() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    for (file, preset) in shipped_presets() {
        let m = Manager::initialize().with_preset_dirs(vec![dir.path().join("user-presets")]);
        m.attach(&model, Mode::Staged).unwrap();
        let before = snapshot(&m);
        let rep = m
            .optimize_model(&preset)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(rep.preview.applicable(), "{file}");
        let after = snapshot(&m);
        let diff = changed(&before, &after);
        match file.as_str() {
            "ablate-head.json" => {
                let l = m.tensors().unwrap();
                let v = l.extract("blk.0.attn_output.weight", None).unwrap();
                let old = &before
                    .iter()
                    .find(|(n, _)| n == "blk.0.attn_output.weight")
                    .unwrap()
                    .1;
                for i in 0..v.len() {
                    let col = i % 256;
                    if (64..128).contains(&col) {
                        assert_eq!(
                            v[i], 0.0,
                            "{file}: head 1 = input columns 64..128 are zero (element {i})"
                        );
                    } else {
                        assert_eq!(
                            v[i].to_bits(),
                            old[i].to_bits(),
                            "{file}: other heads untouched (element {i})"
                        );
                    }
                }
                assert_eq!(
                    diff.len(),
                    1,
                    "{file}: only the output projection of layer 0 changes"
                );
            }
            "scale-ffn.json" => {
                assert_eq!(diff.len(), 1, "{file}");
                assert_eq!(diff[0].0, "blk.1.ffn_down.weight");
            }
            "protect-embeddings.json" => {
                assert!(diff.is_empty(), "{file}: protection changes no value");
                let err = m.modify_weight("token_embd.weight", 3, 1.0).unwrap_err();
                assert!(err.to_string().contains("protected"), "{file}: {err}");
                assert_eq!(rep.protections, 2);
            }
            "deterministic-assistant.json" => {
                assert!(diff.is_empty(), "{file}: a proxy preset changes no weight");
                assert_eq!(m.server().rules.len(), 5);
                assert!(m.server().cache.enabled);
            }
            _ => assert!(
                diff.is_empty(),
                "{file}: the demo model has no NaN to scrub: {diff:?}"
            ),
        }
        if rep.change.is_some() {
            m.engine().undo().unwrap();
            assert!(
                changed(&before, &snapshot(&m)).is_empty(),
                "{file}: one undo reverts the whole preset"
            );
            m.engine().redo().unwrap();
        }
        // Export, re-import on a fresh copy: same result.
        let exported = m.export_configuration().unwrap();
        let text = exported.to_json();
        let back = Configuration::from_json(&text).unwrap();
        assert_eq!(back, exported, "{file}: export round-trips");
        let m2 = Manager::initialize();
        m2.attach(&model, Mode::Staged).unwrap();
        let (c, p) = m2.import_configuration(&text).unwrap();
        assert_eq!(
            p.same_file,
            Some(true),
            "{file}: recorded on this very file"
        );
        m2.apply_configuration(&c, "test").unwrap();
        assert_eq!(
            changed(&before, &snapshot(&m2)),
            diff,
            "{file}: the exported configuration reproduces the change"
        );
        // Save/load as a user preset.
        let path = m.save_preset("mine", &preset).unwrap();
        assert!(path.starts_with(dir.path()));
        let loaded = m.load_preset("mine").unwrap();
        assert_eq!(loaded.tensor_patches, preset.tensor_patches, "{file}");
        assert!(m.list_presets().contains(&"mine".to_string()));
    }
}

#[test]
fn recipe_recorded_on_f16_changes_the_same_elements_of_q8_0() {
    let dir = tempdir();
    let f16 = demo_model(dir.path(), "f16.gguf", &["--variant", "f16"]);
    let q8 = demo_model(dir.path(), "q8.gguf", &["--variant", "q8_0"]);
    let m = Manager::initialize();
    m.attach(&f16, Mode::Staged).unwrap();
    let before = snapshot(&m);
    m.modify_weight("blk.0.attn_q.weight", 12345, 0.0).unwrap();
    m.modify_weight("blk.2.ffn_up.weight", 77, 0.0).unwrap();
    m.transform(
        "blk.1.attn_v.weight",
        &Selection::Rows { start: 4, end: 6 },
        &TransformOp::Zero,
    )
    .unwrap();
    m.transform(
        "blk.3.attn_output.weight",
        &Selection::Head { head: 2 },
        &TransformOp::Zero,
    )
    .unwrap();
    let f16_changed = changed(&before, &snapshot(&m));
    let text = m.export_configuration().unwrap().to_json();

    let m = Manager::initialize();
    m.attach(&q8, Mode::Staged).unwrap();
    let before = snapshot(&m);
    let (c, preview) = m.import_configuration(&text).unwrap();
    assert_eq!(preview.same_file, Some(false), "another file layout");
    assert_eq!(
        preview.same_model,
        Some(true),
        "the same model in another quantization"
    );
    assert!(
        preview
            .items
            .iter()
            .all(|i| i.status == ItemStatus::WillChange),
        "{preview:?}"
    );
    m.apply_configuration(&c, "test").unwrap();
    let after = snapshot(&m);
    let q8_changed = changed(&before, &after);

    // The elements the recipe targets, resolved independently of the engine.
    let mut targets: std::collections::BTreeMap<&str, std::collections::BTreeSet<u64>> =
        Default::default();
    targets
        .entry("blk.0.attn_q.weight")
        .or_default()
        .insert(12345);
    targets.entry("blk.2.ffn_up.weight").or_default().insert(77);
    targets
        .entry("blk.1.attn_v.weight")
        .or_default()
        .extend(4 * 256..6 * 256);
    targets
        .entry("blk.3.attn_output.weight")
        .or_default()
        .extend((0..256u64).flat_map(|r| (128..192).map(move |c| r * 256 + c)));
    for (label, ch) in [("F16", &f16_changed), ("Q8_0", &q8_changed)] {
        let names: Vec<&str> = ch.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            targets.keys().copied().collect::<Vec<_>>(),
            "{label}: the same four tensors change"
        );
        for (n, idx) in ch {
            let t = &targets[n.as_str()];
            let outside = idx.iter().filter(|i| !t.contains(i)).count();
            assert_eq!(
                outside, 0,
                "{label} {n}: no element outside the recipe's selection changes"
            );
        }
    }
    for (n, t) in &targets {
        let v = &after.iter().find(|(x, _)| x == n).unwrap().1;
        let nonzero = t.iter().filter(|&&i| v[i as usize] != 0.0).count();
        assert_eq!(
            nonzero, 0,
            "Q8_0 {n}: every targeted element now holds the recipe's value 0"
        );
    }
}

#[test]
fn safety_filters_scan_repair_and_undo() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    m.modify_weight("output_norm.weight", 3, f32::NAN).unwrap();
    m.modify_weight("blk.0.attn_norm.weight", 4, f32::NEG_INFINITY)
        .unwrap();
    m.modify_weight("blk.1.ffn_norm.weight", 5, 1e-41).unwrap();
    m.modify_weight("blk.2.attn_norm.weight", 6, 5000.0)
        .unwrap();
    let injected = snapshot(&m);
    let s = SafetySettings {
        outlier_threshold: Some(1000.0),
        repair: true,
        replacement: 0.0,
        response_filters: true,
    };
    let rep = m.apply_safety_filters(&s).unwrap();
    let flagged: Vec<&str> = rep
        .scan
        .tensors
        .iter()
        .filter(|t| t.flagged())
        .map(|t| t.tensor.as_str())
        .collect();
    assert_eq!(
        flagged,
        [
            "blk.0.attn_norm.weight",
            "blk.1.ffn_norm.weight",
            "blk.2.attn_norm.weight",
            "output_norm.weight"
        ],
        "exactly the tensors with an injected value"
    );
    let l = m.tensors().unwrap();
    assert_eq!(l.value("output_norm.weight", 3).unwrap(), 0.0);
    assert_eq!(l.value("blk.0.attn_norm.weight", 4).unwrap(), 0.0);
    assert_eq!(l.value("blk.1.ffn_norm.weight", 5).unwrap(), 0.0);
    assert_eq!(
        l.value("blk.2.attn_norm.weight", 6).unwrap(),
        1000.0,
        "outliers are clamped"
    );
    let again = m
        .apply_safety_filters(&SafetySettings { repair: false, ..s })
        .unwrap();
    assert!(
        again.scan.tensors.iter().all(|t| !t.flagged()),
        "clean after repair"
    );
    m.engine().undo().unwrap();
    assert!(
        changed(&injected, &snapshot(&m)).is_empty(),
        "one undo brings back what the repair changed"
    );
}

#[test]
fn safety_scan_reports_progress_and_a_cancel_repairs_nothing() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    m.modify_weight("output_norm.weight", 3, f32::NAN).unwrap();
    let history = m.engine().history().len();
    let s = SafetySettings {
        repair: true,
        response_filters: false,
        ..SafetySettings::default()
    };
    // Total = bytes of every tensor's data, from the index (independent of the scan).
    let expected_total: u64 = m
        .tensors()
        .unwrap()
        .index()
        .tensors
        .iter()
        .map(|t| t.nbytes)
        .sum();
    let mut calls = Vec::new();
    let rep = m
        .apply_safety_filters_with_progress(&s, &mut |done, total| {
            calls.push((done, total));
            true
        })
        .unwrap();
    assert!(!rep.canceled);
    assert!(!calls.is_empty());
    assert!(calls.iter().all(|&(_, t)| t == expected_total));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "monotonic");
    assert_eq!(calls.last().unwrap().0, expected_total, "ends at the total");
    m.engine().undo().unwrap();
    assert!(m
        .tensors()
        .unwrap()
        .value("output_norm.weight", 3)
        .unwrap()
        .is_nan());
    let before = m.engine().history().len();
    assert_eq!(before, history, "repair undone, the injected NaN is back");
    let rep = m
        .apply_safety_filters_with_progress(&s, &mut |_, _| false)
        .unwrap();
    assert!(rep.canceled);
    assert!(rep.repairs.is_empty() && rep.change.is_none());
    assert_eq!(m.engine().history().len(), before, "nothing repaired");
    assert!(m
        .tensors()
        .unwrap()
        .value("output_norm.weight", 3)
        .unwrap()
        .is_nan());
}

#[test]
fn boost_reports_residency() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    let r = m.boost_inference_speed(true).unwrap();
    let after = r.resident_after.expect("Linux reports residency");
    assert!(
        after > 0.99,
        "every page is resident after the prefetch: {after}"
    );
    assert!(r.resident_before.unwrap() <= after);
    assert_eq!(r.prefetched_bytes, std::fs::metadata(&model).unwrap().len());
    assert!(r.cache_enabled && m.server().cache.enabled);
}

#[test]
fn layer2_operations_are_guarded_recorded_and_exported() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let original = std::fs::read(&model).unwrap();
    let m = Manager::initialize().with_preset_dirs(vec![dir.path().join("p")]);
    m.attach(&model, Mode::Staged).unwrap();
    let layer = m.tensors().unwrap();
    let t = layer.tensor("output.weight").unwrap().clone();
    let at = t.offset + 16;

    // XOR with a key: recorded as a byte patch with the bytes before and after.
    m.bytes_op(0, "test", &[(at, 8)], |b, r| b.xor(r, at, 8, &[0xff, 0x0f]))
        .unwrap();
    let want: Vec<u8> = original[at as usize..at as usize + 8]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ if i % 2 == 0 { 0xff } else { 0x0f })
        .collect();
    let c = m.export_configuration().unwrap();
    assert_eq!(c.byte_patches.len(), 1, "one byte patch recorded");
    assert_eq!(c.byte_patches[0].offset, at);
    assert_eq!(
        c.byte_patches[0].original.0,
        original[at as usize..at as usize + 8]
    );
    assert_eq!(
        c.byte_patches[0].patched.0, want,
        "xor with the repeated key"
    );

    // Undone: not exported any more.
    m.engine().undo().unwrap();
    assert!(m.export_configuration().unwrap().byte_patches.is_empty());

    // The header guard is on: a broken magic is refused and nothing is recorded.
    let err = m
        .bytes_op(0, "test", &[(0, 4)], |b, r| b.write(r, 0, b"NOPE"))
        .unwrap_err();
    assert!(err.to_string().contains("GGUF header"), "{err}");
    assert!(m.export_configuration().unwrap().byte_patches.is_empty());

    // Protection of a range: recorded, refused writes, then removed.
    m.protect_range(0, at, 4).unwrap();
    assert!(m.export_configuration().unwrap().protections.contains(
        &hotpatch_core::config::Protection::Range {
            shard: 0,
            offset: at,
            len: 4
        }
    ));
    let err = m
        .bytes_op(0, "test", &[(at + 2, 1)], |b, r| b.fill(r, at + 2, 1, &[0]))
        .unwrap_err();
    assert!(err.to_string().contains("protected"), "{err}");
    assert_eq!(m.unprotect_range(0, at, 4).unwrap(), 1);
    assert!(m.export_configuration().unwrap().protections.is_empty());
    m.bytes_op(0, "test", &[(at + 2, 1)], |b, r| b.fill(r, at + 2, 1, &[0]))
        .unwrap();

    // A header edit that keeps it valid refreshes the tensor layer's index.
    let index = m.tensors().unwrap().index().clone();
    let key = index.entry("general.architecture").unwrap();
    let v = key.value_offset + 8;
    m.bytes_op(0, "test", &[(v, 5)], |b, r| b.write(r, v, b"LLAMA"))
        .unwrap();
    assert_eq!(
        m.tensors().unwrap().index().get_str("general.architecture"),
        Some("LLAMA"),
        "the tensor layer re-read the header"
    );
}

#[test]
fn transform_reports_progress_and_a_cancel_writes_nothing() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    let name = "token_embd.weight";
    // Expected total from the index, independently of the transform: every element (the
    // whole tensor is selected, so its blocks are exactly the tensor).
    let n: u64 = m
        .tensors()
        .unwrap()
        .tensor(name)
        .unwrap()
        .dims
        .iter()
        .product();
    let before = snapshot(&m);
    let history = m.engine().history().len();
    let scale = TransformOp::Scale { factor: 2.0 };

    // Canceled after the first chunk was computed: nothing written, recorded or undoable.
    let mut calls = 0;
    let err = m
        .transform_with(name, &Selection::All, &scale, &mut |_| {
            calls += 1;
            calls < 2
        })
        .expect_err("a canceled transform fails");
    assert!(
        matches!(
            err,
            hotpatch_core::manager::ManagerError::Tensor(
                hotpatch_core::tensor::TensorError::Engine(hotpatch_core::EngineError::Cancelled)
            )
        ),
        "cancel is reported as Cancelled, got {err}"
    );
    assert_eq!(
        snapshot(&m),
        before,
        "a canceled transform changes no value"
    );
    assert_eq!(
        m.engine().history().len(),
        history,
        "and leaves no undo entry"
    );
    assert!(
        m.export_configuration().unwrap().tensor_patches.is_empty(),
        "and records nothing for export"
    );

    // Run to the end: reports are monotonic, in elements, and end at the total.
    let mut seen = Vec::new();
    let rep = m
        .transform_with(name, &Selection::All, &scale, &mut |p| {
            seen.push((p.done, p.total));
            true
        })
        .unwrap();
    assert!(
        seen.len() >= 2,
        "{n} elements take more than one chunk: {seen:?}"
    );
    assert!(
        seen.iter().all(|&(_, t)| t == n),
        "total = the tensor's {n} elements"
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "monotonic: {seen:?}"
    );
    assert_eq!(seen.last().unwrap().0, n, "ends at the total");
    assert_eq!(rep.elements_selected, n);
    assert_eq!(m.engine().history().len(), history + 1, "one undo step");
}

/// Regression: the shipped presets were read at run time from the checkout the crate was
/// compiled in (`CARGO_MANIFEST_DIR/../../presets`); a binary reused from another checkout
/// (cargo does not rebuild a crate whose directory moved) or an installed app listed none
/// ("No presets found." in the Patches screen, a red e2e run). They are compiled in now.
#[test]
fn shipped_presets_are_compiled_in_and_a_user_preset_overrides_one() {
    use hotpatch_core::manager::SHIPPED_PRESETS;
    let on_disk = shipped_presets();
    let compiled: Vec<String> = SHIPPED_PRESETS
        .iter()
        .map(|(n, _)| format!("{n}.json"))
        .collect();
    let files: Vec<String> = on_disk.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(
        compiled, files,
        "SHIPPED_PRESETS lists every file of presets/, sorted"
    );
    for ((_, text), (file, c)) in SHIPPED_PRESETS.iter().zip(&on_disk) {
        assert_eq!(
            &Configuration::from_json(text).unwrap(),
            c,
            "{file}: the compiled copy is the file"
        );
    }

    // No preset directory on disk at all: every shipped preset is listed and loads.
    let dir = tempdir();
    let m = Manager::initialize().with_preset_dirs(vec![dir.path().join("missing")]);
    let names: Vec<String> = SHIPPED_PRESETS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(m.list_presets(), names);
    let scale = m.load_preset("scale-ffn").unwrap();
    assert_eq!(
        scale,
        on_disk
            .iter()
            .find(|(f, _)| f == "scale-ffn.json")
            .unwrap()
            .1
    );
    let err = m.load_preset("no-such-preset").unwrap_err().to_string();
    assert!(
        err.contains("no-such-preset") && err.contains("shipped"),
        "{err}"
    );

    // A user preset of a shipped name wins; the list still names it once.
    let user = dir.path().join("user");
    let m = Manager::initialize().with_preset_dirs(vec![user.clone()]);
    let mut mine = scale.clone();
    mine.description = Some("mine".into());
    m.save_preset("scale-ffn", &mine).unwrap();
    assert_eq!(
        m.load_preset("scale-ffn").unwrap().description.as_deref(),
        Some("mine")
    );
    assert_eq!(m.list_presets(), names);
}

/// "Modified" follows the bytes, not the history: after Save, an edit and its undo leave the
/// image equal to the file (not modified); redo makes it modified again. Before any save, an
/// edit undone is not modified either.
#[test]
fn modified_clears_when_undo_returns_to_the_saved_state() {
    let dir = tempdir();
    let model = demo_model(dir.path(), "m.gguf", &[]);
    let m = Manager::initialize();
    m.attach(&model, Mode::Staged).unwrap();
    assert!(!m.is_modified());
    m.modify_weight("blk.0.attn_q.weight", 3, 0.5).unwrap();
    assert!(m.is_modified());
    m.undo().unwrap();
    assert!(!m.is_modified(), "undo back to the opened file");
    m.redo().unwrap();
    assert!(m.is_modified(), "redo");

    m.save(&mut |_| true).unwrap();
    assert!(!m.is_modified(), "after save");
    m.modify_weight("blk.1.attn_k.weight", 7, -0.25).unwrap();
    assert!(m.is_modified());
    m.undo().unwrap();
    assert!(!m.is_modified(), "undo back to the saved state");
    m.redo().unwrap();
    assert!(m.is_modified(), "redo after save");
    // Undo past the save: the image differs from the file that holds the first edit.
    m.undo().unwrap();
    m.undo().unwrap();
    assert!(m.is_modified(), "undo past the save point");
}

/// A directory given as a model is named for what it is, in every mode (not "No such device
/// (os error 19)", what mapping a directory says).
#[test]
fn a_directory_opened_as_a_model_says_so() {
    let dir = tempdir();
    let sub = dir.path().join("model.gguf");
    std::fs::create_dir(&sub).unwrap();
    for mode in [Mode::Staged, Mode::Live, Mode::ReadOnly] {
        let m = Manager::initialize();
        let e = m.attach(&sub, mode).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{mode:?}: {e}");
        assert!(e.contains(&sub.display().to_string()), "{mode:?}: {e}");
        assert!(!e.contains("os error 19"), "{mode:?}: {e}");
    }
}
