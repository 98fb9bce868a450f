//! Wire-level tests against a scripted fake daemon on a Unix socket: what the client sends
//! (negotiation, empty POSTs, chunked uploads, hijack headers, half-close) and how it reads
//! replies (errors, JSON lines, 101 + multiplexed stream).

use berth_client::{Client, Error, ImportOptions, StreamKind};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

struct Req {
    head: String,
    body: Vec<u8>,
}

impl Req {
    fn line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Read one request (headers + Content-Length or chunked body).
async fn read_req(s: &mut UnixStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.ok()? == 0 {
            return None;
        }
        buf.push(b[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let mut req = Req {
        head,
        body: Vec::new(),
    };
    if req.header("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                s.read_exact(&mut b).await.ok()?;
                line.push(b[0]);
            }
            let n = usize::from_str_radix(std::str::from_utf8(&line).unwrap().trim(), 16).unwrap();
            let mut chunk = vec![0u8; n + 2];
            s.read_exact(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            req.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = req.header("content-length") {
        let mut body = vec![0u8; n.parse().unwrap()];
        s.read_exact(&mut body).await.ok()?;
        req.body = body;
    }
    Some(req)
}

type Served = (tempfile::TempDir, String, tokio::task::JoinHandle<Vec<Req>>);

/// Serve `n` connections, one request each, with `handler`; returns what was received.
fn serve<F, Fut>(n: usize, handler: F) -> Served
where
    F: Fn(Req, UnixStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Req> + Send,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (mut s, _) = listener.accept().await.unwrap();
            let req = read_req(&mut s).await.expect("request");
            seen.push(handler(req, s).await);
        }
        seen
    });
    (dir, format!("unix://{}", path.display()), task)
}

async fn reply(s: &mut UnixStream, status: &str, headers: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    s.write_all(msg.as_bytes()).await.unwrap();
}

#[tokio::test]
async fn negotiates_and_prefixes_paths() {
    let (_d, host, task) = serve(2, |req, mut s| async move {
        if req.line().starts_with("HEAD /_ping ") {
            reply(
                &mut s,
                "200 OK",
                "Api-Version: 1.41\r\nOstype: linux\r\n",
                "",
            )
            .await;
        } else {
            reply(
                &mut s,
                "200 OK",
                "Content-Type: application/json\r\n",
                "{\"ApiVersion\":\"1.41\"}",
            )
            .await;
        }
        req
    });
    let c = Client::connect(Some(&host)).await.unwrap();
    assert_eq!(c.api_version(), "1.41");
    assert_eq!(c.server_api_version(), Some("1.41"));
    let v = c.version().await.unwrap();
    assert_eq!(v["ApiVersion"], "1.41");
    let seen = task.await.unwrap();
    assert_eq!(seen[1].line(), "GET /v1.41/version HTTP/1.1");
    assert_eq!(
        seen[1].header("host").as_deref(),
        Some("api.moby.localhost")
    );
}

#[tokio::test]
async fn newer_server_is_capped_and_missing_header_means_1_24() {
    let (_d, host, task) = serve(1, |req, mut s| async move {
        reply(&mut s, "200 OK", "Api-Version: 1.99\r\n", "").await;
        req
    });
    let c = Client::connect(Some(&host)).await.unwrap();
    assert_eq!(c.api_version(), berth_client::MAX_API_VERSION);
    task.await.unwrap();

    let (_d, host, task) = serve(2, |req, mut s| async move {
        if req.line().starts_with("HEAD") {
            reply(&mut s, "405 Method Not Allowed", "", "").await;
        } else {
            reply(&mut s, "200 OK", "", "OK").await;
        }
        req
    });
    let c = Client::connect(Some(&host)).await.unwrap();
    assert_eq!(c.api_version(), "1.24");
    let seen = task.await.unwrap();
    assert!(
        seen[1].line().starts_with("GET /_ping "),
        "retried with GET"
    );
}

#[tokio::test]
async fn errors_carry_status_and_message() {
    let (_d, host, task) = serve(2, |req, mut s| async move {
        if req.line().starts_with("POST") {
            reply(
                &mut s,
                "404 Not Found",
                "Content-Type: application/json\r\n",
                "{\"message\":\"No such container: x\"}\n",
            )
            .await;
        } else {
            reply(
                &mut s,
                "500 Internal Server Error",
                "Content-Type: text/plain\r\n",
                "plain failure\n",
            )
            .await;
        }
        req
    });
    let mut c = Client::new(Some(&host)).unwrap();
    c.set_api_version("1.41");
    let e = c.stop_container("x", Some(1)).await.unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(
        e.to_string(),
        "Error response from daemon: No such container: x"
    );
    let e = c.info().await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.api_message(), Some("plain failure"));
    let seen = task.await.unwrap();
    assert_eq!(seen[0].line(), "POST /v1.41/containers/x/stop?t=1 HTTP/1.1");
    assert_eq!(seen[0].header("content-length").as_deref(), Some("0"));
    assert_eq!(seen[0].header("content-type"), None);
}

