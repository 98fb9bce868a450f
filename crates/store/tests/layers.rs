//! Layer formats, whiteouts under a real overlay mount, and hostile tarballs.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_store::{ErrorKind, ImageStore};
use common::*;

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_and_zstd_layers_have_the_plain_diff_id() -> anyhow::Result<()> {
    require_root();
    let tmp = tempfile::tempdir()?;
    let plain = busybox_rootfs_tar(tmp.path());
    let diff = format!("sha256:{}", sha256_hex(&plain));
    let gz = gzip(&plain);
    let zst = zstd::encode_all(&plain[..], 3)?;
    assert_ne!(gz[..2], plain[..2]);

    for (name, bytes) in [("plain", &plain), ("gzip", &gz), ("zstd", &zst)] {
        let store = ImageStore::open(tmp.path().join(name))?;
        let info = store.apply_layer(None, &bytes[..])?;
        assert_eq!(info.diff_id.to_string(), diff, "{name}");
        assert_eq!(
            info.chain_id, info.diff_id,
            "{name}: bottom chain id is the diff id"
        );
        let fsdir = store.snapshot_fs(&info.chain_id);
        assert_eq!(
            fs::read(fsdir.join("bin/busybox"))?,
            fs::read("/usr/bin/busybox")?,
            "{name}"
        );
        assert_eq!(store.snapshot_meta(&info.chain_id)?.size, info.size);
    }

    // The chain id of a second layer follows the OCI formula.
    let store = ImageStore::open(tmp.path().join("chain"))?;
    let l1 = store.apply_layer(None, &plain[..])?;
    let mut t = RawTar::new();
    t.file("extra", b"x");
    let l2_tar = t.finish();
    let l2 = store.apply_layer(Some(&l1.chain_id), &zstd::encode_all(&l2_tar[..], 1)?[..])?;
    let expected = sha256_hex(format!("{} {}", l1.chain_id, l2.diff_id).as_bytes());
    assert_eq!(l2.chain_id.hex(), expected);
    assert_eq!(l2.diff_id.hex(), sha256_hex(&l2_tar));
    assert_eq!(
        store.snapshot_meta(&l2.chain_id)?.parent.as_ref(),
        Some(&l1.chain_id)
    );
    // Applying it again reuses the snapshot and leaves no temp dirs.
    let again = store.apply_layer(Some(&l1.chain_id), &l2_tar[..])?;
    assert_eq!(again, l2);
    let names: Vec<String> = fs::read_dir(store.root().join("snapshots"))?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // Unknown parent, garbage, and xz are refused.
    let err = store
        .apply_layer(Some(&berth_store::Digest::of(b"nope")), &l2_tar[..])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(store
        .apply_layer(None, &[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2][..])
        .is_err());
    assert!(
        store.apply_layer(None, &gz[..gz.len() / 2]).is_err(),
        "truncated gzip accepted"
    );
    Ok(())
}

struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn whiteouts_hide_lower_files_under_overlay() -> anyhow::Result<()> {
    require_root();
    let tmp = tempfile::tempdir()?;
    let store = ImageStore::open(tmp.path().join("store"))?;
    let mut t = RawTar::new();
    t.dir("a/")
        .file("a/keep", b"k")
        .file("a/gone", b"g")
        .dir("d/")
        .file("d/old", b"o")
        .dir("e/")
        .file("e/f", b"f");
    let l1 = store.apply_layer(None, &t.finish()[..])?;
    let mut t = RawTar::new();
    t.dir("a/")
        .file("a/.wh.gone", b"")
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"n")
        .file(".wh.e", b"");
    let l2 = store.apply_layer(Some(&l1.chain_id), &gzip(&t.finish())[..])?;
    let id = store.create_image(&config_for(
        &[l1.diff_id.to_string(), l2.diff_id.to_string()],
        "wh",
    ))?;

    let upper = store.snapshot_fs(&l2.chain_id);
    let wh = fs::symlink_metadata(upper.join("a/gone"))?;
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "a/gone is not a 0:0 char device"
    );
    assert!(!upper.join("a/.wh.gone").exists());
    assert!(!upper.join("d/.wh..wh..opq").exists());
    let mut buf = [0u8; 8];
    let n = rustix::fs::getxattr(upper.join("d"), "trusted.overlay.opaque", &mut buf[..])?;
    assert_eq!(&buf[..n], b"y");
    assert!(rustix::fs::getxattr(upper.join("a"), "trusted.overlay.opaque", &mut buf[..]).is_err());

    let lowers = store.lower_dirs(&id)?;
    assert_eq!(lowers, vec![upper.clone(), store.snapshot_fs(&l1.chain_id)]);
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt)?;
    let lowerdir = lowers
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("lowerdir={lowerdir}"))
        .arg(&mnt)
        .status()?;
    assert!(st.success(), "mount overlay failed");
    let _m = Mount(mnt.clone());
    assert_eq!(fs::read(mnt.join("a/keep"))?, b"k");
    assert!(!mnt.join("a/gone").exists(), "whiteout did not hide a/gone");
    assert!(!mnt.join("d/old").exists(), "opaque dir did not hide d/old");
    assert_eq!(fs::read(mnt.join("d/new"))?, b"n");
    assert!(!mnt.join("e").exists(), "whiteout did not hide dir e");
    Ok(())
}

