//! OCI runtime `config.json` generation, matching what dockerd (+containerd) writes for a
//! container (checked field by field against dockerd 20.10 on this host).
//!
//! The engine resolves everything that needs I/O first (merged process, user ids from the
//! container's /etc/passwd, volume host paths, namespace paths of other containers) and passes
//! it in [`RunInput`]; [`generate`] is then a pure function.

use std::collections::BTreeMap;

use berth_api_types::HostConfig;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::merge::{ExecUser, Process};
use crate::security::{self, HostDevice, SeccompChoice, SecurityError};

/// Docker's default capability set, in Docker's order.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Docker knows (what `ALL` and `--privileged` mean).
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default `maskedPaths`.
pub const DEFAULT_MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Docker's default `readonlyPaths`.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `/dev/shm` size when `HostConfig.ShmSize` is 0.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// Errors from [`generate`] (texts follow dockerd where it has one).
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// `CapAdd`/`CapDrop` entry not known.
    #[error("unknown capability: \"{0}\"")]
    UnknownCapability(String),
    /// `Ulimits[].Name` not known.
    #[error("invalid ulimit type: {0}")]
    InvalidUlimit(String),
    /// A `Binds` entry that cannot be parsed.
    #[error("invalid volume specification: '{0}'")]
    InvalidBind(String),
    /// A bind mode option that is not known.
    #[error("invalid mode: {0}")]
    InvalidMode(String),
    /// A named or anonymous volume the engine did not resolve in `volume_paths`.
    #[error("volume {0} has no host path")]
    UnresolvedVolume(String),
    /// A `Mounts` entry that is not usable.
    #[error("invalid mount config for type \"{typ}\": {reason}")]
    InvalidMount {
        /// Mount type.
        typ: String,
        /// What is wrong.
        reason: String,
    },
    /// A block I/O setting names something that is not a block device.
    #[error("{0} is not a block device")]
    NotBlockDevice(String),
    /// A `DeviceCgroupRules` entry that cannot be parsed.
    #[error("invalid device cgroup format '{0}'")]
    InvalidDeviceRule(String),
    /// A `SecurityOpt` entry, seccomp profile or device that is not usable.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// The assembled document did not convert into an OCI spec (a bug).
    #[error("building OCI spec: {0}")]
    Spec(#[source] serde_json::Error),
}

/// Where a namespace comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NamespaceSource {
    /// A new namespace (default).
    #[default]
    New,
    /// Share the host's (no namespace entry).
    Host,
    /// Join an existing one (`/proc/<pid>/ns/net`, a bind-mounted netns file...).
    Path(String),
}

/// Everything [`generate`] needs. Build with `..Default::default()`.
#[derive(Debug, Clone, Default)]
pub struct RunInput {
    /// Container id (cgroups path `/berth/<id>`).
    pub id: String,
    /// Root filesystem path (absolute, or relative to the bundle).
    pub rootfs: String,
    /// The merged process (args = path + args, env, cwd); see [`crate::merge::effective_process`].
    pub process: Process,
    /// Resolved user (see [`crate::merge::resolve_user`]).
    pub user: ExecUser,
    /// gids from `HostConfig.GroupAdd` (see [`crate::merge::additional_groups`]).
    pub group_add_gids: Vec<u32>,
    /// Container hostname.
    pub hostname: String,
    /// Container domainname (empty: none).
    pub domainname: String,
    /// Allocate a terminal.
    pub tty: bool,
    /// The container's HostConfig.
    pub host_config: HostConfig,
    /// Host files bind-mounted at /etc/resolv.conf, /etc/hostname, /etc/hosts.
    pub resolv_conf_path: Option<String>,
    /// See `resolv_conf_path`.
    pub hostname_path: Option<String>,
    /// See `resolv_conf_path`.
    pub hosts_path: Option<String>,
    /// The host runs the unified cgroup hierarchy (v2): adds a cgroup namespace unless
    /// `CgroupnsMode` is `host`.
    pub cgroup_v2: bool,
    /// Network namespace; `Host` is also implied by `NetworkMode: host`.
    pub network: NamespaceSource,
    /// PID namespace; `Host` is also implied by `PidMode: host`.
    pub pid: NamespaceSource,
    /// IPC namespace; `Host` is also implied by `IpcMode: host`.
    pub ipc: NamespaceSource,
    /// Host paths of volumes: named volumes by name, anonymous ones by container destination.
    pub volume_paths: BTreeMap<String, String>,
    /// Override of `linux.cgroupsPath` (default `/berth/<id>`).
    pub cgroups_path: Option<String>,
    /// Host device nodes to create (`HostConfig.Devices` resolved by stat-ing, directories
    /// walked; for a privileged container every host device too): `linux.devices`, plus cgroup
    /// allow rules unless privileged.
    pub host_devices: Vec<HostDevice>,
    /// Host architecture for seccomp (Rust `std::env::consts::ARCH` or Go name); empty: the
    /// build target's.
    pub arch: String,
    /// Host kernel (major, minor) for `minKernel` in custom seccomp profiles; None: met.
    pub kernel_version: Option<(u32, u32)>,
    /// The host has AppArmor: `apparmor=<profile>` goes to `process.apparmorProfile`; without
    /// it only `apparmor=unconfined` is accepted.
    pub apparmor_supported: bool,
    /// `(major, minor)` of every block device named by `BlkioWeightDevice` and the
    /// `BlkioDevice*` throttles, resolved by the engine (see [`block_device_paths`]).
    pub block_devices: BTreeMap<String, (i64, i64)>,
    /// User namespace mappings (`--userns-remap`): container id 0 maps to `(host id, size)`
    /// for uids and gids; None: no user namespace.
    pub userns_remap: Option<((u32, u32), (u32, u32))>,
}

