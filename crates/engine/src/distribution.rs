//! Pull, push and login against OCI distribution registries (through `berth-registry`),
//! with dockerd's JSON-message progress stream.
//!
//! Pull: manifest (list/index -> platform) -> config -> each layer downloaded into the blob
//! store (digest and size verified) and applied in order -> image created and tagged.
//! Push: each layer's uncompressed tar (kept by the store, or regenerated from the snapshot)
//! gzip-compressed into the blob store (cached by diff id, so pushing twice uploads nothing),
//! HEAD to skip blobs the registry has, POST+PUT monolithic uploads, then the manifest.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use berth_registry::manifest as mf;
use berth_registry::{AuthConfig, Client};
use berth_spec::reference::Reference;
use berth_store::{ChainId, Descriptor, Digest};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::images::store_err;
use crate::{Engine, Error, ErrorKind, Result};

/// Progress messages (one JSON object per line on the wire).
pub type Progress = mpsc::Sender<Value>;

/// Bytes between two `Downloading`/`Extracting`/`Pushing` messages.
const PROGRESS_STEP: u64 = 512 * 1024;

fn decode_auth(header: Option<&str>) -> Option<AuthConfig> {
    header.and_then(AuthConfig::from_header)
}

/// A resolved pull, ready to stream.
pub struct PullPlan {
    engine: Arc<Engine>,
    reference: Reference,
    client: Client,
    manifest: mf::Manifest,
    manifest_digest: String,
    config: Bytes,
}

fn reg_err(e: berth_registry::Error) -> Error {
    use berth_registry::Error as E;
    match e {
        E::NotFound(m) => Error::new(ErrorKind::NotFound, m),
        E::Unauthorized(m) => Error::new(ErrorKind::Forbidden, m),
        E::Transport(m) | E::Protocol(m) | E::Unsupported(m) => Error::internal(m),
    }
}

/// docker's `units.HumanSizeWithPrecision(n, 4)` (decimal units).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let int_digits = if v < 10.0 {
        1
    } else if v < 100.0 {
        2
    } else {
        3
    };
    let prec = 4usize.saturating_sub(int_digits);
    let mut s = format!("{v:.prec$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", units[i])
}

/// docker's JSONProgress string: `[===>     ]  1.2MB/3.4MB`.
pub fn progress_bar(current: u64, total: Option<u64>) -> String {
    match total {
        Some(t) if t > 0 => {
            let pct = (((current as f64 / t as f64) * 100.0) as usize / 2).min(50);
            format!(
                "[{}>{}] {:>8}/{}",
                "=".repeat(pct),
                " ".repeat(50 - pct),
                human_size(current),
                human_size(t)
            )
        }
        _ => format!("{:>8}", human_size(current)),
    }
}

fn status(s: impl Into<String>) -> Value {
    json!({"status": s.into()})
}

fn layer_status(s: &str, id: &str) -> Value {
    json!({"status": s, "progressDetail": {}, "id": id})
}

fn progress_msg(s: &str, id: &str, current: u64, total: Option<u64>) -> Value {
    let mut detail = json!({"current": current});
    if let Some(t) = total {
        detail["total"] = json!(t);
    }
    json!({"status": s, "progressDetail": detail, "progress": progress_bar(current, total), "id": id})
}

/// dockerd's in-stream error object.
pub fn error_msg(m: &str) -> Value {
    json!({"errorDetail": {"message": m}, "error": m})
}

fn short(d: &str) -> String {
    let h = d.strip_prefix("sha256:").unwrap_or(d);
    h.chars().take(12).collect()
}

fn parse_digest(s: &str) -> Result<Digest> {
    s.parse::<Digest>()
        .map_err(|e| Error::internal(format!("bad digest {s:?}: {e}")))
}

/// A blocking `Read` over chunks sent from async code.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(b)) => self.cur = b,
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// Counts bytes read and reports progress from a blocking thread.
struct ProgressReader<R> {
    inner: R,
    done: u64,
    last: u64,
    total: u64,
    id: String,
    word: &'static str,
    tx: Progress,
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.last >= PROGRESS_STEP || (n == 0 && self.done != self.last) {
            self.last = self.done;
            let _ = self.tx.blocking_send(progress_msg(
                self.word,
                &self.id,
                self.done.min(self.total),
                Some(self.total),
            ));
        }
        Ok(n)
    }
}

