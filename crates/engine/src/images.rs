//! Images through the engine: import, list, inspect, tag, remove, plus the container root
//! filesystem (overlay of the image's snapshots and the container's writable layer).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_store::ImageId;
use serde_json::{json, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::Engine;

/// `POST /images/create?fromSrc=-` parameters.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// `repo` (may carry the tag: `name:tag`).
    pub repo: String,
    pub tag: String,
    pub message: String,
    pub changes: Vec<String>,
    pub platform: String,
}

/// An image resolved for `create`: its id and parsed config.
pub struct RunImage {
    pub id: String,
    pub config: Value,
}

/// Overlay lower dirs of an image given as `sha256:<hex>`.
pub(crate) fn lower_dirs_of(store: &berth_store::ImageStore, id: &str) -> Result<Vec<PathBuf>> {
    let d: ImageId = id.parse().map_err(store_err)?;
    store.lower_dirs(&d).map_err(store_err)
}

pub(crate) fn store_err(e: berth_store::Error) -> Error {
    use berth_store::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::Conflict => ErrorKind::Conflict,
        K::InvalidArgument => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, e.to_string())
}

/// Mounts the container's root filesystem: overlay of `lowers` (top-most first) with the
/// writable layer in `<container dir>/upper`.
pub(crate) fn mount_rootfs(lowers: &[PathBuf], cdir: &Path, target: &Path) -> Result<()> {
    let upper = cdir.join("upper");
    let work = cdir.join("work");
    std::fs::create_dir_all(&upper)?;
    std::fs::create_dir_all(&work)?;
    if lowers.is_empty() {
        // An image without layers (e.g. `FROM scratch` + metadata): bind an empty dir.
        let empty = cdir.join("empty");
        std::fs::create_dir_all(&empty)?;
        return mount_overlay(&[empty], &upper, &work, target);
    }
    mount_overlay(lowers, &upper, &work, target)
}

fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let lower = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let opts = format!(
        "lowerdir={lower},upperdir={},workdir={},index=off",
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|e| {
        Error::internal(format!(
            "mounting the container root filesystem at {}: {e}",
            target.display()
        ))
    })
}

impl Engine {
    pub fn image_count(&self) -> usize {
        self.images.list().map(|l| l.len()).unwrap_or(0)
    }

    /// A stable daemon id derived from the data root.
    pub fn daemon_id(&self) -> String {
        use sha2::Digest as _;
        let h = sha2::Sha256::digest(self.cfg.data_root.display().to_string().as_bytes());
        hex::encode(&h[..16])
            .to_uppercase()
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The filesystem type under the data root, as `docker info` shows it.
    pub fn backing_fs(&self) -> String {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self
            .cfg
            .data_root
            .canonicalize()
            .unwrap_or_else(|_| self.cfg.data_root.clone());
        let mut best: (usize, String) = (0, "unknown".into());
        for line in mi.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let mp = pre.split_whitespace().nth(4).unwrap_or("");
            if root.starts_with(mp) && mp.len() >= best.0 {
                let fs = post.split_whitespace().next().unwrap_or("").to_string();
                best = (
                    mp.len(),
                    if fs == "ext4" || fs == "ext3" {
                        "extfs".into()
                    } else {
                        fs
                    },
                );
            }
        }
        best.1
    }

    /// Resolves the image named in a create request (404 with dockerd's text when missing).
    pub(crate) fn resolve_image_for_run(&self, name: &str) -> Result<RunImage> {
        let id = self.images.resolve(name).map_err(|e| match e.kind() {
            berth_store::ErrorKind::NotFound => {
                let shown = berth_store::reference::normalize(name)
                    .map(|n| berth_store::reference::familiar(&n.to_full_string()))
                    .unwrap_or_else(|_| name.to_string());
                Error::not_found(format!("No such image: {shown}"))
            }
            _ => store_err(e),
        })?;
        let info = self.images.inspect(&id).map_err(store_err)?;
        Ok(RunImage {
            id: id.to_string(),
            config: info.config,
        })
    }

