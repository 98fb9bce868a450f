//! berth-registry: a client for the OCI distribution API (Docker registry v2).
//!
//! Plain HTTP/1.1 over TCP only: it talks to loopback registries (`localhost`, 127.0.0.0/8,
//! `::1`, which Docker treats as insecure by default) and registries explicitly marked
//! insecure. Token auth (`WWW-Authenticate: Bearer realm=...,service=...`) and basic auth.
//! Manifests (Docker v2 schema 2, manifest lists, OCI manifests and indexes) are returned
//! as bytes plus their media type and digest; blobs are streamed chunk by chunk.

mod auth;
pub mod manifest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Digest as _;
use tokio::sync::mpsc;

pub use auth::{AuthConfig, Challenge};

/// Request body type for uploads.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Registry client errors. `Display` is the message dockerd would show.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry could not be reached (connection refused, reset, ...).
    #[error("{0}")]
    Transport(String),
    /// Credentials missing or rejected.
    #[error("{0}")]
    Unauthorized(String),
    /// Manifest or blob unknown.
    #[error("{0}")]
    NotFound(String),
    /// Anything else the registry answered that we cannot use.
    #[error("{0}")]
    Protocol(String),
    /// A registry this client cannot talk to (https without TLS support).
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Docker's registry for `docker.io` references.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// Whether `host` (`name[:port]`) is a loopback registry, insecure by default as in Docker.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .map(|(h, p)| {
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            })
            .unwrap_or(host)
    };
    if name == "localhost" {
        return true;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// A body of bytes.
pub fn bytes_body(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A streamed body fed by a channel; send `Err` to abort the upload.
pub fn channel_body(cap: usize) -> (mpsc::Sender<std::io::Result<Bytes>>, Body) {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(cap);
    (tx, BoxBody::new(ChannelStream { rx }))
}

struct ChannelStream {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
}

impl hyper::body::Body for ChannelStream {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// The gzip level of pushed layers: 1, as `pigz -1`/BuildKit's fast setting. Layers are
/// mostly binaries and already-compressed data, where higher levels cost several times the
/// CPU for a few percent; pushes are bound by compression on small machines.
pub const GZIP_LEVEL: u32 = 1;

/// A reader yielding `r` gzip-compressed (level [`GZIP_LEVEL`], without a timestamp, so the
/// same layer always gives the same blob digest).
pub fn gzip_reader<R: std::io::Read>(r: R) -> impl std::io::Read {
    flate2::read::GzEncoder::new(r, flate2::Compression::new(GZIP_LEVEL))
}

/// sha256 digest string of `b`.
pub fn sha256_digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// A streamed blob download.
pub struct Blob {
    body: Incoming,
    /// Content-Length, when the registry sent one.
    pub length: Option<u64>,
    /// Where this reply starts in the blob (non-zero for a resumed download).
    pub offset: u64,
}

impl Blob {
    /// The next chunk, or `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(Error::Transport(format!("error reading blob: {e}"))),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        if !d.is_empty() {
                            return Ok(Some(d));
                        }
                    }
                }
            }
        }
    }
}

/// A fetched manifest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub media_type: String,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
}

static CERTS_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Where per-registry CAs and client certificates live: `<dir>/<host[:port]>/*.crt` (CAs),
/// `<name>.cert` + `<name>.key` (client certificate), Docker's `/etc/docker/certs.d` layout.
/// Set once at daemon start; defaults to `/etc/docker/certs.d`.
pub fn set_certs_dir(dir: impl Into<PathBuf>) {
    let _ = CERTS_DIR.set(dir.into());
}

fn certs_dir() -> &'static Path {
    CERTS_DIR.get_or_init(|| PathBuf::from("/etc/docker/certs.d"))
}

