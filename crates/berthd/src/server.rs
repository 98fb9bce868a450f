//! The listeners: HTTP/1.1 over a Unix socket (and, when asked, TCP with mutual TLS), one task
//! per connection, upgrades enabled, clean shutdown on SIGTERM/SIGINT.
//!
//! Every connection is attributed to a peer (Unix credentials or the TLS client certificate's
//! common name) that is logged for auditing and checked against the optional policy file.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use berth_engine::Engine;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{signal, SignalKind};
use tokio_rustls::TlsAcceptor;

use crate::authz::{Peer, Policy, PLUGIN_NAME};

/// Largest request head (request line + headers) accepted; hyper answers 431 beyond it.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Where berthd listens.
pub enum Listen {
    Unix {
        path: PathBuf,
        group: Option<String>,
    },
    Tcp {
        addr: SocketAddr,
        tls: Option<TlsAcceptor>,
    },
}

/// TLS material for TCP listeners (`--tlsverify --tlscacert --tlscert --tlskey`).
pub struct TlsFiles<'a> {
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// A TLS acceptor that requires a client certificate signed by `ca`.
pub fn tls_acceptor(f: &TlsFiles<'_>) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(f.ca)
        .with_context(|| format!("reading {}", f.ca.display()))?
    {
        roots.add(c.with_context(|| format!("parsing {}", f.ca.display()))?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .context("building the client certificate verifier")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(f.cert)
        .with_context(|| format!("reading {}", f.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", f.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(f.key)
        .with_context(|| format!("reading {}", f.key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .context("loading the server certificate and key")?;
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

fn bind_unix(sock: &Path, group: Option<&str>) -> anyhow::Result<UnixListener> {
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
    // root:<group> 0660 like dockerd's docker group; without the group, only root gets in.
    let gid = match group {
        Some(g) => match nix::unistd::Group::from_name(g)? {
            Some(gr) => Some(gr.gid),
            None => {
                tracing::warn!("group {g:?} does not exist: the socket is root-only (create the group to share it)");
                None
            }
        },
        None => None,
    };
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o660))?;
    nix::unistd::chown(
        sock,
        Some(nix::unistd::Uid::from_raw(0)),
        Some(gid.unwrap_or(nix::unistd::Gid::from_raw(0))),
    )?;
    Ok(listener)
}

fn unix_peer(stream: &tokio::net::UnixStream) -> Peer {
    let mut p = Peer {
        transport: "unix".into(),
        ..Default::default()
    };
    if let Ok(c) = stream.peer_cred() {
        p.uid = Some(c.uid());
        p.gid = Some(c.gid());
        p.pid = c.pid();
        p.user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(c.uid()))
            .ok()
            .flatten()
            .map(|u| u.name);
    }
    p
}

fn tls_peer(addr: SocketAddr, conn: &rustls::ServerConnection) -> Peer {
    let cn = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
            let cn = cert
                .subject()
                .iter_common_name()
                .next()?
                .as_str()
                .ok()?
                .to_string();
            Some(cn)
        });
    Peer {
        user: cn,
        transport: format!("tcp {addr}"),
        ..Default::default()
    }
}

fn spawn_conn<I>(engine: Arc<Engine>, policy: Option<Arc<Policy>>, io: I, peer: Peer)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tracing::info!(
        target: "berthd::audit",
        transport = %peer.transport,
        uid = ?peer.uid,
        gid = ?peer.gid,
        pid = ?peer.pid,
        user = ?peer.user,
        "client connected"
    );
    let peer = Arc::new(peer);
    tokio::spawn(async move {
        let svc = service_fn(move |req: Request<Incoming>| {
            let engine = engine.clone();
            let policy = policy.clone();
            let peer = peer.clone();
            async move {
                if let Some(p) = policy.as_deref() {
                    let (_, rest) = crate::http::split_version(req.uri().path());
                    if let Err(msg) = p.check(&peer, req.method().as_str(), rest) {
                        tracing::warn!(target: "berthd::audit", user = ?peer.user, uid = ?peer.uid,
                            method = %req.method(), path = %req.uri().path(), "denied: {msg}");
                        return Ok::<_, std::convert::Infallible>(crate::http::message_reply(
                            StatusCode::FORBIDDEN,
                            &format!("authorization denied by plugin {PLUGIN_NAME}: {msg}"),
                        ));
                    }
                }
                Ok(crate::routes::handle(engine, req).await)
            }
        });
        let conn = http1::Builder::new()
            .half_close(true)
            .max_buf_size(MAX_HEAD_BYTES.max(8192))
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!("connection: {e}");
        }
    });
}

pub async fn serve(
    engine: Arc<Engine>,
    listens: Vec<Listen>,
    policy: Option<Policy>,
) -> anyhow::Result<()> {
    let policy = policy.map(Arc::new);
    let mut unix_paths = Vec::new();
    let mut tasks = Vec::new();
    for l in listens {
        match l {
            Listen::Unix { path, group } => {
                let listener = bind_unix(&path, group.as_deref())?;
                tracing::info!(socket = %path.display(), data_root = %engine.cfg.data_root.display(), "berthd is ready");
                unix_paths.push(path);
                let (engine, policy) = (engine.clone(), policy.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        match listener.accept().await {
                            Ok((stream, _)) => {
                                let peer = unix_peer(&stream);
                                spawn_conn(engine.clone(), policy.clone(), stream, peer);
                            }
                            Err(e) => tracing::warn!("accept: {e}"),
                        }
                    }
                }));
            }
            Listen::Tcp { addr, tls } => {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listening on tcp://{addr}"))?;
                tracing::info!(address = %addr, tls = tls.is_some(), "berthd is listening on TCP");
                let (engine, policy) = (engine.clone(), policy.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let (stream, remote) = match listener.accept().await {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::warn!("accept: {e}");
                                continue;
                            }
                        };
                        let (engine, policy) = (engine.clone(), policy.clone());
                        match &tls {
                            Some(acc) => {
                                let acc = acc.clone();
                                tokio::spawn(async move {
                                    match acc.accept(stream).await {
                                        Ok(s) => {
                                            let peer = tls_peer(remote, s.get_ref().1);
                                            spawn_conn(engine, policy, s, peer);
                                        }
                                        Err(e) => tracing::warn!(target: "berthd::audit", %remote, "TLS handshake refused: {e}"),
                                    }
                                });
                            }
                            None => {
                                let peer = Peer { transport: format!("tcp {remote} (plain)"), ..Default::default() };
                                spawn_conn(engine, policy, stream, peer);
                            }
                        }
                    }
                }));
            }
        }
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    for t in &tasks {
        t.abort();
    }
    tracing::info!("shutting down; containers keep running under their shims (live restore)");
    engine.shutdown();
    engine.net_shutdown().await;
    for p in unix_paths {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
