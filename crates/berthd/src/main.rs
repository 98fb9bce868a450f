#![recursion_limit = "512"]
//! berthd: the Berth daemon. Speaks the Docker Engine API on a Unix socket.

mod authz;
mod config;
mod http;
mod routes;
mod routes_archive;
mod routes_build;
mod routes_images;
mod routes_networks;
mod routes_registry;
mod routes_volumes;
mod server;
mod system;
mod tuning;

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "berthd",
    version,
    about = "Berth container engine daemon (Docker Engine API)"
)]
struct Args {
    /// Where to listen: unix:///path (or a plain path) or tcp://ADDR:PORT; repeatable.
    /// TCP requires --tlsverify unless --insecure-tcp is given.
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    host: Vec<String>,
    /// Require TLS with client certificates signed by --tlscacert on TCP listeners.
    #[arg(long)]
    tlsverify: bool,
    /// CA that client certificates must chain to.
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// Server certificate (PEM).
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Allow plain TCP without TLS: anyone who can reach the port is root on this host.
    #[arg(long)]
    insecure_tcp: bool,
    /// Remount the host's cgroup2 with `favordynmods` (Linux 6.0+): container starts skip an RCU
    /// grace period (10-15 ms); fork/exit on the host get slightly slower. Host-wide, opt-in.
    #[arg(long)]
    cgroup_favor_dynmods: bool,
    /// Docker-compatible daemon.json (insecure-registries, log-opts, hosts, group, data-root,
    /// exec-root, tls*, debug); flags win over it.
    #[arg(long, default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// A registry that may be reached over plain http when https fails (repeatable);
    /// loopback registries always may, as with dockerd.
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// Per-registry CAs and client certificates (`<dir>/<host:port>/ca.crt`, `client.cert` +
    /// `client.key`), Docker's layout.
    #[arg(long, default_value = "/etc/docker/certs.d")]
    registry_certs_dir: PathBuf,
    /// JSON policy file that can deny API calls per user/uid, method and path (see README).
    #[arg(long)]
    authz_policy: Option<PathBuf>,
    /// Default container log options, `max-size=10m`, `max-file=3` (Berth's default rotation
    /// when none is given; `max-size=-1` turns rotation off).
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    log_opts: Vec<String>,
    /// Root of persistent state (images, containers).
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Root of runtime state (bundles, sockets, pid file).
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Pid file (default: <exec-root>/berthd.pid).
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// Group that owns the Unix socket (mode 0660, owner root); if the group does not exist,
    /// only root gets in (a warning says so).
    #[arg(short = 'G', long, default_value = "berth")]
    group: String,
    /// Log level (error, warn, info, debug, trace).
    #[arg(short = 'l', long, default_value = "info")]
    log_level: String,
    /// Debug logging.
    #[arg(short = 'D', long)]
    debug: bool,
}

/// daemon.json under the flags: lists add up, a flag given on the command line wins.
fn merge_config(args: &mut Args, f: config::DaemonJson) {
    let given =
        |flag: &str| std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    args.insecure_registry.extend(f.insecure_registries);
    for (k, v) in f.log_opts {
        if !args
            .log_opts
            .iter()
            .any(|o| o.split_once('=').is_some_and(|(ok, _)| ok == k))
        {
            args.log_opts.push(format!("{k}={v}"));
        }
    }
    if !f.hosts.is_empty() && !given("--host") && !given("-H") {
        args.host = f.hosts;
    }
    if let Some(g) = f.group.filter(|_| !given("--group") && !given("-G")) {
        args.group = g;
    }
    if let Some(d) = f.data_root.filter(|_| !given("--data-root")) {
        args.data_root = d;
    }
    if let Some(d) = f.exec_root.filter(|_| !given("--exec-root")) {
        args.exec_root = d;
    }
    args.tlsverify |= f.tlsverify.unwrap_or(false);
    args.tlscacert = args.tlscacert.take().or(f.tlscacert);
    args.tlscert = args.tlscert.take().or(f.tlscert);
    args.tlskey = args.tlskey.take().or(f.tlskey);
    args.debug |= f.debug.unwrap_or(false);
}

