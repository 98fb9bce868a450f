//! Persistent container state (`<root>/<id>/state.json`) and status detection.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Container status, as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        })
    }
}

/// runc's state JSON (`runc state <id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// Init pid in the caller's PID namespace; 0 once stopped.
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// What is persisted: the public state plus what we need to manage the container later.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Persisted {
    #[serde(flatten)]
    pub state: State,
    /// Start time of the init process (field 22 of /proc/<pid>/stat), to detect pid reuse.
    pub init_start_time: u64,
    /// Absolute cgroup directories of the container, one per hierarchy.
    pub cgroup_paths: Vec<PathBuf>,
}

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const FIFO: &str = "exec.fifo";

/// Writes `data` to `path` atomically: temp file, rename. No fsync: the state root is runtime
/// state (a tmpfs such as /run in production) that must survive a crash of the process, not of
/// the machine, and the page cache survives the former. This keeps fsyncs off the start path.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

impl Persisted {
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(STATE_FILE);
        let data =
            std::fs::read(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        serde_json::from_slice(&data).map_err(|source| Error::StateFile { path, source })
    }

    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        let path = dir.join(STATE_FILE);
        let data = serde_json::to_vec(self).map_err(|source| Error::StateFile {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &data).map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    /// Whether the recorded init process is still alive (and is the same process).
    pub fn init_alive(&self) -> bool {
        match proc_stat(self.state.pid) {
            Some((st, start)) => st != 'Z' && st != 'X' && start == self.init_start_time,
            None => false,
        }
    }

    /// Fills in the live status.
    pub fn current(&self, dir: &Path) -> State {
        let mut s = self.state.clone();
        if !self.init_alive() {
            s.status = Status::Stopped;
            s.pid = 0;
        } else if dir.join(FIFO).exists() {
            s.status = Status::Created;
        } else if crate::cgroups::is_frozen(&self.cgroup_paths) {
            s.status = Status::Paused;
        } else {
            s.status = Status::Running;
        }
        s
    }
}

/// (state char, start time) of a process, from /proc/<pid>/stat.
pub(crate) fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let st = fields.first()?.chars().next()?;
    // Field 22 overall; `rest` starts at field 3.
    let start = fields.get(19)?.parse().ok()?;
    Some((st, start))
}
