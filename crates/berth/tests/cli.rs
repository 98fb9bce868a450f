//! Integration tests for the `berth` CLI against a real daemon.
//!
//! Set `BERTH_TEST_HOST=unix:///path/to.sock` (berthd, or a reference dockerd) to run them;
//! without it every daemon test prints a notice and passes trivially (the no-daemon test still
//! runs). Tests seed their own image with `berth import` from /usr/bin/busybox, use unique
//! names, `--network none`, and clean up what they create.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

fn host() -> Option<String> {
    match std::env::var("BERTH_TEST_HOST") {
        Ok(h) if !h.is_empty() => Some(h),
        _ => {
            eprintln!("BERTH_TEST_HOST is not set: skipping daemon test (point it at berthd)");
            None
        }
    }
}

fn berth(host: &str, args: &[&str]) -> Output {
    berth_stdin(host, args, None)
}

fn berth_stdin(host: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("-H").arg(host).args(args).env_remove("DOCKER_HOST");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn berth");
    if let Some(data) = stdin {
        let mut si = child.stdin.take().expect("stdin");
        // berth may exit early (e.g. on a daemon error) without reading all of stdin
        if let Err(e) = si.write_all(data) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    child.wait_with_output().expect("wait berth")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "berth failed: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        out(&o),
        err(&o)
    );
    o
}

fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A busybox rootfs tar (busybox + a few applet links) in a temp dir.
fn busybox_tar() -> &'static std::path::Path {
    static TAR: OnceLock<(tempfile::TempDir, std::path::PathBuf)> = OnceLock::new();
    let (_, path) = TAR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busybox.tar");
        let f = std::fs::File::create(&path).expect("create tar");
        let mut b = tar::Builder::new(f);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "bin", std::io::empty()).expect("dir");
        b.append_path_with_name("/usr/bin/busybox", "bin/busybox")
            .expect("busybox (install busybox-static)");
        for a in [
            "sh", "echo", "cat", "sleep", "ls", "true", "false", "env", "id", "hostname",
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            b.append_link(&mut h, format!("bin/{a}"), "busybox")
                .expect("link");
        }
        b.into_inner()
            .expect("finish tar")
            .sync_all()
            .expect("sync");
        (dir, path)
    });
    path
}

/// Import the busybox tar as a unique image; returns "repo:tag".
fn test_image(host: &str) -> String {
    let name = format!("{}:t", unique("berth-cli-img"));
    let o = ok(berth(
        host,
        &["import", busybox_tar().to_str().unwrap(), &name],
    ));
    assert!(
        out(&o).trim().starts_with("sha256:"),
        "import printed {:?}",
        out(&o)
    );
    name
}

fn rmi(host: &str, image: &str) {
    let _ = berth(host, &["rmi", "-f", image]);
}

