//! `berth run` and `berth start -a`: create -> attach + wait -> start -> stream -> exit code,
//! in the same order as the docker CLI.

use crate::cmds::connect;
use anyhow::{bail, Result};
use berth_client::{Client, Hijacked};
use clap::{ArgAction, Args};
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;

#[derive(Args, Debug, Clone, Default)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print usage
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long = "rm")]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long = "name")]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname")]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint")]
    pub entrypoint: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

/// An error of `run` itself: printed with the `berth:` prefix, with docker's exit codes.
struct RunError {
    msg: String,
    code: i32,
}

fn rerr(msg: impl std::fmt::Display, code: i32) -> RunError {
    RunError {
        msg: msg.to_string(),
        code,
    }
}

/// Entry point: returns the exit code.
pub async fn run(host: Option<&str>, a: RunArgs) -> i32 {
    let guard = RawModeGuard::enable(a.tty && a.interactive && !a.detach);
    match run_inner(host, &a).await {
        Ok(code) => code,
        Err(e) => {
            drop(guard);
            eprintln!(
                "berth: {}\n\nRun 'berth run --help' for more information",
                e.msg
            );
            e.code
        }
    }
}

/// Exit code for a failed start, as the docker CLI derives it from the daemon's message.
pub fn start_failure_code(msg: &str) -> i32 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

/// `busybox` -> `busybox:latest` (for the "Unable to find image" line).
pub fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

fn parse_env_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("open {path}: {e}"))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        out.push(expand_env(l));
    }
    Ok(out)
}

/// `-e NAME` (no '=') takes the value from the client environment, or is dropped if unset.
fn expand_env(e: &str) -> String {
    if e.contains('=') {
        e.to_string()
    } else {
        match std::env::var(e) {
            Ok(v) => format!("{e}={v}"),
            Err(_) => e.to_string(),
        }
    }
}

/// Parse `-p [ip:][hostPort:]containerPort[/proto]` into (port key, HostIp, HostPort).
pub fn parse_publish(spec: &str) -> Result<(String, String, String)> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p),
        None => (spec, "tcp"),
    };
    // IPv6 host ips come in brackets: [::1]:8080:80
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        match r.split_once("]:") {
            Some((ip, r)) => (ip.to_string(), r.to_string()),
            None => bail!("invalid published port {spec:?}"),
        }
    } else {
        (String::new(), rest.to_string())
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host_port, cport) = match parts.as_slice() {
        [c] => (ip, String::new(), c.to_string()),
        [h, c] => (ip, h.to_string(), c.to_string()),
        [i, h, c] if ip.is_empty() => (i.to_string(), h.to_string(), c.to_string()),
        _ => bail!("invalid published port {spec:?}"),
    };
    if cport.is_empty() || !cport.chars().all(|c| c.is_ascii_digit() || c == '-') {
        bail!("invalid containerPort: {cport}");
    }
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    Ok((format!("{cport}/{proto}"), ip, host_port))
}

fn endpoint_settings() -> Value {
    json!({
        "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
        "DriverOpts": null, "GwPriority": 0, "NetworkID": "", "EndpointID": "",
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null
    })
}

/// Build the full `POST /containers/create` body the docker CLI would send.
pub fn create_body(a: &RunArgs) -> Result<Value> {
    let image = a.args.first().cloned().unwrap_or_default();
    let cmd: Vec<String> = a.args.iter().skip(1).cloned().collect();
    let attached = !a.detach;
    let mut env: Vec<String> = Vec::new();
    for f in &a.env_file {
        env.extend(parse_env_file(f)?);
    }
    env.extend(a.env.iter().map(|e| expand_env(e)));
    let mut labels = Map::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    let mut volumes = Map::new();
    let mut binds: Vec<String> = Vec::new();
    for v in &a.volume {
        if v.contains(':') {
            binds.push(v.clone());
        } else {
            volumes.insert(v.clone(), json!({}));
        }
    }
    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for p in &a.publish {
        let (key, ip, hp) = parse_publish(p)?;
        exposed.insert(key.clone(), json!({}));
        let e = bindings.entry(key).or_insert_with(|| json!([]));
        if let Some(arr) = e.as_array_mut() {
            arr.push(json!({"HostIp": ip, "HostPort": hp}));
        }
    }
    let network = a.network.clone().unwrap_or_else(|| "default".into());
    let mut endpoints = Map::new();
    endpoints.insert(network.clone(), endpoint_settings());

    let mut body = json!({
        "Hostname": a.hostname.clone().unwrap_or_default(),
        "Domainname": "",
        "User": a.user.clone().unwrap_or_default(),
        "AttachStdin": attached && a.interactive,
        "AttachStdout": attached,
        "AttachStderr": attached,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": attached && a.interactive,
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Entrypoint": match &a.entrypoint { Some(e) => json!([e]), None => Value::Null },
        "OnBuild": null,
        "Labels": labels,
        "HostConfig": {
            "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
            "ContainerIDFile": "",
            "LogConfig": {"Type": "", "Config": {}},
            "NetworkMode": network,
            "PortBindings": bindings,
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": a.rm,
            "VolumeDriver": "",
            "VolumesFrom": null,
            "ConsoleSize": [0, 0],
            "CapAdd": null, "CapDrop": null, "CgroupnsMode": "",
            "Dns": [], "DnsOptions": [], "DnsSearch": [],
            "ExtraHosts": null, "GroupAdd": null, "IpcMode": "", "Cgroup": "",
            "Links": null, "OomScoreAdj": 0, "PidMode": "", "Privileged": false,
            "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null,
            "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "",
            "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
            "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
            "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
            "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
            "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": null,
            "DeviceRequests": null, "MemoryReservation": 0, "MemorySwap": 0,
            "MemorySwappiness": -1, "OomKillDisable": false, "PidsLimit": 0, "Ulimits": [],
            "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            "MaskedPaths": null, "ReadonlyPaths": null
        },
        "NetworkingConfig": {"EndpointsConfig": endpoints}
    });
    if !exposed.is_empty() {
        if let Some(o) = body.as_object_mut() {
            o.insert("ExposedPorts".into(), Value::Object(exposed));
        }
    }
    Ok(body)
}