/// The system's trust store, loaded once.
fn native_roots() -> &'static Vec<rustls::pki_types::CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// TLS for `host`: system roots plus `<certs dir>/<host>/*.crt`, and a client certificate from
/// `<certs dir>/<host>/*.cert` + `.key` when present.
fn tls_config(host: &str) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in native_roots() {
        let _ = roots.add(c.clone());
    }
    let dir = certs_dir().join(host);
    let mut client_cert = None;
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in &files {
            match f.extension().and_then(|e| e.to_str()) {
                Some("crt") => {
                    for c in CertificateDer::pem_file_iter(f)
                        .map_err(|e| Error::Protocol(format!("{}: {e}", f.display())))?
                    {
                        let c = c.map_err(|e| Error::Protocol(format!("{}: {e}", f.display())))?;
                        roots
                            .add(c)
                            .map_err(|e| Error::Protocol(format!("{}: {e}", f.display())))?;
                    }
                }
                Some("cert") => {
                    let key = f.with_extension("key");
                    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(f)
                        .and_then(|i| i.collect::<std::result::Result<_, _>>())
                        .map_err(|e| Error::Protocol(format!("{}: {e}", f.display())))?;
                    let k = PrivateKeyDer::from_pem_file(&key)
                        .map_err(|e| Error::Protocol(format!("{}: {e}", key.display())))?;
                    client_cert = Some((certs, k));
                }
                _ => {}
            }
        }
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Protocol(e.to_string()))?
        .with_root_certificates(roots);
    match client_cert {
        Some((certs, key)) => b
            .with_client_auth_cert(certs, key)
            .map_err(|e| Error::Protocol(format!("client certificate for {host}: {e}"))),
        None => Ok(b.with_no_client_auth()),
    }
}

/// A client for one repository on one registry.
pub struct Client {
    host: String,
    repo: String,
    push: bool,
    creds: Option<AuthConfig>,
    http: hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>,
    /// `https://host` or, for an insecure registry that does not speak TLS, `http://host`;
    /// settled by the first request.
    base: Mutex<Option<String>>,
    /// Plain http is allowed as a fallback (loopback and `--insecure-registry` hosts).
    insecure: bool,
    challenge: Mutex<Option<Option<Challenge>>>,
    tokens: Mutex<HashMap<String, String>>,
}

fn go_method(m: &Method) -> String {
    let s = m.as_str();
    let mut out = s[..1].to_string();
    out.push_str(&s[1..].to_ascii_lowercase());
    out
}

impl Client {
    /// A client for `repo` (path, e.g. `library/busybox`) on `host` (`name[:port]`, as in a
    /// reference's domain). `insecure` lists extra registries reachable over plain http.
    pub fn new(
        host: &str,
        repo: &str,
        push: bool,
        creds: Option<AuthConfig>,
        insecure: &[String],
    ) -> Result<Client> {
        let host = if host == "docker.io" || host == "index.docker.io" {
            DOCKER_HUB_HOST
        } else {
            host
        };
        let insecure = is_loopback(host) || insecure.iter().any(|h| h == host);
        let mut conn = HttpConnector::new();
        conn.enforce_http(false);
        conn.set_nodelay(true);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(host)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(conn);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(tls);
        Ok(Client {
            host: host.to_string(),
            base: Mutex::new(None),
            insecure,
            repo: repo.to_string(),
            push,
            creds: creds.filter(|c| !c.is_empty()),
            http,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The scheme and host requests go to; the first call probes `https://host/v2/` and, for an
    /// insecure registry whose https fails, settles on `http://host` (dockerd's order).
    async fn base(&self) -> Result<String> {
        if let Some(b) = self.base.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(b);
        }
        let https = format!("https://{}", self.host);
        let chosen = match self
            .raw(
                Method::GET,
                &format!("{https}/v2/"),
                &[],
                bytes_body(Bytes::new()),
            )
            .await
        {
            Ok(_) => https,
            Err(e) if self.insecure => {
                tracing::debug!("registry {}: https failed ({e}), trying http", self.host);
                let http = format!("http://{}", self.host);
                // A TLS-only registry answers plain http with 400 "Client sent an HTTP request
                // to an HTTPS server": then the https failure (an untrusted certificate, say)
                // is the error worth reporting.
                if let Ok(resp) = self
                    .raw(
                        Method::GET,
                        &format!("{http}/v2/"),
                        &[],
                        bytes_body(Bytes::new()),
                    )
                    .await
                {
                    if resp.status() == StatusCode::BAD_REQUEST {
                        let body = collect(resp).await.unwrap_or_default();
                        if String::from_utf8_lossy(&body).contains("HTTPS server") {
                            return Err(e);
                        }
                    }
                }
                http
            }
            Err(e) => return Err(e),
        };
        *self.base.lock().unwrap_or_else(|p| p.into_inner()) = Some(chosen.clone());
        Ok(chosen)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn scope(&self) -> String {
        if self.push {
            format!("repository:{}:pull,push", self.repo)
        } else {
            format!("repository:{}:pull", self.repo)
        }
    }

    async fn raw(
        &self,
        method: Method,
        url: &str,
        headers: &[(hyper::header::HeaderName, String)],
        body: Body,
    ) -> Result<Response<Incoming>> {
        let mut req = Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(body)
            .map_err(|e| Error::Protocol(format!("bad request {url}: {e}")))?;
        tracing::debug!("registry {method} {url}");
        self.http.request(req).await.map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = s.to_string();
                src = s.source();
            }
            let msg = msg.replace("Connection refused (os error 111)", "connection refused");
            Error::Transport(format!(
                "{} \"{url}\": dial tcp {}: connect: {msg}",
                go_method(&method),
                self.host
            ))
        })
    }

