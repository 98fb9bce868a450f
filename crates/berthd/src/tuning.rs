//! Opt-in host tuning for container start latency.
//!
//! Moving a task into a cgroup takes the kernel's global cgroup threadgroup rwsem for writing;
//! unless that rwsem is in "favour writers" mode, every container start waits for an RCU grace
//! period there (about 10-15 ms on this project's VMs, a quarter of `run --rm true`). The
//! cgroup2 mount option `favordynmods` (Linux 6.0+) switches the rwsem for the whole host:
//! cgroup migrations become cheap, fork and exit slightly dearer. It is global, so berthd
//! only sets it when asked (`--cgroup-favor-dynmods`) and says so.

use std::path::PathBuf;

use anyhow::Context;
use nix::mount::{mount, MsFlags};

/// The first cgroup2 mount (the v2 root, or the `unified` mount of a hybrid host).
fn cgroup2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// Remounts the cgroup2 hierarchy with `favordynmods`. Keeps the other options it had
/// (nsdelegate, memory_recursiveprot, ...): those are read back from mountinfo's super options.
pub fn favor_dynmods() -> anyhow::Result<()> {
    let Some(mp) = cgroup2_mount() else {
        anyhow::bail!("--cgroup-favor-dynmods needs a cgroup2 mount (none found)");
    };
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let supers = text
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some(mp.to_str().unwrap_or("")))
        .and_then(|l| l.split_once(" - "))
        .and_then(|(_, r)| r.split_whitespace().nth(2))
        .unwrap_or("rw")
        .to_string();
    if supers.split(',').any(|o| o == "favordynmods") {
        tracing::info!(mount = %mp.display(), "cgroup2 already has favordynmods");
        return Ok(());
    }
    let mut opts: Vec<&str> = supers
        .split(',')
        .filter(|o| *o != "rw" && *o != "ro")
        .collect();
    opts.push("favordynmods");
    let data = opts.join(",");
    mount(
        Some("none"),
        &mp,
        Some("cgroup2"),
        MsFlags::MS_REMOUNT,
        Some(data.as_str()),
    )
    .with_context(|| {
        format!(
            "remounting {} with favordynmods (needs Linux 6.0+)",
            mp.display()
        )
    })?;
    tracing::warn!(
        mount = %mp.display(),
        "cgroup2 remounted with favordynmods for the whole host: faster container starts, slightly slower fork/exit"
    );
    Ok(())
}