/// A canary directory next to the store: nothing may be written there.
struct Canary {
    dir: PathBuf,
    secret: PathBuf,
}

impl Canary {
    fn new(tmp: &Path) -> Canary {
        let dir = tmp.join("canary");
        fs::create_dir(&dir).unwrap();
        let secret = dir.join("secret");
        fs::write(&secret, "s3cret").unwrap();
        Canary { dir, secret }
    }

    fn check(&self, case: &str) {
        let names: Vec<String> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["secret".to_string()],
            "{case}: canary dir touched"
        );
        assert_eq!(
            fs::read_to_string(&self.secret).unwrap(),
            "s3cret",
            "{case}: canary modified"
        );
        assert_eq!(
            fs::metadata(&self.secret).unwrap().nlink(),
            1,
            "{case}: canary hardlinked"
        );
    }
}

/// Applies `tar`; returns the snapshot dir on success. Either way the canary must be intact,
/// and no temp snapshot may be left behind.
fn apply_hostile(store: &ImageStore, canary: &Canary, case: &str, tar: Vec<u8>) -> Option<PathBuf> {
    let res = store.apply_layer(None, &tar[..]);
    canary.check(case);
    let tmps: Vec<_> = fs::read_dir(store.root().join("snapshots"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".tmp")
        })
        .collect();
    assert!(tmps.is_empty(), "{case}: temp snapshot left behind");
    match res {
        Ok(info) => Some(store.snapshot_fs(&info.chain_id)),
        Err(e) => {
            assert!(
                matches!(e.kind(), ErrorKind::InvalidArgument | ErrorKind::Io),
                "{case}: {e}"
            );
            None
        }
    }
}