/// Layer downloads in flight per pull.
const MAX_CONCURRENT_DOWNLOADS: usize = 3;

/// The compressed blob pushed for a layer (`<data-root>/distribution/layers/<diff-hex>.json`).
#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct LayerBlob {
    digest: String,
    size: u64,
    #[serde(rename = "mediaType")]
    media_type: String,
}

impl Engine {
    fn layer_blob_path(&self, diff_id: &Digest) -> PathBuf {
        self.cfg
            .data_root
            .join("distribution")
            .join("layers")
            .join(format!("{}.json", diff_id.hex()))
    }

    fn remember_layer_blob(&self, diff_id: &Digest, b: &LayerBlob) {
        let p = self.layer_blob_path(diff_id);
        if let Some(d) = p.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        if let Err(e) = crate::persist::write_json(&p, b) {
            tracing::warn!("cannot record layer blob {}: {e}", p.display());
        }
    }

    /// A compressed blob for `diff_id` that is still in the blob store.
    fn known_layer_blob(&self, diff_id: &Digest) -> Option<LayerBlob> {
        let b: LayerBlob =
            serde_json::from_slice(&std::fs::read(self.layer_blob_path(diff_id)).ok()?).ok()?;
        let d: Digest = b.digest.parse().ok()?;
        let len = std::fs::metadata(self.images.blobs().path(&d)).ok()?.len();
        (len == b.size).then_some(b)
    }

    /// Parses `fromImage` + `tag` (a digest in `tag` means pull by digest).
    fn pull_reference(image: &str, tag: &str) -> Result<Reference> {
        let r = Reference::parse_normalized(image).map_err(|e| Error::invalid(e.to_string()))?;
        let r = if tag.is_empty() {
            r.with_default_tag()
        } else if tag.starts_with("sha256:") {
            Reference::parse(&format!("{}@{tag}", r.name()))
                .map_err(|e| Error::invalid(e.to_string()))?
        } else {
            r.with_tag(tag).map_err(|e| Error::invalid(e.to_string()))?
        };
        Ok(r)
    }

