//! More typed wrappers: exec, container operations, archives, images (history, save, load,
//! pull, push, build, commit), registry auth, networks, events and system calls. Paths and
//! query keys are the ones the docker CLI sends (`cli-endpoints.md`).

use crate::body::{BodyChunks, JsonLines};
use crate::error::{Error, Result};
use crate::{path_segment, query_string, read_body, Client, ReqBody};
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::AsyncRead;

/// `POST /containers/{id}/exec` options.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    pub attach_stdin: bool,
    pub detach: bool,
    pub detach_keys: String,
    pub env: Vec<String>,
    pub workdir: String,
}

/// Result of `HEAD/GET /containers/{id}/archive`: the decoded `X-Docker-Container-Path-Stat`.
#[derive(Debug, Clone, Default)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go `os.FileMode` bits (directory = 1<<31).
    pub mode: u32,
    pub mtime: String,
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & (1 << 31) != 0
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & (1 << 27) != 0
    }
}

fn decode_stat(h: &hyper::HeaderMap) -> Option<PathStat> {
    use base64::Engine;
    let raw = h.get("x-docker-container-path-stat")?.to_str().ok()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(raw))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    Some(PathStat {
        name: v["name"].as_str().unwrap_or("").to_string(),
        size: v["size"].as_i64().unwrap_or(0),
        mode: v["mode"].as_u64().unwrap_or(0) as u32,
        mtime: v["mtime"].as_str().unwrap_or("").to_string(),
        link_target: v["linkTarget"].as_str().unwrap_or("").to_string(),
    })
}

/// Options for the classic builder (`POST /build`).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub tags: Vec<String>,
    pub dockerfile: Option<String>,
    pub build_args: serde_json::Map<String, Value>,
    pub labels: serde_json::Map<String, Value>,
    pub no_cache: bool,
    pub quiet: bool,
    pub rm: bool,
    pub force_rm: bool,
    pub pull: bool,
    pub target: Option<String>,
    pub network: Option<String>,
    pub platform: Option<String>,
}

fn encode_filters(filters: Option<&Value>) -> Vec<(&'static str, String)> {
    match filters {
        Some(f) if f.as_object().is_some_and(|o| !o.is_empty()) => vec![("filters", f.to_string())],
        _ => Vec::new(),
    }
}

impl Client {
    // ----- exec -------------------------------------------------------------------------

    /// `POST /containers/{id}/exec` -> exec id.
    pub async fn exec_create(&self, container: &str, o: &ExecOptions) -> Result<String> {
        let attach = !o.detach;
        let body = json!({
            "User": o.user, "Privileged": o.privileged, "Tty": o.tty,
            "AttachStdin": attach && o.attach_stdin, "AttachStderr": attach,
            "AttachStdout": attach, "Detach": o.detach, "DetachKeys": o.detach_keys,
            "Env": if o.env.is_empty() { Value::Null } else { json!(o.env) },
            "WorkingDir": o.workdir, "Cmd": o.cmd,
        });
        let v: Value = self
            .post_json(
                &format!("/containers/{}/exec", path_segment(container)),
                &body,
            )
            .await?;
        Ok(v["Id"].as_str().unwrap_or("").to_string())
    }

    /// `POST /exec/{id}/start` hijacked (attached exec).
    pub async fn exec_start_attached(&self, id: &str, tty: bool) -> Result<crate::Hijacked> {
        self.hijack_json(
            &format!("/exec/{}/start", path_segment(id)),
            &json!({"Detach": false, "Tty": tty}),
        )
        .await
    }

    /// `POST /exec/{id}/start` detached (plain 200).
    pub async fn exec_start_detached(&self, id: &str, tty: bool) -> Result<()> {
        let path = format!("/exec/{}/start", path_segment(id));
        let body = serde_json::to_vec(&json!({"Detach": true, "Tty": tty})).unwrap_or_default();
        let resp = self
            .request(
                Method::POST,
                &path,
                Some("application/json"),
                ReqBody::full(body),
            )
            .await?;
        read_body(resp, &path).await.map(|_| ())
    }

    /// `GET /exec/{id}/json`.
    pub async fn exec_inspect(&self, id: &str) -> Result<Value> {
        self.get_json(&format!("/exec/{}/json", path_segment(id)))
            .await
    }

