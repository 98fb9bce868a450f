//! berth-sys: the only Berth crate allowed to use `unsafe`.
//!
//! Thin, safe wrappers around the Linux system calls the runtime, the shim and the engine need.
//! Where `nix` already offers a safe wrapper, it is re-exported instead of re-wrapped.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use nix::mount::{mount, umount2, MntFlags, MsFlags};
pub use nix::sched::{setns, unshare, CloneFlags};
pub use nix::sys::stat::{makedev, mknod, Mode, SFlag};
pub use nix::unistd::{pivot_root, Pid};

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn nix_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Clones a child process into the new namespaces given by `flags` (any `CLONE_NEW*` flags),
/// fork-style: the child gets a copy-on-write copy of the caller's memory and file table and runs
/// `child`; its return value becomes the child's exit code (a panic exits with 255).
/// Returns the child's pid (as seen from the caller's PID namespace) in the parent.
///
/// The caller should be single-threaded: as with `fork`, only the calling thread exists in the
/// child, so locks held by other threads at the time of the call stay locked there.
pub fn clone_into_namespaces<F: FnOnce() -> i32>(flags: CloneFlags, child: F) -> io::Result<Pid> {
    let raw_flags = (flags.bits() as libc::c_ulong) | (libc::SIGCHLD as libc::c_ulong);
    // SAFETY: clone(2) without CLONE_VM and with a NULL stack behaves like fork(2): the child runs
    // on a copy-on-write copy of this thread's stack and returns from the syscall with 0. No
    // pointers are passed to the kernel (parent_tid/child_tid/tls are NULL/0 and no flags that
    // use them are set).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            raw_flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if ret == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(255);
        exit_immediately(code);
    }
    Ok(Pid::from_raw(ret as i32))
}

/// Forks the calling process (see `clone_into_namespaces` with no namespace flags).
pub fn fork_child<F: FnOnce() -> i32>(child: F) -> io::Result<Pid> {
    clone_into_namespaces(CloneFlags::empty(), child)
}

/// Terminates the calling process at once with `code`, without running atexit handlers or
/// flushing stdio buffers (what a forked child must do).
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit(2) never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Joins the namespace at `path` (e.g. `/proc/123/ns/net`); `nstype` may be empty (any type).
pub fn setns_path(path: &Path, nstype: CloneFlags) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    setns(f.as_fd(), nstype).map_err(nix_err)
}

/// Marks this process a child subreaper (orphaned descendants are reparented to it).
pub fn set_child_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(nix_err)
}

/// Sets `PR_SET_NO_NEW_PRIVS`.
pub fn set_no_new_privs() -> io::Result<()> {
    nix::sys::prctl::set_no_new_privs().map_err(nix_err)
}

/// Sets (or clears with `None`) the signal delivered when the parent dies.
pub fn set_pdeathsig(sig: Option<nix::sys::signal::Signal>) -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(sig).map_err(nix_err)
}

/// Sets `PR_SET_KEEPCAPS`.
pub fn set_keepcaps(keep: bool) -> io::Result<()> {
    nix::sys::prctl::set_keepcaps(keep).map_err(nix_err)
}

/// Marks every file descriptor >= `first` close-on-exec (close_range(2) with
/// `CLOSE_RANGE_CLOEXEC`, falling back to walking `/proc/self/fd`).
pub fn mark_cloexec_from(first: RawFd) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes flags of this process's descriptors; no pointers passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<RawFd>().ok())
        {
            if fd >= first {
                fds.push(fd);
            }
        }
    }
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD on an integer descriptor; a stale one just yields EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

/// Closes every file descriptor >= `first` (close_range(2), with a `/proc/self/fd` fallback).
pub fn close_from(first: RawFd) -> io::Result<()> {
    // SAFETY: closing descriptors of this process; the caller owns the whole range by contract.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: see above.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// Opens `path` as if `root` were the root directory (openat2 with `RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS`): `..` and absolute symlinks cannot escape `root`. `flags` are
/// `open(2)` flags (`O_CLOEXEC` is always added). Falls back to a userspace component-by-component
/// resolution (`O_NOFOLLOW` at each step, symlinks resolved against `root`) on kernels without
/// openat2.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `c` is a valid NUL-terminated string and `how` a valid open_how of the given size;
    // both outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if ret >= 0 {
        // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    open_in_root_fallback(root, path, flags, mode)
}

