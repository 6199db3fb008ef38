//! Every shipped preset's `server` section is usable by the proxy: it validates (the same
//! check `hotpatch serve --config` runs) and compiles into the proxy's runtime rule set.

use hotpatch_core::config::Configuration;
use hotpatch_proxy::RuleSet;

use crate::common::root;

#[test]
fn preset_server_sections_compile_into_proxy_rules() {
    let mut seen = 0;
    for e in std::fs::read_dir(root().join("presets")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() == "schema.json" {
            continue;
        }
        let c = Configuration::from_json(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let Some(server) = c.server else { continue };
        seen += 1;
        server
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let set =
            RuleSet::compile(&server.rules).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(
            set.rules().len(),
            server.rules.len(),
            "{}: one compiled rule per configured rule",
            p.display()
        );
    }
    assert!(seen >= 2, "presets with a server section exist");
}
