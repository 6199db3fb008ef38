//! Concurrency: many threads writing, reading, searching, undoing, saving at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotpatch_core::*;

use super::common::{scratch, Rng};

const REC: u64 = 64;
const RECS: u64 = 1024;

#[test]
fn writers_readers_undo_and_save_concurrently() {
    let dir = scratch("stress");
    let path = dir.join("m.bin");
    // Every 64-byte record starts uniform; every write keeps it uniform.
    let base: Vec<u8> = (0..RECS)
        .flat_map(|i| vec![(i % 251) as u8; REC as usize])
        .collect();
    std::fs::write(&path, &base).unwrap();
    let e = Engine::new();
    let r = e.open(&path, Mode::Staged).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let torn = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let rx = e.subscribe();
    let mut handles = Vec::new();
    for t in 0..4u64 {
        let e = e.clone();
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng(t + 1);
            for _ in 0..400 {
                let rec = rng.below(RECS);
                let v = rng.next_u64() as u8;
                match rng.below(4) {
                    0 => {
                        e.memory().fill(r, rec * REC, REC, &[v]).unwrap();
                    }
                    1 => {
                        let other = rng.below(RECS);
                        if other != rec {
                            e.memory().swap(r, rec * REC, r, other * REC, REC).unwrap();
                        }
                    }
                    2 => {
                        let g = e.begin_group(Origin::new(
                            Layer::Manager,
                            Operation::Other("stress".into()),
                            Target::None,
                        ));
                        e.bytes().xor(r, rec * REC, REC, &[v]).unwrap();
                        e.memory()
                            .write(r, ((rec + 1) % RECS) * REC, &[v; REC as usize])
                            .unwrap();
                        drop(g);
                    }
                    _ => {
                        // Undo/redo may race with groups of other threads: only Group errors are allowed.
                        match if rng.below(2) == 0 {
                            e.undo()
                        } else {
                            e.redo()
                        } {
                            Ok(_) | Err(EngineError::NothingTo(_)) | Err(EngineError::Group(_)) => {
                            }
                            Err(err) => panic!("undo/redo under contention failed: {err}"),
                        }
                    }
                }
            }
        }));
    }
    for t in 0..3u64 {
        let (e, stop, torn, reads) = (e.clone(), stop.clone(), torn.clone(), reads.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng(100 + t);
            while !stop.load(Ordering::Relaxed) {
                let rec = rng.below(RECS);
                let b = e.read(r, rec * REC, REC).unwrap();
                if b.iter().any(|x| *x != b[0]) {
                    torn.fetch_add(1, Ordering::Relaxed);
                }
                reads.fetch_add(1, Ordering::Relaxed);
                if rng.below(50) == 0 {
                    let _ = e
                        .memory()
                        .find_hex("00 00 ?? 00", Scope::All, 1 << 20)
                        .unwrap();
                }
            }
        }));
    }
    {
        let (e, stop) = (e.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                e.save(r, &mut |_| true).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }
    for h in handles.drain(..4) {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        torn.load(Ordering::Relaxed),
        0,
        "no reader ever saw a record half-written"
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
    let ids: Vec<u64> = rx.try_iter().map(|ev| ev.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "events stayed in order under contention"
    );
    e.save(r, &mut |_| true).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        e.read(r, 0, RECS * REC).unwrap(),
        "the final save matches the image"
    );
    e.undo_all().unwrap();
    assert_eq!(
        e.read(r, 0, RECS * REC).unwrap(),
        base,
        "undo-all after the storm restores the original"
    );
}

/// A second reader is not blocked by a reader holding a view, and a writer is. Ordered by
/// events, not by timings: a timing bound fails on a loaded machine.
#[test]
fn readers_proceed_while_another_reader_holds_a_view() {
    let dir = scratch("readers");
    let path = dir.join("m.bin");
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    let e = Engine::new();
    let r = e.open(&path, Mode::Staged).unwrap();
    let (inside_tx, inside) = std::sync::mpsc::channel();
    let (leave_tx, leave) = std::sync::mpsc::channel::<()>();
    let released = Arc::new(AtomicBool::new(false));
    let e2 = e.clone();
    let released2 = released.clone();
    let holder = std::thread::spawn(move || {
        e2.with_bytes(r, 0, 4096, |_| {
            inside_tx.send(()).unwrap();
            // Stays inside the view until told to leave (or, if the reader below is wrongly
            // blocked by this view, until the timeout ends the deadlock).
            let _ = leave.recv_timeout(Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(20));
            released2.store(true, Ordering::SeqCst);
        })
        .unwrap();
    });
    inside.recv().unwrap();
    let b = e.read(r, 0, 1).unwrap();
    assert_eq!(b, vec![7]);
    assert!(
        !released.load(Ordering::SeqCst),
        "the second read finished only after the first reader's view ended: readers block each other"
    );
    let e3 = e.clone();
    let released3 = released.clone();
    let writer = std::thread::spawn(move || {
        e3.memory().write(r, 0, &[1]).unwrap();
        released3.load(Ordering::SeqCst)
    });
    leave_tx.send(()).unwrap();
    assert!(
        writer.join().unwrap(),
        "the write finished while a reader still held its view"
    );
    holder.join().unwrap();
    assert_eq!(e.read(r, 0, 1).unwrap(), vec![1]);
}
