//! Command implementations (everything except `run`/attach, see run.rs).

use crate::format::{go_time, headers, labels_column, ListFormat};
use crate::humanize::{ago, bytes_size, ellipsis, human_size, short_id};
use crate::{
    jsonfmt, run, template, Cli, Cmd, ContainerCmd, ExitStatus, FormatNames, ImageCmd, ImagesArgs,
    ImportArgs, InspectArgs, KillArgs, LogsArgs, PsArgs, RmArgs, RmiArgs, StartArgs, StopArgs,
    TagArgs,
};
use anyhow::{anyhow, bail, Context, Result};
use berth_client::{Client, ImportOptions, ListContainersOptions, LogsOptions, ReqBody};
use serde_json::{json, Value};
use std::io::Write;

/// Run the parsed command line; returns the process exit code.
pub async fn dispatch(cli: Cli) -> i32 {
    crate::context::set_config_dir(cli.config.as_deref());
    crate::context::set_active_name(crate::context::current_context_name(
        cli.host.as_deref(),
        cli.context.as_deref(),
    ));
    crate::context::set_tls(
        cli.tls,
        cli.tlsverify,
        cli.tlscacert.as_deref(),
        cli.tlscert.as_deref(),
        cli.tlskey.as_deref(),
    );
    crate::daemon::set_wanted(cli.start_daemon);
    let Some(cmd) = cli.cmd else {
        if cli.version {
            println!("Berth version {}", berth_client::CLIENT_VERSION);
            return 0;
        }
        eprintln!("Usage:  berth [OPTIONS] COMMAND\n\nRun 'berth --help' for more information");
        return 0;
    };
    // Context commands and generators need no daemon address.
    match cmd {
        Cmd::Context(c) => {
            return finish(crate::context::dispatch(
                c,
                cli.host.as_deref(),
                cli.context.as_deref(),
            ))
        }
        Cmd::Gen(g) => return finish(crate::gen::dispatch(g)),
        Cmd::Logout(a) => return finish(crate::auth::logout(a)),
        _ => {}
    }
    let host = match crate::context::resolve_host(cli.host.as_deref(), cli.context.as_deref()) {
        Ok(h) => h,
        Err(e) => {
            let code = if matches!(cmd, Cmd::Run(_) | Cmd::Create(_)) {
                125
            } else {
                1
            };
            eprintln!("berth: {e:#}");
            return code;
        }
    };
    let host = host.as_deref();
    let res = match cmd {
        Cmd::Context(_) | Cmd::Gen(_) | Cmd::Logout(_) => Ok(0),
        Cmd::Complete(a) => return crate::gen::complete(host, a).await,
        Cmd::Version(f) => version(host, f.format).await,
        Cmd::Info(f) | Cmd::System(crate::system::SystemCmd::Info(f)) => info(host, f.format).await,
        Cmd::Import(a) | Cmd::Image(ImageCmd::Import(a)) => import(host, a).await,
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => images(host, a).await,
        Cmd::Image(ImageCmd::Inspect(a)) => inspect_typed(host, a, "image").await,
        Cmd::Image(ImageCmd::Rm(a)) | Cmd::Rmi(a) => rmi(host, a).await,
        Cmd::Image(ImageCmd::Tag(a)) | Cmd::Tag(a) => tag(host, a).await,
        Cmd::Image(ImageCmd::Build(a))
        | Cmd::Build(a)
        | Cmd::Builder(crate::image::BuilderCmd::Build(a)) => crate::image::build(host, a).await,
        Cmd::Builder(crate::image::BuilderCmd::Prune(a)) => {
            crate::image::builder_prune(host, a).await
        }
        Cmd::Image(ImageCmd::History(a)) | Cmd::History(a) => crate::image::history(host, a).await,
        Cmd::Image(ImageCmd::Load(a)) | Cmd::Load(a) => crate::image::load(host, a).await,
        Cmd::Image(ImageCmd::Save(a)) | Cmd::Save(a) => crate::image::save(host, a).await,
        Cmd::Image(ImageCmd::Pull(a)) | Cmd::Pull(a) => crate::image::pull(host, a).await,
        Cmd::Image(ImageCmd::Push(a)) | Cmd::Push(a) => crate::image::push(host, a).await,
        Cmd::Image(ImageCmd::Prune(a)) => crate::image::prune(host, a).await,
        Cmd::Run(a) | Cmd::Container(ContainerCmd::Run(a)) => return run::run(host, a).await,
        Cmd::Create(a) | Cmd::Container(ContainerCmd::Create(a)) => {
            return run::create(host, a).await
        }
        Cmd::Ps(a) | Cmd::Container(ContainerCmd::Ls(a)) => ps(host, a).await,
        Cmd::Logs(a) | Cmd::Container(ContainerCmd::Logs(a)) => logs(host, a).await,
        Cmd::Stop(a) | Cmd::Container(ContainerCmd::Stop(a)) => stop(host, a).await,
        Cmd::Rm(a) | Cmd::Container(ContainerCmd::Rm(a)) => rm(host, a).await,
        Cmd::Inspect(a) => inspect(host, a).await,
        Cmd::Container(ContainerCmd::Inspect(a)) => {
            inspect(
                host,
                InspectArgs {
                    format: a.format,
                    kind: Some("container".into()),
                    size: a.size,
                    names: a.names,
                },
            )
            .await
        }
        Cmd::Start(a) | Cmd::Container(ContainerCmd::Start(a)) => start(host, a).await,
        Cmd::Kill(a) | Cmd::Container(ContainerCmd::Kill(a)) => kill(host, a).await,
        Cmd::Wait(a) | Cmd::Container(ContainerCmd::Wait(a)) => wait(host, a.names).await,
        Cmd::Attach(a) | Cmd::Container(ContainerCmd::Attach(a)) => run::attach(host, &a).await,
        Cmd::Commit(a) | Cmd::Container(ContainerCmd::Commit(a)) => {
            crate::container::commit(host, a).await
        }
        Cmd::Cp(a) | Cmd::Container(ContainerCmd::Cp(a)) => crate::container::cp(host, a).await,
        Cmd::Diff(a) | Cmd::Container(ContainerCmd::Diff(a)) => {
            crate::container::diff(host, a).await
        }
        Cmd::Exec(a) | Cmd::Container(ContainerCmd::Exec(a)) => {
            crate::container::exec(host, a).await
        }
        Cmd::Export(a) | Cmd::Container(ContainerCmd::Export(a)) => {
            crate::container::export(host, a).await
        }
        Cmd::Pause(a) | Cmd::Container(ContainerCmd::Pause(a)) => {
            crate::container::each(host, &a.names, "pause", Vec::new()).await
        }
        Cmd::Unpause(a) | Cmd::Container(ContainerCmd::Unpause(a)) => {
            crate::container::each(host, &a.names, "unpause", Vec::new()).await
        }
        Cmd::Port(a) | Cmd::Container(ContainerCmd::Port(a)) => {
            crate::container::port(host, a).await
        }
        Cmd::Rename(a) | Cmd::Container(ContainerCmd::Rename(a)) => {
            crate::container::rename(host, a).await
        }
        Cmd::Restart(a) | Cmd::Container(ContainerCmd::Restart(a)) => {
            crate::container::restart(host, a).await
        }
        Cmd::Stats(a) | Cmd::Container(ContainerCmd::Stats(a)) => {
            crate::container::stats(host, a).await
        }
        Cmd::Top(a) | Cmd::Container(ContainerCmd::Top(a)) => crate::container::top(host, a).await,
        Cmd::Update(a) | Cmd::Container(ContainerCmd::Update(a)) => {
            crate::container::update(host, a).await
        }
        Cmd::Container(ContainerCmd::Prune(a)) => crate::container::prune(host, a).await,
        Cmd::Events(a) | Cmd::System(crate::system::SystemCmd::Events(a)) => {
            crate::system::events(host, a).await
        }
        Cmd::System(crate::system::SystemCmd::Df(a)) => crate::system::df(host, a).await,
        Cmd::System(crate::system::SystemCmd::Prune(a)) => crate::system::prune(host, a).await,
        Cmd::Login(a) => crate::auth::login(host, a).await,
        Cmd::Network(n) => crate::network::dispatch(host, n).await,
        Cmd::Volume(v) => crate::volume::dispatch(host, v).await,
    };
    finish(res)
}

