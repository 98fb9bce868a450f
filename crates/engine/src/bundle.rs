//! The OCI bundle of a container: `config.json` generated from the record by the pure
//! `berth_spec::oci` generator, with the paths the engine owns.

use std::path::Path;

use berth_spec::merge::{additional_groups, daemon_env, resolve_user, Process};
use berth_spec::oci::{generate, RunInput};

use crate::error::{Error, Result};
use crate::record::Record;
use crate::Engine;

impl Engine {
    pub(crate) fn generate_spec(&self, rec: &Record, rootfs: &Path) -> Result<serde_json::Value> {
        let dir = self.cfg.container_dir(&rec.id);
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).ok();
        let group = std::fs::read_to_string(rootfs.join("etc/group")).ok();
        let user = resolve_user(&rec.config.user, passwd.as_deref(), group.as_deref())
            .map_err(|e| Error::invalid(e.to_string()))?;
        let group_add = rec.host_config.group_add.clone().unwrap_or_default();
        let group_add_gids =
            additional_groups(&group_add, group.as_deref()).map_err(|e| Error::invalid(e.to_string()))?;
        let cfg = &rec.config;
        let mut env = daemon_env(cfg.env.as_deref().unwrap_or(&[]), &cfg.hostname, cfg.tty);
        // As runc does: HOME from the user's passwd entry when the environment has none.
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", user.home));
        }
        let process = Process {
            path: rec.path.clone(),
            args: rec.args.clone(),
            env,
            cwd: if cfg.working_dir.is_empty() { "/".into() } else { cfg.working_dir.clone() },
            user: cfg.user.clone(),
        };
        let input = RunInput {
            id: rec.id.clone(),
            rootfs: rootfs.display().to_string(),
            process,
            user,
            group_add_gids,
            hostname: cfg.hostname.clone(),
            domainname: cfg.domainname.clone(),
            tty: cfg.tty,
            host_config: rec.host_config.clone(),
            resolv_conf_path: Some(dir.join("resolv.conf").display().to_string()),
            hostname_path: Some(dir.join("hostname").display().to_string()),
            hosts_path: Some(dir.join("hosts").display().to_string()),
            cgroup_v2: self.cgroup_layout == crate::checks::CgroupLayout::V2,
            ..Default::default()
        };
        let spec = generate(&input).map_err(|e| Error::invalid(e.to_string()))?;
        let mut spec = serde_json::to_value(&spec).map_err(|e| Error::internal(e.to_string()))?;
        if let Some(bounding) = host_bounding_set() {
            restrict_capabilities(&mut spec, bounding);
        }
        Ok(spec)
    }
}

/// The daemon's own capability bounding set (`CapBnd` of /proc/self/status).
fn host_bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Drops every capability the host cannot grant from every set of the process.
///
/// Deliberate difference from dockerd: with `--privileged` (or `--cap-add ALL`) on a host
/// whose bounding set lacks a capability (this project's CI hosts lack CAP_SYS_RESOURCE),
/// runc fails with `capset: operation not permitted`; Berth grants what the host has.
fn restrict_capabilities(spec: &mut serde_json::Value, bounding: u64) {
    let Some(caps) = spec.pointer_mut("/process/capabilities").and_then(|c| c.as_object_mut()) else {
        return;
    };
    let allowed = |name: &str| {
        berth_spec::oci::ALL_CAPABILITIES
            .iter()
            .position(|c| *c == name)
            .map(|bit| bit >= 64 || bounding & (1u64 << bit) != 0)
            .unwrap_or(true)
    };
    for set in caps.values_mut() {
        if let Some(list) = set.as_array_mut() {
            list.retain(|c| c.as_str().map(allowed).unwrap_or(true));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn capabilities_outside_the_bounding_set_are_dropped() {
        let mut spec = serde_json::json!({"process": {"capabilities": {
            "bounding": ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_KILL"],
            "effective": ["CAP_SYS_RESOURCE"]
        }}});
        // every bit except CAP_SYS_RESOURCE (24)
        super::restrict_capabilities(&mut spec, !(1u64 << 24));
        assert_eq!(spec["process"]["capabilities"]["bounding"], serde_json::json!(["CAP_CHOWN", "CAP_KILL"]));
        assert_eq!(spec["process"]["capabilities"]["effective"], serde_json::json!([]));
    }
}
