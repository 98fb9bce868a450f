//! Healthchecks: the image's HEALTHCHECK or `--health-*` options, probed through the exec path
//! by a timer task per running container (no OS thread), with dockerd's state machine:
//! `starting` until the first success (failures inside the start period do not count), then
//! `healthy`, or `unhealthy` after `retries` consecutive failures. The last 5 probes are kept
//! in `State.Health.Log`; every status change emits `health_status: <status>`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::containers::Container;
use crate::record::Status;
use crate::Engine;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
/// dockerd keeps this much probe output.
const MAX_OUTPUT: usize = 4096;
const MAX_LOG: usize = 5;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthLog {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub exit_code: i32,
    pub output: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLog>,
}

impl Health {
    pub fn to_json(&self) -> Value {
        json!({
            "Status": self.status,
            "FailingStreak": self.failing_streak,
            "Log": self.log.iter().map(|l| json!({
                "Start": l.start.to_rfc3339_opts(SecondsFormat::Nanos, true),
                "End": l.end.to_rfc3339_opts(SecondsFormat::Nanos, true),
                "ExitCode": l.exit_code,
                "Output": l.output,
            })).collect::<Vec<_>>(),
        })
    }
}

struct Probe {
    cmd: Vec<String>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    start_interval: Duration,
    retries: u32,
}

fn dur(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        default
    }
}

fn probe_of(rec: &crate::record::Record) -> Option<Probe> {
    let h = rec.config.healthcheck.as_ref()?;
    let test = h.test.as_ref()?;
    let cmd = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        _ => return None, // NONE, or inherit with nothing to inherit
    };
    if cmd.is_empty() {
        return None;
    }
    Some(Probe {
        cmd,
        interval: dur(h.interval, DEFAULT_INTERVAL),
        timeout: dur(h.timeout, DEFAULT_TIMEOUT),
        start_period: dur(h.start_period, Duration::ZERO),
        start_interval: dur(h.start_interval, DEFAULT_START_INTERVAL),
        retries: if h.retries > 0 {
            h.retries as u32
        } else {
            DEFAULT_RETRIES
        },
    })
}

impl Engine {
    /// Starts the health monitor of a container that just started (or was re-attached).
    pub(crate) fn start_health_monitor(self: &Arc<Self>, c: &Arc<Container>) {
        let rec = c.snapshot();
        let Some(p) = probe_of(&rec) else { return };
        let _ = c.update(|r| {
            r.state.health = Some(Health {
                status: "starting".into(),
                failing_streak: 0,
                log: Vec::new(),
            })
        });
        let me = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let mut life = c.life.subscribe();
            let exits0 = life.borrow().exits;
            let started = tokio::time::Instant::now();
            loop {
                let in_start = started.elapsed() < p.start_period;
                let wait = if in_start {
                    p.start_interval.min(p.interval)
                } else {
                    p.interval
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = life.wait_for(|l| l.exits != exits0 || l.removed) => break,
                }
                let rec = c.snapshot();
                if rec.state.status != Status::Running {
                    if rec.state.status == Status::Paused {
                        continue;
                    }
                    break;
                }
                let start = Utc::now();
                let (code, output) = me.run_probe(&rec.id, &p).await;
                let end = Utc::now();
                let in_start = started.elapsed() < p.start_period;
                let mut changed = None;
                let _ = c.update(|r| {
                    let h = r.state.health.get_or_insert_with(Default::default);
                    let before = h.status.clone();
                    if code == 0 {
                        h.failing_streak = 0;
                        h.status = "healthy".into();
                    } else if !(in_start && h.status == "starting") {
                        h.failing_streak += 1;
                        if h.failing_streak >= p.retries {
                            h.status = "unhealthy".into();
                        }
                    }
                    h.log.push(HealthLog {
                        start,
                        end,
                        exit_code: code,
                        output,
                    });
                    let n = h.log.len();
                    if n > MAX_LOG {
                        h.log.drain(..n - MAX_LOG);
                    }
                    if h.status != before {
                        changed = Some(h.status.clone());
                    }
                });
                if let Some(s) = changed {
                    me.emit(&format!("health_status: {s}"), &c.snapshot(), &[]);
                }
            }
        });
    }

    /// One probe: the command through the exec path, output capped, killed at the timeout
    /// (exit code -1 and dockerd's message then).
    async fn run_probe(&self, id: &str, p: &Probe) -> (i32, String) {
        let cfg = berth_api_types::ExecConfig {
            attach_stdout: true,
            attach_stderr: true,
            cmd: Some(p.cmd.clone()),
            ..Default::default()
        };
        let exec_id = match self.exec_create(id, cfg) {
            Ok(e) => e,
            Err(e) => return (-1, e.message),
        };
        let res = async {
            let mut io = match self.exec_start(&exec_id).await {
                Ok(io) => io,
                Err(e) => return (-1, e.message),
            };
            let mut out = Vec::new();
            let mut err = Vec::new();
            let (mut so, mut se) = (io.stdout.take(), io.stderr.take());
            let read_all = async {
                let a = async {
                    if let Some(r) = so.as_mut() {
                        let _ = r.read_to_end(&mut out).await;
                    }
                };
                let b = async {
                    if let Some(r) = se.as_mut() {
                        let _ = r.read_to_end(&mut err).await;
                    }
                };
                tokio::join!(a, b);
            };
            match tokio::time::timeout(p.timeout, read_all).await {
                Ok(()) => {
                    let (code, failure) = io.wait().await;
                    out.extend_from_slice(&err);
                    let mut text =
                        failure.unwrap_or_else(|| String::from_utf8_lossy(&out).into_owned());
                    if text.len() > MAX_OUTPUT {
                        let mut cut = MAX_OUTPUT;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.truncate(cut);
                    }
                    (code, text)
                }
                Err(_) => {
                    io.kill();
                    (
                        -1,
                        format!("Health check exceeded timeout ({:?})", p.timeout),
                    )
                }
            }
        }
        .await;
        self.execs.lock().expect("lock").remove(&exec_id);
        res
    }
}
