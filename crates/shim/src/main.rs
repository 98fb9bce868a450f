//! `berth-shim --id ID --bundle DIR --runtime-root DIR --log-path FILE --socket PATH
//! --exit-file FILE [--tty] [--stdin] [--log-driver D --log-max-size N --log-max-file N
//! --log-attrs JSON]` (docs/DESIGN.md, "Shim").

use std::path::PathBuf;

use clap::Parser;

use berth_shim::launch;
use berth_shim::{Config, ContainerRuntime, HostRuntime, OciRuntime};

#[derive(Parser, Debug)]
#[command(name = "berth-shim", about = "Berth per-container monitor")]
struct Args {
    #[arg(long)]
    id: String,
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    runtime_root: PathBuf,
    #[arg(long)]
    log_path: PathBuf,
    #[arg(long)]
    socket: PathBuf,
    #[arg(long)]
    exit_file: PathBuf,
    #[arg(long)]
    tty: bool,
    #[arg(long)]
    stdin: bool,
    /// `json-file` (default), `local` (same format) or `none` (nothing is written).
    #[arg(long, default_value = "json-file")]
    log_driver: String,
    /// Rotate the log when it would grow past this many bytes (0: never).
    #[arg(long, default_value_t = 0)]
    log_max_size: u64,
    /// Log files kept, the current one included.
    #[arg(long, default_value_t = 1)]
    log_max_file: u32,
    /// Log attributes (labels/env log options) as a JSON object of strings.
    #[arg(long)]
    log_attrs: Option<String>,
    /// Internal: this process is the serving shim (set by the launcher).
    #[arg(long = "serve", hide = true)]
    serve: bool,
    /// Tests only: run the bundle's process directly on the host instead of in a container.
    #[arg(long, hide = true)]
    test_host_runtime: bool,
}

fn main() {
    let args = Args::parse();
    if args.serve {
        // The serving shim started directly (tests, or an older berthd).
        std::process::exit(serve(args));
    }
    // The launcher: run from a sealed copy of the binary (a no-op when berthd started us from
    // its own sealed copy, the usual case), then fork the serving shim, which inherits it.
    if let Err(e) = berth_sys::reexec_from_sealed_memfd("berth-shim") {
        eprintln!("berth-shim: cannot re-execute from a sealed memfd: {e}");
        std::process::exit(1);
    }
    std::process::exit(launch::launch(move || serve(args)));
}

fn serve(args: Args) -> i32 {
    // The container's init is cloned from this process: run from a sealed copy of the binary so
    // nothing in the container can write to the shim's executable (the CVE-2019-5736 class).
    if let Err(e) = berth_sys::reexec_from_sealed_memfd("berth-shim") {
        launch::send_report(&Err(format!(
            "berth-shim: cannot re-execute from a sealed memfd: {e}"
        )));
        return 1;
    }
    // A new session: no controlling terminal, not in berthd's process group.
    if let Err(e) = nix::unistd::setsid() {
        launch::send_report(&Err(format!("berth-shim: setsid: {e}")));
        return 1;
    }
    if let Err(e) = berth_sys::set_child_subreaper() {
        launch::send_report(&Err(format!("berth-shim: PR_SET_CHILD_SUBREAPER: {e}")));
        return 1;
    }
    let cfg = Config {
        id: args.id,
        bundle: args.bundle,
        log_path: args.log_path,
        socket: args.socket,
        exit_file: args.exit_file,
        tty: args.tty,
        stdin: args.stdin,
        log: berth_shim::jsonlog::LogOpts {
            enabled: args.log_driver != "none",
            max_size: args.log_max_size,
            max_file: args.log_max_file.max(1),
            attrs: berth_shim::jsonlog::attrs_fragment(
                &args
                    .log_attrs
                    .as_deref()
                    .and_then(|s| {
                        serde_json::from_str::<std::collections::BTreeMap<String, String>>(s).ok()
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .collect::<Vec<_>>(),
            ),
        },
    };
    let mut rt: Box<dyn ContainerRuntime> = if args.test_host_runtime {
        Box::new(HostRuntime::new(args.runtime_root))
    } else {
        let console = cfg.socket.with_extension("console.sock");
        Box::new(OciRuntime::new(args.runtime_root, console))
    };
    match berth_shim::serve(&cfg, rt.as_mut(), |r| launch::send_report(&r)) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            1
        }
    }
}