    /// `POST /exec/{id}/resize?h=&w=`.
    pub async fn resize_exec(&self, id: &str, h: u16, w: u16) -> Result<()> {
        self.post_ok(&format!(
            "/exec/{}/resize{}",
            path_segment(id),
            query_string(&[("h", h.to_string()), ("w", w.to_string())])
        ))
        .await
    }

    // ----- container operations --------------------------------------------------------

    /// `POST /containers/{id}/{action}` with optional query pairs (restart, pause, unpause,
    /// rename).
    pub async fn container_action(
        &self,
        id: &str,
        action: &str,
        q: &[(&str, String)],
    ) -> Result<()> {
        self.post_ok(&format!(
            "/containers/{}/{action}{}",
            path_segment(id),
            query_string(q)
        ))
        .await
    }

    /// `GET /containers/{id}/top[?ps_args=]`.
    pub async fn top(&self, id: &str, ps_args: Option<&str>) -> Result<Value> {
        let q = match ps_args {
            Some(a) => query_string(&[("ps_args", a)]),
            None => String::new(),
        };
        self.get_json(&format!("/containers/{}/top{q}", path_segment(id)))
            .await
    }

    /// `GET /containers/{id}/stats?stream=0` (one sample).
    pub async fn stats_once(&self, id: &str) -> Result<Value> {
        self.get_json(&format!("/containers/{}/stats?stream=0", path_segment(id)))
            .await
    }

    /// `GET /containers/{id}/stats?stream=1` as JSON lines.
    pub async fn stats_stream(&self, id: &str) -> Result<JsonLines> {
        let path = format!("/containers/{}/stats?stream=1", path_segment(id));
        let resp = self
            .request(Method::GET, &path, None, ReqBody::empty())
            .await?;
        Ok(JsonLines::new(resp.into_body()))
    }

    /// `GET /containers/{id}/changes`.
    pub async fn changes(&self, id: &str) -> Result<Value> {
        self.get_json(&format!("/containers/{}/changes", path_segment(id)))
            .await
    }

    /// `GET /containers/{id}/export` (a tar stream).
    pub async fn export(&self, id: &str) -> Result<BodyChunks> {
        let path = format!("/containers/{}/export", path_segment(id));
        let resp = self
            .request(Method::GET, &path, None, ReqBody::empty())
            .await?;
        Ok(BodyChunks::new(resp.into_body()))
    }

    /// `POST /containers/{id}/update`.
    pub async fn update_container(&self, id: &str, body: &Value) -> Result<Value> {
        self.post_json(&format!("/containers/{}/update", path_segment(id)), body)
            .await
    }

    /// `POST /commit?...` -> image id.
    pub async fn commit(&self, q: &[(&str, String)], config: &Value) -> Result<String> {
        let v: Value = self
            .post_json(&format!("/commit{}", query_string(q)), config)
            .await?;
        Ok(v["Id"].as_str().unwrap_or("").to_string())
    }