#[test]
fn no_daemon_error_says_what_to_do() {
    let o = berth("unix:///nonexistent/berth-test.sock", &["ps"]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(
        e.contains("Cannot connect to the Berth daemon at unix:///nonexistent/berth-test.sock"),
        "{e}"
    );
    assert!(e.contains("berthd"), "{e}");
    let o = berth("unix:///nonexistent/berth-test.sock", &["run", "busybox"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).starts_with("berth: Cannot connect"), "{}", err(&o));
}

#[test]
fn version_and_info() {
    let Some(h) = host() else { return };
    let o = ok(berth(&h, &["version"]));
    let s = out(&o);
    assert!(s.starts_with("Client:\n Version:"), "{s}");
    assert!(
        s.contains("\nServer:") && s.contains(" Engine:\n  Version:"),
        "{s}"
    );
    assert!(
        s.contains("  API version:") && s.contains("(minimum version"),
        "{s}"
    );
    let o = ok(berth(&h, &["info"]));
    let s = out(&o);
    for key in [
        " Containers: ",
        "  Running: ",
        " Images: ",
        " Storage Driver: ",
        " Cgroup Driver: ",
        " Cgroup Version: ",
        " Kernel Version: ",
        " Docker Root Dir: ",
    ] {
        assert!(s.contains(key), "info lacks {key:?}:\n{s}");
    }
    let o = ok(berth(&h, &["info", "--format", "{{.OSType}}"]));
    assert_eq!(out(&o).trim(), "linux");
}

#[test]
fn import_images_inspect_tag_rmi() {
    let Some(h) = host() else { return };
    let repo = unique("berth-cli-imp");
    let name = format!("{repo}:v1");
    // from stdin, with a message and a change
    let tar = std::fs::read(busybox_tar()).unwrap();
    let o = ok(berth_stdin(
        &h,
        &[
            "import",
            "-m",
            "imported msg",
            "-c",
            "CMD [\"echo\",\"hi\"]",
            "-",
            &name,
        ],
        Some(&tar),
    ));
    let id = out(&o).trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let short = &id[7..19];

    let o = ok(berth(&h, &["images"]));
    let s = out(&o);
    assert!(
        s.starts_with("REPOSITORY ") && s.lines().next().unwrap().contains(" TAG "),
        "{s}"
    );
    assert!(
        s.contains("IMAGE ID") && s.contains("CREATED") && s.contains("SIZE"),
        "{s}"
    );
    let line = s
        .lines()
        .find(|l| l.starts_with(&repo))
        .unwrap_or_else(|| panic!("{s}"));
    let cols: Vec<&str> = line
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cols[1], "v1", "{line}");
    assert_eq!(cols[2], short, "{line}");
    assert!(cols[3].ends_with(" ago"), "{line}");
    assert!(cols[4].ends_with("MB"), "{line}");

    let o = ok(berth(&h, &["images", "-q"]));
    assert!(out(&o).lines().any(|l| l == short), "{}", out(&o));
    let o = ok(berth(&h, &["images", "--no-trunc"]));
    assert!(out(&o).contains(&id));

    let o = ok(berth(
        &h,
        &[
            "inspect",
            "-f",
            "{{json .Config.Cmd}}|{{.Comment}}|{{.Id}}",
            &name,
        ],
    ));
    assert_eq!(
        out(&o).trim(),
        format!("[\"echo\",\"hi\"]|imported msg|{id}")
    );
    let o = ok(berth(&h, &["image", "inspect", &name]));
    let v: serde_json::Value = serde_json::from_str(&out(&o)).expect("inspect is JSON");
    assert_eq!(v[0]["Id"], id.as_str());
    assert!(
        out(&o).starts_with("[\n    {\n        \""),
        "docker's 4-space indent"
    );

    let other = format!("{}:x", unique("berth-cli-tag"));
    ok(berth(&h, &["tag", &name, &other]));
    let o = ok(berth(
        &h,
        &["inspect", "--type", "image", "-f", "{{.Id}}", &other],
    ));
    assert_eq!(out(&o).trim(), id);
    let o = ok(berth(&h, &["rmi", &other]));
    assert!(
        out(&o).contains(&format!("Untagged: {other}")),
        "{}",
        out(&o)
    );
    let o = ok(berth(&h, &["rmi", &name]));
    assert!(out(&o).contains("Untagged:"), "{}", out(&o));
    let o = berth(&h, &["inspect", &name]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains(&format!("Error: No such object: {name}")),
        "{}",
        err(&o)
    );
    assert_eq!(out(&o).trim(), "[]");
}

