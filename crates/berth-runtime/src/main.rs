//! berth-runtime: a runc-compatible command line over `berth-runtime-lib`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use berth_runtime_lib::{CreateOpts, Runtime, State};
use clap::{Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    version,
    about = "OCI runtime (runc-compatible command line)"
)]
struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    root: PathBuf,
    /// Log file (errors are appended to it).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Debug output.
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for compatibility; cgroupfs is always used.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container (its process waits for `start`).
    Create {
        id: String,
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long = "no-pivot")]
        no_pivot: bool,
    },
    /// Start a created container.
    Start { id: String },
    /// Create and start a container; wait for it unless --detach.
    Run {
        id: String,
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        #[arg(long, short = 'd')]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long = "no-pivot")]
        no_pivot: bool,
    },
    /// Print the state of a container as JSON.
    State { id: String },
    /// Send a signal to the container init (or all its processes).
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        #[arg(long, short = 'a')]
        all: bool,
    },
    /// Delete a container.
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Write a default config.json.
    Spec {
        #[arg(long, short = 'b')]
        bundle: Option<PathBuf>,
    },
}

/// Parses `TERM`, `SIGTERM`, `15`.
fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        Signal::try_from(n).with_context(|| format!("invalid signal: {s}"))?;
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    let sig: Signal = name
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))?;
    Ok(sig as i32)
}

fn main() {
    // CVE-2019-5736 class: never run from a file a container could write through
    // /proc/<pid>/exe; re-execute from a sealed memfd copy first (a no-op once sealed).
    if let Err(e) = berth_sys::reexec_from_sealed_memfd("berth-runtime") {
        eprintln!("berth-runtime: cannot re-execute from a sealed memfd: {e}");
        std::process::exit(1);
    }
    let cli = Cli::parse();
    if cli.systemd_cgroup {
        eprintln!("berth-runtime: warning: --systemd-cgroup is not supported, using cgroupfs");
    }
    let code = match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            let hint = e
                .downcast_ref::<berth_runtime_lib::Error>()
                .map(|e| e.exit_code_hint())
                .unwrap_or(1);
            let msg = format!("{e:#}");
            log_error(&cli, &msg);
            eprintln!("{msg}");
            hint
        }
    };
    std::process::exit(code);
}

fn log_error(cli: &Cli, msg: &str) {
    let Some(path) = &cli.log else { return };
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let line = if cli.log_format == "json" {
        serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
    } else {
        format!("time={time:?} level=error msg={msg:?}")
    };
    let _ = writeln!(f, "{line}");
}

fn run(cli: &Cli) -> anyhow::Result<i32> {
    let rt = Runtime::new(&cli.root);
    match &cli.cmd {
        Cmd::Create {
            id,
            bundle,
            pid_file,
            console_socket,
            no_pivot,
        } => {
            let opts = CreateOpts {
                stdio: None,
                pid_file: pid_file.clone(),
                console_socket: console_socket.clone(),
                no_pivot: *no_pivot,
            };
            rt.create(id, bundle, opts)?;
            Ok(0)
        }
        Cmd::Start { id } => {
            rt.start(id)?;
            Ok(0)
        }
        Cmd::Run {
            id,
            bundle,
            detach,
            pid_file,
            console_socket,
            no_pivot,
        } => {
            let opts = CreateOpts {
                stdio: None,
                pid_file: pid_file.clone(),
                console_socket: console_socket.clone(),
                no_pivot: *no_pivot,
            };
            run_container(&rt, id, bundle, opts, *detach)
        }
        Cmd::State { id } => {
            let st = rt.state(id)?;
            println!("{}", serde_json::to_string_pretty(&st)?);
            Ok(0)
        }
        Cmd::Kill { id, signal, all } => {
            rt.kill(id, parse_signal(signal)?, *all)?;
            Ok(0)
        }
        Cmd::Delete { force, id } => {
            rt.delete(id, *force)?;
            Ok(0)
        }
        Cmd::List { format, quiet } => {
            let list = rt.list()?;
            if *quiet {
                for s in &list {
                    println!("{}", s.id);
                }
            } else if format == "json" {
                println!("{}", serde_json::to_string(&list)?);
            } else if format == "table" {
                print!("{}", table(&list));
            } else {
                bail!("invalid format option");
            }
            Ok(0)
        }
        Cmd::Spec { bundle } => {
            let dir = bundle.clone().unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            std::fs::write(&path, serde_json::to_string_pretty(&default_spec())?)
                .with_context(|| format!("write {}", path.display()))?;
            Ok(0)
        }
    }
}

/// runc's list table (Go tabwriter with minwidth 12, padding 3).
fn table(list: &[State]) -> String {
    let mut rows: Vec<Vec<String>> = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .iter()
        .map(|s| s.to_string())
        .collect()];
    for s in list {
        rows.push(vec![
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    let cols = 6;
    let widths: Vec<usize> = (0..cols - 1)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (c, cell) in r.iter().enumerate() {
            if c < cols - 1 {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set
}

fn run_container(
    rt: &Runtime,
    id: &str,
    bundle: &Path,
    opts: CreateOpts,
    detach: bool,
) -> anyhow::Result<i32> {
    let st = rt.create(id, bundle, opts)?;
    if detach {
        if let Err(e) = rt.start(id) {
            let _ = rt.delete(id, true);
            return Err(e.into());
        }
        return Ok(0);
    }
    // Block the signals we forward (and SIGCHLD) before starting, then read them from a
    // signalfd: no handlers needed, nothing is lost.
    let set = forwarded_signals();
    set.thread_block().context("block signals")?;
    let sfd = nix::sys::signalfd::SignalFd::new(&set).context("signalfd")?;
    if let Err(e) = rt.start(id) {
        let _ = rt.delete(id, true);
        return Err(e.into());
    }
    let pid = nix::unistd::Pid::from_raw(st.pid);
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let code = loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
            Ok(_) => {}
            Err(nix::Error::ECHILD) => break 255,
            Err(e) => return Err(e).context("waitpid"),
        }
        match sfd.read_signal() {
            Ok(Some(info)) => {
                let sig = info.ssi_signo as i32;
                if sig != Signal::SIGCHLD as i32 {
                    let _ = rt.kill(id, sig, false);
                }
            }
            Ok(None) => {}
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e).context("read signalfd"),
        }
    };
    rt.delete(id, true)?;
    Ok(code)
}

fn default_spec() -> serde_json::Value {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_runc() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn default_spec_parses_as_oci() {
        let v = default_spec();
        assert_eq!(v["process"]["args"][0], "sh");
        assert_eq!(v["linux"]["namespaces"].as_array().unwrap().len(), 5);
    }
}
