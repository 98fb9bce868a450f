//! `docker cp`: HEAD/GET/PUT `/containers/{id}/archive`, with dockerd's semantics.
//!
//! Every path is resolved inside the container's root by file descriptor: the root is
//! `/proc/<pid>/root` for a running container (its mount namespace view, volumes included) or a
//! temporary overlay mount for a stopped one (detached at once: only the fd keeps it alive).
//! Directories are opened with openat2 `RESOLVE_IN_ROOT` (berth_sys::open_in_root) and every
//! entry below them is reached with `*at` calls and `O_NOFOLLOW`, never by joining strings, so a
//! symlink swapped by the container while we copy cannot lead outside its root.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::{Gid, Uid, UnlinkatFlags};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::Engine;

/// `X-Docker-Container-Path-Stat` (base64 of this JSON).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go `os.FileMode` bits.
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    pub fn header_value(&self) -> String {
        b64(&serde_json::to_vec(self).unwrap_or_default())
    }
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Go's `os.FileMode` from a `st_mode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    let fmt = st_mode & libc_s_ifmt();
    m |= match fmt {
        0o040000 => 1 << 31,               // ModeDir
        0o120000 => 1 << 27,               // ModeSymlink
        0o010000 => 1 << 25,               // ModeNamedPipe
        0o140000 => 1 << 24,               // ModeSocket
        0o020000 => (1 << 26) | (1 << 21), // ModeDevice | ModeCharDevice
        0o060000 => 1 << 26,               // ModeDevice
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

const fn libc_s_ifmt() -> u32 {
    0o170000
}

/// Go's `time.Time` JSON: RFC 3339 with the fraction's trailing zeros removed.
pub fn go_time(secs: i64, nanos: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp(secs, nanos.clamp(0, 999_999_999) as u32)
        .unwrap_or_default();
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos == 0 {
        return base + "Z";
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// The container path as dockerd sees it: absolute, cleaned, with a trailing `/` or `/.` kept.
fn abs_path(path: &str) -> String {
    let mut clean: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => clean.push(n.to_str().unwrap_or("")),
            Component::ParentDir => {
                clean.pop();
            }
            _ => {}
        }
    }
    let mut p = format!("/{}", clean.join("/"));
    if (path.ends_with("/.") || path == ".") && p != "/" {
        p.push_str("/.");
    } else if path.ends_with('/') && p != "/" {
        p.push('/');
    }
    p
}

/// Splits an absolute path into (dir, base) as Go's filepath.Split, base "" for a trailing `/`.
fn split(abs: &str) -> (&str, &str) {
    match abs.rfind('/') {
        Some(i) => (&abs[..=i], &abs[i + 1..]),
        None => ("/", abs),
    }
}

/// Go's filepath.Base.
fn go_base(abs: &str) -> String {
    let t = abs.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn nix_io(e: nix::errno::Errno) -> io::Error {
    io::Error::from(e)
}

/// A container's root, held by a directory fd.
pub struct Root {
    fd: OwnedFd,
    /// A temporary mount still attached (it has binds below it, which a lazy unmount would cut
    /// off): detached when the root is dropped.
    mnt: Option<PathBuf>,
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Some(m) = self.mnt.take() {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&m);
        }
    }
}

impl Root {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `/proc/<pid>/root` (the container's own view, mounts included).
    pub fn of_pid(pid: i32) -> io::Result<Root> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_dir()
            .open(format!("/proc/{pid}/root"))?;
        Ok(Root {
            fd: OwnedFd::from(f),
            mnt: None,
        })
    }

