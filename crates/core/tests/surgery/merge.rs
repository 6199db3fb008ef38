//! Merges: every method against the float32 reference, quantized inputs of different types,
//! mergekit parameters (gradients, filters), DARE's seed, refusals.

use hotpatch_core::surgery::{self, MergeMethod, MergeModel, MergeOp, Param, SurgeryOp};

use crate::common::*;

fn op(method: MergeMethod, others: &[&str], t: Option<Param>) -> MergeOp {
    MergeOp {
        method,
        models: others
            .iter()
            .map(|p| MergeModel {
                path: p.to_string(),
                weight: None,
                density: None,
            })
            .collect(),
        t,
        base_weight: None,
        normalize: None,
        lambda: None,
        seed: 0,
        types: Vec::new(),
    }
}

fn scalar(v: f64) -> Option<Param> {
    Some(Param::Scalar(v))
}

#[test]
fn every_method_matches_the_float32_reference_exactly() {
    let dir = tempdir();
    let d = dir.path();
    fixture(d, "a.gguf", &["--layers", "3", "--seed", "1"]);
    fixture(
        d,
        "b.gguf",
        &["--layers", "3", "--seed", "1", "--noise", "0.3"],
    );
    fixture(
        d,
        "c.gguf",
        &["--layers", "3", "--seed", "1", "--noise", "0.5"],
    );
    let path = |f: &str| d.join(f).to_str().unwrap().to_string();
    let two = ["b.gguf"];
    let three = ["b.gguf", "c.gguf"];
    let mut cases: Vec<(MergeOp, Vec<String>)> = Vec::new();
    cases.push((
        op(MergeMethod::Linear, &two, scalar(0.3)),
        vec!["--t".into(), "0.3".into()],
    ));
    cases.push((
        op(
            MergeMethod::Slerp,
            &two,
            Some(Param::Gradient(vec![0.0, 0.5, 1.0])),
        ),
        vec!["--t".into(), "0,0.5,1".into()],
    ));
    let mut task = op(MergeMethod::Task, &three, None);
    task.models[0].weight = scalar(0.6);
    task.models[1].weight = Some(Param::Gradient(vec![0.4, 1.0]));
    task.lambda = Some(0.8);
    cases.push((
        task,
        vec![
            "--weights".into(),
            "0.6;0.4,1".into(),
            "--lam".into(),
            "0.8".into(),
        ],
    ));
    let mut ties = op(MergeMethod::Ties, &three, None);
    ties.models[0].density = scalar(0.5);
    ties.models[1].density = scalar(0.3);
    ties.models[1].weight = scalar(0.5);
    cases.push((
        ties,
        vec![
            "--weights".into(),
            "1;0.5".into(),
            "--densities".into(),
            "0.5;0.3".into(),
        ],
    ));
    for (m, seed) in [(MergeMethod::Dare, 7u64), (MergeMethod::DareTies, 3)] {
        let mut o = op(m, &three, None);
        o.seed = seed;
        o.models[0].density = scalar(0.4);
        o.models[1].density = scalar(0.6);
        cases.push((
            o,
            vec![
                "--densities".into(),
                "0.4;0.6".into(),
                "--seed".into(),
                seed.to_string(),
            ],
        ));
    }
    for (o, args) in cases {
        let name = o.method.name();
        let out = d.join(format!("m-{name}.gguf"));
        let others: Vec<String> = o.models.iter().map(|m| path(&m.path)).collect();
        run(&d.join("a.gguf"), &[SurgeryOp::Merge(o)], &out);
        let out = out.to_str().unwrap().to_string();
        let a = path("a.gguf");
        let mut all: Vec<&str> = vec!["expect-merge", name, &out, &a];
        all.extend(others.iter().map(String::as_str));
        all.extend(args.iter().map(String::as_str));
        let v = expect(&all);
        assert_eq!(
            v["exact"], v["checked"],
            "{name}: every F32 tensor equal: {v}"
        );
        assert_eq!(v["checked"], 30, "{name}: every tensor merged");
    }
}

