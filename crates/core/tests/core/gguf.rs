//! The GGUF structure of a region, tensor locks, the live-visibility list.

use hotpatch_core::*;

use super::common::scratch;
use super::oracle;

#[test]
fn structure_labels_every_byte_and_tensor_locks_protect() {
    let dir = scratch("gguf-structure");
    let model = dir.join("demo.gguf");
    oracle::demo_model(&model);
    let e = Engine::new();
    let r = e.open(&model, Mode::Staged).unwrap();
    let spans = e.structure(r).unwrap();
    let len = e.region_info(r).unwrap().len;
    assert_eq!(spans.first().map(|s| s.start), Some(0));
    assert_eq!(
        spans.last().map(|s| s.end),
        Some(len),
        "the spans reach the end of the file"
    );
    assert!(
        spans.windows(2).all(|w| w[0].end == w[1].start),
        "spans are contiguous and do not overlap"
    );
    let index = e.gguf(r).unwrap();
    let data = spans
        .iter()
        .filter(|s| matches!(s.kind, SpanKind::TensorData { .. }))
        .count();
    assert_eq!(data, index.tensors.len(), "one data span per tensor");
    let arch = spans
        .iter()
        .find(|s| matches!(&s.kind, SpanKind::Metadata { key } if key == "general.architecture"))
        .unwrap();
    let bytes = e.read(r, arch.start, arch.end - arch.start).unwrap();
    assert!(
        bytes.ends_with(b"llama"),
        "the general.architecture span ends with its string value"
    );
    let (off, n) = e.tensor_span(r, "output.weight").unwrap();
    let window = e.spans_in(r, off - 4, 8).unwrap();
    assert!(window.iter().any(|s| matches!(&s.kind, SpanKind::TensorData { name, ty } if name == "output.weight" && ty == "Q8_0")));

    // Tensor lock: every layer refuses, with a message naming the tensor.
    e.lock_tensor(r, "output.weight").unwrap();
    let err = e.memory().write(r, off + n / 2, &[1]).unwrap_err();
    assert!(
        err.to_string().contains("output.weight"),
        "the error names the locked tensor: {err}"
    );
    assert!(matches!(
        e.bytes().fill(r, off - 10, 20, &[0]),
        Err(EngineError::Protected { .. })
    ));
    assert_eq!(e.unlock_tensor(r, "output.weight").unwrap(), 1);
    e.memory().write(r, off + n / 2, &[1]).unwrap();
    assert!(matches!(
        e.tensor_span(r, "nope"),
        Err(EngineError::NoSuchTensor { .. })
    ));

    // A Layer-2 edit of the header is followed by the index (re-parsed).
    let key = index
        .metadata
        .iter()
        .find(|m| m.key == "general.architecture")
        .unwrap();
    let v = key.value_offset + 8; // string payload after its u64 length
    e.bytes().write(r, v, b"LLAMA").unwrap();
    assert_eq!(
        e.gguf(r).unwrap().get_str("general.architecture"),
        Some("LLAMA"),
        "index re-parsed after a header write"
    );
    e.bytes().write(r, 0, b"XXXX").unwrap();
    assert!(
        matches!(e.gguf(r), Err(EngineError::Gguf { .. })),
        "a broken magic leaves no index, with a reason"
    );
    e.undo_all().unwrap();
    assert_eq!(
        e.gguf(r).unwrap().get_str("general.architecture"),
        Some("llama"),
        "undo restores the index"
    );
}

#[test]
fn live_visibility_lists_every_tensor() {
    let dir = scratch("gguf-live");
    let model = dir.join("demo.gguf");
    oracle::demo_model(&model);
    let e = Engine::new();
    let r = e.open(&model, Mode::ReadOnly).unwrap();
    let list = e.live_visibility(&[r], &CpuInfo::host()).unwrap();
    assert_eq!(list.len(), e.gguf(r).unwrap().tensors.len());
    // Verdicts are made for a CPU: the same model reads differently on different machines.
    let on = |cpu: &CpuInfo, name: &str| {
        e.live_visibility(&[r], cpu)
            .unwrap()
            .into_iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} in the demo model"))
    };
    let plain = CpuInfo::new("x86_64", &[]);
    let avx2 = CpuInfo::new("x86_64", &["avx2"]);
    let avx512 = CpuInfo::new("x86_64", &["avx2", "avx512f"]);
    let amx = CpuInfo::new("x86_64", &["avx2", "avx512f", "amx_int8"]);
    // blk.0.ffn_gate is Q4_0, blk.1.attn_output Q2_K, blk.0.attn_output Q8_0.
    let q40 = "blk.0.ffn_gate.weight";
    assert_eq!(
        on(&plain, q40).visibility,
        LiveVisibility::Live,
        "no AVX2: no repacked Q4_0 layout"
    );
    let t = on(&avx2, q40);
    assert_eq!(
        t.visibility,
        LiveVisibility::CopiedAtLoad,
        "AVX2 repacks Q4_0"
    );
    assert!(
        t.reason.contains("AVX2"),
        "the reason names the feature: {}",
        t.reason
    );
    let q2k = "blk.1.attn_output.weight";
    assert_eq!(
        on(&avx2, q2k).visibility,
        LiveVisibility::Live,
        "Q2_K stays mapped on AVX2"
    );
    assert_eq!(
        on(&avx512, q2k).visibility,
        LiveVisibility::CopiedAtLoad,
        "AVX-512 repacks Q2_K"
    );
    let q80 = "blk.0.attn_output.weight";
    assert_eq!(on(&avx512, q80).visibility, LiveVisibility::Live);
    assert_eq!(
        on(&amx, q80).visibility,
        LiveVisibility::Unknown,
        "AMX builds may copy Q8_0"
    );
    // Regression (an AVX-512 + AMX host, 2026-12-04): F16 edits did not reach llama.cpp there,
    // the AMX buffer takes F16 weights too; without AMX they stay mapped.
    let f16 = "blk.1.attn_q.weight";
    assert_eq!(on(&avx512, f16).visibility, LiveVisibility::Live);
    assert_eq!(
        on(&amx, f16).visibility,
        LiveVisibility::Unknown,
        "AMX builds may copy F16"
    );
    // Roles: 1-D tensors and the row-lookup embedding are never copied, on any CPU.
    for cpu in [&plain, &avx2, &avx512, &amx, &CpuInfo::new("riscv64", &[])] {
        assert_eq!(
            on(cpu, "output_norm.weight").visibility,
            LiveVisibility::Live
        );
        assert_eq!(
            on(cpu, "token_embd.weight").visibility,
            LiveVisibility::Live
        );
    }
    // An architecture whose rules are not known says so instead of guessing.
    assert_eq!(
        on(&CpuInfo::new("riscv64", &[]), q80).visibility,
        LiveVisibility::Unknown
    );
    assert_eq!(CpuInfo::host().arch, std::env::consts::ARCH);
}

