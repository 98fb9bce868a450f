//! `berth run` and `berth start -a`: create -> attach + wait -> start -> stream -> exit code,
//! in the same order as the docker CLI.

use crate::cmds::connect;
use anyhow::{bail, Result};
use berth_client::Client;
use clap::{ArgAction, Args};
use serde_json::{json, Map, Value};
use std::io::IsTerminal;

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
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach")]
    pub attach: Vec<String>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long = "expose")]
    pub expose: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])
    #[arg(long = "restart")]
    pub restart: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long = "cpus")]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options
    #[arg(long = "ulimit")]
    pub ulimit: Vec<String>,
    /// Sysctl options
    #[arg(long = "sysctl")]
    pub sysctl: Vec<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_negative_numbers = true)]
    pub oom_score_adj: Option<i64>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount")]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Add a host device to the container
    #[arg(long = "device")]
    pub device: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long = "init")]
    pub init: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Container NIS domain name
    #[arg(long = "domainname")]
    pub domainname: Option<String>,
    /// IPC mode to use
    #[arg(long = "ipc")]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long = "pid")]
    pub pid: Option<String>,
    /// UTS namespace to use
    #[arg(long = "uts")]
    pub uts: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long = "cgroupns")]
    pub cgroupns: Option<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Container runtime to use for this container
    #[arg(long = "runtime")]
    pub runtime: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long = "pull", default_value = "missing")]
    pub pull: String,
    /// Write the container ID to the file
    #[arg(long = "cidfile")]
    pub cidfile: Option<String>,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Suppress the pull output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
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
    match run_inner(host, &a).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "berth: {}\n\nRun 'berth run --help' for more information",
                e.msg
            );
            e.code
        }
    }
}

/// `berth create`: prints the new container's id; daemon errors exit 125.
pub async fn create(host: Option<&str>, a: RunArgs) -> i32 {
    let r = async {
        let body = create_body(&a).map_err(|e| rerr(format!("{e:#}"), 125))?;
        let client = connect(host).await.map_err(|e| rerr(e, 125))?;
        let id = create_pulling(&client, &a, &body).await?;
        Ok::<_, RunError>(id)
    }
    .await;
    match r {
        Ok(id) => {
            println!("{id}");
            0
        }
        Err(e) => {
            eprintln!(
                "berth: {}\n\nRun 'berth create --help' for more information",
                e.msg
            );
            e.code
        }
    }
}

