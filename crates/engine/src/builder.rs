//! The classic builder behind `POST /build` (`docker build` without BuildKit): the context tar
//! is unpacked into a private directory, the Dockerfile parsed by `berth-dockerfile`, and each
//! instruction becomes an image: RUN in a real container from the previous step (then
//! committed), COPY/ADD as a layer made straight from the context, the rest as
//! configuration-only images (empty layers), as dockerd's legacy builder does. Steps are cached
//! by content: (parent image, expanded instruction, hash of the files it copies).

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api_types::{ContainerConfig, ContainerCreateRequest, HostConfig};
use berth_dockerfile::{parse, Args, Instruction, Matcher};
use berth_store::{ChainId, ImageId};
use serde_json::{json, Value};
use sha2::Digest as _;
use tokio::sync::mpsc;

use crate::containers::OutFrame;
use crate::error::{Error, Result};
use crate::Engine;

/// `POST /build` query options.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub tags: Vec<String>,
    pub dockerfile: String,
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: String,
    pub no_cache: bool,
    pub rm: bool,
    pub force_rm: bool,
    pub quiet: bool,
    /// `remote=`: a URL to a tar context or to a plain Dockerfile.
    pub remote: String,
    /// `networkmode=` for RUN containers (default: the default bridge).
    pub network_mode: String,
}

type Tx = mpsc::Sender<Value>;

/// Refuses a bad `t=` before the context is read (dockerd's 400).
pub fn validate_tags(tags: &[String]) -> Result<()> {
    for t in tags {
        berth_spec::reference::Reference::parse_normalized(t)
            .map_err(|e| Error::invalid(format!("invalid reference format: {e}")))?;
    }
    Ok(())
}

async fn say(tx: &Tx, s: impl Into<String>) {
    let _ = tx.send(json!({"stream": s.into()})).await;
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// One stage's state.
#[derive(Clone)]
struct Stage {
    name: String,
    /// None: scratch.
    image: Option<String>,
    config: ContainerConfig,
    shell: Vec<String>,
    /// ARG values visible in this stage.
    args: BTreeMap<String, String>,
    /// ARGs declared before the first FROM: a bare `ARG NAME` in the stage takes its value.
    globals: BTreeMap<String, String>,
    /// A CMD was given in this stage (ENTRYPOINT then keeps it; it resets an inherited one).
    cmd_set: bool,
}

const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
];

/// Unpacks a (possibly gzip-compressed) context tar into `dir`. The tar crate refuses entries
/// that would land outside `dir` (`..`, absolute paths); device nodes are skipped.
fn unpack_context(body: &[u8], dir: &Path) -> Result<()> {
    let reader: Box<dyn Read> = if body.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    for e in ar.entries().map_err(|e| Error::invalid(format!("invalid build context: {e}")))? {
        let mut e = e.map_err(|e| Error::invalid(format!("invalid build context: {e}")))?;
        let kind = e.header().entry_type();
        if kind.is_block_special() || kind.is_character_special() || kind.is_fifo() {
            continue;
        }
        e.unpack_in(dir).map_err(|e| Error::invalid(format!("invalid build context: {e}")))?;
    }
    Ok(())
}

/// `remote=URL`: a tar (plain or gzip) is the context; anything else is taken as the
/// Dockerfile of an otherwise empty context, as dockerd does.
async fn remote_context(url: &str) -> Result<Vec<u8>> {
    if url.starts_with("git@") || url.ends_with(".git") || url.starts_with("git://") || url.contains(".git#") {
        return Err(Error::invalid(format!("git build contexts are not supported: {url}")));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::invalid(format!("unable to prepare context: unsupported remote context {url}")));
    }
    let body = berth_registry::fetch_url(url, 2 << 30)
        .await
        .map_err(|e| Error::invalid(format!("unable to prepare context: {e}")))?;
    let is_tar = body.starts_with(&[0x1f, 0x8b]) || (body.len() >= 262 && &body[257..262] == b"ustar");
    if is_tar {
        return Ok(body.to_vec());
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "Dockerfile", &body[..])?;
    Ok(b.into_inner()?)
}

/// Files of the context a COPY source names (globs in the last component allowed), with
/// .dockerignore applied.
fn context_sources(ctx: &Path, src: &str, ignore: &Matcher) -> Result<Vec<PathBuf>> {
    let rel = src.trim_start_matches("./").trim_start_matches('/');
    let rel = if rel.is_empty() || rel == "." { "" } else { rel };
    if rel.split('/').any(|c| c == "..") {
        return Err(Error::invalid(format!("forbidden path outside the build context: {src}")));
    }
    let mut out = Vec::new();
    if rel.contains(['*', '?', '[']) {
        let (parent, pat) = rel.rsplit_once('/').unwrap_or(("", rel));
        if let Ok(rd) = std::fs::read_dir(ctx.join(parent)) {
            let mut names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            for n in names {
                if berth_dockerfile::ignore::glob(pat.as_bytes(), n.as_bytes()) {
                    let p = if parent.is_empty() { n } else { format!("{parent}/{n}") };
                    if !ignore.excluded(&p) {
                        out.push(PathBuf::from(p));
                    }
                }
            }
        }
    } else if rel.is_empty() || !ignore.excluded(rel) {
        // Symlinks on the way are followed inside the context only (openat2 RESOLVE_IN_ROOT
        // semantics): `link -> /etc` then `COPY link/passwd` reads the context's etc/passwd,
        // never the host's.
        use std::os::fd::AsFd;
        let root = std::fs::File::open(ctx)?;
        let resolved = berth_sys::resolve_in_root_path(root.as_fd(), Path::new(&format!("/{rel}")))?;
        let resolved = resolved.strip_prefix("/").unwrap_or(&resolved).to_path_buf();
        if ctx.join(&resolved).symlink_metadata().is_ok() {
            out.push(resolved);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(format!(
            "COPY failed: file not found in build context or excluded by .dockerignore: stat {rel}: file does not exist"
        )));
    }
    Ok(out)
}

