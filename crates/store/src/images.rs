//! Image records, tags and resolution.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::digest::{is_full_hex, ChainId, DiffId, Digest, ImageId};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{remove_any, write_atomic};
use crate::reference::{familiar, normalize};
use crate::{ImageStore, Meta};

/// `images/<hex>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: ImageId,
    /// The config's `created` (RFC 3339), or the time the record was made if it has none.
    pub created: String,
    /// Sum of the layer sizes.
    pub size: u64,
    /// Chain ids, bottom-most first.
    pub layers: Vec<ChainId>,
    pub diff_ids: Vec<DiffId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ImageId>,
}

/// One row of `GET /images/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    pub id: ImageId,
    pub parent: Option<ImageId>,
    /// familiar form: `busybox:latest`
    pub repo_tags: Vec<String>,
    /// familiar form: `busybox@sha256:...`
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: u64,
    pub labels: BTreeMap<String, String>,
}

/// Everything `docker image inspect` needs.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub record: ImageRecord,
    /// The config blob, parsed.
    pub config: Value,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
}

/// What [`ImageStore::delete`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// familiar references that pointed at the image
    pub untagged: Vec<String>,
    pub deleted: Vec<ImageId>,
}

/// Options for [`ImageStore::import`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `created` for the config and history entry; now if None.
    pub created: Option<DateTime<Utc>>,
    /// History comment; `Imported from <source>` if None.
    pub message: Option<String>,
    /// What was imported (`-` for a stream), used in the default message.
    pub source: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
struct RepositoriesFile {
    refs: BTreeMap<String, ImageId>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The platform's OCI architecture name.
pub(crate) fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn parse_diff_ids(config: &Value) -> Result<Vec<DiffId>> {
    let Some(rootfs) = config.get("rootfs") else {
        return Ok(Vec::new());
    };
    let ids = rootfs
        .get("diff_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ids.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| Error::InvalidArgument("rootfs.diff_ids must be strings".into()))?
                .parse()
        })
        .collect()
}

fn split_refs(refs: impl Iterator<Item = String>) -> (Vec<String>, Vec<String>) {
    let (digests, tags): (Vec<String>, Vec<String>) =
        refs.map(|r| familiar(&r)).partition(|r| r.contains('@'));
    (tags, digests)
}

impl ImageStore {
    fn image_record_path(&self, id: &ImageId) -> PathBuf {
        self.images_dir.join(format!("{}.json", id.hex()))
    }

    fn repositories_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    /// Reads image records and tags from disk.
    pub(crate) fn load(&self) -> Result<Meta> {
        let mut images = BTreeMap::new();
        for e in fs::read_dir(&self.images_dir).ctx("readdir", &self.images_dir)? {
            let e = e.ctx("readdir", &self.images_dir)?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".json") else {
                continue;
            };
            if !is_full_hex(hex) {
                continue;
            }
            let b = fs::read(&p).ctx("read", &p)?;
            let rec: ImageRecord = serde_json::from_slice(&b).map_err(|e| Error::corrupt(&p, e))?;
            images.insert(rec.id.clone(), rec);
        }
        let rp = self.repositories_path();
        let refs = match fs::read(&rp) {
            Ok(b) => {
                serde_json::from_slice::<RepositoriesFile>(&b)
                    .map_err(|e| Error::corrupt(&rp, e))?
                    .refs
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(Error::io("read", rp, e)),
        };
        Ok(Meta {
            refs,
            images,
            pending: HashMap::new(),
        })
    }

    fn save_refs(&self, refs: &BTreeMap<String, ImageId>) -> Result<()> {
        let file = RepositoriesFile { refs: refs.clone() };
        let b = serde_json::to_vec_pretty(&file).expect("refs serialize");
        write_atomic(&self.repositories_path(), &b)
    }

    /// Stores `config_json` as an image (id = its sha256). Every layer named by
    /// `rootfs.diff_ids` must already have been applied. Idempotent.
    pub fn create_image(&self, config_json: &[u8]) -> Result<ImageId> {
        self.create_image_with_parent(config_json, None)
    }

