//! What an engine computing from the same file needs: the bytes as opened
//! (`original_bytes`), where they may differ (`touched_ranges`), and whether anything moved
//! (`last_event_id`) — under random edits, undos, redos and an open group.

use hotpatch_core::{Engine, Layer, Mode, Operation, Origin, Patch, Target};

use super::common::{data_file, scratch, Rng};

fn origin() -> Origin {
    Origin::new(Layer::Memory, Operation::Write, Target::None)
}

#[test]
fn original_bytes_and_touched_ranges_follow_every_history_step() {
    for mode in [Mode::Staged, Mode::Live] {
        let dir = scratch(&format!("baseline-{mode:?}"));
        let (path, data) = data_file(&dir, "d.bin", 64 * 1024, 7);
        let e = Engine::new();
        let r = e.open(&path, mode).unwrap();
        let mut rng = Rng(99);
        let mut last = e.last_event_id();
        for step in 0..300 {
            match rng.below(10) {
                0..=5 => {
                    let off = rng.below(60 * 1024);
                    let len = 1 + rng.below(3000) as usize;
                    e.apply(origin(), vec![Patch::new(r, off, rng.bytes(len))])
                        .unwrap();
                }
                6 | 7 => {
                    let _ = e.undo();
                }
                8 => {
                    let _ = e.redo();
                }
                _ => {
                    // An open group counts too while it is open.
                    let g = e.begin_group(origin());
                    let off = rng.below(60 * 1024);
                    e.apply(origin(), vec![Patch::new(r, off, rng.bytes(100))])
                        .unwrap();
                    assert_eq!(
                        e.original_bytes(r, 0, data.len() as u64).unwrap(),
                        data,
                        "step {step}: inside a group"
                    );
                    g.end().unwrap();
                }
            }
            let id = e.last_event_id();
            assert!(id >= last, "event ids never go back");
            last = id;
            assert_eq!(
                e.original_bytes(r, 0, data.len() as u64).unwrap(),
                data,
                "{mode:?} step {step}: reverting the applied history gives the bytes as opened"
            );
            let now = e.read(r, 0, data.len() as u64).unwrap();
            let touched = e.touched_ranges(r);
            for (i, (a, b)) in now.iter().zip(&data).enumerate() {
                if a != b {
                    assert!(
                        touched
                            .iter()
                            .any(|&(s, t)| s <= i as u64 && (i as u64) < t),
                        "{mode:?} step {step}: byte {i} differs but is in no touched range"
                    );
                }
            }
            assert!(
                touched.windows(2).all(|w| w[0].1 < w[1].0),
                "sorted, merged"
            );
        }
        // A slice in the middle, and an out-of-bounds request.
        assert_eq!(e.original_bytes(r, 1000, 50).unwrap(), data[1000..1050]);
        assert!(e.original_bytes(r, data.len() as u64, 1).is_err());
    }
}
