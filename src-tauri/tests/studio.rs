//! Integration tests of the desktop shell, one binary with a module per concern:
//! generated bindings, architecture hygiene, and the model commands against gguf-py.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
fn workspace_root() -> PathBuf {
    hotpatch_testkit::root()
}

#[path = "studio/bytes.rs"]
mod bytes;

#[path = "studio/run.rs"]
mod run;

mod bindings {
    use super::*;

    /// Regenerates `ui/src/bindings.ts`. `scripts/test.sh` then fails if git sees a change,
    /// so a command added without committing regenerated bindings cannot land.
    #[test]
    fn bindings_export_and_match_the_commands() {
        let path = workspace_root().join(hotpatch_studio::BINDINGS_PATH);
        hotpatch_studio::export_bindings(&path).expect("bindings export");
        let ts = std::fs::read_to_string(&path).expect("bindings written");
        for name in [
            "startupModel",
            "openModel",
            "modelSummary",
            "listTensors",
            "readMetadata",
            "sessionRevision",
            "cancelJob",
        ] {
            assert!(
                ts.contains(&format!("\t{name}: (")),
                "bindings must expose command {name}, registered in specta_builder"
            );
        }
        // The number rule: no bigint anywhere (u64 fields are exported as number).
        assert!(
            !ts.contains("bigint"),
            "u64 offsets/dims must cross as number (see ipc.rs), found bigint"
        );
        assert!(
            ts.contains("code: ErrorCode") && ts.contains("\"NotGguf\""),
            "errors must cross as {{ code, message }} with a closed code union"
        );
    }
}

mod binary_commands {
    use super::*;

    /// Every raw-bytes command has a typed wrapper in `ui/src/lib/binary.ts` (tauri-specta
    /// cannot generate these, so this keeps the hand-written side honest).
    #[test]
    fn every_binary_command_has_a_typescript_wrapper() {
        let ts = std::fs::read_to_string(workspace_root().join("ui/src/lib/binary.ts"))
            .expect("ui/src/lib/binary.ts exists");
        for name in hotpatch_studio::binary::COMMANDS {
            assert!(
                ts.contains(&format!("invokeBinary(\"{name}\"")),
                "ui/src/lib/binary.ts must wrap raw command {name} (invokeBinary(\"{name}\", ...))"
            );
        }
    }
}

mod hygiene {
    use super::*;

    /// ARCHITECTURE INVARIANT: the core crate knows nothing of Tauri, tokio or specta.
    #[test]
    fn core_dependency_tree_has_no_tauri_tokio_or_specta() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(workspace_root())
            .args([
                "tree",
                "-p",
                "hotpatch-core",
                "-e",
                "normal",
                "--prefix",
                "none",
                "--offline",
            ])
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(
            tree.lines().any(|l| l.starts_with("hotpatch-core ")),
            "cargo tree must list hotpatch-core itself, got:\n{tree}"
        );
        let bad: Vec<&str> = tree
            .lines()
            .filter(|l| {
                let name = l.split_whitespace().next().unwrap_or("");
                name.starts_with("tauri") || name.starts_with("tokio") || name.starts_with("specta")
            })
            .collect();
        assert!(
            bad.is_empty(),
            "hotpatch-core must not depend on tauri/tokio/specta, found: {bad:?}"
        );
    }
}

mod model {
    use super::*;
    use hotpatch_studio::commands::model::{
        block_of, meta_view, open_with_progress, summarize, tensor_row, MetaView,
    };
    use hotpatch_studio::error::ErrorCode;
    use hotpatch_studio::ipc::{Progress, Stage};
    use std::sync::Mutex;

