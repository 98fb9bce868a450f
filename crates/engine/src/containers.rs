//! Containers: create, start, stop, kill, wait, attach, logs, remove, restore.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api_types::ContainerCreateRequest;
use bytes::Bytes;
use chrono::Utc;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::sync::{broadcast, oneshot, watch};

use crate::error::{Error, ErrorKind, Result};
use crate::record::{Record, State, Status, SCHEMA};
use crate::shim::{self, FrameWriter};
use crate::{files, logs, names, persist, Engine};

/// Output travelling from a shim to attached clients.
#[derive(Debug, Clone)]
pub enum OutFrame {
    /// Stream (1 stdout, 2 stderr) and bytes.
    Data(u8, Bytes),
    /// The container exited; no more output.
    End,
}

/// What waiters observe.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub running: bool,
    pub exits: u64,
    pub exit_code: i32,
    pub removed: bool,
}

/// `wait?condition=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: Option<&str>) -> Result<Self> {
        match s.unwrap_or("") {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(Error::invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

/// One container, live in the daemon.
pub struct Container {
    pub id: String,
    rec: Mutex<Record>,
    dir: PathBuf,
    pub(crate) life: watch::Sender<Lifecycle>,
    output: broadcast::Sender<OutFrame>,
    shim_tx: tokio::sync::Mutex<Option<FrameWriter>>,
    /// Serialises start/stop/kill/remove on this container.
    pub(crate) op: tokio::sync::Mutex<()>,
    /// Set when removal starts deleting files: nothing persists the record after that.
    deleted: std::sync::atomic::AtomicBool,
}

/// A client attached to a container's streams.
pub struct Attachment {
    pub output: broadcast::Receiver<OutFrame>,
    pub tty: bool,
    pub stdin_once: bool,
    /// True when the container already exited and is not going to start (nothing will come).
    pub finished: bool,
}

impl Container {
    fn new(rec: Record, dir: PathBuf) -> Arc<Container> {
        let running = rec.state.status.is_running();
        let (life, _) = watch::channel(Lifecycle {
            running,
            exits: 0,
            exit_code: rec.state.exit_code,
            removed: false,
        });
        let (output, _) = broadcast::channel(1024);
        Arc::new(Container {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            dir,
            life,
            output,
            shim_tx: tokio::sync::Mutex::new(None),
            op: tokio::sync::Mutex::new(()),
            deleted: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A copy of the record.
    pub fn snapshot(&self) -> Record {
        self.rec.lock().expect("lock").clone()
    }

    pub fn persist(&self) -> std::io::Result<()> {
        // A late update (health monitor, exit bookkeeping) must not bring a removed
        // container's record back from the dead.
        if self.deleted.load(std::sync::atomic::Ordering::SeqCst) || !self.dir.is_dir() {
            return Ok(());
        }
        let rec = self.snapshot();
        persist::write_json(&self.dir.join("config.v2.json"), &rec)
    }

    pub(crate) fn update<F: FnOnce(&mut Record)>(&self, f: F) -> std::io::Result<()> {
        {
            let mut r = self.rec.lock().expect("lock");
            f(&mut r);
        }
        self.persist()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}-json.log", self.id))
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn lifecycle(&self) -> watch::Receiver<Lifecycle> {
        self.life.subscribe()
    }
}

/// The image's `config` block as a ContainerConfig (empty when the image has none).
fn image_container_config(image: &serde_json::Value) -> berth_api_types::ContainerConfig {
    image
        .get("config")
        .filter(|c| !c.is_null())
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default()
}

impl Engine {
    /// `POST /containers/create`.
    pub async fn create_container(
        self: &Arc<Self>,
        name: Option<&str>,
        req: ContainerCreateRequest,
    ) -> Result<(String, Vec<String>)> {
        let image_ref = req.config.image.clone();
        if image_ref.is_empty() {
            return Err(Error::invalid(
                "config cannot be empty in order to create a container",
            ));
        }
        let image = self.resolve_image_for_run(&image_ref)?;
        // Bad --security-opt values fail at create, as in dockerd.
        let sec = berth_spec::security::parse_security_opts(
            req.host_config.security_opt.as_deref().unwrap_or(&[]),
        )
        .map_err(|e| Error::invalid(e.to_string()))?;
        berth_spec::security::check_lsm(&sec, false).map_err(|e| Error::invalid(e.to_string()))?;
        let id = names::new_id();
        let hostname = if req.config.hostname.is_empty() {
            id[..12].to_string()
        } else {
            req.config.hostname.clone()
        };
        let (merged, process) = berth_spec::merge::effective_process(
            &req.config,
            &image_container_config(&image.config),
            &hostname,
        )
        .map_err(|e| Error::invalid(e.to_string()))?;
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !names::valid_name(n) {
                    return Err(Error::invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.trim_start_matches('/').to_string()
            }
            None => loop {
                let n = names::random_name();
                if self.container(&n).is_err() {
                    break n;
                }
            },
        };
        self.reserve_name(&name, &id)?;
        let dir = self.cfg.container_dir(&id);
        let result = (|| -> Result<Arc<Container>> {
            std::fs::create_dir_all(dir.join("upper"))?;
            std::fs::create_dir_all(dir.join("work"))?;
            let mut config = merged;
            // Fill in what dockerd fills in, so inspect shows the effective values.
            config.image = image_ref.clone();
            config.hostname = hostname.clone();
            let mut host_config = req.host_config.clone();
            if host_config.log_config.r#type.is_empty() {
                host_config.log_config.r#type = "json-file".into();
            }
            logs::validate(&host_config.log_config)?;
            if host_config.network_mode.is_empty() {
                host_config.network_mode = "default".into();
            }
            let extra_hosts = host_config.extra_hosts.clone().unwrap_or_default();
            files::write_all(&dir, &config.hostname, &extra_hosts)?;
            let networks = self.initial_endpoints(
                &host_config.network_mode,
                req.networking_config.endpoints_config.as_ref(),
            )?;
            let anon_volumes = self.create_container_volumes(&config, &host_config)?;
            let rec = Record {
                networks,
                ports: Default::default(),
                schema: SCHEMA,
                id: id.clone(),
                name: name.clone(),
                created: Utc::now(),
                image_id: image.id.clone(),
                path: process.path.clone(),
                args: process.args.clone(),
                config,
                host_config,
                state: State::default(),
                restart_count: 0,
                manually_stopped: false,
                restart_delay_ms: 0,
                anon_volumes,
            };
            let c = Container::new(rec, dir.clone());
            c.persist()?;
            Ok(c)
        })();
        match result {
            Ok(c) => {
                self.emit("create", &c.snapshot(), &[]);
                self.register(c);
                Ok((id, Vec::new()))
            }
            Err(e) => {
                self.release_name(&name, &id);
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// `POST /containers/{id}/start`.
    pub async fn start_container(self: &Arc<Self>, name: &str) -> Result<()> {
        self.start_inner(name, true).await
    }

    /// A start by a restart policy (the user's stop flag is left alone).
    pub(crate) async fn start_for_policy(self: &Arc<Self>, name: &str) -> Result<()> {
        self.start_inner(name, false).await
    }

    async fn start_inner(self: &Arc<Self>, name: &str, by_user: bool) -> Result<()> {
        let c = self.container(name)?;
        let _op = c.op.lock().await;
        if by_user {
            c.update(|r| {
                r.manually_stopped = false;
                if r.state.status == Status::Restarting {
                    r.state.status = Status::Exited;
                }
            })?;
        }
        let rec = c.snapshot();
        match rec.state.status {
            Status::Running | Status::Restarting => {
                return Err(Error::new(
                    ErrorKind::NotModified,
                    "container already started",
                ))
            }
            Status::Paused => {
                return Err(Error::conflict(
                    "cannot start a paused container, try unpause instead",
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(Error::conflict(format!(
                    "container is marked for removal and cannot be started"
                )))
            }
            Status::Created | Status::Exited => {}
        }
        match self.do_start(&c, &rec).await {
            Ok(()) => {
                self.emit("start", &c.snapshot(), &[]);
                if c.snapshot().state.status == Status::Running {
                    self.start_health_monitor(&c);
                }
                Ok(())
            }
            Err(e) => {
                let code = if e.message.contains("executable file not found")
                    || e.message.contains("no such file or directory")
                {
                    127
                } else if e.message.contains("permission denied") {
                    126
                } else {
                    128
                };
                let _ = c.update(|r| {
                    r.state.status = if r.state.status == Status::Created {
                        Status::Created
                    } else {
                        Status::Exited
                    };
                    r.state.exit_code = code;
                    r.state.error = e.message.clone();
                    r.state.finished_at = Some(Utc::now());
                });
                if rec.host_config.auto_remove {
                    let me = self.clone();
                    let id = c.id.clone();
                    drop(_op);
                    let _ = me.remove_container(&id, true, false).await;
                }
                Err(e)
            }
        }
    }

    async fn do_start(self: &Arc<Self>, c: &Arc<Container>, rec: &Record) -> Result<()> {
        let id = rec.id.clone();
        let bundle = self.cfg.bundle_dir(&id);
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs)?;
        let lowers = crate::images::lower_dirs_of(&self.images, &rec.image_id).map_err(|e| {
            Error::internal(format!(
                "cannot find the layers of image {}: {e}",
                rec.image_id
            ))
        })?;
        crate::images::mount_rootfs(&lowers, &c.dir, &rootfs)?;
        let cleanup = |_: &Error| {
            let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
        };
        if let Err(e) = self.copy_up_volumes(rec, &rootfs) {
            cleanup(&e);
            return Err(e);
        }
        if !rec.config.working_dir.is_empty() {
            if let Err(e) = crate::files::mkdir_in_root(&rootfs, &rec.config.working_dir) {
                let e = Error::invalid(format!(
                    "failed to create working directory {:?}: {e}",
                    rec.config.working_dir
                ));
                cleanup(&e);
                return Err(e);
            }
        }
        let netns = match self.net_attach(c).await {
            Ok(p) => p,
            Err(e) => {
                cleanup(&e);
                return Err(e);
            }
        };
        let rec = &c.snapshot();
        let cleanup = |e: &Error| {
            cleanup(e);
            let me = self.clone();
            let id = rec.id.clone();
            tokio::spawn(async move { me.net_detach(&id).await });
        };
        let spec = match self.generate_spec(rec, &rootfs, netns.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                cleanup(&e);
                return Err(e);
            }
        };
        // The bundle is regenerated at every start: no fsync on the start path.
        if let Err(e) = persist::write_json_volatile(&bundle.join("config.json"), &spec) {
            let e = Error::from(e);
            cleanup(&e);
            return Err(e);
        }
        let socket = self.cfg.shim_socket(&id);
        if let Some(d) = socket.parent() {
            std::fs::create_dir_all(d)?;
        }
        let exit_file = bundle.join("exit.json");
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(&exit_file);
        let log_setup = match logs::setup(rec, c.dir(), &self.cfg.log_opts) {
            Ok(s) => s,
            Err(e) => {
                cleanup(&e);
                return Err(e);
            }
        };
        let log_path = log_setup.path.clone().unwrap_or_else(|| c.log_path());
        let tty = rec.config.tty;
        let stdin = rec.config.open_stdin;
        let shim_exec = self.shim_exec_path();
        let args = shim::ShimArgs {
            shim_bin: &self.cfg.shim_bin,
            exec_path: shim_exec.as_deref(),
            id: &id,
            bundle: &bundle,
            runtime_root: &self.cfg.runtime_root(),
            log_path: &log_path,
            socket: &socket,
            exit_file: &exit_file,
            tty,
            stdin,
            log_args: log_setup.shim_args(),
        };
        let pid = match shim::spawn(&args).await {
            Ok(pid) => pid,
            Err(e) => {
                let e = Error::invalid(format!(
                    "failed to create task for container: OCI runtime create failed: {}: unknown",
                    e.message
                ));
                cleanup(&e);
                return Err(e);
            }
        };
        let exits_before = c.life.borrow().exits;
        let (started_tx, started_rx) = oneshot::channel();
        if let Err(e) = self.connect_shim(c, &socket, Some(started_tx)).await {
            cleanup(&e);
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            return Err(e);
        }
        {
            let mut w = c.shim_tx.lock().await;
            if let Some(w) = w.as_mut() {
                w.send(shim::START, b"").await.map_err(|e| {
                    Error::internal(format!("cannot talk to the shim of {id}: {e}"))
                })?;
            }
        }
        match tokio::time::timeout(Duration::from_secs(30), started_rx).await {
            Ok(Ok(Ok(pid))) => {
                // The monitor may already have seen the exit of a very short-lived process;
                // then its bookkeeping stands and only the start time is recorded.
                let started_at = Utc::now();
                let mut already_exited = false;
                c.life.send_modify(|l| {
                    already_exited = l.exits != exits_before;
                    if !already_exited {
                        l.running = true;
                    }
                });
                if already_exited {
                    c.update(|r| r.state.started_at = Some(started_at))?;
                } else {
                    c.update(|r| {
                        r.state.status = Status::Running;
                        r.state.pid = pid;
                        r.state.started_at = Some(started_at);
                        r.state.finished_at = None;
                        r.state.error.clear();
                        r.state.exit_code = 0;
                    })?;
                }
                Ok(())
            }
            Ok(Ok(Err(msg))) => Err(Error::invalid(format!(
                "failed to start container: OCI runtime start failed: {msg}: unknown"
            ))),
            _ => Err(Error::internal(format!(
                "the shim of {id} did not report a start"
            ))),
        }
    }

    /// Connects to a shim's socket and spawns the task that pumps its frames.
    async fn connect_shim(
        self: &Arc<Self>,
        c: &Arc<Container>,
        socket: &std::path::Path,
        started: Option<oneshot::Sender<std::result::Result<i32, String>>>,
    ) -> Result<()> {
        let (mut reader, writer) = shim::connect(socket)
            .await
            .map_err(|e| Error::internal(format!("cannot connect to {}: {e}", socket.display())))?;
        *c.shim_tx.lock().await = Some(writer);
        let me = self.clone();
        let c2 = c.clone();
        tokio::spawn(async move {
            let mut started = started;
            let mut exit: Option<serde_json::Value> = None;
            loop {
                match reader.next().await {
                    Ok(Some((shim::STDOUT, b))) => {
                        let _ = c2.output.send(OutFrame::Data(1, b));
                    }
                    Ok(Some((shim::STDERR, b))) => {
                        let _ = c2.output.send(OutFrame::Data(2, b));
                    }
                    Ok(Some((shim::STARTED, b))) => {
                        let pid = serde_json::from_slice::<serde_json::Value>(&b)
                            .ok()
                            .and_then(|v| v.get("Pid").and_then(|p| p.as_i64()))
                            .unwrap_or(0) as i32;
                        if let Some(tx) = started.take() {
                            let _ = tx.send(Ok(pid));
                        }
                    }
                    Ok(Some((shim::FAILED, b))) => {
                        if let Some(tx) = started.take() {
                            let _ = tx.send(Err(String::from_utf8_lossy(&b).into_owned()));
                        }
                    }
                    Ok(Some((shim::EXIT, b))) => {
                        exit = serde_json::from_slice(&b).ok();
                        break;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            if let Some(tx) = started.take() {
                let _ = tx.send(Err("the shim exited before starting the container".into()));
            }
            me.on_exit(&c2, exit).await;
        });
        Ok(())
    }

    /// Bookkeeping when a container's init exits (or its shim vanished).
    async fn on_exit(self: &Arc<Self>, c: &Arc<Container>, exit: Option<serde_json::Value>) {
        let bundle = self.cfg.bundle_dir(&c.id);
        let exit = exit.or_else(|| {
            std::fs::read(bundle.join("exit.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        });
        let (code, finished, oom) = match &exit {
            Some(v) => (
                v.get("ExitCode").and_then(|x| x.as_i64()).unwrap_or(255) as i32,
                v.get("FinishedAt")
                    .and_then(|x| x.as_str())
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_else(Utc::now),
                v.get("OOMKilled")
                    .and_then(|x| x.as_bool())
                    .unwrap_or(false),
            ),
            None => (255, Utc::now(), false),
        };
        *c.shim_tx.lock().await = None;
        let _ = nix::mount::umount2(&bundle.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
        self.net_detach(&c.id).await;
        let _ = c.update(|r| {
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.oom_killed = oom;
            r.state.finished_at = Some(finished);
            if exit.is_none() {
                r.state.error = "the container's monitor exited unexpectedly".into();
            }
        });
        if oom {
            // dockerd reports the kernel's OOM kill as its own event, before `die`.
            self.emit("oom", &c.snapshot(), &[]);
        }
        self.emit("die", &c.snapshot(), &[("exitCode", code.to_string())]);
        let _ = c.output.send(OutFrame::End);
        c.life.send_modify(|l| {
            l.running = false;
            l.exits += 1;
            l.exit_code = code;
        });
        let auto_remove = c.snapshot().host_config.auto_remove;
        if auto_remove {
            let _ = self.remove_container(&c.id, true, true).await;
        } else {
            self.schedule_restart(c, code);
        }
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after the grace period.
    pub async fn stop_container(
        self: &Arc<Self>,
        name: &str,
        t: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let c = self.container(name)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        // A user stop keeps the restart policy from bringing it back.
        c.update(|r| r.manually_stopped = true)?;
        if rec.state.status == Status::Restarting {
            // Waiting for a policy restart: cancel it.
            c.update(|r| r.state.status = Status::Exited)?;
            self.emit("stop", &c.snapshot(), &[]);
            return Ok(());
        }
        if !rec.state.status.is_running() || rec.state.pid <= 0 {
            return Err(Error::new(
                ErrorKind::NotModified,
                "container already stopped",
            ));
        }
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => match Some(rec.config.stop_signal.as_str()).filter(|s| !s.is_empty()) {
                Some(s) => parse_signal(s)?,
                None => Signal::SIGTERM,
            },
        };
        let grace = t.or(rec.config.stop_timeout).unwrap_or(10);
        self.thaw_if_paused(&rec.id).await;
        let mut life = c.life.subscribe();
        self.emit("kill", &rec, &[("signal", (sig as i32).to_string())]);
        let _ = nix::sys::signal::kill(Pid::from_raw(rec.state.pid), sig);
        let exited = async {
            let _ = life.wait_for(|l| !l.running).await;
        };
        if grace < 0 {
            exited.await;
            return Ok(());
        }
        if tokio::time::timeout(Duration::from_secs(grace as u64), exited)
            .await
            .is_err()
        {
            self.emit("kill", &rec, &[("signal", "9".into())]);
            let _ = nix::sys::signal::kill(Pid::from_raw(rec.state.pid), Signal::SIGKILL);
            let mut life = c.life.subscribe();
            let _ =
                tokio::time::timeout(Duration::from_secs(30), life.wait_for(|l| !l.running)).await;
        }
        self.emit("stop", &c.snapshot(), &[]);
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill_container(self: &Arc<Self>, name: &str, signal: Option<&str>) -> Result<()> {
        let c = self.container(name)?;
        let rec = c.snapshot();
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        if !rec.state.status.is_running() || rec.state.pid <= 0 {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        self.emit("kill", &rec, &[("signal", (sig as i32).to_string())]);
        nix::sys::signal::kill(Pid::from_raw(rec.state.pid), sig)
            .map_err(|e| Error::internal(format!("cannot kill container {}: {e}", rec.id)))?;
        if sig == Signal::SIGKILL {
            let mut life = c.life.subscribe();
            let _ =
                tokio::time::timeout(Duration::from_secs(10), life.wait_for(|l| !l.running)).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/wait`: validates now, returns a future for the result.
    pub fn wait_container(
        self: &Arc<Self>,
        name: &str,
        cond: WaitCondition,
    ) -> Result<impl std::future::Future<Output = (i32, Option<String>)>> {
        let c = self.container(name)?;
        let mut life = c.life.subscribe();
        let now = life.borrow().clone();
        let c2 = c.clone();
        Ok(async move {
            let target_exits = now.exits + 1;
            let r = match cond {
                WaitCondition::NotRunning if !now.running => Some(now.clone()),
                WaitCondition::NotRunning | WaitCondition::NextExit => life
                    .wait_for(|l| l.exits >= target_exits || l.removed)
                    .await
                    .ok()
                    .map(|l| l.clone()),
                WaitCondition::Removed => {
                    life.wait_for(|l| l.removed).await.ok().map(|l| l.clone())
                }
            };
            let code = match r {
                Some(l) => l.exit_code,
                None => c2.snapshot().state.exit_code,
            };
            let err = {
                let s = c2.snapshot().state.error;
                if s.is_empty() {
                    None
                } else {
                    Some(s)
                }
            };
            (code, err)
        })
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove_container(
        self: &Arc<Self>,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let c = self.container(name)?;
        let rec = c.snapshot();
        if rec.state.status == Status::Restarting && force {
            let _ = c.update(|r| {
                r.manually_stopped = true;
                r.state.status = Status::Exited;
            });
        } else if rec.state.status.is_running() {
            if !force {
                return Err(Error::conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    rec.id
                )));
            }
            // No restart policy may bring it back while it is being removed.
            let _ = c.update(|r| r.manually_stopped = true);
            self.thaw_if_paused(&rec.id).await;
            if rec.state.pid > 0 {
                let _ = nix::sys::signal::kill(Pid::from_raw(rec.state.pid), Signal::SIGKILL);
            }
            let mut life = c.life.subscribe();
            let _ =
                tokio::time::timeout(Duration::from_secs(10), life.wait_for(|l| !l.running)).await;
        }
        let _op = c.op.lock().await;
        if c.life.borrow().removed {
            return Ok(());
        }
        // A policy restart that won the race for the lock: kill it again; with the lock held
        // no further restart can start.
        if force && c.snapshot().state.status.is_running() {
            let _ = c.update(|r| r.manually_stopped = true);
            let pid = c.snapshot().state.pid;
            if pid > 0 {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let mut life = c.life.subscribe();
            let _ =
                tokio::time::timeout(Duration::from_secs(10), life.wait_for(|l| !l.running)).await;
        }
        if c.snapshot().state.status.is_running() {
            return Err(Error::conflict(format!(
                "container {} did not stop",
                rec.id
            )));
        }
        let bundle = self.cfg.bundle_dir(&rec.id);
        let _ = nix::mount::umount2(&bundle.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir_all(&bundle);
        self.net_detach(&rec.id).await;
        // From here on nothing persists this container again.
        c.deleted.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::fs::remove_file(self.cfg.shim_socket(&rec.id));
        let _ = std::fs::remove_file(c.dir.join("config.v2.json"));
        let _ = std::fs::remove_dir_all(&c.dir);
        self.unregister(&rec.id, &rec.name);
        if volumes {
            self.remove_anonymous_volumes(&rec);
        }
        self.emit("destroy", &rec, &[]);
        c.life.send_modify(|l| l.removed = true);
        Ok(())
    }

    /// `POST /containers/{id}/rename?name=`.
    pub async fn rename_container(self: &Arc<Self>, name: &str, new_name: &str) -> Result<()> {
        let c = self.container(name)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        let new_name = new_name.trim_start_matches('/');
        if new_name.is_empty() {
            return Err(Error::invalid("Neither old nor new names may be empty"));
        }
        if !names::valid_name(new_name) {
            return Err(Error::invalid(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if new_name == rec.name {
            return Err(Error::conflict(format!(
                "Renaming a container with the same name as its current name"
            )));
        }
        self.reserve_name(new_name, &rec.id)?;
        if let Err(e) = c.update(|r| r.name = new_name.to_string()) {
            self.release_name(new_name, &rec.id);
            return Err(e.into());
        }
        self.release_name(&rec.name, &rec.id);
        self.emit(
            "rename",
            &c.snapshot(),
            &[("oldName", format!("/{}", rec.name))],
        );
        Ok(())
    }

    /// Attaches to a container's output (and, separately, stdin via [`Engine::write_stdin`]).
    pub fn attach_container(self: &Arc<Self>, name: &str) -> Result<(Arc<Container>, Attachment)> {
        let c = self.container(name)?;
        let rec = c.snapshot();
        let output = c.output.subscribe();
        self.emit("attach", &rec, &[]);
        Ok((
            c.clone(),
            Attachment {
                output,
                tty: rec.config.tty,
                stdin_once: rec.config.stdin_once,
                finished: rec.state.status == Status::Dead,
            },
        ))
    }

    /// Sends stdin bytes to a container (waiting for it to start); `None` closes stdin.
    pub async fn write_stdin(&self, c: &Arc<Container>, data: Option<&[u8]>) -> Result<()> {
        let mut life = c.life.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(60),
            life.wait_for(|l| l.running || l.exits > 0 || l.removed),
        )
        .await;
        let mut w = c.shim_tx.lock().await;
        if let Some(w) = w.as_mut() {
            let r = match data {
                Some(d) => w.send(shim::STDIN, d).await,
                None => w.send(shim::CLOSE_STDIN, b"").await,
            };
            r.map_err(|e| Error::internal(format!("cannot write stdin: {e}")))?;
        }
        Ok(())
    }

    /// Forwards a TTY resize.
    pub async fn resize_container(&self, name: &str, h: u32, w: u32) -> Result<()> {
        let c = self.container(name)?;
        let rec = c.snapshot();
        if !rec.state.status.is_running() {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let mut tx = c.shim_tx.lock().await;
        if let Some(tx) = tx.as_mut() {
            let body = serde_json::json!({"h": h, "w": w}).to_string();
            let _ = tx.send(shim::RESIZE, body.as_bytes()).await;
        }
        Ok(())
    }

    /// Reads the container's log; with `follow`, keeps reading until the container stops.
    pub fn container_logs(
        self: &Arc<Self>,
        name: &str,
        opts: logs::LogOptions,
    ) -> Result<(bool, tokio::sync::mpsc::Receiver<logs::Entry>)> {
        let c = self.container(name)?;
        let rec = c.snapshot();
        let rx = logs::stream(logs::log_path_of(&rec, c.dir()), opts, c.life.subscribe())?;
        Ok((rec.config.tty, rx))
    }

    /// Loads records at start-up, reconnecting to live shims.
    pub(crate) async fn restore(self: &Arc<Self>) {
        let Ok(rd) = std::fs::read_dir(self.cfg.containers_dir()) else {
            return;
        };
        for ent in rd.flatten() {
            let dir = ent.path();
            let Ok(data) = std::fs::read(dir.join("config.v2.json")) else {
                // A half-created container (crash during create): nothing refers to it.
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            };
            let Ok(rec) = serde_json::from_slice::<Record>(&data) else {
                continue;
            };
            let was_running = rec.state.status.is_running();
            let c = Container::new(rec, dir);
            self.register(c.clone());
            if was_running {
                let socket = self.cfg.shim_socket(&c.id);
                if self.connect_shim(&c, &socket, None).await.is_err() {
                    self.on_exit(&c, None).await;
                } else {
                    self.start_health_monitor(&c);
                }
            } else {
                self.reap_interrupted_start(&c).await;
            }
        }
    }

    /// A start that berthd did not finish before it died (the record was never marked
    /// running, so the start was never reported done): whatever the shim and the runtime made
    /// of it is torn down, so the container is cleanly created/exited and can start again.
    async fn reap_interrupted_start(self: &Arc<Self>, c: &Arc<Container>) {
        let bundle = self.cfg.bundle_dir(&c.id);
        let socket = self.cfg.shim_socket(&c.id);
        let state_dir = self.cfg.runtime_root().join(&c.id);
        let rootfs = bundle.join("rootfs");
        if !socket.exists() && !state_dir.exists() && !rootfs.exists() {
            return;
        }
        tracing::info!(id = %c.id, "cleaning up a start interrupted by a daemon crash");
        for pid in orphan_shims(&c.id) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if state_dir.exists() {
            if let Err(e) = self.runtime(&["delete", "--force", &c.id]).await {
                tracing::warn!(id = %c.id, "runtime delete after an interrupted start: {e}");
            }
        }
        // A create killed before it wrote its state leaves an empty cgroup nobody knows about.
        remove_empty_cgroups(&c.id);
        // Never remove the bundle recursively: the rootfs may still be a mount of the
        // container's writable layer.
        let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(bundle.join("exit.json"));
    }
}

/// Removes `berth/<id>` under every mounted cgroup hierarchy (v1 controllers and the v2 root)
/// when it is empty (rmdir fails on a cgroup that still has tasks, which is what we want).
fn remove_empty_cgroups(id: &str) {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join("berth").join(id)];
    if let Ok(rd) = std::fs::read_dir(root) {
        dirs.extend(rd.flatten().map(|e| e.path().join("berth").join(id)));
    }
    for d in dirs {
        if d.is_dir() {
            let _ = std::fs::remove_dir(&d);
        }
    }
}

/// Pids of berth-shim processes monitoring container `id` (found by their command line).
fn orphan_shims(id: &str) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let want_id = format!("\0--id\0{id}\0");
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("berth-shim") && c.contains(&want_id)
            })
        })
        .collect()
}

/// Signal names (`KILL`, `SIGKILL`, any case) and numbers.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::invalid(format!("Invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::invalid(format!("Invalid signal: {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("10").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(WaitCondition::parse(Some("bogus")).is_err());
        assert_eq!(
            WaitCondition::parse(None).unwrap(),
            WaitCondition::NotRunning
        );
    }
}