    /// Like [`create_image`](Self::create_image), recording `parent` (as `docker commit` does).
    pub fn create_image_with_parent(
        &self,
        config_json: &[u8],
        parent: Option<&ImageId>,
    ) -> Result<ImageId> {
        let config: Value = serde_json::from_slice(config_json)
            .map_err(|e| Error::InvalidArgument(format!("invalid image config: {e}")))?;
        if !config.is_object() {
            return Err(Error::InvalidArgument(
                "image config must be a JSON object".into(),
            ));
        }
        let diff_ids = parse_diff_ids(&config)?;
        let layers = Digest::chain_ids(&diff_ids);
        let mut size = 0;
        for c in &layers {
            size += self.snapshot_meta(c)?.size;
        }
        let created = config
            .get("created")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| rfc3339(Utc::now()));
        let desc = self.blobs.put(config_json)?;
        let id = desc.digest;
        let rec = ImageRecord {
            id: id.clone(),
            created,
            size,
            layers: layers.clone(),
            diff_ids,
            parent: parent.cloned(),
        };
        let mut meta = self.lock_meta();
        if let Some(p) = parent {
            if !meta.images.contains_key(p) {
                return Err(Error::NoSuchImage {
                    what: p.to_string(),
                });
            }
        }
        if !meta.images.contains_key(&id) {
            let b = serde_json::to_vec_pretty(&rec).expect("record serializes");
            write_atomic(&self.image_record_path(&id), &b)?;
            meta.images.insert(id.clone(), rec);
        }
        for c in &layers {
            if let Some(n) = meta.pending.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    meta.pending.remove(c);
                }
            }
        }
        Ok(id)
    }

    /// `docker import`: applies `reader` (tar, tar+gzip or tar+zstd) as a single layer and
    /// creates an image from `base` (an image config object, `--change`s already applied;
    /// `null` for none), filling `created`, `architecture`, `os`, `rootfs` and `history`.
    pub fn import<R: Read>(&self, reader: R, base: Value, opts: ImportOptions) -> Result<ImageId> {
        let layer = self.apply_layer(None, reader)?;
        let created = rfc3339(opts.created.unwrap_or_else(Utc::now));
        let mut config = match base {
            Value::Null => json!({}),
            v @ Value::Object(_) => v,
            _ => {
                return Err(Error::InvalidArgument(
                    "import config must be an object".into(),
                ))
            }
        };
        let comment = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {}", opts.source.as_deref().unwrap_or("-")));
        let obj = config.as_object_mut().expect("object");
        obj.insert("created".into(), json!(created));
        obj.insert("architecture".into(), json!(oci_arch()));
        obj.insert("os".into(), json!("linux"));
        if let Some(m) = &opts.message {
            obj.insert("comment".into(), json!(m));
        }
        obj.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": [layer.diff_id.to_string()]}),
        );
        obj.insert(
            "history".into(),
            json!([{"created": created, "created_by": "", "comment": comment}]),
        );
        let bytes = serde_json::to_vec(&config).expect("config serializes");
        self.create_image(&bytes)
    }

    fn record(&self, id: &ImageId) -> Result<ImageRecord> {
        self.lock_meta()
            .images
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NoSuchImage {
                what: id.to_string(),
            })
    }

    pub fn exists(&self, id: &ImageId) -> bool {
        self.lock_meta().images.contains_key(id)
    }

    /// The raw config blob of an image.
    pub fn config_bytes(&self, id: &ImageId) -> Result<Vec<u8>> {
        self.record(id)?;
        self.blobs.get(id)
    }

    pub fn inspect(&self, id: &ImageId) -> Result<ImageInfo> {
        let record = self.record(id)?;
        let p = self.blobs.path(id);
        let bytes = self.blobs.get(id)?;
        let config: Value = serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&p, e))?;
        let (repo_tags, repo_digests) = split_refs(self.refs_for(id).into_iter());
        Ok(ImageInfo {
            record,
            config,
            repo_tags,
            repo_digests,
        })
    }

    /// All images, newest first.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let (records, refs) = {
            let m = self.lock_meta();
            (
                m.images.values().cloned().collect::<Vec<_>>(),
                m.refs.clone(),
            )
        };
        let mut by_id: HashMap<&ImageId, Vec<String>> = HashMap::new();
        for (r, id) in &refs {
            by_id.entry(id).or_default().push(r.clone());
        }
        let mut out = Vec::with_capacity(records.len());
        for rec in records {
            let labels = self
                .blobs
                .get(&rec.id)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|c| c.get("config")?.get("Labels")?.as_object().cloned())
                .map(|m| {
                    m.into_iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            let (repo_tags, repo_digests) =
                split_refs(by_id.get(&rec.id).cloned().unwrap_or_default().into_iter());
            let created = DateTime::parse_from_rfc3339(&rec.created)
                .map(|t| t.timestamp())
                .unwrap_or(0);
            out.push(ImageSummary {
                id: rec.id.clone(),
                parent: rec.parent.clone(),
                repo_tags,
                repo_digests,
                created,
                size: rec.size,
                labels,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Overlay lower dirs of an image, top-most first (as `lowerdir=` wants them).
    pub fn lower_dirs(&self, id: &ImageId) -> Result<Vec<PathBuf>> {
        let rec = self.record(id)?;
        Ok(rec
            .layers
            .iter()
            .rev()
            .map(|c| self.snapshot_fs(c))
            .collect())
    }

    /// Deletes an image record, every reference to it, its config blob, and the snapshots no
    /// other image (or in-flight layer application) uses. Fails with Conflict if another
    /// image names it as parent. Whether the image may go (containers using it, `-f`) is the
    /// engine's decision.
    pub fn delete(&self, id: &ImageId) -> Result<DeleteReport> {
        let mut meta = self.lock_meta();
        let Some(rec) = meta.images.get(id).cloned() else {
            return Err(Error::NoSuchImage {
                what: id.to_string(),
            });
        };
        if meta.images.values().any(|r| r.parent.as_ref() == Some(id)) {
            return Err(Error::Conflict(format!(
                "unable to delete {} (cannot be forced) - image has dependent child images",
                id.short()
            )));
        }
        let mut report = DeleteReport::default();
        let tagged: Vec<String> = meta
            .refs
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect();
        if !tagged.is_empty() {
            let mut refs = meta.refs.clone();
            for r in &tagged {
                refs.remove(r);
            }
            self.save_refs(&refs)?;
            meta.refs = refs;
            report.untagged = tagged.iter().map(|r| familiar(r)).collect();
        }
        remove_any(&self.image_record_path(id))?;
        meta.images.remove(id);
        self.blobs.delete(id)?;
        report.deleted.push(id.clone());

        let in_use: HashSet<&ChainId> = meta
            .images
            .values()
            .flat_map(|r| r.layers.iter())
            .chain(meta.pending.keys())
            .collect();
        for c in &rec.layers {
            if !in_use.contains(c) {
                remove_any(&self.snapshot_path(c))?;
            }
        }
        Ok(report)
    }

    /// Removes snapshot directories that no image references and no in-flight
    /// [`apply_layer`](Self::apply_layer) of this process protects (leftovers of interrupted
    /// pulls). Returns how many were removed. Called by [`open`](Self::open).
    pub fn gc_snapshots(&self) -> Result<usize> {
        let meta = self.lock_meta();
        let in_use: HashSet<String> = meta
            .images
            .values()
            .flat_map(|r| r.layers.iter())
            .chain(meta.pending.keys())
            .map(|c| c.hex().to_string())
            .collect();
        let mut removed = 0;
        for e in fs::read_dir(&self.snapshots).ctx("readdir", &self.snapshots)? {
            let e = e.ctx("readdir", &self.snapshots)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if is_full_hex(&name) && !in_use.contains(&name) {
                remove_any(&e.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Points `reference` (any form; normalised) at image `id`.
    pub fn tag(&self, id: &ImageId, reference: &str) -> Result<()> {
        let full = normalize(reference)?.to_full_string();
        let mut meta = self.lock_meta();
        if !meta.images.contains_key(id) {
            return Err(Error::NoSuchImage {
                what: id.to_string(),
            });
        }
        if meta.refs.get(&full) == Some(id) {
            return Ok(());
        }
        let mut refs = meta.refs.clone();
        refs.insert(full, id.clone());
        self.save_refs(&refs)?;
        meta.refs = refs;
        Ok(())
    }

    /// Removes a reference, returning the image it pointed at.
    pub fn untag(&self, reference: &str) -> Result<ImageId> {
        let full = normalize(reference)?.to_full_string();
        let mut meta = self.lock_meta();
        let Some(id) = meta.refs.get(&full).cloned() else {
            return Err(Error::NoSuchImage {
                what: familiar(&full),
            });
        };
        let mut refs = meta.refs.clone();
        refs.remove(&full);
        self.save_refs(&refs)?;
        meta.refs = refs;
        Ok(id)
    }

    /// Normalised references pointing at `id`, sorted.
    pub fn refs_for(&self, id: &ImageId) -> Vec<String> {
        self.lock_meta()
            .refs
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// All references, normalised -> id.
    pub fn references(&self) -> BTreeMap<String, ImageId> {
        self.lock_meta().refs.clone()
    }

    /// Resolves user input to an image id, in dockerd's order: a full id (`sha256:<hex>` or
    /// 64 hex), then a reference (`busybox` = `docker.io/library/busybox:latest`), then a
    /// unique id prefix (optionally `sha256:`-prefixed).
    pub fn resolve(&self, input: &str) -> Result<ImageId> {
        let bare = input.strip_prefix("sha256:").unwrap_or(input);
        if is_full_hex(bare) {
            let id = Digest::from_hex(bare)?;
            return if self.exists(&id) {
                Ok(id)
            } else {
                Err(Error::NoSuchImage {
                    what: id.to_string(),
                })
            };
        }
        let norm = normalize(input);
        let meta = self.lock_meta();
        if let Ok(n) = &norm {
            if let Some(id) = meta.refs.get(&n.to_full_string()) {
                if meta.images.contains_key(id) {
                    return Ok(id.clone());
                }
            }
        }
        if !bare.is_empty()
            && bare
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let mut hits = meta.images.keys().filter(|k| k.hex().starts_with(bare));
            if let Some(first) = hits.next() {
                if hits.next().is_some() {
                    return Err(Error::Ambiguous {
                        prefix: bare.to_string(),
                    });
                }
                return Ok(first.clone());
            }
        }
        match norm {
            Ok(n) => Err(Error::NoSuchImage {
                what: familiar(&n.to_full_string()),
            }),
            Err(e) => Err(e),
        }
    }
}
