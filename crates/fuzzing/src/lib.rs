//! Fuzz harnesses. Each `fn(&[u8])` must never panic on any input; where a parser accepts its
//! input, the harness also checks a property (round trip, containment) and panics if it fails.
//!
//! `fuzz/` (cargo-fuzz, nightly) drives them with libFuzzer; `tests/corpus.rs` replays every
//! file of `fuzz/corpus/<target>/` through them on stable, so the kept corpora are regression
//! tests in every `cargo test`.

use std::path::Path;

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("reference", reference),
    ("api_create", api_create),
    ("filters", filters),
    ("manifest", manifest),
    ("image_config", image_config),
    ("seccomp_profile", seccomp_profile),
    ("auth_challenge", auth_challenge),
    ("tar_layer", tar_layer),
    ("dockerfile", dockerfile),
    ("dockerignore", dockerignore),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Image references: a normalised reference re-parses to itself.
pub fn reference(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(r) = berth_spec::Reference::parse_normalized(s) {
        let full = r.to_string();
        let again = berth_spec::Reference::parse_normalized(&full)
            .unwrap_or_else(|e| panic!("{s:?} normalised to {full:?}, which does not parse: {e}"));
        assert_eq!(
            again.to_string(),
            full,
            "normalisation of {s:?} is not stable"
        );
        let familiar = r.familiar_string();
        // Like Docker's FamiliarName, `docker.io/a.b/c` is shown as `a.b/c`, which names another
        // registry when parsed again; the round trip holds only when the first component of
        // the familiar form cannot be taken for a domain.
        let first = familiar.split('/').next().unwrap_or("");
        if familiar.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost")
        {
            return;
        }
        // Also like Docker: `library/<64 hex>` parses, its familiar form (a bare 64-hex string,
        // which reads as an image id) does not.
        let bare = familiar.split([':', '@']).next().unwrap_or("");
        if bare.len() == 64 && bare.bytes().all(|b| b.is_ascii_hexdigit()) {
            return;
        }
        let back = berth_spec::Reference::parse_normalized(&familiar)
            .unwrap_or_else(|e| panic!("familiar form {familiar:?} of {s:?} does not parse: {e}"));
        assert_eq!(
            back.to_string(),
            full,
            "familiar form of {s:?} changes the reference"
        );
    }
    let _ = berth_spec::reference::looks_like_id(s);
}

/// API request bodies: create and exec requests, the `--change` lines applied to a config.
pub fn api_create(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<berth_api_types::ContainerCreateRequest>(data) {
        let out = serde_json::to_vec(&req).expect("a parsed request serialises");
        serde_json::from_slice::<berth_api_types::ContainerCreateRequest>(&out)
            .expect("a serialised request parses again");
    }
    let _ = serde_json::from_slice::<berth_api_types::ExecConfig>(data);
    if let Some(s) = text(data) {
        let mut cfg = berth_api_types::ContainerConfig::default();
        let lines: Vec<String> = s.lines().map(str::to_string).collect();
        let _ = berth_spec::changes::apply_changes(&mut cfg, &lines);
        let _ = berth_api_types::humanize::go_duration(s);
    }
}

/// Query filters (`filters=` JSON in both of dockerd's forms).
pub fn filters(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(f) = berth_api_types::Filters::parse(s) {
        let j = f.to_json();
        let again = berth_api_types::Filters::parse(&j).expect("filters re-parse from their JSON");
        assert_eq!(again.to_json(), j);
        let _ = f.validate(&["label", "name", "id"]);
    }
}

/// Registry manifests and indexes, with platform selection.
pub fn manifest(data: &[u8]) {
    use berth_registry::manifest as m;
    let _ = m::media_type_of(data);
    let _ = serde_json::from_slice::<m::Manifest>(data);
    if let Ok(idx) = serde_json::from_slice::<m::Index>(data) {
        let _ = m::select(&idx, &m::default_platform());
        if let Some(p) = text(data).and_then(m::parse_platform) {
            let _ = m::select(&idx, &p);
        }
    }
}

