//! Typed convenience wrappers for the endpoints the `berth` CLI uses.

use crate::body::{BodyChunks, JsonLines};
use crate::error::{Error, Result};
use crate::frames::{FrameDecoder, StreamKind};
use crate::{decode, path_segment, query_string, Client};
use hyper::body::Incoming;
use hyper::{Method, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `POST /containers/create` reply.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateResponse {
    pub id: String,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

/// `POST /containers/{id}/wait` reply.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WaitResponse {
    #[serde(rename = "StatusCode")]
    pub status_code: i64,
    #[serde(rename = "Error", default)]
    pub error: Option<WaitError>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WaitError {
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// A pending wait: the reply headers have arrived (so it is safe to start the container); the
/// body arrives when the condition is met.
pub struct WaitHandle {
    resp: Response<Incoming>,
    context: String,
}

impl WaitHandle {
    pub async fn result(self) -> Result<WaitResponse> {
        decode(self.resp, &self.context).await
    }
}

/// Query options for `GET /containers/json`.
#[derive(Debug, Clone, Default)]
pub struct ListContainersOptions {
    pub all: bool,
    pub limit: Option<i64>,
    pub size: bool,
    /// Filters in the Go CLI's map form, e.g. `{"status":{"exited":true}}`.
    pub filters: Option<Value>,
}

/// Query options for `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub timestamps: bool,
    /// `all` or a number.
    pub tail: Option<String>,
    /// Unix seconds (may have a fractional part), as the CLI sends.
    pub since: Option<String>,
    pub until: Option<String>,
    /// `details=1`: extra attributes (log labels/env) before each line.
    pub details: bool,
}

/// Options for `POST /images/create?fromSrc=-`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `repo[:tag]`; docker puts the tag inside `repo`.
    pub repo: Option<String>,
    pub message: Option<String>,
    pub changes: Vec<String>,
}

fn b(v: bool) -> &'static str {
    if v {
        "1"
    } else {
        "0"
    }
}

impl Client {
    /// `GET /version`.
    pub async fn version(&self) -> Result<Value> {
        self.get_json("/version").await
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<Value> {
        self.get_json("/info").await
    }

    /// `GET /containers/json`.
    pub async fn list_containers(&self, opts: &ListContainersOptions) -> Result<Vec<Value>> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if opts.all {
            q.push(("all", "1".into()));
        }
        if let Some(f) = &opts.filters {
            q.push(("filters", f.to_string()));
        }
        if let Some(l) = opts.limit {
            q.push(("limit", l.to_string()));
        }
        if opts.size {
            q.push(("size", "1".into()));
        }
        self.get_json(&format!("/containers/json{}", query_string(&q)))
            .await
    }

    /// `POST /containers/create[?name=]`.
    pub async fn create_container(
        &self,
        name: Option<&str>,
        body: &Value,
    ) -> Result<CreateResponse> {
        let q = match name {
            Some(n) => query_string(&[("name", n)]),
            None => String::new(),
        };
        self.post_json(&format!("/containers/create{q}"), body)
            .await
    }

    /// `GET /containers/{id}/json`.
    pub async fn inspect_container(&self, id: &str) -> Result<Value> {
        self.get_json(&format!("/containers/{}/json", path_segment(id)))
            .await
    }

    /// `POST /containers/{id}/start`.
    pub async fn start_container(&self, id: &str) -> Result<()> {
        self.post_ok(&format!("/containers/{}/start", path_segment(id)))
            .await
    }

    /// `POST /containers/{id}/stop[?t=]`.
    pub async fn stop_container(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        let q = match timeout {
            Some(t) => query_string(&[("t", t.to_string())]),
            None => String::new(),
        };
        self.post_ok(&format!("/containers/{}/stop{q}", path_segment(id)))
            .await
    }

    /// `POST /containers/{id}/kill[?signal=]`.
    pub async fn kill_container(&self, id: &str, signal: Option<&str>) -> Result<()> {
        let q = match signal {
            Some(s) => query_string(&[("signal", s)]),
            None => String::new(),
        };
        self.post_ok(&format!("/containers/{}/kill{q}", path_segment(id)))
            .await
    }

