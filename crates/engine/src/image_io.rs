//! Image interchange and container-to-image commands: `commit`, `diff`, `export`, `save`,
//! `load`, `image prune`, and `history` as dockerd shows it for image chains.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_store::{ImageId, SaveItem};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::images::display_ref;
use crate::images::store_err;
use crate::Engine;

/// `POST /commit` parameters.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub container: String,
    /// Repository, possibly fully qualified (`docker.io/library/x`); empty for none.
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    pub changes: Vec<String>,
    pub pause: bool,
}

/// Paths the runtime creates as mount targets (dockerd keeps them in a hidden init layer,
/// so `docker diff` never lists them).
const INIT_PATHS: &[&str] = &[
    "/dev",
    "/dev/console",
    "/dev/pts",
    "/dev/shm",
    "/proc",
    "/sys",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/.dockerenv",
];

/// A `Write` that sends what is written to a channel in 64 KiB chunks (blocking; used from
/// `spawn_blocking`).
struct ChanWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChanWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 64 * 1024 {
            self.send()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Runs `f` on a blocking thread with a writer whose bytes arrive on the returned channel.
fn stream_blocking<F>(what: &'static str, f: F) -> mpsc::Receiver<Bytes>
where
    F: FnOnce(&mut ChanWriter) -> Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChanWriter {
            tx,
            buf: Vec::with_capacity(64 * 1024),
        };
        match f(&mut w) {
            Ok(()) => {
                let _ = w.flush();
            }
            // The status line is gone already: ending the body early is all we can do (the
            // client sees a truncated tar).
            Err(e) => tracing::warn!("{what} failed: {e}"),
        }
    });
    rx
}

fn is_mountpoint(p: &Path) -> bool {
    let Ok(canon) = p.canonicalize() else {
        return false;
    };
    let want = canon.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(4).map(unescape_mount) == Some(want.clone()))
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// dockerd's `merge(userConf, imageConf)` for commit: fields the changes left empty come from
/// the container's config.
fn merge_commit_config(user: &mut Value, cont: &Value) {
    let empty = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    };
    let get = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let u = user.as_object_mut().expect("config object");
    for k in ["User", "WorkingDir", "StopSignal"] {
        if empty(u.get(k)) {
            u.insert(k.into(), get(cont, k));
        }
    }
    for k in ["ExposedPorts", "Volumes"] {
        if empty(u.get(k)) {
            u.insert(k.into(), get(cont, k));
        } else if let Some(c) = cont.get(k).and_then(Value::as_object) {
            let m = u.get_mut(k).and_then(Value::as_object_mut).expect("object");
            for (kk, vv) in c {
                m.entry(kk.clone()).or_insert(vv.clone());
            }
        }
    }
    if empty(u.get("Env")) {
        u.insert("Env".into(), get(cont, "Env"));
    } else if let Some(ce) = cont.get("Env").and_then(Value::as_array) {
        let mut env = u
            .get("Env")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let key = |s: &Value| {
            s.as_str()
                .unwrap_or("")
                .split('=')
                .next()
                .unwrap_or("")
                .to_string()
        };
        for e in ce {
            if !env.iter().any(|x| key(x) == key(e)) {
                env.push(e.clone());
            }
        }
        u.insert("Env".into(), json!(env));
    }
    let mut labels = u
        .get("Labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(cl) = cont.get("Labels").and_then(Value::as_object) {
        for (k, v) in cl {
            labels.entry(k.clone()).or_insert(v.clone());
        }
    }
    u.insert("Labels".into(), Value::Object(labels));
    if empty(u.get("Entrypoint")) {
        if empty(u.get("Cmd")) {
            u.insert("Cmd".into(), get(cont, "Cmd"));
            if !empty(cont.get("Shell")) {
                u.insert("Shell".into(), get(cont, "Shell"));
            }
        }
        if u.get("Entrypoint").map(Value::is_null).unwrap_or(true) {
            u.insert("Entrypoint".into(), get(cont, "Entrypoint"));
        }
    }
    if empty(u.get("Healthcheck")) && !empty(cont.get("Healthcheck")) {
        u.insert("Healthcheck".into(), get(cont, "Healthcheck"));
    }
}

fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Parses a prune `until` value: Unix seconds (with optional fraction), RFC 3339, or a
/// duration before now (`24h`, `90m`, `10s`).
pub(crate) fn parse_until(s: &str) -> Result<i64> {
    if let Ok(f) = s.parse::<f64>() {
        return Ok(f as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    let mut total = 0f64;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() || ch == '.' {
            num.push(ch);
            continue;
        }
        let n: f64 = num
            .parse()
            .map_err(|_| Error::invalid(format!("invalid until filter: {s}")))?;
        num.clear();
        total += n * match ch {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return Err(Error::invalid(format!("invalid until filter: {s}"))),
        };
    }
    if !num.is_empty() {
        return Err(Error::invalid(format!("invalid until filter: {s}")));
    }
    Ok(chrono::Utc::now().timestamp() - total as i64)
}

impl Engine {
    /// `POST /commit`: a new image from the container's writable layer on top of its image.
    pub async fn commit_container(self: &Arc<Self>, req: CommitRequest) -> Result<String> {
        let c = self.container(&req.container)?;
        let rec = c.snapshot();
        let reference = match (req.repo.is_empty(), req.tag.is_empty()) {
            (true, _) => None,
            (false, true) => Some(req.repo.clone()),
            (false, false) => Some(format!("{}:{}", req.repo, req.tag)),
        };
        if let Some(r) = &reference {
            berth_spec::reference::Reference::parse_normalized(r)
                .map_err(|e| Error::invalid(e.to_string()))?;
        }
        let mut user = berth_api_types::ContainerConfig::default();
        berth_spec::changes::apply_changes(&mut user, &req.changes)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let mut user_v = serde_json::to_value(&user).map_err(|e| Error::internal(e.to_string()))?;
        let cont_v =
            serde_json::to_value(&rec.config).map_err(|e| Error::internal(e.to_string()))?;
        merge_commit_config(&mut user_v, &cont_v);
        // Only the fields dockerd carries over: start from an empty config.
        let merged: berth_api_types::ContainerConfig =
            serde_json::from_value(user_v).map_err(|e| Error::internal(e.to_string()))?;

        let parent: ImageId = rec.image_id.parse().map_err(store_err)?;
        let pinfo = self.images.inspect(&parent).map_err(store_err)?;
        let paused = req.pause && rec.state.status == crate::record::Status::Running;
        if paused {
            if let Err(e) = self.pause_container(&rec.id).await {
                tracing::warn!("commit: cannot pause {}: {e}", rec.short_id());
            }
        }
        let me = self.clone();
        let upper = c.dir().join("upper");
        let parent_chain = pinfo.record.layers.last().cloned();
        let (_, skip) = self.changes_and_skips(&c)?;
        let layer = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&upper)?;
            me.images
                .commit_layer_skipping(parent_chain.as_ref(), &upper, &skip)
                .map_err(store_err)
        })
        .await
        .map_err(|e| Error::internal(format!("commit task failed: {e}")));
        if paused {
            let _ = self.unpause_container(&rec.id).await;
        }
        let layer = layer??;

        const EMPTY_LAYER: &str =
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
        let empty_layer = layer.diff_id.to_string() == EMPTY_LAYER;
        let created = rfc3339_now();
        let pc = &pinfo.config;
        let mut diff_ids: Vec<Value> = pinfo
            .record
            .diff_ids
            .iter()
            .map(|d| json!(d.to_string()))
            .collect();
        if !empty_layer {
            diff_ids.push(json!(layer.diff_id.to_string()));
        }
        let mut history = pc
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut h = serde_json::Map::new();
        h.insert("created".into(), json!(created));
        if !req.author.is_empty() {
            h.insert("author".into(), json!(req.author));
        }
        let created_by = rec.config.cmd.clone().unwrap_or_default().join(" ");
        if !created_by.is_empty() {
            h.insert("created_by".into(), json!(created_by));
        }
        if !req.comment.is_empty() {
            h.insert("comment".into(), json!(req.comment));
        }
        if empty_layer {
            h.insert("empty_layer".into(), json!(true));
        }
        history.push(Value::Object(h));
        let mut cfg = serde_json::Map::new();
        cfg.insert(
            "architecture".into(),
            pc.get("architecture").cloned().unwrap_or(json!("amd64")),
        );
        if !req.author.is_empty() {
            cfg.insert("author".into(), json!(req.author));
        }
        if !req.comment.is_empty() {
            cfg.insert("comment".into(), json!(req.comment));
        }
        cfg.insert(
            "config".into(),
            serde_json::to_value(&merged).map_err(|e| Error::internal(e.to_string()))?,
        );
        cfg.insert("container".into(), json!(rec.id));
        cfg.insert("created".into(), json!(created));
        cfg.insert("history".into(), json!(history));
        cfg.insert("os".into(), pc.get("os").cloned().unwrap_or(json!("linux")));
        cfg.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        if let Some(v) = pc.get("variant") {
            cfg.insert("variant".into(), v.clone());
        }
        let bytes =
            serde_json::to_vec(&Value::Object(cfg)).map_err(|e| Error::internal(e.to_string()))?;
        let me = self.clone();
        let id = tokio::task::spawn_blocking(move || {
            me.images.create_image_with_parent(&bytes, Some(&parent))
        })
        .await
        .map_err(|e| Error::internal(format!("commit task failed: {e}")))?
        .map_err(store_err)?;
        if let Some(r) = reference {
            self.images.tag(&id, &r).map_err(store_err)?;
        }
        Ok(id.to_string())
    }

    /// `docker diff` of a container as dockerd shows it, and the upper-dir paths (relative)
    /// that are only the runtime's mount targets (left out of diff and commit).
    pub(crate) fn changes_and_skips(
        &self,
        c: &crate::Container,
    ) -> Result<(Vec<berth_store::Change>, HashSet<PathBuf>)> {
        let rec = c.snapshot();
        let lowers = crate::images::lower_dirs_of(&self.images, &rec.image_id)?;
        let upper = c.dir().join("upper");
        if !upper.is_dir() {
            return Ok((Vec::new(), HashSet::new()));
        }
        let all = berth_store::ImageStore::changes(&upper, &lowers).map_err(store_err)?;
        let kept: Vec<_> = all
            .iter()
            .filter(|ch| !(ch.kind != 2 && INIT_PATHS.contains(&ch.path.as_str())))
            .cloned()
            .collect();
        // A directory "modified" only because the runtime created a mount target in it is
        // not a change dockerd shows.
        let out: Vec<berth_store::Change> = kept
            .iter()
            .filter(|ch| {
                if ch.kind != 0 || !upper.join(ch.path.trim_start_matches('/')).is_dir() {
                    return true;
                }
                let prefix = format!("{}/", ch.path.trim_end_matches('/'));
                let below_init = all.iter().any(|o| o.path.starts_with(&prefix));
                !below_init || kept.iter().any(|o| o.path.starts_with(&prefix))
            })
            .cloned()
            .collect();
        let skip = all
            .iter()
            .filter(|ch| !out.contains(ch))
            .map(|ch| PathBuf::from(ch.path.trim_start_matches('/')))
            .collect();
        Ok((out, skip))
    }

    /// `GET /containers/{id}/changes`.
    pub fn container_changes(&self, name: &str) -> Result<Value> {
        let c = self.container(name)?;
        let (out, _) = self.changes_and_skips(&c)?;
        if out.is_empty() {
            return Ok(Value::Null);
        }
        Ok(json!(out
            .iter()
            .map(|ch| json!({"Path": ch.path, "Kind": ch.kind}))
            .collect::<Vec<_>>()))
    }

    /// `GET /containers/{id}/export`: a tar of the container's merged filesystem. A stopped
    /// container's overlay is mounted read-only in a temp dir for the duration.
    pub fn export_container(self: &Arc<Self>, name: &str) -> Result<mpsc::Receiver<Bytes>> {
        let c = self.container(name)?;
        let rec = c.snapshot();
        let rootfs = self.cfg.bundle_dir(&rec.id).join("rootfs");
        let lowers = crate::images::lower_dirs_of(&self.images, &rec.image_id)?;
        let upper = c.dir().join("upper");
        let tmp_root = self.cfg.exec_root.join("export");
        Ok(stream_blocking("export", move |w| {
            if rec.state.status.is_running() && is_mountpoint(&rootfs) {
                berth_store::write_tar(&rootfs, w, berth_store::Whiteouts::Keep)
                    .map_err(store_err)?;
                return Ok(());
            }
            let mnt = tmp_root.join(format!("{}-{}", &rec.id[..12], std::process::id()));
            let mnt = unique_dir(&mnt)?;
            let res = (|| {
                mount_readonly(&upper, &lowers, &mnt, &tmp_root)?;
                let r = berth_store::write_tar(&mnt, &mut *w, berth_store::Whiteouts::Keep)
                    .map_err(store_err);
                let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
                r.map(|_| ())
            })();
            let _ = std::fs::remove_dir(&mnt);
            res
        }))
    }

    /// `GET /images/get?names=...`: a docker-archive tar of the named images.
    pub fn save_images(self: &Arc<Self>, names: &[String]) -> Result<mpsc::Receiver<Bytes>> {
        let mut items: Vec<SaveItem> = Vec::new();
        for n in names {
            let id = self.images.resolve(n).map_err(|e| match e.kind() {
                berth_store::ErrorKind::NotFound => {
                    Error::not_found(format!("No such image: {}", display_ref(n)))
                }
                _ => store_err(e),
            })?;
            let by_id = self
                .images
                .resolve(&format!("sha256:{}", n.trim_start_matches("sha256:")))
                .ok()
                == Some(id.clone())
                && n.trim_start_matches("sha256:")
                    .chars()
                    .all(|c| c.is_ascii_hexdigit());
            let tags = if by_id {
                Vec::new()
            } else {
                vec![display_ref(n)]
            };
            match items.iter_mut().find(|i| i.id == id) {
                Some(i) => {
                    for t in tags {
                        if !i.tags.contains(&t) {
                            i.tags.push(t);
                        }
                    }
                }
                None => items.push(SaveItem { id, tags }),
            }
        }
        let me = self.clone();
        Ok(stream_blocking("save", move |w| {
            me.images
                .save_archive(&items, w)
                .map_err(store_err)
                .map(|_| ())
        }))
    }

    /// `POST /images/load`: the JSON lines dockerd streams back.
    pub async fn load_images(
        self: &Arc<Self>,
        body: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        _quiet: bool,
    ) -> Result<Vec<Value>> {
        let me = self.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let reader: Box<dyn Read> = Box::new(tokio_util::io::SyncIoBridge::new(body));
            me.images.load_archive(reader).map_err(store_err)
        })
        .await
        .map_err(|e| Error::internal(format!("load task failed: {e}")))??;
        let mut out = Vec::new();
        for l in loaded {
            if l.tags.is_empty() {
                out.push(json!({"stream": format!("Loaded image ID: {}\n", l.id)}));
            }
            for t in l.tags {
                out.push(json!({"stream": format!("Loaded image: {t}\n")}));
            }
        }
        Ok(out)
    }

    /// `POST /images/prune`.
    pub fn prune_images(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<Value> {
        for k in filters.keys() {
            if !["dangling", "label", "label!", "until"].contains(&k.as_str()) {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        let dangling_only = match filters.get("dangling").map(|v| v.as_slice()) {
            None => true,
            Some(v) => match v.first().map(String::as_str) {
                Some("true") | Some("1") => true,
                Some("false") | Some("0") => false,
                Some(other) => {
                    return Err(Error::invalid(format!("invalid filter 'dangling={other}'")))
                }
                None => true,
            },
        };
        let until = filters
            .get("until")
            .and_then(|v| v.first())
            .map(|s| parse_until(s))
            .transpose()?;
        let label_ok = |labels: &BTreeMap<String, String>| {
            let m = |l: &String| match l.split_once('=') {
                Some((k, v)) => labels.get(k).map(|x| x == v).unwrap_or(false),
                None => labels.contains_key(l),
            };
            filters
                .get("label")
                .map(|ls| ls.iter().all(m))
                .unwrap_or(true)
                && filters
                    .get("label!")
                    .map(|ls| !ls.iter().any(m))
                    .unwrap_or(true)
        };
        let used: HashSet<String> = self
            .all_containers()
            .iter()
            .map(|c| c.snapshot().image_id)
            .collect();
        let summaries = self.images.list().map_err(store_err)?;
        let parents: HashSet<ImageId> = summaries.iter().filter_map(|s| s.parent.clone()).collect();
        let size_before = self.snapshot_sizes();
        let mut deleted: Vec<Value> = Vec::new();
        // Children first, so their parents become deletable in the same pass.
        let mut todo: Vec<_> = summaries
            .into_iter()
            .filter(|s| !parents.contains(&s.id))
            .filter(|s| !dangling_only || s.repo_tags.is_empty())
            .filter(|s| until.map(|u| s.created < u).unwrap_or(true))
            .filter(|s| label_ok(&s.labels))
            .collect();
        while let Some(s) = todo.pop() {
            if used.contains(&s.id.to_string()) {
                continue;
            }
            let Ok(rep) = self.images.delete(&s.id) else {
                continue;
            };
            for u in rep.untagged {
                deleted.push(json!({"Untagged": u}));
            }
            for d in rep.deleted {
                deleted.push(json!({"Deleted": d.to_string()}));
            }
            // dockerd's delete prunes untagged parents left without children.
            if let Some(p) = s.parent {
                let still_parent = self
                    .images
                    .list()
                    .map_err(store_err)?
                    .iter()
                    .any(|o| o.parent.as_ref() == Some(&p));
                if !still_parent
                    && self.images.refs_for(&p).is_empty()
                    && !used.contains(&p.to_string())
                {
                    if let Some(ps) = self
                        .images
                        .list()
                        .map_err(store_err)?
                        .into_iter()
                        .find(|o| o.id == p)
                    {
                        todo.push(ps);
                    }
                }
            }
        }
        let blobs_freed = self.gc_blobs();
        let size_after = self.snapshot_sizes();
        let reclaimed: u64 = blobs_freed
            + size_before
                .iter()
                .filter(|(k, _)| !size_after.contains_key(*k))
                .map(|(_, v)| *v)
                .sum::<u64>();
        Ok(json!({
            "ImagesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
            "SpaceReclaimed": reclaimed
        }))
    }

    fn snapshot_sizes(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for s in self.images.list().unwrap_or_default() {
            if let Ok(info) = self.images.inspect(&s.id) {
                for c in info.record.layers {
                    let size = self.images.snapshot_meta(&c).map(|m| m.size).unwrap_or(0);
                    m.insert(c.to_string(), size);
                }
            }
        }
        m
    }

    /// `GET /images/{name}/history` as dockerd shows it: one row per history entry, newest
    /// first; rows that made a layer carry its size; a row is attributed to the image (id
    /// and tags) whose top entry it is, following the parent chain, else `<missing>`.
    pub fn image_history_chain(&self, name: &str) -> Result<Value> {
        let id = self.images.resolve(name).map_err(|e| match e.kind() {
            berth_store::ErrorKind::NotFound => {
                Error::not_found(format!("No such image: {}", display_ref(name)))
            }
            _ => store_err(e),
        })?;
        let info = self.images.inspect(&id).map_err(store_err)?;
        let hist = info
            .config
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // Layer sizes, bottom first.
        let sizes: Vec<u64> = info
            .record
            .layers
            .iter()
            .map(|c| self.images.snapshot_meta(c).map(|m| m.size).unwrap_or(0))
            .collect();
        // Image id of each prefix length of the history (parent chain).
        let mut owners: BTreeMap<usize, (ImageId, Vec<String>)> = BTreeMap::new();
        let mut cur = Some(id.clone());
        while let Some(i) = cur {
            let Ok(inf) = self.images.inspect(&i) else {
                break;
            };
            let n = inf
                .config
                .get("history")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            owners
                .entry(n)
                .or_insert((i.clone(), inf.repo_tags.clone()));
            cur = inf.record.parent.clone();
        }
        let mut layer_idx = 0usize;
        let mut rows = Vec::new();
        for (i, h) in hist.iter().enumerate() {
            let empty = h
                .get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let size = if empty {
                0
            } else {
                let s = sizes.get(layer_idx).copied().unwrap_or(0);
                layer_idx += 1;
                s
            };
            let created = h
                .get("created")
                .and_then(Value::as_str)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.timestamp())
                .unwrap_or(0);
            let (rid, tags) = match owners.get(&(i + 1)) {
                Some((oid, t)) => (
                    oid.to_string(),
                    if t.is_empty() { Value::Null } else { json!(t) },
                ),
                None => ("<missing>".to_string(), Value::Null),
            };
            rows.push(json!({
                "Comment": h.get("comment").cloned().unwrap_or(json!("")),
                "Created": created,
                "CreatedBy": h.get("created_by").cloned().unwrap_or(json!("")),
                "Id": rid,
                "Size": size,
                "Tags": tags
            }));
        }
        rows.reverse();
        Ok(json!(rows))
    }
}

fn unique_dir(base: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(base.parent().unwrap_or(Path::new("/")))?;
    for i in 0..1000 {
        let p = PathBuf::from(format!("{}-{i}", base.display()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::internal("cannot create a temp mount point"))
}

/// Mounts `upper` over `lowers` read-only (no upperdir: overlay is read-only then; it needs
/// at least two lower dirs, so an empty one is added when there is only one).
fn mount_readonly(upper: &Path, lowers: &[PathBuf], target: &Path, tmp_root: &Path) -> Result<()> {
    let mut dirs: Vec<PathBuf> = Vec::with_capacity(lowers.len() + 2);
    if upper.is_dir() {
        dirs.push(upper.to_path_buf());
    }
    dirs.extend(lowers.iter().cloned());
    if dirs.len() < 2 {
        let empty = tmp_root.join("empty");
        std::fs::create_dir_all(&empty)?;
        dirs.push(empty);
    }
    let lower = dirs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let opts = format!("lowerdir={lower}");
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(opts.as_str()),
    )
    .map_err(|e| {
        Error::internal(format!(
            "mounting the container filesystem at {}: {e}",
            target.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_merge_like_dockerd() {
        let mut user = json!({"Cmd": ["sh"], "Env": ["A=2"], "Labels": null, "Entrypoint": null});
        let cont = json!({"Cmd": ["sleep", "1"], "Env": ["A=1", "PATH=/bin"], "Labels": {"x": "y"},
            "WorkingDir": "/w", "Entrypoint": null, "User": "1"});
        merge_commit_config(&mut user, &cont);
        assert_eq!(user["Cmd"], json!(["sh"]));
        assert_eq!(user["Env"], json!(["A=2", "PATH=/bin"]));
        assert_eq!(user["Labels"], json!({"x": "y"}));
        assert_eq!(user["WorkingDir"], json!("/w"));
        assert_eq!(user["User"], json!("1"));
    }

    #[test]
    fn until_forms() {
        assert_eq!(parse_until("100").unwrap(), 100);
        assert!(parse_until("1h").unwrap() < chrono::Utc::now().timestamp() - 3500);
        assert!(parse_until("x").is_err());
    }
}
