//! berth-runtime-lib: a synchronous OCI runtime (runc-like) library.
//!
//! The container init is cloned directly as a child of the calling process, which must be
//! single-threaded (the `berth-runtime` CLI or the shim). See `docs/DESIGN.md`.

pub mod cgroups;
mod devfilter;
mod error;
mod exec;
mod hooks;
mod init;
pub mod reaper;
mod rootfs;
mod seccomp;
mod state;

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_sys::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub use cgroups::Stats;
pub use error::Error;
pub use state::{State, Status};

use state::{Persisted, FIFO};

/// Options for [`Runtime::create`].
#[derive(Debug, Default)]
pub struct CreateOpts {
    /// stdin, stdout, stderr of the init; `None` inherits the caller's.
    pub stdio: Option<[OwnedFd; 3]>,
    /// Write the init pid here (atomically).
    pub pid_file: Option<PathBuf>,
    /// With `process.terminal`, the pty master is sent over this Unix socket (SCM_RIGHTS).
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
}

/// Options for [`Runtime::exec`].
#[derive(Debug, Default)]
pub struct ExecOpts {
    /// stdin, stdout, stderr of the process; `None` inherits the caller's.
    pub stdio: Option<[OwnedFd; 3]>,
    /// Write the process pid here (atomically).
    pub pid_file: Option<PathBuf>,
    /// With `process.terminal`, the pty master is sent over this Unix socket.
    pub console_socket: Option<PathBuf>,
}

/// The state JSON given to hooks on stdin.
pub(crate) fn hook_state(spec: &Spec, id: &str, pid: i32, status: &str, bundle: &Path) -> String {
    let mut v = serde_json::json!({
        "ociVersion": spec.version(),
        "id": id,
        "status": status,
        "bundle": bundle,
        "annotations": spec.annotations().clone().unwrap_or_default(),
    });
    if pid > 0 {
        v["pid"] = serde_json::json!(pid);
    }
    v.to_string()
}

/// A runtime rooted at a state directory (like `runc --root`).
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
    no_new_keyring: bool,
}

fn validate_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

