//! Image interchange: `docker save` archives (the legacy docker-archive layout) and
//! `docker load` of docker-archive and OCI image-layout tars; `docker diff` of an upperdir.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use crate::digest::{ChainId, DiffId, Digest, ImageId};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{mkdir_all, remove_any, tmp_path};
use crate::reference::{familiar, normalize};
use crate::ImageStore;

/// One image to put in a `docker save` archive.
#[derive(Debug, Clone)]
pub struct SaveItem {
    pub id: ImageId,
    /// Familiar references (`name:tag`) to record in `manifest.json` and `repositories`.
    pub tags: Vec<String>,
}

/// What one image of a `docker load` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub id: ImageId,
    /// Familiar references the image was tagged with.
    pub tags: Vec<String>,
}

/// One entry of `docker diff`: `kind` 0 = modified, 1 = added, 2 = deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

fn tar_err(what: &str, e: io::Error) -> Error {
    Error::io("write tar", what, e)
}

fn append_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    mode: u32,
) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(0);
    b.append_data(&mut h, name, data)
        .map_err(|e| tar_err(name, e))
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    b.append_data(&mut h, name, io::empty())
        .map_err(|e| tar_err(name, e))
}

/// The legacy v1 layer id of layer `i`: a digest over the chain id and the parent's v1 id
/// (deterministic, unique per chain), as dockerd derives one per layer for `save`.
fn v1_id(chain: &ChainId, parent: Option<&str>, top_config: Option<&ImageId>) -> String {
    let mut s = format!("{chain}");
    if let Some(p) = parent {
        s.push(' ');
        s.push_str(p);
    }
    if let Some(c) = top_config {
        s.push(' ');
        s.push_str(&c.to_string());
    }
    Digest::of(s.as_bytes()).hex().to_string()
}

/// Splits a familiar `name:tag` into (name, tag).
fn split_tag(r: &str) -> (String, String) {
    match r.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
        _ => (r.to_string(), "latest".to_string()),
    }
}

impl ImageStore {
    /// Writes a `docker save` archive (legacy docker-archive layout: `<layer-id>/VERSION`,
    /// `<layer-id>/json`, `<layer-id>/layer.tar`, `<config-hex>.json`, `manifest.json`,
    /// `repositories`) of `items` to `w`.
    pub fn save_archive<W: Write>(&self, items: &[SaveItem], w: W) -> Result<W> {
        let mut b = tar::Builder::new(w);
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut written: HashMap<String, ()> = HashMap::new();
        for item in items {
            let info = self.inspect(&item.id)?;
            let config_bytes = self.blobs().get(&item.id)?;
            let chains = info.record.layers.clone();
            let mut parent: Option<String> = None;
            let mut layer_paths = Vec::new();
            for (i, chain) in chains.iter().enumerate() {
                let top = i + 1 == chains.len();
                let id = v1_id(
                    chain,
                    parent.as_deref(),
                    if top { Some(&item.id) } else { None },
                );
                let path = format!("{id}/layer.tar");
                if written.insert(id.clone(), ()).is_none() {
                    append_dir(&mut b, &format!("{id}/"))?;
                    append_bytes(&mut b, &format!("{id}/VERSION"), b"1.0", 0o644)?;
                    let mut v1 = json!({
                        "id": id,
                        "created": "1970-01-01T00:00:00Z",
                        "container_config": {
                            "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
                            "AttachStdout": false, "AttachStderr": false, "Tty": false,
                            "OpenStdin": false, "StdinOnce": false, "Env": null, "Cmd": null,
                            "Image": "", "Volumes": null, "WorkingDir": "", "Entrypoint": null,
                            "OnBuild": null, "Labels": null
                        }
                    });
                    if let Some(p) = &parent {
                        v1["parent"] = json!(p);
                    }
                    if top {
                        for k in [
                            "created",
                            "os",
                            "architecture",
                            "config",
                            "author",
                            "comment",
                        ] {
                            if let Some(v) = info.config.get(k) {
                                v1[k] = v.clone();
                            }
                        }
                    }
                    let v1b = serde_json::to_vec(&v1).expect("json");
                    append_bytes(&mut b, &format!("{id}/json"), &v1b, 0o644)?;
                    let (mut f, len) = self.layer_tar(chain)?;
                    let mut h = tar::Header::new_ustar();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(len);
                    h.set_mode(0o644);
                    h.set_mtime(0);
                    let r = io::Read::take(
                        io::Read::chain(io::Read::take(&mut f, len), io::repeat(0)),
                        len,
                    );
                    b.append_data(&mut h, &path, r)
                        .map_err(|e| tar_err(&path, e))?;
                }
                layer_paths.push(path);
                parent = Some(id);
            }
            let cfg_name = format!("{}.json", item.id.hex());
            if written.insert(cfg_name.clone(), ()).is_none() {
                append_bytes(&mut b, &cfg_name, &config_bytes, 0o644)?;
            }
            for t in &item.tags {
                let (n, tag) = split_tag(t);
                if let Some(top) = &parent {
                    repositories.entry(n).or_default().insert(tag, top.clone());
                }
            }
            manifest.push(json!({
                "Config": cfg_name,
                "RepoTags": if item.tags.is_empty() { Value::Null } else { json!(item.tags) },
                "Layers": layer_paths,
            }));
        }
        append_bytes(
            &mut b,
            "manifest.json",
            &serde_json::to_vec(&manifest).expect("json"),
            0o644,
        )?;
        if !repositories.is_empty() {
            append_bytes(
                &mut b,
                "repositories",
                &serde_json::to_vec(&repositories).expect("json"),
                0o644,
            )?;
        }
        b.into_inner().map_err(|e| tar_err("archive", e))
    }

