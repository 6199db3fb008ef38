//! Crash safety: a child process saving (staged) or writing live is killed with SIGKILL at
//! random points, over and over; every reopen must find the file fully old or fully new.
//!
//! The file has 300 fixed ranges. Every step (one Save of a staged image, or one live batch)
//! moves *all* ranges from generation value `v` to `v+1` (each range filled with that byte);
//! bytes outside the ranges never change. After a kill, reopening (which rolls a journal
//! forward) must show every range holding one same value and the other bytes untouched:
//! a mix of values would be a torn file.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

use hotpatch_core::*;

use super::common::{scratch, Rng};

const FILE_LEN: usize = 4 << 20;
const RANGES: u64 = 300;
const RANGE_LEN: u64 = 1000;

fn range_offset(j: u64) -> u64 {
    // Spread over the file, unaligned.
    j * (FILE_LEN as u64 / RANGES) + (j * 37) % 500
}

fn origin() -> Origin {
    Origin::new(Layer::Bytes, Operation::Fill, Target::None)
}

/// The child: loops forever, stepping generations, until killed.
#[test]
fn child() {
    let Ok(mode) = std::env::var("HOTPATCH_CRASH_CHILD") else {
        return;
    };
    let path = std::env::var("HOTPATCH_CRASH_FILE").expect("file");
    let e = Engine::new();
    let live = mode == "live";
    let r = e
        .open(&path, if live { Mode::Live } else { Mode::Staged })
        .expect("child open");
    loop {
        let v = e.read(r, range_offset(0), 1).expect("read")[0].wrapping_add(1);
        let patches: Vec<Patch> = (0..RANGES)
            .map(|j| Patch::new(r, range_offset(j), vec![v; RANGE_LEN as usize]))
            .collect();
        e.apply(origin(), patches).expect("apply");
        if !live {
            // Slow the write phase down (it follows the journal) so kills land inside it too.
            e.save(r, &mut |p| {
                if p.done > p.total / 2 && p.done % 4 == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
                true
            })
            .expect("save");
        }
        println!("HOTPATCH step");
    }
}

fn check(path: &std::path::Path, base: &[u8]) -> (u8, bool) {
    let e = Engine::new();
    let r = e.open(path, Mode::ReadOnly).expect("reopen after kill");
    let recovered = e.region_info(r).unwrap().recovered.is_some();
    let bytes = e.read(r, 0, FILE_LEN as u64).unwrap();
    let v = bytes[range_offset(0) as usize];
    let mut want = base.to_vec();
    for j in 0..RANGES {
        let o = range_offset(j) as usize;
        want[o..o + RANGE_LEN as usize].fill(v);
    }
    if bytes != want {
        let first = bytes.iter().zip(&want).position(|(a, b)| a != b).unwrap();
        panic!(
            "torn file after a kill: byte {first} is {:#x}, expected {:#x} (generation {v})",
            bytes[first], want[first]
        );
    }
    assert!(
        !wal::journal_path(path).exists(),
        "recovery deleted the journal"
    );
    (v, recovered)
}

fn kill_loop(mode: &str, rounds: usize) {
    let dir = scratch(&format!("crash-{mode}"));
    let path = dir.join("model.bin");
    let mut rng = Rng(0x5eed ^ rounds as u64 ^ mode.len() as u64);
    let mut base = rng.bytes(FILE_LEN);
    for j in 0..RANGES {
        let o = range_offset(j) as usize;
        base[o..o + RANGE_LEN as usize].fill(0);
    }
    std::fs::write(&path, &base).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut recovered = 0;
    let mut last = 0u8;
    let mut advanced = 0;
    let mut step = Duration::from_millis(50);
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "core::crash::child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("HOTPATCH_CRASH_CHILD", mode)
            .env("HOTPATCH_CRASH_FILE", &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with("HOTPATCH") && tx.send(Instant::now()).is_err() {
                    break;
                }
            }
        });
        // Wait until the child has the file open, let it finish 0-2 steps, then kill it at a
        // random point of the next one (the step time is measured, so this holds under load).
        rx.recv_timeout(Duration::from_secs(120))
            .expect("child ready");
        let mut prev = Instant::now();
        for _ in 0..rng.below(3) {
            let t = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("child step");
            step = (step * 3 + t.duration_since(prev)) / 4;
            prev = t;
        }
        let delay = step.mul_f64(rng.below(1000) as f64 / 1000.0);
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child was killed, not finished"
        );
        let (v, rec) = check(&path, &base);
        recovered += usize::from(rec);
        if v != last {
            advanced += 1;
            last = v;
        }
    }
    eprintln!("{mode}: {rounds} kills, {recovered} reopen(s) rolled a journal forward, the file advanced in {advanced} rounds");
    assert!(
        advanced >= rounds / 4,
        "{mode}: the children made progress before being killed ({advanced} of {rounds} rounds)"
    );
    assert!(
        recovered > 0,
        "{mode}: some kills landed after the journal was written and before it was deleted"
    );
}

#[test]
fn sigkill_during_save_never_tears_the_file() {
    kill_loop("save", 100);
}

#[test]
fn sigkill_during_live_writes_never_tears_the_file() {
    kill_loop("live", 100);
}