    /// Resolves a pull before the reply starts: manifest (platform chosen from an index) and
    /// config. A missing tag is a 404 with dockerd's text.
    pub async fn pull_prepare(
        self: &Arc<Self>,
        image: &str,
        tag: &str,
        platform: &str,
        auth_header: Option<&str>,
    ) -> Result<PullPlan> {
        let auth = decode_auth(auth_header);
        let reference = Self::pull_reference(image, tag)?;
        let want = if platform.is_empty() {
            mf::default_platform()
        } else {
            mf::parse_platform(platform).ok_or_else(|| {
                Error::invalid(format!(
                    "\"{platform}\": unknown operating system or architecture: invalid argument"
                ))
            })?
        };
        let client = Client::new(
            reference.domain(),
            reference.path(),
            false,
            auth,
            &self.cfg.insecure_registries,
        )
        .map_err(reg_err)?;
        let wanted = reference
            .digest()
            .or(reference.tag())
            .unwrap_or("latest")
            .to_string();
        let familiar = reference.familiar_string();
        let mut fetched = client.get_manifest(&wanted).await.map_err(|e| match e {
            berth_registry::Error::NotFound(m) => {
                Error::not_found(format!("manifest for {familiar} not found: {m}"))
            }
            berth_registry::Error::Unauthorized(m) => Error::not_found(format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {m}",
                reference.familiar_name()
            )),
            other => reg_err(other),
        })?;
        let manifest_digest = fetched.digest.clone();
        if mf::is_index(&fetched.media_type) {
            let idx: mf::Index = serde_json::from_slice(&fetched.bytes)
                .map_err(|e| Error::internal(format!("invalid manifest list: {e}")))?;
            let d = mf::select(&idx, &want).ok_or_else(|| {
                let v = want
                    .variant
                    .as_ref()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default();
                Error::not_found(format!(
                    "no matching manifest for {}/{}{v} in the manifest list entries",
                    want.os, want.architecture
                ))
            })?;
            fetched = client.get_manifest(&d.digest).await.map_err(reg_err)?;
        }
        if !mf::is_manifest(&fetched.media_type) {
            return Err(Error::invalid(format!(
                "unsupported manifest media type {:?} for {familiar}",
                fetched.media_type
            )));
        }
        let manifest: mf::Manifest = serde_json::from_slice(&fetched.bytes)
            .map_err(|e| Error::internal(format!("invalid manifest: {e}")))?;
        // The config is small: read it whole and verify it.
        let mut blob = client
            .get_blob(&manifest.config.digest)
            .await
            .map_err(reg_err)?;
        let mut config = Vec::new();
        while let Some(c) = blob.chunk().await.map_err(reg_err)? {
            config.extend_from_slice(&c);
            if config.len() > 16 << 20 {
                return Err(Error::internal("image config larger than 16 MiB"));
            }
        }
        if berth_registry::sha256_digest(&config) != manifest.config.digest {
            return Err(Error::internal(format!(
                "config digest mismatch for {}",
                manifest.config.digest
            )));
        }
        let cfg: Value = serde_json::from_slice(&config)
            .map_err(|e| Error::internal(format!("invalid image config: {e}")))?;
        let os = cfg.get("os").and_then(Value::as_str).unwrap_or("linux");
        if os != "linux" {
            return Err(Error::invalid(format!(
                "image operating system \"{os}\" cannot be used on this platform"
            )));
        }
        Ok(PullPlan {
            engine: self.clone(),
            reference,
            client,
            manifest,
            manifest_digest,
            config: Bytes::from(config),
        })
    }

    /// `POST /images/{name}/push?tag=`: everything goes into the stream, errors included.
    /// `auth_header` is the raw `X-Registry-Auth` value.
    pub async fn push_image(
        self: &Arc<Self>,
        name: &str,
        tag: &str,
        auth_header: Option<String>,
        tx: Progress,
    ) {
        let auth = decode_auth(auth_header.as_deref());
        if let Err(e) = self.push_inner(name, tag, auth, &tx).await {
            let _ = tx.send(error_msg(&e.message)).await;
        }
    }

    async fn push_inner(
        self: &Arc<Self>,
        name: &str,
        tag: &str,
        auth: Option<AuthConfig>,
        tx: &Progress,
    ) -> Result<()> {
        let repo = Reference::parse_normalized(name).map_err(|e| Error::invalid(e.to_string()))?;
        let tag = if tag.is_empty() {
            repo.tag().unwrap_or("latest").to_string()
        } else {
            tag.to_string()
        };
        let reference = repo
            .with_tag(&tag)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let _ = tx
            .send(status(format!(
                "The push refers to repository [{}]",
                reference.name()
            )))
            .await;
        let id = self.images.resolve(&reference.to_string()).map_err(|_| {
            Error::not_found(format!(
                "An image does not exist locally with the tag: {}",
                repo.familiar_name()
            ))
        })?;
        let info = self.images.inspect(&id).map_err(store_err)?;
        let client = Client::new(
            reference.domain(),
            reference.path(),
            true,
            auth,
            &self.cfg.insecure_registries,
        )
        .map_err(reg_err)?;
        let rec = info.record.clone();
        for d in rec.diff_ids.iter().rev() {
            let _ = tx.send(layer_status("Preparing", d.short())).await;
        }
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        // Up to 3 layers at once, each compressed (on a blocking thread) and uploaded while
        // the others are: the order of the results is the order of the layers.
        use futures_util::StreamExt as _;
        let client_ref = &client;
        let pairs: Vec<(ChainId, Digest)> =
            rec.layers.iter().cloned().zip(rec.diff_ids.iter().cloned()).collect();
        let mut done = futures_util::stream::iter(pairs)
            .map(|(chain, diff)| async move {
                let (blob, actual_diff) = self.compressed_layer(&chain, &diff).await?;
                let sid = diff.short().to_string();
                if client_ref.blob_exists(&blob.digest).await.map_err(reg_err)? {
                    let _ = tx.send(layer_status("Layer already exists", &sid)).await;
                } else {
                    self.upload_from_store(client_ref, &blob.digest, blob.size, &sid, tx)
                        .await?;
                    let _ = tx.send(layer_status("Pushed", &sid)).await;
                }
                Ok::<_, Error>((blob, actual_diff))
            })
            .buffered(3);
        while let Some(r) = done.next().await {
            let (blob, actual_diff) = r?;
            layers.push(mf::Descriptor {
                media_type: mf::DOCKER_LAYER_GZIP.into(),
                digest: blob.digest.clone(),
                size: blob.size,
                platform: None,
                urls: vec![],
            });
            diff_ids.push(actual_diff);
        }
        let mut config = self.images.config_bytes(&id).map_err(store_err)?;
        if diff_ids != rec.diff_ids {
            // Old snapshots without a kept layer stream: the regenerated tars have other diff
            // ids, so the pushed config names those.
            tracing::warn!(
                "pushing {} with regenerated layers: the image id changes",
                reference
            );
            let mut v: Value =
                serde_json::from_slice(&config).map_err(|e| Error::internal(e.to_string()))?;
            v["rootfs"]["diff_ids"] =
                json!(diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>());
            config = serde_json::to_vec(&v).map_err(|e| Error::internal(e.to_string()))?;
        }
        let config_digest = berth_registry::sha256_digest(&config);
        if !client.blob_exists(&config_digest).await.map_err(reg_err)? {
            let n = config.len() as u64;
            client
                .upload_blob(
                    &config_digest,
                    n,
                    berth_registry::bytes_body(config.clone()),
                )
                .await
                .map_err(reg_err)?;
        }
        let manifest = mf::Manifest {
            schema_version: 2,
            media_type: Some(mf::DOCKER_MANIFEST.into()),
            config: mf::Descriptor {
                media_type: mf::DOCKER_CONFIG.into(),
                digest: config_digest,
                size: config.len() as u64,
                platform: None,
                urls: vec![],
            },
            layers,
        };
        let body =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::internal(e.to_string()))?;
        let size = body.len();
        let digest = client
            .put_manifest(&tag, mf::DOCKER_MANIFEST, Bytes::from(body))
            .await
            .map_err(reg_err)?;
        // Like dockerd, the pushed manifest's digest becomes one of the image's RepoDigests.
        let by_digest = format!("{}@{digest}", reference.name());
        if let Err(e) = self.images.tag(&id, &by_digest) {
            tracing::warn!("cannot record {by_digest}: {e}");
        }
        let _ = tx
            .send(status(format!("{tag}: digest: {digest} size: {size}")))
            .await;
        let _ = tx
            .send(
                json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}}),
            )
            .await;
        Ok(())
    }

    /// The gzip blob for a layer, made (and remembered) on first use, with the diff id of
    /// the tar it compresses.
    async fn compressed_layer(
        self: &Arc<Self>,
        chain: &ChainId,
        diff: &Digest,
    ) -> Result<(LayerBlob, Digest)> {
        if let Some(b) = self.known_layer_blob(diff) {
            return Ok((b, diff.clone()));
        }
        let me = self.clone();
        let chain = chain.clone();
        let diff = diff.clone();
        tokio::task::spawn_blocking(move || -> Result<(LayerBlob, Digest)> {
            let kept = me
                .images
                .root()
                .join("snapshots")
                .join(chain.hex())
                .join("layer.tar");
            let (tar_file, tmp) = if kept.is_file() {
                (
                    std::fs::File::open(&kept)
                        .map_err(|e| Error::internal(format!("open {}: {e}", kept.display())))?,
                    None,
                )
            } else {
                let tmp = me
                    .cfg
                    .data_root
                    .join("distribution")
                    .join(format!("tmp-{}.tar", chain.short()));
                let _ = std::fs::create_dir_all(tmp.parent().expect("parent"));
                let f = std::fs::File::create(&tmp)
                    .map_err(|e| Error::internal(format!("create {}: {e}", tmp.display())))?;
                let fs_dir = me
                    .images
                    .root()
                    .join("snapshots")
                    .join(chain.hex())
                    .join("fs");
                berth_store::write_tar(
                    &fs_dir,
                    io::BufWriter::new(f),
                    berth_store::Whiteouts::Convert,
                )
                .map_err(store_err)?;
                (
                    std::fs::File::open(&tmp).map_err(|e| Error::internal(e.to_string()))?,
                    Some(tmp),
                )
            };
            // Hash the tar while compressing it.
            struct Hash<R> {
                r: R,
                h: sha2::Sha256,
            }
            impl<R: Read> Read for Hash<R> {
                fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                    let n = self.r.read(buf)?;
                    sha2::Digest::update(&mut self.h, &buf[..n]);
                    Ok(n)
                }
            }
            let mut hashing = Hash {
                r: io::BufReader::new(tar_file),
                h: <sha2::Sha256 as sha2::Digest>::new(),
            };
            let res = me
                .images
                .blobs()
                .ingest(berth_registry::gzip_reader(&mut hashing), None);
            if let Some(t) = tmp {
                let _ = std::fs::remove_file(t);
            }
            let desc = res.map_err(store_err)?;
            let actual = parse_digest(&format!(
                "sha256:{}",
                hex::encode(sha2::Digest::finalize(hashing.h))
            ))?;
            let blob = LayerBlob {
                digest: desc.digest.to_string(),
                size: desc.size,
                media_type: mf::DOCKER_LAYER_GZIP.into(),
            };
            if actual == diff {
                me.remember_layer_blob(&diff, &blob);
            }
            Ok((blob, actual))
        })
        .await
        .map_err(|e| Error::internal(format!("layer compression failed: {e}")))?
    }

    async fn upload_from_store(
        &self,
        client: &Client,
        digest: &str,
        size: u64,
        id: &str,
        tx: &Progress,
    ) -> Result<()> {
        let path = self.images.blobs().path(&parse_digest(digest)?);
        let (btx, body) = berth_registry::channel_body(4);
        let tx2 = tx.clone();
        let id2 = id.to_string();
        let feeder = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut f = match tokio::fs::File::open(&path).await {
                Ok(f) => f,
                Err(e) => {
                    let _ = btx.send(Err(e)).await;
                    return;
                }
            };
            let (mut done, mut last) = (0u64, 0u64);
            loop {
                let mut buf = vec![0u8; 64 * 1024];
                match f.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        done += n as u64;
                        if done - last >= PROGRESS_STEP || done == size {
                            last = done;
                            let _ = tx2
                                .send(progress_msg("Pushing", &id2, done, Some(size)))
                                .await;
                        }
                        if btx.send(Ok(Bytes::from(buf))).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = btx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        let r = client
            .upload_blob(digest, size, body)
            .await
            .map_err(reg_err);
        feeder.abort();
        r
    }

    /// `POST /auth` (`body` is the JSON AuthConfig): checks the credentials against the
    /// registry's `/v2/`. Err carries the HTTP status (401 for rejected credentials, 400 for
    /// a bad body, else 500) and dockerd's message.
    pub async fn registry_login(&self, body: &[u8]) -> std::result::Result<(), (u16, String)> {
        let mut auth: AuthConfig =
            serde_json::from_slice(body).map_err(|e| (400, format!("invalid JSON: {e}")))?;
        auth.fill_from_auth();
        let mut addr = auth.serveraddress.trim().to_string();
        for p in ["https://", "http://"] {
            if let Some(rest) = addr.strip_prefix(p) {
                addr = rest.to_string();
            }
        }
        let host = addr.split('/').next().unwrap_or("").to_string();
        let host = if host.is_empty() || host == "index.docker.io" {
            "docker.io".to_string()
        } else {
            host
        };
        let client = Client::new(&host, "", false, Some(auth), &self.cfg.insecure_registries)
            .map_err(|e| (500, e.to_string()))?;
        client.login().await.map_err(|e| match e {
            berth_registry::Error::Unauthorized(m) => (401, m),
            other => (500, other.to_string()),
        })
    }
}