#[tokio::test]
async fn import_streams_a_chunked_body_and_reads_json_lines() {
    let (_d, host, task) = serve(1, |req, mut s| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        s.write_all(head.as_bytes()).await.unwrap();
        // one object split over two chunks, then an in-stream error
        let err_line = "{\"error\":\"boom\",\"errorDetail\":{\"code\":7}}\n";
        let parts = [
            "12\r\n{\"status\":\"sha256:\r\n".to_string(),
            "6\r\nabc\"}\n\r\n".to_string(),
            format!("{:x}\r\n{err_line}\r\n", err_line.len()),
            "0\r\n\r\n".to_string(),
        ];
        for part in parts {
            s.write_all(part.as_bytes()).await.unwrap();
            s.flush().await.unwrap();
        }
        req
    });
    let mut c = Client::new(Some(&host)).unwrap();
    c.set_api_version("1.41");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let opts = ImportOptions {
        repo: Some("imp:v1".into()),
        message: Some("m".into()),
        changes: vec!["CMD [\"sh\"]".into()],
    };
    let mut lines = c
        .import_image(std::io::Cursor::new(data.clone()), &opts)
        .await
        .unwrap();
    let first = lines.next().await.unwrap().unwrap();
    assert_eq!(first["status"], "sha256:abc");
    match lines.next().await {
        Err(Error::Stream { message, code }) => {
            assert_eq!(message, "boom");
            assert_eq!(code, Some(7));
        }
        other => panic!("expected stream error, got {other:?}"),
    }
    let seen = task.await.unwrap();
    let r = &seen[0];
    assert_eq!(
        r.line(),
        "POST /v1.41/images/create?changes=CMD+%5B%22sh%22%5D&fromSrc=-&message=m&repo=imp%3Av1 HTTP/1.1"
    );
    assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn hijack_upgrades_half_closes_and_demuxes() {
    let (_d, host, task) = serve(1, |req, mut s| async move {
        s.write_all(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n").await.unwrap();
        // the client half-closes at once (no stdin): we must see EOF, then keep writing
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
            .await
            .expect("client half-closed")
            .unwrap();
        assert!(rest.is_empty());
        let mut out = Vec::new();
        out.extend(berth_client::encode_frame(StreamKind::Stderr, b"err1\n"));
        out.extend(berth_client::encode_frame(StreamKind::Stdout, b"out1\n"));
        out.extend(berth_client::encode_frame(StreamKind::Stdout, b"out2\n"));
        for b in out.chunks(3) {
            s.write_all(b).await.unwrap();
        }
        req
    });
    let mut c = Client::new(Some(&host)).unwrap();
    c.set_api_version("1.41");
    let stream = c.attach_container("abc", false, true, true).await.unwrap();
    let (rd, mut wr) = tokio::io::split(stream);
    wr.shutdown().await.unwrap();
    let (mut o, mut e) = (Vec::new(), Vec::new());
    berth_client::demux_copy(rd, &mut o, &mut e).await.unwrap();
    assert_eq!(o, b"out1\nout2\n");
    assert_eq!(e, b"err1\n");
    let seen = task.await.unwrap();
    let r = &seen[0];
    assert_eq!(
        r.line(),
        "POST /v1.41/containers/abc/attach?stderr=1&stdout=1&stream=1 HTTP/1.1"
    );
    assert_eq!(r.header("connection").as_deref(), Some("Upgrade"));
    assert_eq!(r.header("upgrade").as_deref(), Some("tcp"));
}

#[tokio::test]
async fn hijack_without_101_is_an_error() {
    let (_d, host, task) = serve(1, |req, mut s| async move {
        reply(&mut s, "200 OK", "", "").await;
        req
    });
    let mut c = Client::new(Some(&host)).unwrap();
    c.set_api_version("1.41");
    let e = c
        .attach_container("abc", true, true, true)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "unable to upgrade to tcp, received 200");
    task.await.unwrap();
}

#[tokio::test]
async fn wait_returns_after_headers_before_the_body() {
    let (_d, host, task) = serve(1, |req, mut s| async move {
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let body = "{\"Error\":null,\"StatusCode\":3}\n";
        s.write_all(format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).as_bytes())
            .await
            .unwrap();
        req
    });
    let mut c = Client::new(Some(&host)).unwrap();
    c.set_api_version("1.41");
    let t0 = std::time::Instant::now();
    let h = c.wait_container("abc", Some("next-exit")).await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(250),
        "headers-only return"
    );
    let r = h.result().await.unwrap();
    assert_eq!(r.status_code, 3);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    let seen = task.await.unwrap();
    assert_eq!(
        seen[0].line(),
        "POST /v1.41/containers/abc/wait?condition=next-exit HTTP/1.1"
    );
}

