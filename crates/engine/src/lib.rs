//! berth-engine: the daemon core. It owns container records and their state machine, the image
//! store, persistence, and supervision of the per-container shims. It knows nothing of HTTP:
//! berthd parses requests into calls on [`Engine`] and maps [`Error`] kinds to statuses.

pub mod archive;
pub mod builder;
mod bundle;
pub mod checks;
mod containers;
mod control;
mod df;
mod distribution;
pub mod error;
pub mod events;
pub mod exec;
mod files;
pub mod gc;
pub mod health;
pub mod image_io;
mod images;
pub mod logs;
pub mod names;
pub mod network;
pub mod persist;
mod prune;
pub mod record;
mod restart;
mod shim;
mod stats;
mod views;
pub mod volumes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use containers::{Attachment, Container, OutFrame, WaitCondition};
pub use error::{Error, ErrorKind, Result};
pub use images::ImportRequest;

/// (inode, mtime seconds, mtime nanoseconds) of the shim binary: a change means an upgrade.
fn shim_stamp(path: &Path) -> Option<(u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec()))
}

/// A sealed memfd copy of the shim and the stamp of the file it was made from.
fn sealed_shim(path: &Path) -> Option<(std::os::fd::OwnedFd, (u64, i64, i64))> {
    let stamp = shim_stamp(path)?;
    match berth_sys::sealed_copy(path, "berth-shim") {
        Ok(fd) => Some((fd, stamp)),
        Err(e) => {
            tracing::warn!("cannot make a sealed copy of {}: {e}; each shim copies itself", path.display());
            None
        }
    }
}

/// Daemon configuration (from berthd's flags).
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// The `berth-shim` executable.
    pub shim_bin: PathBuf,
    /// The `berth-runtime` executable (for exec).
    pub runtime_bin: PathBuf,
    /// Daemon-wide log options (`berthd --log-opt k=v`): the default rotation.
    pub log_opts: std::collections::BTreeMap<String, String>,
    /// Registries that may be reached over plain http when https fails (besides loopback,
    /// which always may), as dockerd's `--insecure-registry`.
    pub insecure_registries: Vec<String>,
}

impl Config {
    pub fn new(data_root: impl Into<PathBuf>, exec_root: impl Into<PathBuf>) -> Self {
        Config {
            data_root: data_root.into(),
            exec_root: exec_root.into(),
            shim_bin: shim::find_shim_binary(),
            runtime_bin: exec::find_runtime_binary(),
            log_opts: Default::default(),
            insecure_registries: Vec::new(),
        }
    }
    pub fn image_root(&self) -> PathBuf {
        self.data_root.join("image")
    }
    pub fn containers_dir(&self) -> PathBuf {
        self.data_root.join("containers")
    }
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("containers").join(id)
    }
    /// The shim's control socket. Unix socket paths are limited to 108 bytes, so when the
    /// exec root is deep the socket moves to a short per-daemon directory under /run.
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        self.short_socket(&id[..16])
    }

    /// A Unix socket path for `name` that fits in `sun_path`.
    pub fn short_socket(&self, name: &str) -> PathBuf {
        let p = self.exec_root.join("s").join(format!("{name}.sock"));
        if p.as_os_str().len() < 90 {
            return p;
        }
        use sha2::Digest as _;
        let h = hex::encode(
            &sha2::Sha256::digest(self.exec_root.display().to_string().as_bytes())[..6],
        );
        PathBuf::from("/run/berth-s")
            .join(h)
            .join(format!("{name}.sock"))
    }
    pub fn runtime_root(&self) -> PathBuf {
        self.exec_root.join("runtime")
    }
}

/// The engine. Cheap to share (`Arc<Engine>`).
pub struct Engine {
    pub cfg: Config,
    pub images: berth_store::ImageStore,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    /// name (without slash) -> id
    names: Mutex<HashMap<String, String>>,
    /// exec instances by id
    execs: Mutex<HashMap<String, Arc<exec::ExecInstance>>>,
    pub events: events::EventBus,
    pub cgroup_layout: checks::CgroupLayout,
    pub started: chrono::DateTime<chrono::Utc>,
    /// A sealed memfd copy of berth-shim made once at start: every monitor is executed from it,
    /// so no start copies the binary again (the shim then skips its own re-exec).
    /// Replaced when the binary on disk changes (an upgrade), older copies kept open: a shim
    /// being spawned may still be executing one.
    shim_exe: Mutex<Vec<(std::os::fd::OwnedFd, (u64, i64, i64))>>,
    /// Blobs in use by in-flight operations (kept by [`Engine::gc_blobs`]).
    pub leases: gc::Leases,
    /// Networks and endpoints.
    pub net: network::Networks,
}

