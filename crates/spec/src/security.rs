//! Container security options: `HostConfig.SecurityOpt` parsing (dockerd's rules and texts),
//! Berth's default seccomp profile (`seccomp/default.json`, compiled in), Docker-format custom
//! seccomp profiles, and host device entries.
//!
//! Everything here is pure: what needs the host (architecture, kernel version, device numbers,
//! AppArmor support) comes in as arguments.

use std::sync::OnceLock;

use oci_spec::runtime::LinuxSeccomp;
use serde::Deserialize;
use serde_json::{json, Value};

/// Berth's default profile, in Berth's own layout (see the file's `about`).
pub const DEFAULT_PROFILE_JSON: &str = include_str!("../seccomp/default.json");

/// Errors from security options and profiles (texts follow dockerd where it has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    /// An option without a `key=value` (or deprecated `key:value`) form.
    #[error("invalid --security-opt 1: {0:?}")]
    Malformed(String),
    /// An unknown key or a bad value.
    #[error("invalid --security-opt 2: {0:?}")]
    Invalid(String),
    /// A custom seccomp profile that does not parse or convert.
    #[error("Decoding seccomp profile failed: {0}")]
    SeccompDecode(String),
    /// A custom seccomp profile that is inconsistent.
    #[error("{0}")]
    SeccompProfile(String),
    /// An AppArmor profile on a host without AppArmor.
    #[error("AppArmor is not enabled on this host: cannot use apparmor profile {0:?} (only \"unconfined\")")]
    AppArmorUnsupported(String),
    /// An SELinux label option Berth cannot honour.
    #[error("SELinux is not supported by Berth on this host: cannot use label option {0:?} (only \"disable\")")]
    LabelUnsupported(String),
    /// A `Devices` cgroup permissions string other than a combination of r, w and m.
    #[error("invalid device mode: {0}")]
    DeviceMode(String),
    /// A device that is neither a character nor a block device.
    #[error("{0} is not a character or block device")]
    DeviceKind(String),
}

/// The `seccomp=` choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompChoice {
    /// Berth's default profile (no option, or `seccomp=builtin`).
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=<profile JSON>` (the docker CLI sends the file's content).
    Custom(String),
}

/// Parsed `HostConfig.SecurityOpt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    /// Seccomp profile to use.
    pub seccomp: SeccompChoice,
    /// `no-new-privileges[=true|false]`.
    pub no_new_privileges: bool,
    /// `apparmor=<profile>`.
    pub apparmor: Option<String>,
    /// `label=...` values (`disable`, `type:x`, ...), in order.
    pub labels: Vec<String>,
    /// `writable-cgroups=true|false`.
    pub writable_cgroups: Option<bool>,
}

fn parse_bool(s: &str) -> Option<bool> {
    // Go's strconv.ParseBool.
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// dockerd's `parseSecurityOpt`.
pub fn parse_security_opts(opts: &[String]) -> Result<SecurityOptions, SecurityError> {
    let mut out = SecurityOptions::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            out.labels.push("disable".into());
            continue;
        }
        let (k, v) = if let Some(kv) = opt.split_once('=') {
            kv
        } else if let Some(kv) = opt.split_once(':') {
            kv
        } else {
            return Err(SecurityError::Malformed(opt.clone()));
        };
        match k {
            "label" => out.labels.push(v.to_string()),
            "apparmor" => out.apparmor = Some(v.to_string()),
            "seccomp" => {
                out.seccomp = match v {
                    "unconfined" => SeccompChoice::Unconfined,
                    "" | "builtin" => SeccompChoice::Default,
                    other => SeccompChoice::Custom(other.to_string()),
                }
            }
            "no-new-privileges" => {
                out.no_new_privileges =
                    parse_bool(v).ok_or_else(|| SecurityError::Invalid(opt.clone()))?
            }
            "writable-cgroups" => {
                out.writable_cgroups =
                    Some(parse_bool(v).ok_or_else(|| SecurityError::Invalid(opt.clone()))?)
            }
            _ => return Err(SecurityError::Invalid(opt.clone())),
        }
    }
    Ok(out)
}

