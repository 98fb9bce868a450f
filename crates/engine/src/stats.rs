//! `docker stats`: cgroup figures from `berth-runtime events --stats` (one sample per call),
//! shaped exactly as dockerd's stats JSON so the CLI's CPU% and memory computations work.

use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::error::Result;
use crate::Engine;

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Host CPU time in nanoseconds (sum of the first line of /proc/stat), as dockerd computes
/// `system_cpu_usage`.
fn system_cpu_usage() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let jiffies: u64 = stat
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    jiffies * (1_000_000_000 / 100)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// One `cpu_stats` block from a runtime stats sample.
fn cpu_block(data: &Value, online: usize) -> Value {
    let usage = &data["cpu"]["usage"];
    let thr = &data["cpu"]["throttling"];
    json!({
        "cpu_usage": {
            "total_usage": usage["total"].as_u64().unwrap_or(0),
            "percpu_usage": usage["percpu"].clone(),
            "usage_in_kernelmode": usage["kernel"].as_u64().unwrap_or(0),
            "usage_in_usermode": usage["user"].as_u64().unwrap_or(0)
        },
        "system_cpu_usage": system_cpu_usage(),
        "online_cpus": online,
        "throttling_data": {
            "periods": thr["periods"].as_u64().unwrap_or(0),
            "throttled_periods": thr["throttledPeriods"].as_u64().unwrap_or(0),
            "throttled_time": thr["throttledTime"].as_u64().unwrap_or(0)
        }
    })
}

fn zero_cpu() -> Value {
    json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
           "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})
}

impl Engine {
    async fn stats_sample(&self, id: &str) -> Option<Value> {
        let out = self.runtime(&["events", "--stats", id]).await.ok()?;
        let v: Value = serde_json::from_slice(&out).ok()?;
        Some(v.get("data")?.clone())
    }

    /// Builds one dockerd stats object from a sample and the previous one.
    fn stats_object(
        &self,
        id: &str,
        name: &str,
        cur: &Value,
        pre: Option<(&Value, &str)>,
    ) -> Value {
        let online = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let mem = &cur["memory"];
        let limit = mem["usage"]["limit"]
            .as_u64()
            .unwrap_or(u64::MAX)
            .min(host_memory());
        let (precpu, preread) = match pre {
            Some((p, t)) => (cpu_block(p, online), t.to_string()),
            None => (zero_cpu(), ZERO_TIME.to_string()),
        };
        let mut pids = json!({"current": cur["pids"]["current"].as_u64().unwrap_or(0)});
        if let Some(l) = cur["pids"]["limit"].as_u64().filter(|l| *l > 0) {
            pids["limit"] = json!(l);
        }
        json!({
            "read": Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
            "preread": preread,
            "pids_stats": pids,
            "blkio_stats": {
                "io_service_bytes_recursive": null, "io_serviced_recursive": null,
                "io_queue_recursive": null, "io_service_time_recursive": null,
                "io_wait_time_recursive": null, "io_merged_recursive": null,
                "io_time_recursive": null, "sectors_recursive": null
            },
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu_block(cur, online),
            "precpu_stats": precpu,
            "memory_stats": {
                "usage": mem["usage"]["usage"].as_u64().unwrap_or(0),
                "max_usage": mem["usage"]["max"].as_u64().unwrap_or(0),
                "stats": mem["raw"].clone(),
                "limit": limit
            },
            "name": format!("/{name}"),
            "id": id
        })
    }

    /// `GET /containers/{id}/stats`: a stream of samples (one per second) until the
    /// container stops, or a single object (`stream=0`, with `precpu_stats` from a sample
    /// taken just before unless `one-shot`).
    pub async fn container_stats(
        self: &Arc<Self>,
        name: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<Value>> {
        let c = self.container(name)?;
        let rec = c.snapshot();
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let me = self.clone();
        if !rec.state.status.is_running() {
            // dockerd answers a stopped container with an all-zero sample.
            let v = json!({
                "read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {}, "blkio_stats": {},
                "num_procs": 0, "storage_stats": {}, "cpu_stats": zero_cpu(),
                "precpu_stats": zero_cpu(), "memory_stats": {},
                "name": format!("/{}", rec.name), "id": rec.id
            });
            let _ = tx.send(v).await;
            return Ok(rx);
        }
        let life = c.lifecycle();
        tokio::spawn(async move {
            let mut prev: Option<(Value, String)> = None;
            if !stream && !one_shot {
                if let Some(s) = me.stats_sample(&rec.id).await {
                    prev = Some((s, Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)));
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            loop {
                let Some(cur) = me.stats_sample(&rec.id).await else {
                    break;
                };
                let obj = me.stats_object(
                    &rec.id,
                    &rec.name,
                    &cur,
                    prev.as_ref().map(|(v, t)| (v, t.as_str())),
                );
                let read = obj["read"].as_str().unwrap_or(ZERO_TIME).to_string();
                if tx.send(obj).await.is_err() || !stream {
                    break;
                }
                prev = Some((cur, read));
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                if !life.borrow().running {
                    break;
                }
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn system_cpu_usage_is_positive_and_grows() {
        let a = super::system_cpu_usage();
        assert!(a > 0);
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(super::system_cpu_usage() >= a);
    }

    #[test]
    fn zero_time_shape() {
        assert_eq!(super::zero_cpu()["cpu_usage"]["total_usage"], 0);
    }
}