fn openat_raw(dir: RawFd, name: &OsStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: valid C string, plain integer arguments.
    let fd = unsafe {
        libc::openat(
            dir,
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_in_root_fallback(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let resolved = resolve_in_root_path(root, path)?;
    let rel = resolved.strip_prefix("/").unwrap_or(&resolved);
    let name = if rel.as_os_str().is_empty() {
        OsStr::new(".")
    } else {
        rel.as_os_str()
    };
    openat_raw(root.as_raw_fd(), name, flags | libc::O_NOFOLLOW, mode)
}

/// Resolves `path` inside `root` (symlinks are followed but interpreted relative to `root`, `..`
/// cannot go above it), returning a clean absolute path relative to `root`. The last component
/// need not exist.
pub fn resolve_in_root_path(root: BorrowedFd<'_>, path: &Path) -> io::Result<std::path::PathBuf> {
    resolve_in_root_checked(root, path).map(|(p, _)| p)
}

/// Like `resolve_in_root_path`, and also reports whether a symlink on the way tried to climb
/// above `root` with `..` (an escape attempt, clamped at `root`).
pub fn resolve_in_root_checked(
    root: BorrowedFd<'_>,
    path: &Path,
) -> io::Result<(std::path::PathBuf, bool)> {
    use std::path::{Component, PathBuf};
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    let mut escaped = false;
    // Components still to come from the caller's own path (not from symlink targets).
    let mut own = pending.len();
    while let Some(comp) = pending.pop() {
        let from_link = pending.len() >= own;
        if !from_link {
            own = pending.len();
        }
        if comp == ".." {
            if out.pop().is_none() && from_link {
                escaped = true;
            }
            continue;
        }
        let mut candidate: PathBuf = out.iter().collect();
        candidate.push(&comp);
        let rel = candidate.as_os_str();
        let c = CString::new(rel.as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: valid C string and a buffer of the stated length.
        let n = unsafe {
            libc::readlinkat(
                root.as_raw_fd(),
                c.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            // Not a symlink (EINVAL) or missing (ENOENT): take it literally.
            out.push(comp);
            continue;
        }
        links += 1;
        if links > 40 {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        buf.truncate(n as usize);
        let target = PathBuf::from(OsStr::from_bytes(&buf));
        if target.is_absolute() {
            out.clear();
        }
        for c in target.components().rev() {
            match c {
                Component::Normal(n) => pending.push(n.to_os_string()),
                Component::ParentDir => pending.push("..".into()),
                _ => {}
            }
        }
    }
    let mut p = PathBuf::from("/");
    p.extend(out);
    Ok((p, escaped))
}

/// Mounts an overlay filesystem at `target`.
pub fn mount_overlay(
    lowerdirs: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<()> {
    if lowerdirs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "overlay needs at least one lowerdir",
        ));
    }
    let lower: Vec<String> = lowerdirs.iter().map(|p| p.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(nix_err)
}

/// Unmounts `target` (lazily with `detach`).
pub fn unmount(target: &Path, detach: bool) -> io::Result<()> {
    let flags = if detach {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    umount2(target, flags).map_err(nix_err)
}

/// Sets the NIS domain name (setdomainname(2)).
pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe the bytes of `name`, valid for the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets a resource limit by its raw `RLIMIT_*` number.
pub fn set_rlimit(resource: i32, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit that outlives the call.
    let ret = unsafe { libc::setrlimit(resource as _, &lim) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `fd` (a terminal) the controlling terminal of this session (TIOCSCTTY).
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; no memory is passed.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets a terminal's window size (TIOCSWINSZ).
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct that outlives the call.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A terminal's window size (TIOCGWINSZ) as (rows, cols).
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize struct into `ws`, which outlives the call.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((ws.ws_row, ws.ws_col))
}

/// Resets every catchable signal to its default disposition and unblocks all signals (what a
/// process must do before exec'ing a workload: Rust ignores SIGPIPE, and ignored signals survive
/// exec).
pub fn reset_signals() -> io::Result<()> {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || (32..=33).contains(&sig) {
            continue;
        }
        // SAFETY: installing SIG_DFL never runs user code; invalid numbers just return EINVAL.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let empty = nix::sys::signal::SigSet::empty();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    )
    .map_err(nix_err)
}

/// Opens a pidfd for `pid` (pidfd_open(2)).
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Sends `fd` over the Unix socket `sock` with SCM_RIGHTS, with `payload` as the data bytes.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>, payload: &[u8]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [io::IoSlice::new(if payload.is_empty() {
        b"\0"
    } else {
        payload
    })];
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).map_err(nix_err)?;
    Ok(())
}

/// Receives one fd sent with `send_fd`; returns it with the data bytes.
pub fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<(OwnedFd, Vec<u8>)> {
    let (buf, fd) = recv_msg_fd(sock)?;
    let fd = fd.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no fd received"))?;
    Ok((fd, buf))
}

/// Receives one message (up to 64 KiB) and the fd it carries, if any (SCM_RIGHTS,
/// close-on-exec). An empty message with no fd means the peer closed the socket.
pub fn recv_msg_fd(sock: BorrowedFd<'_>) -> io::Result<(Vec<u8>, Option<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 65536];
    let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
    let (n, fd) = {
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(nix_err)?;
        let mut fd = None;
        for c in msg.cmsgs().map_err(nix_err)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                fd = fds.first().copied();
            }
        }
        (msg.bytes, fd)
    };
    buf.truncate(n);
    // SAFETY: the kernel installed this descriptor for us via SCM_RIGHTS; nothing else owns it.
    Ok((buf, fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })))
}

const SEALS_WANTED: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// The seals of the file behind `fd` (F_GET_SEALS); 0 for files that do not support sealing.
pub fn get_seals(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: F_GET_SEALS takes no argument beyond the descriptor.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINVAL) {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(ret)
}

/// Whether the running executable is a sealed memfd (write, grow, shrink and seal sealed).
pub fn running_from_sealed_memfd() -> bool {
    match std::fs::File::open("/proc/self/exe") {
        Ok(f) => get_seals(f.as_fd()).is_ok_and(|s| s & SEALS_WANTED == SEALS_WANTED),
        Err(_) => false,
    }
}

/// Creates a memfd (`MFD_CLOEXEC | MFD_ALLOW_SEALING`).
pub fn memfd_create(name: &str) -> io::Result<OwnedFd> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in memfd name"))?;
    // SAFETY: valid C string; flags are plain integers.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds `F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE` to a memfd.
pub fn seal_memfd(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_ADD_SEALS takes an integer argument.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS_WANTED) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Executes the program in `fd` (execveat with AT_EMPTY_PATH) with the current arguments and
/// environment. Returns only on failure.
pub fn fexecve_self_args(fd: BorrowedFd<'_>) -> io::Error {
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).ok()
        })
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let empty = c"";
    // SAFETY: argv/envp are NULL-terminated arrays of valid C strings that outlive the call;
    // execveat only returns on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// Protects the running binary against being overwritten from a container (the