#[test]
fn run_attached_streams_and_exit_code() {
    let Some(h) = host() else { return };
    let img = test_image(&h);
    let o = berth(
        &h,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &img,
            "sh",
            "-c",
            "echo out1; echo err1 >&2; echo out2; exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "stderr: {}", err(&o));
    assert_eq!(out(&o), "out1\nout2\n");
    assert_eq!(err(&o), "err1\n");

    // env, workdir, user, hostname, entrypoint reach the container
    let o = ok(berth(
        &h,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-e",
            "FOO=bar",
            "-w",
            "/bin",
            "-u",
            "1234",
            "-h",
            "myhost",
            "--entrypoint",
            "sh",
            &img,
            "-c",
            "echo $FOO $(pwd) $(id -u) $(hostname)",
        ],
    ));
    assert_eq!(out(&o), "bar /bin 1234 myhost\n");

    // stdin is streamed and closed (cat exits)
    let o = ok(berth_stdin(
        &h,
        &["run", "-i", "--rm", "--network", "none", &img, "cat"],
        Some(b"piped-input\n"),
    ));
    assert_eq!(out(&o), "piped-input\n");

    // a TTY container's output arrives raw (no frame headers)
    let o = ok(berth(
        &h,
        &[
            "run",
            "-t",
            "--rm",
            "--network",
            "none",
            &img,
            "echo",
            "tty",
        ],
    ));
    assert_eq!(out(&o).replace('\r', ""), "tty\n");
    rmi(&h, &img);
}

#[test]
fn run_errors_have_docker_exit_codes() {
    let Some(h) = host() else { return };
    let img = test_image(&h);
    let missing = unique("berth-cli-nosuch");
    let o = berth(&h, &["run", "--rm", "--network", "none", &missing]);
    assert_eq!(o.status.code(), Some(125));
    let e = err(&o);
    assert!(
        e.contains(&format!("Unable to find image '{missing}:latest' locally")),
        "{e}"
    );
    assert!(e.contains("berth: Error response from daemon:"), "{e}");

    let name = unique("berth-cli-noexec");
    let o = berth(
        &h,
        &[
            "run",
            "--name",
            &name,
            "--network",
            "none",
            &img,
            "/no/such/binary",
        ],
    );
    assert_eq!(o.status.code(), Some(127), "{}", err(&o));
    assert!(
        err(&o).starts_with("berth: Error response from daemon:"),
        "{}",
        err(&o)
    );
    ok(berth(&h, &["rm", "-f", &name]));

    let o = berth(
        &h,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            &img,
            "nosuchcmd",
        ],
    );
    assert_eq!(o.status.code(), Some(127), "{}", err(&o));
    ok(berth(&h, &["rm", "-f", &name]));
    rmi(&h, &img);
}