/// Checks AppArmor and label options against what the host supports; returns the AppArmor
/// profile to put in `process.apparmorProfile` (None: leave it out).
pub fn check_lsm(
    opts: &SecurityOptions,
    apparmor_supported: bool,
) -> Result<Option<String>, SecurityError> {
    for l in &opts.labels {
        if l != "disable" {
            return Err(SecurityError::LabelUnsupported(l.clone()));
        }
    }
    match &opts.apparmor {
        None => Ok(None),
        Some(p) if apparmor_supported => Ok(Some(p.clone())),
        Some(p) if p == "unconfined" => Ok(None),
        Some(p) => Err(SecurityError::AppArmorUnsupported(p.clone())),
    }
}

/// Maps a host architecture (Rust `std::env::consts::ARCH` name, or a Go/libseccomp name) to
/// libseccomp's native name as Docker profiles spell it in `includes.arches` (`amd64`, `arm64`...).
pub fn seccomp_arch_name(arch: &str) -> &str {
    match arch {
        "x86_64" | "amd64" => "amd64",
        "x86" | "i386" | "i686" | "386" => "x86",
        "aarch64" | "arm64" => "arm64",
        "powerpc64" | "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "arm" => "arm",
        other => other,
    }
}

fn rust_arch_name(arch: &str) -> &str {
    match seccomp_arch_name(arch) {
        "amd64" => "x86_64",
        "x86" => "x86",
        "arm64" => "aarch64",
        "ppc64le" => "powerpc64",
        other => other,
    }
}

/// `SCMP_ARCH_*` of the native architecture (what Docker's `archMap` is keyed on).
fn native_scmp_arch(arch: &str) -> Option<&'static str> {
    Some(match seccomp_arch_name(arch) {
        "amd64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => return None,
    })
}

fn host_arch(arch: &str) -> &str {
    if arch.is_empty() {
        std::env::consts::ARCH
    } else {
        arch
    }
}

// ---------------------------------------------------------------------------------------------
// Berth's own profile layout.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BerthProfile {
    #[allow(dead_code)]
    about: String,
    default_action: String,
    default_errno_ret: Option<u32>,
    architectures: std::collections::BTreeMap<String, Vec<String>>,
    rules: Vec<BerthRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BerthRule {
    #[allow(dead_code)]
    why: String,
    /// Names allowed (action SCMP_ACT_ALLOW).
    #[serde(default)]
    allow: Vec<String>,
    /// Names failing with this errno (with `names`).
    errno: Option<u32>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    if_caps: Vec<String>,
    #[serde(default)]
    unless_caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    args: Vec<BerthArg>,
    #[serde(default)]
    any_arg: Vec<BerthArg>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BerthArg {
    arg: u32,
    masked: Option<u64>,
    eq: Option<u64>,
    ne: Option<u64>,
    lt: Option<u64>,
    le: Option<u64>,
    gt: Option<u64>,
    ge: Option<u64>,
}

impl BerthArg {
    fn to_oci(&self) -> Value {
        let (op, value, two) = if let Some(mask) = self.masked {
            ("SCMP_CMP_MASKED_EQ", mask, Some(self.eq.unwrap_or(0)))
        } else if let Some(v) = self.eq {
            ("SCMP_CMP_EQ", v, None)
        } else if let Some(v) = self.ne {
            ("SCMP_CMP_NE", v, None)
        } else if let Some(v) = self.lt {
            ("SCMP_CMP_LT", v, None)
        } else if let Some(v) = self.le {
            ("SCMP_CMP_LE", v, None)
        } else if let Some(v) = self.gt {
            ("SCMP_CMP_GT", v, None)
        } else {
            ("SCMP_CMP_GE", self.ge.unwrap_or(0), None)
        };
        let mut a = json!({"index": self.arg, "value": value, "op": op});
        if let Some(t) = two {
            a["valueTwo"] = json!(t);
        }
        a
    }
}

fn builtin() -> &'static BerthProfile {
    static P: OnceLock<BerthProfile> = OnceLock::new();
    // The file is compiled in and checked by the unit tests: failing to parse it is a build bug.
    P.get_or_init(|| {
        serde_json::from_str(DEFAULT_PROFILE_JSON)
            .unwrap_or_else(|e| panic!("crates/spec/seccomp/default.json: {e}"))
    })
}

