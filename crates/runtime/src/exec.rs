//! `exec`: a new process inside a running container (its namespaces, cgroup, user, caps,
//! seccomp and no_new_privs).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_sys::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::error::{errno_text, io_text};
use crate::init::{look_path, rlimit_number, set_user_and_caps, setup_console, Fail};

/// Namespace file names under /proc/<pid>/ns, user first (joining it grants the rights to
/// join the others), mount last.
pub(crate) fn ns_to_join(spec: &Spec) -> Vec<(CloneFlags, &'static str)> {
    let mut out = Vec::new();
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for (t, name) in [
        (LinuxNamespaceType::User, "user"),
        (LinuxNamespaceType::Ipc, "ipc"),
        (LinuxNamespaceType::Uts, "uts"),
        (LinuxNamespaceType::Network, "net"),
        (LinuxNamespaceType::Cgroup, "cgroup"),
        (LinuxNamespaceType::Mount, "mnt"),
    ] {
        if nss.iter().any(|n| n.typ() == t) {
            out.push((CloneFlags::from_bits_truncate(t as i32), name));
        }
    }
    out
}

pub(crate) struct ExecCtx {
    pub init_pid: i32,
    pub spec: Spec,
    pub process: Process,
    pub sync: OwnedFd,
    pub console: Option<OwnedFd>,
    pub stdio: Option<[OwnedFd; 3]>,
}

/// Runs in the forked child (already in the container's PID namespace). Returns only on failure.
pub(crate) fn run(ctx: ExecCtx) -> i32 {
    let mut go = [0u8; 8];
    match nix::sys::socket::recv(
        ctx.sync.as_raw_fd(),
        &mut go,
        nix::sys::socket::MsgFlags::empty(),
    ) {
        Ok(n) if &go[..n] == crate::init::MSG_GO => {}
        _ => return 1,
    }
    match setup(&ctx) {
        Ok((path, args, env)) => {
            // Keep only the sync socket (as fd 3, close-on-exec) besides stdio: a failed
            // execve is reported through it, a successful one closes it.
            let _ = nix::unistd::dup2(ctx.sync.as_raw_fd(), 3);
            let _ = nix::fcntl::fcntl(
                3,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
            let _ = berth_sys::close_from(4);
            let _ = berth_sys::reset_signals();
            let late = ctx.process.no_new_privileges().unwrap_or(false);
            if late {
                if let Some(s) = ctx.spec.linux().as_ref().and_then(|l| l.seccomp().clone()) {
                    if let Err(e) = crate::seccomp::load(&s) {
                        report3(1, &e);
                        return 1;
                    }
                }
            }
            let err = nix::unistd::execve(&path, &args, &env).unwrap_err();
            let code = if err == nix::Error::ENOENT { 127 } else { 126 };
            report3(code, &format!("exec {:?}: {}", path, errno_text(err)));
            code
        }
        Err(Fail(code, text)) => {
            let _ = nix::sys::socket::send(
                ctx.sync.as_raw_fd(),
                &crate::init::encode_error(code, &text),
                nix::sys::socket::MsgFlags::empty(),
            );
            code
        }
    }
}

fn report3(code: i32, text: &str) {
    let _ = nix::sys::socket::send(
        3,
        &crate::init::encode_error(code, text),
        nix::sys::socket::MsgFlags::empty(),
    );
}

type Prepared = (CString, Vec<CString>, Vec<CString>);

fn setup(ctx: &ExecCtx) -> Result<Prepared, Fail> {
    let p = &ctx.process;
    // Open every namespace first: after joining the mount namespace /proc is the container's.
    let mut files = Vec::new();
    for (flag, name) in ns_to_join(&ctx.spec) {
        let path = format!("/proc/{}/ns/{name}", ctx.init_pid);
        let own = std::fs::read_link(format!("/proc/self/ns/{name}")).ok();
        let theirs = std::fs::read_link(&path).ok();
        if own.is_some() && own == theirs {
            continue;
        }
        let f = std::fs::File::open(&path).map_err(|e| format!("open {path}: {}", io_text(&e)))?;
        files.push((flag, name, f));
    }
    for (flag, name, f) in &files {
        berth_sys::setns(f.as_fd(), *flag)
            .map_err(|e| format!("join {name} namespace: {}", errno_text(e)))?;
    }
    drop(files);
    if let Some(stdio) = &ctx.stdio {
        for (i, fd) in stdio.iter().enumerate() {
            nix::unistd::dup2(fd.as_raw_fd(), i as i32)
                .map_err(|e| format!("dup2 stdio: {}", errno_text(e)))?;
        }
    }
    if p.terminal().unwrap_or(false) {
        nix::unistd::setsid().map_err(|e| format!("setsid: {}", errno_text(e)))?;
        if let Some(sock) = &ctx.console {
            setup_console(
                sock,
                p.console_size()
                    .map(|b| (b.height() as u16, b.width() as u16)),
            )?;
        }
    }
    if let Some(adj) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("set oom_score_adj: {}", io_text(&e)))?;
    }
    for rl in p.rlimits().clone().unwrap_or_default() {
        let res = rlimit_number(rl.typ());
        berth_sys::set_rlimit(res, rl.soft(), rl.hard())
            .map_err(|e| format!("error setting rlimit type {res}: {}", io_text(&e)))?;
    }
    crate::init::apply_process_attrs(p, &ctx.spec)?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    let seccomp = ctx.spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    if let (Some(s), false) = (&seccomp, nnp) {
        let _ = berth_sys::mark_cloexec_from(3);
        crate::seccomp::load(s)?;
    }
    set_user_and_caps(p)?;
    if nnp {
        berth_sys::set_no_new_privs().map_err(|e| format!("set no_new_privs: {}", io_text(&e)))?;
    }
    crate::init::enter_cwd(p)?;
    let env = crate::init::with_home(p.env().clone().unwrap_or_default(), p.user().uid());
    let args = p.args().clone().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err(Fail(1, "args must not be empty".into()));
    };
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    let resolved: PathBuf = look_path(arg0, path_var)?;
    let cs = |s: &str| CString::new(s).map_err(|_| Fail(1, format!("{s:?} contains a NUL byte")));
    Ok((
        CString::new(resolved.into_os_string().into_encoded_bytes())
            .map_err(|_| Fail(1, "bad path".into()))?,
        args.iter().map(|a| cs(a)).collect::<Result<_, _>>()?,
        env.iter().map(|a| cs(a)).collect::<Result<_, _>>()?,
    ))
}

/// The container's config.json, loaded from its bundle.
pub(crate) fn load_spec(bundle: &Path) -> Result<Spec, crate::Error> {
    let cfg = bundle.join("config.json");
    Spec::load(&cfg).map_err(|source| crate::Error::Spec { path: cfg, source })
}
