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

/// The ports `ps` shows for a container: (`port/proto`, published `host_port/proto`). Berth has
/// no network endpoints yet, so none (what dockerd shows for `--network none`).
/// The container's ports as dockerd's filters see them (NetworkSettings.Ports of a running
/// container): (container port key, host port key when published).
fn container_ports(rec: &Record) -> Vec<(String, Option<String>)> {
    use crate::record::Status;
    if !matches!(rec.state.status, Status::Running | Status::Paused | Status::Restarting) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (k, binds) in &rec.ports {
        let proto = k.split_once('/').map(|(_, p)| p).unwrap_or("tcp");
        for b in binds.iter().flatten() {
            out.push((k.clone(), Some(format!("{}/{proto}", b.host_port))));
        }
    }
    for k in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
        if !out.iter().any(|(p, _)| p == k) {
            out.push((k.clone(), None));
        }
    }
    out
}

/// Filter names and values checked before any container is looked at (dockerd rejects a bad
/// filter even when nothing would be listed).
fn validate_filters(filters: &BTreeMap<String, Vec<String>>) -> Result<()> {
    for (k, vals) in filters {
        match k.as_str() {
            "id" | "name" | "status" | "exited" | "label" | "ancestor" | "before" | "since"
            | "volume" | "network" | "publish" | "expose" | "health" | "isolation" | "is-task" => {}
            other => return Err(Error::invalid(format!("Invalid filter '{other}'"))),
        }
        if k == "health" {
            if let Some(v) = vals
                .iter()
                .find(|v| !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none"))
            {
                return Err(Error::invalid(format!(
                    "Unrecognised filter value for health: {v}"
                )));
            }
        }
    }
    Ok(())
}

/// Does a container match every `filters` entry (`docker ps --filter`)?
fn matches(
    engine: &Engine,
    all: &[Record],
    rec: &Record,
    filters: &BTreeMap<String, Vec<String>>,
) -> Result<bool> {
    // `before`/`since` name a container (name or id prefix) whose creation time bounds the list.
    let created_of = |v: &str| -> Result<chrono::DateTime<Utc>> {
        let v = v.trim_start_matches('/');
        all.iter()
            .find(|r| r.name == v || r.id.starts_with(v))
            .map(|r| r.created)
            .ok_or_else(|| Error::not_found(format!("No such container: {v}")))
    };
    // `80`, `80/tcp`, `8000-8080/udp` against a port key like `80/tcp`.
    let port_match = |want: &str, key: &str| -> bool {
        let (wp, wproto) = want.split_once('/').unwrap_or((want, "tcp"));
        let (kp, kproto) = key.split_once('/').unwrap_or((key, "tcp"));
        if wproto != kproto {
            return false;
        }
        let Ok(k) = kp.parse::<u32>() else {
            return false;
        };
        match wp.split_once('-') {
            Some((a, b)) => {
                a.parse::<u32>().is_ok_and(|a| a <= k) && b.parse::<u32>().is_ok_and(|b| k <= b)
            }
            None => wp.parse::<u32>() == Ok(k),
        }
    };
    for (k, vals) in filters {
        if vals.is_empty() {
            continue;
        }
        let ok = match k.as_str() {
            "id" => vals.iter().any(|v| rec.id.starts_with(v.as_str())),
            "name" => vals
                .iter()
                .any(|v| rec.name.contains(v.trim_start_matches('/'))),
            "status" => {
                for v in vals {
                    if !matches!(
                        v.as_str(),
                        "created"
                            | "restarting"
                            | "running"
                            | "removing"
                            | "paused"
                            | "exited"
                            | "dead"
                    ) {
                        return Err(Error::invalid(format!("Invalid filter 'status={v}'")));
                    }
                }
                vals.iter().any(|v| v == rec.state.status.as_str())
            }
            "exited" => {
                rec.state.status == Status::Exited
                    && vals
                        .iter()
                        .any(|v| v.parse::<i32>().ok() == Some(rec.state.exit_code))
            }
            "label" => {
                let labels = rec.config.labels.clone().unwrap_or_default();
                vals.iter().all(|v| match v.split_once('=') {
                    Some((lk, lv)) => labels.get(lk).map(|x| x == lv).unwrap_or(false),
                    None => labels.contains_key(v.as_str()),
                })
            }
            "ancestor" => vals
                .iter()
                .any(|v| rec.config.image == *v || rec.image_id.contains(v.as_str())),
            "before" => {
                let mut ok = true;
                for v in vals {
                    ok &= rec.created < created_of(v)?;
                }
                ok
            }
            "since" => {
                let mut ok = true;
                for v in vals {
                    ok &= rec.created > created_of(v)?;
                }
                ok
            }
            "volume" => vals.iter().any(|v| engine.container_uses_volume(rec, v)),
            "network" => {
                let mode = network_mode(rec);
                let mode = if mode == "default" {
                    "bridge".to_string()
                } else {
                    mode
                };
                vals.iter().any(|v| {
                    *v == mode
                        || rec.networks.iter().any(|(name, ep)| {
                            name == v || (!v.is_empty() && ep.network_id.starts_with(v.as_str()))
                        })
                })
            }
            // dockerd matches these against the running container's NetworkSettings.Ports:
            // `expose` the container ports, `publish` the host ports.
            "expose" => vals
                .iter()
                .any(|v| container_ports(rec).iter().any(|(p, _)| port_match(v, p))),
            "publish" => vals.iter().any(|v| {
                container_ports(rec)
                    .iter()
                    .any(|(_, public)| public.as_deref().is_some_and(|h| port_match(v, h)))
            }),
            "health" => {
                for v in vals {
                    if !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none") {
                        return Err(Error::invalid(format!(
                            "Unrecognised filter value for health: {v}"
                        )));
                    }
                }
                let h = rec
                    .state
                    .health
                    .as_ref()
                    .map(|h| h.status.as_str())
                    .unwrap_or("none");
                vals.iter().any(|v| v == h)
            }
            "is-task" => vals.iter().any(|v| v == "false" || v == "0"),
            "isolation" => vals.iter().any(|v| v == "default"),
            other => return Err(Error::invalid(format!("Invalid filter '{other}'"))),
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
        let all_recs = recs.clone();
        validate_filters(filters)?;
        // newest first, as dockerd lists
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let explicit_status = filters
            .get("status")
            .map(|v| !v.is_empty())
            .unwrap_or(false);
        let limit = limit.filter(|l| *l > 0).map(|l| l as usize);
        let mut out = Vec::new();
        for rec in recs {
            if !all && limit.is_none() && !explicit_status && !rec.state.status.is_running() {
                continue;
            }
            if !matches(self, &all_recs, &rec, filters)? {
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
                "Ports": self.port_rows(&rec),
                "Labels": rec.config.labels.clone().unwrap_or_default(),
                "State": rec.state.status.as_str(),
                "Status": rec.status_text(now),
                "HostConfig": {"NetworkMode": network_mode(&rec)},
                "NetworkSettings": {"Networks": self.network_settings(&rec)["Networks"].clone()},
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
            .map(|v| {
                v.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default();
        let mut host_config = serde_json::to_value(&rec.host_config).unwrap_or(json!({}));
        if let Some(o) = host_config.as_object_mut() {
            o.entry("NetworkMode").or_insert(json!("default"));
            if o.get("NetworkMode")
                .map(|v| v.is_null() || v == "")
                .unwrap_or(true)
            {
                o.insert("NetworkMode".into(), json!(network_mode(&rec)));
            }
        }
        let mut v = json!({
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
                "FinishedAt": time_or_zero(s.finished_at),
                "Health": s.health.as_ref().map(|h| h.to_json())
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
            "NetworkSettings": self.network_settings(&rec)
        });
        // dockerd omits State.Health without a healthcheck.
        if let Some(st) = v.get_mut("State").and_then(Value::as_object_mut) {
            if st.get("Health").is_some_and(Value::is_null) {
                st.remove("Health");
            }
        }
        Ok(v).map(|mut v| {
            if _size {
                self.add_container_sizes(&rec, &mut v);
            }
            v
        })
    }
}
