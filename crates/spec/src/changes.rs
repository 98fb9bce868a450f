//! `docker commit --change` / `docker import --change`: Dockerfile instructions applied to an
//! image's runtime config, as dockerd's `BuildFromConfig` does.
//!
//! Supported: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `HEALTHCHECK`, `LABEL`, `ONBUILD`,
//! `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`, in JSON (`["a","b"]`) or shell form (wrapped in
//! the config's `Shell`, default `["/bin/sh","-c"]`). `$VAR`/`${VAR}` are expanded from the
//! config's env for ENV, LABEL, EXPOSE, USER, VOLUME, WORKDIR, STOPSIGNAL.

use std::collections::BTreeMap;

use berth_api_types::{ContainerConfig, Empty, HealthConfig};

use crate::image::ImageConfig;

/// A change that cannot be applied (texts as dockerd words them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// Instruction not allowed in `--change` (lower case, like dockerd).
    #[error("{0} is not a valid change command")]
    NotValid(String),
    /// Instruction without arguments.
    #[error("{0} requires at least one argument")]
    NoArgs(String),
    /// `ENV key` without a value.
    #[error("{0} must have two arguments")]
    TwoArgs(String),
    /// `name=value` form with a word that has no `=`.
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    NoEquals(String),
    /// Bad port in EXPOSE.
    #[error("Invalid containerPort: {0}")]
    InvalidPort(String),
    /// Bad protocol in EXPOSE.
    #[error("Invalid proto: {0}")]
    InvalidProto(String),
    /// `ONBUILD ONBUILD`.
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnBuildChain,
    /// `ONBUILD FROM`/`ONBUILD MAINTAINER`.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnBuildTrigger(String),
    /// Bad HEALTHCHECK syntax.
    #[error("{0}")]
    Healthcheck(String),
    /// Unterminated quote or bad JSON.
    #[error("failed to process {0:?}: {1}")]
    Syntax(String, String),
    /// `VOLUME ""`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
}

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// Splits into words honouring single/double quotes and backslash escapes, expanding
/// variables from `env` (outside single quotes) when `expand` is set.
fn words(s: &str, env: &[String], expand: bool) -> Result<Vec<String>, ChangeError> {
    let err = |m: &str| ChangeError::Syntax(s.to_string(), m.to_string());
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                i += 1;
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    cur.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(err(
                        "unexpected end of statement while looking for matching single-quote",
                    ));
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\'
                        && i + 1 < chars.len()
                        && matches!(chars[i + 1], '"' | '\\' | '$')
                    {
                        cur.push(chars[i + 1]);
                        i += 2;
                    } else if chars[i] == '$' && expand {
                        i = expand_var(&chars, i, env, &mut cur).map_err(|m| err(&m))?;
                    } else {
                        cur.push(chars[i]);
                        i += 1;
                    }
                }
                if i >= chars.len() {
                    return Err(err(
                        "unexpected end of statement while looking for matching double-quote",
                    ));
                }
                i += 1;
            }
            '\\' => {
                in_word = true;
                if i + 1 < chars.len() {
                    cur.push(chars[i + 1]);
                }
                i += 2;
            }
            '$' if expand => {
                in_word = true;
                i = expand_var(&chars, i, env, &mut cur).map_err(|m| err(&m))?;
            }
            c => {
                in_word = true;
                cur.push(c);
                i += 1;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn lookup<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|e| {
        e.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

/// Expands `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME:+word}` at `chars[i] == '$'`;
/// returns the index after it.
fn expand_var(chars: &[char], i: usize, env: &[String], out: &mut String) -> Result<usize, String> {
    let mut j = i + 1;
    if j < chars.len() && chars[j] == '{' {
        let close = chars[j..]
            .iter()
            .position(|c| *c == '}')
            .ok_or("missing '}'")?
            + j;
        let inner: String = chars[j + 1..close].iter().collect();
        let (name, op) = match inner.find(':') {
            Some(p) => (&inner[..p], Some(&inner[p..])),
            None => (&inner[..], None),
        };
        let val = lookup(env, name);
        match op {
            None => out.push_str(val.unwrap_or("")),
            Some(o) if o.starts_with(":-") => {
                out.push_str(val.filter(|v| !v.is_empty()).unwrap_or(&o[2..]))
            }
            Some(o) if o.starts_with(":+") => {
                if val.is_some_and(|v| !v.is_empty()) {
                    out.push_str(&o[2..])
                }
            }
            Some(o) => return Err(format!("unsupported modifier ({o}) in substitution")),
        }
        return Ok(close + 1);
    }
    let start = j;
    while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    if j == start {
        out.push('$');
        return Ok(j);
    }
    let name: String = chars[start..j].iter().collect();
    out.push_str(lookup(env, &name).unwrap_or(""));
    Ok(j)
}

/// JSON array form, if `s` is one.
fn json_form(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn command_form(args: &str, shell: &Option<Vec<String>>) -> Vec<String> {
    match json_form(args) {
        Some(v) => v,
        None => {
            let mut v: Vec<String> = match shell {
                Some(s) if !s.is_empty() => s.clone(),
                _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
            };
            v.push(args.to_string());
            v
        }
    }
}

fn name_values(
    instr: &str,
    args: &str,
    env: &[String],
) -> Result<Vec<(String, String)>, ChangeError> {
    let ws = words(args, env, true)?;
    if ws.is_empty() {
        return Err(ChangeError::NoArgs(instr.to_string()));
    }
    if !ws[0].contains('=') {
        // Legacy `ENV key value with spaces`: the rest of the line is the value.
        let t = args.trim_start();
        let key_end = t.find(char::is_whitespace).unwrap_or(t.len());
        let rest = t[key_end..].trim();
        if rest.is_empty() {
            return Err(ChangeError::TwoArgs(instr.to_string()));
        }
        let value = words(rest, env, true)?.join(" ");
        return Ok(vec![(ws[0].clone(), value)]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(ChangeError::NoEquals(w.clone())),
        })
        .collect()
}

/// Go `time.ParseDuration`, in nanoseconds (the unit of `Healthcheck` fields).
fn parse_duration(s: &str) -> Option<i64> {
    berth_api_types::humanize::go_duration(s).map(|secs| (secs * 1e9).round() as i64)
}

fn healthcheck(args: &str) -> Result<HealthConfig, ChangeError> {
    let mut h = HealthConfig::default();
    let mut rest = args.trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (name, value) = flag[..end].split_once('=').ok_or_else(|| {
            ChangeError::Healthcheck(format!("missing a value on flag: {}", &flag[..end]))
        })?;
        let dur = || {
            parse_duration(value).ok_or_else(|| {
                ChangeError::Healthcheck(format!("time: invalid duration \"{value}\""))
            })
        };
        match name {
            "interval" => h.interval = dur()?,
            "timeout" => h.timeout = dur()?,
            "start-period" => h.start_period = dur()?,
            "start-interval" => h.start_interval = dur()?,
            "retries" => {
                h.retries = value
                    .parse()
                    .map_err(|_| ChangeError::Healthcheck(format!("invalid retries: {value}")))?
            }
            _ => return Err(ChangeError::Healthcheck(format!("Unknown flag: {name}"))),
        }
        rest = flag[end..].trim_start();
    }
    let (kw, cmd) = match rest.find(char::is_whitespace) {
        Some(p) => (&rest[..p], rest[p..].trim()),
        None => (rest, ""),
    };
    match kw.to_uppercase().as_str() {
        "NONE" => {
            if !cmd.is_empty() {
                return Err(ChangeError::Healthcheck(
                    "HEALTHCHECK NONE takes no arguments".into(),
                ));
            }
            if h != HealthConfig::default() {
                return Err(ChangeError::Healthcheck(
                    "HEALTHCHECK NONE does not support options".into(),
                ));
            }
            h.test = Some(vec!["NONE".into()]);
        }
        "CMD" => {
            if cmd.is_empty() {
                return Err(ChangeError::Healthcheck(
                    "Missing command after HEALTHCHECK CMD".into(),
                ));
            }
            h.test = Some(match json_form(cmd) {
                Some(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
                None => vec!["CMD-SHELL".to_string(), cmd.to_string()],
            });
        }
        other => {
            return Err(ChangeError::Healthcheck(format!(
                "Unknown type {other:?} in HEALTHCHECK (try CMD)"
            )))
        }
    }
    Ok(h)
}

/// Applies `--change` lines to a runtime config, in order.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<(), ChangeError> {
    let mut cmd_set = false;
    for line in changes {
        for l in line
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            apply_one(config, l, &mut cmd_set)?;
        }
    }
    Ok(())
}

/// Applies `--change` lines to an image config's `config`.
pub fn apply_to_image(image: &mut ImageConfig, changes: &[String]) -> Result<(), ChangeError> {
    let mut c = image.runtime_config();
    apply_changes(&mut c, changes)?;
    image.config = Some(c);
    Ok(())
}

/// Checks a change line without applying it.
pub fn validate_change(line: &str) -> Result<(), ChangeError> {
    let mut c = ContainerConfig::default();
    apply_changes(&mut c, &[line.to_string()])
}

fn apply_one(c: &mut ContainerConfig, line: &str, cmd_set: &mut bool) -> Result<(), ChangeError> {
    let (instr, args) = match line.find(char::is_whitespace) {
        Some(p) => (&line[..p], line[p..].trim()),
        None => (line, ""),
    };
    let upper = instr.to_uppercase();
    let env: Vec<String> = c.env.clone().unwrap_or_default();
    let valid = [
        "CMD",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "HEALTHCHECK",
        "LABEL",
        "ONBUILD",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ];
    if !valid.contains(&upper.as_str()) {
        return Err(ChangeError::NotValid(instr.to_lowercase()));
    }
    if args.is_empty() && upper != "CMD" && upper != "ENTRYPOINT" {
        return Err(ChangeError::NoArgs(upper));
    }
    match upper.as_str() {
        "CMD" => {
            c.cmd = Some(command_form(args, &c.shell));
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            c.entrypoint = if args.is_empty() {
                None
            } else {
                Some(command_form(args, &c.shell))
            };
            if !*cmd_set {
                c.cmd = None;
            }
        }
        "ENV" => {
            let mut env = env;
            for (k, v) in name_values("ENV", args, &env.clone())? {
                let entry = format!("{k}={v}");
                match env
                    .iter_mut()
                    .find(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) == k)
                {
                    Some(e) => *e = entry,
                    None => env.push(entry),
                }
            }
            c.env = Some(env);
        }
        "LABEL" => {
            let labels = c.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in name_values("LABEL", args, &env)? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for w in words(args, &env, true)? {
                let (p, proto) = w.split_once('/').unwrap_or((&w, "tcp"));
                let proto = proto.to_lowercase();
                if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
                    return Err(ChangeError::InvalidProto(proto));
                }
                let bad = || ChangeError::InvalidPort(p.to_string());
                let (lo, hi) = match p.split_once('-') {
                    Some((a, b)) => (
                        a.parse::<u16>().map_err(|_| bad())?,
                        b.parse::<u16>().map_err(|_| bad())?,
                    ),
                    None => {
                        let n = p.parse::<u16>().map_err(|_| bad())?;
                        (n, n)
                    }
                };
                if hi < lo {
                    return Err(bad());
                }
                for n in lo..=hi {
                    ports.insert(format!("{n}/{proto}"), Empty {});
                }
            }
        }
        "USER" => c.user = words(args, &env, true)?.join(" "),
        "STOPSIGNAL" => c.stop_signal = words(args, &env, true)?.join(" "),
        "WORKDIR" => {
            let w = words(args, &env, true)?.join(" ");
            let joined = if w.starts_with('/') {
                w
            } else {
                let base = if c.working_dir.is_empty() {
                    "/"
                } else {
                    c.working_dir.as_str()
                };
                format!("{}/{}", base.trim_end_matches('/'), w)
            };
            c.working_dir = clean_path(&joined);
        }
        "VOLUME" => {
            let vols = match json_form(args) {
                Some(v) => v,
                None => words(args, &env, true)?,
            };
            let map = c.volumes.get_or_insert_with(BTreeMap::new);
            for v in vols {
                let v = v.trim().to_string();
                if v.is_empty() {
                    return Err(ChangeError::EmptyVolume);
                }
                map.insert(v, Empty {});
            }
        }
        "ONBUILD" => {
            let trigger = args.split_whitespace().next().unwrap_or("").to_uppercase();
            match trigger.as_str() {
                "ONBUILD" => return Err(ChangeError::OnBuildChain),
                "FROM" | "MAINTAINER" => return Err(ChangeError::OnBuildTrigger(trigger)),
                _ => c
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(args.to_string()),
            }
        }
        "HEALTHCHECK" => c.healthcheck = Some(healthcheck(args)?),
        _ => return Err(ChangeError::NotValid(instr.to_lowercase())),
    }
    Ok(())
}