    /// Checks an import's reference and `--change`s before the body is read.
    pub fn validate_import(&self, req: &ImportRequest) -> Result<()> {
        if let Some(r) = import_reference(req)? {
            berth_spec::reference::Reference::parse_normalized(&r)
                .map_err(|e| Error::invalid(e.to_string()))?;
        }
        import_config(&req.changes)?;
        Ok(())
    }

    /// `docker import`: one layer from the body, config from `--change`s, optional tag.
    pub async fn import_image(
        self: &Arc<Self>,
        body: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        req: ImportRequest,
    ) -> Result<String> {
        let reference = import_reference(&req)?;
        let base = import_config(&req.changes)?;
        let me = self.clone();
        let message = req.message.clone();
        let id = tokio::task::spawn_blocking(move || -> Result<ImageId> {
            let reader: Box<dyn Read> = Box::new(tokio_util::io::SyncIoBridge::new(body));
            let opts = berth_store::ImportOptions {
                created: None,
                message: if message.is_empty() {
                    None
                } else {
                    Some(message)
                },
                source: Some("-".into()),
            };
            me.images.import(reader, base, opts).map_err(store_err)
        })
        .await
        .map_err(|e| Error::internal(format!("import task failed: {e}")))??;
        self.events.publish(crate::events::image_event(
            "import",
            &id.to_string(),
            &id.to_string(),
        ));
        if let Some(r) = reference {
            self.images.tag(&id, &r).map_err(store_err)?;
            self.events.publish(crate::events::image_event(
                "tag",
                &id.to_string(),
                &display_ref(&r),
            ));
        }
        Ok(id.to_string())
    }

