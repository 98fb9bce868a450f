//! Golden parses: every `tests/golden/<case>/Dockerfile` parses to `expected.json`, or, for a
//! negative case, fails with the text in `expected-error.txt`. `BERTH_BLESS=1` rewrites the
//! expectations from the current parser (review the diff before committing).

use std::path::PathBuf;

#[test]
fn golden_cases() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var("BERTH_BLESS").is_ok();
    let mut n = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let got = berth_dockerfile::parse(&text);
        let ok_path = dir.join("expected.json");
        let err_path = dir.join("expected-error.txt");
        match got {
            Ok(df) => {
                let json = serde_json::to_string_pretty(&df).unwrap() + "\n";
                if bless && !err_path.exists() {
                    std::fs::write(&ok_path, &json).unwrap();
                }
                let want = std::fs::read_to_string(&ok_path).unwrap_or_else(|_| {
                    panic!("{}: parsed, but there is no expected.json", dir.display())
                });
                assert_eq!(json, want, "{}", dir.display());
            }
            Err(e) => {
                let want = std::fs::read_to_string(&err_path).unwrap_or_else(|_| {
                    panic!(
                        "{}: failed with {e}, but there is no expected-error.txt",
                        dir.display()
                    )
                });
                assert_eq!(e.to_string(), want.trim_end(), "{}", dir.display());
            }
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} golden cases");
}
