//! LoRA (against numpy and llama.cpp's own run-time LoRA), ablation (against numpy), tensors
//! added from GGUF / .npy / .safetensors, renamed, removed.

use std::path::Path;
use std::process::Command;

use hotpatch_core::surgery::{self, DirectionSource, SurgeryOp, TensorSource};
use hotpatch_gguf::GgufFile;

use crate::common::*;

fn lora(adapter: &str, scale: f32) -> Vec<SurgeryOp> {
    vec![SurgeryOp::Lora {
        adapter: adapter.into(),
        scale,
    }]
}

/// Greedy tokens of real llama.cpp with the adapter applied at run time.
fn generate_lora(model: &Path, adapter: &Path, scale: f32) -> Vec<u64> {
    let out = Command::new("node")
        .arg(root().join("tests/oracle/generate_lora.mjs"))
        .arg(model)
        .arg(adapter)
        .arg(scale.to_string())
        .args(["hello world", "12"])
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect()
}

fn targets(layers: u32) -> String {
    let mut t: Vec<String> = (0..layers)
        .flat_map(|i| {
            ["attn_q", "attn_v", "attn_output", "ffn_up", "ffn_down"]
                .map(|x| format!("blk.{i}.{x}.weight"))
        })
        .collect();
    t.push("output.weight".into());
    t.join(",")
}

#[test]
fn a_merged_lora_answers_like_llama_cpp_applying_it_at_run_time() {
    let dir = tempdir();
    let d = dir.path();
    let base = fixture(d, "base.gguf", &["--layers", "2"]);
    let ad = d.join("ad.gguf");
    oracle(&[
        "lora-fixture",
        ad.to_str().unwrap(),
        base.to_str().unwrap(),
        "--targets",
        &targets(2),
        "--rank",
        "8",
        "--alpha",
        "16",
    ]);
    let out = d.join("merged.gguf");
    run(&base, &lora("ad.gguf", 1.5), &out);
    let v = expect(&[
        "expect-lora",
        base.to_str().unwrap(),
        ad.to_str().unwrap(),
        out.to_str().unwrap(),
        "--scale",
        "1.5",
    ]);
    assert_eq!(v["applied"], 11, "{v}");
    let merged = generate(&out, "hello world", 12);
    assert_ne!(
        merged,
        generate(&base, "hello world", 12),
        "the adapter changes the answer"
    );
    assert_eq!(
        merged,
        generate_lora(&base, &ad, 1.5),
        "merged weights answer as llama.cpp's run-time LoRA"
    );

    // token_embd uses llama.cpp's own layout (A: [rank, n_vocab], B: [rank, n_embd]).
    let emb = d.join("emb.gguf");
    oracle(&[
        "lora-fixture",
        emb.to_str().unwrap(),
        base.to_str().unwrap(),
        "--targets",
        "token_embd.weight",
        "--rank",
        "4",
        "--alpha",
        "0",
    ]);
    let out = d.join("emb-merged.gguf");
    run(&base, &lora("emb.gguf", 60.0), &out);
    expect(&[
        "expect-lora",
        base.to_str().unwrap(),
        emb.to_str().unwrap(),
        out.to_str().unwrap(),
        "--scale",
        "60",
    ]);
    assert_eq!(
        generate(&out, "hello world", 12),
        generate_lora(&base, &emb, 60.0)
    );
}

#[test]
fn lora_into_a_quantized_split_model_keeps_every_type() {
    let dir = tempdir();
    let d = dir.path();
    hotpatch_testkit::demo_model(d, "split.gguf", &["--split-max-tensors", "10"]);
    let first = d.join("split-00001-of-00004.gguf");
    let demo = shared_demo("demo.gguf", &[]);
    let ad = d.join("ad.gguf");
    oracle(&[
        "lora-fixture",
        ad.to_str().unwrap(),
        demo.to_str().unwrap(),
        "--targets",
        &targets(4),
        "--rank",
        "8",
        "--type",
        "F16",
    ]);
    let out = d.join("merged.gguf");
    let p = run(&first, &lora("ad.gguf", 0.8), &out);
    assert_eq!(p.changed, 21);
    let v = expect(&[
        "expect-lora",
        demo.to_str().unwrap(),
        ad.to_str().unwrap(),
        out.to_str().unwrap(),
        "--scale",
        "0.8",
    ]);
    assert_eq!(v["checked"], 39, "{v}");
    assert_eq!(generate(&out, "hello world", 4).len(), 4);
}

