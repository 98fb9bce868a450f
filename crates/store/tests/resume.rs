//! Resumable blob ingest: an interrupted download keeps what arrived, the next attempt appends
//! from an offset (re-hashing the kept bytes), a lying source is discarded, and partials
//! survive reopening the store.

use std::io::{self, Read};

use berth_store::{Descriptor, Digest, ImageStore};

/// A reader that yields `data` and then fails (a registry that went away).
struct Broken<'a> {
    data: &'a [u8],
}

impl Read for Broken<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Err(io::Error::other("connection reset"));
        }
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn blob(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn interrupted_ingest_resumes_from_the_partial() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let data = blob(300_000);
    let desc = Descriptor {
        digest: Digest::of(&data),
        size: data.len() as u64,
    };
    let blobs = store.blobs();
    assert_eq!(blobs.partial_len(&desc.digest), 0);
    assert!(blobs
        .ingest_resumable(
            Broken {
                data: &data[..120_000]
            },
            &desc,
            0
        )
        .is_err());
    assert_eq!(blobs.partial_len(&desc.digest), 120_000);
    assert!(!blobs.exists(&desc.digest));
    // Reopening the store (a daemon restart) keeps the partial.
    drop(store);
    let store = ImageStore::open(dir.path()).unwrap();
    let blobs = store.blobs();
    let have = blobs.partial_len(&desc.digest);
    assert_eq!(have, 120_000);
    let got = blobs
        .ingest_resumable(&data[have as usize..], &desc, have)
        .unwrap();
    assert_eq!(got, desc);
    assert_eq!(blobs.get(&desc.digest).unwrap(), data);
    assert_eq!(blobs.partial_len(&desc.digest), 0);
}

#[test]
fn a_source_that_restarts_from_zero_truncates_the_partial() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let data = blob(50_000);
    let desc = Descriptor {
        digest: Digest::of(&data),
        size: data.len() as u64,
    };
    let _ = store.blobs().ingest_resumable(
        Broken {
            data: &data[..20_000],
        },
        &desc,
        0,
    );
    // The registry ignored the range: the whole blob again, from offset 0.
    assert_eq!(
        store.blobs().ingest_resumable(&data[..], &desc, 0).unwrap(),
        desc
    );
    assert_eq!(store.blobs().get(&desc.digest).unwrap(), data);
}

#[test]
fn corrupt_partial_or_lying_source_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let data = blob(40_000);
    let desc = Descriptor {
        digest: Digest::of(&data),
        size: data.len() as u64,
    };
    let mut bad = data.clone();
    bad[100] ^= 0xff;
    let _ = store.blobs().ingest_resumable(
        Broken {
            data: &bad[..10_000],
        },
        &desc,
        0,
    );
    // Resuming on top of corrupt kept bytes fails verification and drops the partial...
    assert!(store
        .blobs()
        .ingest_resumable(&data[10_000..], &desc, 10_000)
        .is_err());
    assert_eq!(store.blobs().partial_len(&desc.digest), 0);
    assert!(!store.blobs().exists(&desc.digest));
    // ...so the next attempt starts clean and succeeds.
    assert_eq!(
        store.blobs().ingest_resumable(&data[..], &desc, 0).unwrap(),
        desc
    );
}

#[test]
fn store_schema_is_versioned_and_newer_stores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(ImageStore::open(dir.path()).unwrap());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("schema.json")).unwrap()).unwrap();
    assert_eq!(v["schemaVersion"], berth_store::SCHEMA_VERSION);
    std::fs::write(dir.path().join("schema.json"), br#"{"schemaVersion": 99}"#).unwrap();
    let err = ImageStore::open(dir.path())
        .err()
        .expect("a newer store must be refused")
        .to_string();
    assert!(err.contains("schema version 99"), "{err}");
}
