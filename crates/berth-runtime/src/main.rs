//! berth-runtime: a runc-compatible command line over `berth-runtime-lib`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use berth_runtime_lib::{CreateOpts, ExecOpts, Runtime, State};
use clap::{Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};
use oci_spec::runtime::{
    Capability, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, Process, Spec,
};

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
        /// Keep the caller's session keyring (default: a new one named after the container).
        #[arg(long = "no-new-keyring")]
        no_new_keyring: bool,
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
        /// Keep the caller's session keyring (default: a new one named after the container).
        #[arg(long = "no-new-keyring")]
        no_new_keyring: bool,
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
    /// Run a new process inside a running container.
    Exec {
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(long, short = 'e')]
        env: Vec<String>,
        #[arg(long, short = 't')]
        tty: bool,
        /// uid[:gid]
        #[arg(long, short = 'u')]
        user: Option<String>,
        #[arg(long = "additional-gids", short = 'g')]
        additional_gids: Vec<u32>,
        /// A process.json (OCI process object); the command line args are then ignored.
        #[arg(long, short = 'p')]
        process: Option<PathBuf>,
        #[arg(long, short = 'd')]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "no-new-privs")]
        no_new_privs: bool,
        /// Add a capability (e.g. CAP_KILL) to the bounding, effective and permitted sets.
        #[arg(long = "cap", short = 'c')]
        caps: Vec<String>,
        #[arg(long = "process-label")]
        process_label: Option<String>,
        #[arg(long)]
        apparmor: Option<String>,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: u32,
        #[arg(long = "ignore-paused")]
        ignore_paused: bool,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Suspend every process in the container.
    Pause { id: String },
    /// Resume a paused container.
    Resume { id: String },
    /// List the processes of a container.
    Ps {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Container events; with --stats, one statistics record.
    Events {
        #[arg(long)]
        stats: bool,
        /// Seconds between stats events (e.g. 5 or 5s).
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Update the resource limits of a container.
    Update {
        /// JSON file with linux.resources ("-" for stdin).
        #[arg(long, short = 'r')]
        resources: Option<PathBuf>,
        #[arg(long)]
        memory: Option<String>,
        #[arg(long = "memory-reservation")]
        memory_reservation: Option<String>,
        #[arg(long = "memory-swap")]
        memory_swap: Option<String>,
        #[arg(long = "cpu-quota")]
        cpu_quota: Option<i64>,
        #[arg(long = "cpu-period")]
        cpu_period: Option<u64>,
        #[arg(long = "cpu-shares")]
        cpu_shares: Option<u64>,
        #[arg(long = "cpuset-cpus")]
        cpuset_cpus: Option<String>,
        #[arg(long = "cpuset-mems")]
        cpuset_mems: Option<String>,
        #[arg(long = "pids-limit")]
        pids_limit: Option<i64>,
        id: String,
    },
    /// Show what this runtime supports (JSON).
    Features,
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
    let cli = Cli::parse();
    // CVE-2019-5736 class: a command whose process (or a clone of it) enters a container's
    // namespaces must not run from a file the container could write through /proc/<pid>/exe:
    // re-execute from a sealed memfd copy first (a no-op once sealed). Commands that stay on
    // the host (state, kill, delete, list, ps, ...) skip the copy.
    if matches!(
        cli.cmd,
        Cmd::Create { .. } | Cmd::Run { .. } | Cmd::Exec { .. }
    ) {
        if let Err(e) = berth_sys::reexec_from_sealed_memfd("berth-runtime") {
            eprintln!("berth-runtime: cannot re-execute from a sealed memfd: {e}");
            std::process::exit(1);
        }
    }
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
            // The library's errors already carry their cause in their text.
            let msg = match e.downcast_ref::<berth_runtime_lib::Error>() {
                Some(le) => le.to_string(),
                None => format!("{e:#}"),
            };
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
    let no_new_keyring = matches!(
        cli.cmd,
        Cmd::Create {
            no_new_keyring: true,
            ..
        } | Cmd::Run {
            no_new_keyring: true,
            ..
        }
    );
    let rt = Runtime::new(&cli.root).no_new_keyring(no_new_keyring);
    match &cli.cmd {
        Cmd::Create {
            id,
            bundle,
            pid_file,
            console_socket,
            no_pivot,
            ..
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
            ..
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
        Cmd::Exec {
            console_socket,
            cwd,
            env,
            tty,
            user,
            additional_gids,
            process,
            detach,
            pid_file,
            no_new_privs,
            caps,
            process_label,
            apparmor,
            preserve_fds,
            ignore_paused: _,
            id,
            command,
        } => {
            if process_label.is_some() || apparmor.is_some() {
                bail!("apparmor and selinux labels are not supported on this host");
            }
            if *preserve_fds > 0 {
                bail!("--preserve-fds is not supported");
            }
            let st = rt.state(id)?;
            let proc = if let Some(pf) = process {
                let data = std::fs::read(pf).with_context(|| format!("read {}", pf.display()))?;
                serde_json::from_slice::<Process>(&data)
                    .with_context(|| format!("parse process {}", pf.display()))?
            } else {
                if command.is_empty() {
                    bail!("exec: args must not be empty");
                }
                let cfg = st.bundle.join("config.json");
                let spec = Spec::load(&cfg).with_context(|| format!("load {}", cfg.display()))?;
                let mut p = spec.process().clone().unwrap_or_default();
                p.set_args(Some(command.clone()));
                p.set_terminal(Some(*tty));
                if let Some(c) = cwd {
                    p.set_cwd(c.clone());
                }
                let mut e = p.env().clone().unwrap_or_default();
                e.extend(env.iter().cloned());
                p.set_env(Some(e));
                if let Some(u) = user {
                    let (uid, gid) = match u.split_once(':') {
                        Some((a, b)) => (a.parse::<u32>()?, b.parse::<u32>()?),
                        None => (u.parse::<u32>()?, 0),
                    };
                    let mut us = p.user().clone();
                    us.set_uid(uid);
                    us.set_gid(gid);
                    p.set_user(us);
                }
                if !additional_gids.is_empty() {
                    let mut us = p.user().clone();
                    us.set_additional_gids(Some(additional_gids.clone()));
                    p.set_user(us);
                }
                if *no_new_privs {
                    p.set_no_new_privileges(Some(true));
                }
                if !caps.is_empty() {
                    let mut c = p.capabilities().clone().unwrap_or_default();
                    let parsed: Vec<Capability> = caps
                        .iter()
                        .map(|n| {
                            let n = n.to_ascii_uppercase();
                            let n = n.strip_prefix("CAP_").unwrap_or(&n).to_string();
                            n.parse::<Capability>()
                                .map_err(|_| anyhow::anyhow!("unknown capability {n:?}"))
                        })
                        .collect::<anyhow::Result<_>>()?;
                    for set in [0, 1, 2] {
                        let mut cur = match set {
                            0 => c.bounding().clone(),
                            1 => c.effective().clone(),
                            _ => c.permitted().clone(),
                        }
                        .unwrap_or_default();
                        cur.extend(parsed.iter().copied());
                        match set {
                            0 => c.set_bounding(Some(cur)),
                            1 => c.set_effective(Some(cur)),
                            _ => c.set_permitted(Some(cur)),
                        };
                    }
                    p.set_capabilities(Some(c));
                }
                p
            };
            let own_console = if proc.terminal().unwrap_or(false) && console_socket.is_none() {
                if *detach {
                    bail!("cannot allocate tty if berth-runtime will detach without setting console socket");
                }
                Some(OwnConsole::new(&cli.root)?)
            } else {
                None
            };
            let set = forwarded_signals();
            if !*detach {
                set.thread_block().context("block signals")?;
            }
            let pid = rt.exec(
                id,
                &proc,
                ExecOpts {
                    stdio: None,
                    pid_file: pid_file.clone(),
                    console_socket: own_console
                        .as_ref()
                        .map(|c| c.path.clone())
                        .or_else(|| console_socket.clone()),
                },
            )?;
            if *detach {
                return Ok(0);
            }
            let sfd = nix::sys::signalfd::SignalFd::new(&set).context("signalfd")?;
            let forward = |sig| {
                let _ = nix::sys::signal::kill(pid, Signal::try_from(sig).ok());
            };
            match own_console {
                Some(c) => {
                    let m = c.master()?;
                    wait_with_console(&sfd, pid, m, forward)
                }
                None => wait_forwarding(&sfd, pid, forward),
            }
        }
        Cmd::Pause { id } => {
            rt.pause(id)?;
            Ok(0)
        }
        Cmd::Resume { id } => {
            rt.resume(id)?;
            Ok(0)
        }
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => {
            let pids = rt.processes(id)?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string(&pids)?),
                "table" => print!("{}", ps_table(&pids, ps_args)?),
                _ => bail!("invalid format option"),
            }
            Ok(0)
        }
        Cmd::Events {
            stats,
            interval,
            id,
        } => {
            let secs: f64 = interval
                .trim_end_matches('s')
                .parse()
                .with_context(|| format!("invalid interval {interval:?}"))?;
            let mut first = true;
            loop {
                let data = match rt.stats(id) {
                    Ok(d) => d,
                    // The stream ends when the container does.
                    Err(
                        berth_runtime_lib::Error::BadState { .. }
                        | berth_runtime_lib::Error::NotFound(_),
                    ) if !first => return Ok(0),
                    Err(e) => return Err(e.into()),
                };
                first = false;
                let ev = serde_json::json!({"type": "stats", "id": id, "data": data});
                println!("{ev}");
                if *stats {
                    return Ok(0);
                }
                std::thread::sleep(std::time::Duration::from_secs_f64(secs.max(0.1)));
            }
        }
        Cmd::Update {
            resources,
            memory,
            memory_reservation,
            memory_swap,
            cpu_quota,
            cpu_period,
            cpu_shares,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            id,
        } => {
            let r: LinuxResources = if let Some(f) = resources {
                let data = if f.as_os_str() == "-" {
                    let mut v = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
                    v
                } else {
                    std::fs::read(f).with_context(|| format!("read {}", f.display()))?
                };
                serde_json::from_slice(&data).context("parse resources JSON")?
            } else {
                let mut r = LinuxResources::default();
                if memory.is_some() || memory_reservation.is_some() || memory_swap.is_some() {
                    let mut m = LinuxMemory::default();
                    m.set_limit(memory.as_deref().map(parse_bytes).transpose()?);
                    m.set_reservation(memory_reservation.as_deref().map(parse_bytes).transpose()?);
                    m.set_swap(memory_swap.as_deref().map(parse_bytes).transpose()?);
                    r.set_memory(Some(m));
                }
                if cpu_quota.is_some()
                    || cpu_period.is_some()
                    || cpu_shares.is_some()
                    || cpuset_cpus.is_some()
                    || cpuset_mems.is_some()
                {
                    let mut c = LinuxCpu::default();
                    c.set_quota(*cpu_quota);
                    c.set_period(*cpu_period);
                    c.set_shares(*cpu_shares);
                    c.set_cpus(cpuset_cpus.clone());
                    c.set_mems(cpuset_mems.clone());
                    r.set_cpu(Some(c));
                }
                if let Some(l) = pids_limit {
                    let mut pl = LinuxPids::default();
                    pl.set_limit(*l);
                    r.set_pids(Some(pl));
                }
                r
            };
            rt.update(id, &r)?;
            Ok(0)
        }
        Cmd::Features => {
            println!("{}", serde_json::to_string_pretty(&features())?);
            Ok(0)
        }
    }
}

