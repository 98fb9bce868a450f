//! Daemon on demand: with `--start-daemon`, `BERTH_START_DAEMON=1` or `"berthStartDaemon": true`
//! in the docker config file, when nothing answers on
//! the socket and we are root, start the `berthd` that sits next to this `berth` binary (else
//! the one on PATH), say so, and wait for it to answer. Extra daemon flags come from
//! `BERTH_DAEMON_ARGS` (whitespace-separated, e.g. `--data-root /srv/berth`).

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static WANTED: OnceLock<bool> = OnceLock::new();

/// Record the `--start-daemon` flag (the environment variable is read here too).
pub fn set_wanted(flag: bool) {
    let env = std::env::var("BERTH_START_DAEMON")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false);
    // or `"berthStartDaemon": true` in ~/.docker/config.json
    let cfg = crate::context::config_value("berthStartDaemon")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let _ = WANTED.set(flag || env || cfg);
}

pub fn wanted() -> bool {
    WANTED.get().copied().unwrap_or(false)
}

fn find_berthd() -> Option<PathBuf> {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("berthd");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("berthd"))
            .find(|p| p.is_file())
    })
}

/// Start berthd for `socket`; returns once it answers `/_ping` (or fails after 20 s).
pub async fn start(socket: &Path) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "no daemon answers at unix://{} and berth can only start berthd as root; \
             start it with: sudo berthd --host unix://{} &",
            socket.display(),
            socket.display()
        );
    }
    let berthd = find_berthd().ok_or_else(|| {
        anyhow!("no daemon answers at unix://{} and no berthd binary was found next to berth or on PATH", socket.display())
    })?;
    let dir = socket.parent().unwrap_or(Path::new("/run/berth"));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("berthd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut cmd = std::process::Command::new(&berthd);
    cmd.arg("--host")
        .arg(format!("unix://{}", socket.display()));
    if let Ok(extra) = std::env::var("BERTH_DAEMON_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    use std::os::unix::process::CommandExt;
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // its own process group: a ctrl-c in this terminal must not stop the daemon
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", berthd.display()))?;
    eprintln!(
        "berth: no daemon answered at unix://{}; started {} (pid {}, log {}) because --start-daemon or BERTH_START_DAEMON=1 asked for it",
        socket.display(),
        berthd.display(),
        child.id(),
        log_path.display()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut c = berth_client::Client::with_socket(socket);
        if c.negotiate().await.is_ok() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "berthd (pid {}) did not answer on unix://{} within 20 s; see {}",
                child.id(),
                socket.display(),
                log_path.display()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
