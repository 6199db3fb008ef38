//! Configurations: the published schema is fresh, shipped presets parse and round-trip,
//! bad files are refused naming the field.

use hotpatch_core::config::{json_schema, Configuration, CONFIG_VERSION};

use crate::common::*;

#[test]
fn schema_file_is_fresh() {
    let path = root().join("presets/schema.json");
    let want = json_schema();
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        std::fs::write(&path, &want).expect("write presets/schema.json");
        panic!("presets/schema.json was stale and has been regenerated: review and commit it");
    }
    let v: serde_json::Value = serde_json::from_str(&want).unwrap();
    assert_eq!(
        v["properties"]["version"]["type"], "integer",
        "the schema describes the version field"
    );
    assert_eq!(
        v["additionalProperties"], false,
        "unknown fields are refused by the schema too"
    );
}

pub fn shipped_presets() -> Vec<(String, Configuration)> {
    let dir = root().join("presets");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("presets/") {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name == "schema.json" || !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let c = Configuration::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name, c));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn presets_parse_and_round_trip() {
    let presets = shipped_presets();
    assert!(presets.len() >= 5, "at least five presets are shipped");
    for (name, c) in presets {
        assert_eq!(
            c.version,
            c.required_version(),
            "{name}: written in the oldest version that holds it"
        );
        assert!(c.version <= CONFIG_VERSION, "{name}");
        assert_eq!(
            c.name.as_deref(),
            Some(name.trim_end_matches(".json")),
            "{name}: name matches file"
        );
        let again = Configuration::from_json(&c.to_json()).unwrap();
        assert_eq!(
            again, c,
            "{name}: to_json then from_json gives the same configuration"
        );
    }
}

#[test]
fn bad_configurations_name_the_field() {
    let cases = [
        (
            r#"{"version":1,"tensor_patches":[{"tensor":"x","transform":{"op":"scale"}}]}"#,
            "tensor_patches[0].transform",
        ),
        (
            r#"{"version":1,"tensor_patches":[{"tensor":"x","select":{"kind":"rows","start":5,"end":2},"transform":{"op":"zero"}}]}"#,
            "tensor_patches[0].select.end",
        ),
        (
            r#"{"version":1,"byte_patches":[{"offset":1,"original":"00","patched":"0000"}]}"#,
            "byte_patches[0].patched",
        ),
        (
            r#"{"version":1,"protections":[{"kind":"range","offset":1,"len":0}]}"#,
            "protections[0].len",
        ),
        (r#"{"version":1,"server":{"port":"x"}}"#, "server.port"),
        (
            r#"{"version":1,"safety":{"outlier_threshold":-1}}"#,
            "safety.outlier_threshold",
        ),
        (r#"{"version":1,"extra":true}"#, "."),
        (r#"{"version":1,"#, "."),
    ];
    for (text, path) in cases {
        let e = Configuration::from_json(text).expect_err(text).to_string();
        assert!(
            e.starts_with(&format!("{path}:")) || (path == "." && !e.is_empty()),
            "{text}\n -> {e}"
        );
    }
    let e = Configuration::from_json(r#"{"version":1,"extra":true}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("extra"), "the unknown field is named: {e}");
}
