//! Replays the kept fuzz corpora (fuzz/corpus/<target>/*) through the harnesses on stable.

use std::path::PathBuf;

#[test]
fn every_corpus_file_passes_its_harness() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut total = 0;
    for (name, harness) in berth_fuzzing::TARGETS {
        let dir = root.join(name);
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()));
        let mut n = 0;
        for e in entries {
            let p = e.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            let r = std::panic::catch_unwind(|| harness(&data));
            assert!(r.is_ok(), "{name}: {} makes the harness fail", p.display());
            n += 1;
        }
        assert!(n > 0, "corpus {name} is empty");
        total += n;
    }
    assert!(total >= berth_fuzzing::TARGETS.len());
}
