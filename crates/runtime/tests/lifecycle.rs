//! Library-level tests. `harness = false`: `Runtime::create` clones the calling process, which
//! must be single-threaded, so tests run one after another on the main thread.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_runtime_lib::{CreateOpts, Error, Runtime, Status};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

fn bundle(dir: &Path, id: &str, args: &[&str]) -> PathBuf {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = dir.join("bundle");
    let rootfs = b.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for c in ["sh", "echo", "cat", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(c)).unwrap();
    }
    let cfg = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 0, "gid": 0}, "args": args, "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "hostname": "lib",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}
        ],
        "linux": {
            "cgroupsPath": format!("/berth/{id}"),
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}, {"type": "cgroup"}]
        }
    });
    std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    b
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

fn stdio_capture() -> ([OwnedFd; 3], OwnedFd, OwnedFd) {
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let null: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    ([null, out_w, err_w], out_r, err_r)
}

fn cgroup_exists(id: &str) -> bool {
    let hier = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/pids"
    };
    Path::new(hier).join("berth").join(id).exists()
}

fn test_create_start_wait_delete() {
    let d = tempfile::tempdir().unwrap();
    let id = format!("lib-{}-a", std::process::id());
    let b = bundle(
        d.path(),
        &id,
        &["sh", "-c", "echo out $$; echo err >&2; exit 5"],
    );
    let rt = Runtime::new(d.path().join("state"));
    let (stdio, mut out_r, mut err_r) = {
        let (s, o, e) = stdio_capture();
        (s, std::fs::File::from(o), std::fs::File::from(e))
    };
    let st = rt
        .create(
            &id,
            &b,
            CreateOpts {
                stdio: Some(stdio),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(st.status, Status::Created);
    assert!(cgroup_exists(&id));
    assert_eq!(rt.state(&id).unwrap().status, Status::Created);
    assert_eq!(rt.list().unwrap().len(), 1);
    assert!(matches!(
        rt.create(&id, &b, CreateOpts::default()),
        Err(Error::Exists(_))
    ));
    rt.start(&id).unwrap();
    // The init is our direct child.
    let ws = waitpid(Pid::from_raw(st.pid), None).unwrap();
    assert_eq!(ws, WaitStatus::Exited(Pid::from_raw(st.pid), 5));
    let mut out = String::new();
    out_r.read_to_string(&mut out).unwrap();
    let mut err = String::new();
    err_r.read_to_string(&mut err).unwrap();
    assert_eq!(out, "out 1\n");
    assert_eq!(err, "err\n");
    let s = rt.state(&id).unwrap();
    assert_eq!((s.status, s.pid), (Status::Stopped, 0));
    assert!(matches!(rt.start(&id), Err(Error::BadState { .. })));
    rt.delete(&id, false).unwrap();
    assert!(!cgroup_exists(&id));
    assert!(matches!(rt.state(&id), Err(Error::NotFound(_))));
}

fn test_create_error_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let id = format!("lib-{}-b", std::process::id());
    let b = bundle(d.path(), &id, &["nosuch"]);
    let rt = Runtime::new(d.path().join("state"));
    let (stdio, _o, _e) = stdio_capture();
    let err = rt
        .create(
            &id,
            &b,
            CreateOpts {
                stdio: Some(stdio),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "exec: \"nosuch\": executable file not found in $PATH"
    );
    assert_eq!(err.exit_code_hint(), 127);
    assert!(!cgroup_exists(&id));
    assert!(!d.path().join("state").join(&id).exists());
    // The failed init was reaped: we have no children left.
    assert_eq!(waitpid(None::<Pid>, None), Err(nix::Error::ECHILD));
}

fn test_kill_all_and_force_delete() {
    let d = tempfile::tempdir().unwrap();
    let id = format!("lib-{}-c", std::process::id());
    let b = bundle(d.path(), &id, &["sh", "-c", "sleep 1000 & sleep 1000"]);
    let rt = Runtime::new(d.path().join("state"));
    let (stdio, _o, _e) = stdio_capture();
    let st = rt
        .create(
            &id,
            &b,
            CreateOpts {
                stdio: Some(stdio),
                ..Default::default()
            },
        )
        .unwrap();
    rt.start(&id).unwrap();
    assert_eq!(rt.state(&id).unwrap().status, Status::Running);
    assert!(matches!(rt.delete(&id, false), Err(Error::BadState { .. })));
    rt.delete(&id, true).unwrap();
    let ws = waitpid(Pid::from_raw(st.pid), None).unwrap();
    assert_eq!(
        ws,
        WaitStatus::Signaled(
            Pid::from_raw(st.pid),
            nix::sys::signal::Signal::SIGKILL,
            false
        )
    );
    assert!(!cgroup_exists(&id));
    assert!(rt.list().unwrap().is_empty());
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping lifecycle tests: need root");
        return;
    }
    let tests: &[(&str, fn())] = &[
        ("create_start_wait_delete", test_create_start_wait_delete),
        (
            "create_error_leaves_nothing",
            test_create_error_leaves_nothing,
        ),
        ("kill_all_and_force_delete", test_kill_all_and_force_delete),
    ];
    for (name, t) in tests {
        eprint!("test {name} ... ");
        t();
        eprintln!("ok");
    }
}
