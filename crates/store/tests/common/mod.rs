//! Shared helpers for the store integration tests.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "these tests create device nodes, chown files and mount overlays: run them as root"
    );
}

/// A small busybox root filesystem, tarred with the `tar` crate (symlinks kept as symlinks).
pub fn busybox_rootfs_tar(tmp: &Path) -> Vec<u8> {
    let dir = tmp.join("bbroot");
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::create_dir_all(dir.join("home/user")).unwrap();
    fs::copy("/usr/bin/busybox", dir.join("bin/busybox")).unwrap();
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    for app in ["sh", "ls", "cat", "echo"] {
        symlink("busybox", dir.join("bin").join(app)).unwrap();
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
    )
    .unwrap();
    fs::set_permissions(dir.join("home/user"), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(dir.join("home/user"), Some(1000), Some(1000)).unwrap();
    fs::write(dir.join("home/user/notes"), "hello\n").unwrap();
    std::os::unix::fs::chown(dir.join("home/user/notes"), Some(1000), Some(1000)).unwrap();

    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    b.append_dir_all(".", &dir).unwrap();
    b.into_inner().unwrap()
}

/// Builds a tar from (name, kind, link target, data, mode) with names written verbatim
/// (no validation), so hostile names like `../x` can be produced.
pub struct RawTar {
    b: tar::Builder<Vec<u8>>,
}

impl RawTar {
    pub fn new() -> Self {
        RawTar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    pub fn entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        link: &str,
        data: &[u8],
        mode: u32,
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        {
            let g = h.as_gnu_mut().unwrap();
            assert!(name.len() < g.name.len() && link.len() < g.linkname.len());
            g.name[..name.len()].copy_from_slice(name.as_bytes());
            g.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, tar::EntryType::Regular, "", data, 0o644)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Directory, "", b"", 0o755)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Symlink, target, b"", 0o777)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Link, target, b"", 0o644)
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// A minimal image config naming `diff_ids`.
pub fn config_for(diff_ids: &[String], extra: &str) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{{"Labels":{{"x":"{extra}"}}}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    )
    .into_bytes()
}