/// CVE-2019-5736 class): unless the process already runs from a sealed memfd, copies
/// `/proc/self/exe` into a memfd, seals it (`F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE`)
/// and re-executes itself from it with the same arguments and environment.
/// Returns only on failure (or when already sealed, with Ok).
pub fn reexec_from_sealed_memfd(name: &str) -> io::Result<()> {
    if running_from_sealed_memfd() {
        return Ok(());
    }
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    let mem = memfd_create(name)?;
    let mut out = std::fs::File::from(mem);
    io::copy(&mut exe, &mut out)?;
    drop(exe);
    seal_memfd(out.as_fd())?;
    Err(fexecve_self_args(out.as_fd()))
}

/// A sealed memfd copy of the executable at `path` (write, grow, shrink and seal sealed).
/// Executing it (`/proc/self/fd/N` or execveat) runs a binary that no process can modify, so a
/// daemon can keep one copy and start every monitor from it instead of copying per start.
pub fn sealed_copy(path: &Path, name: &str) -> io::Result<OwnedFd> {
    let mut exe = std::fs::File::open(path)?;
    let mem = memfd_create(name)?;
    let mut out = std::fs::File::from(mem);
    io::copy(&mut exe, &mut out)?;
    seal_memfd(out.as_fd())?;
    Ok(OwnedFd::from(out))
}

/// What [`fork_single_threaded`] returns in each process.
pub enum Forked {
    Parent(i32),
    Child,
}

