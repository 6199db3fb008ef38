//! The core's `server` section mirrors the proxy's settings type: every shipped preset's server
//! section converts into `hotpatch_proxy::ProxySettings` and back without loss, and the proxy
//! compiles its rules.

use hotpatch_core::config::{Configuration, ServerSettings};
use hotpatch_proxy::{ProxySettings, RuleSet};

use crate::common::root;

#[test]
fn preset_server_sections_convert_to_proxy_settings_losslessly() {
    let mut seen = 0;
    for e in std::fs::read_dir(root().join("presets")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() == "schema.json" {
            continue;
        }
        let c = Configuration::from_json(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let Some(server) = c.server else { continue };
        seen += 1;
        let v = serde_json::to_value(&server).unwrap();
        let proxy: ProxySettings = serde_json::from_value(v.clone()).unwrap_or_else(|e| {
            panic!(
                "{}: the proxy refuses the core's server section: {e}",
                p.display()
            )
        });
        RuleSet::compile(&proxy.rules).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let back = serde_json::to_value(&proxy).unwrap();
        assert_eq!(back, v, "{}: same JSON through both types", p.display());
    }
    assert!(seen >= 2, "presets with a server section exist");
    // Defaults agree too.
    let d = serde_json::to_value(ServerSettings::default()).unwrap();
    assert_eq!(
        serde_json::to_value(ProxySettings::default()).unwrap(),
        d,
        "same defaults"
    );
}