/// Pull `image` printing the progress to stderr (as `run`/`create` do); errors as daemon errors.
async fn pull_for_run(
    client: &Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
) -> Result<(), RunError> {
    let (repo, tag) = crate::image::split_pull_ref(image);
    let auth = crate::auth::registry_auth_header(image);
    let mut lines = client
        .pull(&repo, &tag, platform, &auth)
        .await
        .map_err(|e| rerr(e, 125))?;
    loop {
        match lines.next().await {
            Ok(Some(v)) => {
                if quiet {
                    continue;
                }
                let status = v.get("status").and_then(Value::as_str).unwrap_or("");
                let has_progress = v
                    .get("progressDetail")
                    .is_some_and(|d| d.get("current").is_some() || d.get("total").is_some());
                if has_progress {
                    continue;
                }
                match v.get("id").and_then(Value::as_str) {
                    Some(id) => eprintln!("{id}: {status}"),
                    None => eprintln!("{status}"),
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(rerr(e, 125)),
        }
    }
}

/// Create, pulling the image first (`--pull always`) or when the daemon does not have it
/// (`--pull missing`, the default), like the docker CLI.
async fn create_pulling(client: &Client, a: &RunArgs, body: &Value) -> Result<String, RunError> {
    let image = a.args.first().cloned().unwrap_or_default();
    let policy = if a.pull.is_empty() {
        "missing"
    } else {
        a.pull.as_str()
    };
    if !matches!(policy, "missing" | "always" | "never") {
        return Err(rerr(format!("invalid pull option: '{policy}': must be one of \"always\", \"missing\" or \"never\""), 125));
    }
    if policy == "always" {
        pull_for_run(client, &image, a.platform.as_deref(), a.quiet).await?;
    }
    let created = match client.create_container(a.name.as_deref(), body).await {
        Ok(c) => c,
        Err(e)
            if e.is_not_found()
                && policy == "missing"
                && e.api_message()
                    .is_some_and(|m| m.to_lowercase().contains("no such image")) =>
        {
            eprintln!(
                "Unable to find image '{}' locally",
                with_default_tag(&image)
            );
            pull_for_run(client, &image, a.platform.as_deref(), a.quiet).await?;
            client
                .create_container(a.name.as_deref(), body)
                .await
                .map_err(|e| rerr(e, 125))?
        }
        Err(e) => return Err(rerr(e, 125)),
    };
    for w in created.warnings.iter().flatten() {
        eprintln!("WARNING: {w}");
    }
    if let Some(f) = &a.cidfile {
        std::fs::write(f, &created.id).map_err(|e| {
            rerr(
                format!("failed to write the container ID to the file: {e}"),
                125,
            )
        })?;
    }
    Ok(created.id)
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

/// `-a stdin|stdout|stderr` -> (stdin, stdout, stderr); without `-a`, stdout and stderr.
pub fn attach_streams(a: &RunArgs) -> Result<(bool, bool, bool)> {
    if a.attach.is_empty() {
        return Ok((false, true, true));
    }
    if a.detach {
        bail!("conflicting options: cannot specify both --attach and --detach");
    }
    let mut s = (false, false, false);
    for x in &a.attach {
        match x.to_ascii_lowercase().as_str() {
            "stdin" => s.0 = true,
            "stdout" => s.1 = true,
            "stderr" => s.2 = true,
            other => bail!("invalid argument \"{other}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"),
        }
    }
    Ok(s)
}

/// Build the full `POST /containers/create` body the docker CLI would send.
pub fn create_body(a: &RunArgs) -> Result<Value> {
    let image = a.args.first().cloned().unwrap_or_default();
    let cmd: Vec<String> = a.args.iter().skip(1).cloned().collect();
    let attached = !a.detach;
    let streams = attach_streams(a)?;
    let mut env: Vec<String> = Vec::new();
    for f in &a.env_file {
        env.extend(parse_env_file(f)?);
    }
    env.extend(a.env.iter().map(|e| expand_env(e)));
    let mut labels = Map::new();
    let mut label_lines: Vec<String> = Vec::new();
    for f in &a.label_file {
        let text = std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("open {f}: {e}"))?;
        label_lines.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    for l in label_lines.iter().chain(a.label.iter()) {
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
    for e in &a.expose {
        let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        exposed.insert(format!("{port}/{proto}"), json!({}));
    }
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
    let mut ep = endpoint_settings();
    if !a.network_alias.is_empty() {
        ep["Aliases"] = json!(a.network_alias);
    }
    endpoints.insert(network.clone(), ep);
    let ulimits: Vec<Value> = a
        .ulimit
        .iter()
        .map(|u| crate::opts::ulimit(u))
        .collect::<Result<_>>()?;
    let mounts: Vec<Value> = a
        .mount
        .iter()
        .map(|m| crate::opts::mount(m))
        .collect::<Result<_>>()?;
    let devices: Vec<Value> = a
        .device
        .iter()
        .map(|d| crate::opts::device(d))
        .collect::<Result<_>>()?;
    let mut tmpfs = Map::new();
    for t in &a.tmpfs {
        let (p, o) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(p.to_string(), json!(o));
    }
    let caps = |v: &[String]| -> Value {
        if v.is_empty() {
            return Value::Null;
        }
        json!(v
            .iter()
            .map(|c| {
                let c = c.to_ascii_uppercase();
                if c == "ALL" || c.starts_with("CAP_") {
                    c
                } else {
                    format!("CAP_{c}")
                }
            })
            .collect::<Vec<_>>())
    };
    let restart = match &a.restart {
        Some(r) => crate::opts::restart_policy(r)?,
        None => json!({"Name": "no", "MaximumRetryCount": 0}),
    };
    if a.rm && restart["Name"] != "no" {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    let mem = a
        .memory
        .as_deref()
        .map(crate::opts::ram_in_bytes)
        .transpose()?
        .unwrap_or(0);
    let swap = a
        .memory_swap
        .as_deref()
        .map(crate::opts::swap_bytes)
        .transpose()?
        .unwrap_or(0);
    let mem_res = a
        .memory_reservation
        .as_deref()
        .map(crate::opts::ram_in_bytes)
        .transpose()?
        .unwrap_or(0);
    let shm = a
        .shm_size
        .as_deref()
        .map(crate::opts::ram_in_bytes)
        .transpose()?
        .unwrap_or(0);
    let nano_cpus = a.cpus.map(|c| (c * 1e9).round() as i64).unwrap_or(0);
    let log_config = json!({
        "Type": a.log_driver.clone().unwrap_or_default(),
        "Config": crate::opts::kv_map(&a.log_opt),
    });
    let console = match (a.tty, crate::tty::terminal_size()) {
        (true, Some((h, w))) => json!([h, w]),
        _ => json!([0, 0]),
    };
    let healthcheck = if a.no_healthcheck {
        Some(json!({"Test": ["NONE"]}))
    } else if a.health_cmd.is_some()
        || a.health_interval.is_some()
        || a.health_timeout.is_some()
        || a.health_retries.is_some()
        || a.health_start_period.is_some()
    {
        let mut h = Map::new();
        if let Some(c) = &a.health_cmd {
            h.insert("Test".into(), json!(["CMD-SHELL", c]));
        }
        for (k, v) in [
            ("Interval", &a.health_interval),
            ("Timeout", &a.health_timeout),
            ("StartPeriod", &a.health_start_period),
        ] {
            if let Some(v) = v {
                h.insert(k.into(), json!(crate::opts::duration_ns(v)?));
            }
        }
        if let Some(r) = a.health_retries {
            h.insert("Retries".into(), json!(r));
        }
        Some(Value::Object(h))
    } else {
        None
    };

    let mut body = json!({
        "Hostname": a.hostname.clone().unwrap_or_default(),
        "Domainname": a.domainname.clone().unwrap_or_default(),
        "User": a.user.clone().unwrap_or_default(),
        "AttachStdin": attached && (a.interactive || streams.0),
        "AttachStdout": attached && streams.1,
        "AttachStderr": attached && streams.2,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        // On a terminal the session can be detached (ctrl-p ctrl-q) and attached again, so
        // the container's stdin must outlive this connection: no StdinOnce then.
        "StdinOnce": attached && a.interactive && !(a.tty && std::io::stdin().is_terminal()),
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
            "LogConfig": log_config,
            "NetworkMode": network,
            "PortBindings": bindings,
            "RestartPolicy": restart,
            "AutoRemove": a.rm,
            "VolumeDriver": "",
            "VolumesFrom": if a.volumes_from.is_empty() { Value::Null } else { json!(a.volumes_from) },
            "ConsoleSize": console,
            "CapAdd": caps(&a.cap_add), "CapDrop": caps(&a.cap_drop),
            "CgroupnsMode": a.cgroupns.clone().unwrap_or_default(),
            "Dns": a.dns, "DnsOptions": a.dns_option, "DnsSearch": a.dns_search,
            "ExtraHosts": if a.add_host.is_empty() { Value::Null } else { json!(a.add_host) },
            "GroupAdd": if a.group_add.is_empty() { Value::Null } else { json!(a.group_add) },
            "IpcMode": a.ipc.clone().unwrap_or_default(), "Cgroup": "",
            "Links": null, "OomScoreAdj": a.oom_score_adj.unwrap_or(0),
            "PidMode": a.pid.clone().unwrap_or_default(), "Privileged": a.privileged,
            "PublishAllPorts": a.publish_all, "ReadonlyRootfs": a.read_only,
            "SecurityOpt": if a.security_opt.is_empty() { Value::Null } else { json!(a.security_opt) },
            "UTSMode": a.uts.clone().unwrap_or_default(), "UsernsMode": "", "ShmSize": shm,
            "Isolation": "",
            "CpuShares": a.cpu_shares.unwrap_or(0), "Memory": mem, "NanoCpus": nano_cpus,
            "CgroupParent": a.cgroup_parent.clone().unwrap_or_default(),
            "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
            "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
            "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
            "CpusetCpus": a.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": a.cpuset_mems.clone().unwrap_or_default(),
            "Devices": devices, "DeviceCgroupRules": null,
            "DeviceRequests": null, "MemoryReservation": mem_res, "MemorySwap": swap,
            "MemorySwappiness": -1, "OomKillDisable": false, "PidsLimit": a.pids_limit.unwrap_or(0),
            "Ulimits": ulimits,
            "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            "MaskedPaths": null, "ReadonlyPaths": null
        },
        "NetworkingConfig": {"EndpointsConfig": endpoints}
    });
    if let Some(o) = body.as_object_mut() {
        if !exposed.is_empty() {
            o.insert("ExposedPorts".into(), Value::Object(exposed));
        }
        if let Some(h) = healthcheck {
            o.insert("Healthcheck".into(), h);
        }
        if let Some(sig) = &a.stop_signal {
            o.insert("StopSignal".into(), json!(sig));
        }
        if let Some(t) = a.stop_timeout {
            o.insert("StopTimeout".into(), json!(t));
        }
    }
    let hc = &mut body["HostConfig"];
    if !tmpfs.is_empty() {
        hc["Tmpfs"] = Value::Object(tmpfs);
    }
    if !mounts.is_empty() {
        hc["Mounts"] = json!(mounts);
    }
    if !a.sysctl.is_empty() {
        hc["Sysctls"] = Value::Object(crate::opts::kv_map(&a.sysctl));
    }
    if a.init {
        hc["Init"] = json!(true);
    }
    if let Some(rt) = &a.runtime {
        hc["Runtime"] = json!(rt);
    }
    Ok(body)
}

async fn run_inner(host: Option<&str>, a: &RunArgs) -> Result<i32, RunError> {
    if let Some(f) = &a.cidfile {
        if std::path::Path::new(f).exists() {
            return Err(rerr(format!("container ID file found, make sure the other container isn't running or delete {f}"), 125));
        }
    }
    let detach_keys =
        crate::tty::detach_keys(a.detach_keys.as_deref()).map_err(|e| rerr(e, 125))?;
    let body = create_body(a).map_err(|e| rerr(format!("{e:#}"), 125))?;
    let client = connect(host).await.map_err(|e| rerr(e, 125))?;
    let id = create_pulling(&client, a, &body).await?;
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

    let spec = a
        .interactive
        .then(|| crate::tty::detach_keys_spec(a.detach_keys.as_deref()));
    let streams = attach_streams(a).map_err(|e| rerr(e, 125))?;
    let (attach, wait) = tokio::join!(
        client.attach_container_keys(
            &id,
            a.interactive || streams.0,
            streams.1,
            streams.2,
            spec.as_deref()
        ),
        client.wait_container(&id, Some(condition)),
    );
    let stream = attach.map_err(|e| rerr(e, 125))?;
    let wait = wait.map_err(|e| rerr(e, 125))?;
    let guard = crate::tty::RawModeGuard::enable(a.tty && a.interactive);
    if let Err(e) = client.start_container(&id).await {
        drop(guard);
        let code = start_failure_code(&e.to_string());
        return Err(rerr(e, code));
    }
    let resizer = if a.tty {
        crate::tty::monitor_size(&client, crate::tty::ResizeTarget::Container(id.clone()))
    } else {
        None
    };
    let proxy = (a.sig_proxy && !a.tty).then(|| crate::tty::proxy_signals(&client, &id));
    let end = crate::tty::pump(
        stream,
        crate::tty::PumpOpts {
            tty: a.tty,
            stdin: a.interactive,
            detach_keys,
            forward_keys: crate::tty::daemon_detaches(&client),
        },
    )
    .await;
    if let Some(r) = resizer {
        r.abort();
    }
    if let Some(p) = proxy {
        p.abort();
    }
    drop(guard);
    match end.map_err(|e| rerr(format!("{e:#}"), 125))? {
        crate::tty::PumpEnd::Detached => return Ok(0),
        crate::tty::PumpEnd::Eof => {}
    }
    let res = wait.result().await.map_err(|e| rerr(e, 125))?;
    if let Some(err) = res.error.as_ref().filter(|e| !e.message.is_empty()) {
        eprintln!("berth: {}", err.message);
    }
    Ok(res.status_code as i32)
}

/// `berth start -a [-i] NAME`: inspect, attach, wait, start, stream; exit code from wait.
pub async fn start_attached(
    host: Option<&str>,
    name: &str,
    interactive: bool,
    detach_keys: Option<&str>,
) -> Result<i32> {
    let sig_proxy = true;
    let keys = crate::tty::detach_keys(detach_keys)?;
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
    let spec = stdin.then(|| crate::tty::detach_keys_spec(detach_keys));
    let stream = client
        .attach_container_keys(&id, stdin, true, true, spec.as_deref())
        .await?;
    let wait = client.wait_container(&id, Some("next-exit")).await?;
    let guard = crate::tty::RawModeGuard::enable(tty && stdin);
    if let Err(e) = client.start_container(&id).await {
        drop(guard);
        eprintln!("{e}");
        return Ok(start_failure_code(&e.to_string()).max(1));
    }
    let resizer = tty
        .then(|| crate::tty::monitor_size(&client, crate::tty::ResizeTarget::Container(id.clone())))
        .flatten();
    let proxy = (!tty && sig_proxy).then(|| crate::tty::proxy_signals(&client, &id));
    let end = crate::tty::pump(
        stream,
        crate::tty::PumpOpts {
            tty,
            stdin,
            detach_keys: keys,
            forward_keys: crate::tty::daemon_detaches(&client),
        },
    )
    .await;
    if let Some(r) = resizer {
        r.abort();
    }
    if let Some(p) = proxy {
        p.abort();
    }
    drop(guard);
    if end? == crate::tty::PumpEnd::Detached {
        return Ok(0);
    }
    let res = wait.result().await?;
    Ok(res.status_code as i32)
}

/// `berth attach C`: wait, inspect, attach, stream; exit code from the wait result.
pub async fn attach(host: Option<&str>, a: &crate::container::AttachArgs) -> Result<i32> {
    let sig_proxy = a.sig_proxy;
    let keys = crate::tty::detach_keys(a.detach_keys.as_deref())?;
    let client: Client = connect(host).await?;
    let c = client.inspect_container(&a.container).await?;
    let id = c
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or(&a.container)
        .to_string();
    let running = c
        .pointer("/State/Running")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !running {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    if c.pointer("/State/Paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        anyhow::bail!("You cannot attach to a paused container, unpause it first");
    }
    let tty = c
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let open_stdin = c
        .pointer("/Config/OpenStdin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stdin = open_stdin && !a.no_stdin;
    let wait = client.wait_container(&id, None).await?;
    let spec = stdin.then(|| crate::tty::detach_keys_spec(a.detach_keys.as_deref()));
    let stream = client
        .attach_container_keys(&id, stdin, true, true, spec.as_deref())
        .await?;
    let guard = crate::tty::RawModeGuard::enable(tty && stdin);
    let resizer = tty
        .then(|| crate::tty::monitor_size(&client, crate::tty::ResizeTarget::Container(id.clone())))
        .flatten();
    let proxy = (!tty && sig_proxy).then(|| crate::tty::proxy_signals(&client, &id));
    let end = crate::tty::pump(
        stream,
        crate::tty::PumpOpts {
            tty,
            stdin,
            detach_keys: keys,
            forward_keys: crate::tty::daemon_detaches(&client),
        },
    )
    .await;
    if let Some(r) = resizer {
        r.abort();
    }
    if let Some(p) = proxy {
        p.abort();
    }
    drop(guard);
    if end? == crate::tty::PumpEnd::Detached {
        return Ok(0);
    }
    let res = wait.result().await?;
    Ok(res.status_code as i32)
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
