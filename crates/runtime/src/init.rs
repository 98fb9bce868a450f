//! The container init: runs in the cloned child, sets up the container, reports to the parent
//! over the sync socket, waits on exec.fifo, then execs the workload.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_sys::CloneFlags;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Spec};

use crate::cgroups::Hierarchy;
use crate::error::errno_text;
use crate::rootfs::{self, InitResult, RootfsCtx};

/// Messages on the sync socket.
pub(crate) const MSG_GO: &[u8] = b"go";
pub(crate) const MSG_OK: &[u8] = b"ok";
/// Carries the seccomp notify fd (SCM_RIGHTS) to the parent, which hands it to the listener.
pub(crate) const MSG_SECCOMP_FD: &[u8] = b"seccomp-notify-fd";

/// Everything the init needs, prepared by the parent before the clone.
pub(crate) struct InitCtx {
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub bundle: PathBuf,
    pub sync: OwnedFd,
    pub fifo: OwnedFd,
    pub console: Option<OwnedFd>,
    pub stdio: Option<[OwnedFd; 3]>,
    pub no_pivot: bool,
    pub cgroup_dirs: Vec<(Hierarchy, PathBuf)>,
    /// Namespaces to join (type flag, path), user first.
    pub join: Vec<(CloneFlags, PathBuf)>,
    pub new_cgroupns: bool,
    pub new_userns: bool,
    pub new_mountns: bool,
    pub new_utsns: bool,
    pub id: String,
    /// Join a new session keyring named after the container (runc's default).
    pub new_keyring: bool,
    /// Per spec mount: the user namespace of an idmapped mount.
    pub idmaps: Vec<Option<OwnedFd>>,
}

/// An init failure: text + exit code hint.
#[derive(Debug)]
pub(crate) struct Fail(pub(crate) i32, pub(crate) String);

impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail(1, s)
    }
}

fn send(sync: &OwnedFd, msg: &[u8]) {
    let _ = nix::sys::socket::send(sync.as_raw_fd(), msg, nix::sys::socket::MsgFlags::empty());
}

/// Encodes an error for the parent.
pub(crate) fn encode_error(code: i32, text: &str) -> Vec<u8> {
    format!("err {code} {text}").into_bytes()
}

/// Decodes a child message: Ok(()) for ready, Err((code, text)) for an error.
pub(crate) fn decode(msg: &[u8]) -> Result<(), (i32, String)> {
    if msg == MSG_OK {
        return Ok(());
    }
    let s = String::from_utf8_lossy(msg);
    let mut it = s.strip_prefix("err ").unwrap_or(&s).splitn(2, ' ');
    let code = it.next().and_then(|c| c.parse().ok()).unwrap_or(1);
    Err((
        code,
        it.next().unwrap_or("container init failed").to_string(),
    ))
}

/// Entry point in the child. Returns only on failure (the exit code).
pub(crate) fn run(ctx: InitCtx) -> i32 {
    // Wait for the parent: uid/gid maps written, cgroup joined.
    let mut buf = [0u8; 16];
    match nix::sys::socket::recv(
        ctx.sync.as_raw_fd(),
        &mut buf,
        nix::sys::socket::MsgFlags::empty(),
    ) {
        Ok(n) if &buf[..n] == MSG_GO => {}
        _ => return 1,
    }
    match setup(&ctx) {
        Ok(exec) => {
            send(&ctx.sync, MSG_OK);
            exec.run(&ctx)
        }
        Err(Fail(code, text)) => {
            send(&ctx.sync, &encode_error(code, &text));
            code
        }
    }
}

struct Exec {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    /// Filter to load as late as possible (with no_new_privs, right before execve).
    late_seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// startContainer hooks (run in the container after `start`, before the exec) + state.
    start_hooks: Vec<oci_spec::runtime::Hook>,
    start_state: String,
    /// Stay as a reaping PID 1 and run the workload as its child (crate::reaper).
    init: bool,
}

