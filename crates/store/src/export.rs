//! Directory -> layer tar (for `docker commit` of an overlay upperdir, and `docker export`
//! of a mounted rootfs). The walk is fd-based (`openat(O_NOFOLLOW)`), so a symlink swapped in
//! by a running container cannot redirect it outside the directory.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, CWD};

use crate::digest::ChainId;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::tmp_path;
use crate::layers::LayerInfo;
use crate::ImageStore;

/// How [`write_tar`] treats overlayfs whiteouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// The directory is an overlay upperdir: 0:0 character devices become `.wh.<name>` and
    /// `trusted.overlay.opaque=y` becomes `.wh..wh..opq` (OCI layer format).
    Convert,
    /// Copy everything as it is (a merged rootfs for `docker export`).
    Keep,
}

struct Walker<'a, W: Write> {
    b: tar::Builder<W>,
    mode: Whiteouts,
    root: &'a Path,
    /// (dev, ino) -> first path, for hard links
    seen: HashMap<(u64, u64), PathBuf>,
    /// relative paths left out (with everything below them)
    skip: &'a std::collections::HashSet<PathBuf>,
}

fn list_dir(fd: &OwnedFd) -> rustix::io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for e in rfs::Dir::read_from(fd)? {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

fn getxattrs(fd: BorrowedFd<'_>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut names = vec![0u8; 4096];
    let Ok(n) = rfs::flistxattr(fd, &mut names[..]) else {
        return out;
    };
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        let mut val = vec![0u8; 65536];
        if let Ok(len) = rfs::fgetxattr(fd, name, &mut val[..]) {
            val.truncate(len);
            out.push((name.to_string(), val));
        }
    }
    out
}

impl<W: Write> Walker<'_, W> {
    fn err(&self, rel: &Path, op: &'static str, e: impl Into<io::Error>) -> Error {
        Error::io(op, self.root.join(rel), e.into())
    }

    fn header(st: &rfs::Stat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid as u64);
        h.set_gid(st.st_gid as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        h
    }

    fn pax(&mut self, rel: &Path, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        let keep: Vec<(String, &[u8])> = xattrs
            .iter()
            .filter(|(k, _)| !k.starts_with("trusted.overlay."))
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        if !keep.is_empty() {
            self.b
                .append_pax_extensions(keep.iter().map(|(k, v)| (k.as_str(), *v)))
                .map_err(|e| self.err(rel, "write tar", e))?;
        }
        Ok(())
    }

    fn empty_file(&mut self, rel: &Path, st: &rfs::Stat) -> Result<()> {
        let mut h = Self::header(st, tar::EntryType::Regular);
        h.set_mode(0o644);
        self.b
            .append_data(&mut h, rel, io::empty())
            .map_err(|e| self.err(rel, "write tar", e))
    }

    fn dir(&mut self, fd: &OwnedFd, rel: &Path) -> Result<()> {
        let names = list_dir(fd).map_err(|e| self.err(rel, "readdir", e))?;
        for name in names {
            let nm = OsStr::from_bytes(&name);
            let child = rel.join(nm);
            if self.skip.contains(&child) {
                continue;
            }
            let st = rfs::statat(fd, nm, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.err(&child, "stat", e))?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    let cfd = rfs::openat(
                        fd,
                        nm,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| self.err(&child, "open", e))?;
                    let xattrs = getxattrs(cfd.as_fd());
                    let opaque = xattrs
                        .iter()
                        .any(|(k, v)| k == "trusted.overlay.opaque" && v.as_slice() == b"y");
                    self.pax(&child, &xattrs)?;
                    let mut h = Self::header(&st, tar::EntryType::Directory);
                    self.b
                        .append_data(&mut h, &child, io::empty())
                        .map_err(|e| self.err(&child, "write tar", e))?;
                    if opaque && self.mode == Whiteouts::Convert {
                        self.empty_file(&child.join(".wh..wh..opq"), &st)?;
                    }
                    self.dir(&cfd, &child)?;
                }
                FileType::CharacterDevice if self.mode == Whiteouts::Convert && st.st_rdev == 0 => {
                    let mut wh = b".wh.".to_vec();
                    wh.extend_from_slice(&name);
                    self.empty_file(&rel.join(OsStr::from_bytes(&wh)), &st)?;
                }
                ft => {
                    if st.st_nlink > 1 && ft != FileType::Symlink {
                        let key = (st.st_dev, st.st_ino);
                        if let Some(first) = self.seen.get(&key).cloned() {
                            let mut h = Self::header(&st, tar::EntryType::Link);
                            self.b
                                .append_link(&mut h, &child, &first)
                                .map_err(|e| self.err(&child, "write tar", e))?;
                            continue;
                        }
                        self.seen.insert(key, child.clone());
                    }
                    self.leaf(fd, nm, &child, &st, ft)?;
                }
            }
        }
        Ok(())
    }

    fn leaf(
        &mut self,
        dir: &OwnedFd,
        nm: &OsStr,
        rel: &Path,
        st: &rfs::Stat,
        ft: FileType,
    ) -> Result<()> {
        match ft {
            FileType::RegularFile => {
                let fd = rfs::openat(
                    dir,
                    nm,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.err(rel, "open", e))?;
                let xattrs = getxattrs(fd.as_fd());
                self.pax(rel, &xattrs)?;
                let f = File::from(fd);
                let mut h = Self::header(st, tar::EntryType::Regular);
                h.set_size(st.st_size as u64);
                // A file that changes size while being read would corrupt the stream: take
                // exactly st_size bytes (zero-padded if it shrank).
                let size = st.st_size as u64;
                let r = io::Read::take(
                    io::Read::chain(io::Read::take(f, size), io::repeat(0)),
                    size,
                );
                self.b
                    .append_data(&mut h, rel, r)
                    .map_err(|e| self.err(rel, "write tar", e))
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(dir, nm, Vec::new())
                    .map_err(|e| self.err(rel, "readlink", e))?;
                let mut h = Self::header(st, tar::EntryType::Symlink);
                self.b
                    .append_link(&mut h, rel, OsStr::from_bytes(target.as_bytes()))
                    .map_err(|e| self.err(rel, "write tar", e))
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let kind = match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = Self::header(st, kind);
                if ft != FileType::Fifo {
                    h.set_device_major(rfs::major(st.st_rdev))
                        .map_err(|e| self.err(rel, "header", e))?;
                    h.set_device_minor(rfs::minor(st.st_rdev))
                        .map_err(|e| self.err(rel, "header", e))?;
                }
                self.b
                    .append_data(&mut h, rel, io::empty())
                    .map_err(|e| self.err(rel, "write tar", e))
            }
            // Sockets and unknown types are not representable in a layer.
            _ => Ok(()),
        }
    }
}

