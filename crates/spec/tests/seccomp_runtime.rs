//! End to end: a config.json from `berth_spec::oci::generate` (Berth's default seccomp profile,
//! `seccomp=unconfined`, a Docker-format custom profile) run by target/release/berth-runtime on
//! a busybox rootfs. Skips (with a message) when not root, or without the runtime binary
//! (`cargo build --release -p berth-runtime`) or /usr/bin/busybox.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_spec::merge::Process;
use berth_spec::oci::{generate, RunInput};

fn runtime() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/berth-runtime");
    p.exists().then_some(p)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `sh -c script` in a fresh busybox bundle with the given SecurityOpt.
fn run(rt: &Path, tag: &str, security_opt: &[&str], cap_add: &[&str], script: &str) -> Ran {
    let base =
        std::env::temp_dir().join(format!("berth-spec-seccomp-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let bundle = base.join("bundle");
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let id = format!("spec-seccomp-{}-{tag}", std::process::id());
    let mut input = RunInput {
        id: id.clone(),
        rootfs: rootfs.display().to_string(),
        process: Process {
            path: "/bin/busybox".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into()],
            ..Default::default()
        },
        hostname: "seccomp".into(),
        cgroup_v2: Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
        ..Default::default()
    };
    input.host_config.security_opt = Some(security_opt.iter().map(|s| s.to_string()).collect());
    input.host_config.cap_add = Some(cap_add.iter().map(|s| s.to_string()).collect());
    let spec = generate(&input).expect("generate");
    let json = serde_json::to_vec_pretty(&spec).unwrap();
    std::fs::write(bundle.join("config.json"), json).unwrap();
    // Link the applets the script uses.
    for a in [
        "sh", "echo", "unshare", "mount", "mkdir", "linux32", "uname", "true",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let state = base.join("state");
    let out = Command::new(rt)
        .arg("--root")
        .arg(&state)
        .args(["run", "-b"])
        .arg(&bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn berth-runtime");
    let _ = Command::new(rt)
        .arg("--root")
        .arg(&state)
        .args(["delete", "-f", &id])
        .output();
    let _ = std::fs::remove_dir_all(&base);
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const SCRIPT: &str = "echo hi; \
    unshare -U true 2>&1; echo \"unshare=$?\"; \
    mount -t tmpfs x /tmp 2>&1; echo \"mount=$?\"; \
    linux32 uname -m; \
    mkdir /tmp/d 2>&1; echo \"mkdir=$?\"";

#[test]
fn default_profile_under_berth_runtime() {
    let Some(rt) = runtime() else {
        eprintln!(
            "SKIP: target/release/berth-runtime missing (cargo build --release -p berth-runtime)"
        );
        return;
    };
    if !is_root() || !Path::new("/usr/bin/busybox").exists() {
        eprintln!("SKIP: needs root and /usr/bin/busybox");
        return;
    }

    // Berth's default profile.
    let r = run(&rt, "default", &[], &[], SCRIPT);
    eprintln!("default profile:\n{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("hi\n"), "{}", r.stdout);
    // CLONE_NEWUSER needs no capability: only the filter refuses it.
    assert!(r.stdout.contains("unshare=1"), "{}", r.stdout);
    assert!(r.stdout.contains("Operation not permitted"), "{}", r.stdout);
    assert!(r.stdout.contains("mount=1"), "{}", r.stdout);
    // personality(PER_LINUX32) is one of the allowed values.
    assert!(
        r.stdout.contains("i686") || r.stdout.contains("i386"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("mkdir=0"), "{}", r.stdout);

    // CAP_SYS_ADMIN turns on the conditional rules: mount and namespace unshare work.
    let r = run(&rt, "sysadmin", &[], &["SYS_ADMIN"], SCRIPT);
    eprintln!("default profile + CAP_SYS_ADMIN:\n{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("mount=0"), "{}", r.stdout);
    assert!(r.stdout.contains("unshare=0"), "{}", r.stdout);

    // seccomp=unconfined: the same user-namespace unshare now works.
    let r = run(&rt, "unconfined", &["seccomp=unconfined"], &[], SCRIPT);
    eprintln!("unconfined:\n{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("unshare=0"), "{}", r.stdout);

    // A Docker-format custom profile: everything allowed but mkdir, which gets EACCES.
    let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"comment":"no new dirs"}]}"#;
    let opt = format!("seccomp={profile}");
    let r = run(&rt, "custom", &[&opt, "no-new-privileges"], &[], SCRIPT);
    eprintln!("custom:\n{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("unshare=0"), "{}", r.stdout);
    assert!(r.stdout.contains("Permission denied"), "{}", r.stdout);
    assert!(r.stdout.contains("mkdir=1"), "{}", r.stdout);
}