async fn run_inner(host: Option<&str>, a: &RunArgs) -> Result<i32, RunError> {
    let body = create_body(a).map_err(|e| rerr(format!("{e:#}"), 125))?;
    let image = a.args.first().cloned().unwrap_or_default();
    let client = connect(host).await.map_err(|e| rerr(e, 125))?;
    let created = match client.create_container(a.name.as_deref(), &body).await {
        Ok(c) => c,
        Err(e)
            if e.is_not_found()
                && e.api_message()
                    .is_some_and(|m| m.to_lowercase().contains("no such image")) =>
        {
            eprintln!(
                "Unable to find image '{}' locally",
                with_default_tag(&image)
            );
            return Err(rerr(
                format!(
                    "{e}.\nBerth cannot pull images yet; load it with: berth import FILE.tar {}",
                    with_default_tag(&image)
                ),
                125,
            ));
        }
        Err(e) => return Err(rerr(e, 125)),
    };
    for w in created.warnings.iter().flatten() {
        eprintln!("WARNING: {w}");
    }
    let id = created.id;
    let condition = if a.rm { "removed" } else { "next-exit" };

    if a.detach {
        let wait = client
            .wait_container(&id, Some(condition))
            .await
            .map_err(|e| rerr(e, 125))?;
        if let Err(e) = client.start_container(&id).await {
            let code = start_failure_code(&e.to_string());
            return Err(rerr(e, code));
        }
        drop(wait);
        println!("{id}");
        return Ok(0);
    }

    let (attach, wait) = tokio::join!(
        client.attach_container(&id, a.interactive, true, true),
        client.wait_container(&id, Some(condition)),
    );
    let stream = attach.map_err(|e| rerr(e, 125))?;
    let wait = wait.map_err(|e| rerr(e, 125))?;
    if let Err(e) = client.start_container(&id).await {
        let code = start_failure_code(&e.to_string());
        return Err(rerr(e, code));
    }
    pump(stream, a.tty, a.interactive)
        .await
        .map_err(|e| rerr(format!("{e:#}"), 125))?;
    let res = wait.result().await.map_err(|e| rerr(e, 125))?;
    if let Some(err) = res.error.as_ref().filter(|e| !e.message.is_empty()) {
        eprintln!("berth: {}", err.message);
    }
    Ok(res.status_code as i32)
}

/// Stream a hijacked attach connection: stdin up (raw), output down (demuxed unless TTY).
/// Returns when the daemon closes the stream.
pub async fn pump(stream: Hijacked, tty: bool, stdin: bool) -> Result<()> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    if stdin {
        tokio::spawn(async move {
            let mut input = tokio::io::stdin();
            let _ = tokio::io::copy(&mut input, &mut wr).await;
            // Half-close so the daemon closes the container's stdin (StdinOnce).
            let _ = wr.shutdown().await;
            // keep the write half alive until the task ends
            drop(wr);
        });
    } else {
        // Like the docker CLI: nothing to send, half-close at once.
        let _ = wr.shutdown().await;
        // Keep `wr` alive until the output ends so the read half stays usable.
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(u64::MAX / 4)).await;
            drop(wr);
        });
    }
    let mut out = tokio::io::stdout();
    if tty {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            use tokio::io::AsyncReadExt;
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).await?;
            out.flush().await?;
        }
    } else {
        let mut err = tokio::io::stderr();
        berth_client::demux_copy(rd, &mut out, &mut err).await?;
    }
    Ok(())
}

