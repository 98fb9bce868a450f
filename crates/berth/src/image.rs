//! Image commands: pull, push, history, save, load, build (classic `/build` API), prune.

use crate::cmds::{connect, qualify_repo, split_repo_tag};
use crate::format::{headers, ListFormat};
use crate::humanize::{ago, ellipsis, human_size_prec, short_id};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// A pull reference -> (fully qualified repository, tag or digest), as the docker CLI sends.
pub fn split_pull_ref(r: &str) -> (String, String) {
    if let Some((repo, digest)) = r.split_once('@') {
        return (qualify_repo(repo), digest.to_string());
    }
    let (repo, tag) = split_repo_tag(r);
    (qualify_repo(&repo), tag.unwrap_or_else(|| "latest".into()))
}

// ----- pull / push ------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

/// Turn a stream failure into docker's output and exit code.
fn stream_error(e: anyhow::Error) -> Result<i32> {
    if let Some(f) = e.downcast_ref::<crate::progress::StreamFailed>() {
        eprintln!("{}", f.message);
        return Ok(f.code);
    }
    Err(e)
}

pub async fn pull(host: Option<&str>, a: PullArgs) -> Result<i32> {
    let client = connect(host).await?;
    let (repo, tag) = split_pull_ref(&a.name);
    let has_tag = a.name.contains('@') || split_repo_tag(&a.name).1.is_some();
    if !has_tag && !a.all_tags && !a.quiet {
        println!("Using default tag: latest");
    }
    let auth = crate::auth::registry_auth_header(&a.name);
    let mut lines = client
        .pull(&repo, &tag, a.platform.as_deref(), &auth)
        .await?;
    if a.quiet {
        loop {
            match lines.next().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(berth_client::Error::Stream { message, code }) => {
                    eprintln!("{message}");
                    return Ok(code.map(|c| c as i32).filter(|c| *c != 0).unwrap_or(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
    } else if let Err(e) = crate::progress::display(&mut lines, |_| {}).await {
        return stream_error(e);
    }
    let sep = if tag.starts_with("sha256:") { "@" } else { ":" };
    println!("{repo}{sep}{tag}");
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// NAME[:TAG]
    pub name: String,
}

pub async fn push(host: Option<&str>, a: PushArgs) -> Result<i32> {
    let client = connect(host).await?;
    let (repo, tag) = split_repo_tag(&a.name);
    let tag = if a.all_tags {
        None
    } else {
        Some(tag.unwrap_or_else(|| "latest".into()))
    };
    if !a.all_tags && split_repo_tag(&a.name).1.is_none() && !a.quiet {
        println!("Using default tag: latest");
    }
    let auth = crate::auth::registry_auth_header(&a.name);
    let mut lines = client.push(&repo, tag.as_deref(), &auth).await?;
    let mut digest = String::new();
    let r = if a.quiet {
        loop {
            match lines.next().await {
                Ok(Some(v)) => {
                    if let Some(d) = v.pointer("/aux/Digest").and_then(Value::as_str) {
                        digest = d.to_string();
                    }
                }
                Ok(None) => break Ok(()),
                Err(berth_client::Error::Stream { message, code }) => {
                    break Err(crate::progress::StreamFailed {
                        message,
                        code: code.map(|c| c as i32).filter(|c| *c != 0).unwrap_or(1),
                    }
                    .into())
                }
                Err(e) => break Err(e.into()),
            }
        }
    } else {
        crate::progress::display(&mut lines, |aux| {
            if let Some(d) = aux.get("Digest").and_then(Value::as_str) {
                digest = d.to_string();
            }
        })
        .await
    };
    if let Err(e) = r {
        return stream_error(e);
    }
    if a.quiet {
        println!("{}", a.name);
    }
    let _ = digest;
    Ok(0)
}

// ----- history ----------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(long = "human", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    pub image: String,
}

/// RFC 3339 in local time, as Go's `time.Format(time.RFC3339)`.
fn rfc3339(unix: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(unix, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub fn history_rows(list: &[Value], human: bool, trunc: bool) -> Vec<Value> {
    list.iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("");
            let created = h["Created"].as_i64().unwrap_or(0);
            let size = h["Size"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            json!({
                "ID": if trunc && id != "<missing>" { short_id(id) } else { id.to_string() },
                "CreatedSince": if human { ago(created) } else { rfc3339(created) },
                "CreatedAt": rfc3339(created),
                "CreatedBy": if trunc { ellipsis(&by, 45) } else { by },
                "Size": if human { human_size_prec(size, 3) } else { size.to_string() },
                "Comment": h["Comment"].as_str().unwrap_or(""),
            })
        })
        .collect()
}

pub async fn history(host: Option<&str>, a: HistoryArgs) -> Result<i32> {
    let client = connect(host).await?;
    let list = client.history(&a.image).await?;
    let rows = history_rows(&list, a.human, !a.no_trunc);
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let f = ListFormat::parse(
        a.format.as_deref(),
        "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
    )?;
    f.print(
        &headers(&[
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedBy", "CREATED BY"),
            ("Size", "SIZE"),
            ("Comment", "COMMENT"),
        ]),
        &rows,
    )?;
    Ok(0)
}

// ----- save / load ------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub async fn save(host: Option<&str>, a: SaveArgs) -> Result<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let client = connect(host).await?;
    let body = client.save(&a.images).await?;
    crate::container::body_to_output(body, a.output.as_deref()).await?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

pub async fn load(host: Option<&str>, a: LoadArgs) -> Result<i32> {
    if a.input.is_none() && std::io::stdin().is_terminal() {
        bail!("requested load from stdin, but stdin is empty");
    }
    let client = connect(host).await?;
    let quiet = a.quiet || !std::io::stdout().is_terminal();
    let mut lines = match &a.input {
        Some(f) => {
            let file = tokio::fs::File::open(f)
                .await
                .with_context(|| format!("open {f}"))?;
            client.load(quiet, file).await?
        }
        None => client.load(quiet, tokio::io::stdin()).await?,
    };
    if a.quiet {
        // still report errors
        loop {
            match lines.next().await {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(0),
                Err(berth_client::Error::Stream { message, .. }) => {
                    eprintln!("{message}");
                    return Ok(1);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    match crate::progress::display(&mut lines, |_| {}).await {
        Ok(()) => Ok(0),
        Err(e) => stream_error(e),
    }
}

// ----- prune ------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

pub async fn prune(host: Option<&str>, a: PruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !crate::opts::confirm(warning) {
        return Ok(0);
    }
    let mut f = a.filter.clone();
    f.push(format!("dangling={}", !a.all));
    let client = connect(host).await?;
    let v = client
        .prune("images", crate::opts::filters(&f)?.as_ref())
        .await?;
    print_images_deleted(&v);
    println!(
        "Total reclaimed space: {}",
        crate::humanize::human_size_prec4(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}

pub fn print_images_deleted(v: &Value) {
    let list = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return;
    }
    println!("Deleted Images:");
    for it in &list {
        if let Some(u) = it.get("Untagged").and_then(Value::as_str) {
            println!("untagged: {u}");
        }
        if let Some(d) = it.get("Deleted").and_then(Value::as_str) {
            println!("deleted: {d}");
        }
    }
    println!();
}

// ----- builder ----------------------------------------------------------------------------

#[derive(clap::Subcommand, Debug)]
pub enum BuilderCmd {
    /// Build an image from a Dockerfile (classic builder)
    Build(BuildArgs),
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

pub async fn builder_prune(host: Option<&str>, a: BuilderPruneArgs) -> Result<i32> {
    if !a.force && !crate::opts::confirm("WARNING! This will remove all dangling build cache.") {
        return Ok(0);
    }
    let client = connect(host).await?;
    let mut f = a.filter.clone();
    if a.all {
        f.push("all=true".into());
    }
    let v = client
        .prune("build", crate::opts::filters(&f)?.as_ref())
        .await?;
    let deleted = v["CachesDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted build cache objects:");
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

// ----- build ------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Write the image ID to the file
    #[arg(long = "iidfile")]
    pub iidfile: Option<String>,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long = "network")]
    pub network: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub platform: Option<String>,
    /// Always attempt to pull a newer version of the image
    #[arg(long = "pull")]
    pub pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Remove intermediate containers after a successful build
    #[arg(long = "rm", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub rm: bool,
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tag: Vec<String>,
    /// Set the target build stage to build
    #[arg(long = "target")]
    pub target: Option<String>,
    /// Set type of progress output ("auto", "plain", "tty"): plain is BuildKit's plain
    /// style, auto is the classic builder's output off a terminal
    #[arg(long = "progress")]
    pub progress: Option<String>,
    /// PATH | -
    pub context: String,
}

/// A writer that counts the bytes passed through (the context size docker reports).
struct Counting<W>(W, u64);

impl<W: std::io::Write> std::io::Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Add `dir` to a tar under `prefix`, skipping what `.dockerignore` excludes (the Dockerfile
/// and `.dockerignore` are always sent).
fn add_context<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &str,
    matcher: &berth_dockerfile::Matcher,
    keep: &[String],
) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let ft = e.file_type()?;
        let excluded = matcher.excluded(&path) && !keep.contains(&path);
        if ft.is_dir() {
            // an excluded directory may still hold re-included files (`!dir/keep`)
            let reinclude = matcher
                .patterns
                .iter()
                .any(|p| p.exclusion && p.text.starts_with(&format!("{path}/")));
            if excluded && !reinclude {
                continue;
            }
            if !excluded {
                b.append_dir(&path, e.path())?;
            }
            add_context(b, root, &path, matcher, keep)?;
        } else if !excluded {
            if ft.is_symlink() {
                let mut h = tar::Header::new_gnu();
                h.set_metadata(&std::fs::symlink_metadata(e.path())?);
                b.append_link(&mut h, &path, std::fs::read_link(e.path())?)?;
            } else {
                b.append_path_with_name(e.path(), &path)?;
            }
        }
    }
    Ok(())
}

pub async fn build(host: Option<&str>, a: BuildArgs) -> Result<i32> {
    let mut opts = berth_client::BuildOptions {
        tags: a.tag.clone(),
        no_cache: a.no_cache,
        quiet: a.quiet,
        rm: a.rm,
        force_rm: a.force_rm,
        pull: a.pull,
        target: a.target.clone(),
        network: a.network.clone(),
        platform: a.platform.clone(),
        ..Default::default()
    };
    for ba in &a.build_arg {
        match ba.split_once('=') {
            Some((k, v)) => {
                opts.build_args.insert(k.into(), json!(v));
            }
            None => {
                if let Ok(v) = std::env::var(ba) {
                    opts.build_args.insert(ba.clone(), json!(v));
                }
            }
        }
    }
    opts.labels = crate::opts::kv_map(&a.label);
    let (w, r) = crate::pipe::pipe();
    let builder = if a.context == "-" {
        // the Dockerfile comes on stdin; the context is just it
        let mut df = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut df)?;
        tokio::task::spawn_blocking(move || -> Result<u64> {
            let mut b = tar::Builder::new(Counting(w, 0));
            let mut h = tar::Header::new_gnu();
            h.set_size(df.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            b.append_data(&mut h, "Dockerfile", &df[..])?;
            Ok(b.into_inner()?.1)
        })
    } else {
        let root = PathBuf::from(&a.context);
        if !root.is_dir() {
            bail!("unable to prepare context: path {:?} not found", a.context);
        }
        let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap_or_default();
        let matcher = berth_dockerfile::Matcher::parse(&ignore);
        // the Dockerfile: inside the context by its relative name, else sent under a
        // generated name (as the docker CLI does)
        let df_path = match &a.file {
            Some(f) if f == "-" => None,
            Some(f) => Some(PathBuf::from(f)),
            None => Some(root.join("Dockerfile")),
        };
        let mut extra: Option<(String, Vec<u8>)> = None;
        let mut keep = vec![".dockerignore".to_string()];
        match &df_path {
            None => {
                let mut df = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut df)?;
                let name = format!(".dockerfile.{:012x}", std::process::id() as u64 * 7919 + 17);
                opts.dockerfile = Some(name.clone());
                extra = Some((name, df));
            }
            Some(p) => {
                let abs_root = std::fs::canonicalize(&root)?;
                let abs = std::fs::canonicalize(p).map_err(|_| {
                    anyhow!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory", p.display())
                })?;
                match abs.strip_prefix(&abs_root) {
                    Ok(rel) => {
                        let rel = rel.to_string_lossy().into_owned();
                        keep.push(rel.clone());
                        if a.file.is_some() {
                            opts.dockerfile = Some(rel);
                        }
                    }
                    Err(_) => {
                        let name =
                            format!(".dockerfile.{:012x}", std::process::id() as u64 * 7919 + 17);
                        opts.dockerfile = Some(name.clone());
                        extra = Some((name, std::fs::read(&abs)?));
                    }
                }
            }
        }
        tokio::task::spawn_blocking(move || -> Result<u64> {
            let mut b = tar::Builder::new(Counting(w, 0));
            b.follow_symlinks(false);
            add_context(&mut b, &root, "", &matcher, &keep)?;
            if let Some((name, data)) = extra {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o600);
                b.append_data(&mut h, name, &data[..])?;
            }
            Ok(b.into_inner()?.1)
        })
    };
    let client = connect(host).await?;
    let mut lines = client
        .build_image(&opts, &crate::auth::registry_config_header(), r)
        .await?;
    let sent = builder.await??;
    let style =
        crate::buildout::Style::pick(a.progress.as_deref(), crate::progress::stdout_is_tty());
    if !a.quiet && style == crate::buildout::Style::Plain {
        println!(
            "#0 [internal] load build context\n#0 transferring context: {} done\n#0 DONE",
            crate::humanize::human_size_prec4(sent as i64)
        );
    } else if !a.quiet {
        // what the docker CLI prints once the context is sent (its progress line's ending)
        let end = if crate::progress::stdout_is_tty() {
            "\n"
        } else {
            "\r\r\n"
        };
        print!(
            "Sending build context to Docker daemon  {}{end}",
            crate::humanize::human_size_prec4(sent as i64)
        );
    }
    let mut image_id = String::new();
    let mut render = crate::buildout::Renderer::new(style, crate::progress::color_enabled());
    use std::io::Write;
    loop {
        let v = match lines.next().await {
            Ok(Some(v)) => v,
            Ok(None) => break,
            Err(berth_client::Error::Stream { message, code }) => {
                print!("{}", render.finish());
                std::io::stdout().flush()?;
                eprintln!("{message}");
                return Ok(code.map(|c| c as i32).filter(|c| *c != 0).unwrap_or(1));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(id) = v.pointer("/aux/ID").and_then(Value::as_str) {
            image_id = id.to_string();
            continue;
        }
        let Some(text) = v.get("stream").and_then(Value::as_str) else {
            if let Some(st) = v.get("status").and_then(Value::as_str) {
                if !a.quiet {
                    println!("{st}");
                }
            }
            continue;
        };
        if a.quiet {
            if image_id.is_empty() && text.trim().starts_with("sha256:") {
                image_id = text.trim().to_string();
            }
            continue;
        }
        print!("{}", render.feed(text));
        std::io::stdout().flush()?;
    }
    if !a.quiet {
        print!("{}", render.finish());
    }
    if a.quiet {
        println!("{image_id}");
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &image_id).with_context(|| format!("writing {f}"))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references() {
        assert_eq!(
            split_pull_ref("alpine:3.19"),
            ("docker.io/library/alpine".into(), "3.19".into())
        );
        assert_eq!(
            split_pull_ref("busybox"),
            ("docker.io/library/busybox".into(), "latest".into())
        );
        assert_eq!(
            split_pull_ref("127.0.0.1:5000/x/y@sha256:abc"),
            ("127.0.0.1:5000/x/y".into(), "sha256:abc".into())
        );
    }

    #[test]
    fn context_tar_honours_dockerignore() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::write(root.join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(
            root.join(".dockerignore"),
            "*.log\nsecret/\n!secret/keep\nDockerfile\n",
        )
        .unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("b.log"), "b").unwrap();
        std::fs::create_dir(root.join("secret")).unwrap();
        std::fs::write(root.join("secret/key"), "k").unwrap();
        std::fs::write(root.join("secret/keep"), "k").unwrap();
        let m = berth_dockerfile::Matcher::parse(
            &std::fs::read_to_string(root.join(".dockerignore")).unwrap(),
        );
        let mut b = tar::Builder::new(Vec::new());
        add_context(
            &mut b,
            root,
            "",
            &m,
            &[".dockerignore".into(), "Dockerfile".into()],
        )
        .unwrap();
        let data = b.into_inner().unwrap();
        let mut ar = tar::Archive::new(&data[..]);
        let mut names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![".dockerignore", "Dockerfile", "a.txt", "secret/keep"]
        );
    }
}