fn has(caps: &[String], c: &str) -> bool {
    caps.iter().any(|x| x == c)
}

/// Berth's default profile (OCI JSON form) for a container whose bounding capability set is
/// `caps`, on host architecture `arch` (Rust or Go name; empty: the build target's).
pub fn default_profile_json(caps: &[String], arch: &str) -> Value {
    let p = builtin();
    let arch = rust_arch_name(host_arch(arch));
    let mut syscalls: Vec<Value> = Vec::new();
    for r in &p.rules {
        if !r.if_caps.iter().all(|c| has(caps, c)) || r.unless_caps.iter().any(|c| has(caps, c)) {
            continue;
        }
        if !r.arches.is_empty() && !r.arches.iter().any(|a| a == arch) {
            continue;
        }
        let (names, action, errno) = if let Some(e) = r.errno {
            (&r.names, "SCMP_ACT_ERRNO", Some(e))
        } else {
            (&r.allow, "SCMP_ACT_ALLOW", None)
        };
        let mut push = |args: Vec<Value>| {
            let mut s = json!({"names": names, "action": action});
            if let Some(e) = errno {
                s["errnoRet"] = json!(e);
            }
            if !args.is_empty() {
                s["args"] = json!(args);
            }
            syscalls.push(s);
        };
        let base: Vec<Value> = r.args.iter().map(BerthArg::to_oci).collect();
        if r.any_arg.is_empty() {
            push(base);
        } else {
            for alt in &r.any_arg {
                let mut a = base.clone();
                a.push(alt.to_oci());
                push(a);
            }
        }
    }
    let mut out = json!({
        "defaultAction": p.default_action,
        "syscalls": syscalls,
    });
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if let Some(a) = p.architectures.get(arch) {
        out["architectures"] = json!(a);
    }
    out
}

