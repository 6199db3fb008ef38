//! Every fuzz body over every file of its committed seed corpus (`fuzz/seeds/NAME/`): the
//! inputs that once crashed a parser stay fixed, and each body's invariants hold on real
//! inputs (shipped presets, proxy rules and SSE streams, hex patterns, metadata text).

use std::path::Path;

#[test]
fn every_fuzz_body_passes_its_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    for (name, body) in hotpatch_fuzzbodies::TARGETS {
        let dir = root.join(name);
        let (mut n, mut accepted) = (0, 0);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| body(&data));
            let ok = r.unwrap_or_else(|_| panic!("fuzz body {name} failed on {}", f.display()));
            accepted += usize::from(ok);
            n += 1;
        }
        assert!(n >= 5, "{name}: only {n} seed inputs in {}", dir.display());
        // The seeds must reach the invariants, not only the parsers' refusals.
        assert!(
            accepted * 2 >= n,
            "{name}: only {accepted} of {n} seeds were accepted far enough to check anything"
        );
    }
}
