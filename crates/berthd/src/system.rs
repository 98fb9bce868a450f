//! Pid file, `/version` and `/info`.

use std::path::Path;

use anyhow::{bail, Context};
use berth_engine::Engine;
use serde_json::{json, Value};

use crate::http::{API_VERSION, MIN_API_VERSION};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Writes our pid, refusing when another live berthd holds the file.
pub fn claim_pidfile(path: &Path) -> anyhow::Result<()> {
    if let Ok(old) = std::fs::read_to_string(path) {
        if let Ok(pid) = old.trim().parse::<i32>() {
            let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
            let is_berthd = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == "berthd")
                .unwrap_or(false);
            if alive && is_berthd && pid != std::process::id() as i32 {
                bail!(
                    "pid file {} names a running berthd (pid {pid}); use another --exec-root or --pidfile",
                    path.display()
                );
            }
        }
    }
    berth_engine::persist::write_atomic(path, format!("{}\n", std::process::id()).as_bytes())
        .with_context(|| format!("writing pid file {}", path.display()))
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch_go() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn version() -> Value {
    let kernel = kernel_version();
    json!({
        "Platform": {"Name": "Berth"},
        "Components": [
            {"Name": "Engine", "Version": VERSION, "Details": {
                "ApiVersion": API_VERSION, "Arch": arch_go(), "BuildTime": "",
                "Experimental": "false", "GitCommit": "", "GoVersion": "rust",
                "KernelVersion": kernel, "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}},
            {"Name": "berth-runtime", "Version": VERSION, "Details": {"GitCommit": ""}}
        ],
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "rust",
        "Os": "linux",
        "Arch": arch_go(),
        "KernelVersion": kernel,
        "BuildTime": ""
    })
}

fn os_release() -> (String, String) {
    let s = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

pub fn info(engine: &Engine) -> Value {
    let (total, running, paused, stopped) = engine.container_counts();
    let images = engine.image_count();
    let (os, os_version) = os_release();
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let v2 = engine.cgroup_layout.version() == "2";
    json!({
        "ID": engine.daemon_id(),
        "Containers": total,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", engine.backing_fs()], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["null"],
            "Authorization": null,
            "Log": ["json-file", "local"]
        },
        "MemoryLimit": true,
        "SwapLimit": !v2,
        "KernelMemory": false,
        "KernelMemoryTCP": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "BridgeNfIptables": false,
        "BridgeNfIp6tables": false,
        "Debug": false,
        "NFd": open_fds(),
        "OomKillDisable": !v2,
        "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": engine.cgroup_layout.version(),
        "NEventsListener": 0,
        "KernelVersion": kernel_version(),
        "OperatingSystem": os,
        "OSVersion": os_version,
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": null,
            "AllowNondistributableArtifactsHostnames": null,
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}},
            "Mirrors": null
        },
        "NCPU": ncpu,
        "MemTotal": mem_total(),
        "GenericResources": null,
        "DockerRootDir": engine.cfg.data_root.display().to_string(),
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": VERSION,
        "Runtimes": {"berth-runtime": {"path": "berth-runtime"}},
        "DefaultRuntime": "berth-runtime",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=cgroupns"],
        "CDISpecDirs": [],
        "Warnings": null
    })
}