    /// `docker load`: reads a docker-archive or OCI image-layout tar, applies the layers
    /// (verifying each diff id against the config), creates the images and tags them.
    pub fn load_archive<R: Read>(&self, reader: R) -> Result<Vec<Loaded>> {
        let dir = tmp_path(&self.root().join("ingest"), "load-");
        mkdir_all(&dir)?;
        let res = (|| {
            let links = spool(reader, &dir)?;
            let sp = Spool { dir: &dir, links };
            if sp.exists("manifest.json") {
                self.load_docker_archive(&sp)
            } else if sp.exists("index.json") {
                self.load_oci_layout(&sp)
            } else {
                Err(Error::InvalidArgument(
                    "invalid archive: neither manifest.json (docker-archive) nor index.json (OCI layout) found".into(),
                ))
            }
        })();
        let _ = remove_any(&dir);
        res
    }

    /// Applies `layers` (readers of layer streams, bottom first) so that they match
    /// `diff_ids`, reusing snapshots that already exist; then creates the image.
    fn load_image(&self, config: &[u8], layers: &[PathBuf], sp: &Spool<'_>) -> Result<ImageId> {
        let cfg: Value = serde_json::from_slice(config)
            .map_err(|e| Error::InvalidArgument(format!("invalid image config: {e}")))?;
        let diff_ids: Vec<DiffId> = cfg
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|v| v.as_str().unwrap_or("").parse())
            .collect::<Result<_>>()?;
        if diff_ids.len() != layers.len() {
            return Err(Error::InvalidArgument(format!(
                "invalid manifest, layers length mismatch: expected {}, got {}",
                diff_ids.len(),
                layers.len()
            )));
        }
        let chains = Digest::chain_ids(&diff_ids);
        let mut parent: Option<ChainId> = None;
        for (i, chain) in chains.iter().enumerate() {
            if !self.snapshot_exists(chain) {
                let p = sp.resolve(&layers[i])?;
                let f = File::open(&p).ctx("open", &p)?;
                let info = self.apply_layer(parent.as_ref(), io::BufReader::new(f))?;
                if info.diff_id != diff_ids[i] {
                    return Err(Error::InvalidArgument(format!(
                        "invalid diffID for layer {i}: expected {:?}, got {:?}",
                        diff_ids[i].to_string(),
                        info.diff_id.to_string()
                    )));
                }
            }
            parent = Some(chain.clone());
        }
        self.create_image(config)
    }

    fn tag_loaded(&self, id: &ImageId, refs: &[String]) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        for r in refs {
            let full = normalize(r)?.to_full_string();
            self.tag(id, &full)?;
            tags.push(familiar(&full));
        }
        Ok(tags)
    }

    fn load_docker_archive(&self, sp: &Spool<'_>) -> Result<Vec<Loaded>> {
        let m = sp.read("manifest.json")?;
        let manifest: Vec<Value> = serde_json::from_slice(&m)
            .map_err(|e| Error::InvalidArgument(format!("invalid manifest.json: {e}")))?;
        let mut out = Vec::new();
        for entry in manifest {
            let cfg_name = entry.get("Config").and_then(Value::as_str).unwrap_or("");
            let config = sp.read(cfg_name)?;
            let layers: Vec<PathBuf> = entry
                .get("Layers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|l| PathBuf::from(l.as_str().unwrap_or("")))
                .collect();
            let id = self.load_image(&config, &layers, sp)?;
            let refs: Vec<String> = entry
                .get("RepoTags")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let tags = self.tag_loaded(&id, &refs)?;
            out.push(Loaded { id, tags });
        }
        Ok(out)
    }

    fn load_oci_layout(&self, sp: &Spool<'_>) -> Result<Vec<Loaded>> {
        let idx: Value = serde_json::from_slice(&sp.read("index.json")?)
            .map_err(|e| Error::InvalidArgument(format!("invalid index.json: {e}")))?;
        let mut out = Vec::new();
        for desc in idx
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let ann = desc.get("annotations").cloned().unwrap_or(Value::Null);
            let name = ann
                .get("io.containerd.image.name")
                .and_then(Value::as_str)
                .or_else(|| {
                    // `org.opencontainers.image.ref.name` is often only a tag; use it when it
                    // is a whole reference.
                    ann.get("org.opencontainers.image.ref.name")
                        .and_then(Value::as_str)
                        .filter(|r| r.contains(':') || r.contains('/'))
                })
                .map(str::to_string);
            let manifest = self.oci_pick_manifest(sp, &desc)?;
            let cfg_digest = manifest
                .pointer("/config/digest")
                .and_then(Value::as_str)
                .unwrap_or("");
            let config = sp.read(&blob_path(cfg_digest)?)?;
            let layers: Vec<PathBuf> = manifest
                .get("layers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|l| {
                    blob_path(l.get("digest").and_then(Value::as_str).unwrap_or(""))
                        .map(PathBuf::from)
                })
                .collect::<Result<_>>()?;
            let id = self.load_image(&config, &layers, sp)?;
            let tags = self.tag_loaded(&id, &name.into_iter().collect::<Vec<_>>())?;
            out.push(Loaded { id, tags });
        }
        Ok(out)
    }

    /// Follows an index descriptor down to one image manifest (linux/<this arch> from a
    /// nested index).
    fn oci_pick_manifest(&self, sp: &Spool<'_>, desc: &Value) -> Result<Value> {
        let mut desc = desc.clone();
        for _ in 0..4 {
            let digest = desc.get("digest").and_then(Value::as_str).unwrap_or("");
            let bytes = sp.read(&blob_path(digest)?)?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::InvalidArgument(format!("invalid manifest {digest}: {e}")))?;
            let Some(list) = v.get("manifests").and_then(Value::as_array) else {
                return Ok(v);
            };
            let arch = crate::images::oci_arch();
            let pick = list
                .iter()
                .find(|m| {
                    m.pointer("/platform/os").and_then(Value::as_str) == Some("linux")
                        && m.pointer("/platform/architecture").and_then(Value::as_str) == Some(arch)
                })
                .or_else(|| list.first())
                .cloned()
                .ok_or_else(|| Error::InvalidArgument(format!("empty index {digest}")))?;
            desc = pick;
        }
        Err(Error::InvalidArgument("index nesting too deep".into()))
    }

    /// `docker diff`: the changes an overlay upperdir makes to `lowers` (top-most first),
    /// in dockerd's order (depth first, names sorted).
    pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        walk_changes(upper, Path::new("/"), lowers, &mut out)?;
        Ok(out)
    }
}