/// [`default_profile_json`] as the OCI type.
pub fn default_profile(caps: &[String], arch: &str) -> LinuxSeccomp {
    serde_json::from_value(default_profile_json(caps, arch))
        .unwrap_or_else(|e| panic!("crates/spec/seccomp/default.json does not convert: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Docker's profile format (what `--security-opt seccomp=file.json` sends).

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    #[serde(default)]
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<DockerArch>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    listener_path: String,
    #[serde(default)]
    listener_metadata: String,
    #[serde(default)]
    syscalls: Vec<DockerSyscall>,
}

#[derive(Debug, Deserialize)]
struct DockerArch {
    architecture: String,
    #[serde(default, rename = "subArchitectures")]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: String,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<Value>,
    includes: Option<DockerFilter>,
    excludes: Option<DockerFilter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerFilter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    min_kernel: Option<String>,
}

fn parse_kernel(s: &str) -> Result<(u32, u32), SecurityError> {
    let bad = || SecurityError::SeccompDecode(format!("invalid kernel version: {s:?}"));
    let (a, b) = s.split_once('.').unwrap_or((s, "0"));
    let b = b.split('.').next().unwrap_or("0");
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// Converts a Docker-format profile to the OCI form for a container whose bounding capability
/// set is `caps`, on host `arch` with kernel `kernel` (major, minor; None: every `minKernel`
/// condition counts as met). Returns None when the profile is empty (no default action and no
/// syscalls: Docker then applies no filter).
pub fn docker_profile_json(
    profile: &str,
    caps: &[String],
    arch: &str,
    kernel: Option<(u32, u32)>,
) -> Result<Option<Value>, SecurityError> {
    let p: DockerProfile =
        serde_json::from_str(profile).map_err(|e| SecurityError::SeccompDecode(e.to_string()))?;
    if p.default_action.is_empty() && p.syscalls.is_empty() {
        return Ok(None);
    }
    if !p.architectures.is_empty() && !p.arch_map.is_empty() {
        return Err(SecurityError::SeccompProfile(
            "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
        ));
    }
    let arch = seccomp_arch_name(host_arch(arch)).to_string();
    let mut arches = p.architectures.clone();
    if let Some(native) = native_scmp_arch(&arch) {
        for a in p.arch_map.iter().filter(|a| a.architecture == native) {
            arches.push(a.architecture.clone());
            arches.extend(a.sub_architectures.iter().cloned());
        }
    }
    let at_least = |v: &str| -> Result<bool, SecurityError> {
        let want = parse_kernel(v)?;
        Ok(kernel.is_none_or(|k| k >= want))
    };
    let mut syscalls = Vec::new();
    'calls: for c in &p.syscalls {
        let mut names = c.names.clone();
        if !c.name.is_empty() {
            if !names.is_empty() {
                return Err(SecurityError::SeccompProfile(
                    "use either 'name' or 'names'".into(),
                ));
            }
            names.push(c.name.clone());
        }
        if let Some(x) = &c.excludes {
            if x.arches.contains(&arch) || x.caps.iter().any(|cap| has(caps, cap)) {
                continue 'calls;
            }
            if let Some(k) = &x.min_kernel {
                if kernel.is_some() && at_least(k)? {
                    continue 'calls;
                }
            }
        }
        if let Some(i) = &c.includes {
            if !i.arches.is_empty() && !i.arches.contains(&arch) {
                continue 'calls;
            }
            if !i.caps.iter().all(|cap| has(caps, cap)) {
                continue 'calls;
            }
            if let Some(k) = &i.min_kernel {
                if !at_least(k)? {
                    continue 'calls;
                }
            }
        }
        let mut s = json!({"names": names, "action": c.action});
        if let Some(e) = c.errno_ret {
            s["errnoRet"] = json!(e);
        }
        if !c.args.is_empty() {
            s["args"] = json!(c.args);
        }
        syscalls.push(s);
    }
    let mut out = json!({"defaultAction": p.default_action, "syscalls": syscalls});
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if !arches.is_empty() {
        out["architectures"] = json!(arches);
    }
    if !p.flags.is_empty() {
        out["flags"] = json!(p.flags);
    }
    if !p.listener_path.is_empty() {
        out["listenerPath"] = json!(p.listener_path);
    }
    if !p.listener_metadata.is_empty() {
        out["listenerMetadata"] = json!(p.listener_metadata);
    }
    // Check the values (actions, operators, architectures) now, with a clear error.
    serde_json::from_value::<LinuxSeccomp>(out.clone())
        .map_err(|e| SecurityError::SeccompDecode(e.to_string()))?;
    Ok(Some(out))
}

/// [`docker_profile_json`] as the OCI type.
pub fn docker_profile(
    profile: &str,
    caps: &[String],
    arch: &str,
    kernel: Option<(u32, u32)>,
) -> Result<Option<LinuxSeccomp>, SecurityError> {
    docker_profile_json(profile, caps, arch, kernel)?
        .map(|v| serde_json::from_value(v).map_err(|e| SecurityError::SeccompDecode(e.to_string())))
        .transpose()
}

// ---------------------------------------------------------------------------------------------
// Devices.

/// A host device node to create in the container (`HostConfig.Devices`, or every host device of
/// a privileged container). The engine fills it by stat-ing `path_on_host` (walking it when it
/// is a directory, as dockerd does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// Host path (informational).
    pub path_on_host: String,
    /// Where the node goes in the container.
    pub path_in_container: String,
    /// `'c'` (character) or `'b'` (block).
    pub kind: char,
    /// Device major number.
    pub major: i64,
    /// Device minor number.
    pub minor: i64,
    /// Permission bits of the host node (`st_mode & 0o7777`).
    pub file_mode: u32,
    /// Owner of the host node.
    pub uid: u32,
    /// Group of the host node.
    pub gid: u32,
    /// cgroup permissions (`DeviceMapping.CgroupPermissions`, a combination of r, w, m);
    /// empty means `rwm`.
    pub permissions: String,
}

/// `linux.devices` entry and `linux.resources.devices` allow rule for one host device.
pub fn device_entries(d: &HostDevice) -> Result<(Value, Value), SecurityError> {
    if d.kind != 'c' && d.kind != 'b' {
        return Err(SecurityError::DeviceKind(d.path_on_host.clone()));
    }
    let perms = if d.permissions.is_empty() {
        "rwm"
    } else {
        d.permissions.as_str()
    };
    if !perms.chars().all(|c| "rwm".contains(c)) || perms.len() > 3 {
        return Err(SecurityError::DeviceMode(perms.to_string()));
    }
    let node = json!({
        "path": d.path_in_container,
        "type": d.kind.to_string(),
        "major": d.major,
        "minor": d.minor,
        "fileMode": d.file_mode,
        "uid": d.uid,
        "gid": d.gid,
    });
    let rule = json!({
        "allow": true,
        "type": d.kind.to_string(),
        "major": d.major,
        "minor": d.minor,
        "access": perms,
    });
    Ok((node, rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{ALL_CAPABILITIES, DEFAULT_CAPABILITIES};

    fn caps(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    /// Every rule that could let `name` through (all its rules, with their args).
    fn rules_for<'a>(p: &'a Value, name: &str) -> Vec<&'a Value> {
        p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["names"].as_array().unwrap().iter().any(|n| n == name))
            .collect()
    }

    fn allowed_unconditionally(p: &Value, name: &str) -> bool {
        rules_for(p, name)
            .iter()
            .any(|s| s["action"] == "SCMP_ACT_ALLOW" && s.get("args").is_none())
    }

    #[test]
    fn profile_file_parses_and_is_deny_by_default() {
        let p = default_profile_json(&caps(&DEFAULT_CAPABILITIES), "x86_64");
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], 1);
        assert_eq!(
            p["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let a = default_profile_json(&caps(&DEFAULT_CAPABILITIES), "aarch64");
        assert_eq!(
            a["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        assert!(allowed_unconditionally(&a, "set_tls"));
        assert!(!allowed_unconditionally(&a, "arch_prctl"));
        assert!(allowed_unconditionally(&p, "arch_prctl"));
        // The OCI type accepts it, and no name is listed twice in one rule.
        let s = default_profile(&caps(&ALL_CAPABILITIES), "x86_64");
        for r in s.syscalls().as_ref().unwrap() {
            let mut n = r.names().clone();
            n.sort();
            n.dedup();
            assert_eq!(n.len(), r.names().len(), "{:?}", r.names());
        }
    }

    #[test]
    fn default_blocks_and_allows() {
        let p = default_profile_json(&caps(&DEFAULT_CAPABILITIES), "x86_64");
        for ok in [
            "read",
            "write",
            "openat",
            "execve",
            "mmap",
            "futex",
            "exit_group",
            "chroot",
            "ptrace",
            "setuid",
            "capset",
            "wait4",
            "socketpair",
        ] {
            assert!(allowed_unconditionally(&p, ok), "{ok} should be allowed");
        }
        for blocked in [
            "keyctl",
            "add_key",
            "request_key",
            "mount",
            "umount2",
            "pivot_root",
            "unshare",
            "setns",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "kexec_load",
            "init_module",
            "finit_module",
            "delete_module",
            "reboot",
            "swapon",
            "swapoff",
            "open_by_handle_at",
            "name_to_handle_at",
            "syslog",
            "settimeofday",
            "clock_settime",
            "io_uring_setup",
            "process_vm_readv",
            "mbind",
            "acct",
            "iopl",
            "vhangup",
        ] {
            assert!(
                rules_for(&p, blocked).is_empty(),
                "{blocked} should be blocked"
            );
        }
        // clone only without namespace flags.
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(
            clone[0]["args"],
            json!([{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}])
        );
        // clone3 gives ENOSYS so libcs fall back to clone.
        let c3 = rules_for(&p, "clone3");
        assert_eq!(c3[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(c3[0]["errnoRet"], 38);
        // personality: one rule per allowed value.
        let pers = rules_for(&p, "personality");
        assert_eq!(pers.len(), 5);
        assert!(pers.iter().all(
            |r| r["args"].as_array().unwrap().len() == 1 && r["args"][0]["op"] == "SCMP_CMP_EQ"
        ));
        assert_eq!(rules_for(&p, "socket")[0]["args"][0]["op"], "SCMP_CMP_NE");
    }

    #[test]
    fn capability_rules() {
        let mut c = caps(&DEFAULT_CAPABILITIES);
        c.push("CAP_SYS_ADMIN".into());
        let p = default_profile_json(&c, "x86_64");
        for n in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "pivot_root",
        ] {
            assert!(allowed_unconditionally(&p, n), "{n} with CAP_SYS_ADMIN");
        }
        assert!(rules_for(&p, "clone")
            .iter()
            .all(|r| r.get("args").is_none()));
        assert!(rules_for(&p, "clone3")
            .iter()
            .all(|r| r["action"] == "SCMP_ACT_ALLOW"));
        assert!(rules_for(&p, "keyctl").is_empty(), "keyrings stay blocked");
        assert!(rules_for(&p, "swapon").is_empty());
        for (cap, sc) in [
            ("CAP_SYS_PTRACE", "process_vm_readv"),
            ("CAP_SYS_MODULE", "finit_module"),
            ("CAP_SYS_TIME", "settimeofday"),
            ("CAP_SYS_BOOT", "reboot"),
            ("CAP_SYS_NICE", "mbind"),
            ("CAP_SYSLOG", "syslog"),
            ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
            ("CAP_SYS_RAWIO", "iopl"),
        ] {
            let mut c = caps(&DEFAULT_CAPABILITIES);
            assert!(rules_for(&default_profile_json(&c, "x86_64"), sc).is_empty());
            c.push(cap.into());
            assert!(
                allowed_unconditionally(&default_profile_json(&c, "x86_64"), sc),
                "{sc} with {cap}"
            );
        }
        // Dropping CAP_SYS_CHROOT removes chroot.
        let c: Vec<String> = caps(&DEFAULT_CAPABILITIES)
            .into_iter()
            .filter(|c| c != "CAP_SYS_CHROOT")
            .collect();
        assert!(rules_for(&default_profile_json(&c, "x86_64"), "chroot").is_empty());
    }

    #[test]
    fn security_opts() {
        let o = |l: &[&str]| parse_security_opts(&caps(l));
        assert_eq!(o(&[]).unwrap(), SecurityOptions::default());
        assert!(o(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(o(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert!(o(&["no-new-privileges=1"]).unwrap().no_new_privileges);
        assert!(
            !o(&["no-new-privileges", "no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        assert_eq!(
            o(&["no-new-privileges=maybe"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
        assert_eq!(
            o(&["bogus"]).unwrap_err().to_string(),
            "invalid --security-opt 1: \"bogus\""
        );
        assert_eq!(
            o(&["foo=bar"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"foo=bar\""
        );
        assert_eq!(
            o(&["seccomp=unconfined"]).unwrap().seccomp,
            SeccompChoice::Unconfined
        );
        assert_eq!(
            o(&["seccomp:unconfined"]).unwrap().seccomp,
            SeccompChoice::Unconfined
        );
        assert_eq!(
            o(&["seccomp=builtin"]).unwrap().seccomp,
            SeccompChoice::Default
        );
        assert_eq!(
            o(&[r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","a":"x=y:z"}"#])
                .unwrap()
                .seccomp,
            SeccompChoice::Custom(r#"{"defaultAction":"SCMP_ACT_ALLOW","a":"x=y:z"}"#.into())
        );
        let s = o(&[
            "apparmor=unconfined",
            "label=disable",
            "writable-cgroups=true",
        ])
        .unwrap();
        assert_eq!(check_lsm(&s, false).unwrap(), None);
        assert_eq!(check_lsm(&s, true).unwrap(), Some("unconfined".into()));
        assert_eq!(s.writable_cgroups, Some(true));
        let s = o(&["apparmor=docker-default"]).unwrap();
        assert!(matches!(
            check_lsm(&s, false),
            Err(SecurityError::AppArmorUnsupported(_))
        ));
        assert_eq!(check_lsm(&s, true).unwrap(), Some("docker-default".into()));
        let s = o(&["label=type:svirt_t"]).unwrap();
        assert!(check_lsm(&s, false)
            .unwrap_err()
            .to_string()
            .contains("type:svirt_t"));
        assert_eq!(o(&["disable"]).unwrap().labels, ["disable"]);
    }

    #[test]
    fn docker_format_profile() {
        let prof = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
            ],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "io"},
                {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
            ]
        }"#;
        let d = caps(&DEFAULT_CAPABILITIES);
        let j = docker_profile_json(prof, &d, "x86_64", Some((6, 1)))
            .unwrap()
            .unwrap();
        assert_eq!(
            j["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(j["defaultErrnoRet"], 1);
        let names: Vec<Value> = j["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["names"].clone())
            .collect();
        assert_eq!(
            names,
            [
                json!(["read", "write"]),
                json!(["getpid"]),
                json!(["clone"]),
                json!(["arch_prctl"]),
                json!(["ptrace"]),
                json!(["clone3"])
            ]
        );
        assert_eq!(j["syscalls"][2]["args"][0]["valueTwo"], 0);
        assert_eq!(j["syscalls"][5]["errnoRet"], 38);
        assert!(j["syscalls"][0].get("comment").is_none());
        // With CAP_SYS_ADMIN on arm64 with an old kernel.
        let mut a = d.clone();
        a.push("CAP_SYS_ADMIN".into());
        let j = docker_profile_json(prof, &a, "aarch64", Some((4, 4)))
            .unwrap()
            .unwrap();
        assert_eq!(
            j["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        let names: Vec<Value> = j["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["names"][0].clone())
            .collect();
        assert_eq!(names, [json!("read"), json!("getpid"), json!("mount")]);
        // The typed form.
        let s = docker_profile(prof, &d, "x86_64", None).unwrap().unwrap();
        assert_eq!(s.syscalls().as_ref().unwrap().len(), 6);
        // Errors and the empty profile.
        assert_eq!(docker_profile_json("{}", &d, "x86_64", None).unwrap(), None);
        assert!(matches!(
            docker_profile_json("not json", &d, "x86_64", None),
            Err(SecurityError::SeccompDecode(_))
        ));
        assert!(
            docker_profile_json(r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#, &d, "x86_64", None)
                .unwrap_err()
                .to_string()
                .starts_with("Decoding seccomp profile failed")
        );
        assert!(docker_profile_json(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
            &d, "x86_64", None
        )
        .unwrap_err()
        .to_string()
        .contains("use either 'architectures' or 'archMap'"));
        assert_eq!(
            docker_profile_json(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#,
                &d, "x86_64", None
            )
            .unwrap_err()
            .to_string(),
            "use either 'name' or 'names'"
        );
        let j = docker_profile_json(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"flags":["SECCOMP_FILTER_FLAG_LOG"]}"#,
            &d,
            "x86_64",
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(j["architectures"], json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(j["flags"], json!(["SECCOMP_FILTER_FLAG_LOG"]));
    }

    #[test]
    fn devices() {
        let d = HostDevice {
            path_on_host: "/dev/fuse".into(),
            path_in_container: "/dev/fuse".into(),
            kind: 'c',
            major: 10,
            minor: 229,
            file_mode: 0o666,
            uid: 0,
            gid: 0,
            permissions: "rw".into(),
        };
        let (node, rule) = device_entries(&d).unwrap();
        assert_eq!(
            node,
            json!({"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0})
        );
        assert_eq!(
            rule,
            json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"})
        );
        let mut bad = d.clone();
        bad.permissions = "rwx".into();
        assert_eq!(
            device_entries(&bad).unwrap_err().to_string(),
            "invalid device mode: rwx"
        );
        let mut bad = d.clone();
        bad.kind = 'p';
        assert!(device_entries(&bad).is_err());
        let mut all = d;
        all.permissions.clear();
        assert_eq!(device_entries(&all).unwrap().1["access"], "rwm");
    }
}