    /// `DELETE /containers/{id}[?force=1&v=1]`.
    pub async fn remove_container(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let mut q: Vec<(&str, &str)> = Vec::new();
        if force {
            q.push(("force", "1"));
        }
        if volumes {
            q.push(("v", "1"));
        }
        self.delete(&format!(
            "/containers/{}{}",
            path_segment(id),
            query_string(&q)
        ))
        .await
        .map(|_| ())
    }

    /// `POST /containers/{id}/wait[?condition=]`; returns once the reply headers arrived.
    pub async fn wait_container(&self, id: &str, condition: Option<&str>) -> Result<WaitHandle> {
        let q = match condition {
            Some(c) => query_string(&[("condition", c)]),
            None => String::new(),
        };
        let path = format!("/containers/{}/wait{q}", path_segment(id));
        let resp = self.post_empty(&path).await?;
        Ok(WaitHandle {
            resp,
            context: path,
        })
    }

    /// `POST /containers/{id}/attach?stream=1&...` hijacked.
    pub async fn attach_container(
        &self,
        id: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<crate::Hijacked> {
        self.attach_container_keys(id, stdin, stdout, stderr, None)
            .await
    }

    /// Attach with `detachKeys=` (the daemon ends the stream when it reads them).
    pub async fn attach_container_keys(
        &self,
        id: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        detach_keys: Option<&str>,
    ) -> Result<crate::Hijacked> {
        let mut q: Vec<(&str, &str)> = Vec::new();
        if let Some(k) = detach_keys {
            q.push(("detachKeys", k));
        }
        if stderr {
            q.push(("stderr", "1"));
        }
        if stdin {
            q.push(("stdin", "1"));
        }
        if stdout {
            q.push(("stdout", "1"));
        }
        q.push(("stream", "1"));
        self.hijack(&format!(
            "/containers/{}/attach{}",
            path_segment(id),
            query_string(&q)
        ))
        .await
    }

    /// `POST /containers/{id}/resize?h=&w=`.
    pub async fn resize_container(&self, id: &str, h: u16, w: u16) -> Result<()> {
        self.post_ok(&format!(
            "/containers/{}/resize{}",
            path_segment(id),
            query_string(&[("h", h.to_string()), ("w", w.to_string())])
        ))
        .await
    }

    /// `GET /containers/{id}/logs` as raw chunks (framed unless the container has a TTY).
    pub async fn container_logs(&self, id: &str, opts: &LogsOptions) -> Result<BodyChunks> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if opts.details {
            q.push(("details", "1".into()));
        }
        if opts.follow {
            q.push(("follow", "1".into()));
        }
        if let Some(s) = &opts.since {
            q.push(("since", s.clone()));
        }
        q.push(("stderr", "1".into()));
        q.push(("stdout", "1".into()));
        q.push(("tail", opts.tail.clone().unwrap_or_else(|| "all".into())));
        if opts.timestamps {
            q.push(("timestamps", "1".into()));
        }
        if let Some(u) = &opts.until {
            q.push(("until", u.clone()));
        }
        let path = format!("/containers/{}/logs{}", path_segment(id), query_string(&q));
        let resp = self
            .request(Method::GET, &path, None, crate::ReqBody::empty())
            .await?;
        Ok(BodyChunks::new(resp.into_body()))
    }

    /// `GET /images/json[?all=1]`.
    pub async fn list_images(&self, all: bool) -> Result<Vec<Value>> {
        let q = if all { "?all=1" } else { "" };
        self.get_json(&format!("/images/json{q}")).await
    }

    /// `GET /images/{name}/json`.
    pub async fn inspect_image(&self, name: &str) -> Result<Value> {
        self.get_json(&format!("/images/{}/json", path_segment(name)))
            .await
    }