/// `64m`, `1g`, `1024`, `-1` -> bytes (binary units, like runc).
fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid size: {s:?}"))?;
    Ok((n * mul as f64) as i64)
}

/// runc's `ps` table: `ps <args>` (default `-ef`) filtered to the container's pids.
fn ps_table(pids: &[i32], args: &[String]) -> anyhow::Result<String> {
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!("ps: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| anyhow::anyhow!("couldn't find PID field in ps output"))?;
    let mut res = format!("{header}\n");
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let Some(p) = f.get(col).and_then(|p| p.parse::<i32>().ok()) {
            if pids.contains(&p) {
                res.push_str(l);
                res.push('\n');
            }
        }
    }
    Ok(res)
}

fn features() -> serde_json::Value {
    let caps: Vec<String> = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]
    .iter()
    .map(|c| format!("CAP_{c}"))
    .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap", "ridmap",
            "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime",
            "nostrictatime", "nosuid", "private", "rbind", "relatime", "remount", "ro",
            "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave",
            "strictatime", "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
                    "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
                    "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64",
                    "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.berth.runtime.memfd-reexec": "true"
        }
    })
}

/// Waits for `pid` (a child), passing forwarded signals to `forward`; returns the exit code
/// (128 + signal when killed).
fn wait_forwarding(
    sfd: &nix::sys::signalfd::SignalFd,
    pid: nix::unistd::Pid,
    mut forward: impl FnMut(i32),
) -> anyhow::Result<i32> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
            Ok(_) => {}
            Err(nix::Error::ECHILD) => return Ok(255),
            Err(e) => return Err(e).context("waitpid"),
        }
        match sfd.read_signal() {
            Ok(Some(info)) => {
                let sig = info.ssi_signo as i32;
                if sig != Signal::SIGCHLD as i32 {
                    forward(sig);
                }
            }
            Ok(None) => {}
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e).context("read signalfd"),
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