    /// The registry's auth challenge (from `GET /v2/`), fetched once.
    async fn challenge(&self) -> Result<Option<Challenge>> {
        if let Some(c) = self
            .challenge
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(c);
        }
        let url = format!("{}/v2/", self.base().await?);
        let resp = self
            .raw(Method::GET, &url, &[], bytes_body(Bytes::new()))
            .await?;
        let c = if resp.status() == StatusCode::UNAUTHORIZED {
            resp.headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(Challenge::parse)
                .next()
        } else {
            None
        };
        *self.challenge.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// The Authorization header value for this repository's scope, if auth is needed.
    async fn authorization(&self) -> Result<Option<String>> {
        let Some(ch) = self.challenge().await? else {
            return Ok(None);
        };
        match ch {
            Challenge::Basic { .. } => Ok(self.creds.as_ref().and_then(|c| c.basic())),
            Challenge::Bearer { realm, service } => {
                let scope = self.scope();
                if let Some(t) = self
                    .tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&scope)
                {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self
                    .fetch_token(&realm, service.as_deref(), Some(&scope))
                    .await?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(scope, token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String> {
        let mut u = url::Url::parse(realm)
            .map_err(|e| Error::Protocol(format!("bad token realm {realm:?}: {e}")))?;
        {
            let mut q = u.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            if let Some(s) = scope {
                q.append_pair("scope", s);
            }
            if let Some(c) = &self.creds {
                if !c.username.is_empty() {
                    q.append_pair("account", &c.username);
                }
            }
        }
        let mut headers = Vec::new();
        if let Some(b) = self.creds.as_ref().and_then(|c| c.basic()) {
            headers.push((AUTHORIZATION, b));
        }
        let resp = self
            .raw(Method::GET, u.as_str(), &headers, bytes_body(Bytes::new()))
            .await?;
        let status = resp.status();
        let body = collect(resp).await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized(format!(
                "Get \"{u}\": unauthorized: {}",
                String::from_utf8_lossy(&body).trim()
            )));
        }
        if !status.is_success() {
            return Err(Error::Protocol(format!(
                "token server {u} answered {status}"
            )));
        }
        #[derive(serde::Deserialize)]
        struct Tok {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let t: Tok = serde_json::from_slice(&body)
            .map_err(|e| Error::Protocol(format!("bad token reply: {e}")))?;
        Ok(if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        })
    }

    /// A request with auth, following redirects to the same host only (GET/HEAD).
    async fn request(
        &self,
        method: Method,
        path_or_url: &str,
        extra: &[(hyper::header::HeaderName, String)],
        body: Body,
    ) -> Result<Response<Incoming>> {
        let mut url = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.base().await?, path_or_url)
        };
        let mut headers: Vec<(hyper::header::HeaderName, String)> = extra.to_vec();
        if let Some(a) = self.authorization().await? {
            headers.push((AUTHORIZATION, a));
        }
        let mut body = Some(body);
        for _ in 0..5 {
            let b = body.take().unwrap_or_else(|| bytes_body(Bytes::new()));
            let resp = self.raw(method.clone(), &url, &headers, b).await?;
            if resp.status().is_redirection() && (method == Method::GET || method == Method::HEAD) {
                let loc = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let next = url::Url::parse(&url)
                    .and_then(|b| b.join(&loc))
                    .map_err(|e| Error::Protocol(format!("bad redirect {loc:?}: {e}")))?;
                let same = url::Url::parse(&url).is_ok_and(|u| u.scheme() == next.scheme())
                    && host_port(&next) == self.host;
                if !same {
                    return Err(Error::Protocol(format!(
                        "refusing to follow a redirect from {} to another host: {next}",
                        self.host
                    )));
                }
                url = next.to_string();
                continue;
            }
            return Ok(resp);
        }
        Err(Error::Protocol(format!("too many redirects for {url}")))
    }