    /// `POST /images/create?fromSrc=-` with the tar streamed (chunked) from `reader`.
    pub async fn import_image<R>(&self, reader: R, opts: &ImportOptions) -> Result<JsonLines>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let mut q: Vec<(&str, String)> = Vec::new();
        for c in &opts.changes {
            q.push(("changes", c.clone()));
        }
        q.push(("fromSrc", "-".into()));
        if let Some(m) = &opts.message {
            q.push(("message", m.clone()));
        }
        if let Some(r) = &opts.repo {
            q.push(("repo", r.clone()));
        }
        self.post_reader(
            &format!("/images/create{}", query_string(&q)),
            "text/plain",
            reader,
        )
        .await
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    pub async fn tag_image(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let mut q = vec![("repo", repo)];
        if let Some(t) = tag {
            q.push(("tag", t));
        }
        let path = format!("/images/{}/tag{}", path_segment(name), query_string(&q));
        let resp = self
            .request(Method::POST, &path, None, crate::ReqBody::empty())
            .await?;
        crate::read_body(resp, &path).await.map(|_| ())
    }

    /// `DELETE /images/{name}` -> `[{"Untagged":..},{"Deleted":..}]`.
    pub async fn remove_image(&self, name: &str, force: bool, noprune: bool) -> Result<Vec<Value>> {
        let mut q: Vec<(&str, &str)> = Vec::new();
        if force {
            q.push(("force", b(force)));
        }
        if noprune {
            q.push(("noprune", b(noprune)));
        }
        let path = format!("/images/{}{}", path_segment(name), query_string(&q));
        let body = self.delete(&path).await?;
        serde_json::from_slice(&body).map_err(|source| Error::Decode {
            context: path,
            source,
        })
    }
}

/// Copy a multiplexed (8-byte header) stream to stdout/stderr writers until EOF.
/// Returns the number of payload bytes written.
pub async fn demux_copy<R, O, E>(mut reader: R, stdout: &mut O, stderr: &mut E) -> Result<u64>
where
    R: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| Error::io("reading attached stream", e))?;
        if n == 0 {
            return Ok(total);
        }
        write_frames(&mut dec, &buf[..n], stdout, stderr, &mut total).await?;
    }
}

/// Copy a multiplexed response body (logs) to stdout/stderr writers until the body ends.
pub async fn demux_body<O, E>(mut body: BodyChunks, stdout: &mut O, stderr: &mut E) -> Result<u64>
where
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let mut dec = FrameDecoder::new();
    let mut total = 0u64;
    while let Some(chunk) = body.next_chunk().await? {
        write_frames(&mut dec, &chunk, stdout, stderr, &mut total).await?;
    }
    Ok(total)
}

/// Copy a raw (TTY) body to a writer.
pub async fn copy_body<O: AsyncWrite + Unpin>(mut body: BodyChunks, out: &mut O) -> Result<u64> {
    let mut total = 0u64;
    while let Some(chunk) = body.next_chunk().await? {
        out.write_all(&chunk)
            .await
            .map_err(|e| Error::io("writing output", e))?;
        out.flush()
            .await
            .map_err(|e| Error::io("writing output", e))?;
        total += chunk.len() as u64;
    }
    Ok(total)
}

async fn write_frames<O, E>(
    dec: &mut FrameDecoder,
    data: &[u8],
    stdout: &mut O,
    stderr: &mut E,
    total: &mut u64,
) -> Result<()>
where
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let frames = dec.feed(data).map_err(|e| {
        Error::io(
            "demultiplexing stream",
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    for f in frames {
        let r = match f.kind {
            StreamKind::Stdout | StreamKind::Stdin => {
                let r = stdout.write_all(&f.data).await;
                r.and(stdout.flush().await)
            }
            StreamKind::Stderr => {
                let r = stderr.write_all(&f.data).await;
                r.and(stderr.flush().await)
            }
        };
        r.map_err(|e| Error::io("writing output", e))?;
        *total += f.data.len() as u64;
    }
    Ok(())
}