impl Engine {
    /// Opens (or initialises) the data root and restores container records, reconnecting to
    /// shims that are still running (live restore).
    pub async fn open(cfg: Config) -> Result<Arc<Engine>> {
        for d in [
            cfg.containers_dir(),
            cfg.exec_root.join("containers"),
            cfg.runtime_root(),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::internal(format!("cannot create {}: {e}", d.display())))?;
        }
        let images = berth_store::ImageStore::open(&cfg.image_root())
            .map_err(|e| Error::internal(format!("cannot open image store: {e}")))?;
        let layout = checks::cgroup_layout()
            .ok_or_else(|| Error::internal("no cgroup hierarchy is mounted"))?;
        let shim_exe = Mutex::new(Vec::new());
        if let Some(c) = sealed_shim(&cfg.shim_bin) {
            shim_exe.lock().expect("lock").push(c);
        }
        // Build contexts, layer staging and COPY --from mounts of builds cut off by a crash.
        if let Ok(rd) = std::fs::read_dir(cfg.data_root.join("tmp")) {
            for e in rd.flatten() {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let net = network::Networks::open(&cfg.data_root, &cfg.exec_root)?;
        let engine = Arc::new(Engine {
            net,
            leases: gc::Leases::default(),
            shim_exe,
            cfg,
            images,
            containers: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            events: events::EventBus::default(),
            cgroup_layout: layout,
            started: chrono::Utc::now(),
        });
        engine.restore().await;
        if let Err(e) = engine.net_init().await {
            tracing::warn!("networking: {e}");
        }
        // Policies resume in the background: start-up does not wait for container starts.
        {
            let e = engine.clone();
            tokio::spawn(async move { e.resume_restart_policies().await });
        }
        let freed = engine.gc_blobs();
        if freed > 0 {
            tracing::info!(bytes = freed, "collected unreferenced blobs");
        }
        Ok(engine)
    }

    /// What to execute for a shim: the sealed copy (`/proc/self/fd/N`), else the binary.
    pub(crate) fn shim_exec_path(&self) -> Option<PathBuf> {
        use std::os::fd::AsRawFd;
        let mut copies = self.shim_exe.lock().expect("lock");
        let now = shim_stamp(&self.cfg.shim_bin);
        if now.is_some() && copies.last().map(|c| Some(c.1)) != Some(now) {
            if let Some(c) = sealed_shim(&self.cfg.shim_bin) {
                tracing::info!("{} changed on disk: new shims run the new copy", self.cfg.shim_bin.display());
                copies.push(c);
            }
        }
        copies
            .last()
            .map(|(fd, _)| PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())))
    }
    pub fn data_root(&self) -> &Path {
        &self.cfg.data_root
    }

    /// All containers, in creation order.
    pub fn all_containers(&self) -> Vec<Arc<Container>> {
        let mut v: Vec<_> = self
            .containers
            .lock()
            .expect("lock")
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|c| c.snapshot().created);
        v
    }

    /// Resolves a name, full id or unique id prefix, as dockerd does.
    pub fn container(&self, name_or_id: &str) -> Result<Arc<Container>> {
        let key = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        let map = self.containers.lock().expect("lock");
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        if let Some(id) = self.names.lock().expect("lock").get(key) {
            if let Some(c) = map.get(id) {
                return Ok(c.clone());
            }
        }
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<_> = map.iter().filter(|(id, _)| id.starts_with(key)).collect();
            match hits.len() {
                1 => return Ok(hits[0].1.clone()),
                0 => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "Multiple IDs found with provided prefix: {key}"
                    )))
                }
            }
        }
        Err(Error::no_such_container(name_or_id))
    }

    fn register(&self, c: Arc<Container>) {
        let rec = c.snapshot();
        self.names
            .lock()
            .expect("lock")
            .insert(rec.name.clone(), rec.id.clone());
        self.containers
            .lock()
            .expect("lock")
            .insert(rec.id.clone(), c);
    }

    fn unregister(&self, id: &str, name: &str) {
        self.containers.lock().expect("lock").remove(id);
        self.execs
            .lock()
            .expect("lock")
            .retain(|_, e| e.container_id != id);
        let mut names = self.names.lock().expect("lock");
        if names.get(name).map(|v| v == id).unwrap_or(false) {
            names.remove(name);
        }
    }

    /// Claims a name, or gives dockerd's conflict error.
    fn reserve_name(&self, name: &str, id: &str) -> Result<()> {
        let mut names = self.names.lock().expect("lock");
        if let Some(other) = names.get(name) {
            return Err(Error::conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        names.insert(name.to_string(), id.to_string());
        Ok(())
    }

    fn release_name(&self, name: &str, id: &str) {
        let mut names = self.names.lock().expect("lock");
        if names.get(name).map(|v| v == id).unwrap_or(false) {
            names.remove(name);
        }
    }

    /// Counts for `docker info`: (total, running, paused, stopped).
    pub fn container_counts(&self) -> (usize, usize, usize, usize) {
        let all = self.all_containers();
        let mut r = (all.len(), 0, 0, 0);
        for c in all {
            match c.snapshot().state.status {
                record::Status::Running | record::Status::Restarting => r.1 += 1,
                record::Status::Paused => r.2 += 1,
                _ => r.3 += 1,
            }
        }
        r
    }

    /// Emits a container event.
    pub(crate) fn emit(&self, action: &str, rec: &record::Record, extra: &[(&str, String)]) {
        self.events
            .publish(events::container_event(action, rec, extra));
    }

    /// `GET /events`: matching past events (for `since`), then live ones until `until`.
    pub fn subscribe_events(
        &self,
        q: events::EventQuery,
    ) -> tokio::sync::mpsc::Receiver<serde_json::Value> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let (past, mut live) = self.events.subscribe();
        tokio::spawn(async move {
            if q.since.is_some() {
                for ev in past.into_iter().filter(|e| q.in_window(e) && q.matches(e)) {
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
            }
            let until = q.until;
            loop {
                let wait = async {
                    match until {
                        Some(u) => {
                            let d = (u - chrono::Utc::now()).to_std().unwrap_or_default();
                            tokio::time::sleep(d).await
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    ev = live.recv() => match ev {
                        Ok(ev) => {
                            if q.in_window(&ev) && q.matches(&ev) && tx.send(ev).await.is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    },
                    _ = wait => return,
                    _ = tx.closed() => return,
                }
            }
        });
        rx
    }

    /// Called on SIGTERM: containers keep running under their shims (live restore); we only
    /// make sure every record is on disk.
    pub fn shutdown(&self) {
        for c in self.all_containers() {
            let _ = c.persist();
        }
    }
}