#[test]
fn hostile_tars_cannot_write_outside_the_snapshot() -> anyhow::Result<()> {
    require_root();
    let tmp = tempfile::tempdir()?;
    let store = ImageStore::open(tmp.path().join("store"))?;
    let canary = Canary::new(tmp.path());
    let c = canary
        .dir
        .to_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let depth = "../".repeat(tmp.path().join("store/snapshots/x/fs").components().count() + 2);
    let shadow_links = fs::metadata("/etc/shadow")?.nlink();

    // 1. `..` climbing out: contained (cleaned to a path below the root).
    let mut t = RawTar::new();
    t.file("../escape", b"x")
        .file(&format!("{depth}{c}/dotdot"), b"x");
    let fsdir = apply_hostile(&store, &canary, "dotdot", t.finish()).expect("dotdot contained");
    assert_eq!(fs::read(fsdir.join("escape"))?, b"x");
    assert_eq!(fs::read(fsdir.join(&c).join("dotdot"))?, b"x");
    assert!(!tmp.path().join("store/snapshots/escape").exists());

    // 2. Absolute paths: contained.
    let mut t = RawTar::new();
    t.file("/abs/path", b"x").file(&format!("/{c}/abs"), b"x");
    let fsdir = apply_hostile(&store, &canary, "absolute", t.finish()).expect("absolute contained");
    assert_eq!(fs::read(fsdir.join("abs/path"))?, b"x");
    assert!(fsdir.join(&c).join("abs").is_file());
    assert!(!Path::new("/abs").exists());

    // 3. Symlink `evil -> /`, then files through it. (The classic payload is
    // `evil/etc/passwd`; the test aims at the canary instead so that a regression cannot
    // damage the host it runs on.)
    let mut t = RawTar::new();
    t.symlink("evil", "/")
        .file(&format!("evil/{c}/through-root-link"), b"x")
        .file(&format!("evil/{c}/secret"), b"pwned");
    if let Some(fsdir) = apply_hostile(&store, &canary, "symlink-root", t.finish()) {
        assert_eq!(fs::read(fsdir.join(&c).join("secret"))?, b"pwned");
        assert_eq!(fs::read_link(fsdir.join("evil"))?.to_str(), Some("/"));
    }

    // 4. Symlink straight at the canary dir (absolute and relative), then files through it.
    let mut t = RawTar::new();
    t.symlink("abs", canary.dir.to_str().unwrap())
        .file("abs/through-abs-link", b"x")
        .symlink("rel", &format!("{depth}{c}"))
        .file("rel/through-rel-link", b"x")
        .symlink("sec", canary.secret.to_str().unwrap())
        .file("sec", b"overwrite through final symlink");
    if let Some(fsdir) = apply_hostile(&store, &canary, "symlink-canary", t.finish()) {
        assert!(fsdir.join(&c).join("through-abs-link").is_file());
        assert_eq!(
            fs::read(fsdir.join("sec"))?,
            b"overwrite through final symlink"
        );
    }

    // 5. Hard links to host files: refused or contained, never linked.
    for (case, target) in [
        ("hardlink-shadow", "/etc/shadow".to_string()),
        (
            "hardlink-canary",
            canary.secret.to_str().unwrap().to_string(),
        ),
        ("hardlink-dotdot", format!("{depth}{c}/secret")),
    ] {
        let mut t = RawTar::new();
        t.hardlink("h", &target);
        if let Some(fsdir) = apply_hostile(&store, &canary, case, t.finish()) {
            panic!(
                "{case}: hardlink to a missing in-root target accepted: {:?}",
                fs::symlink_metadata(fsdir.join("h"))
            );
        }
    }
    // A hardlink through a symlink to / resolves in the root too.
    let mut t = RawTar::new();
    t.symlink("root", "/")
        .hardlink("h", &format!("root/{c}/secret"));
    assert!(apply_hostile(&store, &canary, "hardlink-via-symlink", t.finish()).is_none());
    assert_eq!(
        fs::metadata("/etc/shadow")?.nlink(),
        shadow_links,
        "/etc/shadow got a new link"
    );

    // 6. A whiteout that tries to climb out.
    let mut t = RawTar::new();
    t.symlink("up", &depth)
        .file(&format!("up/{c}/.wh.secret"), b"");
    apply_hostile(&store, &canary, "whiteout-through-symlink", t.finish());

    // 7. Legit in-layer hard links still work.
    let mut t = RawTar::new();
    t.file("bin/real", b"data")
        .hardlink("bin/alias", "bin/real")
        .hardlink("alias2", "./bin/../bin/real");
    let fsdir =
        apply_hostile(&store, &canary, "legit-hardlink", t.finish()).expect("legit hardlink");
    assert_eq!(fs::metadata(fsdir.join("bin/real"))?.nlink(), 3);
    assert_eq!(
        fs::metadata(fsdir.join("bin/alias"))?.ino(),
        fs::metadata(fsdir.join("bin/real"))?.ino()
    );
    Ok(())
}

#[test]
fn devices_fifos_and_replacement() -> anyhow::Result<()> {
    require_root();
    let tmp = tempfile::tempdir()?;
    let store = ImageStore::open(tmp.path())?;
    let mut t = RawTar::new();
    t.entry("dev/null", tar::EntryType::Char, "", b"", 0o666);
    t.entry("fifo", tar::EntryType::Fifo, "", b"", 0o640);
    t.file("x", b"first").dir("x/").file("x/inner", b"i"); // file replaced by dir
    t.dir("y/").file("y/z", b"z").symlink("y", "x"); // dir replaced by symlink
    t.entry("setuid", tar::EntryType::Regular, "", b"#!", 0o4755);
    let info = store.apply_layer(None, &t.finish()[..])?;
    let fsdir = store.snapshot_fs(&info.chain_id);
    let m = fs::symlink_metadata(fsdir.join("dev/null"))?;
    assert!(m.file_type().is_char_device());
    assert_eq!(m.mode() & 0o7777, 0o666);
    let m = fs::symlink_metadata(fsdir.join("fifo"))?;
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!(fs::read(fsdir.join("x/inner"))?, b"i");
    assert_eq!(fs::read_link(fsdir.join("y"))?.to_str(), Some("x"));
    assert_eq!(fs::metadata(fsdir.join("setuid"))?.mode() & 0o7777, 0o4755);
    assert_eq!(fs::metadata(fsdir.join("setuid"))?.mtime(), 1_700_000_000);
    Ok(())
}