#[test]
fn quantized_models_of_different_types_merge_keeping_the_base_types() {
    let dir = tempdir();
    let d = dir.path();
    let perturb: Vec<String> = (0..4)
        .flat_map(|i| {
            ["attn_q", "attn_v", "attn_output", "ffn_gate", "ffn_down"]
                .map(|t| format!("blk.{i}.{t}.weight"))
        })
        .chain(["token_embd.weight".to_string()])
        .collect();
    let perturb = perturb.join(",");
    let base = shared_demo("demo.gguf", &[]);
    hotpatch_testkit::demo_model(d, "f16.gguf", &["--variant", "f16", "--perturb", &perturb]);
    hotpatch_testkit::demo_model(
        d,
        "q8.gguf",
        &["--variant", "q8_0", "--perturb", &perturb, "--seed", "1234"],
    );
    let f16 = d.join("f16.gguf").to_str().unwrap().to_string();
    let q8 = d.join("q8.gguf").to_str().unwrap().to_string();
    let b = base.to_str().unwrap();
    // slerp with a gradient over the layers; ties of three (K-quants, legacy, floats).
    let slerp = op(
        MergeMethod::Slerp,
        &[&f16],
        Some(Param::Gradient(vec![0.2, 0.8])),
    );
    let out = d.join("slerp.gguf");
    run(&base, &[SurgeryOp::Merge(slerp)], &out);
    let o = out.to_str().unwrap().to_string();
    let v = expect(&["expect-merge", "slerp", &o, b, &f16, "--t", "0.2,0.8"]);
    assert_eq!(v["checked"], 39);
    let mut ties = op(MergeMethod::Ties, &[&f16, &q8], None);
    for m in &mut ties.models {
        m.density = scalar(0.5);
    }
    let out = d.join("ties.gguf");
    run(&base, &[SurgeryOp::Merge(ties)], &out);
    let o = out.to_str().unwrap().to_string();
    let v = expect(&[
        "expect-merge",
        "ties",
        &o,
        b,
        &f16,
        &q8,
        "--densities",
        "0.5;0.5",
    ]);
    assert!(
        v["bytes_identical"].as_u64().unwrap() >= 25,
        "most quantized tensors are byte-identical with quantizing the exact merge: {v}"
    );
    let src = hotpatch_gguf::GgufFile::open(&base).unwrap();
    let got = hotpatch_gguf::GgufFile::open(&out).unwrap();
    for t in &src.index.tensors {
        assert_eq!(
            got.index.tensor(&t.name).unwrap().ty,
            t.ty,
            "{} keeps the base's type",
            t.name
        );
    }
    assert_eq!(
        generate(&out, "hello world", 6).len(),
        6,
        "llama.cpp runs the merge"
    );
}

#[test]
fn merge_ends_reproduce_the_inputs_answers() {
    let dir = tempdir();
    let d = dir.path();
    let a = fixture(d, "a.gguf", &["--layers", "2"]);
    let b = fixture(d, "b.gguf", &["--layers", "2", "--seed", "5"]);
    for (t, like) in [(0.0, &a), (1.0, &b)] {
        let out = d.join(format!("t{t}.gguf"));
        run(
            &a,
            &[SurgeryOp::Merge(op(
                MergeMethod::Linear,
                &["b.gguf"],
                scalar(t),
            ))],
            &out,
        );
        assert_eq!(
            generate(&out, "hello world", 8),
            generate(like, "hello world", 8),
            "linear t={t} is {}",
            like.display()
        );
    }
}

#[test]
fn mergekit_filters_and_gradients_pick_each_tensors_value() {
    let dir = tempdir();
    let a = fixture(dir.path(), "a.gguf", &["--layers", "3", "--embd", "64"]);
    fixture(
        dir.path(),
        "b.gguf",
        &["--layers", "3", "--embd", "64", "--noise", "0.2"],
    );
    let t: Param = serde_json::from_str(
        r#"[{"filter":"self_attn","value":[0,1]},{"filter":"mlp","value":[1,0]},{"value":0.25}]"#,
    )
    .unwrap();
    let plan = surgery::plan(
        &a,
        &[SurgeryOp::Merge(op(
            MergeMethod::Slerp,
            &["b.gguf"],
            Some(t),
        ))],
        dir.path(),
    )
    .unwrap();
    let p = plan.preview();
    let step = |n: &str| {
        p.tensors
            .iter()
            .find(|t| t.name == n)
            .unwrap()
            .action
            .clone()
    };
    assert!(
        step("blk.0.attn_q.weight").contains("t=0.000"),
        "{}",
        step("blk.0.attn_q.weight")
    );
    assert!(step("blk.1.attn_q.weight").contains("t=0.500"));
    assert!(step("blk.2.attn_output.weight").contains("t=1.000"));
    assert!(
        step("blk.0.ffn_up.weight").contains("t=1.000"),
        "mlp runs the other way"
    );
    assert!(
        step("blk.1.attn_norm.weight").contains("t=0.250"),
        "norms are neither self_attn nor mlp"
    );
    assert!(step("token_embd.weight").contains("t=0.250"));
}