/// Every host path the block I/O settings of `hc` name (for [`RunInput::block_devices`]).
pub fn block_device_paths(hc: &HostConfig) -> Vec<String> {
    let mut out: Vec<String> = hc
        .blkio_weight_device
        .iter()
        .flatten()
        .map(|d| d.path.clone())
        .collect();
    for l in [
        &hc.blkio_device_read_bps,
        &hc.blkio_device_write_bps,
        &hc.blkio_device_read_iops,
        &hc.blkio_device_write_iops,
    ] {
        out.extend(l.iter().flatten().map(|d| d.path.clone()));
    }
    out.sort();
    out.dedup();
    out
}

impl Default for Process {
    fn default() -> Self {
        Process {
            path: String::new(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            user: String::new(),
        }
    }
}

impl Default for ExecUser {
    fn default() -> Self {
        ExecUser {
            uid: 0,
            gid: 0,
            sgids: Vec::new(),
            home: "/".into(),
        }
    }
}

fn normalize_cap(c: &str) -> Result<String, OciError> {
    let u = c.to_uppercase();
    if u == "ALL" {
        return Ok(u);
    }
    let u = if u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    };
    if ALL_CAPABILITIES.contains(&u.as_str()) {
        Ok(u)
    } else {
        Err(OciError::UnknownCapability(u))
    }
}

/// dockerd's `TweakCapabilities`: the capability list after `CapAdd`/`CapDrop`/privileged.
pub fn capabilities(hc: &HostConfig) -> Result<Vec<String>, OciError> {
    if hc.privileged {
        return Ok(ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect());
    }
    let adds = hc.cap_add.as_deref().unwrap_or(&[]);
    let drops = hc.cap_drop.as_deref().unwrap_or(&[]);
    let basics: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    if adds.is_empty() && drops.is_empty() {
        return Ok(basics);
    }
    let norm = |l: &[String]| -> Result<Vec<String>, OciError> {
        let mut out: Vec<String> = Vec::new();
        for c in l {
            let n = normalize_cap(c)?;
            if !out.contains(&n) {
                out.push(n);
            }
        }
        Ok(out)
    };
    let drop = norm(drops)?;
    let add = norm(adds)?;
    let all = "ALL".to_string();
    let caps: Vec<String> = if add.contains(&all) {
        ALL_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop.contains(&all) {
        add
    } else {
        let mut caps: Vec<String> = basics.into_iter().filter(|c| !drop.contains(c)).collect();
        for a in add {
            if !caps.contains(&a) {
                caps.push(a);
            }
        }
        caps
    };
    Ok(caps)
}

const ULIMITS: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn mount(dest: &str, typ: &str, src: &str, opts: &[&str]) -> Value {
    json!({"destination": dest, "type": typ, "source": src, "options": opts})
}

/// One parsed `Binds` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSpec {
    /// Host path (absolute) or volume name; empty for an anonymous volume.
    pub source: String,
    /// Container path.
    pub destination: String,
    /// `:rw` (default) vs `:ro`.
    pub read_only: bool,
    /// Mount propagation (default `rprivate`).
    pub propagation: String,
}

impl BindSpec {
    /// True if `source` names a volume rather than a host path.
    pub fn is_volume(&self) -> bool {
        !self.source.starts_with('/')
    }
}

/// Parses `src:dst[:opts]` / `dst` (Linux rules).
pub fn parse_bind(spec: &str) -> Result<BindSpec, OciError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(OciError::InvalidBind(spec.to_string())),
    };
    if destination.is_empty()
        || !destination.starts_with('/')
        || (source.is_empty() && parts.len() > 1)
    {
        return Err(OciError::InvalidBind(spec.to_string()));
    }
    let mut b = BindSpec {
        source: source.to_string(),
        destination: destination.to_string(),
        read_only: false,
        propagation: "rprivate".to_string(),
    };
    let mut rw_seen = false;
    let mut prop_seen = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" | "rw" if !rw_seen => {
                rw_seen = true;
                b.read_only = m == "ro";
            }
            "z" | "Z" | "nocopy" => {}
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" if !prop_seen => {
                prop_seen = true;
                b.propagation = m.to_string();
            }
            _ => return Err(OciError::InvalidMode(mode.to_string())),
        }
    }
    Ok(b)
}

fn tmpfs_options(user: &str) -> Vec<String> {
    let mut opts: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for o in user.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let opposite = match o {
            "exec" => Some("noexec"),
            "noexec" => Some("exec"),
            "suid" => Some("nosuid"),
            "nosuid" => Some("suid"),
            "dev" => Some("nodev"),
            "nodev" => Some("dev"),
            _ => None,
        };
        if let Some(op) = opposite {
            opts.retain(|x| x != op);
        }
        let key = o.split_once('=').map_or(o, |(k, _)| k);
        opts.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
        opts.push(o.to_string());
    }
    opts
}

fn parse_device_rule(rule: &str) -> Result<Value, OciError> {
    let bad = || OciError::InvalidDeviceRule(rule.to_string());
    let f: Vec<&str> = rule.split_whitespace().collect();
    if f.len() != 3 || !["a", "b", "c"].contains(&f[0]) {
        return Err(bad());
    }
    let (maj, min) = f[1].split_once(':').ok_or_else(bad)?;
    let num = |s: &str| -> Result<Value, OciError> {
        if s == "*" {
            Ok(Value::Null)
        } else {
            s.parse::<i64>().map(Value::from).map_err(|_| bad())
        }
    };
    if f[2].is_empty() || !f[2].chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    let mut v = json!({"allow": true, "type": f[0], "access": f[2]});
    let (ma, mi) = (num(maj)?, num(min)?);
    if !ma.is_null() {
        v["major"] = ma;
    }
    if !mi.is_null() {
        v["minor"] = mi;
    }
    Ok(v)
}