    /// Mounts the overlay at a temporary point, opens it, and detaches the mount at once: the
    /// fd keeps the (now invisible) mount alive until it is closed.
    pub fn of_stopped(
        lowers: &[PathBuf],
        cdir: &Path,
        tmp: &Path,
        binds: &[BindSpec],
    ) -> Result<Root> {
        std::fs::create_dir_all(tmp)?;
        let mut mnt = None;
        for i in 0..1000 {
            let p = tmp.join(format!("{}-{i}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                mnt = Some(p);
                break;
            }
        }
        let mnt = mnt.ok_or_else(|| Error::internal("cannot create a temporary mount point"))?;
        let res = (|| {
            crate::images::mount_rootfs(lowers, cdir, &mnt)?;
            // The container's binds and volumes, as it would see them (dockerd mounts them for
            // a stopped container's cp too). Mount points are made inside the root by fd.
            let rootfd = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags_dir()
                .open(&mnt);
            if let Ok(rootfd) = &rootfd {
                for b in binds {
                    if let Err(e) = bind_into(rootfd.as_fd(), b) {
                        tracing::warn!(
                            "cp: cannot mount {} at {}: {e}",
                            b.source.display(),
                            b.target
                        );
                    }
                }
            }
            drop(rootfd);
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags_dir()
                .open(&mnt);
            if binds.is_empty() {
                // Nothing below it: detach now; the fd alone keeps the mount alive.
                let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
                return Ok::<_, Error>(Root {
                    fd: OwnedFd::from(f?),
                    mnt: None,
                });
            }
            match f {
                Ok(f) => Ok(Root {
                    fd: OwnedFd::from(f),
                    mnt: Some(mnt.clone()),
                }),
                Err(e) => {
                    let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
                    Err(e.into())
                }
            }
        })();
        if !matches!(&res, Ok(r) if r.mnt.is_some()) {
            let _ = std::fs::remove_dir(&mnt);
        }
        res
    }
}

/// A bind or volume of a stopped container: host source, container target, read-only.
#[derive(Debug, Clone, PartialEq)]
pub struct BindSpec {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// The binds (`-v /host:/ctr[:ro]`, `--mount type=bind`) and local volumes
/// (`<data-root>/volumes/<name>/_data`, when there) of a container record.
pub fn bind_specs(rec: &crate::record::Record, data_root: &Path) -> Vec<BindSpec> {
    let vol = |name: &str| data_root.join("volumes").join(name).join("_data");
    let mut out = Vec::new();
    for b in rec.host_config.binds.clone().unwrap_or_default() {
        let parts: Vec<&str> = b.split(':').collect();
        if parts.len() < 2 {
            continue;
        }
        let ro = parts
            .get(2)
            .is_some_and(|o| o.split(',').any(|x| x == "ro"));
        let source = if parts[0].starts_with('/') {
            PathBuf::from(parts[0])
        } else {
            vol(parts[0])
        };
        out.push(BindSpec {
            source,
            target: parts[1].to_string(),
            read_only: ro,
        });
    }
    for m in rec.host_config.mounts.clone().unwrap_or_default() {
        let source = match m.r#type.as_str() {
            "bind" => PathBuf::from(&m.source),
            "volume" if !m.source.is_empty() => vol(&m.source),
            _ => continue,
        };
        out.push(BindSpec {
            source,
            target: m.target.clone(),
            read_only: m.read_only,
        });
    }
    out.retain(|b| b.source.exists());
    // Parents before children.
    out.sort_by_key(|b| b.target.matches('/').count());
    out
}

fn bind_into(root: BorrowedFd<'_>, b: &BindSpec) -> io::Result<()> {
    use nix::mount::{mount, MsFlags};
    let target = if b.source.is_dir() {
        berth_sys::mkdir_all_in_root(root, Path::new(&b.target), 0o755)?
    } else {
        let parent = Path::new(&b.target).parent().unwrap_or(Path::new("/"));
        berth_sys::mkdir_all_in_root(root, parent, 0o755)?;
        berth_sys::create_file_in_root(root, Path::new(&b.target), 0o644)?
    };
    // Through /proc/self/fd: the mount lands on what was opened, whatever the path says now.
    let at = berth_sys::proc_fd_path(target.as_fd());
    mount(
        Some(&b.source),
        &at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(nix_io)?;
    if b.read_only {
        let at2 = berth_sys::proc_fd_path(target.as_fd());
        let _ = mount(
            None::<&str>,
            &at2,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        );
    }
    Ok(())
}

trait DirFlags {
    fn custom_flags_dir(&mut self) -> &mut Self;
}
impl DirFlags for std::fs::OpenOptions {
    fn custom_flags_dir(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc_o_directory())
    }
}
const fn libc_o_directory() -> i32 {
    OFlag::O_DIRECTORY.bits()
}

/// Opens the directory `path` (every symlink followed, inside the root).
fn open_dir(root: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
    berth_sys::open_in_root(
        root,
        Path::new(path),
        (OFlag::O_RDONLY | OFlag::O_DIRECTORY).bits(),
        0,
    )
}

/// Opens a child of `dir` without following a symlink in its place.
fn open_child(dir: BorrowedFd<'_>, name: &str, flags: OFlag, mode: u32) -> io::Result<OwnedFd> {
    debug_assert!(!name.contains('/'));
    berth_sys::open_in_root(
        dir,
        Path::new(name),
        (flags | OFlag::O_NOFOLLOW).bits(),
        mode,
    )
}

fn lstat_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<FileStat> {
    let name = if name.is_empty() { "." } else { name };
    nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(nix_io)
}

/// A resolved target: the directory holding it, its base name ("." for the directory itself).
struct Target {
    dir: OwnedFd,
    base: String,
    abs: String,
    st: FileStat,
}

fn not_found(path: &str, container: &str) -> Error {
    Error::not_found(format!(
        "Could not find the file {path} in container {container}"
    ))
}

fn resolve(root: &Root, path: &str, container: &str) -> Result<Target> {
    let abs = abs_path(path);
    let (dir, base) = split(&abs);
    let base = if base.is_empty() { "." } else { base };
    let map = |e: io::Error| match e.raw_os_error() {
        Some(2) => not_found(path, container),
        Some(20) => Error::internal(format!("lstat {abs}: not a directory")),
        _ => Error::from(e),
    };
    let dirfd = open_dir(root.fd(), dir).map_err(map)?;
    if is_pseudo_fs(dirfd.as_fd()) {
        // Inside /proc, /sys, ... of a running container: not part of its filesystem (dockerd
        // sees the empty mount point in the rootfs), and some files there block on read.
        return Err(not_found(path, container));
    }
    let st = lstat_at(dirfd.as_fd(), base).map_err(map)?;
    if abs.ends_with('/') && (st.st_mode & 0o170000) != 0o040000 {
        // "file/" names a directory that is not there.
        return Err(Error::internal(format!("lstat {abs}: not a directory")));
    }
    Ok(Target {
        dir: dirfd,
        base: base.to_string(),
        abs,
        st,
    })
}

fn stat_of(root: &Root, t: &Target) -> PathStat {
    let link_target = if t.st.st_mode & 0o170000 == 0o120000 {
        berth_sys::resolve_in_root_path(root.fd(), Path::new(t.abs.trim_end_matches('/')))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    PathStat {
        name: go_base(&t.abs),
        size: t.st.st_size,
        mode: go_mode(t.st.st_mode),
        mtime: go_time(t.st.st_mtime, t.st.st_mtime_nsec),
        link_target,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading: a tar of one file or tree.

struct ChanWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let b = Bytes::from(std::mem::take(&mut self.buf));
            self.tx
                .blocking_send(b)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        }
        Ok(())
    }
}

fn header_for(st: &FileStat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// Appends an entry under exactly `name` (the tar crate would drop a leading `./`, which
/// dockerd keeps for `dir/.`).
fn append_named<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    data: impl Read,
) -> io::Result<()> {
    if (name.starts_with("./") || name.starts_with('/')) && name.len() < 100 {
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        return tar.append(h, data);
    }
    // Long names go through the tar crate's GNU long-name entries, which must be relative.
    tar.append_data(h, name.trim_start_matches('/'), data)
}

fn append_link_named<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    target: &Path,
) -> io::Result<()> {
    if (name.starts_with("./") || name.starts_with('/')) && name.len() < 100 {
        if h.set_link_name(target).is_ok() {
            return append_named(tar, h, name, io::empty());
        }
    }
    tar.append_link(h, name.trim_start_matches('/'), target)
}

