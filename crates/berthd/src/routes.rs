//! Routing: version prefix, method + path -> handler. Handlers parse the request at the edge
//! and call the engine; they never touch engine internals.

use std::sync::Arc;

use berth_engine::{Engine, Error, OutFrame, WaitCondition};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::http::*;
use crate::system;

/// Largest JSON request body accepted (a create body is ~2 KB).
const MAX_JSON_BODY: usize = 4 << 20;

pub async fn handle(engine: Arc<Engine>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    let (ver, rest) = split_version(&path);
    if let Some(v) = ver {
        if version_cmp(v, API_VERSION) == std::cmp::Ordering::Greater {
            return with_headers(message_reply(
                StatusCode::BAD_REQUEST,
                &format!(
                    "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                ),
            ));
        }
        if version_cmp(v, MIN_API_VERSION) == std::cmp::Ordering::Less {
            return with_headers(message_reply(
                StatusCode::BAD_REQUEST,
                &format!("client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"),
            ));
        }
    }
    let rest = rest.to_string();
    let method = req.method().clone();
    tracing::debug!("{method} {path}");
    let reply = match route(&engine, method, &rest, req).await {
        Ok(r) => r,
        Err(e) => error_reply(&e),
    };
    with_headers(reply)
}

fn with_headers(mut r: Reply) -> Reply {
    if r.status() == StatusCode::SWITCHING_PROTOCOLS {
        return r;
    }
    let h = r.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert(
        "Server",
        HeaderValue::from_str(&format!("Berth/{} (linux)", system::VERSION))
            .unwrap_or(HeaderValue::from_static("Berth")),
    );
    r
}

fn not_found() -> Error {
    Error::not_found("page not found")
}

/// A request body that could not be read: over the limit (413) or broken (400).
fn body_error(e: Box<dyn std::error::Error + Send + Sync>) -> Error {
    if e.is::<http_body_util::LengthLimitError>() {
        Error::new(
            berth_engine::ErrorKind::TooLarge,
            format!("request body is larger than the limit of {MAX_JSON_BODY} bytes"),
        )
    } else {
        Error::invalid(format!("error reading request body: {e}"))
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, Error> {
    if let Some(ct) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let base = ct.split(';').next().unwrap_or("").trim();
        if !base.is_empty() && base != "application/json" {
            return Err(Error::invalid(format!(
                "Content-Type specified ({ct}) must be 'application/json'"
            )));
        }
    }
    let limited = http_body_util::Limited::new(req.into_body(), MAX_JSON_BODY);
    let body = limited.collect().await.map_err(body_error)?.to_bytes();
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return serde_json::from_slice(b"{}").map_err(|e| Error::invalid(e.to_string()));
    }
    serde_json::from_slice(&body).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))
}

