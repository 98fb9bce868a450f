//! Layer application: one snapshot directory per chain id.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{ChainId, DiffId, Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{fsync_dir, mkdir_all, remove_any, tmp_path, write_atomic};
use crate::ImageStore;

/// What [`ImageStore::apply_layer`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: DiffId,
    pub chain_id: ChainId,
    /// Bytes of regular-file content in the layer.
    pub size: u64,
}

/// `snapshots/<chainid-hex>/meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub diff_id: DiffId,
    pub parent: Option<ChainId>,
    pub chain_id: ChainId,
    pub size: u64,
}

/// Layer compression, sniffed from the magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Wraps `r` in the decompressor its first bytes call for.
pub(crate) fn decompress<'a, R: Read + 'a>(mut r: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut magic = [0u8; 6];
    let mut n = 0;
    while n < magic.len() {
        match r.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read layer", "<stream>", e)),
        }
    }
    let m = &magic[..n];
    let head = io::Cursor::new(m.to_vec()).chain(r);
    if m.starts_with(&[0x1f, 0x8b]) {
        Ok((
            Compression::Gzip,
            Box::new(flate2::read::MultiGzDecoder::new(head)),
        ))
    } else if m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = zstd::stream::read::Decoder::new(head)
            .map_err(|e| Error::io("zstd init", "<stream>", e))?;
        Ok((Compression::Zstd, Box::new(d)))
    } else if m.starts_with(b"BZh") || m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err(Error::InvalidArgument(
            "unsupported layer compression (bzip2/xz)".into(),
        ))
    } else {
        Ok((Compression::None, Box::new(head)))
    }
}

/// File name of the kept uncompressed layer stream inside a snapshot directory.
const LAYER_TAR: &str = "layer.tar";

/// Copies everything read through it to `out`.
pub(crate) struct Tee<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: io::Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl ImageStore {
    /// The uncompressed tar of one layer, exactly as applied (its sha256 is the diff id),
    /// and its length. Snapshots made before layers were kept have no stored stream: the
    /// tar is then regenerated from the snapshot into a temp file (deleted on close), whose
    /// digest generally differs from the recorded diff id.
    pub fn layer_tar(&self, chain: &ChainId) -> Result<(fs::File, u64)> {
        let p = self.snapshot_path(chain).join(LAYER_TAR);
        match fs::File::open(&p) {
            Ok(f) => {
                let len = f.metadata().ctx("stat", &p)?.len();
                return Ok((f, len));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("open", p, e)),
        }
        if !self.snapshot_exists(chain) {
            return Err(Error::NotFound {
                what: format!("snapshot {chain}"),
            });
        }
        let tmp = tmp_path(&self.root.join("ingest"), "layer-");
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .ctx("create", &tmp)?;
        let _ = fs::remove_file(&tmp);
        let mut f = crate::export::write_tar(
            &self.snapshot_fs(chain),
            io::BufWriter::new(f),
            crate::Whiteouts::Convert,
        )?
        .into_inner()
        .map_err(|e| Error::io("write", &tmp, e.into_error()))?;
        let len = io::Seek::seek(&mut f, io::SeekFrom::End(0)).ctx("seek", &tmp)?;
        io::Seek::rewind(&mut f).ctx("seek", &tmp)?;
        Ok((f, len))
    }

    pub(crate) fn snapshot_path(&self, chain: &ChainId) -> PathBuf {
        self.snapshots.join(chain.hex())
    }

    /// The unpacked contents of one layer (an overlay lowerdir).
    pub fn snapshot_fs(&self, chain: &ChainId) -> PathBuf {
        self.snapshot_path(chain).join("fs")
    }

    pub fn snapshot_meta(&self, chain: &ChainId) -> Result<SnapshotMeta> {
        let p = self.snapshot_path(chain).join("meta.json");
        let b = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    what: format!("snapshot {chain}"),
                })
            }
            Err(e) => return Err(Error::io("read", p, e)),
        };
        serde_json::from_slice(&b).map_err(|e| Error::corrupt(&p, e))
    }

    pub fn snapshot_exists(&self, chain: &ChainId) -> bool {
        self.snapshot_path(chain).join("meta.json").is_file()
    }

    /// Unpacks a layer (plain tar, tar+gzip or tar+zstd) on top of `parent`, into
    /// `snapshots/<chain-id>/fs`. If that snapshot exists already it is reused and the new
    /// copy discarded. The diff id is the sha256 of the uncompressed tar stream.
    ///
    /// The snapshot stays protected from garbage collection until an image using it is
    /// created (or the store is reopened).
    pub fn apply_layer<R: Read>(&self, parent: Option<&ChainId>, reader: R) -> Result<LayerInfo> {
        if let Some(p) = parent {
            if !self.snapshot_exists(p) {
                return Err(Error::NotFound {
                    what: format!("parent snapshot {p}"),
                });
            }
        }
        let tmp = tmp_path(&self.snapshots, ".tmp-");
        let res = self.apply_into(&tmp, parent, reader);
        if res.is_err() {
            let _ = remove_any(&tmp);
        }
        res
    }

    fn apply_into<R: Read>(
        &self,
        tmp: &Path,
        parent: Option<&ChainId>,
        reader: R,
    ) -> Result<LayerInfo> {
        let fs_dir = tmp.join("fs");
        mkdir_all(&fs_dir)?;
        let (_, plain) = decompress(reader)?;
        // The uncompressed stream is kept next to the snapshot (`layer.tar`): `docker save`
        // and push need the exact bytes whose sha256 is the diff id.
        let tar_path = tmp.join(LAYER_TAR);
        let tar_file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tar_path)
            .ctx("create", &tar_path)?;
        let tee = Tee {
            inner: plain,
            out: io::BufWriter::new(tar_file),
        };
        let mut hashing = HashingReader::new(tee);
        let stats = crate::unpack::unpack(&mut hashing, &fs_dir)?;
        let (diff_id, tee) = hashing.finish_into().map_err(|e| Error::InvalidLayer {
            entry: String::new(),
            reason: format!("reading layer stream: {e}"),
        })?;
        let f = tee
            .out
            .into_inner()
            .map_err(|e| Error::io("write", &tar_path, e.into_error()))?;
        f.sync_all().ctx("fsync", &tar_path)?;
        let chain_id = Digest::chain(parent, &diff_id);
        let meta = SnapshotMeta {
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            chain_id: chain_id.clone(),
            size: stats.size,
        };
        // Make the unpacked files durable before the snapshot becomes visible.
        let root = fs::File::open(&fs_dir).ctx("open", &fs_dir)?;
        rustix::fs::syncfs(&root).ctx("syncfs", &fs_dir)?;
        let meta_json = serde_json::to_vec_pretty(&meta).expect("meta serializes");
        write_atomic(&tmp.join("meta.json"), &meta_json)?;

        let dest = self.snapshot_path(&chain_id);
        // Under the metadata lock so garbage collection cannot race the rename/pin.
        let mut meta_lock = self.lock_meta();
        *meta_lock.pending.entry(chain_id.clone()).or_insert(0) += 1;
        if dest.join("meta.json").is_file() {
            remove_any(tmp)?;
        } else {
            // A partial directory without meta.json is garbage from a crash.
            remove_any(&dest)?;
            fs::rename(tmp, &dest).ctx("rename", &dest)?;
            fsync_dir(&self.snapshots)?;
        }
        Ok(LayerInfo {
            diff_id,
            chain_id,
            size: stats.size,
        })
    }
}
