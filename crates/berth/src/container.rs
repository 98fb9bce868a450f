//! Container commands beyond run/start/stop: exec, attach, restart, pause, unpause, top,
//! stats, port, diff, export, cp, rename, update, commit, container prune.

use crate::cmds::connect;
use crate::humanize::{bytes_size, human_size_prec, short_id, table_min};
use anyhow::{anyhow, bail, Context, Result};
use berth_client::{Client, ExecOptions};
use clap::Args;
use serde_json::{json, Value};
use std::io::IsTerminal;

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

// ----- exec -----------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, value_name = "CONTAINER COMMAND [ARG...]")]
    pub args: Vec<String>,
}

fn env_list(env: &[String], files: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("open {f}"))?;
        for l in text.lines() {
            let l = l.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            out.push(expand_env(l));
        }
    }
    out.extend(env.iter().map(|e| expand_env(e)));
    Ok(out)
}

fn expand_env(e: &str) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match std::env::var(e) {
        Ok(v) => format!("{e}={v}"),
        Err(_) => e.to_string(),
    }
}

/// `berth exec`: exit code of the process; daemon errors 126/127 when the process cannot
/// start, otherwise 1 like the docker CLI.
pub async fn exec(host: Option<&str>, a: ExecArgs) -> Result<i32> {
    let container = a.args[0].clone();
    let keys = crate::tty::detach_keys(a.detach_keys.as_deref())?;
    let client = connect(host).await?;
    let c = client.inspect_container(&container).await?;
    if !c
        .pointer("/State/Running")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        bail!(
            "Error response from daemon: container {} is not running",
            s(&c, "/Id")
        );
    }
    let opts = ExecOptions {
        cmd: a.args[1..].to_vec(),
        user: a.user.clone().unwrap_or_default(),
        privileged: a.privileged,
        tty: a.tty,
        attach_stdin: a.interactive,
        detach: a.detach,
        detach_keys: a.detach_keys.clone().unwrap_or_default(),
        env: env_list(&a.env, &a.env_file)?,
        workdir: a.workdir.clone().unwrap_or_default(),
    };
    let id = client.exec_create(&container, &opts).await?;
    if a.detach {
        client.exec_start_detached(&id, a.tty).await?;
        return Ok(0);
    }
    let stream = client.exec_start_attached(&id, a.tty).await?;
    let guard = crate::tty::RawModeGuard::enable(a.tty && a.interactive);
    let resizer = a
        .tty
        .then(|| crate::tty::monitor_size(&client, crate::tty::ResizeTarget::Exec(id.clone())))
        .flatten();
    let end = crate::tty::pump(
        stream,
        crate::tty::PumpOpts {
            tty: a.tty,
            stdin: a.interactive,
            detach_keys: keys,
            forward_keys: crate::tty::daemon_detaches(&client),
        },
    )
    .await;
    if let Some(r) = resizer {
        r.abort();
    }
    drop(guard);
    if end? == crate::tty::PumpEnd::Detached {
        return Ok(0);
    }
    let info = client.exec_inspect(&id).await?;
    Ok(info.get("ExitCode").and_then(Value::as_i64).unwrap_or(0) as i32)
}

// ----- attach ---------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    pub container: String,
}

// ----- simple per-container actions ---------------------------------------------------

#[derive(Args, Debug)]
pub struct RestartArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_negative_numbers = true
    )]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Apply `action` to each container; print its name; exit 1 if any failed.