/// Parses one --host value into a listener (TLS is attached by the caller).
fn parse_host(host: &str) -> anyhow::Result<Host> {
    if let Some(p) = host.strip_prefix("unix://") {
        return Ok(Host::Unix(PathBuf::from(p)));
    }
    if host.starts_with('/') {
        return Ok(Host::Unix(PathBuf::from(host)));
    }
    if let Some(a) = host.strip_prefix("tcp://") {
        let a = a.trim_end_matches('/');
        let addr = a
            .parse::<std::net::SocketAddr>()
            .with_context(|| format!("invalid --host {host:?}: expected tcp://IP:PORT"))?;
        return Ok(Host::Tcp(addr));
    }
    bail!("unsupported --host {host:?}: use unix:///path or tcp://IP:PORT")
}

enum Host {
    Unix(PathBuf),
    Tcp(std::net::SocketAddr),
}

fn listeners(args: &Args) -> anyhow::Result<Vec<server::Listen>> {
    let mut out = Vec::new();
    for h in &args.host {
        match parse_host(h)? {
            Host::Unix(path) => out.push(server::Listen::Unix {
                path,
                group: Some(args.group.clone()),
            }),
            Host::Tcp(addr) => {
                let tls = if args.tlsverify {
                    let (Some(ca), Some(cert), Some(key)) =
                        (&args.tlscacert, &args.tlscert, &args.tlskey)
                    else {
                        bail!("--tlsverify needs --tlscacert, --tlscert and --tlskey");
                    };
                    Some(server::tls_acceptor(&server::TlsFiles { ca, cert, key })?)
                } else if args.insecure_tcp {
                    eprintln!(
                        "WARNING: berthd is listening on tcp://{addr} WITHOUT TLS (--insecure-tcp).\n\
                         WARNING: anyone who can reach this port controls the daemon, i.e. is root on this host."
                    );
                    tracing::warn!(%addr, "plain TCP listener without TLS: anyone who can reach it is root");
                    None
                } else {
                    bail!(
                        "refusing to listen on tcp://{addr} without TLS: pass --tlsverify with --tlscacert, \
                         --tlscert and --tlskey (or --insecure-tcp to force plain TCP, which gives root to \
                         anyone who can reach the port)"
                    );
                };
                out.push(server::Listen::Tcp { addr, tls });
            }
        }
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    let explicit_config =
        std::env::args().any(|a| a == "--config-file" || a.starts_with("--config-file="));
    let file = config::load(&args.config_file, explicit_config)?;
    merge_config(&mut args, file);
    let level = if args.debug {
        "debug"
    } else {
        args.log_level.as_str()
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let missing = berth_engine::checks::missing_features();
    if !missing.is_empty() {
        bail!("this kernel lacks what Berth needs: {}", missing.join("; "));
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("berthd must run as root");
    }
    let listens = listeners(&args)?;
    berth_registry::set_certs_dir(&args.registry_certs_dir);
    if args.cgroup_favor_dynmods {
        tuning::favor_dynmods()?;
    }
    let policy = match &args.authz_policy {
        Some(p) => Some(authz::Policy::load(p)?),
        None => None,
    };
    std::fs::create_dir_all(&args.exec_root)
        .with_context(|| format!("creating {}", args.exec_root.display()))?;
    std::fs::create_dir_all(&args.data_root)
        .with_context(|| format!("creating {}", args.data_root.display()))?;
    let pidfile = args
        .pidfile
        .clone()
        .unwrap_or_else(|| args.exec_root.join("berthd.pid"));
    system::claim_pidfile(&pidfile)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let res = rt.block_on(async {
        let mut cfg = berth_engine::Config::new(&args.data_root, &args.exec_root);
        cfg.log_opts =
            berth_engine::logs::daemon_log_opts(&args.log_opts).map_err(anyhow::Error::msg)?;
        cfg.insecure_registries = args.insecure_registry.clone();
        let engine = berth_engine::Engine::open(cfg)
            .await
            .map_err(anyhow::Error::msg)?;
        server::serve(engine, listens, policy).await
    });
    let _ = std::fs::remove_file(&pidfile);
    res
}
