//! Registry credentials kept the docker way: `auths` in `~/.docker/config.json`
//! (`{"auths":{"host":{"auth":"base64(user:pass)"}}}`), `login`/`logout`, and the
//! `X-Registry-Auth` header for pull and push.

use crate::context::{load_config, save_config};
use anyhow::{anyhow, bail, Result};
use base64::Engine;
use clap::Args;
use serde_json::{json, Value};

/// Docker Hub's key in `auths`.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long = "password")]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// SERVER
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// SERVER
    pub server: Option<String>,
}

/// The registry host of an image reference (`docker.io` when it has none).
pub fn registry_of(reference: &str) -> String {
    let first = reference.split('/').next().unwrap_or("");
    if reference.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        first.to_string()
    } else {
        "docker.io".to_string()
    }
}

/// Normalise a login server argument into the `auths` key docker uses.
fn auths_key(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "" => INDEX_SERVER.to_string(),
        h => h.to_string(),
    }
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(data)
}

/// The `X-Registry-Auth` value for a reference: the stored credentials for its registry,
/// else `e30=` (`{}`).
pub fn registry_auth_header(reference: &str) -> String {
    let reg = registry_of(reference);
    let key = if reg == "docker.io" {
        INDEX_SERVER.to_string()
    } else {
        reg
    };
    match credentials(&key) {
        Some((user, pass)) => b64url(
            json!({"username": user, "password": pass, "serveraddress": key})
                .to_string()
                .as_bytes(),
        ),
        None => "e30=".to_string(),
    }
}

/// `X-Registry-Config` for builds: every stored registry's credentials.
pub fn registry_config_header() -> String {
    let cfg = load_config().unwrap_or_else(|_| json!({}));
    let mut m = serde_json::Map::new();
    if let Some(auths) = cfg.get("auths").and_then(Value::as_object) {
        for k in auths.keys() {
            if let Some((u, p)) = credentials(k) {
                m.insert(
                    k.clone(),
                    json!({"username": u, "password": p, "serveraddress": k}),
                );
            }
        }
    }
    b64url(Value::Object(m).to_string().as_bytes())
}

/// Stored (user, password) for an `auths` key.
pub fn credentials(key: &str) -> Option<(String, String)> {
    let cfg = load_config().ok()?;
    let entry = cfg.get("auths")?.get(key)?;
    let auth = entry.get("auth")?.as_str()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn prompt(msg: &str) -> Result<String> {
    use std::io::Write;
    eprint!("{msg}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn prompt_hidden(msg: &str) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut t2 = t.clone();
        t2.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &t2);
    }
    let r = prompt(msg);
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, t);
    }
    eprintln!();
    r
}

pub async fn login(host: Option<&str>, a: LoginArgs) -> Result<i32> {
    use std::io::IsTerminal;
    let server = a.server.clone().unwrap_or_else(|| INDEX_SERVER.to_string());
    let key = auths_key(&server);
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        if a.password_stdin {
            bail!("--password and --password-stdin are mutually exclusive");
        }
    }
    let mut user = a.username.clone();
    let mut pass = a.password.clone();
    if a.password_stdin {
        if user.is_none() {
            bail!("Must provide --username with --password-stdin");
        }
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        pass = Some(s.trim_end_matches(['\r', '\n']).to_string());
    }
    if user.is_none() || pass.is_none() {
        if !std::io::stdin().is_terminal() {
            bail!("Error: Cannot perform an interactive login from a non TTY device");
        }
        if user.is_none() {
            let stored = credentials(&key).map(|c| c.0);
            let shown = stored
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default();
            let u = prompt(&format!("Username{shown}: "))?;
            user = Some(if u.is_empty() {
                stored.unwrap_or_default()
            } else {
                u
            });
        }
        if pass.is_none() {
            pass = Some(prompt_hidden("Password: ")?);
        }
    }
    let user = user.unwrap_or_default();
    let pass = pass.unwrap_or_default();
    if user.is_empty() {
        bail!("Error: Non-null Username Required");
    }
    if pass.is_empty() {
        bail!("Error: Password Required");
    }
    let client = crate::cmds::connect(host).await?;
    let reply = client
        .auth(&json!({"username": user, "password": pass, "serveraddress": key}))
        .await?;
    let mut cfg = load_config()?;
    if !cfg.is_object() {
        cfg = json!({});
    }
    let entry = match reply.get("IdentityToken").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => {
            json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:")), "identitytoken": t})
        }
        _ => {
            json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))})
        }
    };
    let auths = cfg
        .as_object_mut()
        .ok_or_else(|| anyhow!("config is not an object"))?
        .entry("auths")
        .or_insert_with(|| json!({}));
    auths[&key] = entry;
    save_config(&cfg)?;
    eprintln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.",
        crate::context::config_dir().join("config.json").display()
    );
    println!(
        "{}",
        reply
            .get("Status")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("Login Succeeded")
    );
    Ok(0)
}

pub fn logout(a: LogoutArgs) -> Result<i32> {
    let server = a.server.clone().unwrap_or_else(|| INDEX_SERVER.to_string());
    let key = auths_key(&server);
    let mut cfg = load_config()?;
    let had = cfg
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|m| m.remove(&key).is_some())
        .unwrap_or(false);
    if !had {
        println!("Not logged in to {key}");
        return Ok(0);
    }
    println!("Removing login credentials for {key}");
    save_config(&cfg)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_and_keys() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("me/busybox:1"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/x/y:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/x"), "localhost");
        assert_eq!(auths_key("docker.io"), INDEX_SERVER);
        assert_eq!(auths_key("https://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    }
}
