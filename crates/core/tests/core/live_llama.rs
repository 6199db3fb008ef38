//! Live editing against a real llama.cpp (node-llama-cpp, CPU, mmap) holding the demo model.

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

    // Q8_0: negate output.weight (flip the sign of every block's f16 scale). On a CPU where
    // llama.cpp may copy Q8_0 matrix weights (AMX), the row-lookup embedding, which stays in
    // the map on every CPU, carries the check instead.
    let host = e.live_visibility(&[r], &CpuInfo::host()).unwrap();
    let q8 = if host
        .iter()
        .any(|t| t.name == "output.weight" && t.visibility == LiveVisibility::Live)
    {
        "output.weight"
    } else {
        "token_embd.weight"
    };
    let (off, len) = e.tensor_span(r, q8).unwrap();
    let mut mask = vec![0u8; 34];
    mask[1] = 0x80;
    e.bytes().bit_op(r, off, len, BitOp::Xor, &mask).unwrap();
    assert_ne!(
        llama.gen(),
        base,
        "negating the Q8_0 weights of {q8} changes the next generation"
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

/// Checks what `hotpatch_core::live` says about THIS host against a real llama.cpp: for every
/// tensor of the demo model, reverse its blocks live, generate, undo. A tensor called Live must
/// change generation; one called CopiedAtLoad must not; Unknown may go either way. F32 and
/// Q8_0 tensors must be called Live on x86-64 without AMX (the machines CI runs on), so a
/// regression that makes them invisible fails here.
#[test]
fn visibility_per_type_holds_on_this_host() {
    let dir = scratch("live-types");
    let model = dir.join("demo.gguf");
    oracle::demo_model(&model);
    let mut llama = Holder::start(&model);
    let base = llama.gen();
    let e = Engine::new();
    let r = e.open(&model, Mode::Live).unwrap();
    let index = e.gguf(r).unwrap();
    let cpu = CpuInfo::host();
    let mut rows = Vec::new();
    for t in e.live_visibility(&[r], &cpu).unwrap() {
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
        rows.push((t, changed));
    }
    assert_eq!(
        llama.gen(),
        base,
        "after undoing every edit the runtime generates the original tokens"
    );
    let mut report = format!("host: {}\n", cpu.summary());
    for (t, changed) in &rows {
        report.push_str(&format!(
            "{} ({}): changed generation: {changed}; said {:?}: {}\n",
            t.name, t.ty, t.visibility, t.reason
        ));
    }
    for (t, changed) in &rows {
        match t.visibility {
            LiveVisibility::Live => assert!(
                *changed,
                "{} ({}) is called Live on this host but its edit was not seen:\n{report}",
                t.name, t.ty
            ),
            LiveVisibility::CopiedAtLoad => assert!(
                !*changed,
                "{} ({}) is called CopiedAtLoad on this host but its edit was seen:\n{report}",
                t.name, t.ty
            ),
            LiveVisibility::Unknown => {}
        }
    }
    if cpu.arch == "x86_64" && !cpu.has("amx_int8") {
        for ty in ["F32", "Q8_0"] {
            let of_type: Vec<_> = rows.iter().filter(|(t, _)| t.ty == ty).collect();
            assert!(!of_type.is_empty(), "the demo model has {ty} tensors");
            assert!(
                of_type
                    .iter()
                    .all(|(t, _)| t.visibility == LiveVisibility::Live),
                "every {ty} tensor is called Live on x86-64 without AMX:\n{report}"
            );
        }
    }
    eprintln!("{report}");
}
