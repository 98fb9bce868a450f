//! Start-up checks: does the kernel have what Berth needs? Names exactly what is missing.

use std::path::Path;

/// Cgroup layout found at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLayout {
    /// Only the unified hierarchy (cgroup v2).
    V2,
    /// Only v1 controllers.
    V1,
    /// v1 controllers plus a cgroup2 mount (Berth uses the v1 controllers).
    Hybrid,
}

impl CgroupLayout {
    /// As `docker info` shows it: "1" or "2".
    pub fn version(self) -> &'static str {
        match self {
            CgroupLayout::V2 => "2",
            _ => "1",
        }
    }
}

/// Detects the cgroup layout from /proc/self/mountinfo.
pub fn cgroup_layout() -> Option<CgroupLayout> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut v1 = false;
    let mut v2_root = false;
    let mut v2_any = false;
    for line in mi.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = post.split_whitespace().next().unwrap_or("");
        let mountpoint = pre.split_whitespace().nth(4).unwrap_or("");
        match fstype {
            "cgroup" => v1 = true,
            "cgroup2" => {
                v2_any = true;
                if mountpoint == "/sys/fs/cgroup" {
                    v2_root = true;
                }
            }
            _ => {}
        }
    }
    match (v1, v2_root, v2_any) {
        (false, true, _) => Some(CgroupLayout::V2),
        (true, _, true) => Some(CgroupLayout::Hybrid),
        (true, _, false) => Some(CgroupLayout::V1),
        (false, false, true) => Some(CgroupLayout::V2),
        _ => None,
    }
}

/// Returns the list of missing kernel features (empty when all is well).
pub fn missing_features() -> Vec<String> {
    let mut missing = Vec::new();
    for ns in ["pid", "mnt", "net", "uts", "ipc", "user", "cgroup"] {
        if !Path::new(&format!("/proc/self/ns/{ns}")).exists() {
            missing.push(format!("{ns} namespace (CONFIG_{}_NS)", ns_config(ns)));
        }
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.lines().any(|l| l.trim_end().ends_with("overlay")) {
        // The module may just not be loaded yet; one try to load it.
        let _ = std::process::Command::new("modprobe")
            .arg("overlay")
            .status();
        let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        if !fs.lines().any(|l| l.trim_end().ends_with("overlay")) {
            missing.push("overlay filesystem (CONFIG_OVERLAY_FS)".into());
        }
    }
    if cgroup_layout().is_none() {
        missing.push("cgroups: neither cgroup v1 controllers nor cgroup2 are mounted".into());
    }
    missing
}

fn ns_config(ns: &str) -> &'static str {
    match ns {
        "pid" => "PID",
        "mnt" => "MNT",
        "net" => "NET",
        "uts" => "UTS",
        "ipc" => "IPC",
        "user" => "USER",
        _ => "CGROUP",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_has_everything() {
        // CI and development machines are full Linux hosts; a miss here is a real finding.
        assert_eq!(super::missing_features(), Vec::<String>::new());
        assert!(super::cgroup_layout().is_some());
    }
}