fn path_depth(p: &str) -> usize {
    p.trim_end_matches('/').matches('/').count()
}

fn block_io(hc: &HostConfig, devs: &BTreeMap<String, (i64, i64)>) -> Result<Value, OciError> {
    let dev = |path: &str| {
        devs.get(path)
            .copied()
            .ok_or_else(|| OciError::NotBlockDevice(path.to_string()))
    };
    let mut b = json!({});
    if hc.blkio_weight > 0 {
        b["weight"] = json!(hc.blkio_weight);
    }
    let mut weights = Vec::new();
    for d in hc.blkio_weight_device.iter().flatten() {
        let (major, minor) = dev(&d.path)?;
        weights.push(json!({"major": major, "minor": minor, "weight": d.weight}));
    }
    if !weights.is_empty() {
        b["weightDevice"] = json!(weights);
    }
    for (list, key) in [
        (&hc.blkio_device_read_bps, "throttleReadBpsDevice"),
        (&hc.blkio_device_write_bps, "throttleWriteBpsDevice"),
        (&hc.blkio_device_read_iops, "throttleReadIOPSDevice"),
        (&hc.blkio_device_write_iops, "throttleWriteIOPSDevice"),
    ] {
        let mut v = Vec::new();
        for d in list.iter().flatten() {
            let (major, minor) = dev(&d.path)?;
            v.push(json!({"major": major, "minor": minor, "rate": d.rate}));
        }
        if !v.is_empty() {
            b[key] = json!(v);
        }
    }
    Ok(b)
}

