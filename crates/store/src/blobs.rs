//! Content-addressed blob store: `<root>/blobs/sha256/<hex>`, ingest temp files under
//! `<root>/ingest/`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Descriptor, Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{fsync_dir, mkdir_all, tmp_path};

/// Name prefix of resumable partial downloads under `ingest/`.
const PARTIAL_PREFIX: &str = "partial-";

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
    /// Partial downloads (`partial-<hex>`) are kept for resuming, unless older than a day.
    pub(crate) fn clean_ingest(&self) -> Result<()> {
        let day = std::time::Duration::from_secs(24 * 3600);
        for e in fs::read_dir(&self.ingest).ctx("readdir", &self.ingest)? {
            let e = e.ctx("readdir", &self.ingest)?;
            let fresh_partial = e.file_name().to_string_lossy().starts_with(PARTIAL_PREFIX)
                && e.metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age < day);
            if fresh_partial {
                continue;
            }
            // temp files, and temp directories (spooled `docker load` archives)
            let _ = crate::fsutil::remove_any(&e.path());
        }
        Ok(())
    }

    fn partial_path(&self, d: &Digest) -> PathBuf {
        self.ingest.join(format!("{PARTIAL_PREFIX}{}", d.hex()))
    }

    /// Bytes of `d` already downloaded by an interrupted ingest (0 if none).
    pub fn partial_len(&self, d: &Digest) -> u64 {
        fs::metadata(self.partial_path(d))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Drops an interrupted download of `d` (the source could not resume it).
    pub fn discard_partial(&self, d: &Digest) {
        let _ = fs::remove_file(self.partial_path(d));
    }

    /// Resumable ingest of a blob whose descriptor is known: appends `reader` to the partial
    /// file of `expected.digest` after its first `offset` bytes (the bytes already there are
    /// hashed again, not trusted), then verifies digest and size and moves it into place. If
    /// `reader` fails, what arrived is kept (fsynced) for the next attempt; a verification
    /// failure discards it. Concurrent ingests of one digest are serialised by a file lock.
    pub fn ingest_resumable<R: Read>(
        &self,
        mut reader: R,
        expected: &Descriptor,
        offset: u64,
    ) -> Result<Descriptor> {
        use std::io::Seek;
        let path = self.partial_path(&expected.digest);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx("open", &path)?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io("lock", &path, e.into()))?;
        if self.exists(&expected.digest) {
            let _ = fs::remove_file(&path);
            return Ok(expected.clone());
        }
        let have = f.metadata().ctx("stat", &path)?.len();
        // Keep exactly the bytes the caller resumes after (another attempt may have grown the
        // file meanwhile, or the source restarted from 0).
        let keep = offset.min(have);
        f.set_len(keep).ctx("truncate", &path)?;
        let mut w = HashingWriter::new(f);
        {
            (&w.inner).seek(io::SeekFrom::Start(0)).ctx("seek", &path)?;
            let mut buf = vec![0u8; 1 << 16];
            let mut left = keep;
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = (&w.inner).read(&mut buf[..want]).ctx("read", &path)?;
                if n == 0 {
                    break;
                }
                w.absorb(&buf[..n]);
                left -= n as u64;
            }
            (&w.inner)
                .seek(io::SeekFrom::Start(keep))
                .ctx("seek", &path)?;
        }
        let copied = {
            let mut bw = io::BufWriter::new(&mut w);
            let r = io::copy(&mut reader, &mut bw);
            let flushed = bw.flush();
            r.and(flushed)
        };
        if let Err(e) = copied {
            // Keep what arrived for the next attempt.
            let _ = w.inner.sync_data();
            return Err(Error::io("download", &path, e));
        }
        let digest = w.digest();
        let size = w.count;
        if expected.digest != digest || expected.size != size {
            let _ = fs::remove_file(&path);
            if expected.size != size {
                return Err(Error::SizeMismatch {
                    expected: expected.size,
                    actual: size,
                });
            }
            return Err(Error::DigestMismatch {
                expected: expected.digest.to_string(),
                actual: digest.to_string(),
            });
        }
        w.inner.sync_all().ctx("fsync", &path)?;
        let dest = self.path(&digest);
        fs::rename(&path, &dest).ctx("rename", &dest)?;
        fsync_dir(&self.dir)?;
        Ok(Descriptor { digest, size })
    }

    /// Every stored blob, with its size.
    pub fn list(&self) -> Result<Vec<(Digest, u64)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).ctx("readdir", &self.dir)? {
            let e = e.ctx("readdir", &self.dir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(d) = Digest::from_hex(&name) {
                out.push((d, e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
        Ok(out)
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
    pub fn ingest<R: Read>(
        &self,
        mut reader: R,
        expected: Option<&Descriptor>,
    ) -> Result<Descriptor> {
        let tmp = tmp_path(&self.ingest, "blob-");
        let res = (|| {
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .ctx("create", &tmp)?;
            let mut w = HashingWriter::new(io::BufWriter::new(f));
            io::copy(&mut reader, &mut w).ctx("write", &tmp)?;
            w.flush().ctx("write", &tmp)?;
            let digest = w.digest();
            let size = w.count;
            let f = w
                .inner
                .into_inner()
                .map_err(|e| Error::io("write", &tmp, e.into_error()))?;
            if let Some(exp) = expected {
                if exp.digest != digest {
                    return Err(Error::DigestMismatch {
                        expected: exp.digest.to_string(),
                        actual: digest.to_string(),
                    });
                }
                if exp.size != size {
                    return Err(Error::SizeMismatch {
                        expected: exp.size,
                        actual: size,
                    });
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
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound {
                what: format!("blob {d}"),
            }),
            Err(e) => Err(Error::io("read", p, e)),
        }
    }

    pub fn open(&self, d: &Digest) -> Result<File> {
        let p = self.path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound {
                what: format!("blob {d}"),
            }),
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