/// Writes the contents of `dir` (not `dir` itself) as a tar stream to `w`, entries sorted by
/// name, with owners, modes, mtimes, xattrs, hard links, devices, and whiteouts per `mode`.
pub fn write_tar<W: Write>(dir: &Path, w: W, mode: Whiteouts) -> Result<W> {
    write_tar_skipping(dir, w, mode, &std::collections::HashSet::new())
}

/// Like [`write_tar`], leaving out the relative paths in `skip` and everything below them.
pub fn write_tar_skipping<W: Write>(
    dir: &Path,
    w: W,
    mode: Whiteouts,
    skip: &std::collections::HashSet<PathBuf>,
) -> Result<W> {
    let root = rfs::openat(
        CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx("open", dir)?;
    let mut walker = Walker {
        b: tar::Builder::new(w),
        mode,
        root: dir,
        seen: HashMap::new(),
        skip,
    };
    walker.dir(&root, Path::new(""))?;
    walker.b.into_inner().ctx("write tar", dir)
}

impl ImageStore {
    /// Turns an overlay upperdir into a layer on top of `parent` (`docker commit`): the
    /// directory is tarred (whiteouts converted) into a temp file, then applied.
    pub fn commit_layer(&self, parent: Option<&ChainId>, upper: &Path) -> Result<LayerInfo> {
        self.commit_layer_skipping(parent, upper, &std::collections::HashSet::new())
    }

    /// Like [`commit_layer`](Self::commit_layer), leaving out the relative paths in `skip`
    /// (mount targets the runtime created, which dockerd keeps in a hidden init layer).
    pub fn commit_layer_skipping(
        &self,
        parent: Option<&ChainId>,
        upper: &Path,
        skip: &std::collections::HashSet<PathBuf>,
    ) -> Result<LayerInfo> {
        let tmp = tmp_path(&self.root.join("ingest"), "commit-");
        let res = (|| {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)
                .ctx("create", &tmp)?;
            let mut f = write_tar_skipping(upper, io::BufWriter::new(f), Whiteouts::Convert, skip)?
                .into_inner()
                .map_err(|e| Error::io("write", &tmp, e.into_error()))?;
            f.rewind().ctx("seek", &tmp)?;
            self.apply_layer(parent, f)
        })();
        let _ = fs::remove_file(&tmp);
        res
    }
}