    /// `GET /images/json`.
    pub fn list_images(
        &self,
        _all: bool,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for img in self.images.list().map_err(store_err)? {
            if let Some(d) = filters.get("dangling") {
                let dangling = img.repo_tags.is_empty();
                if d.iter().any(|v| v == "true" || v == "1") && !dangling {
                    continue;
                }
                if d.iter().any(|v| v == "false" || v == "0") && dangling {
                    continue;
                }
            }
            if let Some(refs) = filters.get("reference") {
                let ok = refs
                    .iter()
                    .any(|pat| img.repo_tags.iter().any(|t| ref_matches(pat, t)));
                if !ok {
                    continue;
                }
            }
            if let Some(labels) = filters.get("label") {
                let ok = labels.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => img.labels.get(k).map(|x| x == v).unwrap_or(false),
                    None => img.labels.contains_key(l),
                });
                if !ok {
                    continue;
                }
            }
            out.push(json!({
                "Containers": -1,
                "Created": img.created,
                "Id": img.id.to_string(),
                "Labels": if img.labels.is_empty() { Value::Null } else { json!(img.labels) },
                "ParentId": img.parent.map(|p| p.to_string()).unwrap_or_default(),
                "RepoDigests": img.repo_digests,
                "RepoTags": img.repo_tags,
                "SharedSize": -1,
                "Size": img.size,
                "VirtualSize": img.size
            }));
        }
        Ok(out)
    }

    fn lookup_image(&self, name: &str) -> Result<ImageId> {
        self.images.resolve(name).map_err(|e| match e.kind() {
            berth_store::ErrorKind::NotFound => {
                Error::not_found(format!("No such image: {}", display_ref(name)))
            }
            _ => store_err(e),
        })
    }

    /// `GET /images/{name}/json`.
    pub fn inspect_image(&self, name: &str) -> Result<Value> {
        let id = self.lookup_image(name).map_err(|e| {
            if e.kind == ErrorKind::NotFound {
                // dockerd's wording for image inspect wraps the lookup error.
                Error::not_found(format!("no such image: {name}: {}", e.message))
            } else {
                e
            }
        })?;
        let info = self.images.inspect(&id).map_err(store_err)?;
        let c = &info.config;
        let layers: Vec<String> = info.record.diff_ids.iter().map(|d| d.to_string()).collect();
        let lowers = self.images.lower_dirs(&id).map_err(store_err)?;
        let upper = lowers
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let rest = lowers
            .iter()
            .skip(1)
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let mut graph = json!({"MergedDir": "", "UpperDir": upper, "WorkDir": ""});
        if !rest.is_empty() {
            graph["LowerDir"] = json!(rest);
        }
        Ok(json!({
            "Id": id.to_string(),
            "RepoTags": info.repo_tags,
            "RepoDigests": info.repo_digests,
            "Parent": info.record.parent.map(|p| p.to_string()).unwrap_or_default(),
            "Comment": c.get("comment").cloned().unwrap_or(json!("")),
            "Created": c.get("created").cloned().unwrap_or(json!("")),
            "DockerVersion": c.get("docker_version").cloned().unwrap_or(json!("")),
            "Author": c.get("author").cloned().unwrap_or(json!("")),
            "Config": c.get("config").cloned().unwrap_or(Value::Null),
            "Architecture": c.get("architecture").cloned().unwrap_or(json!("amd64")),
            "Os": c.get("os").cloned().unwrap_or(json!("linux")),
            "Size": info.record.size,
            "VirtualSize": info.record.size,
            "GraphDriver": {"Data": graph, "Name": "overlay2"},
            "RootFS": {"Type": "layers", "Layers": layers},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}
        }))
    }

    /// `POST /images/{name}/tag`.
    pub fn tag_image(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        let id = self.lookup_image(name)?;
        if repo.is_empty() {
            return Err(Error::invalid(
                "repository name must have at least one component",
            ));
        }
        let r = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        self.images.tag(&id, &r).map_err(store_err)?;
        self.events.publish(crate::events::image_event(
            "tag",
            &id.to_string(),
            &display_ref(&r),
        ));
        Ok(())
    }

    /// `DELETE /images/{name}`: untag, and delete when no reference is left.
    pub fn remove_image(&self, name: &str, force: bool, noprune: bool) -> Result<Value> {
        let id = self.lookup_image(name)?;
        let parent = self.images.inspect(&id).ok().and_then(|i| i.record.parent);
        let users: Vec<_> = self
            .all_containers()
            .into_iter()
            .map(|c| c.snapshot())
            .filter(|r| r.image_id == id.to_string())
            .collect();
        let is_ref = !name
            .trim_start_matches("sha256:")
            .chars()
            .all(|c| c.is_ascii_hexdigit())
            || self
                .images
                .references()
                .keys()
                .any(|k| berth_store::reference::familiar(k) == name);
        let refs = self.images.refs_for(&id);
        let mut out = Vec::new();
        if is_ref {
            // dockerd: removing a tag also drops the repository's digest references when no
            // other tag of that repository points at the image; the image itself goes only
            // with its last reference.
            let target = berth_spec::Reference::parse_normalized_tagged(name).ok();
            let full = target
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_else(|| name.to_string());
            let mut remove = vec![full.clone()];
            let mut remaining: Vec<String> = refs.iter().filter(|k| **k != full).cloned().collect();
            if let Some(t) = target.as_ref().filter(|t| t.digest().is_none()) {
                let parsed = |k: &str| berth_spec::Reference::parse(k).ok();
                let tag_left = remaining.iter().any(|k| {
                    parsed(k).is_some_and(|r| r.digest().is_none() && r.name() == t.name())
                });
                if !tag_left {
                    let (digests, rest): (Vec<String>, Vec<String>) =
                        remaining.into_iter().partition(|k| {
                            parsed(k).is_some_and(|r| r.digest().is_some() && r.name() == t.name())
                        });
                    remove.extend(digests);
                    remaining = rest;
                }
            }
            if !remaining.is_empty() {
                for r in &remove {
                    self.images.untag(r).map_err(store_err)?;
                    // dockerd names the image id (not the removed reference) in untag events
                    self.events.publish(crate::events::image_event(
                        "untag",
                        &id.to_string(),
                        &id.to_string(),
                    ));
                    out.push(json!({"Untagged": berth_store::reference::familiar(r)}));
                }
                return Ok(json!(out));
            }
            if !users.is_empty() && !force {
                return Err(Error::conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    &users[0].id[..12],
                    id.short()
                )));
            }
        }
        if !users.is_empty() {
            let running = users.iter().any(|u| u.state.status.is_running());
            if running || !force {
                return Err(Error::conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by {} container {}",
                    id.short(),
                    if running { "running" } else { "stopped" },
                    &users[0].id[..12]
                )));
            }
        }
        if !is_ref && refs.len() > 1 && !force {
            return Err(Error::conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                id.short()
            )));
        }
        let report = match self.images.delete(&id) {
            Ok(r) => r,
            // dockerd: removing the last reference of an image that child images still build
            // on only untags it (the image stays as their parent).
            Err(e) if is_ref && e.to_string().contains("dependent child images") => {
                for r in &refs {
                    self.images.untag(r).map_err(store_err)?;
                    self.events.publish(crate::events::image_event(
                        "untag",
                        &id.to_string(),
                        &id.to_string(),
                    ));
                    out.push(json!({"Untagged": berth_store::reference::familiar(r)}));
                }
                return Ok(json!(out));
            }
            Err(e) => return Err(store_err(e)),
        };
        for u in report.untagged {
            self.events.publish(crate::events::image_event(
                "untag",
                &id.to_string(),
                &id.to_string(),
            ));
            out.push(json!({"Untagged": u}));
        }
        for d in report.deleted {
            self.events.publish(crate::events::image_event(
                "delete",
                &d.to_string(),
                &d.to_string(),
            ));
            out.push(json!({"Deleted": d.to_string()}));
        }
        // dockerd prunes the untagged parents nothing else uses (unless `noprune`).
        struct GcAfter<'a>(&'a Engine);
        impl Drop for GcAfter<'_> {
            fn drop(&mut self) {
                self.0.gc_blobs();
            }
        }
        let _gc = GcAfter(self);
        let mut next = if noprune { None } else { parent };
        while let Some(p) = next.take() {
            let Ok(info) = self.images.inspect(&p) else {
                break;
            };
            let used = !self.images.refs_for(&p).is_empty()
                || self
                    .all_containers()
                    .iter()
                    .any(|c| c.snapshot().image_id == p.to_string());
            if used {
                break;
            }
            match self.images.delete(&p) {
                Ok(r) => {
                    for d in r.deleted {
                        self.events.publish(crate::events::image_event(
                            "delete",
                            &d.to_string(),
                            &d.to_string(),
                        ));
                        out.push(json!({"Deleted": d.to_string()}));
                    }
                    next = info.record.parent;
                }
                Err(_) => break, // another child still builds on it
            }
        }
        Ok(json!(out))
    }
}

