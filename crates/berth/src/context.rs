//! The docker client configuration: `~/.docker/config.json` (or `$DOCKER_CONFIG`,
//! `--config`), contexts in docker's store layout
//! (`contexts/meta/<sha256(name)>/meta.json`), and which daemon a command talks to:
//! `--context`, else `-H`, else `$DOCKER_HOST`, else `$DOCKER_CONTEXT`, else the config's
//! `currentContext`, else the default socket.

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static CONFIG_DIR: OnceLock<PathBuf> = OnceLock::new();
static ACTIVE: OnceLock<String> = OnceLock::new();
static TLS: OnceLock<Option<berth_client::TlsOptions>> = OnceLock::new();

/// docker's TLS flags and environment: `--tls`/`--tlsverify`/`DOCKER_TLS_VERIFY`, with the
/// files from the flags or `DOCKER_CERT_PATH` (default the config directory).
pub fn set_tls(tls: bool, verify: bool, ca: Option<&str>, cert: Option<&str>, key: Option<&str>) {
    let env_verify = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
    let verify = verify || env_verify;
    if !(tls || verify) {
        // a context with TLS material (docker's contexts/tls/<hash>/docker/*.pem)
        let _ = TLS.set(context_tls(&active_name()));
        return;
    }
    let opts = (tls || verify).then(|| {
        let dir = std::env::var_os("DOCKER_CERT_PATH")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(config_dir);
        let pick = |flag: Option<&str>, file: &str| -> Option<PathBuf> {
            match flag {
                Some(f) => Some(PathBuf::from(f)),
                None => Some(dir.join(file)).filter(|p| p.exists()),
            }
        };
        berth_client::TlsOptions {
            verify,
            ca: pick(ca, "ca.pem"),
            cert: pick(cert, "cert.pem"),
            key: pick(key, "key.pem"),
        }
    });
    let _ = TLS.set(opts);
}

/// TLS settings stored with a context (ca.pem, cert.pem, key.pem; SkipTLSVerify).
fn context_tls(name: &str) -> Option<berth_client::TlsOptions> {
    if name == "default" {
        return None;
    }
    let dir = tls_dir(name).join("docker");
    let f = |n: &str| Some(dir.join(n)).filter(|p| p.exists());
    let (ca, cert, key) = (f("ca.pem"), f("cert.pem"), f("key.pem"));
    let skip = load_meta(name)
        .ok()
        .flatten()
        .and_then(|m| {
            m.pointer("/Endpoints/docker/SkipTLSVerify")
                .and_then(Value::as_bool)
        })
        .unwrap_or(false);
    if ca.is_none() && cert.is_none() && !skip {
        return None;
    }
    Some(berth_client::TlsOptions {
        verify: !skip,
        ca,
        cert,
        key,
    })
}

/// The TLS options for tcp:// daemons, if TLS is on.
pub fn tls() -> Option<&'static berth_client::TlsOptions> {
    TLS.get().and_then(Option::as_ref)
}

/// Remember the context this invocation uses (shown by `version` and `info`).
pub fn set_active_name(name: String) {
    let _ = ACTIVE.set(name);
}

/// The context this invocation uses.
pub fn active_name() -> String {
    ACTIVE.get().cloned().unwrap_or_else(|| "default".into())
}

/// Set the configuration directory from `--config` (before anything reads it).
pub fn set_config_dir(dir: Option<&str>) {
    if let Some(d) = dir {
        let _ = CONFIG_DIR.set(PathBuf::from(d));
    }
}