async fn route(
    engine: &Arc<Engine>,
    method: Method,
    path: &str,
    req: Request<Incoming>,
) -> Result<Reply, Error> {
    let q = Query::parse(req.uri().query());
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segs.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => {
            let mut r = Response::builder()
                .status(StatusCode::OK)
                .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                .header("Cache-Control", "no-cache, no-store, must-revalidate")
                .header("Pragma", "no-cache")
                .header("Builder-Version", "1")
                .header("Swarm", "inactive");
            if method == Method::GET {
                r = r.header("Content-Length", "2");
                return Ok(r.body(full("OK")).expect("static"));
            }
            Ok(r.header("Content-Length", "0")
                .body(empty_body())
                .expect("static"))
        }
        (&Method::GET, ["version"]) => Ok(ok_json(&system::version())),
        (&Method::GET, ["info"]) => Ok(ok_json(&system::info(engine))),
        (&Method::GET, ["events"]) => {
            let query = berth_engine::events::EventQuery {
                since: q.get("since").and_then(berth_engine::logs::parse_time),
                until: q.get("until").and_then(berth_engine::logs::parse_time),
                filters: q.filters()?,
            };
            Ok(json_lines_reply(engine.subscribe_events(query)))
        }

        // ---- images
        (&Method::POST, ["images", "create"]) => images_create(engine, q, req).await,
        (&Method::GET, ["images", "json"]) => {
            Ok(ok_json(&engine.list_images(q.bool("all"), &q.filters()?)?))
        }
        (&Method::GET, ["images", rest @ .., "json"]) if !rest.is_empty() => {
            Ok(ok_json(&engine.inspect_image(&rest.join("/"))?))
        }
        (&Method::GET, ["images", rest @ .., "history"]) if !rest.is_empty() => {
            Ok(ok_json(&engine.image_history_chain(&rest.join("/"))?))
        }
        (&Method::POST, ["images", rest @ .., "tag"]) if !rest.is_empty() => {
            engine.tag_image(
                &rest.join("/"),
                q.get("repo").unwrap_or(""),
                q.get("tag").unwrap_or(""),
            )?;
            Ok(status_only(StatusCode::CREATED))
        }
        (&Method::DELETE, ["images", rest @ ..]) if !rest.is_empty() => Ok(ok_json(
            &engine.remove_image(&rest.join("/"), q.bool("force"), q.bool("noprune"))?,
        )),

        // ---- containers
        (&Method::POST, ["containers", "create"]) => {
            let name = q.get("name").map(str::to_string);
            let body: berth_api_types::ContainerCreateRequest = read_json(req).await?;
            let (id, warnings) = engine.create_container(name.as_deref(), body).await?;
            Ok(json_reply(
                StatusCode::CREATED,
                &json!({"Id": id, "Warnings": warnings}),
            ))
        }
        (&Method::GET, ["containers", "json"]) => {
            let limit = q.int("limit")?;
            Ok(ok_json(&engine.list_containers(
                q.bool("all"),
                limit,
                &q.filters()?,
                q.bool("size"),
            )?))
        }
        (&Method::GET, ["containers", id, "json"]) => {
            Ok(ok_json(&engine.inspect_container(id, q.bool("size"))?))
        }
        (&Method::POST, ["containers", id, "start"]) => match engine.start_container(id).await {
            Ok(()) => Ok(status_only(StatusCode::NO_CONTENT)),
            Err(e) if e.kind == berth_engine::ErrorKind::NotModified => {
                Ok(status_only(StatusCode::NOT_MODIFIED))
            }
            Err(e) => Err(e),
        },
        (&Method::POST, ["containers", id, "stop"]) => {
            match engine
                .stop_container(id, q.int("t")?, q.get("signal"))
                .await
            {
                Ok(()) => Ok(status_only(StatusCode::NO_CONTENT)),
                Err(e) if e.kind == berth_engine::ErrorKind::NotModified => {
                    Ok(status_only(StatusCode::NOT_MODIFIED))
                }
                Err(e) => Err(e),
            }
        }
        (&Method::POST, ["containers", id, "restart"]) => {
            match engine
                .stop_container(id, q.int("t")?, q.get("signal"))
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind == berth_engine::ErrorKind::NotModified => {}
                Err(e) => return Err(e),
            }
            engine.start_container(id).await?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "kill"]) => {
            engine.kill_container(id, q.get("signal")).await?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "wait"]) => {
            let cond = WaitCondition::parse(q.get("condition"))?;
            let fut = engine.wait_container(id, cond)?;
            let (tx, rx) = mpsc::channel::<Bytes>(1);
            tokio::spawn(async move {
                let (code, err) = tokio::select! {
                    r = fut => r,
                    _ = tx.closed() => return,
                };
                let body = json!({
                    "Error": err.map(|m| json!({"Message": m})),
                    "StatusCode": code
                });
                let _ = tx.send(Bytes::from(format!("{body}\n"))).await;
            });
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(CONTENT_TYPE, "application/json")
                .body(channel_body(rx))
                .expect("static"))
        }
        (&Method::DELETE, ["containers", id]) => {
            engine
                .remove_container(id, q.bool("force"), q.bool("v"))
                .await?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "resize"]) => {
            let h = q.int("h")?.unwrap_or(0).max(0) as u32;
            let w = q.int("w")?.unwrap_or(0).max(0) as u32;
            engine.resize_container(id, h, w).await?;
            Ok(status_only(StatusCode::OK))
        }
        (&Method::POST, ["containers", id, "attach"]) => attach(engine, id, q, req).await,
        (&Method::POST, ["containers", id, "rename"]) => {
            engine
                .rename_container(id, q.get("name").unwrap_or(""))
                .await?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "pause"]) => {
            engine.pause_container(id).await?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "unpause"]) => {
            engine.unpause_container(id).await?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        (&Method::GET, ["containers", id, "stats"]) => {
            // `stream` defaults to true; docker-py sends `stream=0`, the CLI `stream=0|1`.
            let stream = q.get("stream").map(|_| q.bool("stream")).unwrap_or(true);
            Ok(json_lines_reply(
                engine
                    .container_stats(id, stream, q.bool("one-shot"))
                    .await?,
            ))
        }
        (&Method::GET, ["containers", id, "top"]) => {
            Ok(ok_json(&engine.top_container(id, q.get("ps_args")).await?))
        }
        (&Method::POST, ["containers", id, "update"]) => {
            let body: serde_json::Value = read_json(req).await?;
            Ok(ok_json(&engine.update_container(id, &body).await?))
        }
        (&Method::POST, ["containers", id, "exec"]) => {
            let cfg: berth_api_types::ExecConfig = read_json(req).await?;
            let eid = engine.exec_create(id, cfg)?;
            Ok(json_reply(StatusCode::CREATED, &json!({"Id": eid})))
        }
        (&Method::POST, ["exec", id, "start"]) => exec_start(engine, id, req).await,
        (&Method::GET, ["exec", id, "json"]) => Ok(ok_json(&engine.exec_inspect(id)?)),
        (&Method::POST, ["exec", id, "resize"]) => {
            let h = q.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
            let w = q.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
            engine.exec_resize(id, h, w)?;
            Ok(status_only(StatusCode::OK))
        }
        (&Method::GET, ["containers", id, "logs"]) => logs(engine, id, q).await,
        (&Method::POST, ["containers", "prune"]) => {
            Ok(ok_json(&engine.prune_containers(&q.filters()?).await?))
        }
        (m, s) if crate::routes_networks::handles(m, s) => {
            crate::routes_networks::route(engine, method.clone(), s, q, req).await
        }
        (&Method::POST, ["build", "prune"]) => crate::routes_build::prune(engine),
        (&Method::POST, ["build"]) => crate::routes_build::build(engine, q, req).await,
        (m, s) if crate::routes_volumes::handles(m, s) => {
            crate::routes_volumes::route(engine, method.clone(), s, q, req).await
        }
        (m, s) if crate::routes_archive::handles(m, s) => {
            crate::routes_archive::route(engine, method.clone(), s, q, req).await
        }
        (m, s) if crate::routes_images::handles(m, s) => {
            crate::routes_images::route(engine, method.clone(), s, q, req).await
        }
        (m, s) if crate::routes_registry::handles(m, s) => {
            crate::routes_registry::route(engine, s, q, req).await
        }
        _ => Err(not_found()),
    }
}