#[test]
fn tensor_addressing_in_layer_one() {
    let dir = scratch("gguf-addr");
    let model = dir.join("demo.gguf");
    oracle::demo_model(&model);
    let e = Engine::new();
    let r = e.open(&model, Mode::Staged).unwrap();
    let (off, n) = e.tensor_span(r, "output_norm.weight").unwrap();
    let m = e.memory();
    assert_eq!(
        m.read_tensor(r, "output_norm.weight", 8, 4).unwrap(),
        e.read(r, off + 8, 4).unwrap(),
        "tensor offset 8 is absolute offset+8"
    );
    let rx = e.subscribe();
    m.write_tensor(r, "output_norm.weight", n - 4, &1.5f32.to_le_bytes())
        .unwrap();
    assert_eq!(
        e.read(r, off + n - 4, 4).unwrap(),
        1.5f32.to_le_bytes().to_vec()
    );
    let ev = rx.try_recv().unwrap();
    assert_eq!(
        ev.origin.target,
        Target::Tensor {
            region: r,
            name: "output_norm.weight".into()
        },
        "the event names the tensor"
    );
    let err = m
        .write_tensor(r, "output_norm.weight", n - 2, &[0; 4])
        .unwrap_err();
    assert!(
        matches!(err, EngineError::OutsideTensor { offset, len: 4, nbytes, .. } if offset == n - 2 && nbytes == n),
        "{err}"
    );
}

#[test]
fn header_guard_refuses_writes_that_break_the_gguf() {
    let dir = scratch("gguf-guard");
    let model = dir.join("demo.gguf");
    oracle::demo_model(&model);
    let original = std::fs::read(&model).unwrap();
    let e = Engine::new();
    let r = e.open(&model, Mode::Staged).unwrap();
    let index = e.gguf(r).unwrap();
    let guarded = e.bytes().keeping_gguf();

    // A broken magic, a version of 9, a tensor count far beyond the file: refused, nothing
    // written, no undo entry.
    let history = e.history().len();
    for (offset, bytes) in [
        (0u64, &b"XXXX"[..]),
        (4, &[9, 0, 0, 0][..]),
        (8, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0][..]),
    ] {
        let err = guarded.write(r, offset, bytes).unwrap_err();
        assert!(
            matches!(err, EngineError::BreaksGguf { offset: o, .. } if o == offset),
            "write at {offset}: {err}"
        );
        assert_eq!(err.code(), "breaks_gguf");
    }
    assert!(
        guarded.fill(r, 0, 16, &[0]).is_err(),
        "a fill over the header is checked too"
    );
    assert_eq!(e.history().len(), history, "refused writes record nothing");
    assert_eq!(
        e.read(r, 0, index.data_offset).unwrap(),
        original[..index.data_offset as usize],
        "refused writes change no byte"
    );

    // A write that keeps the header valid passes (same-length string value).
    let key = index.entry("general.architecture").unwrap();
    guarded.write(r, key.value_offset + 8, b"LLAMA").unwrap();
    assert_eq!(
        e.gguf(r).unwrap().get_str("general.architecture"),
        Some("LLAMA")
    );
    // Tensor data is never checked (not header).
    let (off, _) = e.tensor_span(r, "output.weight").unwrap();
    guarded.fill(r, off, 4, &[0xff]).unwrap();
    // Without the guard, the bytes layer may still break the header on purpose.
    e.bytes().write(r, 0, b"XXXX").unwrap();
    assert!(matches!(e.gguf(r), Err(EngineError::Gguf { .. })));
    // And once the header is broken, the guard has nothing to protect (no index).
    guarded.write(r, 1, b"Z").unwrap();
}
