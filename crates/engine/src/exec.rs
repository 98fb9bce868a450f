//! `docker exec`: exec instances run through `berth-runtime exec --process FILE` (a separate
//! process, so nothing forks from a tokio worker), joining the container's namespaces.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use berth_api_types::ExecConfig;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::Child;

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

use crate::error::{Error, Result};
use crate::{names, Engine};

/// One exec instance (`/exec/{id}`).
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: Mutex<ExecState>,
    /// The pty master of a `-t` exec, for resizes.
    console: Mutex<Option<std::os::fd::OwnedFd>>,
}

#[derive(Default, Clone)]
struct ExecState {
    running: bool,
    started: bool,
    exit_code: Option<i32>,
    pid: i32,
}

/// The pipes of a started exec process.
pub struct ExecIo {
    pub stdin: Option<Writer>,
    pub stdout: Option<Reader>,
    pub stderr: Option<Reader>,
    pub tty: bool,
    child: Child,
    inst: Arc<ExecInstance>,
    /// The runtime's JSON error log: an entry there means the process never started.
    log: PathBuf,
}

impl ExecIo {
    /// Kills the runtime process driving this exec (healthcheck timeouts).
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// Waits for the process and records its exit code. When the runtime could not start the
    /// process at all, the code is 126 and the second value is dockerd's error text
    /// (`OCI runtime exec failed: ...`), which dockerd sends to the client as stdout.
    pub async fn wait(mut self) -> (i32, Option<String>) {
        let mut code = match self.child.wait().await {
            Ok(st) => st.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + st.signal().unwrap_or(0)
            }),
            Err(_) => 126,
        };
        let mut failure = None;
        if let Ok(log) = tokio::fs::read_to_string(&self.log).await {
            let msg = log
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v.get("level").and_then(|l| l.as_str()) == Some("error"))
                .filter_map(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
                .last();
            if let Some(m) = msg {
                code = 126;
                failure = Some(format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: {m}: unknown\r\n"
                ));
            }
            let _ = tokio::fs::remove_file(&self.log).await;
        }
        self.inst.finish(code);
        (code, failure)
    }
}

impl ExecInstance {
    fn finish(&self, code: i32) {
        let mut s = self.state.lock().expect("lock");
        s.running = false;
        s.exit_code = Some(code);
    }
}

/// Locates `berth-runtime`: `$BERTH_RUNTIME`, next to the running executable, else `$PATH`.
pub fn find_runtime_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNTIME") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("berth-runtime");
            if p.exists() {
                return p;
            }
        }
    }
    PathBuf::from("berth-runtime")
}