/// A reference as docker displays it (`busybox:latest`), or the input if it does not parse.
pub(crate) fn display_ref(name: &str) -> String {
    berth_store::reference::normalize(name)
        .map(|n| berth_store::reference::familiar(&n.to_full_string()))
        .unwrap_or_else(|_| name.to_string())
}

/// The image config an import starts from: `--change`s applied to an empty config.
fn import_config(changes: &[String]) -> Result<Value> {
    let mut c = berth_api_types::ContainerConfig::default();
    berth_spec::changes::apply_changes(&mut c, changes)
        .map_err(|e| Error::invalid(e.to_string()))?;
    Ok(json!({ "config": c }))
}

/// The reference an import should be tagged with (`repo` may already carry `:tag`).
fn import_reference(req: &ImportRequest) -> Result<Option<String>> {
    if req.repo.is_empty() {
        return Ok(None);
    }
    if req.tag.is_empty() {
        Ok(Some(req.repo.clone()))
    } else {
        Ok(Some(format!("{}:{}", req.repo, req.tag)))
    }
}

/// `reference` filter: shell-style glob on the familiar name, with or without tag.
fn ref_matches(pat: &str, tag: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..]))
            }
            (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let repo = tag.rsplit_once(':').map(|(r, _)| r).unwrap_or(tag);
    glob(pat.as_bytes(), tag.as_bytes()) || glob(pat.as_bytes(), repo.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reference_filter_globs() {
        assert!(super::ref_matches("committed*", "committed:v1"));
        assert!(super::ref_matches("busybox", "busybox:latest"));
        assert!(!super::ref_matches("busy", "busybox:latest"));
    }
}
