//! Network namespaces as files: created by a short-lived thread that `unshare`s and
//! bind-mounts its namespace on the file, as `ip netns add` does, so the namespace outlives
//! every process and the daemon can configure it before the container starts.

use std::fs::File;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::NetError;

fn io(what: &str, e: impl std::fmt::Display) -> NetError {
    NetError::Sys(format!("{what}: {e}"))
}

/// Creates a new network namespace bound at `path` (its parent must exist).
pub fn create(path: &Path) -> Result<(), NetError> {
    File::create(path).map_err(|e| io(&format!("create {}", path.display()), e))?;
    let p = path.to_path_buf();
    let r = std::thread::spawn(move || -> Result<(), NetError> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| io("unshare(CLONE_NEWNET)", e))?;
        let tid = nix::unistd::gettid();
        let src = format!("/proc/self/task/{tid}/ns/net");
        mount(
            Some(src.as_str()),
            &p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| io(&format!("bind {src} on {}", p.display()), e))
    })
    .join()
    .map_err(|_| NetError::Sys("netns thread panicked".into()))?;
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Unmounts and removes a namespace file (missing: nothing to do).
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// Runs `f` on a fresh thread that has joined the namespace at `path`; sockets it creates
/// stay in that namespace.
pub fn run_in<R: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, NetError> {
    let fd = File::open(path).map_err(|e| io(&format!("open {}", path.display()), e))?;
    std::thread::spawn(move || -> Result<R, NetError> {
        setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| io("setns", e))?;
        Ok(f())
    })
    .join()
    .map_err(|_| NetError::Sys("netns thread panicked".into()))?
}
