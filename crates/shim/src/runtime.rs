//! The seam between the shim's event loop and the OCI runtime.
//!
//! The production implementation (`berth_runtime_lib::Runtime`) is wired in by the binary;
//! [`HostRuntime`] runs the bundle's `process.args` as an ordinary host process, which lets the
//! event loop, protocol, logging and exit handling be tested without namespaces.

use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::stat::Mode;

/// A runtime operation failed; the text is what the daemon shows the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

/// How the container's stdio is connected.
#[derive(Debug)]
pub enum ContainerIo {
    /// These fds become the container's 0, 1, 2.
    Pipes([OwnedFd; 3]),
    /// The container gets a terminal; the runtime hands back its master.
    Terminal,
}

/// A created container.
#[derive(Debug)]
pub struct Created {
    /// Init pid (a child of the calling process).
    pub pid: i32,
    /// The pty master with [`ContainerIo::Terminal`].
    pub console: Option<OwnedFd>,
}

/// What the shim needs from a container runtime.
pub trait ContainerRuntime {
    /// Creates the container. Its init process must be a child of the calling process and must
    /// not run the user program before [`ContainerRuntime::start`].
    fn create(&mut self, id: &str, bundle: &Path, io: ContainerIo)
        -> Result<Created, RuntimeError>;
    /// Lets the created container run its program.
    fn start(&mut self, id: &str) -> Result<(), RuntimeError>;
    /// Removes what remains of the container after its init exited.
    fn delete(&mut self, id: &str) -> Result<(), RuntimeError>;
}

/// Runs the bundle's `process` (args, env, cwd from `config.json`) directly on the host, held
/// before `exec` by a fifo until `start` (like runc's `exec.fifo`). For tests only: no
/// isolation whatsoever.
pub struct HostRuntime {
    root: PathBuf,
}

impl HostRuntime {
    /// `root` is a state directory; `<root>/<id>/exec.fifo` is created there.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn fifo(&self, id: &str) -> PathBuf {
        self.root.join(id).join("exec.fifo")
    }
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Checks that `prog` can be executed, with runc-like error texts.
fn check_executable(prog: &str, env: &[String]) -> Result<(), RuntimeError> {
    if prog.contains('/') {
        if is_executable(Path::new(prog)) {
            return Ok(());
        }
        return Err(RuntimeError(format!(
            "exec: \"{prog}\": stat {prog}: no such file or directory"
        )));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    if path
        .split(':')
        .any(|d| !d.is_empty() && is_executable(&Path::new(d).join(prog)))
    {
        return Ok(());
    }
    Err(RuntimeError(format!(
        "exec: \"{prog}\": executable file not found in $PATH"
    )))
}

impl ContainerRuntime for HostRuntime {
    fn create(
        &mut self,
        id: &str,
        bundle: &Path,
        io: ContainerIo,
    ) -> Result<Created, RuntimeError> {
        let cfg_path = bundle.join("config.json");
        let text = fs::read(&cfg_path)
            .map_err(|e| RuntimeError(format!("cannot read {}: {e}", cfg_path.display())))?;
        let cfg: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| RuntimeError(format!("invalid {}: {e}", cfg_path.display())))?;
        let process = &cfg["process"];
        let args: Vec<String> = process["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if args.is_empty() {
            return Err(RuntimeError("process.args must not be empty".into()));
        }
        let env: Vec<String> = process["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        check_executable(&args[0], &env)?;

        let dir = self.root.join(id);
        fs::create_dir_all(&dir)
            .map_err(|e| RuntimeError(format!("mkdir {}: {e}", dir.display())))?;
        let fifo = self.fifo(id);
        let _ = fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600))
            .map_err(|e| RuntimeError(format!("mkfifo {}: {e}", fifo.display())))?;

        let (stdio, console) = match io {
            ContainerIo::Pipes(fds) => (fds, None),
            ContainerIo::Terminal => {
                // No controlling terminal here (that needs setsid in the child): fine for tests.
                let pty = nix::pty::openpty(None, None)
                    .map_err(|e| RuntimeError(format!("openpty: {e}")))?;
                let dup = |f: &OwnedFd| {
                    f.try_clone()
                        .map_err(|e| RuntimeError(format!("dup pty: {e}")))
                };
                (
                    [dup(&pty.slave)?, dup(&pty.slave)?, pty.slave],
                    Some(pty.master),
                )
            }
        };
        let [i, o, e] = stdio;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#"read _ < "$0" && exec "$@""#)
            .arg(&fifo)
            .args(&args)
            .env_clear()
            .stdin(Stdio::from(i))
            .stdout(Stdio::from(o))
            .stderr(Stdio::from(e));
        for kv in &env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
        if let Some(cwd) = process["cwd"].as_str() {
            if Path::new(cwd).is_dir() {
                cmd.current_dir(cwd);
            }
        }
        // The Child handle is dropped without waiting: the shim reaps every child itself.
        let child = cmd
            .spawn()
            .map_err(|e| RuntimeError(format!("spawn /bin/sh: {e}")))?;
        Ok(Created {
            pid: child.id() as i32,
            console,
        })
    }

    fn start(&mut self, id: &str) -> Result<(), RuntimeError> {
        let fifo = self.fifo(id);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // O_NONBLOCK: fails with ENXIO instead of hanging while nobody has it open for reading.
            match fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                .open(&fifo)
            {
                Ok(mut f) => {
                    f.write_all(b"\n")
                        .map_err(|e| RuntimeError(format!("start: {e}")))?;
                    let _ = fs::remove_file(&fifo);
                    return Ok(());
                }
                Err(e)
                    if e.raw_os_error() == Some(nix::libc::ENXIO) && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(RuntimeError(format!(
                        "container {id} is not in the created state"
                    )));
                }
                Err(e) => return Err(RuntimeError(format!("start: open {}: {e}", fifo.display()))),
            }
        }
    }

    fn delete(&mut self, id: &str) -> Result<(), RuntimeError> {
        let dir = self.root.join(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError(format!("delete {}: {e}", dir.display()))),
        }
    }
}