/// Builds the OCI runtime spec for a container.
pub fn generate(input: &RunInput) -> Result<Spec, OciError> {
    let hc = &input.host_config;

    // ---- process ----
    let caps = capabilities(hc)?;
    let mut capabilities = json!({"bounding": caps});
    if input.user.uid == 0 || hc.privileged {
        // dockerd clears effective/permitted for non-root users.
        capabilities["effective"] = json!(caps);
        capabilities["permitted"] = json!(caps);
    }
    let mut gids = vec![input.user.gid];
    gids.extend(&input.user.sgids);
    gids.extend(&input.group_add_gids);
    let mut rlimits = Vec::new();
    for u in hc.ulimits.iter().flatten() {
        if !ULIMITS.contains(&u.name.as_str()) {
            return Err(OciError::InvalidUlimit(u.name.clone()));
        }
        rlimits.push(json!({"type": format!("RLIMIT_{}", u.name.to_uppercase()), "hard": u.hard, "soft": u.soft}));
    }
    let mut process = json!({
        "user": {"uid": input.user.uid, "gid": input.user.gid, "additionalGids": gids},
        "args": input.process.argv(),
        "env": input.process.env,
        "cwd": if input.process.cwd.is_empty() { "/" } else { input.process.cwd.as_str() },
        "capabilities": capabilities,
        "oomScoreAdj": hc.oom_score_adj,
    });
    if input.tty {
        process["terminal"] = json!(true);
        if hc.console_size != [0, 0] {
            process["consoleSize"] =
                json!({"height": hc.console_size[0], "width": hc.console_size[1]});
        }
    }
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }
    let secopts = security::parse_security_opts(hc.security_opt.as_deref().unwrap_or(&[]))?;
    if secopts.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if let Some(p) = security::check_lsm(&secopts, input.apparmor_supported)? {
        process["apparmorProfile"] = json!(p);
    }
    // Like dockerd: privileged containers and `seccomp=unconfined` get no filter.
    let seccomp = match &secopts.seccomp {
        _ if hc.privileged => None,
        SeccompChoice::Unconfined => None,
        SeccompChoice::Default => Some(security::default_profile_json(&caps, &input.arch)),
        SeccompChoice::Custom(p) => {
            security::docker_profile_json(p, &caps, &input.arch, input.kernel_version)?
        }
    };

    // ---- mounts ----
    let ro_sys = if hc.privileged { "rw" } else { "ro" };
    let ro_cgroup = match secopts.writable_cgroups {
        Some(true) => "rw",
        Some(false) => "ro",
        None => ro_sys,
    };
    let shm = if hc.shm_size > 0 {
        hc.shm_size
    } else {
        DEFAULT_SHM_SIZE
    };
    let shm_size = format!("size={shm}");
    let mut mounts: Vec<Value> = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", ro_sys],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &[ro_cgroup, "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ];
    let mut user_mounts: Vec<Value> = Vec::new();
    let bind_mount = |dest: &str, src: &str, ro: bool, recursive: bool, prop: &str| {
        let mut o = vec![if recursive { "rbind" } else { "bind" }];
        if ro {
            o.push("ro");
        }
        o.push(if prop.is_empty() { "rprivate" } else { prop });
        mount(dest, "bind", src, &o)
    };
    let volume_path = |key: &str| -> Result<String, OciError> {
        input
            .volume_paths
            .get(key)
            .cloned()
            .ok_or_else(|| OciError::UnresolvedVolume(key.to_string()))
    };
    for b in hc.binds.iter().flatten() {
        let b = parse_bind(b)?;
        let src = if b.source.is_empty() {
            volume_path(&b.destination)?
        } else if b.is_volume() {
            volume_path(&b.source)?
        } else {
            b.source.clone()
        };
        user_mounts.push(bind_mount(
            &b.destination,
            &src,
            b.read_only,
            true,
            &b.propagation,
        ));
    }
    for (dest, opts) in hc.tmpfs.iter().flatten() {
        let o = tmpfs_options(opts);
        let o: Vec<&str> = o.iter().map(String::as_str).collect();
        user_mounts.push(mount(dest, "tmpfs", "tmpfs", &o));
    }
    for m in hc.mounts.iter().flatten() {
        let invalid = |reason: &str| OciError::InvalidMount {
            typ: m.r#type.clone(),
            reason: reason.to_string(),
        };
        if !m.target.starts_with('/') {
            return Err(invalid(&format!(
                "invalid mount path: '{}' mount path must be absolute",
                m.target
            )));
        }
        match m.r#type.as_str() {
            "bind" => {
                if !m.source.starts_with('/') {
                    return Err(invalid(&format!(
                        "invalid mount path: '{}' mount path must be absolute",
                        m.source
                    )));
                }
                let bo = m.bind_options.clone().unwrap_or_default();
                user_mounts.push(bind_mount(
                    &m.target,
                    &m.source,
                    m.read_only,
                    !bo.non_recursive,
                    &bo.propagation,
                ));
            }
            "volume" => {
                let src = if m.source.is_empty() {
                    volume_path(&m.target)?
                } else {
                    volume_path(&m.source)?
                };
                user_mounts.push(bind_mount(&m.target, &src, m.read_only, true, ""));
            }
            "tmpfs" => {
                let mut extra = Vec::new();
                if let Some(t) = &m.tmpfs_options {
                    if t.mode != 0 {
                        extra.push(format!("mode={:o}", t.mode));
                    }
                    if t.size_bytes > 0 {
                        extra.push(format!("size={}", t.size_bytes));
                    }
                    for o in t.options.iter().flatten() {
                        extra.push(o.join("="));
                    }
                }
                if m.read_only {
                    extra.push("ro".into());
                }
                let o = tmpfs_options(&extra.join(","));
                let o: Vec<&str> = o.iter().map(String::as_str).collect();
                user_mounts.push(mount(&m.target, "tmpfs", "tmpfs", &o));
            }
            other => return Err(invalid(&format!("mount type unknown: {other:?}"))),
        }
    }
    user_mounts.sort_by_key(|m| path_depth(m["destination"].as_str().unwrap_or("")));
    let mut etc_mounts = Vec::new();
    for (dest, src) in [
        ("/etc/resolv.conf", &input.resolv_conf_path),
        ("/etc/hostname", &input.hostname_path),
        ("/etc/hosts", &input.hosts_path),
    ] {
        if let Some(src) = src {
            etc_mounts.push(bind_mount(dest, src, hc.readonly_rootfs, true, "rprivate"));
        }
    }
    // A user mount replaces a default one at the same destination.
    let user_dests: Vec<String> = user_mounts
        .iter()
        .chain(etc_mounts.iter())
        .filter_map(|m| {
            m["destination"]
                .as_str()
                .map(|s| s.trim_end_matches('/').to_string())
        })
        .collect();
    mounts.retain(|m| {
        !user_dests
            .iter()
            .any(|d| Some(d.as_str()) == m["destination"].as_str())
    });
    etc_mounts.retain(|m| {
        !user_mounts
            .iter()
            .any(|u| u["destination"] == m["destination"])
    });
    mounts.extend(user_mounts);
    mounts.extend(etc_mounts);

    // ---- namespaces ----
    let mode_src = |explicit: &NamespaceSource, mode: &str| -> NamespaceSource {
        if mode == "host" {
            NamespaceSource::Host
        } else {
            explicit.clone()
        }
    };
    let net = mode_src(&input.network, &hc.network_mode);
    let mut namespaces = vec![json!({"type": "mount"})];
    let mut push_ns = |typ: &str, src: &NamespaceSource| match src {
        NamespaceSource::New => namespaces.push(json!({"type": typ})),
        NamespaceSource::Path(p) => namespaces.push(json!({"type": typ, "path": p})),
        NamespaceSource::Host => {}
    };
    push_ns("network", &net);
    push_ns("uts", &mode_src(&NamespaceSource::New, &hc.uts_mode));
    push_ns("pid", &mode_src(&input.pid, &hc.pid_mode));
    push_ns("ipc", &mode_src(&input.ipc, &hc.ipc_mode));
    let cgroupns = match hc.cgroupns_mode.as_str() {
        "private" => true,
        "host" => false,
        _ => input.cgroup_v2,
    };
    if cgroupns {
        push_ns("cgroup", &NamespaceSource::New);
    }
    let userns = input.userns_remap.filter(|_| hc.userns_mode != "host");
    if userns.is_some() {
        push_ns("user", &NamespaceSource::New);
    }

    // ---- resources ----
    let mut devices = vec![json!({"allow": false, "access": "rwm"})];
    let mut device_nodes: Vec<Value> = Vec::new();
    let mut device_rules: Vec<Value> = Vec::new();
    for d in &input.host_devices {
        let (node, rule) = security::device_entries(d)?;
        if device_nodes.iter().any(|n| n["path"] == node["path"]) {
            continue;
        }
        device_nodes.push(node);
        device_rules.push(rule);
    }
    if hc.privileged {
        devices = vec![json!({"allow": true, "access": "rwm"})];
    } else {
        for (maj, min) in [(1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1)] {
            devices.push(
                json!({"allow": true, "type": "c", "major": maj, "minor": min, "access": "rwm"}),
            );
        }
        devices
            .push(json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}));
        devices.extend(device_rules);
        for r in hc.device_cgroup_rules.iter().flatten() {
            devices.push(parse_device_rule(r)?);
        }
    }
    let mut memory = json!({"disableOOMKiller": hc.oom_kill_disable.unwrap_or(false)});
    if hc.memory > 0 {
        memory["limit"] = json!(hc.memory);
    }
    if hc.memory_swap != 0 {
        memory["swap"] = json!(hc.memory_swap);
    }
    if hc.memory_reservation > 0 {
        memory["reservation"] = json!(hc.memory_reservation);
    }
    if let Some(s) = hc.memory_swappiness {
        if s >= 0 {
            memory["swappiness"] = json!(s);
        }
    }
    let mut cpu = json!({"shares": hc.cpu_shares.max(0)});
    if hc.nano_cpus > 0 {
        let period: i64 = 100_000;
        cpu["quota"] = json!(hc.nano_cpus * period / 1_000_000_000);
        cpu["period"] = json!(period);
    } else {
        if hc.cpu_quota != 0 {
            cpu["quota"] = json!(hc.cpu_quota);
        }
        if hc.cpu_period != 0 {
            cpu["period"] = json!(hc.cpu_period);
        }
    }
    if !hc.cpuset_cpus.is_empty() {
        cpu["cpus"] = json!(hc.cpuset_cpus);
    }
    if !hc.cpuset_mems.is_empty() {
        cpu["mems"] = json!(hc.cpuset_mems);
    }
    let mut resources = json!({
        "devices": devices,
        "memory": memory,
        "cpu": cpu,
        "blockIO": block_io(hc, &input.block_devices)?,
    });
    if let Some(p) = hc.pids_limit {
        if p != 0 {
            resources["pids"] = json!({"limit": if p < 0 { -1 } else { p }});
        }
    }

    // ---- sysctls ----
    let mut sysctl: BTreeMap<String, String> = BTreeMap::new();
    if net != NamespaceSource::Host {
        sysctl.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        sysctl.insert("net.ipv4.ping_group_range".into(), "0 2147483647".into());
    }
    for (k, v) in hc.sysctls.iter().flatten() {
        sysctl.insert(k.clone(), v.clone());
    }

    let cgroups_path = input
        .cgroups_path
        .clone()
        .unwrap_or_else(|| format!("/berth/{}", input.id));
    let mut linux = json!({
        "sysctl": sysctl,
        "resources": resources,
        "cgroupsPath": cgroups_path,
        "namespaces": namespaces,
    });
    if !device_nodes.is_empty() {
        linux["devices"] = json!(device_nodes);
    }
    if let Some(((uid, usize), (gid, gsize))) = userns {
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": usize}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": gsize}]);
    }
    if let Some(s) = seccomp {
        linux["seccomp"] = s;
    }
    if !hc.privileged {
        let masked: Vec<String> = hc
            .masked_paths
            .clone()
            .unwrap_or_else(|| DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect());
        let ro: Vec<String> = hc.readonly_paths.clone().unwrap_or_else(|| {
            DEFAULT_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        linux["maskedPaths"] = json!(masked);
        linux["readonlyPaths"] = json!(ro);
    }

    let mut root = json!({"path": input.rootfs});
    if hc.readonly_rootfs {
        root["readonly"] = json!(true);
    }
    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": root,
        "mounts": mounts,
        "linux": linux,
    });
    if hc.uts_mode != "host" {
        spec["hostname"] = json!(input.hostname);
    }
    if !input.domainname.is_empty() {
        spec["domainname"] = json!(input.domainname);
    }
    serde_json::from_value(spec).map_err(OciError::Spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{effective_process, resolve_user};
    use berth_api_types::{ContainerConfig, Ulimit};

    fn to_json(s: &Spec) -> Value {
        serde_json::to_value(s).unwrap()
    }

    fn strs(v: &Value) -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    fn sorted(l: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = l.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    /// `docker run -e A=1 -w /tmp -u 1000 -h myhost --entrypoint /bin/sh busybox -c 'echo hi'`
    #[test]
    fn typical_run() {
        let image = ContainerConfig {
            env: Some(vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let req = ContainerConfig {
            env: Some(vec!["A=1".into()]),
            working_dir: "/tmp".into(),
            user: "1000".into(),
            hostname: "myhost".into(),
            entrypoint: Some(vec!["/bin/sh".into()]),
            cmd: Some(vec!["-c".into(), "echo hi".into()]),
            ..Default::default()
        };
        let (_, process) = effective_process(&req, &image, "myhost").unwrap();
        let user = resolve_user(
            &process.user,
            Some("root:x:0:0::/root:/bin/sh\n"),
            Some("root:x:0:\nwheel:x:10:root\n"),
        )
        .unwrap();
        let input = RunInput {
            id: "abc".into(),
            rootfs: "/run/berth/containers/abc/rootfs".into(),
            process,
            user,
            hostname: "myhost".into(),
            resolv_conf_path: Some("/var/lib/berth/containers/abc/resolv.conf".into()),
            hostname_path: Some("/var/lib/berth/containers/abc/hostname".into()),
            hosts_path: Some("/var/lib/berth/containers/abc/hosts".into()),
            ..Default::default()
        };
        let j = to_json(&generate(&input).unwrap());
        let p = &j["process"];
        assert_eq!(p["args"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(
            p["env"],
            json!([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=myhost",
                "A=1"
            ])
        );
        assert_eq!(p["cwd"], "/tmp");
        assert_eq!(
            p["user"],
            json!({"uid": 1000, "gid": 0, "additionalGids": [0]})
        );
        assert!(p.get("terminal").is_none() || p["terminal"] == false);
        assert_eq!(
            strs(&p["capabilities"]["bounding"]),
            sorted(&DEFAULT_CAPABILITIES)
        );
        assert!(
            p["capabilities"].get("effective").is_none(),
            "non-root gets bounding only"
        );
        assert!(p.get("noNewPrivileges").is_none() || p["noNewPrivileges"] == false);
        assert_eq!(j["hostname"], "myhost");
        assert_eq!(j["root"]["path"], "/run/berth/containers/abc/rootfs");
        let dests: Vec<&str> = j["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm",
                "/etc/resolv.conf",
                "/etc/hostname",
                "/etc/hosts"
            ]
        );
        let m = |d: &str| {
            j["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == d)
                .unwrap()
                .clone()
        };
        assert_eq!(
            m("/dev")["options"],
            json!(["nosuid", "strictatime", "mode=755", "size=65536k"])
        );
        assert_eq!(
            m("/dev/pts")["options"],
            json!([
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5"
            ])
        );
        assert_eq!(
            m("/dev/shm")["options"],
            json!(["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"])
        );
        assert_eq!(
            m("/sys")["options"],
            json!(["nosuid", "noexec", "nodev", "ro"])
        );
        assert_eq!(
            m("/etc/hosts"),
            json!({"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/berth/containers/abc/hosts", "options": ["rbind", "rprivate"]})
        );
        let l = &j["linux"];
        assert_eq!(l["cgroupsPath"], "/berth/abc");
        let ns: Vec<&str> = l["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["mount", "network", "uts", "pid", "ipc"]);
        assert_eq!(l["maskedPaths"], json!(DEFAULT_MASKED_PATHS));
        assert_eq!(l["readonlyPaths"], json!(DEFAULT_READONLY_PATHS));
        assert_eq!(l["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "0");
        let devs = l["resources"]["devices"].as_array().unwrap();
        assert_eq!(devs[0], json!({"allow": false, "access": "rwm"}));
        assert_eq!(devs.len(), 8);
        assert!(l["resources"]["memory"].get("limit").is_none());
    }

    #[test]
    fn host_config_bits() {
        let hc = HostConfig {
            binds: Some(vec![
                "/tmp/b:/data:ro".into(),
                "/tmp/b:/data2".into(),
                "vol1:/v".into(),
            ]),
            tmpfs: Some([("/run".to_string(), "size=1m".to_string())].into()),
            memory: 64 << 20,
            memory_swap: 128 << 20,
            nano_cpus: 500_000_000,
            cpu_shares: 512,
            pids_limit: Some(100),
            cpuset_cpus: "0".into(),
            ulimits: Some(vec![Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048,
            }]),
            cap_add: Some(vec!["NET_ADMIN".into()]),
            cap_drop: Some(vec!["CAP_MKNOD".into()]),
            readonly_rootfs: true,
            shm_size: 32 << 20,
            sysctls: Some([("net.core.somaxconn".to_string(), "1024".to_string())].into()),
            ..Default::default()
        };
        let input = RunInput {
            id: "x".into(),
            rootfs: "rootfs".into(),
            process: Process {
                path: "sleep".into(),
                args: vec!["1".into()],
                ..Default::default()
            },
            tty: true,
            host_config: hc,
            group_add_gids: vec![777],
            user: ExecUser {
                sgids: vec![10],
                ..Default::default()
            },
            hosts_path: Some("/h".into()),
            volume_paths: [(
                "vol1".to_string(),
                "/var/lib/berth/volumes/vol1/_data".to_string(),
            )]
            .into(),
            ..Default::default()
        };
        let j = to_json(&generate(&input).unwrap());
        let p = &j["process"];
        assert_eq!(p["terminal"], true);
        assert_eq!(p["user"]["additionalGids"], json!([0, 10, 777]));
        assert_eq!(
            p["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024}])
        );
        let mut want = sorted(&DEFAULT_CAPABILITIES);
        want.retain(|c| c != "CAP_MKNOD");
        want.push("CAP_NET_ADMIN".into());
        want.sort();
        assert_eq!(strs(&p["capabilities"]["bounding"]), want);
        assert_eq!(strs(&p["capabilities"]["effective"]), want);
        assert_eq!(j["root"]["readonly"], true);
        let m = |d: &str| {
            j["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == d)
                .unwrap_or_else(|| panic!("{d}"))
                .clone()
        };
        assert_eq!(m("/data")["options"], json!(["rbind", "ro", "rprivate"]));
        assert_eq!(m("/data2")["options"], json!(["rbind", "rprivate"]));
        assert_eq!(m("/v")["source"], "/var/lib/berth/volumes/vol1/_data");
        assert_eq!(
            m("/run"),
            json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "nosuid", "nodev", "rprivate", "size=1m"]})
        );
        assert_eq!(
            m("/dev/shm")["options"],
            json!(["nosuid", "noexec", "nodev", "mode=1777", "size=33554432"])
        );
        assert_eq!(
            m("/etc/hosts")["options"],
            json!(["rbind", "ro", "rprivate"])
        );
        let r = &j["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 67108864);
        assert_eq!(r["memory"]["swap"], 134217728);
        assert_eq!(
            r["cpu"],
            json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"})
        );
        assert_eq!(r["pids"]["limit"], 100);
        assert_eq!(j["linux"]["sysctl"]["net.core.somaxconn"], "1024");
    }

    #[test]
    fn capabilities_table() {
        let caps = |add: &[&str], drop: &[&str], privileged: bool| {
            let hc = HostConfig {
                cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
                cap_drop: Some(drop.iter().map(|s| s.to_string()).collect()),
                privileged,
                ..Default::default()
            };
            capabilities(&hc)
        };
        assert_eq!(caps(&[], &[], false).unwrap().len(), 14);
        assert_eq!(
            caps(&["ALL"], &[], false).unwrap().len(),
            ALL_CAPABILITIES.len()
        );
        assert_eq!(
            caps(&["all"], &["sys_admin"], false).unwrap().len(),
            ALL_CAPABILITIES.len() - 1
        );
        assert_eq!(
            caps(&["chown"], &["ALL"], false).unwrap(),
            vec!["CAP_CHOWN"]
        );
        assert!(caps(&[], &["ALL"], false).unwrap().is_empty());
        assert_eq!(caps(&[], &[], true).unwrap().len(), ALL_CAPABILITIES.len());
        assert_eq!(
            caps(&["FOO"], &[], false).unwrap_err().to_string(),
            "unknown capability: \"CAP_FOO\""
        );
    }

    #[test]
    fn namespaces_modes_and_privileged() {
        let mut input = RunInput {
            id: "n".into(),
            process: Process {
                path: "x".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        input.host_config.network_mode = "host".into();
        input.host_config.pid_mode = "host".into();
        input.host_config.privileged = true;
        input.cgroup_v2 = true;
        let j = to_json(&generate(&input).unwrap());
        let ns: Vec<&str> = j["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["mount", "uts", "ipc", "cgroup"]);
        assert!(j["linux"].get("maskedPaths").is_none());
        assert!(j["linux"]["sysctl"]
            .get("net.ipv4.ping_group_range")
            .is_none());
        assert_eq!(
            j["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
        let sys = j["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert_eq!(sys["options"][3], "rw");

        let mut input = RunInput {
            id: "n".into(),
            process: Process {
                path: "x".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        input.network = NamespaceSource::Path("/proc/42/ns/net".into());
        input.host_config.cgroupns_mode = "host".into();
        input.cgroup_v2 = true;
        let j = to_json(&generate(&input).unwrap());
        assert_eq!(
            j["linux"]["namespaces"][1],
            json!({"type": "network", "path": "/proc/42/ns/net"})
        );
        assert_eq!(j["linux"]["namespaces"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn binds_and_errors() {
        assert_eq!(
            parse_bind("/a:/b:ro,Z").unwrap(),
            BindSpec {
                source: "/a".into(),
                destination: "/b".into(),
                read_only: true,
                propagation: "rprivate".into()
            }
        );
        assert!(parse_bind("/data").unwrap().source.is_empty());
        assert!(parse_bind("v:/x").unwrap().is_volume());
        assert_eq!(parse_bind("/a:/b:shared").unwrap().propagation, "shared");
        assert_eq!(
            parse_bind("/a:b").unwrap_err().to_string(),
            "invalid volume specification: '/a:b'"
        );
        assert_eq!(
            parse_bind("/a:/b:bogus").unwrap_err().to_string(),
            "invalid mode: bogus"
        );
        assert!(parse_bind("/a:/b:/c:/d").is_err());
        let mut input = RunInput {
            process: Process {
                path: "x".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        input.host_config.binds = Some(vec!["nosuchvol:/x".into()]);
        assert!(matches!(
            generate(&input),
            Err(OciError::UnresolvedVolume(_))
        ));
        input.host_config.binds = None;
        input.host_config.ulimits = Some(vec![Ulimit {
            name: "bogus".into(),
            soft: 1,
            hard: 1,
        }]);
        assert_eq!(
            generate(&input).unwrap_err().to_string(),
            "invalid ulimit type: bogus"
        );
        input.host_config.ulimits = None;
        input.host_config.device_cgroup_rules = Some(vec!["c 1:3 rwm".into(), "b *:* m".into()]);
        let j = to_json(&generate(&input).unwrap());
        let devs = j["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(
            devs[8],
            json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"})
        );
        assert_eq!(devs[9], json!({"allow": true, "type": "b", "access": "m"}));
        input.host_config.device_cgroup_rules = Some(vec!["x 1:3".into()]);
        assert!(generate(&input).is_err());
        assert_eq!(
            tmpfs_options("exec,size=1m,size=2m"),
            ["nosuid", "nodev", "rprivate", "exec", "size=2m"]
        );
    }

    fn base_input() -> RunInput {
        RunInput {
            id: "s".into(),
            process: Process {
                path: "x".into(),
                ..Default::default()
            },
            arch: "x86_64".into(),
            ..Default::default()
        }
    }

    #[test]
    fn seccomp_default_unconfined_privileged_custom() {
        // Default: Berth's profile for the container's capabilities.
        let j = to_json(&generate(&base_input()).unwrap());
        let sc = &j["linux"]["seccomp"];
        assert_eq!(sc["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(sc["defaultErrnoRet"], 1);
        let names = |sc: &Value| -> Vec<String> {
            sc["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["names"].as_array().unwrap().clone())
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        };
        assert!(names(sc).contains(&"read".to_string()));
        assert!(!names(sc).contains(&"mount".to_string()));
        let mut input = base_input();
        input.host_config.cap_add = Some(vec!["SYS_ADMIN".into()]);
        let j = to_json(&generate(&input).unwrap());
        assert!(names(&j["linux"]["seccomp"]).contains(&"mount".to_string()));

        for opts in [vec!["seccomp=unconfined"], vec!["seccomp:unconfined"]] {
            let mut input = base_input();
            input.host_config.security_opt = Some(opts.iter().map(|s| s.to_string()).collect());
            let j = to_json(&generate(&input).unwrap());
            assert!(j["linux"].get("seccomp").is_none());
        }
        let mut input = base_input();
        input.host_config.privileged = true;
        let j = to_json(&generate(&input).unwrap());
        assert!(j["linux"].get("seccomp").is_none());

        let mut input = base_input();
        input.host_config.security_opt = Some(vec![
            r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#.into(),
            "no-new-privileges".into(),
        ]);
        let j = to_json(&generate(&input).unwrap());
        assert_eq!(
            j["linux"]["seccomp"],
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})
        );
        assert_eq!(j["process"]["noNewPrivileges"], true);

        let mut input = base_input();
        input.host_config.security_opt = Some(vec!["seccomp={bad".into()]);
        assert!(generate(&input)
            .unwrap_err()
            .to_string()
            .starts_with("Decoding seccomp profile failed"));
        input.host_config.security_opt = Some(vec!["bogus=1".into()]);
        assert_eq!(
            generate(&input).unwrap_err().to_string(),
            "invalid --security-opt 2: \"bogus=1\""
        );
        input.host_config.security_opt = Some(vec!["apparmor=myprof".into()]);
        assert!(generate(&input).is_err());
        input.apparmor_supported = true;
        let j = to_json(&generate(&input).unwrap());
        assert_eq!(j["process"]["apparmorProfile"], "myprof");
        input.host_config.security_opt = Some(vec![
            "apparmor=unconfined".into(),
            "label=disable".into(),
            "writable-cgroups=true".into(),
        ]);
        input.apparmor_supported = false;
        let j = to_json(&generate(&input).unwrap());
        assert!(j["process"].get("apparmorProfile").is_none());
        let cg = j["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys/fs/cgroup")
            .unwrap();
        assert_eq!(cg["options"][0], "rw");
    }

    #[test]
    fn device_mappings() {
        let fuse = HostDevice {
            path_on_host: "/dev/fuse".into(),
            path_in_container: "/dev/fuse".into(),
            kind: 'c',
            major: 10,
            minor: 229,
            file_mode: 0o666,
            uid: 0,
            gid: 0,
            permissions: "rwm".into(),
        };
        let sda = HostDevice {
            path_on_host: "/dev/sda".into(),
            path_in_container: "/dev/xvda".into(),
            kind: 'b',
            major: 8,
            minor: 0,
            file_mode: 0o660,
            uid: 0,
            gid: 6,
            permissions: "r".into(),
        };
        let mut input = base_input();
        input.host_devices = vec![fuse.clone(), sda.clone()];
        input.host_config.device_cgroup_rules = Some(vec!["c 1:3 rwm".into()]);
        let j = to_json(&generate(&input).unwrap());
        assert_eq!(
            j["linux"]["devices"],
            json!([
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
                {"path": "/dev/xvda", "type": "b", "major": 8, "minor": 0, "fileMode": 432, "uid": 0, "gid": 6}
            ])
        );
        let devs = j["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(devs.len(), 11);
        // dockerd's order: default rules (the /dev/fuse deny among them), mappings, cgroup rules.
        assert_eq!(
            devs[7],
            json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"})
        );
        assert_eq!(
            devs[8],
            json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"})
        );
        assert_eq!(
            devs[9],
            json!({"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"})
        );
        assert_eq!(devs[10]["major"], 1);

        // Privileged: every node given, cgroup allows all.
        let mut input = base_input();
        input.host_config.privileged = true;
        input.host_devices = vec![fuse.clone(), sda, fuse];
        let j = to_json(&generate(&input).unwrap());
        assert_eq!(j["linux"]["devices"].as_array().unwrap().len(), 2);
        assert_eq!(
            j["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );

        let mut input = base_input();
        input.host_devices = vec![HostDevice {
            permissions: "rwz".into(),
            ..input_dev()
        }];
        assert_eq!(
            generate(&input).unwrap_err().to_string(),
            "invalid device mode: rwz"
        );
        // No devices: no linux.devices key.
        let j = to_json(&generate(&base_input()).unwrap());
        assert!(j["linux"].get("devices").is_none());
    }

    fn input_dev() -> HostDevice {
        HostDevice {
            path_on_host: "/dev/null".into(),
            path_in_container: "/dev/n".into(),
            kind: 'c',
            major: 1,
            minor: 3,
            file_mode: 0o666,
            uid: 0,
            gid: 0,
            permissions: String::new(),
        }
    }

    /// `--blkio-weight 300 --blkio-weight-device /dev/sda:200 --device-read-bps /dev/sda:1mb
    /// --device-write-iops /dev/loop0:300`, and `--userns-remap` with `--userns host`.
    #[test]
    fn block_io_and_userns() {
        use berth_api_types::{ThrottleDevice, WeightDevice};
        let mut input = base_input();
        let hc = &mut input.host_config;
        hc.blkio_weight = 300;
        hc.blkio_weight_device = Some(vec![WeightDevice {
            path: "/dev/sda".into(),
            weight: 200,
        }]);
        hc.blkio_device_read_bps = Some(vec![ThrottleDevice {
            path: "/dev/sda".into(),
            rate: 1 << 20,
        }]);
        hc.blkio_device_write_iops = Some(vec![ThrottleDevice {
            path: "/dev/loop0".into(),
            rate: 300,
        }]);
        assert_eq!(block_device_paths(hc), ["/dev/loop0", "/dev/sda"]);
        assert_eq!(
            generate(&input).unwrap_err().to_string(),
            "/dev/sda is not a block device"
        );
        input.block_devices.insert("/dev/sda".into(), (8, 0));
        input.block_devices.insert("/dev/loop0".into(), (7, 0));
        let j = to_json(&generate(&input).unwrap());
        assert_eq!(
            j["linux"]["resources"]["blockIO"],
            json!({"weight": 300,
                   "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                   "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                   "throttleWriteIOPSDevice": [{"major": 7, "minor": 0, "rate": 300}]})
        );
        assert!(j["linux"].get("uidMappings").is_none());

        let mut input = base_input();
        input.userns_remap = Some(((100000, 65536), (200000, 65536)));
        let j = to_json(&generate(&input).unwrap());
        assert!(j["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "user"})));
        assert_eq!(
            j["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
        );
        assert_eq!(
            j["linux"]["gidMappings"],
            json!([{"containerID": 0, "hostID": 200000, "size": 65536}])
        );
        input.host_config.userns_mode = "host".into();
        let j = to_json(&generate(&input).unwrap());
        assert!(!j["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "user"})));
        assert!(j["linux"].get("uidMappings").is_none());
    }
}