impl Exec {
    fn run(self, ctx: &InitCtx) -> i32 {
        // Block until `start` opens the fifo for reading.
        let fifo_path = format!("/proc/self/fd/{}", ctx.fifo.as_raw_fd());
        let fifo = match std::fs::OpenOptions::new().write(true).open(&fifo_path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("open exec fifo: {e}");
                return 1;
            }
        };
        let _ = nix::unistd::write(&fifo, b"0");
        drop(fifo);
        if let Err(e) = crate::hooks::run("startContainer", &self.start_hooks, &self.start_state) {
            eprintln!("{e}");
            return 1;
        }
        let _ = berth_sys::reset_signals();
        // No host fd may reach the workload (CVE-2024-21626 class): close everything but stdio.
        let _ = berth_sys::mark_cloexec_from(3);
        let _ = berth_sys::close_from(3);
        if let Some(s) = &self.late_seccomp {
            if let Err(e) = crate::seccomp::load(s) {
                eprintln!("{e}");
                return 1;
            }
        }
        let exec = || {
            let err = nix::unistd::execve(&self.path, &self.args, &self.env).unwrap_err();
            eprintln!("exec {:?}: {}", self.path, errno_text(err));
            if err == nix::Error::ENOENT {
                127
            } else {
                126
            }
        };
        if self.init {
            // Exit right here: the descriptors this process still owns were closed above
            // (close_from), so nothing may run their destructors.
            berth_sys::exit_immediately(crate::reaper::run(&self.args, exec));
        }
        exec()
    }
}

fn setup(ctx: &InitCtx) -> Result<Exec, Fail> {
    let spec = &ctx.spec;
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| "spec has no process".to_string())?;
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    if ctx.new_userns {
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(|e| format!("setresgid(0) in user namespace: {}", errno_text(e)))?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(|e| format!("setresuid(0) in user namespace: {}", errno_text(e)))?;
    }
    for (flag, path) in &ctx.join {
        berth_sys::setns_path(path, *flag).map_err(|e| {
            format!(
                "join namespace {}: {}",
                path.display(),
                crate::error::io_text(&e)
            )
        })?;
    }
    if ctx.new_cgroupns {
        berth_sys::unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| format!("unshare cgroup namespace: {}", errno_text(e)))?;
    }
    nix::unistd::setsid().map_err(|e| format!("setsid: {}", errno_text(e)))?;
    if ctx.new_keyring {
        // ENOSYS/EACCES/EPERM (keyrings disabled, or denied by a seccomp profile we run under)
        // are not fatal.
        match berth_sys::join_new_session_keyring(&format!("_ses.{}", ctx.id)) {
            // Like runc: possessor all; user view, read, search, link (no write/setattr).
            Ok(serial) => {
                let _ = berth_sys::set_key_perm(serial, 0x3f1b_0000);
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EPERM)
                ) => {}
            Err(e) => {
                return Err(format!("join session keyring: {}", crate::error::io_text(&e)).into())
            }
        }
    }
    if let Some(h) = spec.hostname() {
        if ctx.new_utsns || !h.is_empty() {
            nix::unistd::sethostname(h).map_err(|e| format!("sethostname: {}", errno_text(e)))?;
        }
    }
    if let Some(d) = spec.domainname() {
        berth_sys::set_domainname(d)
            .map_err(|e| format!("setdomainname: {}", crate::error::io_text(&e)))?;
    }
    // stdio: given fds, else inherited.
    if let Some(stdio) = &ctx.stdio {
        for (i, fd) in stdio.iter().enumerate() {
            nix::unistd::dup2(fd.as_raw_fd(), i as i32)
                .map_err(|e| format!("dup2 stdio: {}", errno_text(e)))?;
        }
    }
    let has_mountns = ctx.new_mountns
        || ctx
            .join
            .iter()
            .any(|(f, _)| f.contains(CloneFlags::CLONE_NEWNS));
    if !has_mountns {
        return Err("a mount namespace is required".to_string().into());
    }
    let rctx = RootfsCtx {
        spec,
        rootfs: &ctx.rootfs,
        bundle: &ctx.bundle,
        cgroup_dirs: &ctx.cgroup_dirs,
        in_userns: ctx.new_userns
            || ctx
                .join
                .iter()
                .any(|(f, _)| f.contains(CloneFlags::CLONE_NEWUSER)),
        idmaps: &ctx.idmaps,
    };
    rootfs::prepare(&rctx)?;
    // Our pid in the runtime's PID namespace: /proc is still the host's here.
    let host_pid: i32 = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    let hooks = spec.hooks().clone().unwrap_or_default();
    if let Some(hs) = hooks.create_container() {
        let st = crate::hook_state(spec, &ctx.id, host_pid, "created", &ctx.bundle);
        crate::hooks::run("createContainer", hs, &st).map_err(|e| e.to_string())?;
    }
    let start_hooks = hooks.start_container().clone().unwrap_or_default();
    let start_state = crate::hook_state(spec, &ctx.id, host_pid, "created", &ctx.bundle);
    rootfs::switch_root(&ctx.rootfs, ctx.no_pivot)?;
    if process.terminal().unwrap_or(false) {
        if let Some(sock) = &ctx.console {
            setup_console(
                sock,
                process
                    .console_size()
                    .map(|b| (b.height() as u16, b.width() as u16)),
            )?;
        }
    }
    rootfs::finish(spec)?;
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("set oom_score_adj: {}", crate::error::io_text(&e)))?;
    }
    for rl in process.rlimits().clone().unwrap_or_default() {
        let res = rlimit_number(rl.typ());
        berth_sys::set_rlimit(res, rl.soft(), rl.hard()).map_err(|e| {
            format!(
                "error setting rlimit type {}: {}",
                res,
                crate::error::io_text(&e)
            )
        })?;
    }
    apply_process_attrs(&process, spec)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    // Compile early so a bad profile fails create with a clear error.
    if let Some(s) = &seccomp {
        crate::seccomp::build(s)?;
    }
    let mut late_seccomp = None;
    let load_now = |s: &oci_spec::runtime::LinuxSeccomp| -> InitResult<()> {
        let _ = berth_sys::mark_cloexec_from(3);
        if let Some(fd) = crate::seccomp::load(s)? {
            berth_sys::send_fd(ctx.sync.as_fd(), fd.as_fd(), MSG_SECCOMP_FD)
                .map_err(|e| format!("send seccomp fd: {}", crate::error::io_text(&e)))?;
        }
        Ok(())
    };
    if let Some(s) = &seccomp {
        // Without no_new_privs loading a filter needs CAP_SYS_ADMIN: load before dropping it.
        if !nnp {
            load_now(s)?;
        }
    }
    set_user_and_caps(&process)?;
    if nnp {
        berth_sys::set_no_new_privs()
            .map_err(|e| format!("set no_new_privs: {}", crate::error::io_text(&e)))?;
        if let Some(s) = seccomp {
            if crate::seccomp::uses_notify(&s) {
                load_now(&s)?;
            } else {
                late_seccomp = Some(s);
            }
        }
    }
    enter_cwd(&process)?;
    let env = with_home(
        process.env().clone().unwrap_or_default(),
        process.user().uid(),
    );
    let args = process.args().clone().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err("args must not be empty".to_string().into());
    };
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    let resolved = look_path(arg0, path_var)?;
    let cs = |s: &str| {
        CString::new(s).map_err(|_| Fail(1, format!("argument {s:?} contains a NUL byte")))
    };
    Ok(Exec {
        path: CString::new(resolved.into_os_string().into_encoded_bytes())
            .map_err(|_| Fail(1, "bad path".into()))?,
        args: args.iter().map(|a| cs(a)).collect::<Result<_, _>>()?,
        env: env.iter().map(|a| cs(a)).collect::<Result<_, _>>()?,
        late_seccomp,
        start_hooks,
        start_state,
        init: spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(crate::reaper::INIT_ANNOTATION))
            .is_some_and(|v| v == "true"),
    })
}

