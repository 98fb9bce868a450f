//! berth-client: a Docker Engine API client over a Unix socket.
//!
//! Used by the `berth` CLI and by tests. It speaks the same wire protocol as the docker CLI
//! (see `docs/DESIGN.md` and the `cli-endpoints.md` reference): `HEAD /_ping` version
//! negotiation, `/vX.Y/` prefixes, JSON bodies, chunked upload bodies, JSON-lines progress
//! streams and hijacked (101 Upgrade) attach streams with the 8-byte frame header demuxer.

mod api;
mod api_more;
mod body;
mod error;
pub mod frames;
mod host;
mod tls;

pub use api::*;
pub use api_more::*;
pub use body::{BodyChunks, JsonLines, ReqBody};
pub use error::{Error, Result};
pub use frames::{encode_frame, Frame, FrameDecoder, FrameError, StreamKind};
pub use host::{parse_host, DEFAULT_SOCKET};
pub use tls::TlsOptions;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, HOST, UPGRADE, USER_AGENT};
pub use hyper::Method;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The highest API version this client speaks.
pub const MAX_API_VERSION: &str = "1.47";
/// The version assumed when the daemon's ping carries no `Api-Version` header (as docker does).
pub const FALLBACK_API_VERSION: &str = "1.24";
/// Client version string reported by `berth version` and in the User-Agent.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A connection to the daemon: Unix socket, TCP, or TLS over TCP.
pub(crate) trait Conn: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Conn for T {}

/// A raw bidirectional stream obtained by hijacking an HTTP connection (attach).
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// Information returned by `/_ping`.
#[derive(Debug, Clone, Default)]
pub struct PingInfo {
    pub api_version: Option<String>,
    pub os_type: Option<String>,
    pub experimental: bool,
    /// The `Server` header (`Berth/0.1.0 (linux)`, `Docker/20.10.24 (linux)`).
    pub server: Option<String>,
}

/// An API client bound to one daemon socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    /// `host:port` for a `tcp://` daemon (then `socket` is unused).
    tcp: Option<String>,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    api_version: String,
    negotiated: bool,
    server_api_version: Option<String>,
    server: Option<String>,
}

/// Parse "1.41" into (1, 41) for comparison.
pub fn parse_api_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// min(server, client max) like the docker CLI; server versions that do not parse fall back
/// to our maximum.
pub fn negotiate_version(server: Option<&str>) -> String {
    let Some(server) = server else {
        return FALLBACK_API_VERSION.to_string();
    };
    match (
        parse_api_version(server),
        parse_api_version(MAX_API_VERSION),
    ) {
        (Some(s), Some(m)) if s < m => format!("{}.{}", s.0, s.1),
        _ => MAX_API_VERSION.to_string(),
    }
}

/// Encode query pairs (`a=1&b=x%20y`), with a leading `?` when non-empty.
pub fn query_string<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut ser = url::form_urlencoded::Serializer::for_suffix(String::from("?"), 1);
    for (k, v) in pairs {
        ser.append_pair(k.as_ref(), v.as_ref());
    }
    // form_urlencoded writes spaces as '+', which Go's query parser also accepts.
    ser.finish()
}