#[test]
fn adapters_that_do_not_fit_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let base = fixture(d, "base.gguf", &["--layers", "1", "--embd", "64"]);
    let wide = fixture(d, "wide.gguf", &["--layers", "1", "--embd", "128"]);
    let ad = d.join("ad.gguf");
    oracle(&[
        "lora-fixture",
        ad.to_str().unwrap(),
        wide.to_str().unwrap(),
        "--targets",
        "blk.0.attn_q.weight",
    ]);
    let e = surgery::plan(&base, &lora("ad.gguf", 1.0), d).unwrap_err();
    assert!(
        e.to_string().contains("blk.0.attn_q.weight") && e.to_string().contains("do not fit"),
        "{e}"
    );
    let e = surgery::plan(&base, &lora("base.gguf", 1.0), d).unwrap_err();
    assert!(
        e.to_string().contains("neither NAME.lora_a"),
        "a model is not an adapter: {e}"
    );
}

fn ablate(
    path: &str,
    layer: Option<u32>,
    layers: Option<&str>,
    embeddings: bool,
) -> Vec<SurgeryOp> {
    vec![SurgeryOp::Ablate {
        direction: DirectionSource {
            path: path.into(),
            layer,
        },
        layers: layers.map(str::to_string),
        embeddings,
        scale: 1.0,
    }]
}

#[test]
fn ablation_projects_the_direction_out_of_the_residual_writers() {
    let dir = tempdir();
    let d = dir.path();
    let base = fixture(d, "base.gguf", &["--layers", "3"]);
    let cv = d.join("cv.gguf");
    let npy = d.join("dirs.npy");
    oracle(&[
        "cvec-fixture",
        cv.to_str().unwrap(),
        "--layers",
        "3",
        "--npy",
        npy.to_str().unwrap(),
    ]);
    let out = d.join("ab.gguf");
    let p = run(&base, &ablate("cv.gguf", Some(2), None, true), &out);
    assert_eq!(p.changed, 7, "token_embd + 3 × (attn_output, ffn_down)");
    let v = expect(&[
        "expect-ablate",
        base.to_str().unwrap(),
        cv.to_str().unwrap(),
        out.to_str().unwrap(),
        "--layer",
        "2",
    ]);
    assert!(
        v["residual"].as_f64().unwrap() < 1e-5,
        "F32 keeps no component along r: {v}"
    );
    let out2 = d.join("ab2.gguf");
    run(
        &base,
        &ablate("dirs.npy", Some(1), Some("0,2"), false),
        &out2,
    );
    let v = expect(&[
        "expect-ablate",
        base.to_str().unwrap(),
        npy.to_str().unwrap(),
        out2.to_str().unwrap(),
        "--layer",
        "1",
        "--layers",
        "0,2",
        "--embeddings",
        "0",
    ]);
    assert_eq!(v["ablated"], 4, "{v}");
    assert_eq!(
        generate(&out, "hello world", 4).len(),
        4,
        "llama.cpp runs the ablated model"
    );

    // A quantized model: every tensor keeps its type, within one re-quantization.
    let demo = shared_demo("demo.gguf", &[]);
    let cv4 = d.join("cv4.gguf");
    oracle(&["cvec-fixture", cv4.to_str().unwrap(), "--layers", "4"]);
    let out3 = d.join("ab3.gguf");
    run(
        &demo,
        &ablate(cv4.to_str().unwrap(), Some(3), None, true),
        &out3,
    );
    expect(&[
        "expect-ablate",
        demo.to_str().unwrap(),
        cv4.to_str().unwrap(),
        out3.to_str().unwrap(),
        "--layer",
        "3",
    ]);

    let e = surgery::plan(&base, &ablate("cv.gguf", None, None, true), d).unwrap_err();
    assert!(e.to_string().contains("holds directions 1,2,3"), "{e}");
    let e = surgery::plan(
        &demo,
        &ablate(cv.to_str().unwrap(), Some(1), Some("9"), true),
        d,
    )
    .unwrap_err();
    assert!(e.to_string().contains("layer 9 does not exist"), "{e}");
}

