#![recursion_limit = "512"]
//! berthd: the Berth daemon. Speaks the Docker Engine API on a Unix socket.

mod http;
mod routes;
mod routes_images;
mod routes_registry;
mod server;
mod system;

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "berthd", version, about = "Berth container engine daemon (Docker Engine API)")]
struct Args {
    /// Socket to listen on (unix:///path or a plain path).
    #[arg(short = 'H', long = "host", default_value = "unix:///run/berth/berth.sock")]
    host: String,
    /// Root of persistent state (images, containers).
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Root of runtime state (bundles, sockets, pid file).
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Pid file (default: <exec-root>/berthd.pid).
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// Group allowed to use the socket (mode 0660); root only when absent.
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(short = 'l', long, default_value = "info")]
    log_level: String,
    /// Debug logging.
    #[arg(short = 'D', long)]
    debug: bool,
}

fn socket_path(host: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = host.strip_prefix("unix://") {
        return Ok(PathBuf::from(p));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    bail!("unsupported --host {host:?}: only unix:///path sockets are supported so far")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let level = if args.debug { "debug" } else { args.log_level.as_str() };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();

    let missing = berth_engine::checks::missing_features();
    if !missing.is_empty() {
        bail!("this kernel lacks what Berth needs: {}", missing.join("; "));
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("berthd must run as root");
    }
    let sock = socket_path(&args.host)?;
    std::fs::create_dir_all(&args.exec_root)
        .with_context(|| format!("creating {}", args.exec_root.display()))?;
    std::fs::create_dir_all(&args.data_root)
        .with_context(|| format!("creating {}", args.data_root.display()))?;
    let pidfile = args.pidfile.clone().unwrap_or_else(|| args.exec_root.join("berthd.pid"));
    system::claim_pidfile(&pidfile)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let res = rt.block_on(async {
        let cfg = berth_engine::Config::new(&args.data_root, &args.exec_root);
        let engine = berth_engine::Engine::open(cfg).await.map_err(anyhow::Error::msg)?;
        server::serve(engine, &sock, args.group.as_deref()).await
    });
    let _ = std::fs::remove_file(&pidfile);
    res
}