/// Removes what a failed create left behind.
struct CreateGuard {
    dir: PathBuf,
    cgroup: Option<cgroups::Cgroup>,
    pid: Option<Pid>,
    armed: bool,
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn owner_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Runtime {
            root: root.into(),
            no_new_keyring: false,
        }
    }

    /// Like runc's `--no-new-keyring`: the container keeps the caller's session keyring
    /// instead of getting its own (`_ses.<id>`, like runc).
    pub fn no_new_keyring(mut self, yes: bool) -> Self {
        self.no_new_keyring = yes;
        self
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn load(&self, id: &str) -> Result<Persisted, Error> {
        validate_id(id)?;
        let dir = self.dir(id);
        if !dir.join(state::STATE_FILE).exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        Persisted::load(&dir)
    }

    /// Creates the container: clones its init (as a child of the caller) into the requested
    /// namespaces and cgroup; init prepares everything and waits for [`Runtime::start`].
    pub fn create(&self, id: &str, bundle: &Path, opts: CreateOpts) -> Result<State, Error> {
        validate_id(id)?;
        let bundle = std::fs::canonicalize(bundle)
            .map_err(|e| Error::io(format!("bundle {}", bundle.display()), e))?;
        let cfg = bundle.join("config.json");
        let spec = Spec::load(&cfg).map_err(|source| Error::Spec {
            path: cfg.clone(),
            source,
        })?;
        let root = spec
            .root()
            .clone()
            .ok_or_else(|| Error::InvalidSpec("root must be set".into()))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            bundle.join(root.path())
        };
        let rootfs = std::fs::canonicalize(&rootfs)
            .map_err(|e| Error::io(format!("rootfs {}", rootfs.display()), e))?;
        let process = spec
            .process()
            .clone()
            .ok_or_else(|| Error::InvalidSpec("process must be set".into()))?;
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::InvalidSpec("args must not be empty".into()));
        }
        let linux = spec.linux().clone().unwrap_or_default();

        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| Error::io(format!("create state root {}", self.root.display()), e))?;
        let dir = self.dir(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()))
            }
            Err(e) => return Err(Error::io(format!("create state dir {}", dir.display()), e)),
        }
        let mut guard = CreateGuard {
            dir: dir.clone(),
            cgroup: None,
            pid: None,
            armed: true,
        };

        // exec.fifo: init blocks opening it for writing until `start` opens it for reading.
        let fifo_path = dir.join(FIFO);
        nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o622))
            .map_err(|e| Error::nix(format!("mkfifo {}", fifo_path.display()), e))?;
        std::fs::set_permissions(&fifo_path, std::fs::Permissions::from_mode(0o622))
            .map_err(|e| Error::io("chmod exec.fifo", e))?;
        let fifo: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(&fifo_path)
            .map_err(|e| Error::io("open exec.fifo", e))?
            .into();

        let console = match (&opts.console_socket, process.terminal().unwrap_or(false)) {
            (Some(p), true) => Some(OwnedFd::from(
                std::os::unix::net::UnixStream::connect(p)
                    .map_err(|e| Error::io(format!("connect console socket {}", p.display()), e))?,
            )),
            _ => None,
        };

        // Namespaces.
        let mut flags = CloneFlags::empty();
        let mut join: Vec<(CloneFlags, PathBuf)> = Vec::new();
        let mut pid_join: Option<PathBuf> = None;
        let mut new_cgroupns = false;
        for ns in linux.namespaces().clone().unwrap_or_default() {
            let f = CloneFlags::from_bits_truncate(ns.typ() as i32);
            match (ns.typ(), ns.path()) {
                (LinuxNamespaceType::Pid, Some(p)) => pid_join = Some(p.clone()),
                (LinuxNamespaceType::Cgroup, None) => new_cgroupns = true,
                (LinuxNamespaceType::Time, None) => {
                    return Err(Error::InvalidSpec(
                        "time namespaces are not supported".into(),
                    ))
                }
                (_, Some(p)) => join.push((f, p.clone())),
                (_, None) => flags |= f,
            }
        }
        join.sort_by_key(|(f, _)| !f.contains(CloneFlags::CLONE_NEWUSER));
        let new_userns = flags.contains(CloneFlags::CLONE_NEWUSER);

        // cgroup.
        let cg_rel = linux
            .cgroups_path()
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/berth/{id}")));
        let cg_rel = cgroups::systemd_to_cgroupfs(&cg_rel).unwrap_or(cg_rel);
        let cg = cgroups::Cgroup::create(&cg_rel)?;
        guard.cgroup = Some(cg.clone());

        let idmaps = idmap_namespaces(&cfg, &linux)?;
        let (parent_sock, child_sock) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::nix("socketpair", e))?;

        let ctx = init::InitCtx {
            idmaps,
            spec: spec.clone(),
            rootfs: rootfs.clone(),
            bundle: bundle.clone(),
            sync: child_sock,
            fifo,
            console,
            stdio: opts.stdio,
            no_pivot: opts.no_pivot,
            cgroup_dirs: cg.dirs.clone(),
            join,
            new_cgroupns,
            new_userns,
            new_mountns: flags.contains(CloneFlags::CLONE_NEWNS),
            new_utsns: flags.contains(CloneFlags::CLONE_NEWUTS),
            id: id.to_string(),
            new_keyring: !self.no_new_keyring,
        };

        // Joining an existing PID namespace affects children only: switch, clone, switch back.
        let own_pidns = match &pid_join {
            Some(p) => {
                let own = std::fs::File::open("/proc/self/ns/pid")
                    .map_err(|e| Error::io("open /proc/self/ns/pid", e))?;
                berth_sys::setns_path(p, CloneFlags::CLONE_NEWPID)
                    .map_err(|e| Error::io(format!("join pid namespace {}", p.display()), e))?;
                Some(own)
            }
            None => None,
        };
        let cloned = berth_sys::clone_into_namespaces(flags, move || init::run(ctx));
        if let Some(own) = own_pidns {
            let _ = berth_sys::setns(std::os::fd::AsFd::as_fd(&own), CloneFlags::CLONE_NEWPID);
        }
        let pid = cloned.map_err(|e| Error::io("clone container init", e))?;
        guard.pid = Some(pid);

        if new_userns {
            write_id_maps(pid, &linux)?;
        }
        cg.add_pid(pid.as_raw())?;
        // Limits other than devices apply from the start; the device allow-list only once init
        // has made the container's device nodes (like runc, which sets resources after the
        // rootfs is ready): a rule without `m` must not stop the runtime's own mknod.
        let (early, devices) = match linux.resources() {
            Some(r) => {
                let mut early = r.clone();
                early.set_devices(None);
                (Some(early), r.devices().clone())
            }
            None => (None, None),
        };
        if let Some(r) = &early {
            cg.apply(r)?;
        }
        if let Some(h) = spec.hooks() {
            let st = hook_state(&spec, id, pid.as_raw(), "creating", &bundle);
            hooks::run("prestart", h.prestart().as_deref().unwrap_or(&[]), &st)?;
            hooks::run(
                "createRuntime",
                h.create_runtime().as_deref().unwrap_or(&[]),
                &st,
            )?;
        }
        nix::sys::socket::send(parent_sock.as_raw_fd(), init::MSG_GO, MsgFlags::empty())
            .map_err(|e| Error::nix("sync with init", e))?;
        let buf = loop {
            let (msg, fd) = berth_sys::recv_msg_fd(parent_sock.as_fd())
                .map_err(|e| Error::io("sync with init", e))?;
            match fd {
                Some(fd) if msg == init::MSG_SECCOMP_FD => {
                    send_to_seccomp_listener(&linux, &spec, id, pid, &bundle, fd)?
                }
                _ => break msg,
            }
        };
        let n = buf.len();
        if n == 0 {
            let why = match nix::sys::wait::waitpid(pid, None) {
                Ok(st) => format!("{st:?}"),
                Err(e) => e.to_string(),
            };
            guard.pid = None;
            return Err(Error::Init {
                message: format!("container init exited before it was ready ({why})"),
                exit_code: 1,
            });
        }
        if let Err((code, message)) = init::decode(&buf[..n]) {
            return Err(Error::Init {
                message,
                exit_code: code,
            });
        }
        if devices.is_some() {
            let mut r = oci_spec::runtime::LinuxResources::default();
            r.set_devices(devices);
            cg.apply(&r)?;
        }

        let start = state::proc_stat(pid.as_raw()).map(|s| s.1).unwrap_or(0);
        let md = std::fs::metadata(&dir).map_err(|e| Error::io("stat state dir", e))?;
        let persisted = Persisted {
            state: State {
                oci_version: spec.version().clone(),
                id: id.to_string(),
                pid: pid.as_raw(),
                status: Status::Created,
                bundle,
                rootfs,
                created: now_rfc3339(),
                owner: owner_name(std::os::unix::fs::MetadataExt::uid(&md)),
                annotations: spec.annotations().clone().unwrap_or_default(),
            },
            init_start_time: start,
            cgroup_paths: cg.paths(),
        };
        persisted.save(&dir)?;
        if let Some(pf) = &opts.pid_file {
            state::write_atomic(pf, pid.as_raw().to_string().as_bytes())
                .map_err(|e| Error::io(format!("write pid file {}", pf.display()), e))?;
        }
        guard.armed = false;
        Ok(persisted.state)
    }

    /// Lets a created container exec its process.
    pub fn start(&self, id: &str) -> Result<(), Error> {
        let p = self.load(id)?;
        let dir = self.dir(id);
        let st = p.current(&dir);
        match st.status {
            Status::Created => {}
            Status::Stopped => {
                return Err(Error::BadState {
                    id: id.into(),
                    message: "cannot start a container that has stopped".into(),
                })
            }
            _ => {
                return Err(Error::BadState {
                    id: id.into(),
                    message: "cannot start an already running container".into(),
                })
            }
        }
        let fifo_path = dir.join(FIFO);
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo_path)
            .map_err(|e| Error::io("open exec.fifo", e))?;
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        loop {
            let mut fds = [PollFd::new(
                std::os::fd::AsFd::as_fd(&fifo),
                PollFlags::POLLIN,
            )];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::Error::EINTR) => {
                    if !p.init_alive() {
                        return Err(Error::BadState {
                            id: id.into(),
                            message: "cannot start a container that has stopped".into(),
                        });
                    }
                }
                Ok(_) => break,
                Err(e) => return Err(Error::nix("poll exec.fifo", e)),
            }
        }
        let mut b = [0u8; 1];
        let n = nix::unistd::read(fifo.as_raw_fd(), &mut b)
            .map_err(|e| Error::nix("read exec.fifo", e))?;
        let _ = std::fs::remove_file(&fifo_path);
        if n == 0 {
            return Err(Error::BadState {
                id: id.into(),
                message: "cannot start a container that has stopped".into(),
            });
        }
        if let Ok(spec) = exec::load_spec(&p.state.bundle) {
            if let Some(h) = spec.hooks() {
                let st = hook_state(&spec, id, p.state.pid, "running", &p.state.bundle);
                hooks::run("poststart", h.poststart().as_deref().unwrap_or(&[]), &st)?;
            }
        }
        Ok(())
    }

    /// runc's state of one container.
    pub fn state(&self, id: &str) -> Result<State, Error> {
        let p = self.load(id)?;
        Ok(p.current(&self.dir(id)))
    }

    /// Sends `signal` to the init (or, with `all`, to every process in the container cgroup).
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), Error> {
        let p = self.load(id)?;
        let st = p.current(&self.dir(id));
        let sig = Signal::try_from(signal)
            .map_err(|_| Error::InvalidSpec(format!("invalid signal {signal}")))?;
        if all {
            let cg = cgroups::Cgroup::from_dirs(&p.cgroup_paths);
            let pids = cg.pids();
            if pids.is_empty() && st.status == Status::Stopped {
                return Err(Error::BadState {
                    id: id.into(),
                    message: "container not running".into(),
                });
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
            }
            return Ok(());
        }
        if st.status == Status::Stopped {
            return Err(Error::BadState {
                id: id.into(),
                message: "container not running".into(),
            });
        }
        nix::sys::signal::kill(Pid::from_raw(p.state.pid), sig)
            .map_err(|e| Error::nix(format!("kill {}", p.state.pid), e))
    }

    /// Removes a container: its cgroup and state. A running container needs `force` (then it
    /// is killed first); a created one is killed.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), Error> {
        let p = match self.load(id) {
            Ok(p) => p,
            Err(Error::NotFound(_)) if force => {
                // A create that died before writing its state leaves a bare state dir that
                // would block the next create of this id.
                let dir = self.dir(id);
                if dir.is_dir() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let dir = self.dir(id);
        let st = p.current(&dir);
        let cg = cgroups::Cgroup::from_dirs(&p.cgroup_paths);
        match st.status {
            Status::Stopped => {}
            Status::Created => {
                let _ = nix::sys::signal::kill(Pid::from_raw(p.state.pid), Signal::SIGKILL);
            }
            s if !force => {
                return Err(Error::BadState {
                    id: id.into(),
                    message: format!("cannot delete container {id} that is not stopped: {s}"),
                });
            }
            _ => {
                let _ = nix::sys::signal::kill(Pid::from_raw(p.state.pid), Signal::SIGKILL);
            }
        }
        if st.status != Status::Stopped {
            for pid in cg.pids() {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            // Frozen tasks only die once thawed.
            if cgroups::is_frozen(&p.cgroup_paths) {
                let _ = cg.set_frozen(false);
            }
            // Wait for the init to die (a zombie counts as dead; its parent reaps it).
            for _ in 0..500 {
                if !p.init_alive() && cg.pids().is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        cg.destroy()?;
        let res = std::fs::remove_dir_all(&dir)
            .map_err(|e| Error::io(format!("remove {}", dir.display()), e));
        // poststop: failures are ignored (the container is gone either way), like runc.
        if let Ok(spec) = exec::load_spec(&p.state.bundle) {
            if let Some(h) = spec.hooks() {
                let st = hook_state(&spec, id, 0, "stopped", &p.state.bundle);
                let _ = hooks::run("poststop", h.poststop().as_deref().unwrap_or(&[]), &st);
            }
        }
        res
    }

    fn cgroup_of(&self, id: &str) -> Result<(Persisted, cgroups::Cgroup), Error> {
        let p = self.load(id)?;
        let cg = cgroups::Cgroup::from_dirs(&p.cgroup_paths);
        Ok((p, cg))
    }

    fn running(&self, id: &str, what: &str) -> Result<(Persisted, cgroups::Cgroup), Error> {
        let (p, cg) = self.cgroup_of(id)?;
        let st = p.current(&self.dir(id));
        if st.status == Status::Stopped {
            return Err(Error::BadState {
                id: id.into(),
                message: format!("cannot {what} a container that is not running"),
            });
        }
        Ok((p, cg))
    }

    /// Freezes every process of the container (v1 freezer or v2 cgroup.freeze).
    pub fn pause(&self, id: &str) -> Result<(), Error> {
        let (p, cg) = self.running(id, "pause")?;
        if p.current(&self.dir(id)).status == Status::Created {
            return Err(Error::BadState {
                id: id.into(),
                message: "cannot pause a container that is not running".into(),
            });
        }
        cg.set_frozen(true)
    }

    /// Thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<(), Error> {
        let (p, cg) = self.running(id, "resume")?;
        if p.current(&self.dir(id)).status != Status::Paused {
            return Err(Error::BadState {
                id: id.into(),
                message: "container not paused".into(),
            });
        }
        cg.set_frozen(false)
    }

    /// Pids of every process in the container's cgroup (host PID namespace).
    pub fn processes(&self, id: &str) -> Result<Vec<i32>, Error> {
        let (_, cg) = self.cgroup_of(id)?;
        Ok(cg.pids())
    }

    /// cgroup statistics (runc's `events --stats` data).
    pub fn stats(&self, id: &str) -> Result<Stats, Error> {
        let (_, cg) = self.running(id, "get stats of")?;
        Ok(cg.stats())
    }

    /// Changes the resource limits of a live container.
    pub fn update(&self, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<(), Error> {
        let (_, cg) = self.running(id, "update")?;
        cg.apply(r)
    }

    /// Starts `process` inside the running container `id` (its namespaces, cgroup, seccomp
    /// profile); the new process is a child of the caller, which must be single-threaded.
    /// Returns its pid once it has exec'd (errors such as a missing executable come back as
    /// `Error::Init` with runc's text and exit code hint).
    pub fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        opts: ExecOpts,
    ) -> Result<Pid, Error> {
        let p = self.load(id)?;
        let st = p.current(&self.dir(id));
        match st.status {
            Status::Running | Status::Created => {}
            Status::Paused => {
                return Err(Error::BadState {
                    id: id.into(),
                    message: "cannot exec in a paused container".into(),
                })
            }
            _ => {
                return Err(Error::BadState {
                    id: id.into(),
                    message: "cannot exec in a stopped container".into(),
                })
            }
        }
        let spec = exec::load_spec(&p.state.bundle)?;
        let console = match (&opts.console_socket, process.terminal().unwrap_or(false)) {
            (Some(s), true) => Some(OwnedFd::from(
                std::os::unix::net::UnixStream::connect(s)
                    .map_err(|e| Error::io(format!("connect console socket {}", s.display()), e))?,
            )),
            (None, true) => {
                return Err(Error::InvalidSpec(
                    "process.terminal requires a console socket".into(),
                ))
            }
            _ => None,
        };
        let (parent_sock, child_sock) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::nix("socketpair", e))?;
        let own_pidns = std::fs::File::open("/proc/self/ns/pid")
            .map_err(|e| Error::io("open /proc/self/ns/pid", e))?;
        let target = format!("/proc/{}/ns/pid", p.state.pid);
        let same = std::fs::read_link("/proc/self/ns/pid").ok() == std::fs::read_link(&target).ok();
        if !same {
            berth_sys::setns_path(Path::new(&target), CloneFlags::CLONE_NEWPID)
                .map_err(|e| Error::io(format!("join pid namespace {target}"), e))?;
        }
        let ctx = exec::ExecCtx {
            init_pid: p.state.pid,
            spec,
            process: process.clone(),
            sync: child_sock,
            console,
            stdio: opts.stdio,
        };
        let cloned = berth_sys::fork_child(move || exec::run(ctx));
        if !same {
            let _ = berth_sys::setns(own_pidns.as_fd(), CloneFlags::CLONE_NEWPID);
        }
        let pid = cloned.map_err(|e| Error::io("fork exec process", e))?;
        let kill = || {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        };
        let cg = cgroups::Cgroup::from_dirs(&p.cgroup_paths);
        if let Err(e) = cg.add_pid(pid.as_raw()) {
            kill();
            return Err(e);
        }
        if let Err(e) =
            nix::sys::socket::send(parent_sock.as_raw_fd(), init::MSG_GO, MsgFlags::empty())
        {
            kill();
            return Err(Error::nix("sync with exec process", e));
        }
        let mut buf = vec![0u8; 65536];
        let n = match nix::sys::socket::recv(parent_sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(e) => {
                kill();
                return Err(Error::nix("sync with exec process", e));
            }
        };
        if n > 0 {
            let (code, message) = init::decode(&buf[..n]).err().unwrap_or((1, String::new()));
            let _ = nix::sys::wait::waitpid(pid, None);
            return Err(Error::Init {
                message,
                exit_code: code,
            });
        }
        if let Some(pf) = &opts.pid_file {
            state::write_atomic(pf, pid.as_raw().to_string().as_bytes())
                .map_err(|e| Error::io(format!("write pid file {}", pf.display()), e))?;
        }
        Ok(pid)
    }

    /// Every container under the root.
    pub fn list(&self) -> Result<Vec<State>, Error> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(format!("read {}", self.root.display()), e)),
        };
        for e in rd.flatten() {
            let dir = e.path();
            if !dir.join(state::STATE_FILE).exists() {
                continue;
            }
            if let Ok(p) = Persisted::load(&dir) {
                out.push(p.current(&dir));
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }
}