#[test]
fn dare_is_seeded() {
    let dir = tempdir();
    let d = dir.path();
    let a = fixture(d, "a.gguf", &["--layers", "1", "--embd", "64"]);
    fixture(
        d,
        "b.gguf",
        &["--layers", "1", "--embd", "64", "--noise", "0.2"],
    );
    let with = |seed: u64, out: &str| {
        let mut o = op(MergeMethod::Dare, &["b.gguf"], None);
        o.seed = seed;
        o.models[0].density = scalar(0.5);
        run(&a, &[SurgeryOp::Merge(o)], &d.join(out));
        std::fs::read(d.join(out)).unwrap()
    };
    assert_eq!(
        with(1, "x.gguf"),
        with(1, "y.gguf"),
        "the same seed gives the same file"
    );
    assert_ne!(
        with(1, "x.gguf"),
        with(2, "z.gguf"),
        "another seed drops other elements"
    );
}

#[test]
fn models_that_do_not_fit_are_refused_naming_why() {
    let dir = tempdir();
    let d = dir.path();
    let a = fixture(d, "a.gguf", &["--layers", "2", "--embd", "64"]);
    fixture(d, "wide.gguf", &["--layers", "2", "--embd", "128"]);
    fixture(d, "short.gguf", &["--layers", "1", "--embd", "64"]);
    let e = surgery::plan(
        &a,
        &[SurgeryOp::Merge(op(
            MergeMethod::Task,
            &["wide.gguf"],
            None,
        ))],
        d,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("dims") && e.to_string().contains("wide.gguf"),
        "{e}"
    );
    let e = surgery::plan(
        &a,
        &[SurgeryOp::Merge(op(
            MergeMethod::Task,
            &["short.gguf"],
            None,
        ))],
        d,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("blk.1.") && e.to_string().contains("is not in short.gguf"),
        "{e}"
    );
    let e = surgery::plan(
        &a,
        &[SurgeryOp::Merge(op(
            MergeMethod::Slerp,
            &["wide.gguf", "short.gguf"],
            scalar(0.5),
        ))],
        d,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("slerp merges exactly two models"),
        "{e}"
    );
    let e = surgery::plan(
        &a,
        &[SurgeryOp::Merge(op(
            MergeMethod::Task,
            &["missing.gguf"],
            None,
        ))],
        d,
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing.gguf"), "{e}");
}

#[test]
fn a_merge_that_overflows_the_output_type_is_refused_not_stored_as_inf() {
    let dir = tempdir();
    let d = dir.path();
    let a = fixture(
        d,
        "a.gguf",
        &["--layers", "1", "--embd", "64", "--type", "F16"],
    );
    fixture(
        d,
        "b.gguf",
        &[
            "--layers", "1", "--embd", "64", "--type", "F16", "--noise", "0.5",
        ],
    );
    let mut o = op(MergeMethod::Task, &["b.gguf"], None);
    o.lambda = Some(1.0e7);
    let plan = surgery::plan(&a, &[SurgeryOp::Merge(o)], d).unwrap();
    let out = d.join("inf.gguf");
    let e = surgery::execute(&plan, &out, &mut |_| true).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("F16") && msg.contains("wider type"), "{msg}");
    assert!(!out.exists(), "nothing written");
    assert_eq!(
        leftovers(d, &[&a, &d.join("b.gguf")]),
        Vec::<std::path::PathBuf>::new()
    );
}
