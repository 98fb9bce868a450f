//! Image config + create request -> effective container config and process, as dockerd does
//! it (`daemon.merge`, `mergeAndVerifyConfig`, `getEntrypointAndArgs`,
//! `CreateDaemonEnvironment`), and user resolution from passwd/group *contents* (runc's
//! `user.GetExecUser` semantics).

use std::collections::BTreeMap;

use berth_api_types::ContainerConfig;

/// `PATH` dockerd puts in front of the container env on Linux.
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Errors from merging or resolving users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Neither the request nor the image gives a command.
    #[error("No command specified")]
    NoCommand,
    /// User name not in /etc/passwd.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    /// Group name not in /etc/group.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    /// Numeric id outside 0..=2^31-1.
    #[error("uids and gids must be in range 0-2147483647")]
    IdRange,
}

/// dockerd's `merge(userConf, imageConf)` followed by `mergeAndVerifyConfig`'s checks: fills
/// the request's config from the image config and returns what the container record stores
/// as `Config` (and inspect shows).
///
/// * `User`, `WorkingDir`, `StopSignal`: request if non-empty, else image.
/// * `Env`: request entries, then image entries whose key the request does not set.
/// * `Labels`, `ExposedPorts`, `Volumes`: union, the request wins.
/// * `Entrypoint`/`Cmd`: if the request's Entrypoint is empty (null or `[]`): Cmd falls back to
///   the image's when the request's is empty, and Entrypoint falls back to the image's only
///   when the request's is null. A request Entrypoint of `[""]` then resets to null (so
///   `--entrypoint ""` clears both the image's entrypoint and its cmd).
/// * `Healthcheck`: request fields override the image's field by field.
/// * Error `No command specified` if both end up empty.
pub fn merge_config(
    user: &ContainerConfig,
    image: &ContainerConfig,
) -> Result<ContainerConfig, MergeError> {
    let mut c = user.clone();
    if c.user.is_empty() {
        c.user = image.user.clone();
    }
    match (&mut c.exposed_ports, &image.exposed_ports) {
        (Some(u), Some(i)) if !u.is_empty() => {
            for (k, v) in i {
                u.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (u, i) if none_or_empty(u) => *u = i.clone(),
        _ => {}
    }
    let user_env = c.env.clone().unwrap_or_default();
    if user_env.is_empty() {
        c.env = image.env.clone();
    } else {
        let mut env = user_env.clone();
        for ie in image.env.iter().flatten() {
            let key = env_key(ie);
            if !user_env.iter().any(|ue| env_key(ue) == key) {
                env.push(ie.clone());
            }
        }
        c.env = Some(env);
    }
    let labels = c.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in image.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if none_or_empty(&c.entrypoint) {
        if none_or_empty(&c.cmd) {
            c.cmd = image.cmd.clone();
            c.args_escaped = image.args_escaped;
        }
        if c.entrypoint.is_none() {
            c.entrypoint = image.entrypoint.clone();
        }
    }
    if let Some(ih) = &image.healthcheck {
        match &mut c.healthcheck {
            None => c.healthcheck = Some(ih.clone()),
            Some(h) => {
                if none_or_empty(&h.test) {
                    h.test = ih.test.clone();
                }
                if h.interval == 0 {
                    h.interval = ih.interval;
                }
                if h.timeout == 0 {
                    h.timeout = ih.timeout;
                }
                if h.start_period == 0 {
                    h.start_period = ih.start_period;
                }
                if h.start_interval == 0 {
                    h.start_interval = ih.start_interval;
                }
                if h.retries == 0 {
                    h.retries = ih.retries;
                }
            }
        }
    }
    if c.working_dir.is_empty() {
        c.working_dir = image.working_dir.clone();
    }
    match (&mut c.volumes, &image.volumes) {
        (Some(u), Some(i)) if !u.is_empty() => {
            for (k, v) in i {
                u.insert(k.clone(), v.clone());
            }
        }
        (u, i) if none_or_empty(u) => *u = i.clone(),
        _ => {}
    }
    if c.stop_signal.is_empty() {
        c.stop_signal = image.stop_signal.clone();
    }
    if none_or_empty(&c.shell) && image.shell.is_some() {
        c.shell = image.shell.clone();
    }
    if c.entrypoint.as_deref() == Some(&[String::new()][..]) {
        c.entrypoint = None;
    }
    if none_or_empty(&c.entrypoint) && none_or_empty(&c.cmd) {
        return Err(MergeError::NoCommand);
    }
    Ok(c)
}

/// True for `None` or an empty collection (Go's `len(x) == 0`).
fn none_or_empty<C>(o: &Option<C>) -> bool
where
    for<'a> &'a C: IntoIterator,
{
    match o {
        None => true,
        Some(c) => c.into_iter().next().is_none(),
    }
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// The process to run, derived from a merged config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// `Path` in inspect: first of entrypoint+cmd.
    pub path: String,
    /// `Args` in inspect: the rest.
    pub args: Vec<String>,
    /// Final environment (see [`daemon_env`]).
    pub env: Vec<String>,
    /// Working directory, `/` if none.
    pub cwd: String,
    /// User spec (`name`, `uid`, `name:group`, ...), empty for root.
    pub user: String,
}

impl Process {
    /// `[path] + args`, the OCI `process.args`.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.path.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// dockerd's `getEntrypointAndArgs`: `(Path, Args)` of a merged config.
pub fn entrypoint_and_args(c: &ContainerConfig) -> Result<(String, Vec<String>), MergeError> {
    let mut all: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    all.extend(c.cmd.clone().unwrap_or_default());
    if all.is_empty() {
        return Err(MergeError::NoCommand);
    }
    let path = all.remove(0);
    Ok((path, all))
}

/// dockerd's `CreateDaemonEnvironment`: `PATH=<default>`, `HOSTNAME=<hostname>`,
/// `TERM=xterm` (tty only), then `config_env` replaces entries with the same key in place or
/// is appended; an entry without `=` removes that key.
pub fn daemon_env(config_env: &[String], hostname: &str, tty: bool) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH_ENV}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".to_string());
    }
    replace_or_append_env(env, config_env)
}