pub async fn each(
    host: Option<&str>,
    names: &[String],
    action: &str,
    q: Vec<(&'static str, String)>,
) -> Result<i32> {
    let client = connect(host).await?;
    let mut failed = Vec::new();
    for n in names {
        match client.container_action(n, action, &q).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{e}");
                failed.push(n.clone());
            }
        }
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

pub async fn restart(host: Option<&str>, a: RestartArgs) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(sig) = a.signal {
        q.push(("signal", sig));
    }
    if let Some(t) = a.time {
        q.push(("t", t.to_string()));
    }
    each(host, &a.names, "restart", q).await
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

pub async fn rename(host: Option<&str>, a: RenameArgs) -> Result<i32> {
    let client = connect(host).await?;
    client
        .container_action(&a.container, "rename", &[("name", a.new_name.clone())])
        .await?;
    Ok(0)
}

// ----- top ----------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// [ps OPTIONS]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub async fn top(host: Option<&str>, a: TopArgs) -> Result<i32> {
    let client = connect(host).await?;
    let ps = if a.ps_args.is_empty() {
        None
    } else {
        Some(a.ps_args.join(" "))
    };
    let v = client.top(&a.container, ps.as_deref()).await?;
    let mut rows: Vec<Vec<String>> = vec![v["Titles"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()];
    for p in v["Processes"].as_array().into_iter().flatten() {
        rows.push(
            p.as_array()
                .map(|r| {
                    r.iter()
                        .map(|x| x.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default(),
        );
    }
    print!("{}", table_min(&rows, 20));
    Ok(0)
}

// ----- port ---------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

pub async fn port(host: Option<&str>, a: PortArgs) -> Result<i32> {
    let client = connect(host).await?;
    let c = client.inspect_container(&a.container).await?;
    let ports = c
        .pointer("/NetworkSettings/Ports")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort_by_key(|k| {
        let (p, proto) = k.split_once('/').unwrap_or((k.as_str(), ""));
        (p.parse::<u32>().unwrap_or(0), proto.to_string())
    });
    let fmt_binding = |b: &Value| {
        let ip = s(b, "/HostIp");
        let ip = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        format!("{ip}:{}", s(b, "/HostPort"))
    };
    if let Some(want) = &a.port {
        let key = if want.contains('/') {
            want.clone()
        } else {
            format!("{want}/tcp")
        };
        if let Some(list) = ports.get(&key).and_then(Value::as_array) {
            if !list.is_empty() {
                for b in list {
                    println!("{}", fmt_binding(b));
                }
                return Ok(0);
            }
        }
        bail!(
            "Error: No public port '{key}' published for {}",
            a.container
        );
    }
    for k in keys {
        for b in ports[k].as_array().into_iter().flatten() {
            println!("{k} -> {}", fmt_binding(b));
        }
    }
    Ok(0)
}

// ----- diff / export ------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct ContainerArg {
    pub container: String,
}

pub async fn diff(host: Option<&str>, a: ContainerArg) -> Result<i32> {
    let client = connect(host).await?;
    let v = client.changes(&a.container).await?;
    for ch in v.as_array().into_iter().flatten() {
        let kind = match ch["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{kind} {}", s(ch, "/Path"));
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    pub container: String,
}

/// Write a body to `-o FILE` or stdout (refusing a terminal, as docker does).
pub async fn body_to_output(body: berth_client::BodyChunks, output: Option<&str>) -> Result<()> {
    match output {
        Some(f) if f != "-" => {
            let tmp = format!("{f}.berth-tmp");
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .with_context(|| format!("failed to create {f}"))?;
            berth_client::copy_body(body, &mut file).await?;
            file.sync_all().await?;
            tokio::fs::rename(&tmp, f).await?;
        }
        _ => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut out = tokio::io::stdout();
            berth_client::copy_body(body, &mut out).await?;
        }
    }
    Ok(())
}

pub async fn export(host: Option<&str>, a: ExportArgs) -> Result<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let client = connect(host).await?;
    let body = client.export(&a.container).await?;
    body_to_output(body, a.output.as_deref()).await?;
    Ok(0)
}

// ----- update ---------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long = "cpus")]
    pub cpus: Option<f64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart")]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn update_body(a: &UpdateArgs) -> Result<Value> {
    let mut b = json!({
        "CpuShares": a.cpu_shares.unwrap_or(0),
        "Memory": a.memory.as_deref().map(crate::opts::ram_in_bytes).transpose()?.unwrap_or(0),
        "NanoCpus": a.cpus.map(|c| (c * 1e9).round() as i64).unwrap_or(0),
        "CgroupParent": "", "BlkioWeight": a.blkio_weight.unwrap_or(0),
        "BlkioWeightDevice": null, "BlkioDeviceReadBps": null, "BlkioDeviceWriteBps": null,
        "BlkioDeviceReadIOps": null, "BlkioDeviceWriteIOps": null,
        "CpuPeriod": a.cpu_period.unwrap_or(0), "CpuQuota": a.cpu_quota.unwrap_or(0),
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
        "CpusetCpus": a.cpuset_cpus.clone().unwrap_or_default(),
        "CpusetMems": a.cpuset_mems.clone().unwrap_or_default(),
        "Devices": null, "DeviceCgroupRules": null, "DeviceRequests": null,
        "MemoryReservation": a.memory_reservation.as_deref().map(crate::opts::ram_in_bytes).transpose()?.unwrap_or(0),
        "MemorySwap": a.memory_swap.as_deref().map(crate::opts::swap_bytes).transpose()?.unwrap_or(0),
        "MemorySwappiness": null, "OomKillDisable": null,
        "PidsLimit": a.pids_limit.map(Value::from).unwrap_or(Value::Null),
        "Ulimits": null, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    });
    if let Some(r) = &a.restart {
        b["RestartPolicy"] = crate::opts::restart_policy(r)?;
    }
    Ok(b)
}

pub async fn update(host: Option<&str>, a: UpdateArgs) -> Result<i32> {
    let body = update_body(&a)?;
    let client = connect(host).await?;
    let mut code = 0;
    for n in &a.names {
        match client.update_container(n, &body).await {
            Ok(v) => {
                for w in v["Warnings"].as_array().into_iter().flatten() {
                    eprintln!("{}", w.as_str().unwrap_or(""));
                }
                println!("{n}");
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

// ----- commit ---------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long = "author")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long = "pause", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

pub async fn commit(host: Option<&str>, a: CommitArgs) -> Result<i32> {
    let client = connect(host).await?;
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(au) = &a.author {
        q.push(("author", au.clone()));
    }
    for c in &a.change {
        q.push(("changes", c.clone()));
    }
    if let Some(m) = &a.message {
        q.push(("comment", m.clone()));
    }
    q.push(("container", a.container.clone()));
    if !a.pause {
        q.push(("pause", "0".into()));
    }
    if let Some(r) = &a.reference {
        let (repo, tag) = crate::cmds::split_repo_tag(r);
        q.push(("repo", crate::cmds::qualify_repo(&repo)));
        q.push(("tag", tag.unwrap_or_else(|| "latest".into())));
    }
    let id = client.commit(&q, &json!({})).await?;
    println!("{id}");
    Ok(0)
}

// ----- prune ----------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

pub async fn prune(host: Option<&str>, a: PruneArgs) -> Result<i32> {
    if !a.force && !crate::opts::confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let client = connect(host).await?;
    let v = client
        .prune("containers", crate::opts::filters(&a.filter)?.as_ref())
        .await?;
    let deleted = v["ContainersDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{}", d.as_str().unwrap_or(""));
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::humanize::human_size_prec4(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}

// ----- stats ----------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    pub containers: Vec<String>,
}

const STATS_TABLE: &str =
    "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn stats_headers() -> Value {
    crate::format::headers(&[
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ])
}

/// docker's stats row from one stats sample (`--` for a container with no data).
pub fn stats_row(container: &str, v: Option<&Value>, no_trunc: bool) -> Value {
    let Some(v) = v else {
        return json!({"Container": container, "ID": container, "Name": "--", "CPUPerc": "--",
            "MemUsage": "-- / --", "MemPerc": "--", "NetIO": "--", "BlockIO": "--", "PIDs": "--"});
    };
    let f = |p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let cpu_delta =
        f("/cpu_stats/cpu_usage/total_usage") - f("/precpu_stats/cpu_usage/total_usage");
    let sys_delta = f("/cpu_stats/system_cpu_usage") - f("/precpu_stats/system_cpu_usage");
    let mut online = f("/cpu_stats/online_cpus");
    if online == 0.0 {
        online = v
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map_or(0, Vec::len) as f64;
    }
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mut mem = f("/memory_stats/usage");
    // docker subtracts the page cache: inactive_file (cgroup v2) or total_inactive_file (v1)
    for key in [
        "/memory_stats/stats/total_inactive_file",
        "/memory_stats/stats/inactive_file",
    ] {
        if let Some(x) = v.pointer(key).and_then(Value::as_f64) {
            if x < mem {
                mem -= x;
            }
            break;
        }
    }
    let limit = f("/memory_stats/limit");
    let mem_perc = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = v.get("networks").and_then(Value::as_object) {
        for n in nets.values() {
            rx += n["rx_bytes"].as_f64().unwrap_or(0.0);
            tx += n["tx_bytes"].as_f64().unwrap_or(0.0);
        }
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in v
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => rd += e["value"].as_f64().unwrap_or(0.0),
            Some("write") => wr += e["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    let id = v.get("id").and_then(Value::as_str).unwrap_or(container);
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('/');
    json!({
        "Container": container,
        "ID": if no_trunc { id.to_string() } else { short_id(id) },
        "Name": name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem as i64), bytes_size(limit as i64)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": format!("{} / {}", human_size_prec(rx as i64, 3), human_size_prec(tx as i64, 3)),
        "BlockIO": format!("{} / {}", human_size_prec(rd as i64, 3), human_size_prec(wr as i64, 3)),
        "PIDs": v.pointer("/pids_stats/current").map(|p| p.to_string()).unwrap_or_else(|| "0".into()),
    })
}

pub async fn stats(host: Option<&str>, a: StatsArgs) -> Result<i32> {
    let client = connect(host).await?;
    let names: Vec<String> = if a.containers.is_empty() {
        let list = client
            .list_containers(&berth_client::ListContainersOptions {
                all: a.all,
                ..Default::default()
            })
            .await?;
        list.iter().map(|c| short_id(s(c, "/Id"))).collect()
    } else {
        a.containers.clone()
    };
    let fmt = crate::format::ListFormat::parse(a.format.as_deref(), STATS_TABLE)?;
    if a.no_stream {
        let mut tasks = Vec::new();
        for n in &names {
            let c = client.clone();
            let n = n.clone();
            tasks.push(tokio::spawn(
                async move { (n.clone(), c.stats_once(&n).await) },
            ));
        }
        let mut rows = Vec::new();
        let mut code = 0;
        for t in tasks {
            let (n, r) = t.await?;
            match r {
                Ok(v) => rows.push(stats_row(&n, Some(&v), a.no_trunc)),
                Err(e) => {
                    eprintln!("{e}");
                    code = 1;
                }
            }
        }
        if code == 0 || !rows.is_empty() {
            fmt.print(&stats_headers(), &rows)?;
        }
        return Ok(code);
    }
    stream_stats(client, names, fmt, a.no_trunc).await
}

async fn stream_stats(
    client: Client,
    names: Vec<String>,
    fmt: crate::format::ListFormat,
    no_trunc: bool,
) -> Result<i32> {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    let latest: Arc<Mutex<BTreeMap<String, Option<Value>>>> = Arc::new(Mutex::new(BTreeMap::new()));
    for n in &names {
        latest
            .lock()
            .map_err(|_| anyhow!("lock"))?
            .insert(n.clone(), None);
        let c = client.clone();
        let n = n.clone();
        let latest = latest.clone();
        tokio::spawn(async move {
            let Ok(mut lines) = c.stats_stream(&n).await else {
                return;
            };
            while let Ok(Some(v)) = lines.next().await {
                if let Ok(mut m) = latest.lock() {
                    m.insert(n.clone(), Some(v));
                }
            }
        });
    }
    let tty = std::io::stdout().is_terminal();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        let rows: Vec<Value> = {
            let m = latest.lock().map_err(|_| anyhow!("lock"))?;
            names
                .iter()
                .map(|n| stats_row(n, m.get(n).and_then(Option::as_ref), no_trunc))
                .collect()
        };
        let text = fmt.render(&stats_headers(), &rows)?;
        if tty {
            print!("\x1b[2J\x1b[H{text}");
        } else {
            print!("{text}");
        }
        use std::io::Write;
        std::io::stdout().flush()?;
    }
}

// ----- cp -------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// SRC_PATH (CONTAINER:SRC_PATH, or - for a tar on stdin)
    pub src: String,
    /// DEST_PATH (CONTAINER:DEST_PATH, or - for a tar on stdout)
    pub dest: String,
}

/// `CONTAINER:PATH` -> Some((container, path)); local paths (also `./a:b`, `/a:b`) -> None.
fn split_cp(arg: &str) -> Option<(String, String)> {
    if arg.starts_with('/') || arg.starts_with('.') || arg == "-" {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    if c.is_empty() || c.contains('/') {
        return None;
    }
    Some((c.to_string(), p.to_string()))
}

fn basename(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn dirname(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].to_string(),
        None => ".".into(),
    }
}

pub async fn cp(host: Option<&str>, a: CpArgs) -> Result<i32> {
    match (split_cp(&a.src), split_cp(&a.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((c, p)), None) => copy_from(host, &c, &p, &a).await,
        (None, Some((c, p))) => copy_to(host, &c, &p, &a).await,
    }
}

async fn copy_from(host: Option<&str>, container: &str, path: &str, a: &CpArgs) -> Result<i32> {
    let client = connect(host).await?;
    let mut src = if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    };
    if a.follow_link {
        if let Some(st) = client.stat_path(container, &src).await? {
            if st.is_symlink() && !st.link_target.is_empty() {
                src = if st.link_target.starts_with('/') {
                    st.link_target.clone()
                } else {
                    format!("{}/{}", dirname(&src), st.link_target)
                };
            }
        }
    }
    let (stat, body) = client.get_archive(container, &src).await.map_err(|e| {
        if e.is_not_found() {
            anyhow!("Error response from daemon: Could not find the file {path} in container {container}")
        } else {
            e.into()
        }
    })?;
    if a.dest == "-" {
        let mut out = tokio::io::stdout();
        berth_client::copy_body(body, &mut out).await?;
        return Ok(0);
    }
    let dest = std::path::PathBuf::from(&a.dest);
    let dest_is_dir = dest.is_dir();
    if !dest_is_dir && a.dest.ends_with('/') {
        bail!("destination directory {} does not exist", a.dest);
    }
    if !dest_is_dir && dest.exists() && stat.is_dir() {
        bail!("cannot copy a directory to a file");
    }
    // into an existing directory: keep the archive's top name; otherwise rename it to dest
    let (target_dir, rename) = if dest_is_dir {
        (dest.clone(), None)
    } else {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| ".".into());
        if !parent.is_dir() {
            bail!("destination directory {} does not exist", parent.display());
        }
        (parent, Some(basename(&a.dest)))
    };
    let reader = crate::pipe::BodyReader::new(body);
    let top = stat.name.clone();
    let preserve = a.archive;
    let total = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut ar = tar::Archive::new(reader);
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(preserve);
        ar.set_overwrite(true);
        let mut total = 0u64;
        for e in ar.entries()? {
            let mut e = e?;
            let p = e.path()?.into_owned();
            let mut comps = p.components();
            let first = comps
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .unwrap_or_default();
            let rest: std::path::PathBuf = comps.collect();
            let name = match &rename {
                Some(r) if first == top || top.is_empty() => r.clone(),
                _ => first,
            };
            let unsafe_path = name == ".."
                || name.contains('/')
                || rest
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)));
            if unsafe_path {
                continue;
            }
            let mut out = target_dir.join(&name);
            if !rest.as_os_str().is_empty() {
                out = out.join(&rest);
            }
            total += e.header().size().unwrap_or(0);
            if let Some(par) = out.parent() {
                std::fs::create_dir_all(par)?;
            }
            if e.header().entry_type().is_dir() {
                std::fs::create_dir_all(&out)?;
                if let Ok(mode) = e.header().mode() {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(
                        &out,
                        std::fs::Permissions::from_mode(mode & 0o7777),
                    );
                }
                continue;
            }
            e.unpack(&out)?;
        }
        Ok(total)
    })
    .await??;
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {}",
            crate::humanize::human_size_prec4(total as i64),
            a.dest
        );
    }
    Ok(0)
}

