//! Content-addressed blob store: `<root>/blobs/sha256/<hex>`, ingest temp files under
//! `<root>/ingest/`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Descriptor, Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{fsync_dir, mkdir_all, tmp_path};

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    ingest: PathBuf,
}

impl BlobStore {
    /// Opens (creating) the blob store under `root`. Leftover ingest files are removed.
    pub fn new(root: &Path) -> Result<BlobStore> {
        let dir = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        mkdir_all(&dir)?;
        mkdir_all(&ingest)?;
        Ok(BlobStore { dir, ingest })
    }

    /// Removes stale temp files in `ingest/` (call only when no ingest can be running).
    pub(crate) fn clean_ingest(&self) -> Result<()> {
        for e in fs::read_dir(&self.ingest).ctx("readdir", &self.ingest)? {
            let e = e.ctx("readdir", &self.ingest)?;
            // temp files, and temp directories (spooled `docker load` archives)
            let _ = crate::fsutil::remove_any(&e.path());
        }
        Ok(())
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Stores `bytes`, returning their descriptor. Idempotent.
    pub fn put(&self, bytes: &[u8]) -> Result<Descriptor> {
        self.ingest(bytes, None)
    }

    /// Streams `reader` into the store, hashing while writing to a temp file under
    /// `ingest/`, fsyncs, checks `expected` (digest and size) if given, then renames into
    /// place. A blob that already exists is kept and the temp file discarded.
    pub fn ingest<R: Read>(&self, mut reader: R, expected: Option<&Descriptor>) -> Result<Descriptor> {
        let tmp = tmp_path(&self.ingest, "blob-");
        let res = (|| {
            let f = OpenOptions::new().write(true).create_new(true).open(&tmp).ctx("create", &tmp)?;
            let mut w = HashingWriter::new(io::BufWriter::new(f));
            io::copy(&mut reader, &mut w).ctx("write", &tmp)?;
            w.flush().ctx("write", &tmp)?;
            let digest = w.digest();
            let size = w.count;
            let f = w.inner.into_inner().map_err(|e| Error::io("write", &tmp, e.into_error()))?;
            if let Some(exp) = expected {
                if exp.digest != digest {
                    return Err(Error::DigestMismatch {
                        expected: exp.digest.to_string(),
                        actual: digest.to_string(),
                    });
                }
                if exp.size != size {
                    return Err(Error::SizeMismatch { expected: exp.size, actual: size });
                }
            }
            let dest = self.path(&digest);
            if dest.is_file() {
                let _ = fs::remove_file(&tmp);
                return Ok(Descriptor { digest, size });
            }
            f.sync_all().ctx("fsync", &tmp)?;
            drop(f);
            fs::rename(&tmp, &dest).ctx("rename", &dest)?;
            fsync_dir(&self.dir)?;
            Ok(Descriptor { digest, size })
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    pub fn get(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.path(d);
        match fs::read(&p) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::NotFound { what: format!("blob {d}") })
            }
            Err(e) => Err(Error::io("read", p, e)),
        }
    }

    pub fn open(&self, d: &Digest) -> Result<File> {
        let p = self.path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::NotFound { what: format!("blob {d}") })
            }
            Err(e) => Err(Error::io("open", p, e)),
        }
    }

    /// Deletes a blob; a missing blob is not an error.
    pub fn delete(&self, d: &Digest) -> Result<()> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", p, e)),
        }
    }
}