/// Escape a user-supplied name/reference for use as a single path segment. Keeps ':' and '/'
/// (docker sends image references like `busybox:latest` and `library/x` verbatim).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b':'
            | b'/'
            | b'@'
            | b'+' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Client {
    /// A client for an explicit host (`unix:///path`), or `DOCKER_HOST`, or the default socket.
    pub fn new(host: Option<&str>) -> Result<Self> {
        Self::new_with_tls(host, None)
    }

    /// Like `new`, and `tcp://host:port` addresses too (TLS when `tls` is given, as the docker
    /// CLI's `--tls`/`--tlsverify`).
    pub fn new_with_tls(host: Option<&str>, tls: Option<&TlsOptions>) -> Result<Self> {
        let env = std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty());
        let h = host.map(str::to_string).or(env);
        if let Some(addr) = h.as_deref().and_then(|h| h.trim().strip_prefix("tcp://")) {
            let addr = addr.trim_end_matches('/').to_string();
            if addr.is_empty() || !addr.contains(':') {
                return Err(Error::InvalidHost {
                    host: h.clone().unwrap_or_default(),
                    reason: "expected tcp://HOST:PORT".into(),
                });
            }
            let mut c = Self::with_socket(PathBuf::new());
            c.tcp = Some(addr);
            c.tls = tls.map(tls::client_config).transpose()?;
            return Ok(c);
        }
        let socket = match h {
            Some(h) => parse_host(&h)?,
            None => PathBuf::from(DEFAULT_SOCKET),
        };
        Ok(Self::with_socket(socket))
    }

    /// `new_with_tls` and negotiate.
    pub async fn connect_with_tls(host: Option<&str>, tls: Option<&TlsOptions>) -> Result<Self> {
        let mut c = Self::new_with_tls(host, tls)?;
        c.negotiate().await?;
        Ok(c)
    }

    /// True for a `tcp://` daemon address.
    pub fn is_tcp(&self) -> bool {
        self.tcp.is_some()
    }

    /// A client for a socket path; not yet negotiated (uses the client maximum version).
    pub fn with_socket(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
            tcp: None,
            tls: None,
            api_version: MAX_API_VERSION.to_string(),
            negotiated: false,
            server_api_version: None,
            server: None,
        }
    }

    /// Create a client and negotiate the API version in one step.
    pub async fn connect(host: Option<&str>) -> Result<Self> {
        let mut c = Self::new(host)?;
        c.negotiate().await?;
        Ok(c)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix:///path` form of the daemon address.
    pub fn host_url(&self) -> String {
        match &self.tcp {
            Some(a) => format!("tcp://{a}"),
            None => format!("unix://{}", self.socket.display()),
        }
    }

    /// The API version used as path prefix.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The version the server advertised at ping time, if negotiated.
    pub fn server_api_version(&self) -> Option<&str> {
        self.server_api_version.as_deref()
    }

    /// The daemon's `Server` header from the ping, if negotiated.
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// Pin the API version instead of negotiating.
    pub fn set_api_version(&mut self, v: &str) {
        self.api_version = v.to_string();
        self.negotiated = true;
    }

    /// `HEAD /_ping` (falling back to GET on 405), then pick min(server, ours).
    pub async fn negotiate(&mut self) -> Result<PingInfo> {
        let info = self.ping().await?;
        self.server_api_version = info.api_version.clone();
        self.server = info.server.clone();
        self.api_version = negotiate_version(info.api_version.as_deref());
        self.negotiated = true;
        Ok(info)
    }

    /// Ping the daemon (unversioned path). Any status carrying `Api-Version` counts as alive.
    pub async fn ping(&self) -> Result<PingInfo> {
        let first = self
            .raw(Method::HEAD, "/_ping", None, ReqBody::empty())
            .await;
        let mut resp = match (first, &self.tcp) {
            // With TLS 1.3 a refused client certificate shows up on the first request, not in
            // the handshake: report it as the connection failure it is.
            (Err(Error::Http { source, .. }), Some(addr)) => {
                let mut msg = source.to_string();
                let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(&source);
                while let Some(e) = cur {
                    msg.push_str(": ");
                    msg.push_str(&e.to_string());
                    cur = e.source();
                }
                return Err(Error::ConnectTcp {
                    addr: addr.clone(),
                    source: std::io::Error::other(msg),
                });
            }
            (r, _) => r?,
        };
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
            resp = self
                .raw(Method::GET, "/_ping", None, ReqBody::empty())
                .await?;
        }
        let h = resp.headers();
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let info = PingInfo {
            api_version: get("api-version"),
            os_type: get("ostype"),
            experimental: get("docker-experimental").as_deref() == Some("true"),
            server: get("server"),
        };
        if !resp.status().is_success() && info.api_version.is_none() {
            return Err(error_from_response(resp, "/_ping").await);
        }
        Ok(info)
    }

    /// Versioned path for an API route (`/containers/json` -> `/v1.41/containers/json`).
    pub fn versioned(&self, path: &str) -> String {
        format!("/v{}{}", self.api_version, path)
    }

    async fn connect_stream(
        &self,
        broken: std::sync::Arc<std::sync::atomic::AtomicBool>,
        swallow: bool,
    ) -> Result<TokioIo<body::EarlyReplyIo<Box<dyn Conn>>>> {
        let s: Box<dyn Conn> = match &self.tcp {
            None => Box::new(
                tokio::net::UnixStream::connect(&self.socket)
                    .await
                    .map_err(|source| Error::Connect {
                        socket: self.socket.clone(),
                        source,
                    })?,
            ),
            Some(addr) => {
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|source| Error::ConnectTcp {
                        addr: addr.clone(),
                        source,
                    })?;
                let _ = tcp.set_nodelay(true);
                match &self.tls {
                    None => Box::new(tcp),
                    Some(cfg) => {
                        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
                        let host = host.trim_start_matches('[').trim_end_matches(']');
                        let name = rustls::pki_types::ServerName::try_from(host.to_string())
                            .map_err(|e| Error::InvalidHost {
                                host: addr.clone(),
                                reason: e.to_string(),
                            })?;
                        let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                            .connect(name, tcp)
                            .await
                            .map_err(|source| Error::ConnectTcp {
                                addr: addr.clone(),
                                source,
                            })?;
                        Box::new(tls)
                    }
                }
            }
        };
        Ok(TokioIo::new(body::EarlyReplyIo {
            inner: s,
            broken,
            swallow,
        }))
    }

    /// Send one request on a fresh connection (paths are used as given; no version prefix).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: ReqBody,
    ) -> Result<Response<Incoming>> {
        let req = self.build(method, path, content_type, body, false)?;
        self.send(req, path).await
    }

    /// Versioned request with extra headers (`X-Registry-Auth`, ...); non-2xx become
    /// `Error::Api`.
    pub async fn request_with_headers(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, String)],
        body: ReqBody,
    ) -> Result<Response<Incoming>> {
        let full = self.versioned(path);
        let mut req = self.build(method, &full, content_type, body, false)?;
        for (k, v) in headers {
            let name = hyper::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| {
                Error::Request {
                    path: path.to_string(),
                    source: e.into(),
                }
            })?;
            let val = HeaderValue::from_str(v).map_err(|e| Error::Request {
                path: path.to_string(),
                source: e.into(),
            })?;
            req.headers_mut().insert(name, val);
        }
        let resp = self.send(req, &full).await?;
        check(resp, path).await
    }

    /// Hijack with a JSON body (`POST /exec/{id}/start`).
    pub async fn hijack_json(&self, path: &str, body: &serde_json::Value) -> Result<Hijacked> {
        let full = self.versioned(path);
        let data = serde_json::to_vec(body).map_err(|source| Error::Decode {
            context: format!("encoding body of {path}"),
            source,
        })?;
        let req = self.build(
            Method::POST,
            &full,
            Some("application/json"),
            ReqBody::full(data),
            true,
        )?;
        self.upgrade(req, path).await
    }

    async fn upgrade(&self, req: Request<ReqBody>, path: &str) -> Result<Hijacked> {
        let resp = self.send(req, path).await?;
        let status = resp.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            if !status.is_success() {
                return Err(error_from_response(resp, path).await);
            }
            return Err(Error::NoUpgrade {
                status: status.as_u16(),
            });
        }
        let up = hyper::upgrade::on(resp)
            .await
            .map_err(|e| Error::http(format!("upgrading {path}"), e))?;
        Ok(TokioIo::new(up))
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: ReqBody,
        upgrade: bool,
    ) -> Result<Request<ReqBody>> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "api.moby.localhost")
            .header(USER_AGENT, format!("Berth-Client/{CLIENT_VERSION} (linux)"));
        if let Some(ct) = content_type {
            b = b.header(CONTENT_TYPE, ct);
        }
        if upgrade {
            b = b.header(CONNECTION, "Upgrade").header(UPGRADE, "tcp");
        }
        b.body(body).map_err(|source| Error::Request {
            path: path.to_string(),
            source,
        })
    }

    async fn send(&self, mut req: Request<ReqBody>, path: &str) -> Result<Response<Incoming>> {
        // Only streamed uploads tolerate the daemon closing early; for everything else a
        // flag nobody sets keeps write errors as they are.
        let flag = req.body().abort_flag();
        let io = match &flag {
            Some(f) => self.connect_stream(f.clone(), true).await?,
            None => {
                let never = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                self.connect_stream(never, false).await?
            }
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| Error::http(format!("handshake for {path}"), e))?;
        tokio::spawn(async move {
            // The connection future ends when the response body is done (or the stream was
            // upgraded); errors surface on the response side.
            let _ = conn.with_upgrades().await;
        });
        // Empty POSTs get an explicit Content-Length: 0, like the Go client.
        if req.body().is_empty_known()
            && !req.headers().contains_key(hyper::header::CONTENT_LENGTH)
            && req.method() != Method::GET
            && req.method() != Method::HEAD
        {
            req.headers_mut()
                .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        sender
            .send_request(req)
            .await
            .map_err(|e| Error::http(format!("request {path}"), e))
    }

    /// Versioned request; non-2xx statuses become `Error::Api`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: ReqBody,
    ) -> Result<Response<Incoming>> {
        let full = self.versioned(path);
        let resp = self.raw(method, &full, content_type, body).await?;
        check(resp, path).await
    }

    /// GET and decode JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self
            .request(Method::GET, path, None, ReqBody::empty())
            .await?;
        decode(resp, path).await
    }

    /// POST a JSON body and decode a JSON reply.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let data = serde_json::to_vec(body).map_err(|source| Error::Decode {
            context: format!("encoding body of {path}"),
            source,
        })?;
        let resp = self
            .request(
                Method::POST,
                path,
                Some("application/json"),
                ReqBody::full(data),
            )
            .await?;
        decode(resp, path).await
    }

    /// POST with an empty body; returns the (already status-checked) response.
    pub async fn post_empty(&self, path: &str) -> Result<Response<Incoming>> {
        self.request(Method::POST, path, None, ReqBody::empty())
            .await
    }

    /// POST with an empty body and discard the reply body.
    pub async fn post_ok(&self, path: &str) -> Result<()> {
        let resp = self.post_empty(path).await?;
        read_body(resp, path).await.map(|_| ())
    }

    /// DELETE and return the reply body.
    pub async fn delete(&self, path: &str) -> Result<Bytes> {
        let resp = self
            .request(Method::DELETE, path, None, ReqBody::empty())
            .await?;
        read_body(resp, path).await
    }

    /// POST with a streamed (chunked) body read from `reader`; the reply is JSON lines.
    pub async fn post_reader<R>(
        &self,
        path: &str,
        content_type: &str,
        reader: R,
    ) -> Result<JsonLines>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
    {
        let resp = self
            .request(
                Method::POST,
                path,
                Some(content_type),
                ReqBody::from_reader(reader),
            )
            .await?;
        Ok(JsonLines::new(resp.into_body()))
    }

    /// Hijack: POST with `Connection: Upgrade` / `Upgrade: tcp`, require 101, return the raw
    /// stream. Errors before the upgrade come back as `Error::Api`.
    pub async fn hijack(&self, path: &str) -> Result<Hijacked> {
        let full = self.versioned(path);
        let req = self.build(
            Method::POST,
            &full,
            Some("text/plain"),
            ReqBody::empty(),
            true,
        )?;
        let resp = self.send(req, path).await?;
        let status = resp.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            if !status.is_success() {
                return Err(error_from_response(resp, path).await);
            }
            return Err(Error::NoUpgrade {
                status: status.as_u16(),
            });
        }
        let up = hyper::upgrade::on(resp)
            .await
            .map_err(|e| Error::http(format!("upgrading {path}"), e))?;
        Ok(TokioIo::new(up))
    }
}

