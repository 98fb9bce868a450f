//! Root file system setup, run inside the container init (new mount namespace).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_sys::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};

use crate::cgroups::Hierarchy;

/// Error inside init: text sent to the parent.
pub(crate) type InitResult<T> = Result<T, String>;

fn m(what: String) -> impl FnOnce(nix::Error) -> String {
    move |e| format!("{what}: {}", crate::error::errno_text(e))
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("{what}: {}", crate::error::io_text(&e))
}

/// Parsed mount options.
#[derive(Debug, PartialEq)]
pub(crate) struct MountOpts {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
}

pub(crate) fn parse_options(opts: &[String]) -> MountOpts {
    let mut o = MountOpts {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: Vec::new(),
    };
    for opt in opts {
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.propagation
                    .push(propagation_flag(opt).unwrap_or(MsFlags::empty()));
                continue;
            }
            _ => {
                o.data.push(opt.clone());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    o
}

pub(crate) fn propagation_flag(s: &str) -> Option<MsFlags> {
    Some(match s {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Flags of an existing mount that a bind remount must keep (they may be locked).
fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let mut f = MsFlags::empty();
    if let Ok(st) = statvfs(path) {
        let fl = st.flags();
        for (a, b) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if fl.contains(a) {
                f |= b;
            }
        }
    }
    f
}

fn open_rootfs(rootfs: &Path) -> InitResult<std::fs::File> {
    std::fs::File::open(rootfs).map_err(io(format!("open rootfs {}", rootfs.display())))
}

/// Checks that an fd-resolved path really lies inside `rootfs` (the checked fallback behind
/// openat2 RESOLVE_IN_ROOT).
fn verify_inside(rootfs: &Path, fd: &OwnedFd, dest: &Path) -> InitResult<()> {
    let real = std::fs::read_link(berth_sys::proc_fd_path(fd.as_fd()))
        .map_err(io(format!("readlink of {}", dest.display())))?;
    if !real.starts_with(rootfs) {
        return Err(format!(
            "mount destination {} resolves to {} outside the rootfs",
            dest.display(),
            real.display()
        ));
    }
    Ok(())
}

/// Creates (a directory, or a file when `dir` is false) and opens `dest` inside `rootfs` with
/// fd-based resolution (symlinks cannot leave the rootfs); a symlink that tries to climb out
/// of the rootfs with `..` is an error. Returns an `O_PATH` descriptor.
fn target_fd(rootfs: &Path, dest: &Path, dir: bool) -> InitResult<OwnedFd> {
    let root = open_rootfs(rootfs)?;
    let (_, escaped) = berth_sys::resolve_in_root_checked(root.as_fd(), dest)
        .map_err(io(format!("resolve {}", dest.display())))?;
    if escaped {
        return Err(format!(
            "mount destination {} is a symlink that escapes the rootfs",
            dest.display()
        ));
    }
    let fd = if dir {
        berth_sys::mkdir_all_in_root(root.as_fd(), dest, 0o755)
    } else {
        berth_sys::create_file_in_root(root.as_fd(), dest, 0o644)
    }
    .map_err(io(format!("create mount destination {}", dest.display())))?;
    verify_inside(rootfs, &fd, dest)?;
    Ok(fd)
}

/// Re-opens `dest` (after something was mounted on it, to reach the new mount).
fn reopen_target(rootfs: &Path, dest: &Path) -> InitResult<OwnedFd> {
    let root = open_rootfs(rootfs)?;
    let fd = berth_sys::open_in_root(root.as_fd(), dest, libc::O_PATH, 0)
        .map_err(io(format!("open {}", dest.display())))?;
    verify_inside(rootfs, &fd, dest)?;
    Ok(fd)
}

fn fdp(fd: &OwnedFd) -> PathBuf {
    berth_sys::proc_fd_path(fd.as_fd())
}

/// Everything before pivot_root.
pub(crate) struct RootfsCtx<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup_dirs: &'a [(Hierarchy, PathBuf)],
    pub in_userns: bool,
    /// Per spec mount (same index): the user namespace of an idmapped mount.
    pub idmaps: &'a [Option<OwnedFd>],
}

pub(crate) fn prepare(ctx: &RootfsCtx<'_>) -> InitResult<()> {
    let linux = ctx.spec.linux().clone().unwrap_or_default();
    let prop = match linux.rootfs_propagation().as_deref() {
        Some(p) => propagation_flag(p).ok_or_else(|| format!("invalid rootfsPropagation {p:?}"))?,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    // Stop our mounts from propagating to the host (shared -> slave by default).
    let root_prop = if prop.contains(MsFlags::MS_SHARED) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else {
        prop
    };
    mount(None::<&str>, "/", None::<&str>, root_prop, None::<&str>)
        .map_err(m("make / private".into()))?;
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(m(format!("bind rootfs {}", ctx.rootfs.display())))?;
    let mounts = ctx.spec.mounts().clone().unwrap_or_default();
    let dev_is_bind = mounts.iter().any(|mt| {
        mt.destination() == Path::new("/dev")
            && mt
                .options()
                .as_ref()
                .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
    });
    for (i, mt) in mounts.iter().enumerate() {
        match ctx.idmaps.get(i).and_then(Option::as_ref) {
            Some(userns) => mount_idmapped(ctx, mt, userns)?,
            None => mount_one(ctx, mt)?,
        }
    }
    if !dev_is_bind {
        create_devices(ctx)?;
    }
    Ok(())
}

fn mount_one(ctx: &RootfsCtx<'_>, mt: &Mount) -> InitResult<()> {
    let opts = parse_options(mt.options().as_deref().unwrap_or(&[]));
    let typ = mt.typ().clone().unwrap_or_default();
    let dest = mt.destination();
    if !dest.is_absolute() {
        return Err(format!(
            "mount destination {} is not absolute",
            dest.display()
        ));
    }
    let what = format!(
        "mount {} to {}",
        mt.source().as_deref().unwrap_or(Path::new(&typ)).display(),
        dest.display()
    );
    if opts.flags.contains(MsFlags::MS_BIND) || typ == "bind" {
        let mut src = mt
            .source()
            .clone()
            .ok_or_else(|| format!("{what}: bind mount without source"))?;
        if src.is_relative() {
            src = ctx.bundle.join(src);
        }
        let meta =
            std::fs::metadata(&src).map_err(io(format!("{what}: stat {}", src.display())))?;
        let fd = target_fd(ctx.rootfs, dest, meta.is_dir())?;
        let rec = opts.flags & MsFlags::MS_REC;
        mount(
            Some(&src),
            &fdp(&fd),
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .map_err(m(what.clone()))?;
        let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            let fd = reopen_target(ctx.rootfs, dest)?;
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | locked_flags(&fdp(&fd));
            mount(None::<&str>, &fdp(&fd), None::<&str>, flags, None::<&str>)
                .map_err(m(format!("{what}: remount")))?;
        }
    } else if typ == "cgroup" || typ == "cgroup2" {
        mount_cgroups(ctx, dest, &opts).map_err(|e| format!("{what}: {e}"))?;
    } else {
        let fd = target_fd(ctx.rootfs, dest, true)?;
        let target = fdp(&fd);
        let data = opts.data.join(",");
        let data = if data.is_empty() {
            None
        } else {
            Some(data.as_str())
        };
        let src = mt.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
        let res = mount(Some(&src), &target, Some(typ.as_str()), opts.flags, data);
        match res {
            Ok(()) => {}
            // sysfs cannot be mounted without a private netns in a user namespace: bind it.
            Err(nix::Error::EPERM) if typ == "sysfs" => {
                mount(
                    Some("/sys"),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(m(what.clone()))?;
                let fd = reopen_target(ctx.rootfs, dest)?;
                let f = MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | locked_flags(&fdp(&fd));
                let _ = mount(None::<&str>, &fdp(&fd), None::<&str>, f, None::<&str>);
            }
            Err(e) => return Err(m(what)(e)),
        }
    }
    if !opts.propagation.is_empty() {
        let fd = reopen_target(ctx.rootfs, dest)?;
        for p in &opts.propagation {
            mount(None::<&str>, &fdp(&fd), None::<&str>, *p, None::<&str>)
                .map_err(m(format!("set propagation of {}", dest.display())))?;
        }
    }
    Ok(())
}

/// An idmapped bind mount: the source tree is cloned (open_tree), idmapped through `userns`
/// (mount_setattr MOUNT_ATTR_IDMAP) and attached to the fd-resolved target (move_mount).
fn mount_idmapped(ctx: &RootfsCtx<'_>, mt: &Mount, userns: &OwnedFd) -> InitResult<()> {
    let opts = parse_options(mt.options().as_deref().unwrap_or(&[]));
    let dest = mt.destination();
    let what = format!("idmapped mount to {}", dest.display());
    if !dest.is_absolute() {
        return Err(format!("{what}: destination is not absolute"));
    }
    let mut src = mt
        .source()
        .clone()
        .ok_or_else(|| format!("{what}: no source"))?;
    if src.is_relative() {
        src = ctx.bundle.join(src);
    }
    let recursive = opts.flags.contains(MsFlags::MS_REC) || opts.data.iter().any(|o| o == "ridmap");
    let meta = std::fs::metadata(&src).map_err(io(format!("{what}: stat {}", src.display())))?;
    let tree = berth_sys::open_tree_clone(&src, recursive)
        .map_err(io(format!("{what}: open_tree {}", src.display())))?;
    berth_sys::mount_setattr_idmap(tree.as_fd(), userns.as_fd(), recursive)
        .map_err(io(format!("{what}: mount_setattr")))?;
    let fd = target_fd(ctx.rootfs, dest, meta.is_dir())?;
    berth_sys::move_mount_to_fd(tree.as_fd(), fd.as_fd())
        .map_err(io(format!("{what}: move_mount")))?;
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        let fd = reopen_target(ctx.rootfs, dest)?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | locked_flags(&fdp(&fd));
        mount(None::<&str>, &fdp(&fd), None::<&str>, flags, None::<&str>)
            .map_err(m(format!("{what}: remount")))?;
    }
    if !opts.propagation.is_empty() {
        let fd = reopen_target(ctx.rootfs, dest)?;
        for p in &opts.propagation {
            mount(None::<&str>, &fdp(&fd), None::<&str>, *p, None::<&str>)
                .map_err(m(format!("set propagation of {}", dest.display())))?;
        }
    }
    Ok(())
}

/// Makes the container's own cgroups visible at `dest` (bind mounts of its cgroup dirs).
fn mount_cgroups(ctx: &RootfsCtx<'_>, dest: &Path, opts: &MountOpts) -> InitResult<()> {
    let fd = target_fd(ctx.rootfs, dest, true)?;
    let base = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let ro = opts.flags & MsFlags::MS_RDONLY;
    let pure_v2 = ctx.cgroup_dirs.iter().all(|(h, _)| h.v2);
    if pure_v2 {
        if let Some((_, dir)) = ctx.cgroup_dirs.first() {
            mount(
                Some(dir),
                &fdp(&fd),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(m("bind cgroup2".into()))?;
            let fd = reopen_target(ctx.rootfs, dest)?;
            let _ = mount(
                None::<&str>,
                &fdp(&fd),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | base | ro | locked_flags(&fdp(&fd)),
                None::<&str>,
            );
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &fdp(&fd),
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .map_err(m("mount tmpfs".into()))?;
    let top = reopen_target(ctx.rootfs, dest)?;
    for (h, dir) in ctx.cgroup_dirs {
        // Like runc on hybrid hosts: only the v1 hierarchies are shown.
        if h.v2 {
            continue;
        }
        let Some(name) = h.mount.file_name() else {
            continue;
        };
        let sub = dest.join(name);
        let sfd = target_fd(ctx.rootfs, &sub, true)?;
        mount(
            Some(dir),
            &fdp(&sfd),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(m(format!("bind {}", dir.display())))?;
        let sfd = reopen_target(ctx.rootfs, &sub)?;
        let _ = mount(
            None::<&str>,
            &fdp(&sfd),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | base | ro | locked_flags(&fdp(&sfd)),
            None::<&str>,
        );
        let n = name.to_string_lossy();
        if n.contains(',') {
            for c in n.split(',') {
                let _ = nix::unistd::symlinkat(&*n, Some(top.as_raw_fd()), c);
            }
        }
    }
    // Like runc, the tmpfs itself stays writable (only the hierarchies are read-only); it
    // lives in the container's mount namespace only.
    Ok(())
}

const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

#[allow(clippy::too_many_arguments)]
fn make_device(
    ctx: &RootfsCtx<'_>,
    dest: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> InitResult<()> {
    let name = dest
        .file_name()
        .ok_or_else(|| format!("device path {} has no file name", dest.display()))?;
    let parent = target_fd(ctx.rootfs, dest.parent().unwrap_or(Path::new("/")), true)?;
    let _ = nix::unistd::unlinkat(
        Some(parent.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    if ctx.in_userns {
        // mknod is not allowed in a user namespace: bind the host node.
        let fd = target_fd(ctx.rootfs, dest, false)?;
        mount(
            Some(dest),
            &fdp(&fd),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(m(format!("bind device {}", dest.display())))?;
        return Ok(());
    }
    berth_sys::mknod_at(
        parent.as_fd(),
        name,
        kind,
        Mode::from_bits_truncate(mode),
        berth_sys::makedev(major, minor),
    )
    .map_err(io(format!("mknod {}", dest.display())))?;
    let dirfd = Some(parent.as_raw_fd());
    nix::sys::stat::fchmodat(
        dirfd,
        name,
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(m(format!("chmod {}", dest.display())))?;
    nix::unistd::fchownat(
        dirfd,
        name,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(m(format!("chown {}", dest.display())))?;
    Ok(())
}

fn create_devices(ctx: &RootfsCtx<'_>) -> InitResult<()> {
    let devices = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    for (name, major, minor) in DEFAULT_DEVICES {
        let p = PathBuf::from("/dev").join(name);
        if devices.iter().any(|d| d.path() == &p) {
            continue;
        }
        make_device(ctx, &p, SFlag::S_IFCHR, *major, *minor, 0o666, 0, 0)?;
    }
    for d in &devices {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
        make_device(
            ctx,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?;
    }
    let dev = target_fd(ctx.rootfs, Path::new("/dev"), true)?;
    let links: &[(&str, &str)] = &[
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    let dirfd = Some(dev.as_raw_fd());
    for (src, name) in links {
        if *name == "ptmx" {
            let _ = nix::unistd::unlinkat(dirfd, *name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        match nix::unistd::symlinkat(*src, dirfd, *name).map_err(std::io::Error::from) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(format!(
                    "symlink /dev/{}: {}",
                    name,
                    crate::error::io_text(&e)
                ))
            }
        }
    }
    if Path::new("/proc/kcore").exists() {
        let _ = nix::unistd::symlinkat("/proc/kcore", dirfd, "core");
    }
    Ok(())
}

/// Only sysctls that belong to a namespace the container has may be set (others would change
/// the host), like runc.
fn check_sysctl_namespaced(key: &str, linux: &oci_spec::runtime::Linux) -> InitResult<()> {
    use oci_spec::runtime::LinuxNamespaceType as T;
    let has = |t: T| linux.namespaces().iter().flatten().any(|n| n.typ() == t);
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let ok = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        has(T::Ipc)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        has(T::Uts)
    } else if key.starts_with("net.") {
        has(T::Network)
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "sysctl {key:?} is not in a separate kernel namespace (it would change the host)"
        ))
    }
}

/// Switches the root to `rootfs` (pivot_root, or MS_MOVE + chroot with `no_pivot`).
pub(crate) fn switch_root(rootfs: &Path, no_pivot: bool) -> InitResult<()> {
    nix::unistd::chdir(rootfs).map_err(m(format!("chdir {}", rootfs.display())))?;
    if no_pivot {
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(m("move rootfs to /".into()))?;
        nix::unistd::chroot(".").map_err(m("chroot".into()))?;
    } else {
        let old_root = std::fs::File::open("/").map_err(io("open old root".into()))?;
        berth_sys::pivot_root(".", ".").map_err(m("pivot_root".into()))?;
        // The old root is now stacked on top of the new one: detach it without propagating.
        // Work on it through an fd (like runc): after pivot_root "." may still be the new root,
        // and making *that* rslave would turn the container's shared mounts private.
        nix::unistd::fchdir(old_root.as_raw_fd()).map_err(m("fchdir old root".into()))?;
        drop(old_root);
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(m("make old root rslave".into()))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(m("unmount old root".into()))?;
    }
    nix::unistd::chdir("/").map_err(m("chdir /".into()))?;
    Ok(())
}

/// After the root switch: masked and read-only paths, read-only root, root propagation.
pub(crate) fn finish(spec: &Spec) -> InitResult<()> {
    let linux = spec.linux().clone().unwrap_or_default();
    // linux.sysctl, written before /proc/sys becomes read-only.
    let mut sysctls: Vec<(String, String)> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctls.sort();
    for (k, v) in sysctls {
        if k.is_empty() || k.contains("..") || k.contains('/') && k.contains('.') {
            return Err(format!("invalid sysctl key {k:?}"));
        }
        check_sysctl_namespaced(&k, &linux)?;
        let path = Path::new("/proc/sys").join(k.replace('.', "/"));
        std::fs::write(&path, v.as_bytes()).map_err(io(format!("write sysctl {k}={v}")))?;
    }
    for p in linux.masked_paths().clone().unwrap_or_default() {
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(md) => md,
            Err(_) => continue,
        };
        let res = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                p.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some("/dev/null"),
                p.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        res.map_err(m(format!("mask {p}")))?;
    }
    for p in linux.readonly_paths().clone().unwrap_or_default() {
        if std::fs::symlink_metadata(&p).is_err() {
            continue;
        }
        mount(
            Some(p.as_str()),
            p.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(m(format!("bind {p}")))?;
        let f = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | locked_flags(Path::new(&p));
        mount(None::<&str>, p.as_str(), None::<&str>, f, None::<&str>)
            .map_err(m(format!("make {p} read-only")))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let f = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | locked_flags(Path::new("/"));
        mount(None::<&str>, "/", None::<&str>, f, None::<&str>)
            .map_err(m("make root read-only".into()))?;
    }
    if let Some(p) = linux
        .rootfs_propagation()
        .as_deref()
        .and_then(propagation_flag)
    {
        // Only the root mount itself: the mounts' own propagation options must survive (runc
        // does the same).
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            p - MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(m("set rootfs propagation".into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_flags_propagation_and_data() {
        let o = parse_options(&[
            "rbind".into(),
            "ro".into(),
            "rprivate".into(),
            "mode=755".into(),
            "nosuid".into(),
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.data, vec!["mode=755".to_string()]);
        let o = parse_options(&["ro".into(), "rw".into()]);
        assert!(o.flags.is_empty());
    }
}
