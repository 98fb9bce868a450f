//! OOM-kill detection for the exit status: the memory cgroup's `oom_kill` counter
//! (`memory.events` on cgroup v2, `memory.oom_control` on v1), found through
//! `/proc/<init>/cgroup` while the container runs and read when it exits.

use std::path::{Path, PathBuf};

/// Parses `/proc/<pid>/cgroup` contents into the memory cgroup directory under `mnt`
/// (`/sys/fs/cgroup`): the v1 `memory` controller if there is one, else the v2 path when the
/// v2 hierarchy offers the memory controller.
pub fn memory_cgroup_dir(proc_cgroup: &str, mnt: &Path) -> Option<PathBuf> {
    let mut v2 = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == "memory") {
            return Some(mnt.join("memory").join(rel));
        }
        if ctrls.is_empty() {
            v2 = Some(rel.to_string());
        }
    }
    let rel = v2?;
    let controllers = std::fs::read_to_string(mnt.join("cgroup.controllers")).ok()?;
    controllers
        .split_whitespace()
        .any(|c| c == "memory")
        .then(|| mnt.join(rel))
}

/// The `oom_kill` counter of a memory cgroup directory, if readable.
pub fn oom_kills(dir: &Path) -> Option<u64> {
    for file in ["memory.events", "memory.oom_control"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            for line in text.lines() {
                if let Some(n) = line.strip_prefix("oom_kill ") {
                    return n.trim().parse().ok();
                }
            }
        }
    }
    None
}

/// The memory cgroup of a running process, with its current `oom_kill` count.
pub fn watch(pid: i32) -> Option<(PathBuf, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let dir = memory_cgroup_dir(&text, Path::new("/sys/fs/cgroup"))?;
    let n = oom_kills(&dir)?;
    Some((dir, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v1_memory_controller() {
        let t = "9:name=systemd:/\n4:memory:/berth/abc\n1:cpu,cpuacct:/berth/abc\n0::/\n";
        assert_eq!(
            memory_cgroup_dir(t, Path::new("/sys/fs/cgroup")),
            Some(PathBuf::from("/sys/fs/cgroup/memory/berth/abc"))
        );
    }

    #[test]
    fn finds_v2_when_memory_is_enabled() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cgroup.controllers"),
            "cpu io memory pids\n",
        )
        .unwrap();
        assert_eq!(
            memory_cgroup_dir("0::/berth/x\n", dir.path()),
            Some(dir.path().join("berth/x"))
        );
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu pids\n").unwrap();
        assert_eq!(memory_cgroup_dir("0::/berth/x\n", dir.path()), None);
    }

    #[test]
    fn reads_counters() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(oom_kills(dir.path()), Some(1));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        assert_eq!(oom_kills(dir.path()), Some(3));
    }
}