    use hotpatch_testkit::python;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hotpatch-studio-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(name)
    }

    /// The demo model, generated at test time (nothing large is committed) once per test
    /// process and shared: none reads a half-written model ([`hotpatch_testkit::shared_demo`]).
    fn demo_model() -> PathBuf {
        hotpatch_testkit::shared_demo("demo.gguf", &[])
    }

    /// gguf-py's view of the file: tensor name, type name, shape, absolute offset, n_bytes.
    fn gguf_py_tensors(path: &Path) -> Vec<(String, String, Vec<u64>, u64, u64)> {
        let script = r#"
import sys, json
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
print(json.dumps([[t.name, t.tensor_type.name, [int(d) for d in t.shape],
                   int(t.data_offset), int(t.n_bytes)] for t in r.tensors]))
"#;
        let out = Command::new(python())
            .args(["-c", script])
            .arg(path)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "gguf-py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("gguf-py json")
    }

    #[test]
    fn demo_model_rows_match_gguf_py() {
        let path = demo_model();
        let seen = Mutex::new(Vec::<Progress>::new());
        let file = open_with_progress(path.clone(), 1, |p| seen.lock().unwrap().push(p))
            .expect("the demo model opens");
        let expected = gguf_py_tensors(&path);
        let rows: Vec<_> = file
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| tensor_row(i, t))
            .collect();
        assert_eq!(
            rows.len(),
            expected.len(),
            "same tensor count as llama.cpp's gguf-py"
        );
        for (row, (name, ty, shape, offset, nbytes)) in rows.iter().zip(&expected) {
            assert_eq!(
                &row.name, name,
                "tensor order and names as gguf-py reads them"
            );
            assert_eq!(&row.ty, ty, "type of {name} as gguf-py names it");
            assert_eq!(
                &row.dims, shape,
                "dims of {name} (ggml order, like gguf-py's shape)"
            );
            assert_eq!(row.offset, *offset, "absolute data offset of {name}");
            assert_eq!(row.nbytes, *nbytes, "byte size of {name}");
        }
        let summary = summarize(&file);
        assert_eq!(summary.architecture.as_deref(), Some("llama"));
        assert_eq!(summary.tensor_count as usize, expected.len());
        assert_eq!(
            summary.types.iter().map(|t| t.count).sum::<u64>() as usize,
            expected.len(),
            "the type histogram counts every tensor once"
        );
        assert_eq!(
            summary.file_size,
            std::fs::metadata(&path).unwrap().len(),
            "file size as the filesystem reports it"
        );
        let stages: Vec<Stage> = seen.lock().unwrap().iter().map(|p| p.stage).collect();
        assert_eq!(
            stages,
            vec![Stage::Parse, Stage::Index, Stage::Done],
            "every stage is reported once, in order"
        );
        let arch = file
            .index()
            .metadata
            .iter()
            .find(|e| e.key == "general.architecture");
        assert_eq!(
            arch.map(|e| meta_view(&e.value)),
            Some(MetaView::Str {
                text: "llama".into(),
                lossy: false
            })
        );
    }

    #[test]
    fn non_gguf_file_is_refused_with_not_gguf() {
        let path = tmp("not-a-model.txt");
        std::fs::write(&path, b"hello, this is plain text and not a model").unwrap();
        let err = open_with_progress(path.clone(), 1, |_| {}).expect_err("text is not GGUF");
        assert_eq!(err.code, ErrorCode::NotGguf, "wrong magic maps to NotGguf");
        assert!(
            err.message.contains("not a GGUF file") && err.message.contains("not-a-model.txt"),
            "the message names the problem and the file: {}",
            err.message
        );
        let missing = tmp("does-not-exist.gguf");
        let err = open_with_progress(missing, 1, |_| {}).expect_err("missing file");
        assert_eq!(err.code, ErrorCode::Io, "a missing file is an I/O error");
    }

    /// The session: open attaches the file staged; reads go through it (edits show, the file
    /// on disk does not change until saved); every edit moves the revision views poll.
    #[test]
    fn open_attaches_a_staged_session_that_reads_through_edits() {
        use hotpatch_studio::binary::{read_range, MAX_READ};
        use hotpatch_studio::commands::model::attach_session;
        use hotpatch_studio::state::AppState;

        let path = tmp("session.gguf");
        std::fs::copy(demo_model(), &path).expect("copy the demo model");
        let on_disk = std::fs::read(&path).expect("read the copy");
        let state = AppState::default();
        assert_eq!(
            read_range(&state, 0, 0, 4).unwrap_err().code,
            ErrorCode::NoModel,
            "nothing is attached before an open"
        );
        let file = open_with_progress(path.clone(), 1, |_| {}).expect("the copy opens");
        let t = file.tensors[0].clone();
        attach_session(&state, &path, file).expect("attach staged");

        let off = t.offset;
        assert_eq!(
            read_range(&state, 0, off, 8).unwrap(),
            on_disk[off as usize..off as usize + 8].to_vec(),
            "read_bytes returns the file's bytes at {} ({})",
            off,
            t.name
        );
        let before = state.revision();
        let flipped: Vec<u8> = on_disk[off as usize..off as usize + 4]
            .iter()
            .map(|b| !b)
            .collect();
        state
            .session()
            .patch_bytes(0, off, &flipped)
            .expect("a staged byte edit");
        assert!(
            state.revision() > before,
            "an edit emits a patch event, moving the revision"
        );
        assert_eq!(
            read_range(&state, 0, off, 4).unwrap(),
            flipped,
            "reads see the staged edit"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            on_disk,
            "staged: the file is unchanged until saved"
        );

        let len = on_disk.len() as u64;
        let past = read_range(&state, 0, len - 2, 4).unwrap_err();
        assert_eq!(
            past.code,
            ErrorCode::Refused,
            "a read past the end is refused: {}",
            past.message
        );
        let huge = read_range(&state, 0, 0, MAX_READ + 1).unwrap_err();
        assert_eq!(
            huge.code,
            ErrorCode::BadRequest,
            "reads are bounded: {}",
            huge.message
        );
    }

    #[test]
    fn block_numbers_come_only_from_blk_prefix() {
        assert_eq!(block_of("blk.0.attn_q.weight"), Some(0));
        assert_eq!(block_of("blk.17.ffn_up.weight"), Some(17));
        assert_eq!(block_of("token_embd.weight"), None);
        assert_eq!(block_of("blk.x.attn_q.weight"), None, "non-numeric block");
        assert_eq!(block_of("blk.3."), None, "nothing after the block number");
        assert_eq!(block_of("blk.99999999999.w"), None, "does not fit u32");
    }

    #[test]
    fn metadata_integers_cross_as_decimal_strings() {
        use hotpatch_gguf::MetaValue;
        assert_eq!(
            meta_view(&MetaValue::U64(u64::MAX)),
            MetaView::Int {
                text: "18446744073709551615".into()
            },
            "u64 above 2^53 must not be rounded by a JS number"
        );
        assert_eq!(
            meta_view(&MetaValue::I64(i64::MIN)),
            MetaView::Int {
                text: "-9223372036854775808".into()
            }
        );
    }
}
