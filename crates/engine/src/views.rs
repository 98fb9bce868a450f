//! JSON views of containers: `GET /containers/json` and `GET /containers/{id}/json`, in
//! dockerd's shapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::record::{Record, Status};
use crate::Engine;

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time_or_zero(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true))
        .unwrap_or_else(|| ZERO_TIME.to_string())
}

fn network_mode(rec: &Record) -> String {
    if rec.host_config.network_mode.is_empty() {
        "default".into()
    } else {
        rec.host_config.network_mode.clone()
    }
}

/// Does a container match every `filters` entry (`docker ps --filter`)?
fn matches(rec: &Record, filters: &BTreeMap<String, Vec<String>>) -> Result<bool> {
    for (k, vals) in filters {
        if vals.is_empty() {
            continue;
        }
        let ok = match k.as_str() {
            "id" => vals.iter().any(|v| rec.id.starts_with(v.as_str())),
            "name" => vals.iter().any(|v| rec.name.contains(v.trim_start_matches('/'))),
            "status" => {
                for v in vals {
                    if !matches!(
                        v.as_str(),
                        "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
                    ) {
                        return Err(Error::invalid(format!(
                            "invalid filter 'status={v}'"
                        )));
                    }
                }
                vals.iter().any(|v| v == rec.state.status.as_str())
            }
            "exited" => {
                rec.state.status == Status::Exited
                    && vals.iter().any(|v| v.parse::<i32>().ok() == Some(rec.state.exit_code))
            }
            "label" => {
                let labels = rec.config.labels.clone().unwrap_or_default();
                vals.iter().all(|v| match v.split_once('=') {
                    Some((lk, lv)) => labels.get(lk).map(|x| x == lv).unwrap_or(false),
                    None => labels.contains_key(v.as_str()),
                })
            }
            "ancestor" => vals.iter().any(|v| {
                rec.config.image == *v || rec.image_id.contains(v.as_str())
            }),
            "before" | "since" | "volume" | "network" | "publish" | "expose" | "health"
            | "isolation" | "is-task" => true,
            other => return Err(Error::invalid(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Engine {
    /// `GET /containers/json`.
    pub fn list_containers(
        self: &Arc<Self>,
        all: bool,
        limit: Option<i64>,
        filters: &BTreeMap<String, Vec<String>>,
        _size: bool,
    ) -> Result<Vec<Value>> {
        let now = Utc::now();
        let mut recs: Vec<Record> = self.all_containers().iter().map(|c| c.snapshot()).collect();
        // newest first, as dockerd lists
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let explicit_status = filters.get("status").map(|v| !v.is_empty()).unwrap_or(false);
        let limit = limit.filter(|l| *l > 0).map(|l| l as usize);
        let mut out = Vec::new();
        for rec in recs {
            if !all && limit.is_none() && !explicit_status && !rec.state.status.is_running() {
                continue;
            }
            if !matches(&rec, filters)? {
                continue;
            }
            let image = rec.config.image.clone();
            out.push(json!({
                "Id": rec.id,
                "Names": [format!("/{}", rec.name)],
                "Image": image,
                "ImageID": rec.image_id,
                "Command": rec.command(),
                "Created": rec.created.timestamp(),
                "Ports": [],
                "Labels": rec.config.labels.clone().unwrap_or_default(),
                "State": rec.state.status.as_str(),
                "Status": rec.status_text(now),
                "HostConfig": {"NetworkMode": network_mode(&rec)},
                "NetworkSettings": {"Networks": {}},
                "Mounts": self.mount_points(&rec).iter().map(|m| m.to_json()).collect::<Vec<_>>()
            }));
            if _size {
                if let Some(row) = out.last_mut() {
                    self.add_container_sizes(&rec, row);
                }
            }
            if let Some(l) = limit {
                if out.len() >= l {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect_container(self: &Arc<Self>, name: &str, _size: bool) -> Result<Value> {
        let c = self.container(name)?;
        let rec = c.snapshot();
        let s = &rec.state;
        let dir = c.dir().to_path_buf();
        let rootfs_lowers = crate::images::lower_dirs_of(&self.images, &rec.image_id)
            .map(|v| v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"))
            .unwrap_or_default();
        let mut host_config = serde_json::to_value(&rec.host_config).unwrap_or(json!({}));
        if let Some(o) = host_config.as_object_mut() {
            o.entry("NetworkMode").or_insert(json!("default"));
            if o.get("NetworkMode").map(|v| v.is_null() || v == "").unwrap_or(true) {
                o.insert("NetworkMode".into(), json!(network_mode(&rec)));
            }
        }
        Ok(json!({
            "Id": rec.id,
            "Created": rec.created.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "Path": rec.path,
            "Args": rec.args,
            "State": {
                "Status": s.status.as_str(),
                "Running": s.status.is_running(),
                "Paused": s.status == Status::Paused,
                "Restarting": s.status == Status::Restarting,
                "OOMKilled": s.oom_killed,
                "Dead": s.status == Status::Dead,
                "Pid": s.pid,
                "ExitCode": s.exit_code,
                "Error": s.error,
                "StartedAt": time_or_zero(s.started_at),
                "FinishedAt": time_or_zero(s.finished_at)
            },
            "Image": rec.image_id,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": crate::logs::inspect_log_path(&rec, c.dir()),
            "Name": format!("/{}", rec.name),
            "RestartCount": rec.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": host_config,
            "GraphDriver": {
                "Data": {
                    "LowerDir": rootfs_lowers,
                    "MergedDir": self.cfg.bundle_dir(&rec.id).join("rootfs"),
                    "UpperDir": dir.join("upper"),
                    "WorkDir": dir.join("work")
                },
                "Name": "overlay2"
            },
            "Mounts": self.mount_points(&rec).iter().map(|m| m.to_json()).collect::<Vec<_>>(),
            "Config": rec.config,
            "NetworkSettings": {
                "Bridge": "",
                "SandboxID": "",
                "SandboxKey": "",
                "Ports": {},
                "HairpinMode": false,
                "LinkLocalIPv6Address": "",
                "LinkLocalIPv6PrefixLen": 0,
                "SecondaryIPAddresses": null,
                "SecondaryIPv6Addresses": null,
                "EndpointID": "",
                "Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "IPAddress": "",
                "IPPrefixLen": 0,
                "IPv6Gateway": "",
                "MacAddress": "",
                "Networks": {}
            }
        }))
        .map(|mut v| {
            if _size {
                self.add_container_sizes(&rec, &mut v);
            }
            v
        })
    }
}
