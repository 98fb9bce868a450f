//! The persisted container record and its lifecycle state machine.

use berth_api_types::{ContainerConfig, HostConfig};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Lifecycle states, as dockerd names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Is a monitored process alive in this state?
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }

    /// Explicit transitions; anything else is a conflict.
    pub fn check(self, to: Status) -> Result<()> {
        use Status::*;
        let ok = matches!(
            (self, to),
            (Created, Running)
                | (Exited, Running)
                | (Running, Exited)
                | (Paused, Exited)
                | (Restarting, Exited)
                | (Running, Paused)
                | (Paused, Running)
                | (Created, Exited)
                | (Created | Exited | Dead, Removing)
                | (Removing, Dead)
        );
        if ok {
            Ok(())
        } else {
            Err(Error::conflict(format!(
                "cannot change container state from {} to {}",
                self.as_str(),
                to.as_str()
            )))
        }
    }
}

/// The state block of `docker inspect`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Present when the container has a healthcheck (crate::health).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            started_at: None,
            finished_at: None,
            health: None,
        }
    }
}

/// Everything persisted about one container (`containers/<id>/config.v2.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// On-disk schema version, for migrations.
    pub schema: u32,
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    pub created: DateTime<Utc>,
    /// `sha256:<hex>`.
    pub image_id: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    pub restart_count: u32,
    /// Set by `docker stop`, cleared by a user `start`: restart policies leave the container
    /// down (crate::restart).
    #[serde(default)]
    pub manually_stopped: bool,
    /// The last restart-policy backoff delay.
    #[serde(default)]
    pub restart_delay_ms: u64,
    /// Anonymous volumes: mount destination -> volume name (crate::volumes).
    #[serde(default)]
    pub anon_volumes: std::collections::BTreeMap<String, String>,
    /// Endpoints by network name (crate::network); addresses are filled while running.
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, berth_api_types::EndpointSettings>,
    /// Published ports as bound while running (ephemeral host ports resolved).
    #[serde(default)]
    pub ports: berth_api_types::PortMap,
}

pub const SCHEMA: u32 = 1;

impl Record {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// `Command` as `docker ps` shows it: arguments containing spaces in single quotes,
    /// as dockerd does.
    pub fn command(&self) -> String {
        if self.args.is_empty() {
            return self.path.clone();
        }
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| {
                if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            })
            .collect();
        format!("{} {}", self.path, args.join(" "))
    }

    /// The human status column of `docker ps`.
    pub fn status_text(&self, now: DateTime<Utc>) -> String {
        let s = &self.state;
        match s.status {
            Status::Created => "Created".into(),
            Status::Running | Status::Paused => {
                let up = human_duration(now - s.started_at.unwrap_or(now));
                if s.status == Status::Paused {
                    format!("Up {up} (Paused)")
                } else {
                    match s.health.as_ref().map(|h| h.status.as_str()) {
                        Some("starting") => format!("Up {up} (health: starting)"),
                        Some(h) if !h.is_empty() => format!("Up {up} ({h})"),
                        _ => format!("Up {up}"),
                    }
                }
            }
            Status::Restarting => format!(
                "Restarting ({}) {} ago",
                s.exit_code,
                human_duration(now - s.finished_at.unwrap_or(now))
            ),
            Status::Removing => "Removal In Progress".into(),
            Status::Dead => "Dead".into(),
            Status::Exited => match s.finished_at {
                Some(f) => format!("Exited ({}) {} ago", s.exit_code, human_duration(now - f)),
                None => format!("Exited ({})", s.exit_code),
            },
        }
    }
}

/// docker's `units.HumanDuration` (shared with the CLI through api-types).
pub fn human_duration(d: chrono::Duration) -> String {
    berth_api_types::humanize::human_duration(d.num_milliseconds() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn durations_like_docker() {
        assert_eq!(
            human_duration(Duration::milliseconds(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::seconds(1)), "1 second");
        assert_eq!(human_duration(Duration::seconds(59)), "59 seconds");
        assert_eq!(human_duration(Duration::seconds(61)), "About a minute");
        assert_eq!(human_duration(Duration::minutes(5)), "5 minutes");
        assert_eq!(human_duration(Duration::minutes(61)), "About an hour");
        assert_eq!(human_duration(Duration::hours(5)), "5 hours");
        assert_eq!(human_duration(Duration::days(3)), "3 days");
    }

    #[test]
    fn transitions() {
        assert!(Status::Created.check(Status::Running).is_ok());
        assert!(Status::Exited.check(Status::Running).is_ok());
        assert!(Status::Running.check(Status::Removing).is_err());
        assert!(Status::Removing.check(Status::Running).is_err());
    }
}