/// `--config`, `$DOCKER_CONFIG` or `~/.docker`.
pub fn config_dir() -> PathBuf {
    if let Some(d) = CONFIG_DIR.get() {
        return d.clone();
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

fn config_file() -> PathBuf {
    config_dir().join("config.json")
}

/// The whole config file (an empty object when absent).
pub fn load_config() -> Result<Value> {
    let p = config_file();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(json!({})),
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("loading config file {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(anyhow!("loading config file {}: {e}", p.display())),
    }
}

/// One top-level key of the config file, if present and readable.
pub fn config_value(key: &str) -> Option<Value> {
    load_config().ok()?.get(key).cloned()
}

/// Write the config file atomically (temp file, fsync, rename), mode 0600, tab-indented as
/// docker writes it. Unknown keys are kept.
pub fn save_config(v: &Value) -> Result<()> {
    let p = config_file();
    let text = tab_indent(v);
    write_atomic(&p, text.as_bytes(), 0o600)
}

/// Write a file atomically: temp file in the same directory, fsync, rename, fsync the dir.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Go's `json.MarshalIndent(v, "", "\t")`.
fn tab_indent(v: &Value) -> String {
    let raw = serde_json::to_vec(v).unwrap_or_default();
    crate::jsonfmt::indent(&raw, "", "\t")
}

// ----- contexts ---------------------------------------------------------------------------

/// The default daemon address of `berth`.
pub fn default_host() -> String {
    format!("unix://{}", berth_client::DEFAULT_SOCKET)
}

fn context_hash(name: &str) -> String {
    hex::encode(sha2::Sha256::digest(name.as_bytes()))
}

fn meta_dir(name: &str) -> PathBuf {
    config_dir()
        .join("contexts")
        .join("meta")
        .join(context_hash(name))
}

fn tls_dir(name: &str) -> PathBuf {
    config_dir()
        .join("contexts")
        .join("tls")
        .join(context_hash(name))
}

/// A stored context's meta.json.
fn load_meta(name: &str) -> Result<Option<Value>> {
    let p = meta_dir(name).join("meta.json");
    match std::fs::read(&p) {
        Ok(b) => Ok(Some(
            serde_json::from_slice(&b).with_context(|| format!("parsing {}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("reading {}: {e}", p.display())),
    }
}

fn all_metas() -> Vec<Value> {
    let dir = config_dir().join("contexts").join("meta");
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(b) = std::fs::read(e.path().join("meta.json")) {
                if let Ok(v) = serde_json::from_slice::<Value>(&b) {
                    out.push(v);
                }
            }
        }
    }
    out.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    out
}

/// The name of the context in use, with docker's precedence.
pub fn current_context_name(host_flag: Option<&str>, context_flag: Option<&str>) -> String {
    if let Some(c) = context_flag.filter(|c| !c.is_empty()) {
        return c.to_string();
    }
    if host_flag.is_some() {
        return "default".into();
    }
    if std::env::var("DOCKER_HOST").is_ok_and(|h| !h.is_empty()) {
        return "default".into();
    }
    if let Ok(c) = std::env::var("DOCKER_CONTEXT") {
        if !c.is_empty() {
            return c;
        }
    }
    if let Some(Value::String(c)) = config_value("currentContext") {
        if !c.is_empty() {
            return c;
        }
    }
    "default".into()
}

/// The daemon address to use (`None` = the client's own default).
pub fn resolve_host(host_flag: Option<&str>, context_flag: Option<&str>) -> Result<Option<String>> {
    if host_flag.is_some() && context_flag.is_some_and(|c| !c.is_empty()) {
        bail!("conflicting options: cannot specify both --host and --context");
    }
    let name = current_context_name(host_flag, context_flag);
    if name == "default" {
        if let Some(h) = host_flag {
            return Ok(Some(h.to_string()));
        }
        return Ok(std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()));
    }
    let meta = load_meta(&name)?.ok_or_else(|| {
        anyhow!(
            "context {name:?} does not exist (check `berth context ls`, $DOCKER_CONTEXT or \
             currentContext in {})",
            config_file().display()
        )
    })?;
    let host = meta
        .pointer("/Endpoints/docker/Host")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("context {name:?} has no docker endpoint"))?;
    Ok(Some(host.to_string()))
}

fn default_endpoint() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(default_host)
}

#[derive(Subcommand, Debug)]
pub enum ContextCmd {
    /// Create a context
    Create(CreateArgs),
    /// Display detailed information on one or more contexts
    Inspect(InspectArgs),
    /// List contexts
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove one or more contexts
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Print the name of the current context
    Show,
    /// Update a context
    Update(CreateArgs),
    /// Set the current berth context
    Use(UseArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Description of the context
    #[arg(long = "description")]
    pub description: Option<String>,
    /// set the docker endpoint (host=unix:///path)
    #[arg(long = "docker")]
    pub docker: Option<String>,
    /// create context from a named context
    #[arg(long = "from")]
    pub from: Option<String>,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Format output using a Go template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Only show context names
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a context in use
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UseArgs {
    pub name: String,
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    if !ok {
        bail!("context name {name:?} is invalid, names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\"");
    }
    if name == "default" {
        bail!("\"default\" is a reserved context name");
    }
    Ok(())
}

/// `--docker host=...,ca=FILE,cert=FILE,key=FILE,skip-tls-verify=BOOL`.
#[derive(Debug, Default)]
struct DockerOpt {
    host: String,
    skip_tls_verify: bool,
    files: Vec<(&'static str, String)>,
}

fn parse_docker_opt_full(s: &str) -> Result<DockerOpt> {
    let mut o = DockerOpt::default();
    let mut host = None;
    for kv in s.split(',') {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid docker endpoint option {kv:?}"))?;
        match k {
            "host" => host = Some(v.to_string()),
            "skip-tls-verify" => o.skip_tls_verify = matches!(v, "1" | "true"),
            "ca" => o.files.push(("ca.pem", v.to_string())),
            "cert" => o.files.push(("cert.pem", v.to_string())),
            "key" => o.files.push(("key.pem", v.to_string())),
            other => bail!("unrecognized config key: {other}"),
        }
    }
    o.host = host.unwrap_or_else(default_host);
    if !o.host.starts_with("tcp://") {
        berth_client::parse_host(&o.host).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(o)
}

/// `host=unix:///path[,...]` -> host.
fn parse_docker_opt(s: &str) -> Result<String> {
    Ok(parse_docker_opt_full(s)?.host)
}

/// Copy a context's TLS files into docker's store (contexts/tls/<hash>/docker/).
fn store_tls(name: &str, o: &DockerOpt) -> Result<()> {
    for (file, src) in &o.files {
        let data = std::fs::read(src).with_context(|| format!("reading {src}"))?;
        write_atomic(&tls_dir(name).join("docker").join(file), &data, 0o600)?;
    }
    Ok(())
}

fn meta_json(name: &str, description: Option<&str>, host: &str) -> Value {
    let mut md = serde_json::Map::new();
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        md.insert("Description".into(), json!(d));
    }
    json!({
        "Name": name,
        "Metadata": md,
        "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}
    })
}

fn write_meta(name: &str, meta: &Value) -> Result<()> {
    let raw = serde_json::to_vec(meta)?;
    write_atomic(&meta_dir(name).join("meta.json"), &raw, 0o644)
}

fn inspect_json(name: &str) -> Result<Value> {
    if name == "default" {
        return Ok(json!({
            "Name": "default", "Metadata": {},
            "Endpoints": {"docker": {"Host": default_endpoint(), "SkipTLSVerify": false}},
            "TLSMaterial": {},
            "Storage": {"MetadataPath": "<IN MEMORY>", "TLSPath": "<IN MEMORY>"}
        }));
    }
    let mut m = load_meta(name)?.ok_or_else(|| anyhow!("context {name:?} does not exist"))?;
    if let Some(o) = m.as_object_mut() {
        o.insert("TLSMaterial".into(), json!({}));
        o.insert(
            "Storage".into(),
            json!({
                "MetadataPath": meta_dir(name).display().to_string(),
                "TLSPath": tls_dir(name).display().to_string(),
            }),
        );
    }
    Ok(m)
}

pub fn dispatch(
    cmd: ContextCmd,
    host_flag: Option<&str>,
    context_flag: Option<&str>,
) -> Result<i32> {
    match cmd {
        ContextCmd::Create(a) => {
            validate_name(&a.name)?;
            if load_meta(&a.name)?.is_some() {
                bail!("context {:?} already exists", a.name);
            }
            let parsed = a.docker.as_deref().map(parse_docker_opt_full).transpose()?;
            let host = match (&a.docker, &a.from) {
                (Some(_), _) => parsed.as_ref().map(|p| p.host.clone()).unwrap_or_default(),
                (None, Some(from)) => inspect_json(from)?
                    .pointer("/Endpoints/docker/Host")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                (None, None) => {
                    let cur = current_context_name(host_flag, context_flag);
                    inspect_json(&cur)?
                        .pointer("/Endpoints/docker/Host")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                }
            };
            let mut meta = meta_json(&a.name, a.description.as_deref(), &host);
            if let Some(p) = &parsed {
                meta["Endpoints"]["docker"]["SkipTLSVerify"] = json!(p.skip_tls_verify);
                store_tls(&a.name, p)?;
            }
            write_meta(&a.name, &meta)?;
            println!("{}", a.name);
            eprintln!("Successfully created context {:?}", a.name);
            Ok(0)
        }
        ContextCmd::Update(a) => {
            let mut m = load_meta(&a.name)?
                .ok_or_else(|| anyhow!("context {:?} does not exist", a.name))?;
            if let Some(d) = &a.description {
                m["Metadata"]["Description"] = json!(d);
            }
            if let Some(d) = &a.docker {
                m["Endpoints"]["docker"]["Host"] = json!(parse_docker_opt(d)?);
            }
            write_meta(&a.name, &m)?;
            println!("{}", a.name);
            eprintln!("Successfully updated context {:?}", a.name);
            Ok(0)
        }
        ContextCmd::Inspect(a) => {
            let names = if a.names.is_empty() {
                vec![current_context_name(host_flag, context_flag)]
            } else {
                a.names
            };
            let mut items = Vec::new();
            for n in &names {
                items.push(inspect_json(n)?);
            }
            match &a.format {
                Some(f) => {
                    let t = crate::template::Template::parse(f)?;
                    for it in &items {
                        println!("{}", t.execute(it)?);
                    }
                }
                None => {
                    // docker's field order: Name, Metadata, Endpoints, TLSMaterial, Storage
                    let mut raw = String::from("[");
                    for (i, it) in items.iter().enumerate() {
                        if i > 0 {
                            raw.push(',');
                        }
                        raw.push('{');
                        let keys = ["Name", "Metadata", "Endpoints", "TLSMaterial", "Storage"];
                        let parts: Vec<String> = keys
                            .iter()
                            .map(|k| format!("\"{k}\":{}", crate::template::go_json(&it[*k])))
                            .collect();
                        raw.push_str(&parts.join(","));
                        raw.push('}');
                    }
                    raw.push(']');
                    println!("{}", crate::jsonfmt::indent(raw.as_bytes(), "", "    "));
                }
            }
            Ok(0)
        }
        ContextCmd::Ls(a) => {
            let cur = current_context_name(host_flag, context_flag);
            let mut rows = vec![json!({
                "Name": "default", "Description": "Current DOCKER_HOST based configuration",
                "DockerEndpoint": default_endpoint(), "Error": "", "Current": cur == "default",
            })];
            for m in all_metas() {
                let name = m["Name"].as_str().unwrap_or("").to_string();
                rows.push(json!({
                    "Name": name,
                    "Description": m.pointer("/Metadata/Description").and_then(Value::as_str).unwrap_or(""),
                    "DockerEndpoint": m.pointer("/Endpoints/docker/Host").and_then(Value::as_str).unwrap_or(""),
                    "Error": "", "Current": cur == name,
                }));
            }
            rows.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
            if a.quiet {
                for r in &rows {
                    println!("{}", r["Name"].as_str().unwrap_or(""));
                }
                return Ok(0);
            }
            // The table marks the current context with " *" in the NAME column.
            let table_rows: Vec<Value> =
                if a.format.as_deref().is_none_or(|f| f.starts_with("table")) {
                    rows.iter()
                        .map(|r| {
                            let mut r = r.clone();
                            if r["Current"] == json!(true) {
                                r["Name"] =
                                    json!(format!("{} *", r["Name"].as_str().unwrap_or("")));
                            }
                            r
                        })
                        .collect()
                } else {
                    rows
                };
            let f = crate::format::ListFormat::parse(
                a.format.as_deref(),
                "{{.Name}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}",
            )?;
            let h = crate::format::headers(&[
                ("Name", "NAME"),
                ("Description", "DESCRIPTION"),
                ("DockerEndpoint", "DOCKER ENDPOINT"),
                ("Error", "ERROR"),
                ("Current", "CURRENT"),
            ]);
            f.print(&h, &table_rows)?;
            Ok(0)
        }
        ContextCmd::Rm(a) => {
            let cur = current_context_name(None, None);
            let mut code = 0;
            for n in &a.names {
                if n == "default" {
                    eprintln!("default: context \"default\" cannot be removed");
                    code = 1;
                    continue;
                }
                if load_meta(n)?.is_none() {
                    eprintln!("context {n:?} does not exist");
                    code = 1;
                    continue;
                }
                if *n == cur {
                    if !a.force {
                        eprintln!("context {n:?} is in use, set -f flag to force remove");
                        code = 1;
                        continue;
                    }
                    let mut cfg = load_config()?;
                    if let Some(o) = cfg.as_object_mut() {
                        o.remove("currentContext");
                    }
                    save_config(&cfg)?;
                }
                std::fs::remove_dir_all(meta_dir(n))
                    .with_context(|| format!("removing context {n}"))?;
                let _ = std::fs::remove_dir_all(tls_dir(n));
                println!("{n}");
            }
            Ok(code)
        }
        ContextCmd::Show => {
            println!("{}", current_context_name(host_flag, context_flag));
            Ok(0)
        }
        ContextCmd::Use(a) => {
            if a.name != "default" && load_meta(&a.name)?.is_none() {
                bail!("context {:?} does not exist", a.name);
            }
            let mut cfg = load_config()?;
            if !cfg.is_object() {
                cfg = json!({});
            }
            if let Some(o) = cfg.as_object_mut() {
                if a.name == "default" {
                    o.remove("currentContext");
                } else {
                    o.insert("currentContext".into(), json!(a.name));
                }
            }
            save_config(&cfg)?;
            println!("{}", a.name);
            eprintln!("Current context is now {:?}", a.name);
            if std::env::var("DOCKER_HOST").is_ok_and(|h| !h.is_empty()) {
                eprintln!("Warning: DOCKER_HOST environment variable overrides the active context. To use {:?}, either set the global --context flag, or unset DOCKER_HOST environment variable.", a.name);
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_dirs_use_sha256_of_the_name() {
        assert_eq!(
            context_hash("foo"),
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        );
        assert!(validate_name("my-ctx.1").is_ok());
        assert!(validate_name("default").is_err());
        assert!(validate_name("-x").is_err());
        assert_eq!(
            parse_docker_opt("host=unix:///x.sock").unwrap(),
            "unix:///x.sock"
        );
        assert!(parse_docker_opt("bogus=1").is_err());
    }
}