/// A console socket served by the CLI itself, for a foreground `run`/`exec` of a terminal
/// process without `--console-socket` (runc's behaviour: the CLI proxies the pty).
struct OwnConsole {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
}

impl OwnConsole {
    fn new(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
        let path = root.join(format!(".console-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .with_context(|| format!("bind {}", path.display()))?;
        Ok(OwnConsole { listener, path })
    }

    /// The pty master the container sent (it is queued once create/exec returned).
    fn master(&self) -> anyhow::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        self.listener.set_nonblocking(true)?;
        let (conn, _) = self
            .listener
            .accept()
            .context("the container sent no console")?;
        conn.set_nonblocking(false)?;
        let (fd, _) = berth_sys::recv_fd(conn.as_fd()).context("receive console")?;
        Ok(fd)
    }
}

impl Drop for OwnConsole {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn copy_winsize(master: &std::os::fd::OwnedFd) {
    use std::os::fd::AsFd;
    if let Ok((r, c)) = berth_sys::get_winsize(std::io::stdin().as_fd()) {
        let _ = berth_sys::set_winsize(master.as_fd(), r, c);
    }
}

/// Like `wait_forwarding`, while proxying our stdin/stdout to the pty `master` (stdin in raw
/// mode when it is a terminal; SIGWINCH resizes the pty).
fn wait_with_console(
    sfd: &nix::sys::signalfd::SignalFd,
    pid: nix::unistd::Pid,
    master: std::os::fd::OwnedFd,
    mut forward: impl FnMut(i32),
) -> anyhow::Result<i32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let saved = tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
    }
    copy_winsize(&master);
    let mut m = std::fs::File::from(master);
    let mut out = std::io::stdout();
    let mut buf = [0u8; 8192];
    let (mut stdin_open, mut master_open) = (true, true);
    let result = loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if master_open {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => break Err(anyhow::Error::from(e).context("poll")),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sig_ready, m_ready, in_ready) = (
            ready(0),
            master_open && ready(1),
            stdin_open && ready(if master_open { 2 } else { 1 }),
        );
        drop(fds);
        if m_ready {
            match m.read(&mut buf) {
                Ok(0) | Err(_) => master_open = false,
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
        if in_ready {
            match stdin.lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = m.write_all(&buf[..n]);
                }
            }
        }
        if sig_ready {
            if let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == Signal::SIGWINCH as i32 {
                    if let Ok((r, c)) = berth_sys::get_winsize(stdin.as_fd()) {
                        let _ = berth_sys::set_winsize(m.as_fd(), r, c);
                    }
                } else if sig != Signal::SIGCHLD as i32 {
                    forward(sig);
                }
            }
        }
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => break Ok(c),
            Ok(WaitStatus::Signaled(_, s, _)) => break Ok(128 + s as i32),
            Ok(_) => {}
            Err(nix::Error::ECHILD) => break Ok(255),
            Err(e) => break Err(anyhow::Error::from(e).context("waitpid")),
        }
    };
    // Drain what the process wrote before exiting.
    let _ = nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&m),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while let Ok(n) = m.read(&mut buf) {
        if n == 0 {
            break;
        }
        let _ = out.write_all(&buf[..n]);
    }
    let _ = out.flush();
    if let Some(t) = &saved {
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, t);
    }
    result
}

fn spec_wants_terminal(bundle: &Path) -> bool {
    Spec::load(bundle.join("config.json"))
        .ok()
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false)
}

fn run_container(
    rt: &Runtime,
    id: &str,
    bundle: &Path,
    mut opts: CreateOpts,
    detach: bool,
) -> anyhow::Result<i32> {
    let own_console = if opts.console_socket.is_none() && spec_wants_terminal(bundle) {
        if detach {
            bail!(
                "cannot allocate tty if berth-runtime will detach without setting console socket"
            );
        }
        let c = OwnConsole::new(rt.root())?;
        opts.console_socket = Some(c.path.clone());
        Some(c)
    } else {
        None
    };
    let st = rt.create(id, bundle, opts)?;
    let master = match &own_console {
        Some(c) => match c.master() {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = rt.delete(id, true);
                return Err(e);
            }
        },
        None => None,
    };
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
    let forward = |sig| {
        let _ = rt.kill(id, sig, false);
    };
    let code = match master {
        Some(m) => wait_with_console(&sfd, pid, m, forward)?,
        None => wait_forwarding(&sfd, pid, forward)?,
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
