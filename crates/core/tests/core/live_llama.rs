//! Live editing against a real llama.cpp (node-llama-cpp, CPU, mmap) holding the demo model.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use hotpatch_core::*;

use super::common::scratch;
use super::oracle;

/// A running `tests/oracle/hold.mjs`: the model stays loaded; `gen` asks for greedy tokens.
struct Holder {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Holder {
    fn start(model: &std::path::Path) -> Holder {
        let dir = oracle::node_oracle();
        let mut child = Command::new("node")
            .arg(dir.join("hold.mjs"))
            .arg(model)
            .arg("hello world")
            .arg("12")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node tests/oracle/hold.mjs (is node installed? run scripts/setup-oracles.sh)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut h = Holder {
            child,
            stdin,
            lines,
        };
        let ready = h.line();
        assert!(
            ready.contains("\"ready\":true"),
            "hold.mjs did not get ready: {ready}"
        );
        h
    }

    fn line(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(300)) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!("llama.cpp did not answer within 300 s"),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("hold.mjs exited: {:?}", self.child.try_wait())
            }
        }
    }

    fn gen(&mut self) -> Vec<u64> {
        writeln!(self.stdin, "gen").expect("write to hold.mjs");
        self.stdin.flush().expect("flush");
        let l = self.line();
        let start = l
            .find("\"tokens\":[")
            .unwrap_or_else(|| panic!("no tokens in {l}"))
            + 10;
        let end = start + l[start..].find(']').expect("]");
        l[start..end]
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.trim().parse().expect("token id"))
            .collect()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn origin() -> Origin {
    Origin::new(
        Layer::Tensor,
        Operation::Other("live test".into()),
        Target::None,
    )
    .with_source("test")
}

#[test]
fn live_edit_changes_generation_without_reload_and_undo_restores_it() {
    let dir = scratch("live-llama");
    let model = dir.join("demo.gguf");
    oracle::demo_model(&model);
    let mut llama = Holder::start(&model);
    let base = llama.gen();
    assert_eq!(llama.gen(), base, "greedy generation is deterministic");

    let e = Engine::new();
    let r = e.open(&model, Mode::Live).unwrap();
    let rx = e.subscribe();
    // F32: negate output_norm.weight (flip each value's sign bit).
    let (off, len) = e.tensor_span(r, "output_norm.weight").unwrap();
    e.bytes()
        .bit_op(r, off, len, BitOp::Xor, &[0, 0, 0, 0x80])
        .unwrap();
    let edited = llama.gen();
    assert_ne!(edited, base, "negating the F32 output norm through the live image changes the next generation (no reload)");
    e.undo().unwrap();
    assert_eq!(
        llama.gen(),
        base,
        "undo of the live F32 edit restores the original tokens"
    );

    // Q8_0: negate output.weight (flip the sign of every block's f16 scale).
    let (off, len) = e.tensor_span(r, "output.weight").unwrap();
    let mut mask = vec![0u8; 34];
    mask[1] = 0x80;
    e.bytes().bit_op(r, off, len, BitOp::Xor, &mask).unwrap();
    assert_ne!(
        llama.gen(),
        base,
        "negating the Q8_0 output weights changes the next generation"
    );
    e.undo().unwrap();
    assert_eq!(
        llama.gen(),
        base,
        "undo of the live Q8_0 edit restores the original tokens"
    );
    let events: Vec<Event> = rx.try_iter().collect();
    assert!(
        events
            .iter()
            .any(|ev| ev.origin.operation == Operation::Undo),
        "undo emitted events"
    );
    drop(llama);
    assert_eq!(
        std::fs::read(&model).unwrap().len() as u64,
        e.region_info(r).unwrap().file_len
    );
}

/// Re-checks `hotpatch_core::live`'s table: for every tensor of the demo model, reverse its
/// blocks live, generate, undo. A type marked Live must change generation for every tensor;
/// one marked CopiedAtLoad must change it for none.
#[test]
fn visibility_per_type_matches_the_table() {
    let dir = scratch("live-types");
    let model = dir.join("demo.gguf");
    oracle::demo_model(&model);
    let mut llama = Holder::start(&model);
    let base = llama.gen();
    let e = Engine::new();
    let r = e.open(&model, Mode::Live).unwrap();
    let index = e.gguf(r).unwrap();
    let mut seen: BTreeMap<String, (usize, usize, LiveVisibility)> = BTreeMap::new();
    for t in e.live_visibility(r).unwrap() {
        let ty = index.tensor(&t.name).unwrap().ggml_type().unwrap();
        let bs = ty.type_size() as u64;
        e.apply_computed(origin(), |v| {
            let bytes = v.bytes(r, t.offset, t.nbytes)?;
            let reversed: Vec<u8> = bytes.chunks(bs as usize).rev().flatten().copied().collect();
            Ok(vec![Patch::new(r, t.offset, reversed)])
        })
        .unwrap();
        let changed = llama.gen() != base;
        e.undo().unwrap();
        let entry = seen.entry(t.ty.clone()).or_insert((0, 0, t.visibility));
        entry.0 += 1;
        entry.1 += usize::from(changed);
    }
    assert_eq!(
        llama.gen(),
        base,
        "after undoing every edit the runtime generates the original tokens"
    );
    let mut report = String::new();
    for (ty, (n, changed, vis)) in &seen {
        report.push_str(&format!(
            "{ty}: {changed}/{n} tensors changed generation, table says {vis:?}\n"
        ));
    }
    for (ty, (n, changed, vis)) in &seen {
        match vis {
            LiveVisibility::Live => assert_eq!(
                changed, n,
                "{ty} is marked Live but some edits were not seen:\n{report}"
            ),
            LiveVisibility::CopiedAtLoad => assert_eq!(
                *changed, 0,
                "{ty} is marked CopiedAtLoad but edits were seen:\n{report}"
            ),
            LiveVisibility::Unknown => {
                panic!("{ty} is in the demo model but unmeasured in the table:\n{report}")
            }
        }
    }
    eprintln!("{report}");
}