/// Turn a non-success response into `Error::Api`; success passes through.
pub async fn check(resp: Response<Incoming>, context: &str) -> Result<Response<Incoming>> {
    if resp.status().is_success() || resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        Ok(resp)
    } else {
        Err(error_from_response(resp, context).await)
    }
}

/// Build an `Error::Api` from an error reply (`{"message": ...}` or plain text).
pub async fn error_from_response(resp: Response<Incoming>, context: &str) -> Error {
    let status = resp.status();
    let body = match read_body(resp, context).await {
        Ok(b) => b,
        Err(e) => return e,
    };
    #[derive(serde::Deserialize)]
    struct Msg {
        message: String,
    }
    let message = match serde_json::from_slice::<Msg>(&body) {
        Ok(m) => m.message,
        Err(_) => {
            let t = String::from_utf8_lossy(&body).trim().to_string();
            if t.is_empty() {
                format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("error")
                )
            } else {
                t
            }
        }
    };
    Error::Api {
        status: status.as_u16(),
        message,
    }
}

/// Read a whole response body.
pub async fn read_body(resp: Response<Incoming>, context: &str) -> Result<Bytes> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| Error::http(format!("reading reply of {context}"), e))
}

/// Read a whole response body as JSON.
pub async fn decode<T: DeserializeOwned>(resp: Response<Incoming>, context: &str) -> Result<T> {
    let body = read_body(resp, context).await?;
    serde_json::from_slice(&body).map_err(|source| Error::Decode {
        context: context.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_the_minimum() {
        assert_eq!(negotiate_version(Some("1.41")), "1.41");
        assert_eq!(negotiate_version(Some("1.99")), MAX_API_VERSION);
        assert_eq!(negotiate_version(Some("1.47")), "1.47");
        assert_eq!(negotiate_version(Some("1.9")), "1.9");
        assert_eq!(negotiate_version(Some("2.0")), MAX_API_VERSION);
        assert_eq!(negotiate_version(None), "1.24");
    }

    #[test]
    fn query_encoding() {
        assert_eq!(query_string::<&str, &str>(&[]), "");
        assert_eq!(
            query_string(&[("changes", "CMD [\"sh\"]"), ("fromSrc", "-")]),
            "?changes=CMD+%5B%22sh%22%5D&fromSrc=-"
        );
        assert_eq!(path_segment("busybox:latest"), "busybox:latest");
        assert_eq!(path_segment("a b?#"), "a%20b%3F%23");
    }
}