/// For each spec mount (same index), the user namespace of an idmapped mount: a mount with the
/// `idmap`/`ridmap` option or its own `uidMappings`/`gidMappings` (oci-spec does not parse
/// those, so they are read from the raw config). Without its own mappings the container's
/// `linux.uidMappings`/`gidMappings` are used.
fn idmap_namespaces(
    cfg: &Path,
    linux: &oci_spec::runtime::Linux,
) -> Result<Vec<Option<OwnedFd>>, Error> {
    let raw: serde_json::Value = std::fs::read(cfg)
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    let fmt_v = |v: &serde_json::Value| -> String {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                format!(
                    "{} {} {}\n",
                    m["containerID"].as_u64().unwrap_or(0),
                    m["hostID"].as_u64().unwrap_or(0),
                    m["size"].as_u64().unwrap_or(0)
                )
            })
            .collect()
    };
    let fmt_spec = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> String {
        m.iter()
            .flatten()
            .map(|x| format!("{} {} {}\n", x.container_id(), x.host_id(), x.size()))
            .collect()
    };
    let mut out = Vec::new();
    for mt in raw["mounts"].as_array().into_iter().flatten() {
        let opts: Vec<&str> = mt["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.as_str())
            .collect();
        let wants = opts.iter().any(|o| *o == "idmap" || *o == "ridmap")
            || mt.get("uidMappings").is_some()
            || mt.get("gidMappings").is_some();
        if !wants {
            out.push(None);
            continue;
        }
        let dest = mt["destination"].as_str().unwrap_or("?");
        let (mut u, mut g) = (fmt_v(&mt["uidMappings"]), fmt_v(&mt["gidMappings"]));
        if u.is_empty() && g.is_empty() {
            u = fmt_spec(linux.uid_mappings());
            g = fmt_spec(linux.gid_mappings());
        }
        if u.is_empty() || g.is_empty() {
            return Err(Error::InvalidSpec(format!(
                "idmapped mount to {dest} needs uidMappings and gidMappings"
            )));
        }
        let fd = berth_sys::userns_with_maps(&u, &g)
            .map_err(|e| Error::io(format!("user namespace for idmapped mount to {dest}"), e))?;
        out.push(Some(fd));
    }
    Ok(out)
}