#[test]
fn detached_lifecycle_ps_logs_stop_rm() {
    let Some(h) = host() else { return };
    let img = test_image(&h);
    let name = unique("berth-cli-life");
    let o = ok(berth(
        &h,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "-l",
            "berth.test=1",
            &img,
            "sh",
            "-c",
            "echo e1 >&2; sleep 1; echo l1; echo l2; echo l3; exec sleep 300",
        ],
    ));
    let id = out(&o).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id:?}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));

    let o = ok(berth(&h, &["ps"]));
    let s = out(&o);
    assert!(s.starts_with("CONTAINER ID   IMAGE"), "{s}");
    for col in ["COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"] {
        assert!(s.lines().next().unwrap().contains(col), "{s}");
    }
    let line = s
        .lines()
        .find(|l| l.ends_with(&name))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(line.starts_with(&id[..12]), "{line}");
    assert!(line.contains(" Up "), "{line}");
    assert!(
        line.contains("\"sh -c 'echo e1 >&2;…\""),
        "20-char ellipsis: {line}"
    );

    let o = ok(berth(
        &h,
        &["ps", "-q", "--filter", &format!("name={name}")],
    ));
    assert_eq!(out(&o).trim(), &id[..12]);
    let o = ok(berth(
        &h,
        &["ps", "-q", "--no-trunc", "-f", "label=berth.test=1"],
    ));
    assert!(out(&o).lines().any(|l| l == id), "{}", out(&o));

    // logs are demultiplexed to stdout/stderr; wait until the lines are there
    let mut tries = 0;
    loop {
        let o = ok(berth(&h, &["logs", &name]));
        if out(&o) == "l1\nl2\nl3\n" {
            assert_eq!(err(&o), "e1\n");
            break;
        }
        tries += 1;
        assert!(tries < 50, "logs: {:?} / {:?}", out(&o), err(&o));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let o = ok(berth(&h, &["logs", "--tail", "1", &name]));
    assert_eq!(out(&o), "l3\n");
    let o = ok(berth(&h, &["logs", "-t", "--tail", "1", &name]));
    let line = out(&o);
    assert!(
        line.ends_with(" l3\n") && line.contains('T') && line.len() > 20,
        "{line:?}"
    );

    let o = ok(berth(
        &h,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.Config.Labels}}",
            &name,
        ],
    ));
    assert_eq!(out(&o).trim(), "running map[berth.test:1]");

    let o = ok(berth(&h, &["stop", "-t", "1", &name]));
    assert_eq!(out(&o).trim(), name);
    let o = ok(berth(
        &h,
        &["ps", "-a", "--filter", &format!("name={name}")],
    ));
    assert!(out(&o).contains("Exited (137)"), "{}", out(&o));
    let o = ok(berth(&h, &["ps", "-q"]));
    assert!(!out(&o).contains(&id[..12]));
    let o = ok(berth(&h, &["wait", &name]));
    assert_eq!(out(&o).trim(), "137");

    // start -a re-runs it attached and exits with its code
    let o = berth(&h, &["inspect", "-f", "{{.State.ExitCode}}", &id]);
    assert_eq!(out(&o).trim(), "137");
    let o = ok(berth(&h, &["rm", &name]));
    assert_eq!(out(&o).trim(), name);
    let o = berth(&h, &["rm", &name]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("Error response from daemon:"),
        "{}",
        err(&o)
    );
    rmi(&h, &img);
}

#[test]
fn start_attach_kill_and_rm_force() {
    let Some(h) = host() else { return };
    let img = test_image(&h);
    let name = unique("berth-cli-sa");
    let o = berth(
        &h,
        &[
            "run",
            "--name",
            &name,
            "--network",
            "none",
            &img,
            "sh",
            "-c",
            "echo hi; exit 4",
        ],
    );
    assert_eq!(o.status.code(), Some(4));
    let o = berth(&h, &["start", "-a", &name]);
    assert_eq!(o.status.code(), Some(4), "{}", err(&o));
    assert_eq!(out(&o), "hi\n");
    ok(berth(&h, &["rm", &name]));

    let o = ok(berth(
        &h,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            &img,
            "sleep",
            "300",
        ],
    ));
    assert_eq!(out(&o).trim().len(), 64);
    let o = ok(berth(&h, &["kill", "-s", "KILL", &name]));
    assert_eq!(out(&o).trim(), name);
    let o = ok(berth(&h, &["wait", &name]));
    assert_eq!(out(&o).trim(), "137");
    ok(berth(&h, &["start", &name]));
    let o = ok(berth(&h, &["ps", "-l", "-q", "--no-trunc"]));
    assert_eq!(out(&o).trim().len(), 64);
    let o = berth(&h, &["rm", &name]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "removing a running container needs -f"
    );
    ok(berth(&h, &["rm", "-f", &name]));
    rmi(&h, &img);
}