/// `POST /images/create`: import (`fromSrc`) or pull (`fromImage`, not available yet).
async fn images_create(
    engine: &Arc<Engine>,
    q: Query,
    req: Request<Incoming>,
) -> Result<Reply, Error> {
    if let Some(image) = q.get("fromImage") {
        return crate::routes_registry::pull(engine, &image.to_string(), &q, req).await;
    }
    let src = q.get("fromSrc").unwrap_or("");
    if src != "-" {
        return Err(Error::invalid(format!(
            "importing from {src:?} is not supported yet; send the tarball in the request body (fromSrc=-)"
        )));
    }
    let import = berth_engine::ImportRequest {
        repo: q.get("repo").unwrap_or("").to_string(),
        tag: q.get("tag").unwrap_or("").to_string(),
        message: q.get("message").unwrap_or("").to_string(),
        changes: q.all("changes"),
        platform: q.get("platform").unwrap_or("").to_string(),
    };
    // Validate before using the body (bad references and changes fail with 400). The body is
    // still read and discarded, so the client sees the error rather than a broken pipe.
    if let Err(e) = engine.validate_import(&import) {
        let mut body = req.into_body();
        while let Some(Ok(_)) = body.frame().await {}
        return Err(e);
    }
    let stream = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let id = engine.import_image(Box::new(reader), import).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let _ = tx
        .send(Bytes::from(format!("{}\n", json!({"status": id}))))
        .await;
    drop(tx);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .body(channel_body(rx))
        .expect("static"))
}