/// `fork()`, refused unless the calling process has exactly one thread (then the child is a
/// faithful copy: no lock can be held by a thread that does not exist in the child).
pub fn fork_single_threaded() -> io::Result<Forked> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::new(
            io::ErrorKind::Other,
            format!("fork refused: the process has {threads} threads"),
        ));
    }
    // SAFETY: the process is single-threaded (checked above), so the child may run any code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Creates directory `path` and its missing parents inside `root` (each step resolved with
/// `open_in_root`, so symlinks cannot leave `root`) and returns an `O_PATH` descriptor of it.
pub fn mkdir_all_in_root(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    use std::path::{Component, PathBuf};
    // Resolve existing symlinks (contained in root) first, so dangling ones get their target
    // created inside root; every step is then re-opened with openat2 RESOLVE_IN_ROOT.
    let resolved = resolve_in_root_path(root, path)?;
    let mut cur = PathBuf::from("/");
    let mut fd = open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    for c in resolved.components() {
        let name = match c {
            Component::Normal(n) => n,
            _ => continue,
        };
        cur.push(name);
        match open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY, 0) {
            Ok(f) => fd = f,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let cn = CString::new(name.as_bytes())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
                // SAFETY: valid C string, integer arguments.
                let r = unsafe { libc::mkdirat(fd.as_raw_fd(), cn.as_ptr(), mode) };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(e);
                    }
                }
                fd = open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY, 0)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(fd)
}

/// Creates (if missing) the regular file `path` inside `root`, parents included, and returns an
/// `O_PATH` descriptor of whatever `path` resolves to inside `root`.
pub fn create_file_in_root(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    match open_in_root(root, path, libc::O_PATH, 0) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = mkdir_all_in_root(root, parent, 0o755)?;
    // An O_PATH directory descriptor is a valid dirfd for openat.
    let dirfd = dir;
    // O_NOFOLLOW|O_CREAT: a dangling symlink planted as the last component is not followed.
    let f = openat_raw(
        dirfd.as_raw_fd(),
        name,
        libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW,
        mode,
    );
    match f {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {}
        Err(e) => return Err(e),
    }
    open_in_root(root, path, libc::O_PATH, 0)
}

/// Reopens an (`O_PATH`) descriptor with new flags through `/proc/self/fd`.
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let p = proc_fd_path(fd);
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_CLOEXEC)
        .open(p)?
        .into())
}

/// `/proc/self/fd/N` for a descriptor: a path the kernel resolves to exactly that file (used to
/// mount onto an fd-resolved target).
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Creates a device node `name` in directory `dir` (mknodat).
pub fn mknod_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: SFlag,
    perm: Mode,
    dev: u64,
) -> io::Result<()> {
    nix::sys::stat::mknodat(Some(dir.as_raw_fd()), name, kind, perm, dev).map_err(nix_err)
}

use std::os::unix::fs::OpenOptionsExt;

