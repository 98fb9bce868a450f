//! berth-store: content-addressed blobs, safe layer unpacking into per-chain snapshots,
//! image records and tags. Synchronous; the daemon calls it from `spawn_blocking`.
//!
//! Layout under the store root (see docs/DESIGN.md):
//! `blobs/sha256/<hex>`, `ingest/`, `snapshots/<chainid-hex>/{fs,meta.json}`,
//! `images/<id-hex>.json`, `repositories.json`.

mod archive;
mod blobs;
mod digest;
mod error;
mod export;
mod fsutil;
mod images;
mod layers;
pub mod reference;
mod unpack;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub use archive::{Change, Loaded, SaveItem};
pub use blobs::BlobStore;
pub use digest::{ChainId, Descriptor, DiffId, Digest, ImageId};
pub use error::{Error, ErrorKind, Result};
pub use export::{write_tar, write_tar_skipping, Whiteouts};
pub use images::{DeleteReport, ImageInfo, ImageRecord, ImageSummary, ImportOptions};
pub use layers::{Compression, LayerInfo, SnapshotMeta};

use fsutil::mkdir_all;

/// Version of the on-disk layout and record formats under the store root. Bumped with every
/// incompatible change; a store written by a newer Berth is refused instead of misread.
pub const SCHEMA_VERSION: u32 = 1;

/// Reads (or, in a new or pre-versioning store, writes) `<root>/schema.json`.
fn check_schema(root: &Path) -> Result<()> {
    let path = root.join("schema.json");
    match std::fs::read(&path) {
        Ok(b) => {
            let v: serde_json::Value =
                serde_json::from_slice(&b).map_err(|e| Error::corrupt(&path, e))?;
            let found = v.get("schemaVersion").and_then(|x| x.as_u64()).unwrap_or(0);
            if found > u64::from(SCHEMA_VERSION) {
                return Err(Error::corrupt(
                    &path,
                    format!(
                        "the image store has schema version {found}, newer than this Berth's {SCHEMA_VERSION}: upgrade Berth or use another --data-root"
                    ),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let body = serde_json::to_vec(&serde_json::json!({ "schemaVersion": SCHEMA_VERSION }))
                .map_err(|e| Error::corrupt(&path, e))?;
            fsutil::write_atomic(&path, &body)
        }
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

/// The image store. `Send + Sync`: share it behind an `Arc`; metadata changes are serialised
/// by an internal mutex, blob and layer writes run concurrently.
pub struct ImageStore {
    root: PathBuf,
    blobs: BlobStore,
    snapshots: PathBuf,
    images_dir: PathBuf,
    meta: Mutex<Meta>,
}

/// In-memory state guarded by the store mutex.
pub(crate) struct Meta {
    /// normalised reference -> image id (mirrors repositories.json)
    pub refs: BTreeMap<String, ImageId>,
    /// image records by id (mirrors images/*.json)
    pub images: BTreeMap<ImageId, ImageRecord>,
    /// snapshots applied but not yet referenced by an image: kept from GC
    pub pending: HashMap<ChainId, usize>,
}

impl ImageStore {
    /// Opens (creating) a store at `root`, loading image records and tags. Leftovers of
    /// interrupted writes (ingest temp files, `.tmp-*` snapshot dirs, snapshots no image
    /// uses) are removed, so open one `ImageStore` per root per process.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore> {
        let root = root.into();
        mkdir_all(&root)?;
        check_schema(&root)?;
        let blobs = BlobStore::new(&root)?;
        blobs.clean_ingest()?;
        let snapshots = root.join("snapshots");
        let images_dir = root.join("images");
        mkdir_all(&snapshots)?;
        mkdir_all(&images_dir)?;
        let store = ImageStore {
            root,
            blobs,
            snapshots,
            images_dir,
            meta: Mutex::new(Meta {
                refs: BTreeMap::new(),
                images: BTreeMap::new(),
                pending: HashMap::new(),
            }),
        };
        store.clean_tmp_snapshots()?;
        let loaded = store.load()?;
        *store.lock_meta() = loaded;
        store.gc_snapshots()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub(crate) fn lock_meta(&self) -> MutexGuard<'_, Meta> {
        // A panic while holding the lock leaves the in-memory maps as consistent as the
        // files (every change writes the file first), so keep going.
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn clean_tmp_snapshots(&self) -> Result<()> {
        use error::IoContext;
        for e in std::fs::read_dir(&self.snapshots).ctx("readdir", &self.snapshots)? {
            let e = e.ctx("readdir", &self.snapshots)?;
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                fsutil::remove_any(&e.path())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn store_is_send_sync() {
        assert_send_sync::<super::ImageStore>();
    }
}