/// A `200 application/json` reply streaming one JSON object per line (events, stats).
fn json_lines_reply(mut rx: mpsc::Receiver<serde_json::Value>) -> Reply {
    let (tx, body) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            if tx.send(Bytes::from(format!("{v}\n"))).await.is_err() {
                break;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .body(channel_body(body))
        .expect("static")
}

/// Content type of a container stream: raw with a TTY, multiplexed (8-byte frame headers)
/// without one (API >= 1.42).
fn stream_content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// The `101 UPGRADED` reply of a hijacked attach or exec start.
fn upgraded_reply(tty: bool) -> Reply {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(CONTENT_TYPE, stream_content_type(tty))
        .header(CONNECTION, "Upgrade")
        .header(UPGRADE, "tcp")
        .body(empty_body())
        .expect("static")
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// `POST /containers/{id}/attach`: hijack the connection (101), then stream.
async fn attach(
    engine: &Arc<Engine>,
    id: &str,
    q: Query,
    req: Request<Incoming>,
) -> Result<Reply, Error> {
    let (container, mut att) = engine.attach_container(id)?;
    let detach_keys = parse_detach_keys(q.get("detachKeys").unwrap_or(""))?;
    let want_stdin = q.bool("stdin");
    let want_stdout = q.bool("stdout");
    let want_stderr = q.bool("stderr");
    let stream = q.bool("stream");
    let tty = att.tty;
    // `logs=1`: replay what the container already wrote before streaming live output.
    let replay = if q.bool("logs") {
        let opts = berth_engine::logs::LogOptions {
            stdout: want_stdout,
            stderr: want_stderr,
            ..Default::default()
        };
        Some(engine.container_logs(id, opts)?.1)
    } else {
        None
    };
    let engine = engine.clone();
    let upgrade = req.headers().get(UPGRADE).is_some();
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("attach upgrade failed: {e}");
                return;
            }
        };
        let io = TokioIo::new(upgraded);
        let (mut rd, mut wr) = tokio::io::split(io);
        if let Some(mut replay) = replay {
            while let Some(e) = replay.recv().await {
                let bytes = if tty {
                    e.data.into_bytes()
                } else {
                    frame(e.stream, e.data.as_bytes())
                };
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
        let detached = Arc::new(tokio::sync::Notify::new());
        if want_stdin {
            let engine = engine.clone();
            let c = container.clone();
            let stdin_once = att.stdin_once;
            let detached = detached.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                let mut esc = EscapeMatcher::new(detach_keys);
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let (out, hit) = esc.feed(&buf[..n]);
                            if !out.is_empty() && engine.write_stdin(&c, Some(&out)).await.is_err()
                            {
                                break;
                            }
                            if hit {
                                // Detach: the container keeps its stdin open, as in dockerd.
                                detached.notify_one();
                                return;
                            }
                        }
                    }
                }
                // As dockerd: the end of the client's stdin closes the container's stdin
                // (StdinOnce) only without a TTY; with one it ends this attach session and
                // the container keeps its terminal (the docker CLI handles detach keys itself
                // and then half-closes).
                if tty {
                    detached.notify_one();
                } else if stdin_once {
                    let _ = engine.write_stdin(&c, None).await;
                }
            });
        }
        if stream && !att.finished {
            loop {
                let next = tokio::select! {
                    r = att.output.recv() => r,
                    _ = detached.notified() => break,
                };
                match next {
                    Ok(OutFrame::Data(s, b)) => {
                        if (s == 1 && !want_stdout) || (s == 2 && !want_stderr) {
                            continue;
                        }
                        let bytes = if tty { b.to_vec() } else { frame(s, &b) };
                        if wr.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Ok(OutFrame::End) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                }
            }
        }
        let _ = wr.flush().await;
        let _ = wr.shutdown().await;
    });
    if upgrade {
        Ok(upgraded_reply(tty))
    } else {
        // Without Upgrade, hyper cannot hand us the connection; dockerd then answers 200 and
        // streams. Clients that matter (docker CLI, docker-py) always ask for the upgrade.
        Err(Error::invalid(
            "attach requires a connection upgrade (Upgrade: tcp)",
        ))
    }
}

/// `detachKeys` (`ctrl-p,ctrl-q` when empty): the byte sequence that detaches an attach.
fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, Error> {
    let spec = if spec.is_empty() {
        "ctrl-p,ctrl-q"
    } else {
        spec
    };
    let mut out = Vec::new();
    for k in spec.split(',') {
        let b = match k.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => {
                let ch = c.as_bytes()[0].to_ascii_lowercase();
                match ch {
                    b'a'..=b'z' => ch - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => {
                        return Err(Error::invalid(format!(
                            "Invalid detach keys ({spec}) provided"
                        )))
                    }
                }
            }
            None if k.len() == 1 => k.as_bytes()[0],
            _ => {
                return Err(Error::invalid(format!(
                    "Invalid detach keys ({spec}) provided"
                )))
            }
        };
        out.push(b);
    }
    Ok(out)
}

/// Holds back bytes that may start the detach sequence; releases them when the sequence
/// breaks off.
struct EscapeMatcher {
    keys: Vec<u8>,
    held: usize,
}

impl EscapeMatcher {
    fn new(keys: Vec<u8>) -> Self {
        EscapeMatcher { keys, held: 0 }
    }

    /// Returns the bytes to forward and whether the whole sequence was seen.
    fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    self.held = 0;
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.held]);
                self.held = 0;
                if b == self.keys[0] {
                    self.held = 1;
                    if self.keys.len() == 1 {
                        self.held = 0;
                        return (out, true);
                    }
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod detach_tests {
    use super::*;

    #[test]
    fn escape_sequences() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys("ctrl-ab").is_err());
        let mut m = EscapeMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(m.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(m.feed(b"x\x10\x10\x11rest"), (b"x\x10".to_vec(), true));
    }
}