impl PullPlan {
    /// Streams the pull; errors after the start go into the stream.
    pub async fn run(self, tx: Progress) {
        if let Err(e) = self.run_inner(&tx).await {
            let _ = tx.send(error_msg(&e.message)).await;
        }
    }

    async fn run_inner(&self, tx: &Progress) -> Result<()> {
        let engine = &self.engine;
        let r = &self.reference;
        let pull_id = r.digest().or(r.tag()).unwrap_or("latest").to_string();
        let _ = tx
            .send(json!({"status": format!("Pulling from {}", r.familiar_name()), "id": pull_id}))
            .await;
        let cfg: Value =
            serde_json::from_slice(&self.config).map_err(|e| Error::internal(e.to_string()))?;
        let diff_ids: Vec<Digest> = cfg["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|v| parse_digest(v.as_str().unwrap_or("")))
            .collect::<Result<_>>()?;
        let layers: Vec<&mf::Descriptor> = self
            .manifest
            .layers
            .iter()
            .filter(|l| l.media_type != mf::DOCKER_FOREIGN_LAYER)
            .collect();
        if layers.len() != diff_ids.len() {
            return Err(Error::internal(format!(
                "image config has {} layers but the manifest has {}",
                diff_ids.len(),
                layers.len()
            )));
        }
        let chains = Digest::chain_ids(&diff_ids);
        // Keep this pull's blobs from blob GC until the image exists.
        let _lease = engine
            .leases
            .take(layers.iter().map(|l| l.digest.to_string()));
        let present: Vec<bool> = chains
            .iter()
            .map(|c| engine.images.snapshot_exists(c))
            .collect();
        for (l, have) in layers.iter().zip(&present) {
            let st = if *have {
                "Already exists"
            } else {
                "Pulling fs layer"
            };
            let _ = tx.send(layer_status(st, &short(&l.digest))).await;
        }
        // Downloads run ahead, up to MAX_CONCURRENT_DOWNLOADS at a time (dockerd's default is
        // 3 too), while layers are extracted in order as soon as each one and its parent are in.
        let wanted: Vec<(usize, Descriptor, String)> = layers
            .iter()
            .enumerate()
            .filter(|(i, _)| !present[*i])
            .map(|(i, l)| {
                Ok((
                    i,
                    Descriptor {
                        digest: parse_digest(&l.digest)?,
                        size: l.size,
                    },
                    short(&l.digest),
                ))
            })
            .collect::<Result<_>>()?;
        let (dtx, mut drx) = mpsc::unbounded_channel::<(usize, Result<()>)>();
        let producer = async {
            let futs: Vec<_> = wanted
                .iter()
                .cloned()
                .map(|(i, desc, id)| async move {
                    let r = if engine.images.blobs().exists(&desc.digest) {
                        Ok(())
                    } else {
                        self.download(&desc, &id, tx).await
                    };
                    (i, r)
                })
                .collect();
            let mut s = futures_util::stream::iter(futs).buffered(MAX_CONCURRENT_DOWNLOADS);
            while let Some((i, r)) = s.next().await {
                let failed = r.is_err();
                if dtx.send((i, r)).is_err() || failed {
                    break;
                }
            }
            drop(dtx);
        };
        let consumer = async {
            for (i, desc, id) in &wanted {
                let (got, r) = drx
                    .recv()
                    .await
                    .ok_or_else(|| Error::internal("layer download stopped"))?;
                debug_assert_eq!(got, *i);
                r?;
                let (i, l) = (*i, layers[*i]);
                let id = id.clone();
                let desc = desc.clone();
                let _ = tx.send(layer_status("Verifying Checksum", &id)).await;
                let _ = tx.send(layer_status("Download complete", &id)).await;
                let me = engine.clone();
                let parent = if i == 0 {
                    None
                } else {
                    Some(chains[i - 1].clone())
                };
                let ptx = tx.clone();
                let pid = id.clone();
                let d2 = desc.clone();
                let info =
                    tokio::task::spawn_blocking(move || -> Result<berth_store::LayerInfo> {
                        let f = me.images.blobs().open(&d2.digest).map_err(store_err)?;
                        let reader = ProgressReader {
                            inner: io::BufReader::new(f),
                            done: 0,
                            last: 0,
                            total: d2.size,
                            id: pid,
                            word: "Extracting",
                            tx: ptx,
                        };
                        me.images
                            .apply_layer(parent.as_ref(), reader)
                            .map_err(store_err)
                    })
                    .await
                    .map_err(|e| Error::internal(format!("layer extraction failed: {e}")))??;
                if info.diff_id != diff_ids[i] {
                    return Err(Error::internal(format!(
                        "layer {} has diff id {}, but the image config says {}",
                        l.digest, info.diff_id, diff_ids[i]
                    )));
                }
                if l.media_type.contains("gzip") {
                    engine.remember_layer_blob(
                        &info.diff_id,
                        &LayerBlob {
                            digest: l.digest.clone(),
                            size: l.size,
                            media_type: mf::DOCKER_LAYER_GZIP.into(),
                        },
                    );
                }
                let _ = tx.send(layer_status("Pull complete", &id)).await;
            }
            Ok::<(), Error>(())
        };
        tokio::pin!(producer);
        tokio::pin!(consumer);
        tokio::select! {
            r = &mut consumer => r?,
            _ = &mut producer => consumer.await?,
        }
        let me = engine.clone();
        let config = self.config.clone();
        let image_id =
            tokio::task::spawn_blocking(move || me.images.create_image(&config).map_err(store_err))
                .await
                .map_err(|e| Error::internal(format!("image creation failed: {e}")))??;
        let _ = tx
            .send(status(format!("Digest: {}", self.manifest_digest)))
            .await;
        let full = r.to_string();
        let previous = engine.images.resolve(&full).ok();
        // A tag pull records the tag; a digest pull records `name@digest` (its only name).
        engine.images.tag(&image_id, &full).map_err(store_err)?;
        // Like dockerd, a tag pull also records `name@<manifest digest>` (RepoDigests).
        if r.digest().is_none() {
            let by_digest = format!("{}@{}", r.name(), self.manifest_digest);
            if let Err(e) = engine.images.tag(&image_id, &by_digest) {
                tracing::warn!("cannot record {by_digest}: {e}");
            }
        }
        let msg = if previous.as_ref() == Some(&image_id) {
            format!("Status: Image is up to date for {}", r.familiar_string())
        } else {
            format!("Status: Downloaded newer image for {}", r.familiar_string())
        };
        let _ = tx.send(status(msg)).await;
        Ok(())
    }

    /// Downloads a layer blob into the store. An earlier attempt's partial download (the
    /// registry went away, berthd was killed) is resumed with a range request; a registry that
    /// ignores the range makes it start over.
    async fn download(&self, desc: &Descriptor, id: &str, tx: &Progress) -> Result<()> {
        let have = self
            .engine
            .images
            .blobs()
            .partial_len(&desc.digest)
            .min(desc.size);
        let mut blob = self
            .client
            .get_blob_from(&desc.digest.to_string(), have)
            .await
            .map_err(reg_err)?;
        let offset = blob.offset;
        if offset > 0 {
            tracing::info!(digest = %desc.digest, offset, "resuming an interrupted download");
        }
        let (ctx, crx) = mpsc::channel::<io::Result<Bytes>>(8);
        let me = self.engine.clone();
        let d2 = desc.clone();
        let ingest = tokio::task::spawn_blocking(move || {
            me.images.blobs().ingest_resumable(
                ChannelReader {
                    rx: crx,
                    cur: Bytes::new(),
                },
                &d2,
                offset,
            )
        });
        let (mut done, mut last) = (offset, offset);
        let mut failed = None;
        loop {
            match blob.chunk().await {
                Ok(Some(c)) => {
                    done += c.len() as u64;
                    if done - last >= PROGRESS_STEP || done == desc.size {
                        last = done;
                        let _ = tx
                            .send(progress_msg("Downloading", id, done, Some(desc.size)))
                            .await;
                    }
                    if done > desc.size {
                        self.engine.images.blobs().discard_partial(&desc.digest);
                        failed = Some(Error::internal(format!(
                            "blob {} is larger than {} bytes",
                            desc.digest, desc.size
                        )));
                        let _ = ctx.send(Err(io::Error::other("blob too large"))).await;
                        break;
                    }
                    if ctx.send(Ok(c)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = ctx.send(Err(io::Error::other(e.to_string()))).await;
                    failed = Some(reg_err(e));
                    break;
                }
            }
        }
        drop(ctx);
        let res = ingest
            .await
            .map_err(|e| Error::internal(format!("download task failed: {e}")))?;
        if let Some(e) = failed {
            return Err(e);
        }
        res.map_err(|e| match e {
            berth_store::Error::DigestMismatch { .. } | berth_store::Error::SizeMismatch { .. } => {
                Error::internal(format!(
                    "filesystem layer verification failed for digest {}",
                    desc.digest
                ))
            }
            other => store_err(other),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_like_docker() {
        assert_eq!(human_size(3678), "3.678kB");
        assert_eq!(human_size(307482), "307.5kB");
        assert_eq!(human_size(512), "512B");
        assert_eq!(
            progress_bar(3678, Some(307482)),
            format!("[>{}]  3.678kB/307.5kB", " ".repeat(50))
        );
        assert_eq!(
            progress_bar(307482, Some(307482)),
            format!("[{}>]  307.5kB/307.5kB", "=".repeat(50))
        );
        assert_eq!(progress_bar(1536, None), " 1.536kB");
    }

    #[test]
    fn pull_references() {
        let r = Engine::pull_reference("127.0.0.1:5000/test/bb", "1").unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/test/bb:1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Engine::pull_reference("busybox", &d).unwrap();
        assert_eq!(r.digest(), Some(d.as_str()));
        assert_eq!(
            Engine::pull_reference("busybox", "").unwrap().tag(),
            Some("latest")
        );
    }
}