fn blob_path(digest: &str) -> Result<String> {
    let d: Digest = digest.parse()?;
    Ok(format!("blobs/sha256/{}", d.hex()))
}

fn lower_meta(lowers: &[PathBuf], rel: &Path) -> Option<fs::Metadata> {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    for l in lowers {
        // Stop at the first layer that has the path or hides it.
        let mut hidden = false;
        let mut cur = l.clone();
        for c in rel.components() {
            cur.push(c);
            if let Ok(m) = fs::symlink_metadata(&cur) {
                if m.file_type().is_char_device() && m.rdev() == 0 {
                    hidden = true;
                    break;
                }
            }
        }
        if hidden {
            return None;
        }
        if let Ok(m) = fs::symlink_metadata(l.join(rel)) {
            return Some(m);
        }
    }
    None
}

fn walk_changes(dir: &Path, rel: &Path, lowers: &[PathBuf], out: &mut Vec<Change>) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .ctx("readdir", dir)?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let r = rel.join(&n);
        let m = fs::symlink_metadata(&p).ctx("stat", &p)?;
        let path = r.display().to_string();
        if m.file_type().is_char_device() && m.rdev() == 0 {
            if lower_meta(lowers, &r).is_some() {
                out.push(Change { path, kind: 2 });
            }
            continue;
        }
        match lower_meta(lowers, &r) {
            None => out.push(Change { path, kind: 1 }),
            Some(lm) => {
                let same_dir = m.is_dir()
                    && lm.is_dir()
                    && lm.mode() == m.mode()
                    && lm.mtime() == m.mtime()
                    && lm.mtime_nsec() == m.mtime_nsec();
                if !same_dir {
                    out.push(Change { path, kind: 0 });
                }
            }
        }
        if m.is_dir() {
            walk_changes(&p, &r, lowers, out)?;
        }
    }
    Ok(())
}