struct Walker<W: Write> {
    tar: tar::Builder<W>,
    links: std::collections::HashMap<(u64, u64), String>,
}

impl<W: Write> Walker<W> {
    /// Archives `name` (inside the open directory `dir`) as `arc`.
    fn add(&mut self, dir: BorrowedFd<'_>, name: &str, arc: &str) -> io::Result<()> {
        let st = lstat_at(dir, name)?;
        match st.st_mode & 0o170000 {
            0o040000 => {
                let d = if name == "." {
                    berth_sys::open_in_root(
                        dir,
                        Path::new("."),
                        (OFlag::O_RDONLY | OFlag::O_DIRECTORY).bits(),
                        0,
                    )?
                } else {
                    open_child(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)?
                };
                let mut h = header_for(&st, tar::EntryType::Directory);
                let dname = if arc == "/" {
                    "/".to_string()
                } else {
                    format!("{}/", arc.trim_end_matches('/'))
                };
                append_named(&mut self.tar, &mut h, &dname, io::empty())?;
                if is_pseudo_fs(d.as_fd()) {
                    // /proc, /sys, cgroups, devpts, mqueue of a running container: their mount
                    // points, not their contents (dockerd copies from the rootfs, where these are
                    // empty directories).
                    return Ok(());
                }
                let mut names: Vec<String> = std::fs::read_dir(berth_sys::proc_fd_path(d.as_fd()))?
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect();
                names.sort();
                for n in names {
                    let child = format!("{}/{n}", arc.trim_end_matches('/'));
                    match self.add(d.as_fd(), &n, &child) {
                        Ok(()) => {}
                        // Gone meanwhile: skip, as a walk of a live tree does.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            0o120000 => {
                let target = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name).map_err(nix_io)?;
                let mut h = header_for(&st, tar::EntryType::Symlink);
                append_link_named(&mut self.tar, &mut h, arc, Path::new(&target))?;
            }
            0o100000 => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        let mut h = header_for(&st, tar::EntryType::Link);
                        let first = first.clone();
                        append_link_named(&mut self.tar, &mut h, arc, Path::new(&first))?;
                        return Ok(());
                    }
                    self.links.insert(key, arc.to_string());
                }
                let f = File::from(open_child(dir, name, OFlag::O_RDONLY, 0)?);
                // The size of what was opened, not of what the name pointed at before.
                let fst = nix::sys::stat::fstat(f.as_raw_fd()).map_err(nix_io)?;
                let mut h = header_for(&fst, tar::EntryType::Regular);
                h.set_size(fst.st_size as u64);
                append_named(&mut self.tar, &mut h, arc, f.take(fst.st_size as u64))?;
            }
            fmt => {
                let kind = match fmt {
                    0o020000 => tar::EntryType::Char,
                    0o060000 => tar::EntryType::Block,
                    0o010000 => tar::EntryType::Fifo,
                    _ => return Ok(()), // sockets are not archived
                };
                let mut h = header_for(&st, kind);
                let dev = st.st_rdev;
                h.set_device_major(nix::sys::stat::major(dev) as u32)?;
                h.set_device_minor(nix::sys::stat::minor(dev) as u32)?;
                append_named(&mut self.tar, &mut h, arc, io::empty())?;
            }
        }
        Ok(())
    }
}