#[tokio::test]
async fn connect_failure_explains_what_to_do() {
    let e = Client::connect(Some("unix:///nonexistent/x.sock"))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Cannot connect to the Berth daemon at unix:///nonexistent/x.sock. Is berthd running? Start it with: sudo berthd --host unix:///nonexistent/x.sock &"
    );
}

#[tokio::test]
async fn early_error_reply_during_upload_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        // read only the request head, answer, and close without draining the body
        let mut buf = Vec::new();
        let mut b = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).await.unwrap();
            buf.push(b[0]);
        }
        reply(
            &mut s,
            "400 Bad Request",
            "Content-Type: application/json\r\nConnection: close\r\n",
            "{\"message\":\"--change is not supported yet\"}\n",
        )
        .await;
        drop(s);
    });
    let mut c = Client::new(Some(&format!("unix://{}", path.display()))).unwrap();
    c.set_api_version("1.41");
    let data = vec![7u8; 8 * 1024 * 1024];
    let r = c
        .import_image(std::io::Cursor::new(data), &ImportOptions::default())
        .await;
    let e = r.err().expect("an error");
    assert_eq!(e.status(), Some(400), "{e}");
    assert_eq!(e.api_message(), Some("--change is not supported yet"));
    server.await.unwrap();
}

/// What the exec, pull and build wrappers put on the wire: the docker CLI's exec-create body
/// (recorded sample), `X-Registry-Auth`, and the classic build query with a chunked tar.
#[tokio::test]
async fn exec_pull_and_build_requests_match_the_docker_cli() {
    let (_d, host, task) = serve(3, |req, mut s| async move {
        if req.line().contains("/exec") {
            reply(
                &mut s,
                "201 Created",
                "Content-Type: application/json\r\n",
                "{\"Id\":\"e1\"}",
            )
            .await;
        } else {
            reply(
                &mut s,
                "200 OK",
                "Content-Type: application/json\r\n",
                "{\"stream\":\"ok\\n\"}\n",
            )
            .await;
        }
        req
    });
    let mut c = Client::new(Some(&host)).unwrap();
    c.set_api_version("1.41");
    let opts = berth_client::ExecOptions {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "echo $X; pwd; echo e >&2; exit 3".into(),
        ],
        user: "0".into(),
        env: vec!["X=1".into()],
        workdir: "/bin".into(),
        ..Default::default()
    };
    assert_eq!(c.exec_create("t1", &opts).await.unwrap(), "e1");
    let mut lines = c
        .pull("docker.io/library/busybox", "1.36", None, "e30=")
        .await
        .unwrap();
    while lines.next().await.unwrap().is_some() {}
    let bo = berth_client::BuildOptions {
        tags: vec!["built:v1".into()],
        no_cache: true,
        rm: true,
        ..Default::default()
    };
    let mut lines = c.build_image(&bo, "e30=", &b"tar-bytes"[..]).await.unwrap();
    while lines.next().await.unwrap().is_some() {}
    let seen = task.await.unwrap();
    assert_eq!(seen[0].line(), "POST /v1.41/containers/t1/exec HTTP/1.1");
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("/work/shared/reference/docker-engine-api/samples/exec-create.request.json")
            .unwrap_or_else(|_| {
                r#"{"User":"0","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,
                   "AttachStdout":true,"Detach":false,"DetachKeys":"","Env":["X=1"],"WorkingDir":"/bin",
                   "Cmd":["sh","-c","echo $X; pwd; echo e >&2; exit 3"]}"#
                    .to_string()
            }),
    )
    .unwrap();
    assert_eq!(body, sample);
    assert_eq!(
        seen[1].line(),
        "POST /v1.41/images/create?fromImage=docker.io%2Flibrary%2Fbusybox&tag=1.36 HTTP/1.1"
    );
    assert_eq!(seen[1].header("x-registry-auth").as_deref(), Some("e30="));
    assert_eq!(
        seen[2].line(),
        "POST /v1.41/build?nocache=1&rm=1&t=built%3Av1&version=1 HTTP/1.1"
    );
    assert_eq!(
        seen[2].header("content-type").as_deref(),
        Some("application/x-tar")
    );
    assert_eq!(
        seen[2].header("transfer-encoding").as_deref(),
        Some("chunked")
    );
    assert_eq!(seen[2].header("x-registry-config").as_deref(), Some("e30="));
    assert_eq!(seen[2].body, b"tar-bytes");
}