fn finish(res: Result<i32>) -> i32 {
    match res {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// Print an error docker-style and return the exit code for it.
pub fn report(e: &anyhow::Error) -> i32 {
    if let Some(ExitStatus(code)) = e.downcast_ref::<ExitStatus>() {
        return *code;
    }
    if e.downcast_ref::<berth_client::Error>().is_some() {
        // client errors already read like docker's ("Error response from daemon: ...")
        eprintln!("{e}");
    } else {
        eprintln!("{e:#}");
    }
    1
}

/// Connect and negotiate the API version; with `--start-daemon`/`BERTH_START_DAEMON=1`, start
/// berthd when nothing answers.
pub async fn connect(host: Option<&str>) -> Result<Client> {
    match Client::connect_with_tls(host, crate::context::tls()).await {
        Ok(c) => Ok(c),
        Err(e @ berth_client::Error::Connect { .. }) => {
            let socket = Client::new(host)?.socket().to_path_buf();
            if crate::daemon::wanted() {
                crate::daemon::start(&socket).await?;
                return Ok(Client::connect_with_tls(host, crate::context::tls()).await?);
            }
            if nix::unistd::geteuid().is_root() {
                Err(anyhow!(
                    "{e}\n(or run berth with --start-daemon, or set BERTH_START_DAEMON=1, to have it start berthd for you)"
                ))
            } else {
                Err(e.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn render_fmt(fmt: &str, v: &Value) -> Result<String> {
    let fmt = fmt.strip_prefix("table ").unwrap_or(fmt);
    Ok(template::render(fmt, v)?)
}

// ----- version / info -----------------------------------------------------------------------

fn kv(out: &mut String, indent: &str, key: &str, val: impl std::fmt::Display) {
    let k = format!("{indent}{key}:");
    out.push_str(&format!("{k:<20}{val}\n"));
}

async fn version(host: Option<&str>, format: Option<String>) -> Result<i32> {
    let mut client = Client::new_with_tls(host, crate::context::tls())?;
    let client_info = json!({
        "Version": berth_client::CLIENT_VERSION,
        "ApiVersion": berth_client::MAX_API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
    });
    let mut negotiated = client.negotiate().await;
    if matches!(negotiated, Err(berth_client::Error::Connect { .. })) && crate::daemon::wanted() {
        crate::daemon::start(client.socket()).await?;
        negotiated = client.negotiate().await;
    }
    let server = match negotiated {
        Ok(_) => client.version().await,
        Err(e) => Err(e),
    };
    if let Some(f) = format {
        // the docker CLI's template sees Go field names (APIVersion)
        let mut sv = server.as_ref().ok().cloned().unwrap_or(Value::Null);
        if let Some(o) = sv.as_object_mut() {
            if let Some(a) = o.get("ApiVersion").cloned() {
                o.insert("APIVersion".into(), a);
            }
        }
        let data = json!({
            "Client": client_info,
            "Server": sv,
        });
        println!("{}", render_fmt(&f, &data)?);
        return match server {
            Ok(_) => Ok(0),
            Err(e) => Err(e.into()),
        };
    }
    let mut out = String::from("Client:\n");
    kv(&mut out, " ", "Version", berth_client::CLIENT_VERSION);
    let api = if client.server_api_version().is_some()
        && client.api_version() != berth_client::MAX_API_VERSION
    {
        format!(
            "{} (downgraded from {})",
            client.api_version(),
            berth_client::MAX_API_VERSION
        )
    } else {
        client.api_version().to_string()
    };
    kv(&mut out, " ", "API version", api);
    kv(
        &mut out,
        " ",
        "OS/Arch",
        format!("{}/{}", std::env::consts::OS, go_arch()),
    );
    kv(&mut out, " ", "Context", crate::context::active_name());
    print!("{out}");
    let v = match server {
        Ok(v) => v,
        Err(e) => {
            println!();
            return Err(e.into());
        }
    };
    let mut out = String::from("\n");
    match v.pointer("/Platform/Name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => out.push_str(&format!("Server: {n}\n")),
        _ => out.push_str("Server:\n"),
    }
    out.push_str(" Engine:\n");
    kv(&mut out, "  ", "Version", s(&v, "/Version"));
    kv(
        &mut out,
        "  ",
        "API version",
        format!(
            "{} (minimum version {})",
            s(&v, "/ApiVersion"),
            s(&v, "/MinAPIVersion")
        ),
    );
    if !s(&v, "/GoVersion").is_empty() {
        kv(&mut out, "  ", "Go version", s(&v, "/GoVersion"));
    }
    kv(&mut out, "  ", "Git commit", s(&v, "/GitCommit"));
    kv(&mut out, "  ", "Built", ansic_time(s(&v, "/BuildTime")));
    kv(
        &mut out,
        "  ",
        "OS/Arch",
        format!("{}/{}", s(&v, "/Os"), s(&v, "/Arch")),
    );
    kv(
        &mut out,
        "  ",
        "Experimental",
        v.get("Experimental")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    );
    if let Some(comps) = v.get("Components").and_then(Value::as_array) {
        for c in comps {
            let name = s(c, "/Name");
            if name == "Engine" {
                continue;
            }
            out.push_str(&format!(" {name}:\n"));
            kv(&mut out, "  ", "Version", s(c, "/Version"));
            if let Some(d) = c.get("Details").and_then(Value::as_object) {
                for (k, val) in d {
                    if k == "GitCommit" {
                        kv(&mut out, "  ", "GitCommit", val.as_str().unwrap_or(""));
                    }
                }
            }
        }
    }
    print!("{out}");
    Ok(0)
}

/// RFC 3339 -> Go's ANSIC layout in local time ("Thu May  7 21:09:36 2026"), as docker prints.
fn ansic_time(t: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(d) => d
            .with_timezone(&chrono::Local)
            .format("%a %b %e %H:%M:%S %Y")
            .to_string(),
        Err(_) => t.to_string(),
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

async fn info(host: Option<&str>, format: Option<String>) -> Result<i32> {
    let client = connect(host).await?;
    let v = client.info().await?;
    if let Some(f) = format {
        println!("{}", render_fmt(&f, &v)?);
        return Ok(0);
    }
    let mut o = String::new();
    o.push_str("Client:\n");
    o.push_str(&format!(" Version:    {}\n", berth_client::CLIENT_VERSION));
    o.push_str(&format!(
        " Context:    {}\n Debug Mode: false\n\nServer:\n",
        crate::context::active_name()
    ));
    let n = |p: &str| {
        v.pointer(p)
            .map(|x| x.to_string())
            .unwrap_or_else(|| "0".into())
    };
    let b = |p: &str| v.pointer(p).and_then(Value::as_bool).unwrap_or(false);
    o.push_str(&format!(" Containers: {}\n", n("/Containers")));
    o.push_str(&format!("  Running: {}\n", n("/ContainersRunning")));
    o.push_str(&format!("  Paused: {}\n", n("/ContainersPaused")));
    o.push_str(&format!("  Stopped: {}\n", n("/ContainersStopped")));
    o.push_str(&format!(" Images: {}\n", n("/Images")));
    o.push_str(&format!(" Server Version: {}\n", s(&v, "/ServerVersion")));
    o.push_str(&format!(" Storage Driver: {}\n", s(&v, "/Driver")));
    if let Some(ds) = v.get("DriverStatus").and_then(Value::as_array) {
        for pair in ds {
            if let Some(p) = pair.as_array() {
                let k = p.first().and_then(Value::as_str).unwrap_or("");
                let val = p.get(1).and_then(Value::as_str).unwrap_or("");
                o.push_str(&format!("  {k}: {val}\n"));
            }
        }
    }
    o.push_str(&format!(" Logging Driver: {}\n", s(&v, "/LoggingDriver")));
    o.push_str(&format!(" Cgroup Driver: {}\n", s(&v, "/CgroupDriver")));
    o.push_str(&format!(" Cgroup Version: {}\n", s(&v, "/CgroupVersion")));
    if let Some(p) = v.get("Plugins").and_then(Value::as_object) {
        o.push_str(" Plugins:\n");
        for key in ["Volume", "Network", "Log"] {
            if let Some(list) = p.get(key).and_then(Value::as_array) {
                let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                o.push_str(&format!("  {key}: {}\n", names.join(" ")));
            }
        }
    }
    if let Some(st) = v.pointer("/Swarm/LocalNodeState").and_then(Value::as_str) {
        o.push_str(&format!(" Swarm: {st}\n"));
    }
    if let Some(rt) = v.get("Runtimes").and_then(Value::as_object) {
        let mut names: Vec<&String> = rt.keys().collect();
        names.sort();
        let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
        o.push_str(&format!(" Runtimes: {}\n", names.join(" ")));
    }
    if !s(&v, "/DefaultRuntime").is_empty() {
        o.push_str(&format!(" Default Runtime: {}\n", s(&v, "/DefaultRuntime")));
    }
    if let Some(ib) = v.get("InitBinary").and_then(Value::as_str) {
        o.push_str(&format!(" Init Binary: {ib}\n"));
    }
    for (label, ptr) in [
        ("containerd version", "/ContainerdCommit/ID"),
        ("runc version", "/RuncCommit/ID"),
        ("init version", "/InitCommit/ID"),
    ] {
        if let Some(id) = v.pointer(ptr).and_then(Value::as_str) {
            o.push_str(&format!(" {label}: {id}\n"));
        }
    }
    if let Some(so) = v.get("SecurityOptions").and_then(Value::as_array) {
        if !so.is_empty() {
            o.push_str(" Security Options:\n");
            for opt in so.iter().filter_map(Value::as_str) {
                let mut parts = opt.split(',');
                let name = parts.next().unwrap_or("").trim_start_matches("name=");
                o.push_str(&format!("  {name}\n"));
                for p in parts {
                    if let Some((k, val)) = p.split_once('=') {
                        let mut k = k.to_string();
                        if let Some(c) = k.get(0..1) {
                            k = c.to_uppercase() + &k[1..];
                        }
                        o.push_str(&format!("   {k}: {val}\n"));
                    }
                }
            }
        }
    }
    o.push_str(&format!(" Kernel Version: {}\n", s(&v, "/KernelVersion")));
    o.push_str(&format!(
        " Operating System: {}\n",
        s(&v, "/OperatingSystem")
    ));
    o.push_str(&format!(" OSType: {}\n", s(&v, "/OSType")));
    o.push_str(&format!(" Architecture: {}\n", s(&v, "/Architecture")));
    o.push_str(&format!(" CPUs: {}\n", n("/NCPU")));
    o.push_str(&format!(
        " Total Memory: {}\n",
        bytes_size(v.get("MemTotal").and_then(Value::as_i64).unwrap_or(0))
    ));
    o.push_str(&format!(" Name: {}\n", s(&v, "/Name")));
    o.push_str(&format!(" ID: {}\n", s(&v, "/ID")));
    o.push_str(&format!(" Docker Root Dir: {}\n", s(&v, "/DockerRootDir")));
    o.push_str(&format!(" Debug Mode: {}\n", b("/Debug")));
    o.push_str(&format!(" Experimental: {}\n", b("/ExperimentalBuild")));
    let mut insecure: Vec<String> = Vec::new();
    if let Some(idx) = v
        .pointer("/RegistryConfig/IndexConfigs")
        .and_then(Value::as_object)
    {
        for (name, cfg) in idx {
            if cfg.get("Secure").and_then(Value::as_bool) == Some(false) {
                insecure.push(name.clone());
            }
        }
    }
    if let Some(cidrs) = v
        .pointer("/RegistryConfig/InsecureRegistryCIDRs")
        .and_then(Value::as_array)
    {
        insecure.extend(cidrs.iter().filter_map(Value::as_str).map(str::to_string));
    }
    if !insecure.is_empty() {
        o.push_str(" Insecure Registries:\n");
        for r in insecure {
            o.push_str(&format!("  {r}\n"));
        }
    }
    o.push_str(&format!(
        " Live Restore Enabled: {}\n\n",
        b("/LiveRestoreEnabled")
    ));
    print!("{o}");
    if let Some(w) = v.get("Warnings").and_then(Value::as_array) {
        for w in w.iter().filter_map(Value::as_str) {
            eprintln!("{w}");
        }
    }
    Ok(0)
}

// ----- images -------------------------------------------------------------------------------

async fn import(host: Option<&str>, a: ImportArgs) -> Result<i32> {
    let client = connect(host).await?;
    let opts = ImportOptions {
        repo: a.reference.clone(),
        message: a.message.clone(),
        changes: a.change.clone(),
    };
    let mut lines = if a.file == "-" {
        client.import_image(tokio::io::stdin(), &opts).await?
    } else {
        let f = tokio::fs::File::open(&a.file)
            .await
            .with_context(|| format!("open {}", a.file))?;
        client.import_image(f, &opts).await?
    };
    while let Some(v) = lines.next().await? {
        if let Some(st) = v.get("status").and_then(Value::as_str) {
            match v.get("id").and_then(Value::as_str) {
                Some(id) => println!("{id}: {st}"),
                None => println!("{st}"),
            }
        } else if let Some(st) = v.get("stream").and_then(Value::as_str) {
            print!("{st}");
        }
    }
    Ok(0)
}

/// Split `repo:tag` at the last ':' after the last '/'.
pub fn split_repo_tag(r: &str) -> (String, Option<String>) {
    let r = r.split('@').next().unwrap_or(r);
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    match r[slash..].rfind(':') {
        Some(i) => (
            r[..slash + i].to_string(),
            Some(r[slash + i + 1..].to_string()),
        ),
        None => (r.to_string(), None),
    }
}

async fn images(host: Option<&str>, a: ImagesArgs) -> Result<i32> {
    let client = connect(host).await?;
    let filters = crate::opts::filters(&a.filter)?;
    let list = client
        .list_images_filtered(a.all, a.digests, filters.as_ref())
        .await?;
    let mut seen_q = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for img in &list {
        let id = s(img, "/Id");
        let shown_id = if a.no_trunc {
            id.to_string()
        } else {
            short_id(id)
        };
        let mut tags: Vec<(String, String)> = img
            .get("RepoTags")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(Value::as_str)
                    .filter(|t| *t != "<none>:<none>")
                    .map(|t| {
                        let (r, tg) = split_repo_tag(t);
                        (r, tg.unwrap_or_else(|| "<none>".into()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let digests: Vec<String> = img
            .get("RepoDigests")
            .and_then(Value::as_array)
            .map(|d| {
                d.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if tags.is_empty() {
            // an untagged image with a digest shows its repository, as docker does
            match digests.iter().find(|d| *d != "<none>@<none>") {
                Some(d) => tags.push((
                    d.split('@').next().unwrap_or("<none>").to_string(),
                    "<none>".into(),
                )),
                None => tags.push(("<none>".into(), "<none>".into())),
            }
        }
        if let Some(filter) = &a.reference {
            let (fr, ft) = split_repo_tag(filter);
            tags.retain(|(r, t)| r == &fr && ft.as_ref().is_none_or(|ft| ft == t));
            if tags.is_empty() {
                continue;
            }
        }
        if a.quiet {
            if seen_q.insert(shown_id.clone()) {
                println!("{shown_id}");
            }
            continue;
        }
        let created = img.get("Created").and_then(Value::as_i64).unwrap_or(0);
        let size = img.get("Size").and_then(Value::as_i64).unwrap_or(0);
        let n_or_na = |k: &str| match img.get(k).and_then(Value::as_i64) {
            Some(n) if n >= 0 => n.to_string(),
            _ => "N/A".to_string(),
        };
        let shared = img.get("SharedSize").and_then(Value::as_i64).unwrap_or(-1);
        for (repo, tag) in tags {
            let digest = digests
                .iter()
                .find(|d| d.split('@').next() == Some(repo.as_str()))
                .and_then(|d| d.split('@').nth(1))
                .unwrap_or("<none>")
                .to_string();
            rows.push(json!({
                "ID": shown_id, "Repository": repo, "Tag": tag, "Digest": digest,
                "CreatedSince": ago(created), "CreatedAt": go_time(created),
                "Size": human_size(size), "VirtualSize": crate::humanize::human_size_prec(img.get("VirtualSize").and_then(Value::as_i64).unwrap_or(size), 4),
                "SharedSize": if shared >= 0 { human_size(shared) } else { "N/A".into() },
                "UniqueSize": if shared >= 0 { human_size(size - shared) } else { "N/A".into() },
                "Containers": n_or_na("Containers"),
            }));
        }
    }
    if a.quiet {
        return Ok(0);
    }
    let default = if a.digests {
        "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let fmt = a.format.clone().or_else(|| {
        crate::context::config_value("imagesFormat").and_then(|v| v.as_str().map(str::to_string))
    });
    let f = ListFormat::parse(fmt.as_deref(), default)?;
    f.print(
        &headers(&[
            ("ID", "IMAGE ID"),
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("Digest", "DIGEST"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("Size", "SIZE"),
            ("Containers", "CONTAINERS"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("VirtualSize", "VIRTUAL SIZE"),
        ]),
        &rows,
    )?;
    Ok(0)
}

async fn rmi(host: Option<&str>, a: RmiArgs) -> Result<i32> {
    let client = connect(host).await?;
    let mut code = 0;
    for name in &a.names {
        match client.remove_image(name, a.force, a.no_prune).await {
            Ok(items) => {
                for it in items {
                    if let Some(u) = it.get("Untagged").and_then(Value::as_str) {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it.get("Deleted").and_then(Value::as_str) {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Fully qualify a repository name like the docker CLI does for `tag`
/// (`bb` -> `docker.io/library/bb`, `me/bb` -> `docker.io/me/bb`, `host:5000/x` unchanged).
pub fn qualify_repo(repo: &str) -> String {
    let first = repo.split('/').next().unwrap_or("");
    let has_domain =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_domain {
        repo.to_string()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    }
}

async fn tag(host: Option<&str>, a: TagArgs) -> Result<i32> {
    let client = connect(host).await?;
    let (repo, tag) = split_repo_tag(&a.target);
    let tag = tag.unwrap_or_else(|| "latest".into());
    client
        .tag_image(&a.source, &qualify_repo(&repo), Some(&tag))
        .await?;
    Ok(0)
}

// ----- containers ---------------------------------------------------------------------------

/// Docker's PORTS column: `0.0.0.0:8080->80/tcp, 9000/tcp`.
fn format_ports(ports: Option<&Value>) -> String {
    let Some(list) = ports.and_then(Value::as_array) else {
        return String::new();
    };
    let mut out: Vec<String> = Vec::new();
    for p in list {
        let private = p.get("PrivatePort").and_then(Value::as_i64).unwrap_or(0);
        let typ = s(p, "/Type");
        match p.get("PublicPort").and_then(Value::as_i64) {
            Some(public) if public != 0 => {
                let ip = s(p, "/IP");
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                out.push(format!("{ip}:{public}->{private}/{typ}"));
            }
            _ => out.push(format!("{private}/{typ}")),
        }
    }
    out.dedup();
    out.join(", ")
}

fn ps_filters(filters: &[String]) -> Result<Option<Value>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut m = serde_json::Map::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        let e = m.entry(k.to_string()).or_insert_with(|| json!({}));
        if let Some(o) = e.as_object_mut() {
            o.insert(v.to_string(), Value::Bool(true));
        }
    }
    Ok(Some(Value::Object(m)))
}

async fn ps(host: Option<&str>, a: PsArgs) -> Result<i32> {
    let client = connect(host).await?;
    let limit = if a.latest {
        Some(1)
    } else if a.last > 0 {
        Some(a.last)
    } else {
        None
    };
    let fmt = a.format.clone().or_else(|| {
        crate::context::config_value("psFormat").and_then(|v| v.as_str().map(str::to_string))
    });
    // docker asks for sizes when the format shows them
    let want_size = a.size || fmt.as_deref().is_some_and(|f| f.contains(".Size"));
    let opts = ListContainersOptions {
        all: a.all || limit.is_some(),
        limit,
        size: want_size,
        filters: ps_filters(&a.filter)?,
    };
    let list = client.list_containers(&opts).await?;
    let mut rows = Vec::new();
    for c in &list {
        let id = s(c, "/Id");
        let id_shown = if a.no_trunc {
            id.to_string()
        } else {
            short_id(id)
        };
        if a.quiet {
            println!("{id_shown}");
            continue;
        }
        let mut image = s(c, "/Image").to_string();
        if !a.no_trunc {
            if image.starts_with("sha256:") {
                image = short_id(&image);
            } else if let Some((name, _digest)) = image.split_once('@') {
                image = name.to_string();
            }
        }
        let command = s(c, "/Command");
        let command = if a.no_trunc {
            command.to_string()
        } else {
            ellipsis(command, 20)
        };
        let command = serde_json::to_string(&command).unwrap_or_default();
        let names: Vec<String> = c
            .get("Names")
            .and_then(Value::as_array)
            .map(|n| {
                n.iter()
                    .filter_map(Value::as_str)
                    .map(|n| n.trim_start_matches('/'))
                    .filter(|n| a.no_trunc || !n.contains('/'))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let created = c.get("Created").and_then(Value::as_i64).unwrap_or(0);
        let rw = c.get("SizeRw").and_then(Value::as_i64).unwrap_or(0);
        let root = c.get("SizeRootFs").and_then(Value::as_i64).unwrap_or(0);
        let size = if root > 0 {
            format!(
                "{} (virtual {})",
                crate::humanize::human_size_prec(rw, 3),
                crate::humanize::human_size_prec(root, 3)
            )
        } else {
            crate::humanize::human_size_prec(rw, 3)
        };
        let mut networks: Vec<String> = c
            .pointer("/NetworkSettings/Networks")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        networks.sort();
        let mounts: Vec<String> = c
            .get("Mounts")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .map(|x| {
                        let n = if s(x, "/Name").is_empty() {
                            s(x, "/Source")
                        } else {
                            s(x, "/Name")
                        };
                        if a.no_trunc {
                            n.to_string()
                        } else {
                            ellipsis(n, 15)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let local_volumes = c.get("Mounts").and_then(Value::as_array).map_or(0, |m| {
            m.iter().filter(|x| s(x, "/Driver") == "local").count()
        });
        rows.push(json!({
            "ID": id_shown, "Image": image, "Command": command,
            "CreatedAt": go_time(created), "RunningFor": ago(created),
            "Status": s(c, "/Status"), "State": s(c, "/State"),
            "Ports": format_ports(c.get("Ports")), "Names": names.join(","),
            "Labels": labels_column(c.get("Labels")), "Size": size,
            "Networks": networks.join(","), "Mounts": mounts.join(","),
            "LocalVolumes": local_volumes.to_string(), "Platform": null,
        }));
    }
    if a.quiet {
        return Ok(0);
    }
    let mut default = String::from(
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    );
    if a.size {
        default.push_str("\t{{.Size}}");
    }
    let f = ListFormat::parse(fmt.as_deref(), &default)?;
    f.print(
        &headers(&[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("CreatedAt", "CREATED AT"),
            ("RunningFor", "CREATED"),
            ("Ports", "PORTS"),
            ("State", "STATE"),
            ("Status", "STATUS"),
            ("Size", "SIZE"),
            ("Names", "NAMES"),
            ("Labels", "LABELS"),
            ("Mounts", "MOUNTS"),
            ("Networks", "NETWORKS"),
            ("LocalVolumes", "LOCAL VOLUMES"),
        ]),
        &rows,
    )?;
    Ok(0)
}

/// Parse a Go duration ("1h30m", "10s", "500ms"); a bare number is not a duration here.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    if s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    berth_api_types::humanize::go_duration(s)
}

/// Turn `--since`/`--until` values into the Unix seconds the API expects.
pub fn parse_timestamp(v: &str) -> Result<String> {
    if v.chars().all(|c| c.is_ascii_digit() || c == '.') && !v.is_empty() {
        return Ok(v.to_string());
    }
    if let Some(d) = parse_go_duration(v) {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as f64 / 1e9;
        return Ok(format!("{:.9}", now - d));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t.and_utc().timestamp().to_string());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp())
            .unwrap_or(0)
            .to_string());
    }
    bail!("invalid value for \"since\"/\"until\": {v:?} (use a duration like 10m or a timestamp like 2024-01-02T13:23:37Z)")
}

async fn logs(host: Option<&str>, a: LogsArgs) -> Result<i32> {
    let client = connect(host).await?;
    let c = client.inspect_container(&a.container).await?;
    let tty = c
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let opts = LogsOptions {
        follow: a.follow,
        timestamps: a.timestamps,
        tail: Some(a.tail.clone()),
        since: a.since.as_deref().map(parse_timestamp).transpose()?,
        until: a.until.as_deref().map(parse_timestamp).transpose()?,
        details: a.details,
    };
    let body = client.container_logs(s(&c, "/Id"), &opts).await?;
    let mut out = tokio::io::stdout();
    if tty {
        berth_client::copy_body(body, &mut out).await?;
    } else {
        let mut err = tokio::io::stderr();
        berth_client::demux_body(body, &mut out, &mut err).await?;
    }
    Ok(0)
}

/// Apply `f` to every name; print the name on success, the error otherwise; exit 1 if any failed.
async fn for_each<F, Fut>(names: &[String], mut f: F) -> Result<i32>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), berth_client::Error>>,
{
    let mut code = 0;
    for n in names {
        match f(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

async fn stop(host: Option<&str>, a: StopArgs) -> Result<i32> {
    let client = connect(host).await?;
    let c = &client;
    for_each(
        &a.names,
        |n| async move { c.stop_container(&n, a.time).await },
    )
    .await
}

async fn rm(host: Option<&str>, a: RmArgs) -> Result<i32> {
    let client = connect(host).await?;
    let c = &client;
    for_each(&a.names, |n| async move {
        c.remove_container(&n, a.force, a.volumes).await
    })
    .await
}

async fn kill(host: Option<&str>, a: KillArgs) -> Result<i32> {
    let client = connect(host).await?;
    let c = &client;
    let sig = a.signal.clone();
    for_each(&a.names, |n| {
        let sig = sig.clone();
        async move { c.kill_container(&n, sig.as_deref()).await }
    })
    .await
}

async fn start(host: Option<&str>, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.names.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        return run::start_attached(host, &a.names[0], a.interactive, a.detach_keys.as_deref())
            .await;
    }
    let client = connect(host).await?;
    let c = &client;
    let mut code = 0;
    for n in &a.names {
        match c.start_container(n).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    if code != 0 {
        eprintln!("Error: failed to start containers: {}", a.names.join(", "));
    }
    Ok(code)
}

async fn wait(host: Option<&str>, names: Vec<String>) -> Result<i32> {
    let client = connect(host).await?;
    let mut code = 0;
    for n in &names {
        let r = async {
            let h = client.wait_container(n, None).await?;
            h.result().await
        }
        .await;
        match r {
            Ok(w) => println!("{}", w.status_code),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

// ----- inspect ------------------------------------------------------------------------------

/// GET a JSON document raw (keeping the daemon's key order); None on 404.
pub async fn get_raw(client: &Client, path: &str) -> Result<Option<Vec<u8>>, berth_client::Error> {
    match client
        .request(berth_client::Method::GET, path, None, ReqBody::empty())
        .await
    {
        Ok(resp) => Ok(Some(berth_client::read_body(resp, path).await?.to_vec())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

async fn inspect_typed(host: Option<&str>, a: FormatNames, kind: &str) -> Result<i32> {
    inspect(
        host,
        InspectArgs {
            format: a.format,
            kind: Some(kind.to_string()),
            size: false,
            names: a.names,
        },
    )
    .await
}

/// Print raw inspect documents: docker's 4-space JSON array, or a template per object
/// (`json` = `{{json .}}`).
pub fn print_inspect(found: &[Vec<u8>], format: Option<&str>) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        Some(f) if !f.is_empty() => {
            let f = if f == "json" { "{{json .}}" } else { f };
            let tpl = template::Template::parse(f)?;
            for raw in found {
                let v: Value = serde_json::from_slice(raw).context("decoding inspect reply")?;
                writeln!(stdout, "{}", tpl.execute(&v)?)?;
            }
        }
        _ => {
            let mut out = String::from("[");
            for (i, raw) in found.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("\n    ");
                out.push_str(&jsonfmt::indent(raw, "    ", "    "));
            }
            if !found.is_empty() {
                out.push('\n');
            }
            out.push(']');
            writeln!(stdout, "{out}")?;
        }
    }
    Ok(())
}

async fn inspect(host: Option<&str>, a: InspectArgs) -> Result<i32> {
    let client = connect(host).await?;
    let kinds: Vec<&str> = match a.kind.as_deref() {
        None | Some("") => vec!["container", "image", "network", "volume"],
        Some(k @ ("container" | "image" | "network" | "volume")) => vec![k],
        Some(other) => bail!("\"{other}\" is not a valid value for --type"),
    };
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        let mut hit = None;
        for k in &kinds {
            let seg = berth_client::path_segment(name);
            let path = match *k {
                "container" if a.size => format!("/containers/{seg}/json?size=1"),
                "container" => format!("/containers/{seg}/json"),
                "image" => format!("/images/{seg}/json"),
                "network" => format!("/networks/{seg}"),
                _ => format!("/volumes/{seg}"),
            };
            match get_raw(&client, &path).await {
                Ok(Some(raw)) => {
                    hit = Some(raw);
                    break;
                }
                Ok(None) => {}
                // a daemon without that object kind (no networks yet) is a miss, not a failure
                Err(e) if kinds.len() > 1 && matches!(e.status(), Some(400 | 405 | 501)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match hit {
            Some(raw) => found.push(raw),
            None => errors.push(match a.kind.as_deref() {
                Some("container") => format!("Error: No such container: {name}"),
                Some("image") => format!("Error: No such image: {name}"),
                Some("network") => format!("Error: No such network: {name}"),
                Some("volume") => format!("Error: No such volume: {name}"),
                _ => format!("Error: No such object: {name}"),
            }),
        }
    }
    print_inspect(&found, a.format.as_deref())?;
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tag_split_and_qualify() {
        assert_eq!(
            split_repo_tag("busybox:latest"),
            ("busybox".into(), Some("latest".into()))
        );
        assert_eq!(
            split_repo_tag("localhost:5000/x"),
            ("localhost:5000/x".into(), None)
        );
        assert_eq!(
            split_repo_tag("h:5000/x:1"),
            ("h:5000/x".into(), Some("1".into()))
        );
        assert_eq!(qualify_repo("bb"), "docker.io/library/bb");
        assert_eq!(qualify_repo("myrepo/bb"), "docker.io/myrepo/bb");
        assert_eq!(
            qualify_repo("127.0.0.1:5999/dproxy/bb"),
            "127.0.0.1:5999/dproxy/bb"
        );
    }

    #[test]
    fn go_durations_and_timestamps() {
        assert_eq!(parse_go_duration("10s"), Some(10.0));
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("500ms"), Some(0.5));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("abc"), None);
        assert_eq!(parse_timestamp("1700000000").unwrap(), "1700000000");
        assert_eq!(
            parse_timestamp("2024-01-02T13:23:37Z").unwrap(),
            "1704201817.000000000"
        );
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn ports_column() {
        let p = json!([
            {"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},
            {"PrivatePort":9000,"Type":"tcp"}
        ]);
        assert_eq!(format_ports(Some(&p)), "0.0.0.0:8080->80/tcp, 9000/tcp");
        assert_eq!(format_ports(None), "");
    }

    #[test]
    fn filters_use_map_form() {
        let f = ps_filters(&["status=exited".into(), "label=k=v".into()])
            .unwrap()
            .unwrap();
        assert_eq!(f, json!({"status":{"exited":true},"label":{"k=v":true}}));
        assert!(ps_filters(&["nonsense".into()]).is_err());
    }
}
