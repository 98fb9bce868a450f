//! Overlay upperdir -> layer (docker commit) round trip.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_store::{write_tar, ImageStore, Whiteouts};
use common::*;

struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_overlay(lowers: &[PathBuf], upper: Option<(&Path, &Path)>, mnt: &Path) -> Mount {
    let lower = lowers
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let mut opts = format!("lowerdir={lower}");
    if let Some((u, w)) = upper {
        opts.push_str(&format!(
            ",upperdir={},workdir={}",
            u.display(),
            w.display()
        ));
    }
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mount -o {opts}");
    Mount(mnt.to_path_buf())
}

#[test]
fn commit_upperdir_round_trips_through_overlay() -> anyhow::Result<()> {
    require_root();
    let tmp = tempfile::tempdir()?;
    let store = ImageStore::open(tmp.path().join("store"))?;
    let mut t = RawTar::new();
    t.dir("etc/")
        .file("etc/keep", b"k")
        .file("etc/remove-me", b"r")
        .dir("data/")
        .file("data/old", b"o");
    let l1 = store.apply_layer(None, &t.finish()[..])?;

    let (upper, work, mnt) = (
        tmp.path().join("upper"),
        tmp.path().join("work"),
        tmp.path().join("mnt"),
    );
    for d in [&upper, &work, &mnt] {
        fs::create_dir(d)?;
    }
    {
        let _m = mount_overlay(
            &[store.snapshot_fs(&l1.chain_id)],
            Some((&upper, &work)),
            &mnt,
        );
        fs::remove_file(mnt.join("etc/remove-me"))?;
        fs::remove_dir_all(mnt.join("data"))?;
        fs::create_dir(mnt.join("data"))?; // becomes an opaque dir in the upper
        fs::write(mnt.join("data/new"), "n")?;
        fs::write(mnt.join("hello"), "world")?;
        fs::hard_link(mnt.join("hello"), mnt.join("hello-link"))?;
        std::os::unix::fs::symlink("hello", mnt.join("sym"))?;
        std::os::unix::fs::chown(mnt.join("hello"), Some(123), Some(456))?;
    }

    // The tar of the upper dir speaks OCI whiteouts.
    let tar = write_tar(&upper, Vec::new(), Whiteouts::Convert)?;
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries()? {
        let e = e?;
        names.push((
            e.path()?.to_string_lossy().into_owned(),
            e.header().entry_type(),
        ));
    }
    let has = |n: &str| names.iter().any(|(p, _)| p.trim_end_matches('/') == n);
    assert!(has("etc/.wh.remove-me"), "{names:?}");
    assert!(has("data/.wh..wh..opq"), "{names:?}");
    assert!(
        names
            .iter()
            .any(|(p, k)| p == "hello-link" && *k == tar::EntryType::Link)
            || names
                .iter()
                .any(|(p, k)| p == "hello" && *k == tar::EntryType::Link),
        "{names:?}"
    );

    let l2 = store.commit_layer(Some(&l1.chain_id), &upper)?;
    assert_eq!(
        l2.diff_id.hex(),
        sha256_hex(&tar),
        "commit tar is deterministic"
    );
    let id = store.create_image(&config_for(
        &[l1.diff_id.to_string(), l2.diff_id.to_string()],
        "c",
    ))?;
    let mnt2 = tmp.path().join("mnt2");
    fs::create_dir(&mnt2)?;
    let _m = mount_overlay(&store.lower_dirs(&id)?, None, &mnt2);
    assert_eq!(fs::read(mnt2.join("etc/keep"))?, b"k");
    assert!(!mnt2.join("etc/remove-me").exists());
    assert!(!mnt2.join("data/old").exists());
    assert_eq!(fs::read(mnt2.join("data/new"))?, b"n");
    let hello = fs::metadata(mnt2.join("hello"))?;
    assert_eq!((hello.uid(), hello.gid(), hello.nlink()), (123, 456, 2));
    assert_eq!(fs::read_link(mnt2.join("sym"))?.to_str(), Some("hello"));
    Ok(())
}

#[test]
fn export_keeps_tree_as_is() -> anyhow::Result<()> {
    require_root();
    let tmp = tempfile::tempdir()?;
    let tarb = busybox_rootfs_tar(tmp.path());
    let store = ImageStore::open(tmp.path().join("store"))?;
    let l = store.apply_layer(None, &tarb[..])?;
    let out = write_tar(&store.snapshot_fs(&l.chain_id), Vec::new(), Whiteouts::Keep)?;
    // Re-applying the export gives the same tree.
    let again = store.apply_layer(None, &out[..])?;
    let fsdir = store.snapshot_fs(&again.chain_id);
    assert_eq!(
        fs::read(fsdir.join("bin/busybox"))?,
        fs::read("/usr/bin/busybox")?
    );
    assert_eq!(fs::metadata(fsdir.join("home/user"))?.uid(), 1000);
    Ok(())
}