/// Go's `ReplaceOrAppendEnvValues`.
pub fn replace_or_append_env(defaults: Vec<String>, overrides: &[String]) -> Vec<String> {
    let mut env: Vec<Option<String>> = defaults.into_iter().map(Some).collect();
    for o in overrides {
        match o.split_once('=') {
            None => {
                for e in env.iter_mut() {
                    if e.as_deref().map(env_key) == Some(o.as_str()) {
                        *e = None;
                    }
                }
            }
            Some((k, _)) => {
                if let Some(slot) = env
                    .iter_mut()
                    .find(|e| e.as_deref().map(env_key) == Some(k))
                {
                    *slot = Some(o.clone());
                } else {
                    env.push(Some(o.clone()));
                }
            }
        }
    }
    env.into_iter().flatten().collect()
}

/// Everything at once: merge `request` into `image`, then compute the process. `hostname` is
/// the container's hostname (for `HOSTNAME=`).
pub fn effective_process(
    request: &ContainerConfig,
    image: &ContainerConfig,
    hostname: &str,
) -> Result<(ContainerConfig, Process), MergeError> {
    let merged = merge_config(request, image)?;
    let (path, args) = entrypoint_and_args(&merged)?;
    let env = daemon_env(merged.env.as_deref().unwrap_or(&[]), hostname, merged.tty);
    let cwd = if merged.working_dir.is_empty() {
        "/".to_string()
    } else {
        merged.working_dir.clone()
    };
    let user = merged.user.clone();
    Ok((
        merged,
        Process {
            path,
            args,
            env,
            cwd,
            user,
        },
    ))
}

/// A resolved user: numeric ids plus the supplementary groups found in /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids (groups listing the user; only when no group was given explicitly).
    pub sgids: Vec<u32>,
    /// Home directory from passwd, `/` if unknown.
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: Option<i64>,
    gid: Option<i64>,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: Option<i64>,
    members: Vec<&'a str>,
}

