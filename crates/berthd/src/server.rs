//! The listener: HTTP/1.1 over a Unix socket, one task per connection, upgrades enabled,
//! clean shutdown on SIGTERM/SIGINT.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use berth_engine::Engine;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

pub async fn serve(engine: Arc<Engine>, sock: &Path, group: Option<&str>) -> anyhow::Result<()> {
    if let Some(dir) = sock.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if sock.exists() {
        // Refuse to steal a live daemon's socket.
        if std::os::unix::net::UnixStream::connect(sock).is_ok() {
            anyhow::bail!("another daemon is already listening on {}", sock.display());
        }
        std::fs::remove_file(sock).with_context(|| format!("removing stale {}", sock.display()))?;
    }
    let listener =
        UnixListener::bind(sock).with_context(|| format!("listening on {}", sock.display()))?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(mode))?;
    if let Some(g) = group {
        let gid = nix::unistd::Group::from_name(g)?
            .with_context(|| format!("no such group {g:?}"))?
            .gid;
        nix::unistd::chown(sock, None, Some(gid))?;
    }
    tracing::info!(socket = %sock.display(), data_root = %engine.cfg.data_root.display(), "berthd is ready");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            acc = listener.accept() => {
                let (stream, _) = match acc {
                    Ok(s) => s,
                    Err(e) => { tracing::warn!("accept: {e}"); continue; }
                };
                let engine = engine.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let engine = engine.clone();
                        async move { Ok::<_, std::convert::Infallible>(crate::routes::handle(engine, req).await) }
                    });
                    let conn = http1::Builder::new()
                        .half_close(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades();
                    if let Err(e) = conn.await {
                        tracing::debug!("connection: {e}");
                    }
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down; containers keep running under their shims (live restore)");
    engine.shutdown();
    let _ = std::fs::remove_file(sock);
    Ok(())
}