/// Hands the seccomp notify fd to `linux.seccomp.listenerPath` with runc's container process
/// state message (`{"ociVersion","fds":["seccompFd"],"pid","metadata","state"}`).
fn send_to_seccomp_listener(
    linux: &oci_spec::runtime::Linux,
    spec: &Spec,
    id: &str,
    pid: Pid,
    bundle: &Path,
    fd: OwnedFd,
) -> Result<(), Error> {
    let s = linux.seccomp().clone().unwrap_or_default();
    let path = s.listener_path().clone().ok_or_else(|| {
        Error::InvalidSpec("SCMP_ACT_NOTIFY requires linux.seccomp.listenerPath".into())
    })?;
    let msg = serde_json::json!({
        "ociVersion": spec.version(),
        "fds": ["seccompFd"],
        "pid": pid.as_raw(),
        "metadata": s.listener_metadata().clone().unwrap_or_default(),
        "state": {
            "ociVersion": spec.version(),
            "id": id,
            "status": "creating",
            "pid": pid.as_raw(),
            "bundle": bundle,
            "annotations": spec.annotations().clone().unwrap_or_default(),
        }
    });
    let sock = std::os::unix::net::UnixStream::connect(&path)
        .map_err(|e| Error::io(format!("connect seccomp listener {}", path.display()), e))?;
    berth_sys::send_fd(sock.as_fd(), fd.as_fd(), msg.to_string().as_bytes())
        .map_err(|e| Error::io("send seccomp fd to listener", e))
}

fn write_id_maps(pid: Pid, linux: &oci_spec::runtime::Linux) -> Result<(), Error> {
    let fmt = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.iter()
            .flatten()
            .map(|x| format!("{} {} {}\n", x.container_id(), x.host_id(), x.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.uid_mappings());
    let gid = fmt(linux.gid_mappings());
    if uid.is_empty() || gid.is_empty() {
        return Err(Error::InvalidSpec(
            "user namespace requires uidMappings and gidMappings".into(),
        ));
    }
    for (f, v) in [("uid_map", uid), ("gid_map", gid)] {
        let path = format!("/proc/{}/{f}", pid.as_raw());
        std::fs::write(&path, v).map_err(|e| Error::io(format!("write {path}"), e))?;
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// Annotations type re-export for callers building states.
pub type Annotations = HashMap<String, String>;