/// Kernel pseudo filesystems whose contents are never archived.
fn is_pseudo_fs(dir: BorrowedFd<'_>) -> bool {
    const SKIP: &[i64] = &[
        0x9fa0,     // proc
        0x62656572, // sysfs
        0x27e0eb,   // cgroup
        0x63677270, // cgroup2
        0x1cd1,     // devpts
        0x19800202, // mqueue
        0x64626720, // debugfs
        0x73636673, // securityfs
        0x74726163, // tracefs
        0xcafe4a11, // bpf
        0x6165676c, // pstore
        0x65735543, // fusectl
    ];
    nix::sys::statfs::fstatfs(dir).is_ok_and(|s| SKIP.contains(&(s.filesystem_type().0 as i64)))
}

/// Writes the tar dockerd sends for `GET /archive`: the target, renamed to the base of the
/// requested path (`.` for `dir/.`).
fn write_archive<W: Write>(root: &Root, t: &Target, w: W) -> io::Result<W> {
    let mut walker = Walker {
        tar: tar::Builder::new(w),
        links: Default::default(),
    };
    walker.tar.follow_symlinks(false);
    let arc = if t.abs.ends_with("/.") {
        ".".to_string()
    } else {
        go_base(&t.abs)
    };
    let _ = root;
    walker.add(t.dir.as_fd(), &t.base, &arc)?;
    walker.tar.into_inner()
}