    /// `GET /v2/` with the credentials (docker login).
    pub async fn login(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base().await?);
        match self.challenge().await? {
            None => Ok(()),
            Some(Challenge::Basic { .. }) => {
                let mut h = Vec::new();
                if let Some(b) = self.creds.as_ref().and_then(|c| c.basic()) {
                    h.push((AUTHORIZATION, b));
                }
                let resp = self
                    .raw(Method::GET, &url, &h, bytes_body(Bytes::new()))
                    .await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(Error::Unauthorized(format!(
                        "login attempt to {url} failed with status: {}",
                        status_text(resp.status())
                    )))
                }
            }
            Some(Challenge::Bearer { realm, service }) => {
                let tok = self.fetch_token(&realm, service.as_deref(), None).await?;
                let resp = self
                    .raw(
                        Method::GET,
                        &url,
                        &[(AUTHORIZATION, format!("Bearer {tok}"))],
                        bytes_body(Bytes::new()),
                    )
                    .await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(Error::Unauthorized(format!(
                        "login attempt to {url} failed with status: {}",
                        status_text(resp.status())
                    )))
                }
            }
        }
    }

    /// Fetches a manifest (by tag or digest), verifying the digest when fetched by digest.
    pub async fn get_manifest(&self, reference: &str) -> Result<FetchedManifest> {
        let accept = [
            manifest::DOCKER_MANIFEST,
            manifest::DOCKER_LIST,
            manifest::OCI_MANIFEST,
            manifest::OCI_INDEX,
        ]
        .join(", ");
        let resp = self
            .request(
                Method::GET,
                &format!("/v2/{}/manifests/{reference}", self.repo),
                &[(ACCEPT, accept)],
                bytes_body(Bytes::new()),
            )
            .await?;
        let status = resp.status();
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = collect_limited(resp, MAX_MANIFEST_BYTES).await?;
        if !status.is_success() {
            return Err(registry_error(status, &body, &self.repo));
        }
        let digest = sha256_digest(&body);
        if reference.starts_with("sha256:") && digest != reference {
            return Err(Error::Protocol(format!(
                "manifest digest mismatch: expected {reference}, got {digest}"
            )));
        }
        let media_type = manifest::media_type_of(&body)
            .unwrap_or(ct.split(';').next().unwrap_or("").trim().to_string());
        Ok(FetchedManifest {
            bytes: body,
            media_type,
            digest,
        })
    }

    /// Starts downloading a blob.
    pub async fn get_blob(&self, digest: &str) -> Result<Blob> {
        self.get_blob_from(digest, 0).await
    }

    /// Starts downloading a blob from byte `offset` (`Range: bytes=offset-`). `Blob::offset`
    /// says where the reply really starts: `offset` when the registry answered 206, 0 when it
    /// ignored the range and sent the whole blob.
    pub async fn get_blob_from(&self, digest: &str, offset: u64) -> Result<Blob> {
        let range = [(hyper::header::RANGE, format!("bytes={offset}-"))];
        let extra: &[(hyper::header::HeaderName, String)] = if offset > 0 { &range } else { &[] };
        let resp = self
            .request(
                Method::GET,
                &format!("/v2/{}/blobs/{digest}", self.repo),
                extra,
                bytes_body(Bytes::new()),
            )
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let body = collect(resp).await.unwrap_or_default();
            return Err(registry_error(status, &body, &self.repo));
        }
        let length = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok());
        let start = if offset > 0 && status == StatusCode::PARTIAL_CONTENT {
            offset
        } else {
            0
        };
        Ok(Blob {
            body: resp.into_body(),
            length,
            offset: start,
        })
    }

    /// Whether the repository has the blob (`HEAD`).
    pub async fn blob_exists(&self, digest: &str) -> Result<bool> {
        let resp = self
            .request(
                Method::HEAD,
                &format!("/v2/{}/blobs/{digest}", self.repo),
                &[],
                bytes_body(Bytes::new()),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(registry_error(s, &[], &self.repo)),
        }
    }

    /// Monolithic upload: `POST /blobs/uploads/` then `PUT <location>?digest=` with `body`.
    pub async fn upload_blob(&self, digest: &str, size: u64, body: Body) -> Result<()> {
        let resp = self
            .request(
                Method::POST,
                &format!("/v2/{}/blobs/uploads/", self.repo),
                &[(CONTENT_LENGTH, "0".into())],
                bytes_body(Bytes::new()),
            )
            .await?;
        let status = resp.status();
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let rb = collect(resp).await?;
        if status != StatusCode::ACCEPTED {
            return Err(registry_error(status, &rb, &self.repo));
        }
        let loc = loc.ok_or_else(|| Error::Protocol("upload reply has no Location".into()))?;
        let base = url::Url::parse(&format!("{}/", self.base().await?))
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let mut u = base
            .join(&loc)
            .map_err(|e| Error::Protocol(format!("bad upload location {loc:?}: {e}")))?;
        if host_port(&u) != self.host {
            return Err(Error::Protocol(format!(
                "refusing upload location on another host: {u}"
            )));
        }
        u.query_pairs_mut().append_pair("digest", digest);
        let resp = self
            .request(
                Method::PUT,
                u.as_str(),
                &[
                    (CONTENT_LENGTH, size.to_string()),
                    (CONTENT_TYPE, "application/octet-stream".into()),
                ],
                body,
            )
            .await?;
        let status = resp.status();
        let rb = collect(resp).await?;
        if status != StatusCode::CREATED {
            return Err(registry_error(status, &rb, &self.repo));
        }
        Ok(())
    }

    /// `PUT /manifests/<reference>`; returns the manifest digest.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<String> {
        let digest = sha256_digest(&bytes);
        let resp = self
            .request(
                Method::PUT,
                &format!("/v2/{}/manifests/{reference}", self.repo),
                &[
                    (CONTENT_TYPE, media_type.to_string()),
                    (CONTENT_LENGTH, bytes.len().to_string()),
                ],
                bytes_body(bytes),
            )
            .await?;
        let status = resp.status();
        let rb = collect(resp).await?;
        if !status.is_success() {
            return Err(registry_error(status, &rb, &self.repo));
        }
        Ok(digest)
    }
}