impl Engine {
    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, name: &str, cfg: ExecConfig) -> Result<String> {
        let c = self.container(name)?;
        let rec = c.snapshot();
        if !rec.state.status.is_running() {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        if rec.state.status == crate::record::Status::Paused {
            return Err(Error::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                rec.id
            )));
        }
        if cfg.cmd.as_ref().map(|c| c.is_empty()).unwrap_or(true) {
            return Err(Error::invalid("No exec command specified"));
        }
        let id = names::new_id();
        let inst = Arc::new(ExecInstance {
            id: id.clone(),
            container_id: rec.id.clone(),
            config: cfg,
            state: Mutex::new(ExecState::default()),
            console: Mutex::new(None),
        });
        self.execs.lock().expect("lock").insert(id.clone(), inst);
        Ok(id)
    }

    fn exec_instance(&self, id: &str) -> Result<Arc<ExecInstance>> {
        self.execs
            .lock()
            .expect("lock")
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<Value> {
        let inst = self.exec_instance(id)?;
        let s = inst.state.lock().expect("lock").clone();
        let cmd = inst.config.cmd.clone().unwrap_or_default();
        Ok(json!({
            "CanRemove": false,
            "ContainerID": inst.container_id,
            "DetachKeys": inst.config.detach_keys,
            "ExitCode": s.exit_code,
            "ID": inst.id,
            "OpenStderr": inst.config.attach_stderr,
            "OpenStdin": inst.config.attach_stdin,
            "OpenStdout": inst.config.attach_stdout,
            "ProcessConfig": {
                "arguments": cmd.iter().skip(1).collect::<Vec<_>>(),
                "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "privileged": inst.config.privileged,
                "tty": inst.config.tty,
                "user": inst.config.user
            },
            "Running": s.running,
            "Pid": s.pid
        }))
    }

    /// The OCI process for an exec: the container's process with the exec's args, env,
    /// cwd and user.
    fn exec_process(&self, inst: &ExecInstance) -> Result<Value> {
        let c = self.container(&inst.container_id)?;
        let rec = c.snapshot();
        let bundle = self.cfg.bundle_dir(&rec.id);
        let spec: Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)
            .map_err(|e| Error::internal(format!("reading the container's config.json: {e}")))?;
        let mut process = spec.get("process").cloned().unwrap_or_else(|| json!({}));
        let cfg = &inst.config;
        process["args"] = json!(cfg.cmd.clone().unwrap_or_default());
        process["terminal"] = json!(cfg.tty);
        let mut env: Vec<String> = process
            .get("env")
            .and_then(|e| serde_json::from_value(e.clone()).ok())
            .unwrap_or_default();
        env = berth_spec::merge::replace_or_append_env(env, cfg.env.as_deref().unwrap_or(&[]));
        process["env"] = json!(env);
        if !cfg.working_dir.is_empty() {
            process["cwd"] = json!(cfg.working_dir);
        }
        if !cfg.user.is_empty() {
            let rootfs = bundle.join("rootfs");
            let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).ok();
            let group = std::fs::read_to_string(rootfs.join("etc/group")).ok();
            let u = berth_spec::merge::resolve_user(&cfg.user, passwd.as_deref(), group.as_deref())
                .map_err(|e| Error::invalid(e.to_string()))?;
            process["user"] = json!({"uid": u.uid, "gid": u.gid, "additionalGids": u.sgids});
        }
        if cfg.privileged {
            let all: Vec<&str> = berth_spec::oci::ALL_CAPABILITIES.to_vec();
            process["capabilities"] = json!({
                "bounding": all, "effective": all, "permitted": all
            });
        }
        Ok(process)
    }

    /// `POST /exec/{id}/start`: spawns the process; the caller pumps the pipes.
    pub async fn exec_start(&self, id: &str) -> Result<ExecIo> {
        let inst = self.exec_instance(id)?;
        {
            let mut s = inst.state.lock().expect("lock");
            if s.started {
                return Err(Error::conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            s.started = true;
            s.running = true;
        }
        let process = match self.exec_process(&inst) {
            Ok(p) => p,
            Err(e) => {
                inst.finish(126);
                return Err(e);
            }
        };
        let dir = self.cfg.bundle_dir(&inst.container_id);
        let pfile = dir.join(format!("exec-{}.json", &id[..16]));
        let log = dir.join(format!("exec-{}.log", &id[..16]));
        crate::persist::write_json_volatile(&pfile, &process)?;
        let cfg = &inst.config;
        let mut cmd = tokio::process::Command::new(&self.cfg.runtime_bin);
        cmd.arg("--root")
            .arg(self.cfg.runtime_root())
            .arg("--log")
            .arg(&log)
            .arg("--log-format")
            .arg("json")
            .arg("exec")
            .arg("--process")
            .arg(&pfile);
        let console = if cfg.tty {
            let sock = self.cfg.short_socket(&format!("x{}", &id[..15]));
            if let Some(d) = sock.parent() {
                std::fs::create_dir_all(d)?;
            }
            let _ = std::fs::remove_file(&sock);
            let l = tokio::net::UnixListener::bind(&sock)
                .map_err(|e| Error::internal(format!("console socket {}: {e}", sock.display())))?;
            cmd.arg("--tty").arg("--console-socket").arg(&sock);
            Some((l, sock))
        } else {
            None
        };
        cmd.arg(&inst.container_id);
        if cfg.tty {
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
        } else {
            cmd.stdin(if cfg.attach_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            });
            cmd.stdout(if cfg.attach_stdout || cfg.detach {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        }
        cmd.stderr(Stdio::piped());
        cmd.kill_on_drop(false);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                inst.finish(126);
                return Err(Error::internal(format!(
                    "cannot run {}: {e}",
                    self.cfg.runtime_bin.display()
                )));
            }
        };
        inst.state.lock().expect("lock").pid = child.id().map(|p| p as i32).unwrap_or(0);
        let pfile2 = pfile.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            let _ = tokio::fs::remove_file(pfile2).await;
        });
        let (stdin, stdout, stderr): (Option<Writer>, Option<Reader>, Option<Reader>) =
            match console {
                None => (
                    child.stdin.take().map(|w| Box::new(w) as Writer),
                    child.stdout.take().map(|r| Box::new(r) as Reader),
                    child.stderr.take().map(|r| Box::new(r) as Reader),
                ),
                Some((listener, sock)) => {
                    // The runtime sends the pty master over the console socket (runc's protocol);
                    // if the process fails to start, the runtime exits without connecting.
                    let master = tokio::select! {
                        acc = listener.accept() => {
                            let (stream, _) = acc.map_err(|e| Error::internal(format!("console socket: {e}")))?;
                            let std = stream.into_std()?;
                            std.set_nonblocking(false)?;
                            tokio::task::spawn_blocking(move || {
                                use std::os::fd::AsFd;
                                berth_sys::recv_fd(std.as_fd()).map(|(fd, _)| fd)
                            })
                            .await
                            .map_err(|e| Error::internal(e.to_string()))?
                            .ok()
                        }
                        _ = child.wait() => None,
                    };
                    let _ = std::fs::remove_file(&sock);
                    match master {
                        Some(m) => {
                            let w = m.try_clone()?;
                            *inst.console.lock().expect("lock") = Some(m.try_clone()?);
                            let r = tokio::fs::File::from_std(std::fs::File::from(m));
                            let w = tokio::fs::File::from_std(std::fs::File::from(w));
                            (
                                if cfg.attach_stdin {
                                    Some(Box::new(w) as Writer)
                                } else {
                                    None
                                },
                                Some(Box::new(r) as Reader),
                                child.stderr.take().map(|r| Box::new(r) as Reader),
                            )
                        }
                        None => (
                            None,
                            None,
                            child.stderr.take().map(|r| Box::new(r) as Reader),
                        ),
                    }
                }
            };
        Ok(ExecIo {
            stdin,
            stdout,
            stderr,
            tty: cfg.tty,
            child,
            inst: inst.clone(),
            log,
        })
    }

    /// `POST /exec/{id}/resize`.
    pub fn exec_resize(&self, id: &str, h: u16, w: u16) -> Result<()> {
        let inst = self.exec_instance(id)?;
        if !inst.state.lock().expect("lock").running {
            return Err(Error::conflict(format!("Exec {id} is not running")));
        }
        if let Some(fd) = inst.console.lock().expect("lock").as_ref() {
            use std::os::fd::AsFd;
            berth_sys::set_winsize(fd.as_fd(), h, w)?;
        }
        Ok(())
    }
}