// ---------------------------------------------------------------------------------------------
// Writing: extract a tar under a directory.

/// `PUT /archive` options.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub no_overwrite_dir_non_dir: bool,
    /// Set when `copyUIDGID`: every entry is owned by this uid/gid.
    pub chown: Option<(u32, u32)>,
}

/// Removes `name` in `dir` (recursively for a directory), without following symlinks.
fn remove_all_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let st = lstat_at(dir, name)?;
    if st.st_mode & 0o170000 == 0o040000 {
        let d = open_child(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)?;
        let names: Vec<String> = std::fs::read_dir(berth_sys::proc_fd_path(d.as_fd()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        for n in names {
            remove_all_at(d.as_fd(), &n)?;
        }
        nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir).map_err(nix_io)
    } else {
        nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
            .map_err(nix_io)
    }
}

/// Clean relative components of a tar entry name (`..` and `/` dropped: they cannot climb).
fn entry_components(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => v.push(n.to_string_lossy().into_owned()),
            Component::ParentDir => {
                v.pop();
            }
            _ => {}
        }
    }
    v
}

/// Extracts `r` under `dest` (an open directory inside `root`, whose container path is
/// `dest_abs`). Parents are created or opened inside the root; each entry is created with
/// `*at` calls on its parent's fd.
pub fn extract<R: Read>(root: &Root, dest_abs: &str, mut r: R, opts: &PutOptions) -> Result<()> {
    let res = extract_inner(root, dest_abs, &mut r, opts);
    // The tar reader stops at the first zero block, and an error stops it anywhere: read the
    // rest of the body so the client is not cut off (EPIPE) while still sending, and gets the
    // reply.
    let _ = io::copy(&mut r, &mut io::sink());
    res
}