fn host_port(u: &url::Url) -> String {
    let h = u.host_str().unwrap_or("");
    let h = if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_string()
    };
    match u.port() {
        Some(p) => format!("{h}:{p}"),
        None => h,
    }
}

fn status_text(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

/// Largest manifest or index accepted (containerd's limit too): a registry cannot make the
/// daemon buffer an unbounded reply.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Like [`collect`], refusing replies over `limit` bytes.
async fn collect_limited(resp: Response<Incoming>, limit: usize) -> Result<Bytes> {
    http_body_util::Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Error::Protocol(format!("manifest larger than {limit} bytes refused"))
            } else {
                Error::Transport(format!("error reading registry reply: {e}"))
            }
        })
}

async fn collect(resp: Response<Incoming>) -> Result<Bytes> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| Error::Transport(format!("error reading registry reply: {e}")))
}

/// Turns a registry error reply into dockerd's wording: `<code words>: <message>`.
fn registry_error(status: StatusCode, body: &[u8], repo: &str) -> Error {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        #[serde(default)]
        errors: Vec<E>,
    }
    let msg = serde_json::from_slice::<Es>(body)
        .ok()
        .and_then(|es| es.errors.into_iter().next())
        .map(|e| format!("{}: {}", e.code.to_lowercase().replace('_', " "), e.message))
        .unwrap_or_else(|| status_text(status));
    match status {
        StatusCode::NOT_FOUND => Error::NotFound(msg),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Error::Unauthorized(format!("access to {repo} denied: {msg}"))
        }
        _ => Error::Protocol(format!("registry answered {}: {msg}", status.as_u16())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5999"));
        assert!(is_loopback("127.3.4.5"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry-1.docker.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn registry_errors_read_like_dockerd() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        let e = registry_error(StatusCode::NOT_FOUND, body, "a/b");
        assert_eq!(e.to_string(), "manifest unknown: manifest unknown");
        assert!(matches!(e, Error::NotFound(_)));
    }

    #[test]
    fn https_registries_are_refused() {
        // https registries are clients too; only loopback and listed hosts may fall back to http.
        assert!(
            !Client::new("quay.io", "a/b", false, None, &[])
                .unwrap()
                .insecure
        );
        assert!(
            Client::new("quay.io", "a/b", false, None, &["quay.io".into()])
                .unwrap()
                .insecure
        );
        assert!(
            Client::new("127.0.0.1:5000", "a/b", false, None, &[])
                .unwrap()
                .insecure
        );
    }
}

/// GETs `url` (http or https, the host's CAs plus certs.d), following up to 5 redirects, and
/// returns the body (at most `limit` bytes): `docker build` remote contexts and `ADD <url>`.
pub async fn fetch_url(url: &str, limit: usize) -> Result<Bytes> {
    use http_body_util::BodyExt as _;
    let mut url = url.to_string();
    for _ in 0..6 {
        let uri: hyper::Uri = url.parse().map_err(|e| Error::Protocol(format!("invalid URL {url}: {e}")))?;
        let host = uri.host().unwrap_or("").to_string();
        let mut conn = HttpConnector::new();
        conn.enforce_http(false);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(&host)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(conn);
        let http: hyper_util::client::legacy::Client<_, Body> =
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(tls);
        let req = hyper::Request::get(&uri)
            .header(hyper::header::USER_AGENT, "berth")
            .body(bytes_body(Bytes::new()))
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let resp = http.request(req).await.map_err(|e| Error::Transport(format!("{url}: {e}")))?;
        let status = resp.status();
        if status.is_redirection() {
            let loc = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| Error::Protocol(format!("{url}: redirect without a location")))?;
            url = if loc.starts_with("http://") || loc.starts_with("https://") {
                loc.to_string()
            } else {
                format!("{}://{}{}", uri.scheme_str().unwrap_or("http"), uri.authority().map(|a| a.as_str()).unwrap_or(""), loc)
            };
            continue;
        }
        if !status.is_success() {
            return Err(Error::NotFound(format!("error downloading {url}: {status}")));
        }
        let body = http_body_util::Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| Error::Transport(format!("{url}: {e}")))?
            .to_bytes();
        return Ok(body);
    }
    Err(Error::Protocol(format!("{url}: too many redirects")))
}