fn passwd_entries(s: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    s.lines().filter_map(|l| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = l.split(':').collect();
        Some(PasswdEntry {
            name: f[0],
            uid: f.get(2).and_then(|x| x.parse().ok()),
            gid: f.get(3).and_then(|x| x.parse().ok()),
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

fn group_entries(s: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    s.lines().filter_map(|l| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = l.split(':').collect();
        Some(GroupEntry {
            name: f[0],
            gid: f.get(2).and_then(|x| x.parse().ok()),
            members: f
                .get(3)
                .map(|m| m.split(',').filter(|x| !x.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

const MAX_ID: i64 = i32::MAX as i64;

fn parse_id(s: &str) -> Option<i64> {
    // Go's strconv.Atoi: optional sign, digits.
    s.parse::<i64>().ok()
}

fn check_range(n: i64) -> Result<u32, MergeError> {
    if (0..=MAX_ID).contains(&n) {
        Ok(n as u32)
    } else {
        Err(MergeError::IdRange)
    }
}

/// Resolves a `--user` spec (`""`, `name`, `uid`, `name:group`, `uid:gid`, ...) against the
/// contents of the container's /etc/passwd and /etc/group (`None` if the file is missing),
/// like runc's `GetExecUser` with root defaults.
pub fn resolve_user(
    user_spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, MergeError> {
    let mut u = ExecUser {
        uid: 0,
        gid: 0,
        sgids: Vec::new(),
        home: "/".to_string(),
    };
    let (user_arg, group_arg) = match user_spec.split_once(':') {
        Some((a, b)) => (a, b),
        None => (user_spec, ""),
    };
    let uid_arg = parse_id(user_arg);
    let gid_arg = parse_id(group_arg);

    let matched = passwd.and_then(|p| {
        passwd_entries(p).find(|e| {
            if user_arg.is_empty() {
                e.uid == Some(0)
            } else if let Some(n) = uid_arg {
                e.uid == Some(n)
            } else {
                e.name == user_arg
            }
        })
    });
    let mut matched_name = "";
    if let Some(e) = &matched {
        matched_name = e.name;
        u.uid = check_range(e.uid.unwrap_or(0))?;
        u.gid = check_range(e.gid.unwrap_or(0))?;
        u.home = e.home.to_string();
    } else if !user_arg.is_empty() {
        match uid_arg {
            None => return Err(MergeError::NoSuchUser(user_arg.to_string())),
            Some(n) => u.uid = check_range(n)?,
        }
    }

    if !group_arg.is_empty() || !matched_name.is_empty() {
        let groups: Vec<GroupEntry> = group
            .map(|g| {
                group_entries(g)
                    .filter(|e| {
                        if group_arg.is_empty() {
                            e.members.contains(&matched_name)
                        } else if let Some(n) = gid_arg {
                            e.gid == Some(n)
                        } else {
                            e.name == group_arg
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !group_arg.is_empty() {
            if let Some(g) = groups.first() {
                u.gid = check_range(g.gid.unwrap_or(0))?;
            } else {
                match gid_arg {
                    None => return Err(MergeError::NoSuchGroup(group_arg.to_string())),
                    Some(n) => u.gid = check_range(n)?,
                }
            }
        } else {
            for g in &groups {
                u.sgids.push(check_range(g.gid.unwrap_or(0))?);
            }
        }
    }
    Ok(u)
}

/// dockerd's `getAdditionalGroups` for `HostConfig.GroupAdd`: names looked up in /etc/group,
/// numbers taken as they are.
pub fn additional_groups(
    group_add: &[String],
    group: Option<&str>,
) -> Result<Vec<u32>, MergeError> {
    let mut out = Vec::new();
    for g in group_add {
        let found = group.and_then(|c| {
            group_entries(c).find(|e| e.name == g || parse_id(g).is_some_and(|n| e.gid == Some(n)))
        });
        match (found, parse_id(g)) {
            (Some(e), _) => out.push(check_range(e.gid.unwrap_or(0))?),
            (None, Some(n)) => out.push(check_range(n)?),
            (None, None) => return Err(MergeError::NoSuchGroup(g.clone())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Option<Vec<String>> {
        Some(s.iter().map(|x| x.to_string()).collect())
    }

    fn cfg(ep: Option<Vec<String>>, cmd: Option<Vec<String>>) -> ContainerConfig {
        ContainerConfig {
            entrypoint: ep,
            cmd,
            ..Default::default()
        }
    }

    #[test]
    fn cmd_entrypoint_table() {
        let none: Option<Vec<String>> = None;
        // (image ep, image cmd, req ep, req cmd) -> Ok((path,args)) or NoCommand
        type Row = (
            Option<Vec<String>>,
            Option<Vec<String>>,
            Option<Vec<String>>,
            Option<Vec<String>>,
            Option<(&'static str, Vec<&'static str>)>,
        );
        let rows: Vec<Row> = vec![
            // image CMD only
            (
                none.clone(),
                v(&["sh"]),
                none.clone(),
                none.clone(),
                Some(("sh", vec![])),
            ),
            (
                none.clone(),
                v(&["sh"]),
                none.clone(),
                v(&["echo", "hi"]),
                Some(("echo", vec!["hi"])),
            ),
            (
                none.clone(),
                v(&["sh"]),
                none.clone(),
                v(&[]),
                Some(("sh", vec![])),
            ),
            (
                none.clone(),
                v(&["sh"]),
                v(&["/bin/sh"]),
                v(&["-c", "echo hi"]),
                Some(("/bin/sh", vec!["-c", "echo hi"])),
            ),
            // request entrypoint without cmd does not take the image cmd
            (
                none.clone(),
                v(&["sh"]),
                v(&["/bin/echo"]),
                none.clone(),
                Some(("/bin/echo", vec![])),
            ),
            // --entrypoint "" clears the image entrypoint and its cmd
            (v(&["/init"]), v(&["sh"]), v(&[""]), none.clone(), None),
            (
                v(&["/init"]),
                v(&["sh"]),
                v(&[""]),
                v(&["ls", "/"]),
                Some(("ls", vec!["/"])),
            ),
            // [] clears the entrypoint but keeps the image cmd (Go: non-nil empty slice)
            (
                v(&["/init"]),
                v(&["sh"]),
                v(&[]),
                none.clone(),
                Some(("sh", vec![])),
            ),
            // image ENTRYPOINT + CMD
            (
                v(&["/init", "-v"]),
                v(&["serve"]),
                none.clone(),
                none.clone(),
                Some(("/init", vec!["-v", "serve"])),
            ),
            (
                v(&["/init"]),
                v(&["serve"]),
                none.clone(),
                v(&["other"]),
                Some(("/init", vec!["other"])),
            ),
            (
                v(&["/init"]),
                v(&["serve"]),
                v(&["/bin/sh"]),
                none.clone(),
                Some(("/bin/sh", vec![])),
            ),
            (
                v(&["/init"]),
                none.clone(),
                none.clone(),
                none.clone(),
                Some(("/init", vec![])),
            ),
            // nothing anywhere
            (none.clone(), none.clone(), none.clone(), none.clone(), None),
            (none.clone(), none.clone(), v(&[]), v(&[]), None),
            (none.clone(), v(&[]), none.clone(), none.clone(), None),
        ];
        for (i, (iep, icmd, rep, rcmd, want)) in rows.into_iter().enumerate() {
            let image = cfg(iep, icmd);
            let req = cfg(rep, rcmd);
            let got = effective_process(&req, &image, "h").map(|(_, p)| (p.path, p.args));
            match want {
                Some((p, a)) => {
                    let a: Vec<String> = a.into_iter().map(String::from).collect();
                    assert_eq!(got, Ok((p.to_string(), a)), "row {i}");
                }
                None => assert_eq!(got, Err(MergeError::NoCommand), "row {i}"),
            }
        }
        assert_eq!(MergeError::NoCommand.to_string(), "No command specified");
    }

    #[test]
    fn entrypoint_reset_is_stored_as_null() {
        let image = cfg(v(&["/init"]), v(&["sh"]));
        let m = merge_config(&cfg(v(&[""]), v(&["ls"])), &image).unwrap();
        assert_eq!(m.entrypoint, None);
        assert_eq!(m.cmd, v(&["ls"]));
    }

    #[test]
    fn env_workdir_user_labels() {
        let image = ContainerConfig {
            env: v(&["PATH=/bin:/usr/bin", "A=image", "B=image"]),
            working_dir: "/srv".into(),
            user: "daemon".into(),
            labels: Some(
                [
                    ("l1".to_string(), "i".to_string()),
                    ("l2".to_string(), "i".to_string()),
                ]
                .into(),
            ),
            cmd: v(&["run"]),
            stop_signal: "SIGQUIT".into(),
            ..Default::default()
        };
        let req = ContainerConfig {
            env: v(&["A=req", "C=req"]),
            labels: Some([("l1".to_string(), "r".to_string())].into()),
            ..Default::default()
        };
        let (m, p) = effective_process(&req, &image, "myhost").unwrap();
        assert_eq!(
            m.env,
            v(&["A=req", "C=req", "PATH=/bin:/usr/bin", "B=image"])
        );
        assert_eq!(
            p.env,
            vec![
                "PATH=/bin:/usr/bin",
                "HOSTNAME=myhost",
                "A=req",
                "C=req",
                "B=image"
            ]
        );
        assert_eq!(p.cwd, "/srv");
        assert_eq!(p.user, "daemon");
        assert_eq!(m.stop_signal, "SIGQUIT");
        let l = m.labels.unwrap();
        assert_eq!(l["l1"], "r");
        assert_eq!(l["l2"], "i");

        let req = ContainerConfig {
            working_dir: "/tmp".into(),
            user: "1000".into(),
            tty: true,
            ..Default::default()
        };
        let (_, p) = effective_process(&req, &cfg(None, v(&["sh"])), "h").unwrap();
        assert_eq!(p.cwd, "/tmp");
        assert_eq!(p.user, "1000");
        assert_eq!(
            p.env,
            vec![
                format!("PATH={DEFAULT_PATH_ENV}"),
                "HOSTNAME=h".into(),
                "TERM=xterm".into()
            ]
        );
        let (_, p) =
            effective_process(&ContainerConfig::default(), &cfg(None, v(&["sh"])), "h").unwrap();
        assert_eq!(p.cwd, "/");
        assert_eq!(p.user, "");
    }

    #[test]
    fn env_without_equals_unsets() {
        let e = daemon_env(
            &[
                "HOSTNAME".into(),
                "X=1".into(),
                "PATH=/p".into(),
                "NOPE".into(),
            ],
            "h",
            false,
        );
        assert_eq!(e, vec!["PATH=/p", "X=1"]);
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nbob:x:1000:1000::/home/bob:/bin/sh\n# comment\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:root,bob\naudio:x:29:bob\nbob:x:1000:\nstaff:x:50:\n";

    #[test]
    fn user_resolution_table() {
        let r = |s: &str| resolve_user(s, Some(PASSWD), Some(GROUP));
        let ok = |s: &str| {
            let u = r(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            (u.uid, u.gid, u.sgids)
        };
        assert_eq!(ok(""), (0, 0, vec![10]));
        assert_eq!(ok("root"), (0, 0, vec![10]));
        assert_eq!(ok("bob"), (1000, 1000, vec![10, 29]));
        assert_eq!(ok("1000"), (1000, 1000, vec![10, 29]));
        assert_eq!(ok("daemon"), (1, 1, vec![]));
        assert_eq!(ok("4242"), (4242, 0, vec![]));
        assert_eq!(ok("bob:staff"), (1000, 50, vec![]));
        assert_eq!(ok("bob:50"), (1000, 50, vec![]));
        assert_eq!(ok("1000:777"), (1000, 777, vec![]));
        assert_eq!(ok("4242:4343"), (4242, 4343, vec![]));
        assert_eq!(ok(":wheel"), (0, 10, vec![]));
        assert_eq!(r("bob").unwrap().home, "/home/bob");
        assert_eq!(
            r("nosuch").unwrap_err().to_string(),
            "unable to find user nosuch: no matching entries in passwd file"
        );
        assert_eq!(
            r("bob:nogroup").unwrap_err().to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        assert_eq!(r("-1").unwrap_err(), MergeError::IdRange);
        assert_eq!(r("1:99999999999").unwrap_err(), MergeError::IdRange);
        // no passwd/group files at all
        assert_eq!(resolve_user("", None, None).unwrap().uid, 0);
        assert_eq!(
            resolve_user("123:456", None, None)
                .map(|u| (u.uid, u.gid))
                .unwrap(),
            (123, 456)
        );
        assert!(resolve_user("bob", None, None).is_err());
    }

    #[test]
    fn group_add() {
        assert_eq!(
            additional_groups(&["wheel".into(), "777".into(), "50".into()], Some(GROUP)).unwrap(),
            vec![10, 777, 50]
        );
        assert!(additional_groups(&["nosuch".into()], Some(GROUP)).is_err());
    }
}