fn extract_inner<R: Read>(root: &Root, dest_abs: &str, r: &mut R, opts: &PutOptions) -> Result<()> {
    let mut ar = tar::Archive::new(r);
    let mut dir_times: Vec<(String, i64)> = Vec::new();
    for entry in ar.entries().map_err(|e| Error::invalid(e.to_string()))? {
        let mut entry = entry.map_err(|e| Error::invalid(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| Error::invalid(e.to_string()))?
            .into_owned();
        let comps = entry_components(&path);
        let Some((name, parents)) = comps.split_last() else {
            continue;
        };
        let parent_abs = format!("{}/{}", dest_abs.trim_end_matches('/'), parents.join("/"));
        let parent = berth_sys::mkdir_all_in_root(root.fd(), Path::new(&parent_abs), 0o755)?;
        let pfd = parent.as_fd();
        let h = entry.header().clone();
        let kind = h.entry_type();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = opts
            .chown
            .unwrap_or((h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32));
        let existing = lstat_at(pfd, name).ok();
        let is_dir = |st: &FileStat| st.st_mode & 0o170000 == 0o040000;
        let full = format!("{}/{}", parent_abs.trim_end_matches('/'), name);
        if let Some(st) = &existing {
            if opts.no_overwrite_dir_non_dir {
                if is_dir(st) && !kind.is_dir() {
                    return Err(Error::internal(format!(
                        "cannot overwrite directory {full:?} with non-directory {:?}",
                        path.display()
                    )));
                }
                if !is_dir(st) && kind.is_dir() {
                    return Err(Error::internal(format!(
                        "cannot overwrite non-directory {full:?} with directory {:?}",
                        path.display()
                    )));
                }
            }
            if !(is_dir(st) && kind.is_dir()) {
                remove_all_at(pfd, name)?;
            }
        }
        let raw = pfd.as_raw_fd();
        match kind {
            tar::EntryType::Directory => {
                if existing.as_ref().is_none_or(|st| !is_dir(st)) {
                    nix::sys::stat::mkdirat(
                        Some(raw),
                        name.as_str(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(nix_io)?;
                }
                let d = open_child(pfd, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)?;
                nix::unistd::fchown(
                    d.as_raw_fd(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                )
                .map_err(nix_io)?;
                nix::sys::stat::fchmod(d.as_raw_fd(), Mode::from_bits_truncate(mode))
                    .map_err(nix_io)?;
                dir_times.push((full.clone(), h.mtime().unwrap_or(0) as i64));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let fd = open_child(
                    pfd,
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                    0o600,
                )?;
                let mut f = File::from(fd);
                io::copy(&mut entry, &mut f)?;
                nix::unistd::fchown(
                    f.as_raw_fd(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                )
                .map_err(nix_io)?;
                nix::sys::stat::fchmod(f.as_raw_fd(), Mode::from_bits_truncate(mode))
                    .map_err(nix_io)?;
                set_mtime(pfd, name, h.mtime().unwrap_or(0) as i64);
            }
            tar::EntryType::Symlink => {
                let target = h
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|p| p.into_owned())
                    .unwrap_or_default();
                nix::unistd::symlinkat(&target, Some(raw), name.as_str()).map_err(nix_io)?;
                let _ = nix::unistd::fchownat(
                    Some(raw),
                    name.as_str(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                );
                set_mtime(pfd, name, h.mtime().unwrap_or(0) as i64);
            }
            tar::EntryType::Link => {
                let target = h
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|p| p.into_owned())
                    .unwrap_or_default();
                let tc = entry_components(&target);
                let Some((tname, tparents)) = tc.split_last() else {
                    continue;
                };
                let tdir_abs = format!("{}/{}", dest_abs.trim_end_matches('/'), tparents.join("/"));
                let tdir = open_dir(root.fd(), &tdir_abs)?;
                nix::unistd::linkat(
                    Some(tdir.as_raw_fd()),
                    tname.as_str(),
                    Some(raw),
                    name.as_str(),
                    AtFlags::empty(),
                )
                .map_err(nix_io)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let k = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = nix::sys::stat::makedev(
                    h.device_major().ok().flatten().unwrap_or(0) as u64,
                    h.device_minor().ok().flatten().unwrap_or(0) as u64,
                );
                nix::sys::stat::mknodat(
                    Some(raw),
                    name.as_str(),
                    k,
                    Mode::from_bits_truncate(mode),
                    dev,
                )
                .map_err(nix_io)?;
                let _ = nix::unistd::fchownat(
                    Some(raw),
                    name.as_str(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                );
            }
            _ => {} // PAX/GNU headers are consumed by the tar reader; others are skipped
        }
    }
    // Directory times last (their contents changed them).
    for (p, t) in dir_times.into_iter().rev() {
        let (d, b) = split(&p);
        if let Ok(dfd) = open_dir(root.fd(), d) {
            set_mtime(dfd.as_fd(), b, t);
        }
    }
    Ok(())
}

fn set_mtime(dir: BorrowedFd<'_>, name: &str, mtime: i64) {
    use nix::sys::stat::UtimensatFlags;
    use nix::sys::time::TimeSpec;
    let t = TimeSpec::new(mtime, 0);
    let _ = nix::sys::stat::utimensat(
        Some(dir.as_raw_fd()),
        name,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    );
}

// ---------------------------------------------------------------------------------------------
// Engine entry points.

impl Engine {
    /// The container's root: its live view when running, else a temporary overlay mount.
    fn archive_root(&self, c: &crate::Container) -> Result<Root> {
        let rec = c.snapshot();
        if rec.state.status.is_running() && rec.state.pid > 0 {
            if let Ok(r) = Root::of_pid(rec.state.pid as i32) {
                return Ok(r);
            }
        }
        let lowers = crate::images::lower_dirs_of(&self.images, &rec.image_id)?;
        let tmp = self.cfg.exec_root.join("archive");
        Root::of_stopped(
            &lowers,
            c.dir(),
            &tmp,
            &bind_specs(&rec, &self.cfg.data_root),
        )
    }

    /// `HEAD /containers/{id}/archive?path=`.
    pub async fn archive_stat(self: &Arc<Self>, name: &str, path: &str) -> Result<PathStat> {
        let me = self.clone();
        let (name, path) = (name.to_string(), path.to_string());
        blocking(move || {
            let c = me.container(&name)?;
            let root = me.archive_root(&c)?;
            let t = resolve(&root, &path, &name)?;
            Ok(stat_of(&root, &t))
        })
        .await
    }

    /// `GET /containers/{id}/archive?path=`: the stat and a tar stream.
    pub async fn archive_get(
        self: &Arc<Self>,
        name: &str,
        path: &str,
    ) -> Result<(PathStat, mpsc::Receiver<Bytes>)> {
        let me = self.clone();
        let (name, path) = (name.to_string(), path.to_string());
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<PathStat>>();
        tokio::task::spawn_blocking(move || {
            let prep = (|| {
                let c = me.container(&name)?;
                let root = me.archive_root(&c)?;
                let t = resolve(&root, &path, &name)?;
                let st = stat_of(&root, &t);
                Ok::<_, Error>((root, t, st))
            })();
            let (root, t, st) = match prep {
                Ok(v) => v,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            if ready_tx.send(Ok(st)).is_err() {
                return;
            }
            let mut w = ChanWriter {
                tx,
                buf: Vec::with_capacity(64 * 1024),
            };
            match write_archive(&root, &t, &mut w) {
                Ok(_) => {
                    let _ = w.flush();
                }
                Err(e) => tracing::warn!("archive of {path}: {e}"),
            }
        });
        let st = ready_rx
            .await
            .map_err(|_| Error::internal("archive task failed"))??;
        Ok((st, rx))
    }

    /// `PUT /containers/{id}/archive?path=`: extracts a tar into the directory `path`.
    pub async fn archive_put(
        self: &Arc<Self>,
        name: &str,
        path: &str,
        opts: PutOptions,
        copy_uid_gid: bool,
        body: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    ) -> Result<()> {
        let me = self.clone();
        let (name, path) = (name.to_string(), path.to_string());
        blocking(move || {
            let c = me.container(&name)?;
            let rec = c.snapshot();
            let root = me.archive_root(&c)?;
            let abs = abs_path(&path);
            let dest = match berth_sys::resolve_in_root_path(root.fd(), Path::new(&abs)) {
                Ok(p) => p.display().to_string(),
                Err(e) => return Err(e.into()),
            };
            let st = match open_dir(root.fd(), &dest) {
                Ok(fd) => nix::sys::stat::fstat(fd.as_raw_fd()).map_err(nix_io)?,
                Err(e) if e.raw_os_error() == Some(20) => {
                    return Err(Error::internal("extraction point is not a directory"))
                }
                Err(e) if e.raw_os_error() == Some(2) => return Err(not_found(&path, &name)),
                Err(e) => return Err(e.into()),
            };
            // A read-only rootfs refuses copies, except into something mounted on it (a
            // volume, bind or tmpfs: another filesystem than the root's), as dockerd allows
            // copies into volumes.
            let root_dev = nix::sys::stat::fstat(root.fd().as_raw_fd())
                .map_err(nix_io)?
                .st_dev;
            if rec.host_config.readonly_rootfs && st.st_dev == root_dev {
                return Err(Error::internal("container rootfs is marked read-only"));
            }
            let mut opts = opts;
            // dockerd: with copyUIDGID and a configured user, that user owns what is copied;
            // otherwise the ids in the tar headers are kept.
            if copy_uid_gid && !rec.config.user.is_empty() {
                opts.chown = Some(container_user_ids(&root, rec.config.user.as_str()));
            }
            let reader = tokio_util::io::SyncIoBridge::new(body);
            extract(&root, &dest, reader, &opts)
        })
        .await
    }
}

/// The uid/gid of the container's configured user (numeric, or looked up in its /etc/passwd
/// and /etc/group, opened inside the root).
fn container_user_ids(root: &Root, user: &str) -> (u32, u32) {
    if user.is_empty() {
        return (0, 0);
    }
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let read = |p: &str| -> String {
        berth_sys::open_in_root(root.fd(), Path::new(p), OFlag::O_RDONLY.bits(), 0)
            .ok()
            .map(File::from)
            .and_then(|mut f| {
                let mut s = String::new();
                f.read_to_string(&mut s).ok().map(|_| s)
            })
            .unwrap_or_default()
    };
    let mut uid = 0;
    let mut gid = 0;
    if let Ok(n) = u.parse::<u32>() {
        uid = n;
    } else {
        for l in read("/etc/passwd").lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() > 3 && f[0] == u {
                uid = f[2].parse().unwrap_or(0);
                gid = f[3].parse().unwrap_or(0);
            }
        }
    }
    if !g.is_empty() {
        if let Ok(n) = g.parse::<u32>() {
            gid = n;
        } else {
            for l in read("/etc/group").lines() {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() > 2 && f[0] == g {
                    gid = f[2].parse().unwrap_or(0);
                }
            }
        }
    }
    (uid, gid)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("archive task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_like_dockerd() {
        assert_eq!(abs_path("etc/hostname"), "/etc/hostname");
        assert_eq!(abs_path("/etc/"), "/etc/");
        assert_eq!(abs_path("/etc/."), "/etc/.");
        assert_eq!(abs_path("/a/../b"), "/b");
        assert_eq!(abs_path("/"), "/");
        assert_eq!(split("/etc/hostname"), ("/etc/", "hostname"));
        assert_eq!(go_base("/etc/"), "etc");
        assert_eq!(go_base("/etc/."), ".");
        assert_eq!(go_base("/"), "/");
    }

    #[test]
    fn stat_header_matches_dockerd() {
        // What the reference dockerd sent for busybox's /etc/passwd.
        let st = PathStat {
            name: "passwd".into(),
            size: 120,
            mode: 420,
            mtime: go_time(946684800, 0),
            link_target: String::new(),
        };
        assert_eq!(
            st.header_value(),
            "eyJuYW1lIjoicGFzc3dkIiwic2l6ZSI6MTIwLCJtb2RlIjo0MjAsIm10aW1lIjoiMjAwMC0wMS0wMVQwMDowMDowMFoiLCJsaW5rVGFyZ2V0IjoiIn0="
        );
        assert_eq!(go_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_time(1, 500_000_000), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn round_trip_through_fds() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("d/sub")).unwrap();
        std::fs::write(src.path().join("d/sub/f"), b"hello").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("d/ln")).unwrap();
        std::fs::hard_link(src.path().join("d/sub/f"), src.path().join("d/hl")).unwrap();
        let root = Root {
            fd: OwnedFd::from(File::open(src.path()).unwrap()),
            mnt: None,
        };
        let t = resolve(&root, "/d", "c").unwrap();
        let tar = write_archive(&root, &t, Vec::new()).unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir(dst.path().join("in")).unwrap();
        let droot = Root {
            fd: OwnedFd::from(File::open(dst.path()).unwrap()),
            mnt: None,
        };
        extract(&droot, "/in", &tar[..], &PutOptions::default()).unwrap();
        assert_eq!(
            std::fs::read(dst.path().join("in/d/sub/f")).unwrap(),
            b"hello"
        );
        assert_eq!(
            std::fs::read_link(dst.path().join("in/d/ln")).unwrap(),
            Path::new("/etc/passwd")
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(dst.path().join("in/d/hl")).unwrap().ino(),
            std::fs::metadata(dst.path().join("in/d/sub/f"))
                .unwrap()
                .ino()
        );
        // An entry through a symlink that points out of the root stays inside it.
        std::os::unix::fs::symlink("/", dst.path().join("in/esc")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "esc/tmp-escape-probe", &b"bad"[..])
            .unwrap();
        let evil = b.into_inner().unwrap();
        extract(&droot, "/in", &evil[..], &PutOptions::default()).unwrap();
        assert!(!Path::new("/tmp-escape-probe").exists());
        assert!(dst.path().join("tmp-escape-probe").exists());
        // noOverwriteDirNonDir.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "d", &b"x"[..]).unwrap();
        let t2 = b.into_inner().unwrap();
        let o = PutOptions {
            no_overwrite_dir_non_dir: true,
            chown: None,
        };
        assert!(extract(&droot, "/in", &t2[..], &o)
            .unwrap_err()
            .message
            .contains("cannot overwrite directory"));
        // Missing file: dockerd's 404 text.
        let e = resolve(&root, "/nosuch", "c1").err().unwrap();
        assert_eq!(e.message, "Could not find the file /nosuch in container c1");
    }
}