async fn copy_to(host: Option<&str>, container: &str, path: &str, a: &CpArgs) -> Result<i32> {
    let client = connect(host).await?;
    let dest = if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    };
    if a.src == "-" {
        // a tar on stdin, extracted into the destination directory as is
        client
            .put_archive(container, &dest, a.archive, tokio::io::stdin())
            .await?;
        return Ok(0);
    }
    let src = std::path::PathBuf::from(&a.src);
    let meta = if a.follow_link {
        std::fs::metadata(&src)
    } else {
        std::fs::symlink_metadata(&src)
    }
    .map_err(|_| anyhow!("lstat {}: no such file or directory", a.src))?;
    let dstat = client.stat_path(container, &dest).await?;
    let (put_dir, name) = match &dstat {
        Some(st) if st.is_dir() => (dest.clone(), basename(&a.src)),
        Some(_) if meta.is_dir() => bail!("cannot copy a directory to a file"),
        Some(_) => (dirname(&dest), basename(&dest)),
        None => {
            if dest.ends_with('/') {
                bail!("Error response from daemon: Could not find the file {dest} in container {container}");
            }
            (dirname(&dest), basename(&dest))
        }
    };
    let (w, r) = crate::pipe::pipe();
    let follow = a.follow_link;
    let src2 = src.clone();
    let builder = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(follow);
        let size = dir_size(&src2);
        if src2.is_dir() && (follow || !std::fs::symlink_metadata(&src2)?.file_type().is_symlink())
        {
            b.append_dir_all(&name, &src2)?;
        } else if follow {
            b.append_path_with_name(&src2, &name)?;
        } else {
            let mut h = tar::Header::new_gnu();
            let m = std::fs::symlink_metadata(&src2)?;
            h.set_metadata(&m);
            if m.file_type().is_symlink() {
                let target = std::fs::read_link(&src2)?;
                b.append_link(&mut h, &name, target)?;
            } else {
                let f = std::fs::File::open(&src2)?;
                b.append_data(&mut h, &name, f)?;
            }
        }
        b.into_inner()?;
        Ok(size)
    });
    client
        .put_archive(container, &put_dir, a.archive, r)
        .await?;
    let size = builder.await??;
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {container}:{dest}",
            crate::humanize::human_size_prec4(size as i64)
        );
    }
    Ok(0)
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if m.is_dir() {
        std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        m.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_argument_forms() {
        assert_eq!(
            split_cp("c1:/etc/hosts"),
            Some(("c1".into(), "/etc/hosts".into()))
        );
        assert_eq!(split_cp("/tmp/a:b"), None);
        assert_eq!(split_cp("./x:y"), None);
        assert_eq!(split_cp("-"), None);
        assert_eq!(split_cp("file"), None);
        assert_eq!(basename("/a/b/"), "b");
        assert_eq!(dirname("/a/b"), "/a");
        assert_eq!(dirname("/a"), "/");
    }

    #[test]
    fn stats_math_matches_docker() {
        let v = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 200_000_000u64}, "system_cpu_usage": 2_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100_000_000u64}, "system_cpu_usage": 1_000_000_000u64},
            "memory_stats": {"usage": 3_145_728u64, "limit": 1_073_741_824u64, "stats": {"inactive_file": 1_048_576u64}},
            "pids_stats": {"current": 3},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096}, {"op": "write", "value": 0}]}
        });
        let r = stats_row("web", Some(&v), false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["CPUPerc"], "20.00%");
        assert_eq!(r["MemUsage"], "2MiB / 1GiB");
        assert_eq!(r["MemPerc"], "0.20%");
        assert_eq!(r["BlockIO"], "4.1kB / 0B");
        assert_eq!(r["NetIO"], "0B / 0B");
        assert_eq!(r["PIDs"], "3");
    }
}