/// Lexical path cleaning (Go's `path.Clean` for absolute paths).
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ContainerConfig, ChangeError> {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    fn v(s: &[&str]) -> Option<Vec<String>> {
        Some(s.iter().map(|x| x.to_string()).collect())
    }

    /// Same changes as checked against dockerd 20.10 (`docker import -c ...`).
    #[test]
    fn matches_dockerd() {
        let c = apply(&[
            "CMD echo hi",
            r#"ENV A=1 B="x y""#,
            "ENV C d e",
            r#"ENTRYPOINT ["/e"]"#,
            "EXPOSE 80 90/udp 100-101",
            r#"LABEL a=b "c d"=e"#,
            "VOLUME /v1 /v2",
            "WORKDIR a",
            "WORKDIR $A/b",
            "ONBUILD run echo",
            "USER $A",
            "HEALTHCHECK --interval=5s --retries=2 CMD curl x",
        ])
        .unwrap();
        assert_eq!(c.user, "1");
        assert_eq!(
            c.exposed_ports.unwrap().keys().cloned().collect::<Vec<_>>(),
            ["100/tcp", "101/tcp", "80/tcp", "90/udp"]
        );
        assert_eq!(c.env, v(&["A=1", "B=x y", "C=d e"]));
        assert_eq!(c.entrypoint, v(&["/e"]));
        assert_eq!(c.cmd, v(&["/bin/sh", "-c", "echo hi"]));
        assert_eq!(
            c.volumes.unwrap().keys().cloned().collect::<Vec<_>>(),
            ["/v1", "/v2"]
        );
        assert_eq!(c.working_dir, "/a/1/b");
        let l = c.labels.unwrap();
        assert_eq!(l["a"], "b");
        assert_eq!(l["c d"], "e");
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, v(&["CMD-SHELL", "curl x"]));
        assert_eq!(h.interval, 5_000_000_000);
        assert_eq!(h.retries, 2);
        assert_eq!(c.on_build, v(&["run echo"]));

        let c = apply(&[
            "ENTRYPOINT /e x",
            r#"CMD ["a"]"#,
            r#"VOLUME ["/j"]"#,
            "ENV X=1",
            "ENV X=2",
        ])
        .unwrap();
        assert_eq!(c.env, v(&["X=2"]));
        assert_eq!(c.entrypoint, v(&["/bin/sh", "-c", "/e x"]));
        assert_eq!(c.cmd, v(&["a"]));
        assert!(c.volumes.unwrap().contains_key("/j"));
    }

    #[test]
    fn entrypoint_resets_cmd_unless_cmd_given_first() {
        let mut c = ContainerConfig {
            cmd: v(&["sh"]),
            ..Default::default()
        };
        apply_changes(&mut c, &[r#"ENTRYPOINT ["/x"]"#.to_string()]).unwrap();
        assert_eq!(c.cmd, None);
        let mut c = ContainerConfig {
            cmd: v(&["sh"]),
            shell: v(&["/bin/bash", "-lc"]),
            ..Default::default()
        };
        apply_changes(
            &mut c,
            &["CMD run".to_string(), "ENTRYPOINT go".to_string()],
        )
        .unwrap();
        assert_eq!(c.cmd, v(&["/bin/bash", "-lc", "run"]));
        assert_eq!(c.entrypoint, v(&["/bin/bash", "-lc", "go"]));
    }

    #[test]
    fn errors_match_dockerd() {
        let e = |s: &str| apply(&[s]).unwrap_err().to_string();
        assert_eq!(e("RUN echo"), "run is not a valid change command");
        assert_eq!(e("FROM x"), "from is not a valid change command");
        assert_eq!(e("ADD a b"), "add is not a valid change command");
        assert_eq!(e("bogus x"), "bogus is not a valid change command");
        assert_eq!(e("ENV"), "ENV requires at least one argument");
        assert_eq!(e("ENV A"), "ENV must have two arguments");
        assert_eq!(e("EXPOSE abc"), "Invalid containerPort: abc");
        assert_eq!(
            e("ONBUILD ONBUILD X"),
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
        assert_eq!(
            e("ONBUILD FROM x"),
            "FROM isn't allowed as an ONBUILD trigger"
        );
        assert!(e("ENV A=1 B").starts_with("Syntax error - can't find = in \"B\""));
        assert!(e("HEALTHCHECK --interval=xx CMD true").contains("invalid duration"));
    }

    #[test]
    fn misc() {
        let c = apply(&[
            "STOPSIGNAL SIGKILL",
            "HEALTHCHECK NONE",
            "LABEL k v w",
            "WORKDIR /a/../b/./c",
            r#"HEALTHCHECK CMD ["curl","-f"]"#,
            "ENV P=${NOPE:-def}",
            "ENV Q='$P'",
        ])
        .unwrap();
        assert_eq!(c.stop_signal, "SIGKILL");
        assert_eq!(c.labels.unwrap()["k"], "v w");
        assert_eq!(c.working_dir, "/b/c");
        assert_eq!(c.healthcheck.unwrap().test, v(&["CMD", "curl", "-f"]));
        assert_eq!(c.env, v(&["P=def", "Q=$P"]));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("x"), None);
        let mut img = ImageConfig::default();
        apply_to_image(&mut img, &["USER nobody".to_string()]).unwrap();
        assert_eq!(img.config.unwrap().user, "nobody");
    }
}