/// Copies `src` (file, symlink or directory tree) to `dst`, skipping ignored paths (relative
/// to the context root) and setting the owner when asked.
fn copy_tree(
    src: &Path,
    dst: &Path,
    rel: &Path,
    ignore: Option<&Matcher>,
    owner: Option<(u32, u32)>,
    hash: &mut sha2::Sha256,
    dry: bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::symlink_metadata(src)?;
    if let Some(m) = ignore {
        let r = rel.to_string_lossy();
        if !r.is_empty() && m.excluded(&r) {
            return Ok(());
        }
    }
    hash.update(rel.to_string_lossy().as_bytes());
    hash.update(md.mode().to_le_bytes());
    let (uid, gid) = owner.unwrap_or((0, 0));
    if md.file_type().is_symlink() {
        let t = std::fs::read_link(src)?;
        hash.update(t.to_string_lossy().as_bytes());
        if dry {
            return Ok(());
        }
        let _ = std::fs::remove_file(dst);
        std::os::unix::fs::symlink(&t, dst)?;
        std::os::unix::fs::lchown(dst, Some(uid), Some(gid))?;
    } else if md.is_dir() {
        if !dry {
            std::fs::create_dir_all(dst)?;
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
            std::os::unix::fs::chown(dst, Some(uid), Some(gid))?;
        }
        let mut names: Vec<_> = std::fs::read_dir(src)?.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            copy_tree(&src.join(&n), &dst.join(&n), &rel.join(&n), ignore, owner, hash, dry)?;
        }
    } else if md.is_file() {
        let data = std::fs::read(src)?;
        hash.update(&data);
        if dry {
            return Ok(());
        }
        std::fs::write(dst, &data)?;
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
        std::os::unix::fs::chown(dst, Some(uid), Some(gid))?;
    }
    Ok(())
}

fn is_tar_archive(p: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(p) else { return false };
    let n = f.read(&mut head).unwrap_or(0);
    if head.starts_with(&[0x1f, 0x8b]) {
        return true;
    }
    n >= 262 && &head[257..262] == b"ustar"
}

/// `--chown=user:group` with numeric ids or names from the image's /etc/passwd and /etc/group
/// (looked up in the context of the stage's layers).
fn parse_chown(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<(u32, u32)> {
    let (u, g) = spec.split_once(':').unwrap_or((spec, ""));
    let find = |db: Option<&str>, name: &str, what: &str| -> Result<u32> {
        if let Ok(n) = name.parse() {
            return Ok(n);
        }
        db.and_then(|d| d.lines().find(|l| l.split(':').next() == Some(name)))
            .and_then(|l| l.split(':').nth(2))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::invalid(format!("unable to find {what} {name}: no matching entries in {what} file")))
    };
    let uid = find(passwd, u, "user")?;
    let gid = if g.is_empty() {
        // the user's primary group, or the uid
        passwd
            .and_then(|d| d.lines().find(|l| l.split(':').nth(2) == Some(&uid.to_string())))
            .and_then(|l| l.split(':').nth(3))
            .and_then(|v| v.parse().ok())
            .unwrap_or(uid)
    } else {
        find(group, g, "group")?
    };
    Ok((uid, gid))
}