/// Image config blobs.
pub fn image_config(data: &[u8]) {
    if let Ok(c) = serde_json::from_slice::<berth_spec::ImageConfig>(data) {
        let out = serde_json::to_vec(&c).expect("a parsed image config serialises");
        serde_json::from_slice::<berth_spec::ImageConfig>(&out)
            .expect("a serialised config parses again");
    }
}

/// `--security-opt seccomp=<profile>` contents, and the option strings themselves.
pub fn seccomp_profile(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let caps = vec!["CAP_CHOWN".to_string(), "CAP_SYS_ADMIN".to_string()];
    let _ = berth_spec::security::docker_profile(s, &caps, "x86_64", Some((6, 1)));
    let opts: Vec<String> = s.lines().map(str::to_string).collect();
    let _ = berth_spec::security::parse_security_opts(&opts);
}

/// `WWW-Authenticate` challenges and `X-Registry-Auth` headers from registries and clients.
pub fn auth_challenge(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let _ = berth_registry::Challenge::parse(s);
    if let Some(mut a) = berth_registry::AuthConfig::from_header(s) {
        a.fill_from_auth();
        let _ = a.basic();
    }
}

/// Dockerfiles: parsing never panics; every parsed instruction's key/values and words go
/// through the shell-word expansion too.
pub fn dockerfile(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let Ok(df) = berth_dockerfile::parse(s) else {
        return;
    };
    let env: std::collections::BTreeMap<String, String> = [
        ("A".to_string(), "1".to_string()),
        ("B".to_string(), "x y".to_string()),
    ]
    .into();
    for i in &df.instructions {
        if let berth_dockerfile::Args::Shell(a) = &i.args {
            let _ = berth_dockerfile::shell::process_word(a, &env, df.escape);
            let _ = berth_dockerfile::shell::process_words(a, &env, df.escape);
            if matches!(i.cmd.as_str(), "ENV" | "LABEL" | "ARG") {
                let _ = berth_dockerfile::parser::parse_key_values(&i.cmd, a, i.line);
            }
        }
    }
}

/// `.dockerignore` content against paths: never panics; an exclusion-free file's verdicts are
/// stable under path cleaning (`./a` is `a`).
pub fn dockerignore(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let (patterns, paths) = s
        .split_once("\n---\n")
        .unwrap_or((s, "a/b/c\nREADME.md\nx.log"));
    let m = berth_dockerfile::Matcher::parse(patterns);
    // Context paths are relative and never climb out (the builder rejects those).
    for p in paths
        .lines()
        .take(64)
        .filter(|p| !p.starts_with('/') && !p.split('/').any(|c| c == ".."))
    {
        let a = m.excluded(p);
        let b = m.excluded(&format!("./{p}"));
        assert_eq!(a, b, "{p:?} vs ./{p:?} under {patterns:?}");
    }
}

/// Tar layers: applying any byte string as a layer never writes outside the store root.
pub fn tar_layer(data: &[u8]) {
    let top = tempfile::Builder::new()
        .prefix("berth-fuzz-")
        .tempdir()
        .expect("tempdir");
    let store_root = top.path().join("store");
    let canary = top.path().join("canary");
    std::fs::create_dir(&canary).expect("canary");
    let store = berth_store::ImageStore::open(&store_root).expect("store");
    let _ = store.apply_layer(None, data);
    let mut outside: Vec<String> = std::fs::read_dir(top.path())
        .expect("read top")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    outside.sort();
    assert_eq!(
        outside,
        ["canary", "store"],
        "the layer wrote next to the store root"
    );
    assert_eq!(
        std::fs::read_dir(&canary).expect("canary").count(),
        0,
        "the layer wrote into a sibling"
    );
    drop(store);
    make_removable(top.path());
}

/// Layers may leave read-only directories behind; make the scratch tree removable.
fn make_removable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return;
    };
    if md.is_dir() {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                make_removable(&e.path());
            }
        }
    }
}