/// A spooled archive: regular files under `dir`, symlinks recorded (resolved lexically
/// inside the archive).
struct Spool<'a> {
    dir: &'a Path,
    links: HashMap<PathBuf, PathBuf>,
}

impl Spool<'_> {
    /// Maps an archive path to a file under the spool dir, following the archive's
    /// symlinks (which never leave the archive).
    fn resolve(&self, p: impl AsRef<Path>) -> Result<PathBuf> {
        let mut cur = clean(p.as_ref()).ok_or_else(|| {
            Error::InvalidArgument(format!("invalid path in archive: {}", p.as_ref().display()))
        })?;
        for _ in 0..16 {
            let Some(target) = self.links.get(&cur) else {
                return Ok(self.dir.join(&cur));
            };
            let base = cur.parent().map(Path::to_path_buf).unwrap_or_default();
            let joined = if target.is_absolute() {
                target.clone()
            } else {
                base.join(target)
            };
            cur = clean(&joined).ok_or_else(|| {
                Error::InvalidArgument(format!("invalid link in archive: {}", target.display()))
            })?;
        }
        Err(Error::InvalidArgument("too many links in archive".into()))
    }

    fn exists(&self, p: &str) -> bool {
        self.resolve(p).map(|p| p.is_file()).unwrap_or(false)
    }

    fn read(&self, p: &str) -> Result<Vec<u8>> {
        let f = self.resolve(p)?;
        match fs::read(&f) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::InvalidArgument(format!(
                "invalid archive: {p} not found"
            ))),
            Err(e) => Err(Error::io("read", f, e)),
        }
    }
}

/// Lexically cleans an archive path: no root, no `..` above the top (None then).
fn clean(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Unpacks the regular files of an archive under `dir` (names cleaned; nothing is written
/// outside `dir`); returns its symlinks.
fn spool<R: Read>(reader: R, dir: &Path) -> Result<HashMap<PathBuf, PathBuf>> {
    let mut links = HashMap::new();
    let mut ar = tar::Archive::new(reader);
    let bad = |e: io::Error| Error::InvalidArgument(format!("invalid tar archive: {e}"));
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = clean(&name) else { continue };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let dest = dir.join(&rel);
                if let Some(parent) = dest.parent() {
                    mkdir_all(parent)?;
                }
                // A name given twice: the last one wins, as when extracting.
                let _ = remove_any(&dest);
                let mut f = File::create(&dest).ctx("create", &dest)?;
                io::copy(&mut entry, &mut f).map_err(bad)?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Some(t) = entry.link_name().map_err(bad)? {
                    let t = t.into_owned();
                    // Hard link names are relative to the archive root.
                    let t = if entry.header().entry_type() == tar::EntryType::Link {
                        PathBuf::from("/").join(t)
                    } else {
                        t
                    };
                    links.insert(rel, t);
                }
            }
            _ => {}
        }
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean(Path::new("a/../b")), Some(PathBuf::from("b")));
        assert_eq!(clean(Path::new("../x")), None);
        assert_eq!(
            clean(Path::new("/blobs/sha256/x")),
            Some(PathBuf::from("blobs/sha256/x"))
        );
    }

    #[test]
    fn tags_split() {
        assert_eq!(split_tag("a:v1"), ("a".into(), "v1".into()));
        assert_eq!(
            split_tag("localhost:5000/a"),
            ("localhost:5000/a".into(), "latest".into())
        );
    }
}
