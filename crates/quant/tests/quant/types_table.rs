//! The type table (`GgmlType`: ids, names, block and type sizes) against gguf-py's constants and
//! against the type traits of the real ggml.

use crate::common::oracle::run_python;
use hotpatch_quant::GgmlType;

/// `(name, id, block_size, type_size)` rows printed by a python snippet.
fn rows(code: &str) -> Vec<(String, u32, usize, usize)> {
    run_python(code)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn table_matches_gguf_py_constants() {
    let py = rows(
        "from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T\n\
         for t in T:\n    b, s = GGML_QUANT_SIZES[t]\n    print(t.name, int(t), b, s)",
    );
    assert_eq!(
        py.len(),
        GgmlType::ALL.len(),
        "gguf-py 0.19.0 knows exactly the types in GgmlType::ALL"
    );
    for (name, id, bs, ts) in py {
        let t = GgmlType::from_id(id)
            .unwrap_or_else(|| panic!("gguf-py type {name} (id {id}) missing"));
        assert_eq!(t.name(), name, "name of id {id}");
        assert_eq!(t.block_size(), bs, "block size of {name}");
        if t == GgmlType::Q8_1 {
            // gguf-py still has the old layout (f32 d + f32 s); ggml's block_q8_1 is
            // f16 d + f16 s + 32 x i8 = 36 bytes, and ggml is what loads files.
            assert_eq!(
                (ts, t.type_size()),
                (40, 36),
                "Q8_1: gguf-py 40 bytes, ggml 36"
            );
        } else {
            assert_eq!(t.type_size(), ts, "type size of {name}");
        }
    }
}

#[test]
fn table_matches_ggml_type_traits() {
    let ids: Vec<String> = GgmlType::ALL.iter().map(|t| t.id().to_string()).collect();
    let c = rows(&format!(
        "import ggml\nfor i in [{}]:\n    t = ggml.traits(i)\n    print(t.type_name.decode(), i, t.blck_size, t.type_size)",
        ids.join(",")
    ));
    assert_eq!(c.len(), GgmlType::ALL.len());
    for (name, id, bs, ts) in c {
        let t = GgmlType::from_id(id).expect("id from our own list");
        assert!(
            t.name().eq_ignore_ascii_case(&name),
            "ggml calls id {id} {name}, we call it {t}"
        );
        assert_eq!(
            (t.block_size(), t.type_size()),
            (bs, ts),
            "{t}: (block size, type size) as in ggml"
        );
    }
}

#[test]
fn unknown_ids_and_names_are_none() {
    for id in [4, 5, 31, 32, 33, 36, 37, 38, 42, 1000, u32::MAX] {
        assert_eq!(
            GgmlType::from_id(id),
            None,
            "id {id} is not a ggml type (removed or never assigned)"
        );
    }
    assert_eq!(
        GgmlType::from_name("q4_k"),
        Some(GgmlType::Q4_K),
        "names are case-insensitive"
    );
    assert_eq!(
        GgmlType::from_name("Q4_2"),
        None,
        "Q4_2 was removed from ggml"
    );
}