/// `berth volume` against the docker CLI on the same daemon: same listing, same errors.
#[test]
fn volume_commands_match_docker() {
    let Some(h) = host() else { return };
    let name = unique("clivol");
    assert_eq!(
        out(&ok(berth(
            &h,
            &["volume", "create", "--label", "t=cli", &name]
        )))
        .trim(),
        name
    );
    let docker = |args: &[&str]| {
        Command::new("docker")
            .arg("-H")
            .arg(&h)
            .args(args)
            .env_remove("DOCKER_HOST")
            .output()
            .expect("docker")
    };
    let ours = out(&ok(berth(&h, &["volume", "ls", "--filter", "label=t=cli"])));
    let theirs =
        String::from_utf8_lossy(&docker(&["volume", "ls", "--filter", "label=t=cli"]).stdout)
            .to_string();
    assert_eq!(ours, theirs);
    let f = "{{.Name}} {{.Driver}} {{.Scope}}";
    assert_eq!(
        out(&ok(berth(&h, &["volume", "inspect", "--format", f, &name]))),
        String::from_utf8_lossy(&docker(&["volume", "inspect", "--format", f, &name]).stdout)
    );
    assert_eq!(out(&ok(berth(&h, &["volume", "rm", &name]))).trim(), name);
    let gone = berth(&h, &["volume", "rm", &name]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(err(&gone).contains("no such volume"), "{}", err(&gone));
}

/// Mask what legitimately differs between two runs: ids, "x ago", sizes, column padding.
fn normalise(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut words: Vec<String> = Vec::new();
        for w in line.split_whitespace() {
            let hex = w.trim_start_matches("sha256:");
            let w = if hex.len() >= 12 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                "<ID>".to_string()
            } else {
                w.to_string()
            };
            words.push(w);
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

/// `berth` and `docker` on the same daemon print the same ps, images, history, inspect and
/// `--format` output.
#[test]
fn listings_and_formats_match_docker() {
    let Some(h) = host() else { return };
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("no docker CLI: skipping the comparison");
        return;
    }
    let img = test_image(&h);
    let name = unique("berth-cli-cmp");
    ok(berth(
        &h,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            "-l",
            "cmp=1",
            &img,
            "sleep",
            "300",
        ],
    ));
    let docker = |args: &[&str]| {
        let o = Command::new("docker")
            .arg("-H")
            .arg(&h)
            .args(args)
            .env_remove("DOCKER_HOST")
            .output()
            .expect("docker");
        assert!(o.status.success(), "docker {args:?}: {}", err(&o));
        out(&o)
    };
    let filter = format!("name={name}");
    let repo = img.split(':').next().unwrap().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["ps", "--filter", &filter],
        vec!["ps", "-a", "--no-trunc", "--filter", &filter],
        vec!["ps", "--filter", &filter, "--format", "json"],
        vec![
            "ps",
            "--filter",
            &filter,
            "--format",
            "table {{.Names}}\t{{.Labels}}\t{{.Command}}",
        ],
        vec![
            "ps",
            "--filter",
            &filter,
            "--format",
            "{{.ID}} {{upper .State}} {{json .Names}}",
        ],
        vec!["images", &repo],
        vec!["images", "--format", "json", &repo],
        vec![
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.Size}}",
            &repo,
        ],
        vec!["history", &img],
        vec![
            "history",
            "--no-trunc",
            "--format",
            "table {{.ID}}\t{{.CreatedBy}}",
            &img,
        ],
        vec!["inspect", &name],
        vec![
            "inspect",
            "-f",
            "{{.Name}} {{json .Config.Labels}} {{.State.Status}}",
            &name,
        ],
        vec!["image", "inspect", &img],
        vec!["volume", "ls"],
        vec!["top", &name, "-o", "pid,args"],
    ];
    for args in &cases {
        let ours = out(&ok(berth(&h, args)));
        let theirs = docker(args);
        assert_eq!(normalise(&ours), normalise(&theirs), "berth {args:?}");
    }
    // networks: berthd may not serve them yet
    let n = Command::new("docker")
        .arg("-H")
        .arg(&h)
        .args(["network", "ls"])
        .output()
        .expect("docker");
    if n.status.success() {
        assert_eq!(
            normalise(&out(&ok(berth(&h, &["network", "ls"])))),
            normalise(&out(&n))
        );
    } else {
        eprintln!(
            "network ls: pending until the daemon serves networks ({})",
            err(&n).trim()
        );
    }
    ok(berth(&h, &["rm", "-f", &name]));
    rmi(&h, &img);
}
