//! Import, determinism, resolution, tags, blobs, deletion.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use berth_store::{Descriptor, Digest, ErrorKind, ImageStore, ImportOptions};
use chrono::TimeZone;
use common::*;
use serde_json::json;

fn fixed_opts() -> ImportOptions {
    ImportOptions {
        created: Some(chrono::Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()),
        ..Default::default()
    }
}

#[test]
fn import_busybox_rootfs_and_run_it() -> anyhow::Result<()> {
    require_root();
    let tmp = tempfile::tempdir()?;
    let tar = busybox_rootfs_tar(tmp.path());
    let store = ImageStore::open(tmp.path().join("store"))?;

    let base = json!({"config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}});
    let id = store.import(&tar[..], base.clone(), fixed_opts())?;

    // The image id is the digest of the stored config blob.
    let config_bytes = store.config_bytes(&id)?;
    assert_eq!(id.hex(), sha256_hex(&config_bytes));
    let info = store.inspect(&id)?;
    let cfg = &info.config;
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    assert_eq!(
        cfg["rootfs"],
        json!({"type": "layers", "diff_ids": [diff_id]})
    );
    assert_eq!(cfg["architecture"], "amd64");
    assert_eq!(cfg["os"], "linux");
    assert_eq!(cfg["config"]["Cmd"], json!(["/bin/sh"]));
    assert_eq!(cfg["history"][0]["comment"], "Imported from -");
    assert_eq!(cfg["history"][0]["created_by"], "");
    assert_eq!(cfg["created"], "2024-05-01T12:00:00.000000000Z");
    let busybox_len = fs::metadata("/usr/bin/busybox")?.len();
    assert!(
        info.record.size >= busybox_len,
        "size {} < busybox {}",
        info.record.size,
        busybox_len
    );

    // Same tar + same config -> same diff id, same image id, snapshot reused.
    let id2 = store.import(&tar[..], base, fixed_opts())?;
    assert_eq!(id, id2);
    assert_eq!(store.list()?.len(), 1);

    let lowers = store.lower_dirs(&id)?;
    assert_eq!(lowers.len(), 1);
    let fsdir = &lowers[0];
    assert_eq!(
        fsdir,
        &store
            .root()
            .join("snapshots")
            .join(&diff_id[7..])
            .join("fs")
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(fsdir.parent().unwrap().join("meta.json"))?)?;
    assert_eq!(meta["diff_id"], diff_id);
    assert_eq!(meta["chain_id"], diff_id);

    // Contents, modes, owners, symlinks preserved.
    assert_eq!(
        fs::read(fsdir.join("bin/busybox"))?,
        fs::read("/usr/bin/busybox")?
    );
    assert_eq!(
        fs::metadata(fsdir.join("bin/busybox"))?
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
    assert_eq!(
        fs::read_link(fsdir.join("bin/sh"))?.to_str(),
        Some("busybox")
    );
    let home = fs::metadata(fsdir.join("home/user"))?;
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o7777),
        (1000, 1000, 0o700)
    );
    assert_eq!(fs::metadata(fsdir.join("home/user/notes"))?.uid(), 1000);

    // The unpacked rootfs actually works.
    let out = Command::new("chroot")
        .arg(fsdir)
        .args([
            "/bin/sh",
            "-c",
            "echo hi from $(cat /etc/passwd | head -n1 | cut -d: -f1)",
        ])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi from root\n");
    Ok(())
}

#[test]
fn create_image_id_is_config_digest_and_requires_layers() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let store = ImageStore::open(tmp.path())?;
    let cfg = config_for(&[], "a");
    let id = store.create_image(&cfg)?;
    assert_eq!(id.to_string(), format!("sha256:{}", sha256_hex(&cfg)));
    assert_eq!(store.create_image(&cfg)?, id);
    assert!(tmp
        .path()
        .join("images")
        .join(format!("{}.json", id.hex()))
        .is_file());
    assert!(tmp.path().join("blobs/sha256").join(id.hex()).is_file());

    // A config naming a layer that was never applied is refused.
    let missing = config_for(&[format!("sha256:{}", "ab".repeat(32))], "b");
    let err = store.create_image(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(store.create_image(b"not json").is_err());
    Ok(())
}

#[test]
fn resolution_follows_dockerd_order() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let store = ImageStore::open(tmp.path())?;
    let ids: Vec<Digest> = (0..17)
        .map(|i| {
            store
                .create_image(&config_for(&[], &i.to_string()))
                .unwrap()
        })
        .collect();
    let id = &ids[0];
    store.tag(id, "busybox")?;
    store.tag(&ids[1], "example.com/team/app:v1")?;

    for input in [
        "busybox",
        "busybox:latest",
        "library/busybox",
        "docker.io/library/busybox:latest",
    ] {
        assert_eq!(&store.resolve(input)?, id, "{input}");
    }
    assert_eq!(store.resolve("example.com/team/app:v1")?, ids[1]);
    assert_eq!(&store.resolve(&id.to_string())?, id);
    assert_eq!(&store.resolve(id.hex())?, id);
    assert_eq!(&store.resolve(id.short())?, id);
    assert_eq!(&store.resolve(&format!("sha256:{}", &id.hex()[..10]))?, id);

    let err = store.resolve("nosuchimage").unwrap_err();
    assert_eq!(err.to_string(), "No such image: nosuchimage:latest");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = store.resolve("busybox:nosuchtag").unwrap_err();
    assert_eq!(err.to_string(), "No such image: busybox:nosuchtag");
    let err = store
        .resolve(&format!("sha256:{}", "0".repeat(64)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(store.resolve("BadName").unwrap_err().kind() == ErrorKind::InvalidArgument);

    // 17 ids over 16 leading hex digits: some first digit is shared.
    let mut firsts: Vec<char> = ids
        .iter()
        .map(|d| d.hex().chars().next().unwrap())
        .collect();
    firsts.sort();
    let shared = firsts.windows(2).find(|w| w[0] == w[1]).unwrap()[0];
    let err = store.resolve(&shared.to_string()).unwrap_err();
    assert!(err.to_string().contains("multiple IDs found"), "{err}");

    // A tag wins over an id prefix of the same spelling.
    let other = ids
        .iter()
        .find(|d| !d.hex().starts_with(&id.hex()[..4]))
        .unwrap();
    store.tag(other, &id.hex()[..4])?;
    assert_eq!(&store.resolve(&id.hex()[..4])?, other);
    Ok(())
}

#[test]
fn tags_persist_across_reopen() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (a, b) = {
        let store = ImageStore::open(tmp.path())?;
        let a = store.create_image(&config_for(&[], "a"))?;
        let b = store.create_image(&config_for(&[], "b"))?;
        store.tag(&a, "busybox")?;
        store.tag(&a, "busybox:1.36")?;
        store.tag(&b, "me/app:v2")?;
        assert_eq!(store.untag("busybox:1.36")?, a);
        assert_eq!(
            store.untag("busybox:1.36").unwrap_err().to_string(),
            "No such image: busybox:1.36"
        );
        // retagging moves the tag
        store.tag(&b, "busybox")?;
        store.tag(&a, "busybox")?;
        (a, b)
    };
    let raw: serde_json::Value =
        serde_json::from_slice(&fs::read(tmp.path().join("repositories.json"))?)?;
    assert_eq!(
        raw,
        json!({"refs": {"docker.io/library/busybox:latest": a.to_string(), "docker.io/me/app:v2": b.to_string()}})
    );
    let store = ImageStore::open(tmp.path())?;
    assert_eq!(
        store.refs_for(&a),
        vec!["docker.io/library/busybox:latest".to_string()]
    );
    assert_eq!(store.resolve("me/app:v2")?, b);
    assert!(store.resolve("busybox:1.36").is_err());
    let list = store.list()?;
    let row = list.iter().find(|r| r.id == a).unwrap();
    assert_eq!(row.repo_tags, vec!["busybox:latest".to_string()]);
    assert_eq!(row.labels.get("x").map(String::as_str), Some("a"));
    assert_eq!(row.created, 1_704_067_200);
    assert_eq!(store.inspect(&b)?.repo_tags, vec!["me/app:v2".to_string()]);
    Ok(())
}

#[test]
fn store_is_usable_from_many_threads() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let store = std::sync::Arc::new(ImageStore::open(tmp.path())?);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let s = store.clone();
            std::thread::spawn(move || {
                let id = s.create_image(&config_for(&[], &format!("t{i}"))).unwrap();
                s.tag(&id, &format!("app:{i}")).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    drop(store);
    let store = ImageStore::open(tmp.path())?;
    assert_eq!(store.references().len(), 8);
    Ok(())
}

#[test]
fn blobs_put_ingest_verify_delete() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let store = ImageStore::open(tmp.path())?;
    let blobs = store.blobs();
    let d = blobs.put(b"hello")?;
    assert_eq!(d.size, 5);
    assert_eq!(d.digest.hex(), sha256_hex(b"hello"));
    assert!(blobs.exists(&d.digest));
    assert_eq!(blobs.get(&d.digest)?, b"hello");
    let mut s = String::new();
    std::io::Read::read_to_string(&mut blobs.open(&d.digest)?, &mut s)?;
    assert_eq!(s, "hello");

    let data = vec![7u8; 300_000];
    let good = Descriptor {
        digest: Digest::of(&data),
        size: data.len() as u64,
    };
    assert_eq!(blobs.ingest(&data[..], Some(&good))?, good);
    let bad = Descriptor {
        digest: Digest::of(b"other"),
        size: data.len() as u64,
    };
    let err = blobs.ingest(&b"zzz"[..], Some(&bad)).unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(!blobs.exists(&Digest::of(b"zzz")));
    let wrong_size = Descriptor {
        digest: Digest::of(b"zzz"),
        size: 4,
    };
    assert!(blobs.ingest(&b"zzz"[..], Some(&wrong_size)).is_err());
    assert_eq!(
        fs::read_dir(tmp.path().join("ingest"))?.count(),
        0,
        "temp files left in ingest/"
    );

    blobs.delete(&d.digest)?;
    assert!(!blobs.exists(&d.digest));
    assert_eq!(
        blobs.get(&d.digest).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    Ok(())
}

#[test]
fn delete_removes_unshared_snapshots_only() -> anyhow::Result<()> {
    require_root();
    let tmp = tempfile::tempdir()?;
    let store = ImageStore::open(tmp.path().join("s"))?;
    let mut t = RawTar::new();
    t.file("a", b"1");
    let l1 = store.apply_layer(None, &t.finish()[..])?;
    let mut t = RawTar::new();
    t.file("b", b"2");
    let l2 = store.apply_layer(Some(&l1.chain_id), &t.finish()[..])?;
    let base = store.create_image(&config_for(&[l1.diff_id.to_string()], "base"))?;
    let top = store.create_image(&config_for(
        &[l1.diff_id.to_string(), l2.diff_id.to_string()],
        "top",
    ))?;
    store.tag(&top, "top")?;
    assert_eq!(
        store.lower_dirs(&top)?,
        vec![
            store.snapshot_fs(&l2.chain_id),
            store.snapshot_fs(&l1.chain_id)
        ]
    );

    let rep = store.delete(&top)?;
    assert_eq!(rep.untagged, vec!["top:latest".to_string()]);
    assert_eq!(rep.deleted, vec![top.clone()]);
    assert!(!store.snapshot_exists(&l2.chain_id));
    assert!(store.snapshot_exists(&l1.chain_id), "shared layer removed");
    assert!(store.resolve("top").is_err());
    assert_eq!(store.delete(&top).unwrap_err().kind(), ErrorKind::NotFound);

    // Child images block deletion of their parent.
    let child = store
        .create_image_with_parent(&config_for(&[l1.diff_id.to_string()], "child"), Some(&base))?;
    assert_eq!(store.delete(&base).unwrap_err().kind(), ErrorKind::Conflict);
    store.delete(&child)?;
    store.delete(&base)?;
    assert!(!store.snapshot_exists(&l1.chain_id));
    assert!(store.list()?.is_empty());

    // A snapshot left by an interrupted pull (no image) is swept on reopen.
    let mut t = RawTar::new();
    t.file("orphan", b"1");
    let orphan = store.apply_layer(None, &t.finish()[..])?;
    let kept = store.create_image(&config_for(&[l1.diff_id.to_string()], "kept"));
    assert!(
        kept.is_err(),
        "l1 was garbage-collected, so its image cannot be created"
    );
    let l1 = store.apply_layer(
        None,
        &{
            let mut t = RawTar::new();
            t.file("a", b"1");
            t.finish()
        }[..],
    )?;
    let kept = store.create_image(&config_for(&[l1.diff_id.to_string()], "kept"))?;
    assert_eq!(
        store.gc_snapshots()?,
        0,
        "pending snapshot swept while in flight"
    );
    let root = store.root().to_path_buf();
    drop(store);
    let store = ImageStore::open(&root)?;
    assert!(!store.snapshot_exists(&orphan.chain_id));
    assert!(store.snapshot_exists(&l1.chain_id));
    assert_eq!(store.lower_dirs(&kept)?.len(), 1);
    Ok(())
}