    /// `HEAD /containers/{id}/archive?path=` -> stat, or None on 404.
    pub async fn stat_path(&self, id: &str, path: &str) -> Result<Option<PathStat>> {
        let p = format!(
            "/containers/{}/archive{}",
            path_segment(id),
            query_string(&[("path", path)])
        );
        let full = self.versioned(&p);
        let resp = self
            .raw(Method::HEAD, &full, None, ReqBody::empty())
            .await?;
        if resp.status() == hyper::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let message = if status == 404 {
                format!("Could not find the file {path} in container {id}")
            } else {
                format!(
                    "{} {}",
                    status,
                    resp.status().canonical_reason().unwrap_or("")
                )
            };
            return Err(Error::Api { status, message });
        }
        Ok(Some(decode_stat(resp.headers()).unwrap_or_default()))
    }

    /// `GET /containers/{id}/archive?path=` -> (stat, tar stream).
    pub async fn get_archive(&self, id: &str, path: &str) -> Result<(PathStat, BodyChunks)> {
        let p = format!(
            "/containers/{}/archive{}",
            path_segment(id),
            query_string(&[("path", path)])
        );
        let resp = self
            .request(Method::GET, &p, None, ReqBody::empty())
            .await?;
        let st = decode_stat(resp.headers()).unwrap_or_default();
        Ok((st, BodyChunks::new(resp.into_body())))
    }

    /// `PUT /containers/{id}/archive?noOverwriteDirNonDir=true&path=` with a streamed tar.
    pub async fn put_archive<R>(
        &self,
        id: &str,
        path: &str,
        copy_uid_gid: bool,
        tar: R,
    ) -> Result<()>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let mut q = vec![
            ("noOverwriteDirNonDir", "true".to_string()),
            ("path", path.to_string()),
        ];
        if copy_uid_gid {
            q.insert(0, ("copyUIDGID", "true".to_string()));
        }
        let p = format!(
            "/containers/{}/archive{}",
            path_segment(id),
            query_string(&q)
        );
        let resp = self
            .request(
                Method::PUT,
                &p,
                Some("text/plain"),
                ReqBody::from_reader(tar),
            )
            .await?;
        read_body(resp, &p).await.map(|_| ())
    }

    /// `POST /containers/prune`.
    pub async fn prune(&self, kind: &str, filters: Option<&Value>) -> Result<Value> {
        let q = encode_filters(filters);
        let path = format!("/{kind}/prune{}", query_string(&q));
        let resp = self
            .request(Method::POST, &path, None, ReqBody::empty())
            .await?;
        crate::decode(resp, &path).await
    }

    // ----- images ----------------------------------------------------------------------

    /// `GET /images/json` with options.
    pub async fn list_images_filtered(
        &self,
        all: bool,
        digests: bool,
        filters: Option<&Value>,
    ) -> Result<Vec<Value>> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if all {
            q.push(("all", "1".into()));
        }
        if digests {
            q.push(("digests", "1".into()));
        }
        q.extend(encode_filters(filters));
        self.get_json(&format!("/images/json{}", query_string(&q)))
            .await
    }

    /// `GET /images/{name}/history`.
    pub async fn history(&self, name: &str) -> Result<Vec<Value>> {
        self.get_json(&format!("/images/{}/history", path_segment(name)))
            .await
    }

    /// `GET /images/get?names=...` (a tar stream).
    pub async fn save(&self, names: &[String]) -> Result<BodyChunks> {
        let q: Vec<(&str, &str)> = names.iter().map(|n| ("names", n.as_str())).collect();
        let path = format!("/images/get{}", query_string(&q));
        let resp = self
            .request(Method::GET, &path, None, ReqBody::empty())
            .await?;
        Ok(BodyChunks::new(resp.into_body()))
    }

    /// `POST /images/load?quiet=` with a streamed tar.
    pub async fn load<R>(&self, quiet: bool, tar: R) -> Result<JsonLines>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let path = format!("/images/load?quiet={}", if quiet { "1" } else { "0" });
        let resp = self
            .request(
                Method::POST,
                &path,
                Some("application/x-tar"),
                ReqBody::from_reader(tar),
            )
            .await?;
        Ok(JsonLines::new(resp.into_body()))
    }

    /// `POST /images/create?fromImage=&tag=[&platform=]` with `X-Registry-Auth`.
    pub async fn pull(
        &self,
        image: &str,
        tag: &str,
        platform: Option<&str>,
        auth: &str,
    ) -> Result<JsonLines> {
        let mut q = vec![("fromImage", image.to_string())];
        if let Some(p) = platform.filter(|p| !p.is_empty()) {
            q.push(("platform", p.to_string()));
        }
        q.push(("tag", tag.to_string()));
        let path = format!("/images/create{}", query_string(&q));
        let resp = self
            .request_with_headers(
                Method::POST,
                &path,
                None,
                &[("X-Registry-Auth", auth.to_string())],
                ReqBody::empty(),
            )
            .await?;
        Ok(JsonLines::new(resp.into_body()))
    }

    /// `POST /images/{name}/push?tag=` with `X-Registry-Auth`.
    pub async fn push(&self, repo: &str, tag: Option<&str>, auth: &str) -> Result<JsonLines> {
        let q = match tag {
            Some(t) => query_string(&[("tag", t)]),
            None => String::new(),
        };
        let path = format!("/images/{}/push{q}", path_segment(repo));
        let resp = self
            .request_with_headers(
                Method::POST,
                &path,
                None,
                &[("X-Registry-Auth", auth.to_string())],
                ReqBody::empty(),
            )
            .await?;
        Ok(JsonLines::new(resp.into_body()))
    }

    /// `POST /build?...&version=1` with the context tar streamed.
    pub async fn build_image<R>(
        &self,
        o: &BuildOptions,
        registry_config: &str,
        context: R,
    ) -> Result<JsonLines>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let mut q: Vec<(&str, String)> = Vec::new();
        if !o.build_args.is_empty() {
            q.push(("buildargs", Value::Object(o.build_args.clone()).to_string()));
        }
        if let Some(d) = &o.dockerfile {
            q.push(("dockerfile", d.clone()));
        }
        if o.force_rm {
            q.push(("forcerm", "1".into()));
        }
        if !o.labels.is_empty() {
            q.push(("labels", Value::Object(o.labels.clone()).to_string()));
        }
        if let Some(n) = &o.network {
            q.push(("networkmode", n.clone()));
        }
        if o.no_cache {
            q.push(("nocache", "1".into()));
        }
        if let Some(p) = &o.platform {
            q.push(("platform", p.clone()));
        }
        if o.pull {
            q.push(("pull", "1".into()));
        }
        if o.quiet {
            q.push(("q", "1".into()));
        }
        q.push(("rm", if o.rm { "1" } else { "0" }.into()));
        for t in &o.tags {
            q.push(("t", t.clone()));
        }
        if let Some(t) = &o.target {
            q.push(("target", t.clone()));
        }
        q.push(("version", "1".into()));
        let path = format!("/build{}", query_string(&q));
        let resp = self
            .request_with_headers(
                Method::POST,
                &path,
                Some("application/x-tar"),
                &[("X-Registry-Config", registry_config.to_string())],
                ReqBody::from_reader(context),
            )
            .await?;
        Ok(JsonLines::new(resp.into_body()))
    }

    /// `POST /auth`.
    pub async fn auth(&self, body: &Value) -> Result<Value> {
        self.post_json("/auth", body).await
    }

    // ----- networks --------------------------------------------------------------------

    /// `GET /networks[?filters=]`.
    pub async fn list_networks(&self, filters: Option<&Value>) -> Result<Vec<Value>> {
        let q = encode_filters(filters);
        self.get_json(&format!("/networks{}", query_string(&q)))
            .await
    }

    /// `GET /networks/{id}`.
    pub async fn inspect_network(&self, id: &str) -> Result<Value> {
        self.get_json(&format!("/networks/{}", path_segment(id)))
            .await
    }

    /// `POST /networks/create`.
    pub async fn create_network(&self, body: &Value) -> Result<Value> {
        self.post_json("/networks/create", body).await
    }

    /// `DELETE /networks/{id}`.
    pub async fn remove_network(&self, id: &str) -> Result<()> {
        self.delete(&format!("/networks/{}", path_segment(id)))
            .await
            .map(|_| ())
    }

    /// `POST /networks/{id}/connect` or `/disconnect`.
    pub async fn network_op(&self, id: &str, op: &str, body: &Value) -> Result<()> {
        let path = format!("/networks/{}/{op}", path_segment(id));
        let data = serde_json::to_vec(body).unwrap_or_default();
        let resp = self
            .request(
                Method::POST,
                &path,
                Some("application/json"),
                ReqBody::full(data),
            )
            .await?;
        read_body(resp, &path).await.map(|_| ())
    }

    // ----- system ----------------------------------------------------------------------

    /// `GET /events?since=&until=&filters=` as JSON lines.
    pub async fn events(
        &self,
        since: Option<&str>,
        until: Option<&str>,
        filters: Option<&Value>,
    ) -> Result<JsonLines> {
        let mut q: Vec<(&str, String)> = encode_filters(filters);
        if let Some(s) = since {
            q.push(("since", s.to_string()));
        }
        if let Some(u) = until {
            q.push(("until", u.to_string()));
        }
        let path = format!("/events{}", query_string(&q));
        let resp = self
            .request(Method::GET, &path, None, ReqBody::empty())
            .await?;
        Ok(JsonLines::new(resp.into_body()))
    }

    /// `GET /system/df`.
    pub async fn system_df(&self) -> Result<Value> {
        self.get_json("/system/df").await
    }
}
