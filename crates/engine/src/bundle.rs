//! The OCI bundle of a container: `config.json` generated from the record by the pure
//! `berth_spec::oci` generator, with the paths the engine owns.

use std::path::Path;

use berth_spec::merge::{additional_groups, daemon_env, resolve_user, Process};
use berth_spec::oci::{generate, RunInput};

use crate::error::{Error, Result};
use crate::record::Record;
use crate::Engine;

impl Engine {
    pub(crate) fn generate_spec(
        &self,
        rec: &Record,
        rootfs: &Path,
        netns: Option<&Path>,
    ) -> Result<serde_json::Value> {
        let dir = self.cfg.container_dir(&rec.id);
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).ok();
        let group = std::fs::read_to_string(rootfs.join("etc/group")).ok();
        let user = resolve_user(&rec.config.user, passwd.as_deref(), group.as_deref())
            .map_err(|e| Error::invalid(e.to_string()))?;
        let group_add = rec.host_config.group_add.clone().unwrap_or_default();
        let group_add_gids = additional_groups(&group_add, group.as_deref())
            .map_err(|e| Error::invalid(e.to_string()))?;
        let cfg = &rec.config;
        let mut env = daemon_env(cfg.env.as_deref().unwrap_or(&[]), &cfg.hostname, cfg.tty);
        // `--link` variables come before the container's own (which win), as in dockerd.
        let links = self.link_env(rec);
        if !links.is_empty() {
            let own: Vec<String> = env.drain(..).collect();
            env = links;
            env.extend(own);
        }
        // As runc does: HOME from the user's passwd entry when the environment has none.
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", user.home));
        }
        let process = Process {
            path: rec.path.clone(),
            args: rec.args.clone(),
            env,
            cwd: if cfg.working_dir.is_empty() {
                "/".into()
            } else {
                cfg.working_dir.clone()
            },
            user: cfg.user.clone(),
        };
        let (volume_paths, extra_binds) = self.resolve_mounts(rec)?;
        let input = RunInput {
            id: rec.id.clone(),
            rootfs: rootfs.display().to_string(),
            process,
            user,
            group_add_gids,
            hostname: cfg.hostname.clone(),
            domainname: cfg.domainname.clone(),
            tty: cfg.tty,
            host_config: {
                let mut hc = rec.host_config.clone();
                hc.binds.get_or_insert_with(Vec::new).extend(extra_binds);
                if hc.binds.as_ref().is_some_and(|b| b.is_empty()) {
                    hc.binds = None;
                }
                hc
            },
            volume_paths,
            resolv_conf_path: Some(dir.join("resolv.conf").display().to_string()),
            hostname_path: Some(dir.join("hostname").display().to_string()),
            hosts_path: Some(dir.join("hosts").display().to_string()),
            cgroup_v2: self.cgroup_layout == crate::checks::CgroupLayout::V2,
            host_devices: host_devices(&rec.host_config)?,
            block_devices: block_devices(&rec.host_config),
            network: match netns {
                Some(p) => berth_spec::oci::NamespaceSource::Path(p.display().to_string()),
                None => berth_spec::oci::NamespaceSource::New,
            },
            ..Default::default()
        };
        let spec = generate(&input).map_err(|e| Error::invalid(e.to_string()))?;
        let mut spec = serde_json::to_value(&spec).map_err(|e| Error::internal(e.to_string()))?;
        if let Some(bounding) = host_bounding_set() {
            restrict_capabilities(&mut spec, bounding);
        }
        if rec.host_config.init == Some(true) {
            // berth-runtime keeps the container's init as a reaping PID 1 (`--init`).
            // (berth_runtime_lib::reaper::INIT_ANNOTATION)
            spec["annotations"]["org.berth.init"] = serde_json::json!("true");
        }
        Ok(spec)
    }
}

/// `(major, minor)` of each block device the blkio settings name; a path that is not a
/// block device is left out, so the generator reports it by name.
fn block_devices(
    hc: &berth_api_types::HostConfig,
) -> std::collections::BTreeMap<String, (i64, i64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    berth_spec::oci::block_device_paths(hc)
        .into_iter()
        .filter_map(|p| {
            let md = std::fs::metadata(&p).ok()?;
            md.file_type().is_block_device().then(|| {
                let rdev = md.rdev();
                (
                    p,
                    (
                        nix::sys::stat::major(rdev) as i64,
                        nix::sys::stat::minor(rdev) as i64,
                    ),
                )
            })
        })
        .collect()
}

/// Host device nodes for `--device` (a node or a directory of nodes) and, for privileged
/// containers, every node under the host's /dev (as dockerd does).
fn host_devices(hc: &berth_api_types::HostConfig) -> Result<Vec<berth_spec::security::HostDevice>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    fn walk(
        host: &Path,
        cont: &Path,
        perms: &str,
        out: &mut Vec<berth_spec::security::HostDevice>,
        depth: u32,
    ) {
        let Ok(md) = std::fs::symlink_metadata(host) else {
            return;
        };
        let ft = md.file_type();
        if ft.is_dir() {
            if depth > 4 {
                return;
            }
            let name = host.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // pseudo-filesystems the container mounts itself
            if depth > 0 && matches!(name, "pts" | "shm" | "mqueue") {
                return;
            }
            if let Ok(rd) = std::fs::read_dir(host) {
                for e in rd.flatten() {
                    walk(&e.path(), &cont.join(e.file_name()), perms, out, depth + 1);
                }
            }
            return;
        }
        let kind = if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else {
            return;
        };
        let rdev = md.rdev();
        out.push(berth_spec::security::HostDevice {
            path_on_host: host.display().to_string(),
            path_in_container: cont.display().to_string(),
            kind,
            major: nix::sys::stat::major(rdev) as i64,
            minor: nix::sys::stat::minor(rdev) as i64,
            file_mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            permissions: perms.to_string(),
        });
    }
    let mut out = Vec::new();
    if hc.privileged {
        walk(Path::new("/dev"), Path::new("/dev"), "rwm", &mut out, 0);
        // the container's own console and ptmx come from its devpts
        out.retain(|d| {
            !matches!(
                d.path_in_container.as_str(),
                "/dev/console" | "/dev/ptmx" | "/dev/tty"
            )
        });
    }
    for d in hc.devices.clone().unwrap_or_default() {
        let host = Path::new(&d.path_on_host);
        if !host.exists() {
            return Err(Error::invalid(format!(
                "error gathering device information while adding custom device \"{}\": no such file or directory",
                d.path_on_host
            )));
        }
        let cont = if d.path_in_container.is_empty() {
            host
        } else {
            Path::new(&d.path_in_container)
        };
        walk(host, cont, &d.cgroup_permissions, &mut out, 0);
    }
    Ok(out)
}

/// The daemon's own capability bounding set (`CapBnd` of /proc/self/status).
fn host_bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Drops every capability the host cannot grant from every set of the process.
///
/// Deliberate difference from dockerd: with `--privileged` (or `--cap-add ALL`) on a host
/// whose bounding set lacks a capability (this project's CI hosts lack CAP_SYS_RESOURCE),
/// runc fails with `capset: operation not permitted`; Berth grants what the host has.
fn restrict_capabilities(spec: &mut serde_json::Value, bounding: u64) {
    let Some(caps) = spec
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
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
        assert_eq!(
            spec["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_CHOWN", "CAP_KILL"])
        );
        assert_eq!(
            spec["process"]["capabilities"]["effective"],
            serde_json::json!([])
        );
    }
}
