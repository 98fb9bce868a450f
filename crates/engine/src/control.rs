//! Operations carried out by the `berth-runtime` command line on a running container:
//! pause/unpause (freezer), top (processes of the container's cgroup), update (limits).

use std::sync::Arc;

use berth_api_types::HostConfig;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::record::Status;
use crate::Engine;

impl Engine {
    /// Runs `berth-runtime --root <runtime root> <args>`; Err with its stderr on failure.
    pub(crate) async fn runtime(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = tokio::process::Command::new(&self.cfg.runtime_bin)
            .arg("--root")
            .arg(self.cfg.runtime_root())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| {
                Error::internal(format!(
                    "cannot run {}: {e}",
                    self.cfg.runtime_bin.display()
                ))
            })?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(Error::internal(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }

    /// `POST /containers/{id}/pause`.
    pub async fn pause_container(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.container(name)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        match rec.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::conflict(format!(
                    "Container {} is already paused",
                    rec.id
                )))
            }
            _ => {
                return Err(Error::conflict(format!(
                    "Container {} is not running",
                    rec.id
                )))
            }
        }
        self.runtime(&["pause", &rec.id]).await?;
        c.update(|r| r.state.status = Status::Paused)?;
        self.emit("pause", &rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn unpause_container(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.container(name)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        if rec.state.status != Status::Paused {
            return Err(Error::conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        self.runtime(&["resume", &rec.id]).await?;
        c.update(|r| {
            if r.state.status == Status::Paused {
                r.state.status = Status::Running;
            }
        })?;
        self.emit("unpause", &rec, &[]);
        Ok(())
    }

    /// Thaws a paused container so that signals reach it (stop, kill, rm -f).
    pub(crate) async fn thaw_if_paused(&self, id: &str) {
        if let Ok(c) = self.container(id) {
            if c.snapshot().state.status == Status::Paused {
                let _ = self.runtime(&["resume", id]).await;
                let _ = c.update(|r| {
                    if r.state.status == Status::Paused {
                        r.state.status = Status::Running;
                    }
                });
            }
        }
    }

    /// `GET /containers/{id}/top?ps_args=`: the host's `ps` filtered to the container's pids,
    /// as dockerd does it.
    pub async fn top_container(
        self: &Arc<Self>,
        name: &str,
        ps_args: Option<&str>,
    ) -> Result<Value> {
        let c = self.container(name)?;
        let rec = c.snapshot();
        if !rec.state.status.is_running() {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let out = self.runtime(&["ps", "--format", "json", &rec.id]).await?;
        let pids: Vec<i64> = serde_json::from_slice(&out)
            .map_err(|e| Error::internal(format!("berth-runtime ps: {e}")))?;
        let args: Vec<String> = match ps_args.filter(|s| !s.trim().is_empty()) {
            Some(a) => a.split_whitespace().map(str::to_string).collect(),
            None => vec!["-ef".into()],
        };
        let ps = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| Error::internal(format!("cannot run ps: {e}")))?;
        if !ps.status.success() {
            return Err(Error::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&ps.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&ps.stdout), &pids)
    }

    /// `POST /containers/{id}/update`: new limits (applied live by the runtime when the
    /// container runs) and restart policy.
    pub async fn update_container(self: &Arc<Self>, name: &str, body: &Value) -> Result<Value> {
        let c = self.container(name)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        let patch: HostConfig = serde_json::from_value(body.clone())
            .map_err(|e| Error::invalid(format!("invalid update: {e}")))?;
        let has = |k: &str| body.get(k).map(|v| !v.is_null()).unwrap_or(false);
        let mut hc = rec.host_config.clone();
        if has("Memory") {
            hc.memory = patch.memory;
        }
        if has("MemorySwap") {
            hc.memory_swap = patch.memory_swap;
        }
        if has("MemoryReservation") {
            hc.memory_reservation = patch.memory_reservation;
        }
        if has("NanoCpus") {
            hc.nano_cpus = patch.nano_cpus;
        }
        if has("CpuShares") {
            hc.cpu_shares = patch.cpu_shares;
        }
        if has("CpuQuota") {
            hc.cpu_quota = patch.cpu_quota;
        }
        if has("CpuPeriod") {
            hc.cpu_period = patch.cpu_period;
        }
        if has("CpusetCpus") {
            hc.cpuset_cpus = patch.cpuset_cpus.clone();
        }
        if has("CpusetMems") {
            hc.cpuset_mems = patch.cpuset_mems.clone();
        }
        if has("PidsLimit") {
            hc.pids_limit = patch.pids_limit;
        }
        if has("RestartPolicy") {
            hc.restart_policy = patch.restart_policy.clone();
        }
        if rec.state.status.is_running() {
            let mut res = serde_json::Map::new();
            let mut mem = serde_json::Map::new();
            if has("Memory") && hc.memory > 0 {
                mem.insert("limit".into(), json!(hc.memory));
            }
            if has("MemorySwap") && hc.memory_swap != 0 {
                mem.insert("swap".into(), json!(hc.memory_swap));
            }
            if has("MemoryReservation") && hc.memory_reservation > 0 {
                mem.insert("reservation".into(), json!(hc.memory_reservation));
            }
            if !mem.is_empty() {
                res.insert("memory".into(), Value::Object(mem));
            }
            let mut cpu = serde_json::Map::new();
            if has("NanoCpus") && hc.nano_cpus > 0 {
                cpu.insert("period".into(), json!(100_000));
                cpu.insert("quota".into(), json!(hc.nano_cpus / 10_000));
            }
            if has("CpuQuota") && hc.cpu_quota != 0 {
                cpu.insert("quota".into(), json!(hc.cpu_quota));
            }
            if has("CpuPeriod") && hc.cpu_period != 0 {
                cpu.insert("period".into(), json!(hc.cpu_period));
            }
            if has("CpuShares") && hc.cpu_shares != 0 {
                cpu.insert("shares".into(), json!(hc.cpu_shares));
            }
            if has("CpusetCpus") && !hc.cpuset_cpus.is_empty() {
                cpu.insert("cpus".into(), json!(hc.cpuset_cpus));
            }
            if has("CpusetMems") && !hc.cpuset_mems.is_empty() {
                cpu.insert("mems".into(), json!(hc.cpuset_mems));
            }
            if !cpu.is_empty() {
                res.insert("cpu".into(), Value::Object(cpu));
            }
            if has("PidsLimit") {
                if let Some(p) = hc.pids_limit.filter(|p| *p != 0) {
                    res.insert("pids".into(), json!({"limit": p}));
                }
            }
            if !res.is_empty() {
                let file = self.cfg.bundle_dir(&rec.id).join("update.json");
                crate::persist::write_json(&file, &Value::Object(res))?;
                let r = self
                    .runtime(&["update", "-r", &file.display().to_string(), &rec.id])
                    .await;
                let _ = std::fs::remove_file(&file);
                r.map_err(|e| {
                    Error::invalid(format!("Cannot update container {}: {}", rec.id, e.message))
                })?;
            }
        }
        c.update(|r| r.host_config = hc)?;
        Ok(json!({"Warnings": null}))
    }
}

/// Keeps the rows of `ps` output whose PID column is one of `pids`.
fn parse_ps(output: &str, pids: &[i64]) -> Result<Value> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| Error::internal("Couldn't find PID field in ps output"))?;
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i64>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) keeps its spaces.
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ps_rows_are_filtered_by_pid() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 10:00 ? 00:00:00 sleep 100\nroot 11 1 0 10:00 ? 00:00:00 other thing\n";
        let v = super::parse_ps(out, &[10]).unwrap();
        assert_eq!(v["Processes"][0][7], "sleep 100");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
        assert_eq!(v["Titles"][1], "PID");
        assert!(super::parse_ps("A B\n", &[]).is_err());
    }
}
