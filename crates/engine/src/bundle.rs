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
        serde_json::to_value(&spec).map_err(|e| Error::internal(e.to_string()))
    }
}