/// ioPriority, scheduler, personality, and the LSM labels (refused with a clear error when the
/// host has no such LSM).
pub(crate) fn apply_process_attrs(
    process: &oci_spec::runtime::Process,
    spec: &Spec,
) -> InitResult<()> {
    use oci_spec::runtime::{IOPriorityClass, LinuxSchedulerFlag, LinuxSchedulerPolicy};
    if let Some(io) = process.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        berth_sys::set_io_priority(class, io.priority().clamp(0, 7) as u32)
            .map_err(|e| format!("set ioPriority: {}", crate::error::io_text(&e)))?;
    }
    if let Some(sc) = process.scheduler() {
        let policy = match sc.policy() {
            LinuxSchedulerPolicy::SchedOther => 0,
            LinuxSchedulerPolicy::SchedFifo => 1,
            LinuxSchedulerPolicy::SchedRr => 2,
            LinuxSchedulerPolicy::SchedBatch => 3,
            LinuxSchedulerPolicy::SchedIso => 4,
            LinuxSchedulerPolicy::SchedIdle => 5,
            LinuxSchedulerPolicy::SchedDeadline => 6,
        };
        let flags = sc.flags().iter().flatten().fold(0u64, |acc, f| {
            acc | match f {
                LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
            }
        });
        berth_sys::set_scheduler(&berth_sys::SchedAttr {
            policy,
            flags,
            nice: sc.nice().unwrap_or(0),
            priority: sc.priority().unwrap_or(0).max(0) as u32,
            runtime: sc.runtime().unwrap_or(0),
            deadline: sc.deadline().unwrap_or(0),
            period: sc.period().unwrap_or(0),
        })
        .map_err(|e| format!("set scheduler: {}", crate::error::io_text(&e)))?;
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().clone()) {
        let dom = match p.domain() {
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
        };
        berth_sys::set_personality(dom)
            .map_err(|e| format!("set personality: {}", crate::error::io_text(&e)))?;
    }
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.trim() == "Y");
        if !enabled {
            return Err(format!(
                "apparmor profile {profile:?} requested but AppArmor is not enabled on this host"
            ));
        }
        let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        std::fs::write(attr, format!("exec {profile}")).map_err(|e| {
            format!(
                "apply apparmor profile {profile:?}: {}",
                crate::error::io_text(&e)
            )
        })?;
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|p| !p.is_empty()) {
        if !Path::new("/sys/fs/selinux/enforce").exists() {
            return Err(format!(
                "selinux label {label:?} requested but SELinux is not enabled on this host"
            ));
        }
        std::fs::write("/proc/self/attr/exec", label).map_err(|e| {
            format!(
                "apply selinux label {label:?}: {}",
                crate::error::io_text(&e)
            )
        })?;
    }
    Ok(())
}