fn exec_or_shell(args: &Args, shell: &[String]) -> Vec<String> {
    match args {
        Args::Exec(v) => v.clone(),
        Args::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

impl Engine {
    /// Runs a build, streaming dockerd's legacy-builder messages to `tx`.
    pub async fn build_image(self: &Arc<Self>, opts: BuildOptions, context: Vec<u8>, tx: Tx) {
        let dir = self.cfg.data_root.join("tmp").join(format!("build-{}", &crate::names::new_id()[..16]));
        let r = async {
            std::fs::create_dir_all(&dir)?;
            let context = if opts.remote.is_empty() {
                context
            } else {
                remote_context(&opts.remote).await?
            };
            let ctx = dir.clone();
            tokio::task::spawn_blocking(move || unpack_context(&context, &ctx))
                .await
                .map_err(|e| Error::internal(e.to_string()))??;
            self.build_in(&opts, &dir, &tx).await
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = r {
            let mut m = crate::distribution::error_msg(&e.message);
            // A failing RUN carries its exit code, which the docker CLI exits with.
            if let Some(code) = e
                .message
                .rsplit_once("returned a non-zero code: ")
                .and_then(|(_, c)| c.trim().parse::<i64>().ok())
            {
                m["errorDetail"]["code"] = json!(code);
            }
            let _ = tx.send(m).await;
        }
    }

    async fn build_in(self: &Arc<Self>, opts: &BuildOptions, ctx: &Path, tx: &Tx) -> Result<()> {
        let df_name = if opts.dockerfile.is_empty() { "Dockerfile" } else { opts.dockerfile.as_str() };
        let df_path = ctx.join(df_name.trim_start_matches("./"));
        let text = std::fs::read_to_string(&df_path).map_err(|_| {
            Error::invalid(format!(
                "Cannot locate specified Dockerfile: {df_name}"
            ))
        })?;
        let mut df = parse(&text).map_err(|e| Error::invalid(e.to_string()))?;
        // `--label k=v`: one LABEL step each at the end, counted in the steps, as dockerd does
        let last_line = df.instructions.last().map(|i| i.line).unwrap_or(0);
        for (k, v) in &opts.labels {
            let q = |s: &str| {
                if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
                    serde_json::to_string(s).unwrap_or_default()
                } else {
                    s.to_string()
                }
            };
            let kv = format!("{}={}", q(k), q(v));
            df.instructions.push(Instruction {
                cmd: "LABEL".into(),
                flags: Vec::new(),
                args: Args::Shell(kv.clone()),
                heredocs: Vec::new(),
                line: last_line + 1,
                original: format!("LABEL {kv}"),
            });
        }
        if df.instructions.is_empty() {
            return Err(Error::invalid("the Dockerfile (Dockerfile) cannot be empty"));
        }
        let ignore = Matcher::parse(&std::fs::read_to_string(ctx.join(".dockerignore")).unwrap_or_default());
        let escape = df.escape;
        // stages, and where --target stops
        let total = df.instructions.len();
        let mut stop_at = total;
        if !opts.target.is_empty() {
            let mut found = false;
            for (i, ins) in df.instructions.iter().enumerate() {
                if ins.cmd == "FROM" {
                    if found {
                        stop_at = i;
                        break;
                    }
                    if let Args::Shell(s) = &ins.args {
                        let w: Vec<&str> = s.split_whitespace().collect();
                        if w.len() == 3 && w[1].eq_ignore_ascii_case("as") && w[2].eq_ignore_ascii_case(&opts.target) {
                            found = true;
                        }
                    }
                }
            }
            if !found {
                return Err(Error::invalid(format!("failed to reach build target {} in Dockerfile", opts.target)));
            }
        }
        let mut meta_args: BTreeMap<String, String> = BTreeMap::new();
        let mut used_args: HashSet<String> = HashSet::new();
        let mut stages: Vec<Stage> = Vec::new();
        let mut cur: Option<Stage> = None;
        let mut step = 0usize;
        let steps = stop_at;
        for ins in df.instructions.iter().take(stop_at) {
            step += 1;
            if !opts.quiet {
                say(tx, format!("Step {step}/{steps} : {}\n", ins.original)).await;
            }
            if ins.cmd == "FROM" {
                if let Some(s) = cur.take() {
                    stages.push(s);
                }
                let s = self.from(ins, &meta_args, &stages, opts, tx).await?;
                cur = Some(s);
                continue;
            }
            if ins.cmd == "ARG" && cur.is_none() {
                for (k, v) in arg_pairs(ins)? {
                    let v = opts.build_args.get(&k).cloned().flatten().or(v).unwrap_or_default();
                    used_args.insert(k.clone());
                    meta_args.insert(k, v);
                }
                continue;
            }
            let Some(st) = cur.as_mut() else {
                return Err(Error::invalid(format!(
                    "Please provide a source image with `from` prior to {}",
                    ins.cmd.to_lowercase()
                )));
            };
            self.step(st, ins, escape, ctx, &ignore, &stages, opts, &mut used_args, tx).await?;
        }
        let st = cur.ok_or_else(|| Error::invalid("no FROM instruction"))?;
        let Some(id) = st.image.clone() else {
            return Err(Error::invalid("No image was generated. Is your Dockerfile empty?"));
        };
        let unused: Vec<String> = opts
            .build_args
            .keys()
            .filter(|k| !used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .cloned()
            .collect();
        if !unused.is_empty() && !opts.quiet {
            say(tx, format!("[Warning] One or more build-args [{}] were not consumed\n", unused.join(" "))).await;
        }
        let _ = tx.send(json!({"aux": {"ID": id}})).await;
        if opts.quiet {
            say(tx, format!("{id}\n")).await;
        } else {
            say(tx, format!("Successfully built {}\n", short(&id))).await;
        }
        let iid: ImageId = id.parse().map_err(|e: berth_store::Error| Error::internal(e.to_string()))?;
        for t in &opts.tags {
            let r = berth_spec::reference::Reference::parse_normalized(t).map_err(|e| Error::invalid(e.to_string()))?;
            let r = if r.tag().is_none() && r.digest().is_none() { r.with_tag("latest").map_err(|e| Error::invalid(e.to_string()))? } else { r };
            self.images.tag(&iid, &r.to_string()).map_err(|e| Error::internal(e.to_string()))?;
            if !opts.quiet {
                say(tx, format!("Successfully tagged {}\n", r.familiar_string())).await;
            }
        }
        Ok(())
    }

    async fn from(
        self: &Arc<Self>,
        ins: &Instruction,
        meta: &BTreeMap<String, String>,
        stages: &[Stage],
        opts: &BuildOptions,
        tx: &Tx,
    ) -> Result<Stage> {
        let Args::Shell(s) = &ins.args else {
            return Err(Error::invalid("FROM requires an image"));
        };
        let words: Vec<String> = s.split_whitespace().map(String::from).collect();
        let base = berth_dockerfile::shell::process_word(&words[0], meta, '\\').map_err(|e| Error::invalid(e.to_string()))?;
        let name = if words.len() == 3 && words[1].eq_ignore_ascii_case("as") { words[2].to_lowercase() } else { String::new() };
        let args = BTreeMap::new();
        let globals = meta.clone();
        if base == "scratch" {
            let mut config = ContainerConfig::default();
            add_default_path(&mut config);
            return Ok(Stage { name, image: None, config, shell: vec!["/bin/sh".into(), "-c".into()], args, globals, cmd_set: false });
        }
        // an earlier stage by name or index
        if let Some(s) = stages.iter().enumerate().find(|(i, s)| (!s.name.is_empty() && s.name == base.to_lowercase()) || i.to_string() == base) {
            let mut st = s.1.clone();
            st.name = name;
            st.args = args;
            st.globals = globals;
            st.cmd_set = false;
            if let Some(id) = &st.image {
                say_id(tx, opts, id).await;
            }
            return Ok(st);
        }
        let id = self.images.resolve(&base).map_err(|_| {
            Error::not_found(format!("pull access denied for {base}, repository does not exist or may require 'docker login'"))
        })?;
        let info = self.images.inspect(&id).map_err(|e| Error::internal(e.to_string()))?;
        let config: ContainerConfig = info
            .config
            .get("config")
            .filter(|c| !c.is_null())
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        let shell = config.shell.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let mut config = config;
        add_default_path(&mut config);
        let mut st = Stage { name, image: Some(id.to_string()), config, shell, args, globals, cmd_set: false };
        say_id(tx, opts, &id.to_string()).await;
        // ONBUILD triggers of the base run now, then are cleared
        let triggers = st.config.on_build.take().unwrap_or_default();
        for t in triggers {
            let df = parse(&t).map_err(|e| Error::invalid(e.to_string()))?;
            for i in df.instructions {
                if !opts.quiet {
                    say(tx, "# Executing 1 build trigger\n").await;
                }
                let ignore = Matcher::parse("");
                let mut used = HashSet::new();
                Box::pin(self.step(&mut st, &i, '\\', Path::new("/nonexistent"), &ignore, stages, opts, &mut used, tx)).await?;
            }
        }
        Ok(st)
    }

    #[allow(clippy::too_many_arguments)]
    async fn step(
        self: &Arc<Self>,
        st: &mut Stage,
        ins: &Instruction,
        escape: char,
        ctx: &Path,
        ignore: &Matcher,
        stages: &[Stage],
        opts: &BuildOptions,
        used_args: &mut HashSet<String>,
        tx: &Tx,
    ) -> Result<()> {
        // expansion environment: ARGs then ENV (ENV wins)
        let mut env: BTreeMap<String, String> = st.args.clone();
        for e in st.config.env.iter().flatten() {
            if let Some((k, v)) = e.split_once('=') {
                env.insert(k.to_string(), v.to_string());
            }
        }
        let expand = |s: &str| berth_dockerfile::shell::process_word(s, &env, escape).map_err(|e| Error::invalid(e.to_string()));
        let shell_text = |a: &Args| match a {
            Args::Shell(s) => s.clone(),
            Args::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
        };
        let cmd = ins.cmd.as_str();
        match cmd {
            "RUN" => {
                let argv = exec_or_shell(&ins.args, &st.shell);
                let created_by = match &ins.args {
                    Args::Shell(s) => format!("{} {s}", st.shell.join(" ")),
                    Args::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
                };
                // build args are visible to RUN (and part of its cache key)
                let mut run_env: Vec<String> = st.config.env.clone().unwrap_or_default();
                let mut arg_env: Vec<String> = Vec::new();
                for (k, v) in &st.args {
                    if !run_env.iter().any(|e| e.split('=').next() == Some(k)) {
                        arg_env.push(format!("{k}={v}"));
                    }
                }
                run_env.extend(arg_env.iter().cloned());
                let key = format!("RUN|{}|{:?}|{}", st.image.clone().unwrap_or_default(), argv, arg_env.join(","));
                if let Some(id) = self.cache_hit(&key, opts) {
                    say(tx, " ---> Using cache\n").await;
                    st.image = Some(id.clone());
                    say_id(tx, opts, &id).await;
                    return Ok(());
                }
                let Some(image) = st.image.clone() else {
                    return Err(Error::invalid("RUN needs an image with a shell (FROM scratch has none)"));
                };
                let mut config = st.config.clone();
                config.image = image.clone();
                config.cmd = Some(argv.clone());
                config.entrypoint = None;
                config.env = Some(run_env);
                config.attach_stdout = true;
                config.attach_stderr = true;
                let req = ContainerCreateRequest {
                    config,
                    host_config: HostConfig {
                        network_mode: if opts.network_mode.is_empty() { "default".into() } else { opts.network_mode.clone() },
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let (cid, _) = self.create_container(None, req).await?;
                if !opts.quiet {
                    say(tx, format!(" ---> Running in {}\n", short(&cid))).await;
                }
                let (c, mut att) = self.attach_container(&cid)?;
                let mut life = c.life.subscribe();
                if let Err(e) = self.start_container(&cid).await {
                    let _ = self.remove_container(&cid, true, true).await;
                    return Err(e);
                }
                loop {
                    match att.output.recv().await {
                        Ok(OutFrame::Data(_, b)) => {
                            if !opts.quiet {
                                say(tx, String::from_utf8_lossy(&b).into_owned()).await;
                            }
                        }
                        Ok(OutFrame::End) => break,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                let _ = life.wait_for(|l| !l.running).await;
                let code = c.snapshot().state.exit_code;
                if code != 0 {
                    if opts.rm || opts.force_rm {
                        let _ = self.remove_container(&cid, true, true).await;
                    }
                    return Err(Error::invalid(format!(
                        "The command '{}' returned a non-zero code: {code}",
                        argv.join(" ")
                    )));
                }
                let id = self.commit_step(st, Some(&cid), None, created_by, false).await?;
                if opts.rm {
                    let _ = self.remove_container(&cid, true, true).await;
                    if !opts.quiet {
                        say(tx, format!("Removing intermediate container {}\n", short(&cid))).await;
                    }
                }
                self.cache_put(&key, &id);
                st.image = Some(id.clone());
                say_id(tx, opts, &id).await;
            }
            "COPY" | "ADD" => {
                let raw = shell_text(&ins.args);
                let mut parts: Vec<String> = match &ins.args {
                    Args::Exec(v) => v.iter().map(|s| expand(s)).collect::<Result<_>>()?,
                    Args::Shell(s) => berth_dockerfile::shell::process_words(s, &env, escape).map_err(|e| Error::invalid(e.to_string()))?,
                };
                if parts.len() < 2 {
                    return Err(Error::invalid(format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined.")));
                }
                let dest = parts.pop().expect("len");
                let from = ins.flags.iter().find(|(k, _)| k == "from").map(|(_, v)| v.clone());
                let chown = ins.flags.iter().find(|(k, _)| k == "chown").map(|(_, v)| expand(v)).transpose()?;
                let chmod = ins.flags.iter().find(|(k, _)| k == "chmod").map(|(_, v)| v.clone());
                // where sources come from: the context, an earlier stage, or an image
                let (src_root, _mount) = match &from {
                    None => (ctx.to_path_buf(), None),
                    Some(f) => {
                        let img = stages
                            .iter()
                            .enumerate()
                            .find(|(i, s)| (!s.name.is_empty() && s.name == f.to_lowercase()) || i.to_string() == *f)
                            .and_then(|(_, s)| s.image.clone())
                            .map(Ok)
                            .unwrap_or_else(|| self.images.resolve(f).map(|i| i.to_string()).map_err(|_| Error::invalid(format!("invalid from flag value {f}: no such image or stage"))))?;
                        let m = self.mount_image_ro(&img)?;
                        (m.path.clone(), Some(m))
                    }
                };
                let workdir = if st.config.working_dir.is_empty() { "/".to_string() } else { st.config.working_dir.clone() };
                let dest_abs = if dest.starts_with('/') { dest.clone() } else { format!("{}/{}", workdir.trim_end_matches('/'), dest) };
                let owner = match &chown {
                    Some(c) => {
                        let (p, g) = self.stage_user_dbs(st);
                        Some(parse_chown(c, p.as_deref(), g.as_deref())?)
                    }
                    None => None,
                };
                let layer_dir = self.cfg.data_root.join("tmp").join(format!("layer-{}", &crate::names::new_id()[..16]));
                // First a dry pass that only hashes the sources (a cache hit copies nothing),
                // then, on a miss, the pass that writes the layer.
                let pass = |dry: bool, hasher: &mut sha2::Sha256| -> Result<()> {
                    let mut srcs = Vec::new();
                    let remote: Vec<&String> = parts.iter().filter(|p| p.starts_with("http://") || p.starts_with("https://")).collect();
                    if !remote.is_empty() && cmd == "COPY" {
                        return Err(Error::invalid("COPY does not take URLs: use ADD"));
                    }
                    for p in &parts {
                        if p.starts_with("http://") || p.starts_with("https://") {
                            continue;
                        }
                        let ig = if from.is_none() { ignore.clone() } else { Matcher::parse("") };
                        for s in context_sources(&src_root, p, &ig)? {
                            srcs.push(s);
                        }
                    }
                    let dest_is_dir = dest.ends_with('/') || srcs.len() > 1 || parts.len() > 1;
                    for u in &remote {
                        // ADD <url>: downloaded as is (never extracted), mode 0600, as dockerd
                        let data = tokio::task::block_in_place(|| {
                            tokio::runtime::Handle::current().block_on(berth_registry::fetch_url(u, 2 << 30))
                        })
                        .map_err(|e| Error::invalid(format!("ADD {u}: {e}")))?;
                        hasher.update(u.as_bytes());
                        hasher.update(&data);
                        let name = u.split(['?', '#']).next().unwrap_or(u).rsplit('/').next().unwrap_or("").to_string();
                        let target_rel = dest_abs.trim_start_matches('/');
                        let out = if dest_is_dir || name.is_empty() && dest.ends_with('/') {
                            layer_dir.join(target_rel).join(if name.is_empty() { "index.html".into() } else { name })
                        } else {
                            layer_dir.join(target_rel)
                        };
                        if dry {
                            continue;
                        }
                        if let Some(parent) = out.parent() {
                            std::fs::create_dir_all(parent)?;
                        }
                        std::fs::write(&out, &data)?;
                        use std::os::unix::fs::PermissionsExt;
                        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600))?;
                        if let Some((u, g)) = owner {
                            std::os::unix::fs::chown(&out, Some(u), Some(g))?;
                        }
                    }
                    for s in srcs {
                        let full = src_root.join(&s);
                        let md = std::fs::symlink_metadata(&full)?;
                        let target_rel = dest_abs.trim_start_matches('/');
                        if cmd == "ADD" && md.is_file() && is_tar_archive(&full) && from.is_none() {
                            // ADD of a local archive: its contents are extracted at dest
                            let out = layer_dir.join(target_rel);
                            let data = std::fs::read(&full)?;
                            hasher.update(&data);
                            if !dry {
                                std::fs::create_dir_all(&out)?;
                                unpack_context(&data, &out)?;
                            }
                            continue;
                        }
                        let out = if md.is_dir() {
                            layer_dir.join(target_rel)
                        } else if dest_is_dir {
                            layer_dir.join(target_rel).join(full.file_name().unwrap_or_default())
                        } else {
                            layer_dir.join(target_rel)
                        };
                        if !dry {
                            if let Some(parent) = out.parent() {
                                std::fs::create_dir_all(parent)?;
                            }
                        }
                        let ig = if from.is_none() { Some(ignore) } else { None };
                        copy_tree(&full, &out, &s, ig, owner, hasher, dry)?;
                        if dry {
                            continue;
                        }
                        if let Some(m) = &chmod {
                            if let Ok(mode) = u32::from_str_radix(m, 8) {
                                use std::os::unix::fs::PermissionsExt;
                                let _ = std::fs::set_permissions(&out, std::fs::Permissions::from_mode(mode));
                            }
                        }
                    }
                    Ok(())
                };
                let mut hasher = sha2::Sha256::new();
                pass(true, &mut hasher)?;
                let key = format!("{cmd}|{}|{raw}|{:x}|{:?}|{:?}|{:?}", st.image.clone().unwrap_or_default(), hasher.finalize(), from, owner, chmod);
                if let Some(id) = self.cache_hit(&key, opts) {
                    say(tx, " ---> Using cache\n").await;
                    st.image = Some(id.clone());
                    say_id(tx, opts, &id).await;
                    return Ok(());
                }
                std::fs::create_dir_all(&layer_dir)?;
                if let Err(e) = pass(false, &mut sha2::Sha256::new()) {
                    let _ = std::fs::remove_dir_all(&layer_dir);
                    return Err(e);
                }
                let created_by = format!("/bin/sh -c #(nop) {cmd} {raw}");
                let id = self.commit_step(st, None, Some(&layer_dir), created_by, false).await;
                let _ = std::fs::remove_dir_all(&layer_dir);
                let id = id?;
                self.cache_put(&key, &id);
                st.image = Some(id.clone());
                say_id(tx, opts, &id).await;
            }
            _ => {
                // configuration-only instructions
                let text = shell_text(&ins.args);
                let mut workdir_layer: Option<String> = None;
                if cmd == "ARG" {
                    for (k, v) in arg_pairs(ins)? {
                        let v = opts
                            .build_args
                            .get(&k)
                            .cloned()
                            .flatten()
                            .or(v.map(|x| expand(&x)).transpose()?)
                            .or_else(|| st.globals.get(&k).cloned());
                        used_args.insert(k.clone());
                        st.args.insert(k, v.unwrap_or_default());
                    }
                }
                let c = &mut st.config;
                match cmd {
                    "ARG" => {}
                    "ENV" => {
                        let Args::Shell(s) = &ins.args else { return Err(Error::invalid("ENV needs key=value")) };
                        let pairs = berth_dockerfile::parser::parse_key_values("ENV", s, ins.line).map_err(|e| Error::invalid(e.to_string()))?;
                        let mut envv = c.env.clone().unwrap_or_default();
                        for (k, v) in pairs {
                            let v = expand(&v.unwrap_or_default())?;
                            envv.retain(|e| e.split('=').next() != Some(k.as_str()));
                            envv.push(format!("{k}={v}"));
                        }
                        c.env = Some(envv);
                    }
                    "LABEL" => {
                        let Args::Shell(s) = &ins.args else { return Err(Error::invalid("LABEL needs key=value")) };
                        let pairs = berth_dockerfile::parser::parse_key_values("LABEL", s, ins.line).map_err(|e| Error::invalid(e.to_string()))?;
                        let mut l = c.labels.clone().unwrap_or_default();
                        for (k, v) in pairs {
                            l.insert(expand(&k)?, expand(&v.unwrap_or_default())?);
                        }
                        c.labels = Some(l);
                    }
                    "MAINTAINER" => {}
                    "WORKDIR" => {
                        let w = expand(&text)?;
                        c.working_dir = if w.starts_with('/') { w } else { format!("{}/{w}", c.working_dir.trim_end_matches('/')) };
                        workdir_layer = Some(c.working_dir.clone());
                    }
                    "USER" => c.user = expand(&text)?,
                    "EXPOSE" => {
                        let mut m = c.exposed_ports.clone().unwrap_or_default();
                        for p in berth_dockerfile::shell::process_words(&text, &env, escape).map_err(|e| Error::invalid(e.to_string()))? {
                            let k = if p.contains('/') { p.to_lowercase() } else { format!("{p}/tcp") };
                            m.insert(k, Default::default());
                        }
                        c.exposed_ports = Some(m);
                    }
                    "VOLUME" => {
                        let vols: Vec<String> = match &ins.args {
                            Args::Exec(v) => v.clone(),
                            Args::Shell(s) => berth_dockerfile::shell::process_words(s, &env, escape).map_err(|e| Error::invalid(e.to_string()))?,
                        };
                        let mut m = c.volumes.clone().unwrap_or_default();
                        for v in vols {
                            m.insert(v, Default::default());
                        }
                        c.volumes = Some(m);
                    }
                    "CMD" => {
                        c.cmd = Some(exec_or_shell(&ins.args, &st.shell));
                        st.cmd_set = true;
                    }
                    "ENTRYPOINT" => {
                        c.entrypoint = Some(exec_or_shell(&ins.args, &st.shell));
                        // a new ENTRYPOINT resets an inherited CMD (not one of this stage), as
                        // dockerd does
                        if !st.cmd_set {
                            c.cmd = None;
                        }
                    }
                    "SHELL" => {
                        let Args::Exec(v) = &ins.args else {
                            return Err(Error::invalid("SHELL requires the arguments to be in JSON form"));
                        };
                        st.shell = v.clone();
                        st.config.shell = Some(v.clone());
                    }
                    "STOPSIGNAL" => c.stop_signal = expand(&text)?,
                    "HEALTHCHECK" => {
                        let hc = healthcheck(ins, &st.shell)?;
                        st.config.healthcheck = Some(hc);
                    }
                    "ONBUILD" => {
                        let mut v = c.on_build.clone().unwrap_or_default();
                        v.push(text.clone());
                        c.on_build = Some(v);
                    }
                    other => return Err(Error::invalid(format!("unknown instruction: {other}"))),
                }
                let created_by = format!("/bin/sh -c #(nop) {} {}", cmd, text);
                let key = format!("META|{}|{}|{}", st.image.clone().unwrap_or_default(), created_by, serde_json::to_string(&st.config).unwrap_or_default());
                if let Some(id) = self.cache_hit(&key, opts) {
                    say(tx, " ---> Using cache\n").await;
                    st.image = Some(id.clone());
                    say_id(tx, opts, &id).await;
                    return Ok(());
                }
                if st.image.is_none() && cmd != "MAINTAINER" {
                    // FROM scratch + metadata: still an image, with no layers
                }
                // WORKDIR creates a missing directory in a layer of its own, as dockerd does.
                let missing = workdir_layer.filter(|w| !self.stage_has_path(st, w));
                let id = match missing {
                    Some(w) => {
                        let layer_dir = self.cfg.data_root.join("tmp").join(format!("layer-{}", &crate::names::new_id()[..16]));
                        std::fs::create_dir_all(layer_dir.join(w.trim_start_matches('/')))?;
                        let r = self.commit_step(st, None, Some(&layer_dir), created_by, false).await;
                        let _ = std::fs::remove_dir_all(&layer_dir);
                        r?
                    }
                    None => self.commit_step(st, None, None, created_by, true).await?,
                };
                self.cache_put(&key, &id);
                st.image = Some(id.clone());
                say_id(tx, opts, &id).await;
            }
        }
        Ok(())
    }

    /// Whether the stage's image has `path` (any layer; whiteouts are not looked at).
    fn stage_has_path(&self, st: &Stage, path: &str) -> bool {
        let Some(img) = &st.image else { return false };
        let Ok(lowers) = crate::images::lower_dirs_of(&self.images, img) else { return false };
        lowers.iter().any(|l| l.join(path.trim_start_matches('/')).symlink_metadata().is_ok())
    }

    /// /etc/passwd and /etc/group of the stage's image (for `--chown` by name).
    fn stage_user_dbs(&self, st: &Stage) -> (Option<String>, Option<String>) {
        let Some(img) = &st.image else { return (None, None) };
        let Ok(id) = img.parse::<ImageId>() else { return (None, None) };
        let Ok(lowers) = crate::images::lower_dirs_of(&self.images, &id.to_string()) else { return (None, None) };
        let find = |f: &str| lowers.iter().find_map(|l| std::fs::read_to_string(l.join(f)).ok());
        (find("etc/passwd"), find("etc/group"))
    }

    /// A read-only view of an image's files (for `COPY --from`): the top-most layer wins.
    fn mount_image_ro(&self, img: &str) -> Result<RoMount> {
        let lowers = crate::images::lower_dirs_of(&self.images, img)?;
        let path = self.cfg.data_root.join("tmp").join(format!("from-{}", &crate::names::new_id()[..16]));
        std::fs::create_dir_all(&path)?;
        let opts = if lowers.len() == 1 {
            // overlay needs two lowers; a single layer is bind-mounted
            None
        } else {
            Some(format!(
                "lowerdir={}",
                lowers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":")
            ))
        };
        let r = match opts {
            Some(o) => nix::mount::mount(Some("overlay"), &path, Some("overlay"), nix::mount::MsFlags::MS_RDONLY, Some(o.as_str())),
            None => nix::mount::mount(Some(&lowers[0]), &path, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>),
        };
        r.map_err(|e| Error::internal(format!("cannot mount {img} for COPY --from: {e}")))?;
        Ok(RoMount { path })
    }

    fn cache_file(&self) -> PathBuf {
        self.cfg.data_root.join("build-cache.json")
    }

    fn cache_hit(&self, key: &str, opts: &BuildOptions) -> Option<String> {
        if opts.no_cache {
            return None;
        }
        let h = hex::encode(sha2::Sha256::digest(key.as_bytes()));
        let m: BTreeMap<String, String> = std::fs::read(self.cache_file()).ok().and_then(|b| serde_json::from_slice(&b).ok())?;
        let id = m.get(&h)?;
        self.images.resolve(id).ok().map(|i| i.to_string())
    }

    fn cache_put(&self, key: &str, id: &str) {
        let h = hex::encode(sha2::Sha256::digest(key.as_bytes()));
        let mut m: BTreeMap<String, String> = std::fs::read(self.cache_file()).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        m.insert(h, id.to_string());
        let _ = crate::persist::write_json(&self.cache_file(), &m);
    }

    /// `POST /build/prune`: forgets every cached step; the images stay (dangling ones go with
    /// `image prune`). Returns (ids forgotten, bytes).
    pub fn prune_build_cache(&self) -> Value {
        let m: BTreeMap<String, String> = std::fs::read(self.cache_file()).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let _ = std::fs::remove_file(self.cache_file());
        let ids: Vec<&String> = m.keys().collect();
        json!({"CachesDeleted": if ids.is_empty() { Value::Null } else { json!(ids) }, "SpaceReclaimed": 0})
    }

    /// Makes the image of one step: the parent's layers plus, for RUN, the container's changes
    /// or, for COPY/ADD, the files in `layer_dir`; `config` is the stage's config as is.
    async fn commit_step(
        self: &Arc<Self>,
        st: &Stage,
        container: Option<&str>,
        layer_dir: Option<&Path>,
        created_by: String,
        metadata_only: bool,
    ) -> Result<String> {
        let parent: Option<ImageId> = st.image.as_ref().map(|i| i.parse()).transpose().map_err(|e: berth_store::Error| Error::internal(e.to_string()))?;
        let pinfo = match &parent {
            Some(p) => Some(self.images.inspect(p).map_err(|e| Error::internal(e.to_string()))?),
            None => None,
        };
        let parent_chain: Option<ChainId> = pinfo.as_ref().and_then(|p| p.record.layers.last().cloned());
        let mut new_diff = None;
        if !metadata_only {
            let (upper, skip) = match (container, layer_dir) {
                (Some(cid), _) => {
                    let c = self.container(cid)?;
                    let (_, skip) = self.changes_and_skips(&c)?;
                    (c.dir().join("upper"), skip)
                }
                (None, Some(d)) => (d.to_path_buf(), HashSet::new()),
                _ => return Err(Error::internal("nothing to commit")),
            };
            let me = self.clone();
            let pc = parent_chain.clone();
            let layer = tokio::task::spawn_blocking(move || me.images.commit_layer_skipping(pc.as_ref(), &upper, &skip))
                .await
                .map_err(|e| Error::internal(e.to_string()))?
                .map_err(|e| Error::internal(e.to_string()))?;
            new_diff = Some(layer.diff_id.to_string());
        }
        let pc = pinfo.as_ref().map(|p| p.config.clone()).unwrap_or(json!({}));
        let mut diff_ids: Vec<Value> = pinfo.as_ref().map(|p| p.record.diff_ids.iter().map(|d| json!(d.to_string())).collect()).unwrap_or_default();
        if let Some(d) = &new_diff {
            diff_ids.push(json!(d));
        }
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut history = pc.get("history").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut h = json!({"created": created, "created_by": created_by});
        if new_diff.is_none() {
            h["empty_layer"] = json!(true);
        }
        history.push(h);
        let cfg = json!({
            "architecture": pc.get("architecture").cloned().unwrap_or(json!("amd64")),
            "config": st.config,
            "container": container.unwrap_or(""),
            "created": created,
            "history": history,
            "os": pc.get("os").cloned().unwrap_or(json!("linux")),
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let bytes = serde_json::to_vec(&cfg).map_err(|e| Error::internal(e.to_string()))?;
        let me = self.clone();
        let id = tokio::task::spawn_blocking(move || me.images.create_image_with_parent(&bytes, parent.as_ref()))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| Error::internal(e.to_string()))?;
        Ok(id.to_string())
    }
}

/// A read-only mount of an image, unmounted on drop.
struct RoMount {
    path: PathBuf,
}

impl Drop for RoMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// dockerd's builder gives every stage a PATH when its base has none.
fn add_default_path(c: &mut ContainerConfig) {
    let env = c.env.get_or_insert_with(Vec::new);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
}

async fn say_id(tx: &Tx, opts: &BuildOptions, id: &str) {
    if !opts.quiet {
        say(tx, format!(" ---> {}\n", short(id))).await;
    }
}

fn arg_pairs(ins: &Instruction) -> Result<Vec<(String, Option<String>)>> {
    let Args::Shell(s) = &ins.args else { return Err(Error::invalid("ARG requires an argument")) };
    berth_dockerfile::parser::parse_key_values("ARG", s, ins.line).map_err(|e| Error::invalid(e.to_string()))
}

fn duration_ns(s: &str) -> Result<i64> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().map_err(|_| Error::invalid(format!("time: invalid duration \"{s}\"")))?;
    let mult = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" | "" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return Err(Error::invalid(format!("time: unknown unit \"{unit}\" in duration \"{s}\""))),
    };
    Ok((n * mult) as i64)
}

fn healthcheck(ins: &Instruction, shell: &[String]) -> Result<berth_api_types::HealthConfig> {
    let mut hc = berth_api_types::HealthConfig::default();
    match &ins.args {
        Args::Shell(s) if s.trim().eq_ignore_ascii_case("none") => {
            hc.test = Some(vec!["NONE".into()]);
            return Ok(hc);
        }
        Args::Shell(s) => {
            let rest = s.trim();
            let Some(cmd) = rest.strip_prefix("CMD").or_else(|| rest.strip_prefix("cmd")) else {
                return Err(Error::invalid("Unknown type in HEALTHCHECK (try CMD)"));
            };
            let cmd = cmd.trim();
            if cmd.starts_with('[') {
                let v: Vec<String> = serde_json::from_str(cmd).map_err(|e| Error::invalid(e.to_string()))?;
                let mut t = vec!["CMD".to_string()];
                t.extend(v);
                hc.test = Some(t);
            } else {
                let _ = shell;
                hc.test = Some(vec!["CMD-SHELL".into(), cmd.to_string()]);
            }
        }
        Args::Exec(v) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v.iter().skip(1).cloned());
            hc.test = Some(t);
        }
    }
    for (k, v) in &ins.flags {
        match k.as_str() {
            "interval" => hc.interval = duration_ns(v)?,
            "timeout" => hc.timeout = duration_ns(v)?,
            "start-period" => hc.start_period = duration_ns(v)?,
            "retries" => hc.retries = v.parse().map_err(|_| Error::invalid(format!("invalid retries {v}")))?,
            _ => {}
        }
    }
    Ok(hc)
}