/// Duplicates a raw descriptor handed out by a C library into an `OwnedFd` (close-on-exec);
/// the original stays owned by whoever returned it.
pub fn dup_raw_fd(raw: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an integer descriptor; an invalid one yields EBADF.
    let fd = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets the I/O priority of the calling process (ioprio_set(IOPRIO_WHO_PROCESS, 0, ...)):
/// `class` 1 = RT, 2 = BE, 3 = IDLE; `level` 0..=7.
pub fn set_io_priority(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = ((class & 0x7) << 13) | (level & 0x1fff);
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The I/O priority of the calling process, as (class, level).
pub fn get_io_priority() -> io::Result<(u32, u32)> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(((ret as u32) >> 13, (ret as u32) & 0x1fff))
}

/// Scheduling attributes for `set_scheduler` (sched_setattr(2)).
#[derive(Debug, Clone, Copy, Default)]
pub struct SchedAttr {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

#[repr(C)]
struct RawSchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

/// Sets the scheduling policy and attributes of the calling thread (sched_setattr(2)).
pub fn set_scheduler(a: &SchedAttr) -> io::Result<()> {
    let raw = RawSchedAttr {
        size: std::mem::size_of::<RawSchedAttr>() as u32,
        sched_policy: a.policy,
        sched_flags: a.flags,
        sched_nice: a.nice,
        sched_priority: a.priority,
        sched_runtime: a.runtime,
        sched_deadline: a.deadline,
        sched_period: a.period,
    };
    // SAFETY: `raw` is a valid sched_attr of the size it states and outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw as *const RawSchedAttr, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the execution domain (personality(2)), e.g. `0x0000` PER_LINUX, `0x0008` PER_LINUX32.
pub fn set_personality(persona: u64) -> io::Result<()> {
    // SAFETY: integer argument only.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// dst_reg in the low 4 bits, src_reg in the high 4 bits.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

#[repr(C)]
#[derive(Default)]
struct BpfProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    _pad: [u64; 8],
}

#[repr(C)]
#[derive(Default)]
struct BpfProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _pad: [u32; 11],
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Loads a `BPF_PROG_TYPE_CGROUP_DEVICE` program; on a verifier error the message includes
/// the verifier log.
pub fn bpf_load_cgroup_device_prog(insns: &[BpfInsn]) -> io::Result<OwnedFd> {
    let license = c"Apache";
    let mut log = vec![0u8; 65536];
    let mut attr = BpfProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    attr.prog_name[..7].copy_from_slice(b"berthdv");
    // SAFETY: `attr` is a valid bpf_attr for BPF_PROG_LOAD of the stated size; the pointers in
    // it (instructions, license, log buffer) are valid for the duration of the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const BpfProgLoadAttr,
            std::mem::size_of::<BpfProgLoadAttr>(),
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        let end = log.iter().position(|b| *b == 0).unwrap_or(0);
        if end == 0 {
            return Err(e);
        }
        return Err(io::Error::new(
            e.kind(),
            format!("{e}: {}", String::from_utf8_lossy(&log[..end])),
        ));
    }
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Attaches a device program to a cgroup2 directory (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI).
pub fn bpf_attach_cgroup_device(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let attr = BpfProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid bpf_attr for BPF_PROG_ATTACH of the stated size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const BpfProgAttachAttr,
            std::mem::size_of::<BpfProgAttachAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Clones the mount (tree with `recursive`) at `path` into a detached mount (open_tree(2)
/// with `OPEN_TREE_CLONE`).
pub fn open_tree_clone(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let c = cstr(path)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: valid C string; integer flags.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes a detached mount idmapped through the user namespace `userns` (mount_setattr(2)
/// with `MOUNT_ATTR_IDMAP`).
pub fn mount_setattr_idmap(
    mnt: BorrowedFd<'_>,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> io::Result<()> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let empty = c"";
    // SAFETY: `attr` is a valid mount_attr of the stated size and `empty` a valid C string;
    // both outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attaches the detached mount `mnt` onto the file or directory `target` refers to
/// (move_mount(2) with both paths empty).
pub fn move_mount_to_fd(mnt: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    let empty = c"";
    // SAFETY: valid descriptors and C strings; integer flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates a user namespace with the given `uid_map`/`gid_map` contents (as written to
/// /proc/<pid>/uid_map) and returns a descriptor of it. A short-lived helper child is forked
/// (the caller must be single-threaded), unshares a user namespace, and is killed once its
/// namespace is opened.
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    use nix::sys::signal::{kill, Signal};
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(nix_err)?;
    let (hold_r, hold_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(nix_err)?;
    let (rw, hr) = (ready_w.as_raw_fd(), hold_r.as_raw_fd());
    let pid = fork_child(move || {
        if unshare(CloneFlags::CLONE_NEWUSER).is_err() {
            return 1;
        }
        let mut b = [1u8; 1];
        // SAFETY: `rw`/`hr` are pipe ends inherited from the parent and open in this child;
        // the buffer is valid for one byte.
        unsafe {
            libc::write(rw, b.as_ptr().cast(), 1);
            libc::read(hr, b.as_mut_ptr().cast(), 1);
        }
        0
    })?;
    drop(ready_w);
    drop(hold_r);
    let result = (|| {
        let mut b = [0u8; 1];
        let n = nix::unistd::read(ready_r.as_raw_fd(), &mut b).map_err(nix_err)?;
        if n != 1 {
            return Err(io::Error::other("user namespace helper failed"));
        }
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny").or_else(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
        Ok(OwnedFd::from(std::fs::File::open(format!(
            "/proc/{pid}/ns/user"
        ))?))
    })();
    drop(hold_w);
    let _ = kill(pid, Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
    result
}

/// Joins a new session keyring named `name` (keyctl(KEYCTL_JOIN_SESSION_KEYRING)), so the
/// process stops sharing the caller's session keyring. Returns the new keyring's serial.
pub fn join_new_session_keyring(name: &str) -> io::Result<i64> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in keyring name"))?;
    // SAFETY: valid C string; keyctl reads it during the call only.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c.as_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// Sets a key's permission mask (keyctl(KEYCTL_SETPERM)).
pub fn set_key_perm(serial: i64, perm: u32) -> io::Result<()> {
    const KEYCTL_SETPERM: libc::c_int = 5;
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, serial, perm) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn resolve_in_root_contains_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", d.path().join("a/b/up")).unwrap();
        let root = std::fs::File::open(d.path()).unwrap();
        assert_eq!(
            resolve_in_root_path(root.as_fd(), Path::new("/a/abs/passwd")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            resolve_in_root_path(root.as_fd(), Path::new("a/b/up/x")).unwrap(),
            Path::new("/x")
        );
        assert_eq!(
            resolve_in_root_path(root.as_fd(), Path::new("../../x/./y")).unwrap(),
            Path::new("/x/y")
        );
        assert!(
            resolve_in_root_checked(root.as_fd(), Path::new("a/b/up/x"))
                .unwrap()
                .1
        );
        assert!(
            !resolve_in_root_checked(root.as_fd(), Path::new("../../x"))
                .unwrap()
                .1
        );
        assert!(
            !resolve_in_root_checked(root.as_fd(), Path::new("/a/abs/x"))
                .unwrap()
                .1
        );
    }

    #[test]
    fn open_in_root_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        let root = std::fs::File::open(d.path()).unwrap();
        let fd = open_in_root(root.as_fd(), Path::new("/link"), libc::O_RDONLY, 0).unwrap();
        let got = std::fs::read(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(got, b"inside");
        let fd = open_in_root_fallback(root.as_fd(), Path::new("../../link"), libc::O_RDONLY, 0)
            .unwrap();
        let got = std::fs::read(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(got, b"inside");
    }

    #[test]
    fn mkdir_all_in_root_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("r")).unwrap();
        std::os::unix::fs::symlink(host.path(), d.path().join("r/etc")).unwrap();
        let root = std::fs::File::open(d.path().join("r")).unwrap();
        mkdir_all_in_root(root.as_fd(), Path::new("/etc/a/b"), 0o755).unwrap();
        let fd = create_file_in_root(root.as_fd(), Path::new("/etc/hosts"), 0o644).unwrap();
        let real = std::fs::read_link(proc_fd_path(fd.as_fd())).unwrap();
        assert!(real.starts_with(d.path().join("r")), "{real:?}");
        assert!(std::fs::read_dir(host.path()).unwrap().next().is_none());
        assert!(d
            .path()
            .join("r")
            .join(host.path().strip_prefix("/").unwrap())
            .join("a/b")
            .is_dir());
    }

    #[test]
    fn memfd_seals() {
        let fd = memfd_create("t").unwrap();
        let mut f = std::fs::File::from(fd);
        std::io::Write::write_all(&mut f, b"abc").unwrap();
        seal_memfd(f.as_fd()).unwrap();
        assert_eq!(get_seals(f.as_fd()).unwrap() & SEALS_WANTED, SEALS_WANTED);
        assert!(std::io::Write::write_all(&mut f, b"x").is_err());
        assert!(!running_from_sealed_memfd());
    }

    #[test]
    fn clone_into_new_pid_namespace_is_pid_1() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let pid = clone_into_namespaces(CloneFlags::CLONE_NEWPID, || {
            if nix::unistd::getpid().as_raw() == 1 {
                7
            } else {
                1
            }
        })
        .unwrap();
        let st = nix::sys::wait::waitpid(pid, None).unwrap();
        assert_eq!(st, nix::sys::wait::WaitStatus::Exited(pid, 7));
    }

    #[test]
    fn overlay_mount_and_unmount() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        for s in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir(d.path().join(s)).unwrap();
        }
        std::fs::write(d.path().join("lower/f"), b"x").unwrap();
        let lower = d.path().join("lower");
        mount_overlay(
            &[&lower],
            &d.path().join("upper"),
            &d.path().join("work"),
            &d.path().join("merged"),
        )
        .unwrap();
        let seen = std::fs::read(d.path().join("merged/f"));
        std::fs::write(d.path().join("merged/g"), b"y").unwrap();
        unmount(&d.path().join("merged"), false).unwrap();
        assert_eq!(seen.unwrap(), b"x");
        assert!(d.path().join("upper/g").exists());
        assert!(!d.path().join("merged/f").exists());
    }
}