/// Like runc: without HOME in the environment, the user's home from the container's
/// /etc/passwd (or "/") is added.
/// The last steps before exec shared by init and exec: the umask, then the working
/// directory (a missing one is runc's 126 error).
pub(crate) fn enter_cwd(process: &oci_spec::runtime::Process) -> Result<(), Fail> {
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        umask as libc::mode_t,
    ));
    let cwd = process.cwd();
    nix::unistd::chdir(cwd.as_path()).map_err(|e| {
        Fail(
            126,
            format!(
                "chdir to cwd ({:?}) set in config.json failed: {}",
                cwd.display().to_string(),
                errno_text(e)
            ),
        )
    })
}

pub(crate) fn with_home(mut env: Vec<String>, uid: u32) -> Vec<String> {
    if env.iter().any(|e| e.starts_with("HOME=")) {
        return env;
    }
    let home = std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());
    env.push(format!("HOME={home}"));
    env
}

/// PATH lookup like Go's exec.LookPath (what runc reports).
pub(crate) fn look_path(name: &str, path_var: &str) -> Result<PathBuf, Fail> {
    let is_exec = |p: &Path| -> Result<(), nix::Error> {
        let md = std::fs::metadata(p)
            .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
        if !md.is_dir() && md.permissions().mode() & 0o111 != 0 {
            Ok(())
        } else {
            Err(nix::Error::EACCES)
        }
    };
    if name.contains('/') {
        return match is_exec(Path::new(name)) {
            Ok(()) => Ok(PathBuf::from(name)),
            Err(nix::Error::EACCES) => Err(Fail(126, format!("exec: {name:?}: permission denied"))),
            Err(e) => Err(Fail(
                if e == nix::Error::ENOENT { 127 } else { 126 },
                format!("exec: {name:?}: stat {name}: {}", errno_text(e)),
            )),
        };
    }
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(name);
        if is_exec(&cand).is_ok() {
            return Ok(cand);
        }
    }
    Err(Fail(
        127,
        format!("exec: {name:?}: executable file not found in $PATH"),
    ))
}

pub(crate) fn rlimit_number(t: PosixRlimitType) -> i32 {
    use PosixRlimitType::*;
    (match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }) as i32
}

fn to_caps(set: &Option<oci_spec::runtime::Capabilities>) -> caps::CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<caps::Capability>().ok())
        .collect()
}

