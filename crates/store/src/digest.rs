//! `sha256:<hex>` digests and hashing readers/writers.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// A `sha256:<64 lowercase hex>` content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

/// The image id: the digest of the image's config blob.
pub type ImageId = Digest;
/// sha256 of an uncompressed layer tar.
pub type DiffId = Digest;
/// OCI chain id of a layer stack.
pub type ChainId = Digest;

impl Digest {
    /// Digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// From 64 hex characters (no algorithm prefix).
    pub fn from_hex(h: &str) -> Result<Digest, Error> {
        if is_full_hex(h) {
            Ok(Digest { hex: h.to_string() })
        } else {
            Err(Error::InvalidArgument(format!(
                "invalid sha256 hex digest: {h:?}"
            )))
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// First 12 hex characters, as the docker CLI shows ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// OCI chain id: `chain(parent, diff) = sha256(parent + " " + diff)`, and the diff id
    /// itself for the bottom layer.
    pub fn chain(parent: Option<&ChainId>, diff_id: &DiffId) -> ChainId {
        match parent {
            None => diff_id.clone(),
            Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
        }
    }

    /// Chain ids of every prefix of `diff_ids`.
    pub fn chain_ids(diff_ids: &[DiffId]) -> Vec<ChainId> {
        let mut out: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
        for d in diff_ids {
            let c = Digest::chain(out.last(), d);
            out.push(c);
        }
        out
    }
}

pub(crate) fn is_full_hex(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.strip_prefix("sha256:") {
            Some(h) => Digest::from_hex(h),
            None => Err(Error::InvalidArgument(format!(
                "invalid digest {s:?}: want sha256:<hex>"
            ))),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Content address and length of a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub digest: Digest,
    pub size: u64,
}

/// A reader that hashes and counts everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream (tar padding after the end-of-archive marker counts
    /// towards the diff id) and returns the digest and the inner reader.
    pub fn finish_into(mut self) -> io::Result<(Digest, R)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            Digest {
                hex: hex::encode(self.hasher.finalize()),
            },
            self.inner,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
pub(crate) struct HashingWriter<W> {
    pub inner: W,
    hasher: Sha256,
    pub count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub fn digest(&self) -> Digest {
        Digest {
            hex: hex::encode(self.hasher.clone().finalize()),
        }
    }
    /// Feeds bytes that are already in `inner` (a resumed partial file) into the hash.
    pub fn absorb(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.count += bytes.len() as u64;
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_oci() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let chain = Digest::chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn parse_rejects_bad_digests() {
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("md5:".parse::<Digest>().is_err());
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }
}