/// `berth start -a [-i] NAME`: inspect, attach, wait, start, stream; exit code from wait.
pub async fn start_attached(host: Option<&str>, name: &str, interactive: bool) -> Result<i32> {
    let client: Client = connect(host).await?;
    let c = client.inspect_container(name).await?;
    let id = c
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_string();
    let tty = c
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let open_stdin = c
        .pointer("/Config/OpenStdin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stdin = interactive && open_stdin;
    let _guard = RawModeGuard::enable(tty && stdin);
    let stream = client.attach_container(&id, stdin, true, true).await?;
    let wait = client.wait_container(&id, Some("next-exit")).await?;
    if let Err(e) = client.start_container(&id).await {
        eprintln!("{e}");
        return Ok(start_failure_code(&e.to_string()).max(1));
    }
    pump(stream, tty, stdin).await?;
    let res = wait.result().await?;
    Ok(res.status_code as i32)
}

/// Puts the local terminal into raw mode for `-it` and restores it on drop.
struct RawModeGuard {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawModeGuard {
    fn enable(want: bool) -> Self {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        use std::io::IsTerminal;
        let stdin = std::io::stdin();
        if !want || !stdin.is_terminal() {
            return RawModeGuard { saved: None };
        }
        let Ok(orig) = tcgetattr(&stdin) else {
            return RawModeGuard { saved: None };
        };
        let mut raw = orig.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawModeGuard { saved: None };
        }
        RawModeGuard { saved: Some(orig) }
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        if let Some(t) = self.saved.take() {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &t,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        r: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        let mut v = vec!["run"];
        v.extend_from_slice(args);
        T::try_parse_from(v).unwrap().r
    }

    #[test]
    fn options_after_the_image_belong_to_the_command() {
        let a = parse(&[
            "-d", "--name", "x", "-h", "hn", "busybox", "ls", "-l", "-h", "--rm",
        ]);
        assert!(a.detach);
        assert!(!a.rm);
        assert_eq!(a.hostname.as_deref(), Some("hn"));
        assert_eq!(a.args, vec!["busybox", "ls", "-l", "-h", "--rm"]);
        let a = parse(&["-it", "--rm", "busybox"]);
        assert!(a.interactive && a.tty && a.rm);
    }

    #[test]
    fn create_body_matches_the_docker_cli() {
        let a = parse(&[
            "-d",
            "-e",
            "A=1",
            "-l",
            "k=v",
            "-v",
            "/h:/c:ro",
            "-v",
            "/anon",
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1::53/udp",
            "-w",
            "/bin",
            "-u",
            "0:0",
            "--entrypoint",
            "/bin/sh",
            "busybox",
            "-c",
            "true",
        ]);
        let b = create_body(&a).unwrap();
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["-c", "true"]));
        assert_eq!(b["Entrypoint"], json!(["/bin/sh"]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["Labels"], json!({"k": "v"}));
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        assert_eq!(b["HostConfig"]["Binds"], json!(["/h:/c:ro"]));
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                   "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]})
        );
        assert_eq!(b["HostConfig"]["NetworkMode"], "default");
        assert!(b["NetworkingConfig"]["EndpointsConfig"]["default"].is_object());
        assert_eq!(b["AttachStdout"], false);
        assert_eq!(b["HostConfig"]["MemorySwappiness"], -1);

        let a = parse(&["--rm", "-i", "--network", "none", "busybox"]);
        let b = create_body(&a).unwrap();
        assert_eq!(b["Cmd"], Value::Null);
        assert_eq!(b["Env"], Value::Null);
        assert_eq!(b["HostConfig"]["AutoRemove"], true);
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["StdinOnce"], true);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["AttachStderr"], true);
        assert_eq!(b["HostConfig"]["NetworkMode"], "none");
        assert!(b.get("ExposedPorts").is_none());
    }

    #[test]
    fn exit_codes_and_names() {
        assert_eq!(
            start_failure_code("exec: \"nosuch\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_failure_code("stat /nonexistent: no such file or directory"),
            127
        );
        assert_eq!(start_failure_code("exec: \"/etc\": permission denied"), 126);
        assert_eq!(start_failure_code("something else"), 125);
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_default_tag("localhost:5000/bb"),
            "localhost:5000/bb:latest"
        );
        assert_eq!(with_default_tag("bb:1"), "bb:1");
        assert!(parse_publish("80/xyz").is_err());
        assert_eq!(
            parse_publish("[::1]:8080:80").unwrap(),
            ("80/tcp".into(), "::1".into(), "8080".into())
        );
    }
}