pub(crate) fn set_user_and_caps(process: &oci_spec::runtime::Process) -> InitResult<()> {
    use caps::CapSet;
    let user = process.user();
    let capset = process.capabilities().clone();
    let cerr = |what: &str| {
        let what = what.to_string();
        move |e: caps::errors::CapsError| format!("{what}: {e}")
    };
    // Capabilities outside our own bounding set cannot be granted (e.g. a --privileged
    // container on a host whose bounding set lacks CAP_SYS_RESOURCE): they are left out
    // instead of failing the container, which only ever yields fewer privileges.
    let avail = caps::read(None, CapSet::Bounding).unwrap_or_else(|_| caps::all());
    if let Some(c) = &capset {
        let keep = to_caps(c.bounding());
        for cap in caps::all() {
            if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(cerr("drop bounding capability"))?;
            }
        }
    }
    berth_sys::set_keepcaps(true).map_err(|e| format!("keepcaps: {e}"))?;
    let gids: Vec<Gid> = user
        .additional_gids()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(Gid::from_raw)
        .collect();
    // setgroups is denied in user namespaces where the parent wrote "deny"; ignore EPERM there.
    if let Err(e) = nix::unistd::setgroups(&gids) {
        if e != nix::Error::EPERM || !gids.is_empty() {
            return Err(format!("setgroups: {}", errno_text(e)));
        }
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| format!("setgid {}: {}", user.gid(), errno_text(e)))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| format!("setuid {}: {}", user.uid(), errno_text(e)))?;
    berth_sys::set_keepcaps(false).map_err(|e| format!("keepcaps: {e}"))?;
    // Changing uid makes the process non-dumpable, which would hide /proc/self/fd from it.
    let _ = nix::sys::prctl::set_dumpable(true);
    if let Some(c) = &capset {
        let eff: caps::CapsHashSet = to_caps(c.effective())
            .intersection(&avail)
            .copied()
            .collect();
        let perm: caps::CapsHashSet = to_caps(c.permitted())
            .intersection(&avail)
            .copied()
            .collect();
        let inh: caps::CapsHashSet = to_caps(c.inheritable())
            .intersection(&avail)
            .copied()
            .collect();
        caps::set(None, CapSet::Effective, &eff).map_err(cerr("set effective capabilities"))?;
        caps::set(None, CapSet::Permitted, &perm).map_err(cerr("set permitted capabilities"))?;
        caps::set(None, CapSet::Inheritable, &inh).map_err(cerr("set inheritable capabilities"))?;
        let _ = caps::clear(None, CapSet::Ambient);
        // Like runc: an ambient capability needs to be permitted and inheritable; others are
        // skipped rather than failing the container.
        for cap in to_caps(c.ambient()) {
            if perm.contains(&cap) && inh.contains(&cap) {
                caps::raise(None, CapSet::Ambient, cap)
                    .map_err(cerr("raise ambient capability"))?;
            }
        }
    }
    Ok(())
}

/// Creates a pty inside the container, sends the master over the console socket (SCM_RIGHTS,
/// like runc), and makes the slave our stdio and controlling terminal.
pub(crate) fn setup_console(sock: &OwnedFd, size: Option<(u16, u16)>) -> InitResult<()> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("open /dev/ptmx: {}", errno_text(e)))?;
    nix::pty::grantpt(&master).map_err(|e| format!("grantpt: {}", errno_text(e)))?;
    nix::pty::unlockpt(&master).map_err(|e| format!("unlockpt: {}", errno_text(e)))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| format!("ptsname: {}", errno_text(e)))?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .map_err(|e| format!("open {name}: {}", crate::error::io_text(&e)))?;
    if let Some((h, w)) = size {
        let _ = berth_sys::set_winsize(slave.as_fd(), h, w);
    }
    berth_sys::send_fd(sock.as_fd(), master.as_fd(), name.as_bytes())
        .map_err(|e| format!("send console master: {}", crate::error::io_text(&e)))?;
    for i in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), i)
            .map_err(|e| format!("dup2 console: {}", errno_text(e)))?;
    }
    berth_sys::set_controlling_tty(slave.as_fd())
        .map_err(|e| format!("set controlling tty: {}", crate::error::io_text(&e)))?;
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_roundtrip() {
        assert_eq!(decode(MSG_OK), Ok(()));
        assert_eq!(
            decode(&encode_error(127, "exec: \"x\": not found")),
            Err((127, "exec: \"x\": not found".into()))
        );
    }

    #[test]
    fn look_path_messages() {
        let e = look_path("nosuch-berth", "/usr/bin:/bin").unwrap_err();
        assert_eq!(
            (e.0, e.1.as_str()),
            (
                127,
                "exec: \"nosuch-berth\": executable file not found in $PATH"
            )
        );
        let e = look_path("/nonexistent", "").unwrap_err();
        assert_eq!(
            (e.0, e.1.as_str()),
            (
                127,
                "exec: \"/nonexistent\": stat /nonexistent: no such file or directory"
            )
        );
        let e = look_path("/etc", "").unwrap_err();
        assert_eq!(e.0, 126);
        assert_eq!(
            look_path("sh", "/nonexistent-dir:/bin").unwrap(),
            PathBuf::from("/bin/sh")
        );
    }
}
