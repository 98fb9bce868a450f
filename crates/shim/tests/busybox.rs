//! End-to-end tests of the shim binary with the real runtime (`berth_runtime_lib`) and a
//! busybox rootfs. Needs root (namespaces, mounts, cgroups).

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_shim::protocol;
use common::*;

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "stty", "tty", "ls", "true", "head", "tr", "ps", "readlink",
];

fn skip() -> bool {
    if !nix::unistd::Uid::effective().is_root() || !Path::new("/usr/bin/busybox").exists() {
        eprintln!("skipping: needs root and /usr/bin/busybox");
        return true;
    }
    false
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn cgroups_path() -> String {
    format!(
        "/berth/shimtest-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

fn busybox_bundle(args: Vec<String>, tty: bool, cgroup: String, memory: Option<i64>) -> BundleFn {
    Box::new(move |bundle: &Path| {
        let bin = bundle.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        for d in ["proc", "dev", "sys", "tmp"] {
            std::fs::create_dir_all(bundle.join("rootfs").join(d)).unwrap();
        }
        std::fs::copy("/usr/bin/busybox", bin.join("busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
        }
        let cfg = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": tty,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/bin", "TERM=xterm"],
                "cwd": "/",
            },
            "root": {"path": "rootfs"},
            "hostname": "shimtest",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}],
                "cgroupsPath": cgroup,
            },
        });
        let mut cfg = cfg;
        if let Some(limit) = memory {
            cfg["linux"]["resources"] = serde_json::json!({"memory": {"limit": limit}});
        }
        std::fs::write(bundle.join("config.json"), cfg.to_string()).unwrap();
    })
}

fn opts<'a>(args: &[&str], tty: bool, stdin: bool) -> (Opts<'a>, String) {
    let cg = cgroups_path();
    let mut o = Opts::new(&[]);
    o.runtime_args = vec![];
    o.tty = tty;
    o.stdin = stdin;
    o.bundle = Some(busybox_bundle(
        args.iter().map(|s| s.to_string()).collect(),
        tty,
        cg.clone(),
        None,
    ));
    (o, cg)
}

/// The runtime removed its state and the container's cgroup.
fn assert_runtime_cleaned(s: &Shim, cg: &str) {
    assert!(
        !s.runtime_root().join(&s.id).exists(),
        "runtime state left behind"
    );
    for ctrl in ["memory", "pids", "cpu", "unified"] {
        let p = Path::new("/sys/fs/cgroup")
            .join(ctrl)
            .join(cg.trim_start_matches('/'));
        assert!(!p.exists(), "cgroup {} left behind", p.display());
    }
}

#[test]
fn busybox_output_exit_code_and_cleanup() {
    if skip() {
        return;
    }
    let (o, cg) = opts(
        &[
            "sh",
            "-c",
            "echo out pid=$$; echo err >&2; hostname 2>/dev/null; exit 3",
        ],
        false,
        false,
    );
    let s = launch(o).unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    let mut acc = Collected::default();
    assert_eq!(c.start(&mut acc), s.pid);
    c.read_to_end(&mut acc);
    assert_eq!(acc.out(), "out pid=1\nshimtest\n");
    assert_eq!(acc.stderr, b"err\n");
    assert_eq!(acc.exit.as_ref().unwrap().exit_code, 3);
    let file: protocol::ExitStatus =
        serde_json::from_slice(&std::fs::read(s.exit_file()).unwrap()).unwrap();
    assert_eq!(Some(file), acc.exit);
    let mut log = read_log(&s.log());
    log.sort();
    assert_eq!(
        log,
        vec![
            ("err\n".into(), "stderr".into()),
            ("out pid=1\n".into(), "stdout".into()),
            ("shimtest\n".into(), "stdout".into()),
        ]
    );
    assert_shim_gone(&s);
    assert_runtime_cleaned(&s, &cg);
}

#[test]
fn busybox_sigkill_gives_137() {
    if skip() {
        return;
    }
    let (o, cg) = opts(&["sh", "-c", "echo ready; sleep 100"], false, false);
    let s = launch(o).unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    let mut acc = Collected::default();
    c.start(&mut acc);
    c.read_until(&mut acc, |a| a.stdout.ends_with(b"ready\n"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    c.read_to_end(&mut acc);
    assert_eq!(acc.exit.unwrap().exit_code, 137);
    assert_shim_gone(&s);
    assert_runtime_cleaned(&s, &cg);
}

#[test]
fn busybox_stdin_pipe() {
    if skip() {
        return;
    }
    let (o, cg) = opts(&["sh", "-c", "cat; echo done"], false, true);
    let s = launch(o).unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    let mut acc = Collected::default();
    c.start(&mut acc);
    c.send(protocol::STDIN, b"line1\nline2\n");
    c.send(protocol::CLOSE_STDIN, b"");
    c.read_to_end(&mut acc);
    assert_eq!(acc.out(), "line1\nline2\ndone\n");
    assert_eq!(acc.exit.unwrap().exit_code, 0);
    assert_shim_gone(&s);
    assert_runtime_cleaned(&s, &cg);
}

#[test]
fn busybox_tty() {
    if skip() {
        return;
    }
    let (o, cg) = opts(
        &["sh", "-c", "tty; stty size; read x; echo got-$x"],
        true,
        true,
    );
    let s = launch(o).unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    c.send(protocol::RESIZE, br#"{"h":33,"w":120}"#);
    let mut acc = Collected::default();
    c.start(&mut acc);
    c.read_until(&mut acc, |a| a.out().contains("33 120\r\n"));
    c.send(protocol::STDIN, b"hi\n");
    c.read_to_end(&mut acc);
    let out = acc.out();
    assert!(out.starts_with("/dev/pts/0\r\n"), "{out:?}");
    assert!(out.contains("got-hi\r\n"), "{out:?}");
    assert!(acc.stderr.is_empty());
    assert_eq!(acc.exit.unwrap().exit_code, 0);
    assert!(!s.socket().with_file_name("console.sock").exists());
    assert_shim_gone(&s);
    assert_runtime_cleaned(&s, &cg);
}

#[test]
fn busybox_missing_executable() {
    if skip() {
        return;
    }
    let (o, _cg) = opts(&["nosuch"], false, false);
    let (dir, err) = match launch(o) {
        Ok(_) => panic!("create should fail"),
        Err(x) => x,
    };
    assert!(err.contains("executable file not found"), "{err}");
    assert!(!dir.path().join("run/shim.sock").exists());
    assert!(!dir
        .path()
        .join("rtroot")
        .join(format!("c{}", std::process::id()))
        .exists());
}

#[test]
fn busybox_oom_killed() {
    if skip() {
        return;
    }
    let (mut o, cg) = opts(&[], false, false);
    let args = [
        "sh",
        "-c",
        "echo start; x=$(head -c 400000000 /dev/zero | tr '\\0' a); echo survived",
    ];
    o.bundle = Some(busybox_bundle(
        args.iter().map(|s| s.to_string()).collect(),
        false,
        cg.clone(),
        Some(32 << 20),
    ));
    let s = launch(o).unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    let mut acc = Collected::default();
    c.start(&mut acc);
    c.read_to_end(&mut acc);
    let exit = acc.exit.clone().unwrap();
    assert_eq!(acc.out(), "start\n");
    assert_eq!(exit.exit_code, 137);
    assert!(exit.oom_killed, "{exit:?}");
    assert_shim_gone(&s);
    assert_runtime_cleaned(&s, &cg);
}