#[test]
fn tensors_are_added_renamed_and_removed() {
    let dir = tempdir();
    let d = dir.path();
    let base = fixture(d, "base.gguf", &["--layers", "2", "--embd", "64"]);
    let other = fixture(
        d,
        "other.gguf",
        &[
            "--layers", "2", "--embd", "64", "--seed", "9", "--type", "F16",
        ],
    );
    // A .npy and a .safetensors written by numpy.
    let npy = d.join("bias.npy");
    let st = d.join("w.safetensors");
    let py = format!(
        "import numpy as np, json, struct\n\
         np.save('{n}', np.arange(64, dtype=np.float32) / 7)\n\
         a = (np.arange(128, dtype=np.float32).reshape(2, 64) / 3).astype(np.float16)\n\
         h = json.dumps({{'w': {{'dtype': 'F16', 'shape': [2, 64], 'data_offsets': [0, a.nbytes]}}}}).encode()\n\
         open('{s}', 'wb').write(struct.pack('<Q', len(h)) + h + a.tobytes())\n",
        n = npy.display(),
        s = st.display()
    );
    let ok = Command::new(hotpatch_testkit::python())
        .args(["-c", &py])
        .status()
        .unwrap();
    assert!(ok.success());
    let ops = vec![
        SurgeryOp::Remove {
            tensor: "blk.1.ffn_*".into(),
        },
        SurgeryOp::Rename {
            from: "blk.*.attn_q.weight".into(),
            to: "blk.*.attn_q_renamed.weight".into(),
        },
        SurgeryOp::Add {
            name: "blk.0.attn_q.bias".into(),
            source: TensorSource::Npy {
                path: "bias.npy".into(),
            },
            ty: None,
        },
        SurgeryOp::Add {
            name: "extra.weight".into(),
            source: TensorSource::Safetensors {
                path: "w.safetensors".into(),
                tensor: "w".into(),
            },
            ty: None,
        },
        SurgeryOp::Add {
            name: "output.weight".into(),
            source: TensorSource::Gguf {
                path: "other.gguf".into(),
                tensor: "output.weight".into(),
            },
            ty: Some("Q8_0".into()),
        },
    ];
    let out = d.join("t.gguf");
    run(&base, &ops, &out);
    let f = GgufFile::open(&out).unwrap();
    let names: Vec<&str> = f.index.tensors.iter().map(|t| t.name.as_str()).collect();
    assert!(
        !names.iter().any(|n| n.starts_with("blk.1.ffn_")),
        "removed"
    );
    assert!(
        names.contains(&"blk.1.attn_q_renamed.weight") && !names.contains(&"blk.1.attn_q.weight")
    );
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(
        at("blk.0.attn_q.bias") < at("blk.1.attn_norm.weight"),
        "added beside its layer"
    );
    let o = out.to_str().unwrap();
    let v = expect(&[
        "expect-add",
        o,
        "blk.0.attn_q.bias",
        "--npy",
        npy.to_str().unwrap(),
    ]);
    assert_eq!(
        (v["type"].as_str(), v["shape"].clone()),
        (Some("F32"), serde_json::json!([64]))
    );
    let e = f.index.tensor("extra.weight").unwrap();
    assert_eq!(
        (e.ty.to_string(), e.dims.clone()),
        ("F16".to_string(), vec![64, 2]),
        "numpy shape reversed into ggml dims, F16 kept"
    );
    expect(&[
        "expect-add",
        o,
        "output.weight",
        "--gguf",
        other.to_str().unwrap(),
        "--tensor",
        "output.weight",
    ]);
    assert_eq!(
        f.index.tensor("output.weight").unwrap().ty.to_string(),
        "Q8_0"
    );

    let e = surgery::plan(
        &base,
        &[SurgeryOp::Rename {
            from: "blk.0.attn_q.weight".into(),
            to: "blk.0.attn_k.weight".into(),
        }],
        d,
    )
    .unwrap_err();
    assert!(e.to_string().contains("exists"), "{e}");
    let e = surgery::plan(
        &base,
        &[SurgeryOp::Add {
            name: "x".into(),
            source: TensorSource::Npy {
                path: "missing.npy".into(),
            },
            ty: None,
        }],
        d,
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing.npy"), "{e}");
}