/// `POST /exec/{id}/start`: detached (200, empty) or hijacked (101) with the process's
/// stdout/stderr framed as in attach.
async fn exec_start(
    engine: &Arc<Engine>,
    id: &str,
    req: Request<Incoming>,
) -> Result<Reply, Error> {
    let upgrade = req.headers().get(UPGRADE).is_some();
    let (parts, body) = req.into_parts();
    let bytes = http_body_util::Limited::new(body, MAX_JSON_BODY)
        .collect()
        .await
        .map_err(|e| Error::invalid(format!("error reading request body: {e}")))?
        .to_bytes();
    let start: serde_json::Value = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        json!({})
    } else {
        serde_json::from_slice(&bytes).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?
    };
    let detach = start
        .get("Detach")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let mut io = engine.exec_start(id).await?;
    if detach {
        tokio::spawn(async move {
            // Nobody reads a detached exec's output; drain it so the process never blocks.
            let out = io.stdout.take();
            let err = io.stderr.take();
            tokio::spawn(async move {
                if let Some(mut o) = out {
                    let _ = tokio::io::copy(&mut o, &mut tokio::io::sink()).await;
                }
            });
            tokio::spawn(async move {
                if let Some(mut e) = err {
                    let _ = tokio::io::copy(&mut e, &mut tokio::io::sink()).await;
                }
            });
            io.wait().await;
        });
        return Ok(status_only(StatusCode::OK));
    }
    if !upgrade {
        return Err(Error::invalid(
            "exec start requires a connection upgrade (Upgrade: tcp)",
        ));
    }
    let req = Request::from_parts(parts, http_body_util::Empty::<Bytes>::new());
    let tty = io.tty;
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(_) => return,
        };
        let (mut rd, wr) = tokio::io::split(TokioIo::new(upgraded));
        let wr = Arc::new(tokio::sync::Mutex::new(wr));
        if let Some(mut stdin) = io.stdin.take() {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut rd, &mut stdin).await;
                let _ = stdin.shutdown().await;
            });
        }
        let pump = |src: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>, stream: u8| {
            let wr = wr.clone();
            tokio::spawn(async move {
                let Some(mut src) = src else { return };
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match src.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let bytes = if tty {
                                buf[..n].to_vec()
                            } else {
                                frame(stream, &buf[..n])
                            };
                            if wr.lock().await.write_all(&bytes).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            })
        };
        let out = pump(io.stdout.take(), 1);
        let err = pump(io.stderr.take(), 2);
        let _ = out.await;
        let _ = err.await;
        let (_, failure) = io.wait().await;
        let mut w = wr.lock().await;
        if let Some(msg) = failure {
            let bytes = if tty {
                msg.into_bytes()
            } else {
                frame(1, msg.as_bytes())
            };
            let _ = w.write_all(&bytes).await;
        }
        let _ = w.flush().await;
        let _ = w.shutdown().await;
    });
    Ok(upgraded_reply(tty))
}

/// `GET /containers/{id}/logs`.
async fn logs(engine: &Arc<Engine>, id: &str, q: Query) -> Result<Reply, Error> {
    let stdout = q.bool("stdout");
    let stderr = q.bool("stderr");
    if !stdout && !stderr {
        return Err(Error::invalid(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail") {
        None | Some("") | Some("all") => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return Err(Error::invalid(format!("invalid value for \"tail\": {s:?}"))),
        },
    };
    let opts = berth_engine::logs::LogOptions {
        stdout,
        stderr,
        follow: q.bool("follow"),
        timestamps: q.bool("timestamps"),
        tail,
        since: q.get("since").and_then(berth_engine::logs::parse_time),
        until: q.get("until").and_then(berth_engine::logs::parse_time),
        details: q.bool("details"),
    };
    let (tty, mut rx) = engine.container_logs(id, opts.clone())?;
    let (tx, body_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            // Whatever is already queued goes out in the same chunk (up to 64 KiB).
            let mut bytes = Vec::new();
            let mut next = Some(e);
            while let Some(e) = next.take() {
                let text = opts.render(&e);
                if tty {
                    bytes.extend_from_slice(text.as_bytes());
                } else {
                    bytes.extend_from_slice(&frame(e.stream, text.as_bytes()));
                }
                if bytes.len() < 64 * 1024 {
                    next = rx.try_recv().ok();
                }
            }
            if tx.send(Bytes::from(bytes)).await.is_err() {
                break;
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, stream_content_type(tty))
        .body(channel_body(body_rx))
        .expect("static"))
}
