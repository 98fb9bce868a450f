//! Integration tests of the `berth-runtime` binary against real namespaces, mounts and cgroups.
//! They need root; without it they are skipped with a message.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipping: needs root");
            return;
        }
    };
}

struct Env {
    _dir: tempfile::TempDir,
    bundle: PathBuf,
    root: PathBuf,
    id: String,
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn unique_id(name: &str) -> String {
    format!(
        "t{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        name
    )
}

/// A busybox bundle with runc's default config (terminal off) running `args`.
fn bundle(name: &str, args: &[&str]) -> (Env, Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for c in [
        "sh", "echo", "cat", "sleep", "hostname", "id", "ls", "grep", "touch", "test", "readlink",
        "wc", "head", "stat", "mount",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(c)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let st = Command::new(BIN)
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(st.success());
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let id = unique_id(name);
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(args);
    cfg["linux"]["cgroupsPath"] = json!(format!("/berth/{id}"));
    let root = dir.path().join("state");
    (
        Env {
            _dir: dir,
            bundle,
            root,
            id,
        },
        cfg,
    )
}

impl Env {
    fn write(&self, cfg: &Value) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(cfg).unwrap(),
        )
        .unwrap();
    }
    /// Runs the CLI with stdout/stderr in files: a created container's init inherits them and
    /// keeps them open, so pipes would never reach EOF.
    fn cmd(&self, args: &[&str]) -> Output {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = self.bundle.parent().unwrap();
        let (o, e) = (dir.join(format!("out{n}")), dir.join(format!("err{n}")));
        let status = Command::new(BIN)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }
    fn run(&self, cfg: &Value) -> Output {
        self.write(cfg);
        let b = self.bundle.to_str().unwrap().to_string();
        self.cmd(&["run", &self.id, "-b", &b])
    }
    fn cgroup_dir(&self, ctrl: &str) -> PathBuf {
        let hier = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            PathBuf::from("/sys/fs/cgroup")
        } else {
            PathBuf::from("/sys/fs/cgroup").join(ctrl)
        };
        hier.join("berth").join(&self.id)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .output();
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_echo_hello() {
    need_root!();
    let (env, cfg) = bundle("echo", &["echo", "hello"]);
    let o = env.run(&cfg);
    assert_eq!(stdout(&o), "hello\n", "stderr: {}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));
    assert!(
        !env.root.join(&env.id).exists(),
        "run must delete the container"
    );
}

#[test]
fn init_is_pid_1_with_hostname_proc_and_only_lo() {
    need_root!();
    let (env, mut cfg) = bundle(
        "ns",
        &[
            "sh",
            "-c",
            "echo $$; hostname; test -r /proc/self/stat && echo proc; ls /sys/class/net",
        ],
    );
    cfg["hostname"] = json!("berth-test-host");
    let o = env.run(&cfg);
    assert_eq!(
        stdout(&o),
        "1\nberth-test-host\nproc\nlo\n",
        "stderr: {}",
        stderr(&o)
    );
}

#[test]
fn exit_code_propagates() {
    need_root!();
    let (env, cfg) = bundle("exit", &["sh", "-c", "exit 3"]);
    let o = env.run(&cfg);
    assert_eq!(o.status.code(), Some(3), "stderr: {}", stderr(&o));
}

fn spawn_run(env: &Env, cfg: &Value) -> (std::process::Child, PathBuf) {
    env.write(cfg);
    let out = env.bundle.parent().unwrap().join("run-out");
    let child = Command::new(BIN)
        .arg("--root")
        .arg(&env.root)
        .args(["run", &env.id, "-b", env.bundle.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    (child, out)
}

fn wait_for_output(path: &Path, needle: &str) {
    for _ in 0..500 {
        if std::fs::read_to_string(path)
            .unwrap_or_default()
            .contains(needle)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{needle:?} never appeared in {}", path.display());
}

#[test]
fn killed_by_signal_gives_128_plus_signal() {
    need_root!();
    let (env, cfg) = bundle("sig", &["sh", "-c", "echo ready; exec sleep 1000"]);
    let (mut child, out) = spawn_run(&env, &cfg);
    wait_for_output(&out, "ready");
    let o = env.cmd(&["kill", &env.id, "KILL"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(child.wait().unwrap().code(), Some(137));
}

#[test]
fn run_forwards_signals_to_init() {
    need_root!();
    let script = "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.05; done";
    let (env, cfg) = bundle("fwd", &["sh", "-c", script]);
    let (mut child, out) = spawn_run(&env, &cfg);
    wait_for_output(&out, "ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(7));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "ready\ngot-term\n");
    assert!(!env.root.join(&env.id).exists());
}

#[test]
fn lifecycle_create_start_kill_delete() {
    need_root!();
    let (env, cfg) = bundle("life", &["sleep", "1000"]);
    env.write(&cfg);
    let b = env.bundle.to_str().unwrap().to_string();
    let pidfile = env.bundle.join("pid");
    let o = env.cmd(&[
        "create",
        &env.id,
        "-b",
        &b,
        "--pid-file",
        pidfile.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "create: {}", stderr(&o));
    let st: Value = serde_json::from_slice(&env.cmd(&["state", &env.id]).stdout).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], json!(env.id));
    assert_eq!(
        st["bundle"],
        json!(std::fs::canonicalize(&env.bundle).unwrap())
    );
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // The cgroup exists and holds the init.
    let procs = std::fs::read_to_string(env.cgroup_dir("pids").join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), pid.to_string());
    // list shows it.
    let list = stdout(&env.cmd(&["list"]));
    let header: Vec<&str> = list.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{list}"
    );
    assert!(list.contains(&env.id) && list.contains("created"), "{list}");
    let o = env.cmd(&["start", &env.id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    let st: Value = serde_json::from_slice(&env.cmd(&["state", &env.id]).stdout).unwrap();
    assert_eq!(st["status"], "running");
    // The process really is sleep now.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    let o = env.cmd(&["start", &env.id]);
    assert!(!o.status.success());
    let o = env.cmd(&["delete", &env.id]);
    assert!(
        !o.status.success(),
        "deleting a running container needs --force"
    );
    assert!(stderr(&o).contains("not stopped"), "{}", stderr(&o));
    let o = env.cmd(&["kill", &env.id, "KILL"]);
    assert!(o.status.success(), "kill: {}", stderr(&o));
    let mut stopped = false;
    for _ in 0..100 {
        let st: Value = serde_json::from_slice(&env.cmd(&["state", &env.id]).stdout).unwrap();
        if st["status"] == "stopped" {
            stopped = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(stopped);
    let o = env.cmd(&["delete", &env.id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    assert!(!env.cgroup_dir("pids").exists());
    assert!(!env.cgroup_dir("memory").exists());
    assert!(!env.root.join(&env.id).exists());
    let o = env.cmd(&["state", &env.id]);
    assert!(!o.status.success());
}

#[test]
fn missing_executable_fails_like_runc_and_leaves_nothing() {
    need_root!();
    for (args, code, msg) in [
        (
            vec!["nosuch"],
            127,
            "exec: \"nosuch\": executable file not found in $PATH",
        ),
        (
            vec!["/nonexistent"],
            127,
            "exec: \"/nonexistent\": stat /nonexistent: no such file or directory",
        ),
    ] {
        let (env, cfg) = bundle("missing", &args);
        env.write(&cfg);
        let b = env.bundle.to_str().unwrap().to_string();
        let o = env.cmd(&["create", &env.id, "-b", &b]);
        assert_eq!(o.status.code(), Some(code), "stderr: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "stderr: {}", stderr(&o));
        assert!(!env.root.join(&env.id).exists(), "state dir left behind");
        assert!(!env.cgroup_dir("pids").exists(), "cgroup left behind");
        assert!(!env.cgroup_dir("memory").exists(), "cgroup left behind");
    }
}

#[test]
fn bad_cwd_fails_with_126() {
    need_root!();
    let (env, mut cfg) = bundle("cwd", &["true"]);
    cfg["process"]["cwd"] = json!("/nope");
    let o = env.run(&cfg);
    assert_eq!(o.status.code(), Some(126));
    assert!(
        stderr(&o).contains(
            "chdir to cwd (\"/nope\") set in config.json failed: no such file or directory"
        ),
        "stderr: {}",
        stderr(&o)
    );
}

#[test]
fn security_settings_apply() {
    need_root!();
    let script = "grep CapEff /proc/self/status; ulimit -n; cat /proc/kcore | wc -c; \
                  touch /proc/sys/x 2>/dev/null || echo sys-ro; touch /x 2>/dev/null || echo root-ro; \
                  grep NoNewPrivs /proc/self/status";
    let (env, cfg) = bundle("sec", &["sh", "-c", script]);
    let o = env.run(&cfg);
    assert_eq!(
        stdout(&o),
        "CapEff:\t0000000020000420\n1024\n0\nsys-ro\nroot-ro\nNoNewPrivs:\t1\n",
        "stderr: {}",
        stderr(&o)
    );
}

#[test]
fn user_and_groups() {
    need_root!();
    let (env, mut cfg) = bundle("user", &["sh", "-c", "id -u; id -g; id -G; echo $HOME"]);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [1002, 1003]});
    cfg["process"]["env"] = json!(["PATH=/bin", "HOME=/tmp"]);
    let o = env.run(&cfg);
    assert_eq!(
        stdout(&o),
        "1000\n1001\n1001 1002 1003\n/tmp\n",
        "stderr: {}",
        stderr(&o)
    );
}

#[test]
fn memory_and_pids_limits_are_applied() {
    need_root!();
    let (env, mut cfg) = bundle("res", &["sleep", "1000"]);
    cfg["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024});
    cfg["linux"]["resources"]["pids"] = json!({"limit": 50});
    env.write(&cfg);
    let b = env.bundle.to_str().unwrap().to_string();
    let o = env.cmd(&["create", &env.id, "-b", &b]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let (mem, pids) = if v2 {
        (
            env.cgroup_dir("").join("memory.max"),
            env.cgroup_dir("").join("pids.max"),
        )
    } else {
        (
            env.cgroup_dir("memory").join("memory.limit_in_bytes"),
            env.cgroup_dir("pids").join("pids.max"),
        )
    };
    assert_eq!(
        std::fs::read_to_string(mem).unwrap().trim(),
        (64 * 1024 * 1024).to_string()
    );
    assert_eq!(std::fs::read_to_string(pids).unwrap().trim(), "50");
    let o = env.cmd(&["delete", &env.id]);
    assert!(
        o.status.success(),
        "delete of a created container: {}",
        stderr(&o)
    );
    assert!(!env.cgroup_dir("pids").exists());
}

#[test]
fn user_namespace_with_mappings() {
    need_root!();
    let (env, mut cfg) = bundle(
        "userns",
        &["sh", "-c", "cat /proc/self/uid_map; id -u; echo $$"],
    );
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let o = env.run(&cfg);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "stdout: {out} stderr: {}", stderr(&o));
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(&lines[1..], ["0", "1"]);
}

#[test]
fn no_pivot_works() {
    need_root!();
    let (env, cfg) = bundle("nopivot", &["cat", "/etc/passwd"]);
    env.write(&cfg);
    let b = env.bundle.to_str().unwrap().to_string();
    let o = env.cmd(&["run", &env.id, "-b", &b, "--no-pivot"]);
    assert_eq!(
        stdout(&o),
        "root:x:0:0:root:/root:/bin/sh\n",
        "stderr: {}",
        stderr(&o)
    );
}

#[test]
fn console_socket_receives_pty_master() {
    need_root!();
    use std::io::Read;
    use std::os::fd::AsFd;
    let (env, mut cfg) = bundle(
        "tty",
        &["sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty"],
    );
    cfg["process"]["terminal"] = json!(true);
    env.write(&cfg);
    let sock_path = env.bundle.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let b = env.bundle.to_str().unwrap().to_string();
    let child = Command::new(BIN)
        .arg("--root")
        .arg(&env.root)
        .args([
            "create",
            &env.id,
            "-b",
            &b,
            "--console-socket",
            sock_path.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let (master, name) = berth_sys::recv_fd(conn.as_fd()).unwrap();
    assert!(
        String::from_utf8_lossy(&name).starts_with("/dev/pts/"),
        "{name:?}"
    );
    let mut child = child;
    assert!(child.wait().unwrap().success());
    let o = env.cmd(&["start", &env.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    // Read until the slave side closes (EIO) or we have the line.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&out).contains("is-a-tty") {
            break;
        }
    }
    assert!(
        String::from_utf8_lossy(&out).contains("is-a-tty"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

/// Same bundle under runc: identical output and error text.
#[test]
fn behaves_like_runc() {
    need_root!();
    if Command::new("runc").arg("--version").output().is_err() {
        eprintln!("skipping: runc not installed");
        return;
    }
    let script =
        "echo $$; hostname; ls /sys/class/net; grep CapEff /proc/self/status; ulimit -n; ls /dev";
    let (env, cfg) = bundle("cmp", &["sh", "-c", script]);
    let ours = env.run(&cfg);
    let runc_root = env.bundle.parent().unwrap().join("runc-root");
    let rid = format!("{}-runc", env.id);
    let mut rcfg = cfg.clone();
    rcfg["linux"]["cgroupsPath"] = json!(format!("/berth/{rid}"));
    env.write(&rcfg);
    let theirs = Command::new("runc")
        .arg("--root")
        .arg(&runc_root)
        .args(["run", &rid])
        .current_dir(&env.bundle)
        .output()
        .unwrap();
    assert_eq!(
        stdout(&ours),
        stdout(&theirs),
        "ours stderr: {} runc stderr: {}",
        stderr(&ours),
        stderr(&theirs)
    );
    assert_eq!(ours.status.code(), theirs.status.code());

    let mut bad = cfg.clone();
    bad["process"]["args"] = json!(["nosuch"]);
    let ours = env.run(&bad);
    bad["linux"]["cgroupsPath"] = json!(format!("/berth/{rid}"));
    env.write(&bad);
    let theirs = Command::new("runc")
        .arg("--root")
        .arg(&runc_root)
        .args(["run", &rid])
        .current_dir(&env.bundle)
        .output()
        .unwrap();
    let needle = "exec: \"nosuch\": executable file not found in $PATH";
    // runc logs in logfmt, so its quotes come out escaped.
    assert!(
        stderr(&theirs).contains(&needle.replace('"', "\\\"")),
        "runc said: {}",
        stderr(&theirs)
    );
    assert!(stderr(&ours).contains(needle), "we said: {}", stderr(&ours));
    let _ = Command::new("runc")
        .arg("--root")
        .arg(&runc_root)
        .args(["delete", "-f", &rid])
        .output();
}

#[test]
fn container_sees_only_stdio_fds() {
    need_root!();
    let (env, cfg) = bundle("fds", &["ls", "/proc/self/fd"]);
    let o = env.run(&cfg);
    assert_eq!(stdout(&o), "0\n1\n2\n3\n", "stderr: {}", stderr(&o));
}

#[test]
fn runtime_runs_from_a_sealed_memfd() {
    need_root!();
    let (env, cfg) = bundle("memfd", &["sh", "-c", "true"]);
    env.write(&cfg);
    let b = env.bundle.to_str().unwrap().to_string();
    let o = env.cmd(&["create", &env.id, "-b", &b]);
    assert!(o.status.success(), "{}", stderr(&o));
    let st: Value = serde_json::from_slice(&env.cmd(&["state", &env.id]).stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    // The waiting init is still the runtime image: it must be the sealed memfd copy.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:berth-runtime"),
        "{exe:?}"
    );
    let w = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"));
    assert!(w.is_err(), "the runtime binary must not be writable");
    assert!(env.cmd(&["delete", "-f", &env.id]).status.success());
}

#[test]
fn symlinked_mount_destination_stays_in_rootfs() {
    need_root!();
    let host = tempfile::tempdir().unwrap();
    let (env, mut cfg) = bundle("symlink", &["cat", "/etc/hosts"]);
    let rootfs = env.bundle.join("rootfs");
    std::fs::remove_dir_all(rootfs.join("etc")).unwrap();
    std::os::unix::fs::symlink(host.path(), rootfs.join("etc")).unwrap();
    std::fs::write(env.bundle.join("hosts-src"), "127.0.0.1 inside\n").unwrap();
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/etc/hosts", "type": "bind",
        "source": env.bundle.join("hosts-src"), "options": ["rbind", "ro"]
    }));
    let o = env.run(&cfg);
    assert_eq!(stdout(&o), "127.0.0.1 inside\n", "stderr: {}", stderr(&o));
    assert!(
        std::fs::read_dir(host.path()).unwrap().next().is_none(),
        "the host directory was touched"
    );
    // It was created inside the rootfs instead.
    let inside = rootfs
        .join(host.path().strip_prefix("/").unwrap())
        .join("hosts");
    assert!(inside.exists(), "{inside:?}");
}

#[test]
fn seccomp_errno_rule_makes_mkdir_fail() {
    need_root!();
    let (env, mut cfg) = bundle(
        "seccomp1",
        &[
            "sh",
            "-c",
            "mkdir /tmp/d 2>&1; grep Seccomp: /proc/self/status; test -d /tmp/d || echo absent",
        ],
    );
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    let o = env.run(&cfg);
    let out = stdout(&o);
    assert!(
        out.contains("Operation not permitted"),
        "{out} {}",
        stderr(&o)
    );
    assert!(out.contains("Seccomp:\t2\nabsent\n"), "{out}");
}

/// What busybox `sh -c 'echo ...'` needs.
const ALLOW: &[&str] = &[
    "execve",
    "brk",
    "arch_prctl",
    "mmap",
    "munmap",
    "mprotect",
    "read",
    "write",
    "writev",
    "exit_group",
    "exit",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "ioctl",
    "fcntl",
    "stat",
    "fstat",
    "newfstatat",
    "lstat",
    "statx",
    "openat",
    "open",
    "close",
    "uname",
    "set_tid_address",
    "wait4",
    "clone",
    "fork",
    "vfork",
    "dup2",
    "dup3",
    "pipe",
    "pipe2",
    "getcwd",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "prlimit64",
    "sigaltstack",
    "set_robust_list",
    "rseq",
    "getrandom",
    "poll",
    "ppoll",
    "getdents64",
    "lseek",
    "chdir",
    "futex",
    "close_range",
];

#[test]
fn seccomp_default_errno_with_allow_list() {
    need_root!();
    let (env, mut cfg) = bundle(
        "seccomp2",
        &[
            "sh",
            "-c",
            "echo allowed; hostname 2>/dev/null; mkdir /tmp/x 2>&1",
        ],
    );
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ALLOW, "action": "SCMP_ACT_ALLOW"}]
    });
    let o = env.run(&cfg);
    let out = stdout(&o);
    assert!(out.starts_with("allowed\n"), "{out} {}", stderr(&o));
    assert!(out.contains("not implemented"), "ENOSYS expected: {out}");
    assert!(!env.bundle.join("rootfs/tmp/x").exists());
}

#[test]
fn seccomp_argument_comparisons() {
    need_root!();
    // kill(2) denied only for SIGUSR1 (EQ on arg 1) and SIGUSR2 (MASKED_EQ on arg 1); signal
    // 0 and SIGCONT still pass.
    let (env, mut cfg) = bundle(
        "seccomp3",
        &["sh", "-c", "kill -0 $$ && echo zero-ok; kill -USR1 $$ 2>/dev/null || echo usr1-denied; \
                       kill -USR2 $$ 2>/dev/null || echo usr2-denied; kill -CONT $$ && echo cont-ok"],
    );
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 255, "valueTwo": 12, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    });
    let o = env.run(&cfg);
    assert_eq!(
        stdout(&o),
        "zero-ok\nusr1-denied\nusr2-denied\ncont-ok\n",
        "{}",
        stderr(&o)
    );
}

fn detached(name: &str, patch: impl FnOnce(&mut Value)) -> Env {
    let (env, mut cfg) = bundle(name, &["sleep", "1000"]);
    patch(&mut cfg);
    env.write(&cfg);
    let b = env.bundle.to_str().unwrap().to_string();
    let o = env.cmd(&["run", "-d", &env.id, "-b", &b]);
    assert!(o.status.success(), "run -d: {}", stderr(&o));
    env
}

fn status_of(env: &Env) -> String {
    let st: Value = serde_json::from_slice(&env.cmd(&["state", &env.id]).stdout).unwrap();
    st["status"].as_str().unwrap_or_default().to_string()
}

#[test]
fn exec_runs_inside_the_container() {
    need_root!();
    let env = detached("exec", |cfg| {
        cfg["hostname"] = json!("exec-host");
        cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        cfg["process"]["oomScoreAdj"] = json!(123);
    });
    let o = env.cmd(&[
        "exec", "--env", "FOO=bar", "--cwd", "/tmp", "-u", "1000:1000", &env.id, "sh", "-c",
        "hostname; echo $FOO; pwd; id -u; cat /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj; ls /proc/self/fd",
    ]);
    assert_eq!(
        stdout(&o),
        "exec-host\nbar\n/tmp\n1000\n1\n123\n0\n1\n2\n3\n",
        "{}",
        stderr(&o)
    );
    let o = env.cmd(&["exec", &env.id, "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    let o = env.cmd(&["exec", &env.id, "nosuch"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
    // --process JSON, detached, with a pid file.
    let pf = env.bundle.join("exec.pid");
    let proc_json = env.bundle.join("process.json");
    std::fs::write(
        &proc_json,
        json!({"args": ["sleep", "500"], "cwd": "/", "user": {"uid": 0, "gid": 0},
               "env": ["PATH=/bin"]})
        .to_string(),
    )
    .unwrap();
    let o = env.cmd(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().unwrap(),
        "--process",
        proc_json.to_str().unwrap(),
        &env.id,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pid: i32 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let o = env.cmd(&["ps", "--format", "json", &env.id]);
    let pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&pid));
    let o = env.cmd(&["ps", &env.id]);
    let table = stdout(&o);
    assert!(
        table.starts_with("UID") && table.contains("sleep 500"),
        "{table}"
    );
    // kill --all reaches the exec'd process too; delete --force of a running container.
    assert!(env
        .cmd(&["kill", "--all", &env.id, "KILL"])
        .status
        .success());
    for _ in 0..200 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        !Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap()
                .is_empty()
    );
}

#[test]
fn pause_resume_update_events_features() {
    need_root!();
    let env = detached("pause", |_| {});
    assert!(env.cmd(&["pause", &env.id]).status.success());
    assert_eq!(status_of(&env), "paused");
    let o = env.cmd(&["exec", &env.id, "true"]);
    assert!(
        !o.status.success(),
        "exec into a paused container must fail"
    );
    assert!(env.cmd(&["resume", &env.id]).status.success());
    assert_eq!(status_of(&env), "running");
    let o = env.cmd(&[
        "update",
        "--memory",
        "96m",
        "--pids-limit",
        "33",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "--cpu-shares",
        "512",
        &env.id,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 {
        let rd = |c: &str, f: &str| {
            std::fs::read_to_string(env.cgroup_dir(c).join(f))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(
            rd("memory", "memory.limit_in_bytes"),
            (96 << 20).to_string()
        );
        assert_eq!(rd("pids", "pids.max"), "33");
        assert_eq!(rd("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(rd("cpu", "cpu.shares"), "512");
    }
    let rfile = env.bundle.join("res.json");
    std::fs::write(&rfile, r#"{"pids": {"limit": 44}}"#).unwrap();
    assert!(env
        .cmd(&["update", "-r", rfile.to_str().unwrap(), &env.id])
        .status
        .success());
    let o = env.cmd(&["events", "--stats", &env.id]);
    let ev: Value = serde_json::from_slice(&o.stdout).expect("stats JSON");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"].as_str(), Some(env.id.as_str()));
    assert_eq!(ev["data"]["pids"]["current"], 1);
    assert_eq!(ev["data"]["pids"]["limit"], 44);
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 96u64 << 20);
    assert!(ev["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    let o = env.cmd(&["features"]);
    let f: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    let o = env.cmd(&["delete", "--force", &env.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!env.cgroup_dir("pids").exists());
}

#[test]
fn hooks_get_the_state_on_stdin() {
    need_root!();
    let (env, mut cfg) = bundle("hooks", &["sh", "-c", "true"]);
    let out = env.bundle.join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("(echo {name}; cat; echo) >> {}", out.display())], "timeout": 5});
    cfg["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        // Runs inside the container (its /bin/sh and /tmp), before the process.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/start-hook"]}],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    cfg["root"]["readonly"] = json!(false);
    cfg["process"]["args"] = json!(["cat", "/tmp/start-hook"]);
    let o = env.run(&cfg);
    assert!(o.status.success(), "{}", stderr(&o));
    let inner: Value = serde_json::from_slice(&o.stdout).expect("startContainer state");
    assert_eq!(inner["id"].as_str(), Some(env.id.as_str()));
    let log = std::fs::read_to_string(&out).unwrap();
    let names: Vec<&str> = log.lines().step_by(2).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ],
        "{log}"
    );
    let states: Vec<Value> = log
        .lines()
        .skip(1)
        .step_by(2)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(states[0]["status"], "creating");
    assert_eq!(states[0]["id"].as_str(), Some(env.id.as_str()));
    assert!(states[0]["pid"].as_i64().unwrap() > 0);
    assert_eq!(
        states[2]["pid"], states[0]["pid"],
        "createContainer sees the host pid"
    );
    assert_eq!(states[4]["status"], "stopped");
    // A failing hook fails create and leaves nothing behind.
    cfg["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    let o = env.run(&cfg);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("createRuntime hook"), "{}", stderr(&o));
    assert!(!env.root.join(&env.id).exists());
    assert!(!env.cgroup_dir("pids").exists());
}

/// Nothing of the container may remain: state dir, cgroup (any hierarchy), mounts of the
/// bundle in the host, processes in its cgroup or rooted in its rootfs.
fn assert_nothing_left(env: &Env, case: &str) {
    assert!(!env.root.join(&env.id).exists(), "{case}: state dir left");
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let d = h.path().join("berth").join(&env.id);
        assert!(!d.exists(), "{case}: cgroup {d:?} left");
    }
    let d = Path::new("/sys/fs/cgroup/berth").join(&env.id);
    assert!(!d.exists(), "{case}: cgroup {d:?} left");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let b = env.bundle.to_str().unwrap();
    assert!(!mi.contains(b), "{case}: mount left: {mi}");
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        if p.file_name().to_str().unwrap().parse::<u32>().is_err() {
            continue;
        }
        let cg = std::fs::read_to_string(p.path().join("cgroup")).unwrap_or_default();
        assert!(
            !cg.contains(&env.id),
            "{case}: process {:?} left",
            p.file_name()
        );
        if let Ok(r) = std::fs::read_link(p.path().join("root")) {
            assert!(
                !r.starts_with(&env.bundle),
                "{case}: process {:?} left",
                p.file_name()
            );
        }
    }
}

#[test]
fn bad_bundles_fail_clearly_and_leave_nothing() {
    need_root!();
    type Patch = Box<dyn Fn(&Env, &mut Value)>;
    let cases: Vec<(&str, Patch, &str)> = vec![
        (
            "missing rootfs",
            Box::new(|env, _| std::fs::remove_dir_all(env.bundle.join("rootfs")).unwrap()),
            "rootfs",
        ),
        (
            "invalid json",
            Box::new(|env, _| {
                std::fs::write(env.bundle.join("config.json.broken"), "{").unwrap();
            }),
            "cannot load spec",
        ),
        (
            "unknown namespace",
            Box::new(|_, cfg| {
                cfg["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "bogus"}))
            }),
            "bogus",
        ),
        (
            "mount onto an escaping symlink",
            Box::new(|env, cfg| {
                std::os::unix::fs::symlink("../../../../../../..", env.bundle.join("rootfs/evil"))
                    .unwrap();
                cfg["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/evil/tmp/x", "type": "tmpfs", "source": "tmpfs"}),
                );
            }),
            "escapes the rootfs",
        ),
        (
            "cgroup path outside the hierarchy",
            Box::new(|_, cfg| cfg["linux"]["cgroupsPath"] = json!("/berth/../../../tmp/x")),
            "outside the cgroup hierarchy",
        ),
    ];
    let mut cases = cases;
    cases.push((
        "host-wide sysctl",
        Box::new(|_, cfg| cfg["linux"]["sysctl"] = json!({"kernel.panic": "5"})),
        "not in a separate kernel namespace",
    ));
    if std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_err() {
        cases.push((
            "apparmor profile without AppArmor",
            Box::new(|_, cfg| cfg["process"]["apparmorProfile"] = json!("docker-default")),
            "AppArmor is not enabled on this host",
        ));
    }
    for (case, patch, want) in cases {
        let (env, mut cfg) = bundle("bad", &["sh", "-c", "true"]);
        patch(&env, &mut cfg);
        env.write(&cfg);
        if case == "invalid json" {
            std::fs::rename(
                env.bundle.join("config.json.broken"),
                env.bundle.join("config.json"),
            )
            .unwrap();
        }
        let b = env.bundle.to_str().unwrap().to_string();
        let o = env.cmd(&["run", &env.id, "-b", &b]);
        assert!(!o.status.success(), "{case}: must fail");
        assert!(stderr(&o).contains(want), "{case}: {}", stderr(&o));
        assert_nothing_left(&env, case);
    }
}

#[test]
fn conformance_suite_passes() {
    need_root!();
    if std::process::Command::new("jq")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: needs jq");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance/run.sh");
    let o = Command::new("bash")
        .arg(&script)
        .env("BERTH_RUNTIME", BIN)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn exec_tty_over_console_socket() {
    need_root!();
    use std::io::Read;
    use std::os::fd::AsFd;
    let env = detached("exectty", |_| {});
    let sock_path = env.bundle.join("exec-console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let child = Command::new(BIN)
        .arg("--root")
        .arg(&env.root)
        .args([
            "exec",
            "-t",
            "-d",
            "--console-socket",
            sock_path.to_str().unwrap(),
        ])
        .args([&env.id, "sh", "-c", "test -t 0 && tty && echo exec-tty"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let (master, _) = berth_sys::recv_fd(conn.as_fd()).unwrap();
    let mut child = child;
    assert!(child.wait().unwrap().success());
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&out).contains("exec-tty") {
            break;
        }
    }
    let s = String::from_utf8_lossy(&out);
    assert!(s.contains("/dev/pts/") && s.contains("exec-tty"), "{s:?}");
}

#[test]
fn seccomp_notify_hands_the_fd_to_the_listener() {
    need_root!();
    use std::os::fd::AsFd;
    let (env, mut cfg) = bundle("notify", &["sh", "-c", "mkdir /tmp/n 2>&1; echo done"]);
    let sock_path = env.bundle.join("seccomp.sock");
    cfg["root"]["readonly"] = json!(false);
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock_path,
        "listenerMetadata": "meta-1",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let got = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (fd, msg) = berth_sys::recv_fd(conn.as_fd()).unwrap();
        // Closing the listener's fd makes pending and future notifications fail with ENOSYS.
        drop(fd);
        String::from_utf8(msg).unwrap()
    });
    let o = env.run(&cfg);
    let msg: Value = serde_json::from_str(&got.join().unwrap()).unwrap();
    assert_eq!(msg["fds"], json!(["seccompFd"]));
    assert_eq!(msg["metadata"], "meta-1");
    assert_eq!(msg["state"]["id"].as_str(), Some(env.id.as_str()));
    assert!(msg["pid"].as_i64().unwrap() > 0);
    let out = stdout(&o);
    assert!(
        out.contains("not implemented") && out.ends_with("done\n"),
        "{out} {}",
        stderr(&o)
    );
    assert!(!env.bundle.join("rootfs/tmp/n").exists());
}

#[test]
fn foreground_run_and_exec_proxy_their_own_pty() {
    need_root!();
    let (env, mut cfg) = bundle(
        "ownpty",
        &["sh", "-c", "test -t 0 && test -t 1 && echo tty-ok; exit 3"],
    );
    cfg["process"]["terminal"] = json!(true);
    let o = env.run(&cfg);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "tty-ok\r\n");
    // Detached without a console socket is refused, like runc.
    env.write(&cfg);
    let b = env.bundle.to_str().unwrap().to_string();
    let o = env.cmd(&["run", "-d", &env.id, "-b", &b]);
    assert!(stderr(&o).contains("cannot allocate tty"), "{}", stderr(&o));
    assert!(!env.root.join(&env.id).exists());
    let env2 = detached("ownpty2", |_| {});
    let o = env2.cmd(&[
        "exec",
        "-t",
        &env2.id,
        "sh",
        "-c",
        "test -t 1 && echo exec-tty-ok",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "exec-tty-ok\r\n");
}

#[test]
fn idmapped_bind_mount_maps_owners() {
    need_root!();
    let (env, mut cfg) = bundle("idmap", &["sh", "-c", "stat -c '%u %g' /data/f /plain/f"]);
    let host = env.bundle.join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "x").unwrap(); // owned by 0:0
    let mounts = cfg["mounts"].as_array_mut().unwrap();
    mounts.push(json!({
        "destination": "/data", "type": "bind", "source": host, "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
        "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 10}]
    }));
    mounts.push(
        json!({"destination": "/plain", "type": "bind", "source": host, "options": ["rbind"]}),
    );
    let o = env.run(&cfg);
    assert_eq!(stdout(&o), "1000 2000\n0 0\n", "{}", stderr(&o));
    // The host file is unchanged.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(host.join("f")).unwrap().uid(), 0);
}

#[test]
fn force_delete_of_a_paused_container() {
    need_root!();
    let env = detached("pausedel", |_| {});
    let st: Value = serde_json::from_slice(&env.cmd(&["state", &env.id]).stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    assert!(env.cmd(&["pause", &env.id]).status.success());
    let t = std::time::Instant::now();
    let o = env.cmd(&["delete", "--force", &env.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t.elapsed()
    );
    assert!(!env.cgroup_dir("pids").exists());
    assert!(!env.cgroup_dir("freezer").exists());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z"), "{stat}");
}

#[test]
fn hook_timeout_fails_create() {
    need_root!();
    let (env, mut cfg) = bundle("hooktimeout", &["sh", "-c", "true"]);
    cfg["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 10"], "timeout": 1}]});
    let t = std::time::Instant::now();
    let o = env.run(&cfg);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("timeout"), "{}", stderr(&o));
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_nothing_left(&env, "hook timeout");
}

#[test]
fn join_namespaces_by_path_and_exec_into_a_userns_container() {
    need_root!();
    let a = detached("nsowner", |cfg| {
        cfg["hostname"] = json!("owner-host");
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        cfg["mounts"] = json!(cfg["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] != "/sys/fs/cgroup")
            .cloned()
            .collect::<Vec<_>>());
    });
    let st: Value = serde_json::from_slice(&a.cmd(&["state", &a.id]).stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    // exec joins the user namespace first, then the others.
    let o = a.cmd(&[
        "exec",
        &a.id,
        "sh",
        "-c",
        "id -u; hostname; cat /proc/self/uid_map",
    ]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["0", "owner-host"], "{out} {}", stderr(&o));
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );
    // A second container joins A's uts and net namespaces by path.
    let (b, mut cfg) = bundle(
        "nsjoiner",
        &["sh", "-c", "hostname; readlink /proc/self/ns/net"],
    );
    let nss: Vec<Value> = cfg["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| match n["type"].as_str().unwrap() {
            "uts" => json!({"type": "uts", "path": format!("/proc/{pid}/ns/uts")}),
            "network" => json!({"type": "network", "path": format!("/proc/{pid}/ns/net")}),
            _ => n.clone(),
        })
        .collect();
    cfg["linux"]["namespaces"] = json!(nss);
    cfg.as_object_mut().unwrap().remove("hostname");
    let o = b.run(&cfg);
    let want_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(
        stdout(&o),
        format!("owner-host\n{}\n", want_net.display()),
        "{}",
        stderr(&o)
    );
}

#[test]
fn exec_front_end_runs_from_the_sealed_memfd() {
    need_root!();
    // `exec` forks the process that enters the container from the front end, so while it
    // waits for that process the front end must be the sealed memfd copy.
    let env = detached("execmemfd", |_| {});
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(&env.root)
        .args(["exec", &env.id, "sleep", "5"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut exe = None;
    for _ in 0..200 {
        if let Ok(p) = std::fs::read_link(format!("/proc/{}/exe", child.id())) {
            if p.to_string_lossy().starts_with("/memfd:") {
                exe = Some(p);
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        exe.is_some(),
        "the exec front end must run from the sealed memfd"
    );
}

#[test]
fn container_gets_its_own_session_keyring() {
    need_root!();
    // /proc/keys is masked inside; look from the host while the container exists.
    let count = |id: &str| {
        std::fs::read_to_string("/proc/keys")
            .unwrap()
            .lines()
            .filter(|l| {
                l.contains(" keyring ")
                    && l.contains(&format!(" _ses.{id}: "))
                    && l.contains(" perm 3f1b0000 ")
            })
            .count()
    };
    for (flag, want) in [(None, 1), (Some("--no-new-keyring"), 0)] {
        let (env, cfg) = bundle("keyring", &["sleep", "100"]);
        env.write(&cfg);
        let b = env.bundle.to_str().unwrap().to_string();
        let mut args = vec!["create", &env.id, "-b", &b];
        args.extend(flag);
        let o = env.cmd(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(count(&env.id), want, "{flag:?}");
        assert!(env.cmd(&["delete", "-f", &env.id]).status.success());
    }
}
