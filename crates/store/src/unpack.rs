//! Safe layer extraction.
//!
//! Every entry is written relative to a directory fd of the snapshot root; nothing is ever
//! resolved through a path string of the host. Entry names are cleaned lexically (a leading
//! `/` and `..` that would climb above the root are dropped, like `filepath.Clean("/" +
//! name)`), parent directories are walked one component at a time with `openat`, and a
//! symlink met on the way is resolved *inside* the root (absolute targets restart at the
//! root, `..` never climbs above it), the way `openat2(RESOLVE_IN_ROOT)` does. The final
//! component is never followed: whatever is in the way is removed first and the new object is
//! created with `O_EXCL|O_NOFOLLOW` / `mknodat` / `symlinkat` / `linkat(flags = 0)`.
//!
//! OCI whiteouts become overlayfs ones: `.wh.<name>` -> a 0:0 character device `<name>`,
//! `.wh..wh..opq` -> `trusted.overlay.opaque=y` on the directory.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags, CWD,
};
use rustix::io::Errno;
use tar::EntryType;

use crate::error::{Error, IoContext, Result};

const MAX_SYMLINKS: usize = 40;
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Result of unpacking one layer.
#[derive(Debug, Default)]
pub(crate) struct UnpackStats {
    /// Sum of the sizes of regular files in the layer.
    pub size: u64,
}

/// Cleans an entry name into path components below the root.
pub(crate) fn clean(name: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

fn os(c: &[u8]) -> &OsStr {
    OsStr::from_bytes(c)
}

fn display(c: &[Vec<u8>]) -> String {
    let v: Vec<String> = c
        .iter()
        .map(|x| String::from_utf8_lossy(x).into_owned())
        .collect();
    v.join("/")
}

struct Ctx<'a> {
    root: OwnedFd,
    root_path: &'a Path,
    entry: String,
}

impl Ctx<'_> {
    fn bad(&self, reason: impl std::fmt::Display) -> Error {
        Error::InvalidLayer {
            entry: self.entry.clone(),
            reason: reason.to_string(),
        }
    }

    fn sys<T>(&self, op: &'static str, r: rustix::io::Result<T>) -> Result<T> {
        r.map_err(|e| Error::io(op, self.root_path.join(&self.entry), e.into()))
    }

    /// Opens the directory `comps` (relative to the root), resolving symlinks inside the
    /// root and creating missing directories (0755, root-owned) when `create`.
    fn resolve_dir(&self, comps: &[Vec<u8>], create: bool) -> Result<OwnedFd> {
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut queue: VecDeque<Vec<u8>> = comps.iter().cloned().collect();
        let mut links = 0;
        while let Some(c) = queue.pop_front() {
            if c.is_empty() || c == b"." {
                continue;
            }
            if c == b".." {
                stack.pop();
                continue;
            }
            let cur: BorrowedFd<'_> = stack.last().map(|f| f.as_fd()).unwrap_or(self.root.as_fd());
            let name = os(&c);
            match rfs::statat(cur, name, AtFlags::SYMLINK_NOFOLLOW) {
                Err(Errno::NOENT) if create => {
                    match rfs::mkdirat(cur, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(self.sys("mkdir", Err(e))?),
                    }
                    stack.push(self.sys("open dir", open_dir(cur, name))?);
                }
                Err(Errno::NOENT) => {
                    return Err(self.bad(format!("{} does not exist", String::from_utf8_lossy(&c))))
                }
                Err(e) => return Err(self.sys("stat", Err(e))?),
                Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                    FileType::Directory => stack.push(self.sys("open dir", open_dir(cur, name))?),
                    FileType::Symlink => {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(self.bad("too many levels of symbolic links"));
                        }
                        let target =
                            self.sys("readlink", rfs::readlinkat(cur, name, Vec::new()))?;
                        let tb = target.as_bytes();
                        if tb.starts_with(b"/") {
                            stack.clear();
                        }
                        for part in tb.split(|&b| b == b'/').rev() {
                            queue.push_front(part.to_vec());
                        }
                    }
                    _ => {
                        return Err(self.bad(format!(
                            "{} is not a directory",
                            String::from_utf8_lossy(&c)
                        )))
                    }
                },
            }
        }
        match stack.pop() {
            Some(fd) => Ok(fd),
            None => self.sys("dup", open_dir(self.root.as_fd(), OsStr::new("."))),
        }
    }
}

fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Removes `name` in `dir`, recursively for directories, never following symlinks.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<()> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok(()),
        r => r?,
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let fd = open_dir(dir, name)?;
        let mut names = Vec::new();
        for e in rfs::Dir::read_from(&fd)? {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
        for n in names {
            remove_all_at(fd.as_fd(), os(&n))?;
        }
        rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty())
    }
}

fn ts(secs: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Extended metadata from PAX records.
#[derive(Default)]
struct Pax {
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<u64>,
}

fn read_pax<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Pax> {
    let mut pax = Pax::default();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let key = ext.key_bytes();
            let val = ext.value_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                pax.xattrs.push((name.to_vec(), val.to_vec()));
            } else if key == b"uid" {
                pax.uid = std::str::from_utf8(val).ok().and_then(|s| s.parse().ok());
            } else if key == b"gid" {
                pax.gid = std::str::from_utf8(val).ok().and_then(|s| s.parse().ok());
            } else if key == b"mtime" {
                pax.mtime = std::str::from_utf8(val)
                    .ok()
                    .and_then(|s| s.split('.').next())
                    .and_then(|s| s.parse().ok());
            }
        }
    }
    Ok(pax)
}

/// Unpacks the tar stream `reader` into the existing empty directory `dest`.
pub(crate) fn unpack<R: Read>(reader: R, dest: &Path) -> Result<UnpackStats> {
    let root = rfs::openat(
        CWD,
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx("open", dest)?;
    let mut ctx = Ctx {
        root,
        root_path: dest,
        entry: String::new(),
    };
    let mut stats = UnpackStats::default();
    // Directory mtimes are set last: creating children changes them.
    let mut dir_times: Vec<(Vec<Vec<u8>>, u64)> = Vec::new();

    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().ctx("read tar", dest)?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::InvalidLayer {
            entry: ctx.entry.clone(),
            reason: format!("reading tar: {e}"),
        })?;
        let comps = clean(&entry.path_bytes());
        ctx.entry = display(&comps);
        let pax = read_pax(&mut entry).map_err(|e| ctx.bad(format!("bad PAX header: {e}")))?;
        let hdr = entry.header().clone();
        let kind = hdr.entry_type();
        let uid = pax
            .uid
            .or_else(|| hdr.uid().ok().map(|u| u as u32))
            .unwrap_or(0);
        let gid = pax
            .gid
            .or_else(|| hdr.gid().ok().map(|g| g as u32))
            .unwrap_or(0);
        let mode = hdr.mode().map_err(|e| ctx.bad(e))? & 0o7777;
        let mtime = pax.mtime.or_else(|| hdr.mtime().ok()).unwrap_or(0);

        let Some((name, parent)) = comps.split_last() else {
            // The root itself ("./"): take its metadata.
            if kind == EntryType::Directory {
                let fd = ctx.resolve_dir(&[], false)?;
                set_owner_mode(&ctx, fd.as_fd(), uid, gid, mode)?;
                set_xattrs(&ctx, &fd, None, &pax.xattrs);
                dir_times.push((Vec::new(), mtime));
            }
            continue;
        };
        let name_os = os(name);

        // Whiteouts.
        if name.starts_with(WHITEOUT_PREFIX) {
            let pfd = ctx.resolve_dir(parent, true)?;
            if name.as_slice() == OPAQUE_MARKER {
                ctx.sys(
                    "set opaque xattr",
                    rfs::fsetxattr(&pfd, OPAQUE_XATTR, b"y", XattrFlags::empty()),
                )?;
            } else if name.starts_with(b".wh..wh.") {
                // Other aufs metadata (.wh..wh.plnk, ...): ignored.
            } else {
                let real = os(&name[WHITEOUT_PREFIX.len()..]);
                if real.is_empty() || real == "." || real == ".." {
                    return Err(ctx.bad("invalid whiteout name"));
                }
                ctx.sys("remove", remove_all_at(pfd.as_fd(), real))?;
                ctx.sys(
                    "mknod whiteout",
                    rfs::mknodat(
                        &pfd,
                        real,
                        FileType::CharacterDevice,
                        Mode::empty(),
                        rfs::makedev(0, 0),
                    ),
                )?;
                ctx.sys(
                    "chown",
                    rfs::chownat(
                        &pfd,
                        real,
                        Some(rustix::fs::Uid::ROOT),
                        Some(rustix::fs::Gid::ROOT),
                        AtFlags::SYMLINK_NOFOLLOW,
                    ),
                )?;
            }
            continue;
        }

        let pfd = ctx.resolve_dir(parent, true)?;
        // Clear whatever is in the way, unless a directory replaces a directory.
        match rfs::statat(&pfd, name_os, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st)
                if kind == EntryType::Directory
                    && FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
            Ok(_) => ctx.sys("remove", remove_all_at(pfd.as_fd(), name_os))?,
            Err(Errno::NOENT) => {}
            Err(e) => ctx.sys("stat", Err(e))?,
        }

        match kind {
            EntryType::Directory => {
                match rfs::mkdirat(&pfd, name_os, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => ctx.sys("mkdir", Err(e))?,
                }
                let fd = ctx.sys("open dir", open_dir(pfd.as_fd(), name_os))?;
                set_owner_mode(&ctx, fd.as_fd(), uid, gid, mode)?;
                set_xattrs(&ctx, &fd, None, &pax.xattrs);
                dir_times.push((comps.clone(), mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = ctx.sys(
                    "create",
                    rfs::openat(
                        &pfd,
                        name_os,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    ),
                )?;
                let mut f = File::from(fd);
                let n = io::copy(&mut entry, &mut f)
                    .map_err(|e| Error::io("write", dest.join(&ctx.entry), e))?;
                stats.size += n;
                set_owner_mode(&ctx, f.as_fd(), uid, gid, mode)?;
                set_xattrs(&ctx, &f, None, &pax.xattrs);
                ctx.sys("set mtime", rfs::futimens(&f, &ts(mtime)))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| ctx.bad("symlink without target"))?
                    .into_owned();
                ctx.sys("symlink", rfs::symlinkat(os(&target), &pfd, name_os))?;
                ctx.sys(
                    "chown",
                    rfs::chownat(
                        &pfd,
                        name_os,
                        Some(rfs::Uid::from_raw(uid)),
                        Some(rfs::Gid::from_raw(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    ),
                )?;
                set_xattrs(&ctx, &pfd, Some(name_os), &pax.xattrs);
                ctx.sys(
                    "set mtime",
                    rfs::utimensat(&pfd, name_os, &ts(mtime), AtFlags::SYMLINK_NOFOLLOW),
                )?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| ctx.bad("hardlink without target"))?
                    .into_owned();
                let tcomps = clean(&target);
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(ctx.bad("hardlink to the layer root"));
                };
                let tfd = ctx.resolve_dir(tparent, false)?;
                // flags = 0: a symlink target is linked itself, never followed.
                rfs::linkat(&tfd, os(tname), &pfd, name_os, AtFlags::empty()).map_err(|e| {
                    ctx.bad(format!(
                        "hardlink to {}: {}",
                        display(&tcomps),
                        io::Error::from(e)
                    ))
                })?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ft = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = hdr.device_major().ok().flatten().unwrap_or(0);
                let minor = hdr.device_minor().ok().flatten().unwrap_or(0);
                ctx.sys(
                    "mknod",
                    rfs::mknodat(
                        &pfd,
                        name_os,
                        ft,
                        Mode::from_raw_mode(mode & 0o777),
                        rfs::makedev(major, minor),
                    ),
                )?;
                ctx.sys(
                    "chown",
                    rfs::chownat(
                        &pfd,
                        name_os,
                        Some(rfs::Uid::from_raw(uid)),
                        Some(rfs::Gid::from_raw(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    ),
                )?;
                // We just created a non-symlink here, so following is not a concern.
                ctx.sys(
                    "chmod",
                    rfs::chmodat(&pfd, name_os, Mode::from_raw_mode(mode), AtFlags::empty()),
                )?;
                set_xattrs(&ctx, &pfd, Some(name_os), &pax.xattrs);
                ctx.sys(
                    "set mtime",
                    rfs::utimensat(&pfd, name_os, &ts(mtime), AtFlags::SYMLINK_NOFOLLOW),
                )?;
            }
            other => {
                tracing::warn!(entry = %ctx.entry, kind = ?other, "skipping unsupported tar entry");
            }
        }
    }

    for (comps, mtime) in dir_times {
        let fd = match comps.split_last() {
            None => ctx.resolve_dir(&[], false),
            Some((name, parent)) => ctx
                .resolve_dir(parent, false)
                .and_then(|p| ctx.sys("open dir", open_dir(p.as_fd(), os(name)))),
        };
        // The directory may have been replaced by a later entry; then there is nothing to do.
        if let Ok(fd) = fd {
            let _ = rfs::futimens(&fd, &ts(mtime));
        }
    }
    Ok(stats)
}

fn set_owner_mode(ctx: &Ctx<'_>, fd: BorrowedFd<'_>, uid: u32, gid: u32, mode: u32) -> Result<()> {
    ctx.sys(
        "chown",
        rfs::fchown(
            fd,
            Some(rfs::Uid::from_raw(uid)),
            Some(rfs::Gid::from_raw(gid)),
        ),
    )?;
    // After chown: chown clears set-id bits.
    ctx.sys("chmod", rfs::fchmod(fd, Mode::from_raw_mode(mode)))
}

/// Applies xattrs to `fd` itself (`name == None`) or, without following, to `name` in the
/// directory `fd`. Failures (e.g. unsupported namespace) are logged, not fatal. overlayfs'
/// own `trusted.overlay.*` attributes are never taken from a layer.
fn set_xattrs(ctx: &Ctx<'_>, fd: &impl AsFd, name: Option<&OsStr>, xattrs: &[(Vec<u8>, Vec<u8>)]) {
    for (k, v) in xattrs {
        if k.starts_with(b"trusted.overlay.") {
            continue;
        }
        let key = os(k);
        let r = match name {
            None => rfs::fsetxattr(fd, key, v, XattrFlags::empty()),
            Some(n) => {
                let p = Path::new("/proc/self/fd")
                    .join(fd.as_fd().as_raw_fd().to_string())
                    .join(n);
                rfs::lsetxattr(&p, key, v, XattrFlags::empty())
            }
        };
        if let Err(e) = r {
            tracing::warn!(entry = %ctx.entry, xattr = %String::from_utf8_lossy(k), error = %e, "cannot set xattr");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn clean_contains_names() {
        let j = |n: &[u8]| {
            clean(n)
                .iter()
                .map(|c| String::from_utf8(c.clone()).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(j(b"../escape"), vec!["escape"]);
        assert_eq!(j(b"/abs/path"), vec!["abs", "path"]);
        assert_eq!(j(b"./a/./b/../c/"), vec!["a", "c"]);
        assert!(j(b"./").is_empty());
        assert_eq!(j(b"a/../../../../etc/passwd"), vec!["etc", "passwd"]);
    }
}
