//! cgroups v1, v2 and hybrid (detected at run time from /proc/self/mountinfo).

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::error::Error;

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Mount point, e.g. `/sys/fs/cgroup/memory` or `/sys/fs/cgroup` (pure v2).
    pub mount: PathBuf,
    /// v1 controllers (`name=systemd` for named hierarchies); empty for cgroup2.
    pub controllers: Vec<String>,
    /// cgroup2 (unified) hierarchy.
    pub v2: bool,
}

impl Hierarchy {
    pub fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }
}

/// Every mounted cgroup hierarchy whose mount shows the hierarchy root.
pub fn hierarchies() -> io::Result<Vec<Hierarchy>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&info))
}

fn parse_mountinfo(info: &str) -> Vec<Hierarchy> {
    const NOT_CONTROLLERS: &[&str] = &[
        "rw",
        "ro",
        "clone_children",
        "xattr",
        "noprefix",
        "nsdelegate",
        "cpuset_v2_mode",
        "memory_recursiveprot",
        "favordynmods",
        "memory_localevents",
    ];
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 || pre[3] != "/" {
            continue;
        }
        let mount = PathBuf::from(pre[4]);
        let hier = match post[0] {
            "cgroup2" => Hierarchy {
                mount,
                controllers: Vec::new(),
                v2: true,
            },
            "cgroup" => Hierarchy {
                mount,
                controllers: post[2]
                    .split(',')
                    .filter(|o| !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent="))
                    .map(str::to_string)
                    .collect(),
                v2: false,
            },
            _ => continue,
        };
        if !out.iter().any(|h| {
            h.mount == hier.mount || (!h.v2 && h.controllers == hier.controllers && !hier.v2)
        }) {
            out.push(hier);
        }
    }
    out
}

/// A systemd-style cgroupsPath (`slice:prefix:name`, what callers send with
/// `--systemd-cgroup`) as the cgroupfs path systemd would use:
/// `/<slice>/<prefix>-<name>.scope` (`system.slice` when the slice is empty).
pub fn systemd_to_cgroupfs(p: &Path) -> Option<PathBuf> {
    let s = p.to_str()?;
    if s.contains('/') {
        return None;
    }
    let parts: Vec<&str> = s.split(':').collect();
    let [slice, prefix, name] = parts.as_slice() else {
        return None;
    };
    if name.is_empty() {
        return None;
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Some(PathBuf::from("/").join(slice).join(unit))
}

/// The caller's cgroup in hierarchy `h`, from /proc/self/cgroup text (`/` when unknown).
fn own_cgroup(proc_cgroup: &str, h: &Hierarchy) -> PathBuf {
    for line in proc_cgroup.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let matches = if h.v2 {
            id == "0" && ctrls.is_empty()
        } else {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = h.controllers.iter().map(String::as_str).collect();
            a.sort_unstable();
            b.sort_unstable();
            !a.is_empty() && a == b
        };
        if matches {
            return PathBuf::from(path);
        }
    }
    PathBuf::from("/")
}

/// The cgroup directories of one container.
#[derive(Debug, Clone)]
pub struct Cgroup {
    /// (hierarchy, absolute directory of the container cgroup)
    pub dirs: Vec<(Hierarchy, PathBuf)>,
    /// The cgroupsPath relative to each hierarchy root.
    pub rel: PathBuf,
}

fn cg_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Cgroup {
        path: path.to_path_buf(),
        source,
    }
}

fn write_file(path: &Path, value: &str) -> Result<(), Error> {
    std::fs::write(path, value).map_err(cg_err(path))
}

impl Cgroup {
    /// Creates `rel` (e.g. `/berth/<id>`) in every hierarchy.
    pub fn create(rel: &Path) -> Result<Self, Error> {
        if rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(Error::InvalidSpec(format!(
                "cgroupsPath {} is outside the cgroup hierarchy",
                rel.display()
            )));
        }
        // Like runc: a relative cgroupsPath is relative to the caller's own cgroup.
        let own = if rel.is_relative() {
            std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default()
        } else {
            String::new()
        };
        let rel_in = rel;
        let rel = PathBuf::from("/").join(rel.strip_prefix("/").unwrap_or(rel));
        let hs = hierarchies().map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
        let pure_v2 = hs.iter().all(|h| h.v2);
        let mut cg = Cgroup {
            dirs: Vec::new(),
            rel: rel.clone(),
        };
        for h in hs {
            let rel = if rel_in.is_relative() {
                own_cgroup(&own, &h).join(rel_in)
            } else {
                rel.clone()
            };
            let dir = h.mount.join(rel.strip_prefix("/").unwrap_or(&rel));
            // Create level by level so cpuset (v1) and subtree_control (v2) can be prepared.
            let mut cur = h.mount.clone();
            for comp in rel.components().skip(1) {
                let parent = cur.clone();
                cur.push(comp);
                if h.v2 && pure_v2 {
                    enable_v2_controllers(&parent);
                }
                // A concurrent delete may remove an empty shared parent (e.g. `berth`) under
                // us: recreate the missing levels a few times before giving up.
                let mut res = std::fs::create_dir(&cur);
                for _ in 0..10 {
                    match &res {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            res = std::fs::create_dir_all(&cur)
                        }
                        _ => break,
                    }
                }
                match res {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        let _ = cg.destroy();
                        return Err(Error::Cgroup {
                            path: cur,
                            source: e,
                        });
                    }
                }
                if h.has("cpuset") {
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let cur_v = std::fs::read_to_string(cur.join(f)).unwrap_or_default();
                        if cur_v.trim().is_empty() {
                            let pv = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                            let _ = std::fs::write(cur.join(f), pv.trim());
                        }
                    }
                }
            }
            cg.dirs.push((h, dir));
        }
        Ok(cg)
    }

    /// Rebuilds the handle from persisted directories.
    pub fn from_dirs(dirs: &[PathBuf]) -> Self {
        let hs = hierarchies().unwrap_or_default();
        let mut cg = Cgroup {
            dirs: Vec::new(),
            rel: PathBuf::new(),
        };
        for d in dirs {
            if let Some(h) = hs
                .iter()
                .filter(|h| d.starts_with(&h.mount))
                .max_by_key(|h| h.mount.as_os_str().len())
            {
                cg.rel = PathBuf::from("/").join(d.strip_prefix(&h.mount).unwrap_or(d));
                cg.dirs.push((h.clone(), d.clone()));
            }
        }
        cg
    }

    pub fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        for (_, d) in &self.dirs {
            write_file(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn pure_v2(&self) -> bool {
        self.dirs.iter().all(|(h, _)| h.v2)
    }

    /// Applies memory, cpu, cpuset and pids limits.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), Error> {
        let pure_v2 = self.pure_v2();
        if !pure_v2 && r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(Error::InvalidSpec(
                "linux.resources.unified requires cgroup v2 (this host uses cgroup v1)".into(),
            ));
        }
        for (h, d) in &self.dirs {
            if h.v2 && pure_v2 {
                apply_v2(d, r)?;
            } else if !h.v2 {
                apply_v1(h, d, r)?;
            }
        }
        Ok(())
    }

    /// Pids in the cgroup (read from the first hierarchy that has the container dir).
    pub fn pids(&self) -> Vec<i32> {
        let order = |h: &Hierarchy| {
            if h.has("pids") || h.has("freezer") || h.v2 {
                0
            } else {
                1
            }
        };
        let mut dirs: Vec<&(Hierarchy, PathBuf)> = self.dirs.iter().collect();
        dirs.sort_by_key(|(h, _)| order(h));
        for (_, d) in dirs {
            if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
                return s.lines().filter_map(|l| l.trim().parse().ok()).collect();
            }
        }
        Vec::new()
    }

    /// Removes the container cgroup everywhere, and its parents (up to the hierarchy root) that
    /// are now empty. Retries briefly while the kernel still reports it busy.
    pub fn destroy(&self) -> Result<(), Error> {
        let mut first_err = None;
        for (h, d) in &self.dirs {
            if !d.exists() {
                continue;
            }
            let mut ok = false;
            for _ in 0..200 {
                match std::fs::remove_dir(d) {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        ok = true;
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(10))
                    }
                    Err(e) => {
                        first_err.get_or_insert(Error::Cgroup {
                            path: d.clone(),
                            source: e,
                        });
                        break;
                    }
                }
            }
            if !ok {
                first_err.get_or_insert(Error::Cgroup {
                    path: d.clone(),
                    source: io::Error::from_raw_os_error(libc::EBUSY),
                });
                continue;
            }
            let mut p = d.parent().map(Path::to_path_buf);
            while let Some(dir) = p {
                if dir == h.mount
                    || !dir.starts_with(&h.mount)
                    || std::fs::remove_dir(&dir).is_err()
                {
                    break;
                }
                p = dir.parent().map(Path::to_path_buf);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn enable_v2_controllers(dir: &Path) {
    let avail = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    for c in avail.split_whitespace() {
        if ["cpu", "cpuset", "memory", "pids", "io"].contains(&c) {
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
        }
    }
}

fn apply_v1(h: &Hierarchy, d: &Path, r: &LinuxResources) -> Result<(), Error> {
    if h.has("memory") {
        if let Some(m) = r.memory() {
            if let Some(v) = m.reservation() {
                write_file(&d.join("memory.soft_limit_in_bytes"), &v.to_string())?;
            }
            if let Some(v) = m.limit() {
                write_file(&d.join("memory.limit_in_bytes"), &v.to_string())?;
            }
            if let Some(v) = m.swap() {
                let f = d.join("memory.memsw.limit_in_bytes");
                if f.exists() {
                    write_file(&f, &v.to_string())?;
                }
            }
            if let Some(v) = m.swappiness() {
                if v <= 100 {
                    write_file(&d.join("memory.swappiness"), &v.to_string())?;
                }
            }
            if let Some(v) = m.kernel_tcp() {
                write_file(&d.join("memory.kmem.tcp.limit_in_bytes"), &v.to_string())?;
            }
            if m.disable_oom_killer() == Some(true) {
                write_file(&d.join("memory.oom_control"), "1")?;
            }
        }
    }
    if let Some(c) = r.cpu() {
        if h.has("cpu") {
            if let Some(v) = c.shares() {
                write_file(&d.join("cpu.shares"), &v.to_string())?;
            }
            if let Some(v) = c.period() {
                write_file(&d.join("cpu.cfs_period_us"), &v.to_string())?;
            }
            if let Some(v) = c.quota() {
                write_file(&d.join("cpu.cfs_quota_us"), &v.to_string())?;
            }
            if let Some(v) = c.burst() {
                let f = d.join("cpu.cfs_burst_us");
                if f.exists() {
                    write_file(&f, &v.to_string())?;
                }
            }
            // Realtime: period first (runtime must fit in it).
            if let Some(v) = c.realtime_period() {
                write_file(&d.join("cpu.rt_period_us"), &v.to_string())?;
            }
            if let Some(v) = c.realtime_runtime() {
                write_file(&d.join("cpu.rt_runtime_us"), &v.to_string())?;
            }
        }
        if h.has("cpuset") {
            if let Some(v) = c.cpus() {
                write_file(&d.join("cpuset.cpus"), v)?;
            }
            if let Some(v) = c.mems() {
                write_file(&d.join("cpuset.mems"), v)?;
            }
        }
    }
    if h.has("devices") {
        apply_devices_v1(d, r)?;
    }
    if h.has("blkio") {
        if let Some(b) = r.block_io() {
            if let Some(w) = b.weight().filter(|w| *w > 0) {
                let f = ["blkio.weight", "blkio.bfq.weight"]
                    .iter()
                    .map(|f| d.join(f))
                    .find(|f| f.exists());
                match f {
                    Some(f) => write_file(&f, &w.to_string())?,
                    None => return Err(unsupported(d, "blkio weight")),
                }
            }
            if let Some(w) = b.leaf_weight().filter(|w| *w > 0) {
                write_file(&d.join("blkio.leaf_weight"), &w.to_string())?;
            }
            for wd in b.weight_device().iter().flatten() {
                if let Some(w) = wd.weight() {
                    write_file(
                        &d.join("blkio.weight_device"),
                        &format!("{}:{} {w}", wd.major(), wd.minor()),
                    )?;
                }
            }
            for (list, file) in [
                (
                    b.throttle_read_bps_device(),
                    "blkio.throttle.read_bps_device",
                ),
                (
                    b.throttle_write_bps_device(),
                    "blkio.throttle.write_bps_device",
                ),
                (
                    b.throttle_read_iops_device(),
                    "blkio.throttle.read_iops_device",
                ),
                (
                    b.throttle_write_iops_device(),
                    "blkio.throttle.write_iops_device",
                ),
            ] {
                for t in list.iter().flatten() {
                    write_file(
                        &d.join(file),
                        &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                    )?;
                }
            }
        }
    }
    if h.has("hugetlb") {
        for l in r.hugepage_limits().iter().flatten() {
            write_file(
                &d.join(format!("hugetlb.{}.limit_in_bytes", l.page_size())),
                &l.limit().to_string(),
            )?;
        }
    }
    if let Some(n) = r.network() {
        if h.has("net_cls") {
            if let Some(c) = n.class_id() {
                write_file(&d.join("net_cls.classid"), &c.to_string())?;
            }
        }
        if h.has("net_prio") {
            for p in n.priorities().iter().flatten() {
                write_file(
                    &d.join("net_prio.ifpriomap"),
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
    }
    if h.has("pids") {
        if let Some(p) = r.pids() {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            };
            write_file(&d.join("pids.max"), &v)?;
        }
    }
    Ok(())
}

fn apply_v2(d: &Path, r: &LinuxResources) -> Result<(), Error> {
    if let Some(m) = r.memory() {
        if let Some(v) = m.reservation() {
            write_file(&d.join("memory.low"), &v.to_string())?;
        }
        if let Some(v) = m.limit() {
            let s = if v < 0 {
                "max".to_string()
            } else {
                v.to_string()
            };
            write_file(&d.join("memory.max"), &s)?;
            if let Some(sw) = m.swap() {
                // v1 semantics: swap is memory+swap.
                let s = if sw < 0 {
                    "max".to_string()
                } else {
                    (sw - v.max(0)).max(0).to_string()
                };
                let f = d.join("memory.swap.max");
                if f.exists() {
                    write_file(&f, &s)?;
                }
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares() {
            // runc's conversion from shares [2..262144] to weight [1..10000].
            let w = if shares == 0 {
                0
            } else {
                1 + ((shares.clamp(2, 262144) - 2) * 9999) / 262142
            };
            if w > 0 {
                write_file(&d.join("cpu.weight"), &w.to_string())?;
            }
        }
        if c.quota().is_some() || c.period().is_some() {
            let q = match c.quota() {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_string(),
            };
            let p = c.period().unwrap_or(100000);
            write_file(&d.join("cpu.max"), &format!("{q} {p}"))?;
        }
        if let Some(v) = c.burst() {
            write_file(&d.join("cpu.max.burst"), &v.to_string())?;
        }
        if let Some(v) = c.idle() {
            write_file(&d.join("cpu.idle"), &v.to_string())?;
        }
        if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some() {
            return Err(Error::InvalidSpec(
                "realtime cpu limits are not supported on cgroup v2".into(),
            ));
        }
        if let Some(v) = c.cpus() {
            write_file(&d.join("cpuset.cpus"), v)?;
        }
        if let Some(v) = c.mems() {
            write_file(&d.join("cpuset.mems"), v)?;
        }
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        write_file(&d.join("pids.max"), &v)?;
    }
    if let Some(devs) = r.devices() {
        crate::devfilter::attach(d, devs).map_err(cg_err(d))?;
    }
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight().filter(|w| *w > 0) {
            // blkio weight [10..1000] -> io.weight [1..10000], as runc converts it.
            let v = 1 + (u64::from(w).saturating_sub(10)) * 9999 / 990;
            let f = d.join("io.bfq.weight");
            if f.exists() {
                write_file(&f, &w.to_string())?;
            } else {
                write_file(&d.join("io.weight"), &format!("default {v}"))?;
            }
        }
        for (list, key) in [
            (b.throttle_read_bps_device(), "rbps"),
            (b.throttle_write_bps_device(), "wbps"),
            (b.throttle_read_iops_device(), "riops"),
            (b.throttle_write_iops_device(), "wiops"),
        ] {
            for t in list.iter().flatten() {
                write_file(
                    &d.join("io.max"),
                    &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
                )?;
            }
        }
    }
    for l in r.hugepage_limits().iter().flatten() {
        write_file(
            &d.join(format!("hugetlb.{}.max", l.page_size())),
            &l.limit().to_string(),
        )?;
    }
    if let Some(u) = r.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            if k.contains('/') || k.starts_with('.') {
                return Err(Error::InvalidSpec(format!("invalid unified key {k:?}")));
            }
            write_file(&d.join(k), v)?;
        }
    }
    Ok(())
}

fn unsupported(d: &Path, what: &str) -> Error {
    Error::Cgroup {
        path: d.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{what} is not supported by this kernel"),
        ),
    }
}

/// Whether the container's cgroup is frozen (v1 freezer preferred, else v2 cgroup.freeze).
pub fn is_frozen(dirs: &[PathBuf]) -> bool {
    for d in dirs {
        if let Ok(s) = std::fs::read_to_string(d.join("freezer.state")) {
            return s.trim() == "FROZEN";
        }
    }
    for d in dirs {
        if let Ok(s) = std::fs::read_to_string(d.join("cgroup.freeze")) {
            return s.trim() == "1";
        }
    }
    false
}

fn read_u64(p: &Path) -> Option<u64> {
    let s = std::fs::read_to_string(p).ok()?;
    let t = s.trim();
    if t == "max" {
        return Some(u64::MAX);
    }
    t.parse().ok()
}

fn read_kv(p: &Path) -> std::collections::BTreeMap<String, u64> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// runc-style `events --stats` data (the subset cgroups give us).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CpuUsage {
    /// Nanoseconds.
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero", default)]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero", default)]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero", default)]
    pub throttled_time: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub max: u64,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "is_zero", default)]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty", default)]
    pub raw: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "is_zero", default)]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub limit: u64,
}

impl Cgroup {
    fn dir_with(&self, file: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .map(|(_, d)| d.as_path())
            .find(|d| d.join(file).exists())
    }

    /// Freezes (`true`) or thaws every process of the cgroup and waits until the kernel
    /// reports the new state (v1 freezer when mounted, else v2 `cgroup.freeze`).
    pub fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        if let Some(d) = self.dir_with("freezer.state") {
            let want = if frozen { "FROZEN" } else { "THAWED" };
            let f = d.join("freezer.state");
            for _ in 0..1000 {
                write_file(&f, want)?;
                if std::fs::read_to_string(&f).unwrap_or_default().trim() == want {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            return Err(Error::Cgroup {
                path: f,
                source: io::Error::new(io::ErrorKind::TimedOut, "freezer did not settle"),
            });
        }
        if let Some(d) = self.dir_with("cgroup.freeze") {
            write_file(&d.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
            let ev = d.join("cgroup.events");
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            for _ in 0..1000 {
                if std::fs::read_to_string(&ev)
                    .unwrap_or_default()
                    .lines()
                    .any(|l| l.trim() == want)
                {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            return Ok(());
        }
        Err(Error::Cgroup {
            path: self.rel.clone(),
            source: io::Error::new(io::ErrorKind::Unsupported, "no freezer available"),
        })
    }

    /// Resource usage of the cgroup.
    pub fn stats(&self) -> Stats {
        let mut st = Stats::default();
        let pure_v2 = self.pure_v2();
        for (h, d) in &self.dirs {
            if h.v2 {
                if !pure_v2 {
                    continue;
                }
                let cpu = read_kv(&d.join("cpu.stat"));
                st.cpu.usage.total = cpu.get("usage_usec").copied().unwrap_or(0) * 1000;
                st.cpu.usage.user = cpu.get("user_usec").copied().unwrap_or(0) * 1000;
                st.cpu.usage.kernel = cpu.get("system_usec").copied().unwrap_or(0) * 1000;
                st.cpu.throttling.periods = cpu.get("nr_periods").copied().unwrap_or(0);
                st.cpu.throttling.throttled_periods = cpu.get("nr_throttled").copied().unwrap_or(0);
                st.cpu.throttling.throttled_time =
                    cpu.get("throttled_usec").copied().unwrap_or(0) * 1000;
                st.memory.usage.usage = read_u64(&d.join("memory.current")).unwrap_or(0);
                st.memory.usage.limit = read_u64(&d.join("memory.max")).unwrap_or(u64::MAX);
                st.memory.usage.max = read_u64(&d.join("memory.peak")).unwrap_or(0);
                st.memory.usage.failcnt = read_kv(&d.join("memory.events"))
                    .get("max")
                    .copied()
                    .unwrap_or(0);
                st.memory.swap.usage = read_u64(&d.join("memory.swap.current")).unwrap_or(0);
                st.memory.swap.limit = read_u64(&d.join("memory.swap.max")).unwrap_or(u64::MAX);
                st.memory.raw = read_kv(&d.join("memory.stat"));
                st.memory.cache = st.memory.raw.get("file").copied().unwrap_or(0);
                st.pids.current = read_u64(&d.join("pids.current")).unwrap_or(0);
                st.pids.limit = read_u64(&d.join("pids.max"))
                    .map(|v| if v == u64::MAX { 0 } else { v })
                    .unwrap_or(0);
                continue;
            }
            if h.has("cpuacct") {
                st.cpu.usage.total = read_u64(&d.join("cpuacct.usage")).unwrap_or(0);
                st.cpu.usage.percpu = std::fs::read_to_string(d.join("cpuacct.usage_percpu"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                // cpuacct.stat is in USER_HZ (100/s) ticks.
                let t = read_kv(&d.join("cpuacct.stat"));
                st.cpu.usage.user = t.get("user").copied().unwrap_or(0) * 10_000_000;
                st.cpu.usage.kernel = t.get("system").copied().unwrap_or(0) * 10_000_000;
            }
            if h.has("cpu") {
                let t = read_kv(&d.join("cpu.stat"));
                st.cpu.throttling.periods = t.get("nr_periods").copied().unwrap_or(0);
                st.cpu.throttling.throttled_periods = t.get("nr_throttled").copied().unwrap_or(0);
                st.cpu.throttling.throttled_time = t.get("throttled_time").copied().unwrap_or(0);
            }
            if h.has("memory") {
                st.memory.usage.usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
                st.memory.usage.max = read_u64(&d.join("memory.max_usage_in_bytes")).unwrap_or(0);
                st.memory.usage.failcnt = read_u64(&d.join("memory.failcnt")).unwrap_or(0);
                st.memory.usage.limit = read_u64(&d.join("memory.limit_in_bytes")).unwrap_or(0);
                st.memory.swap.usage =
                    read_u64(&d.join("memory.memsw.usage_in_bytes")).unwrap_or(0);
                st.memory.swap.limit =
                    read_u64(&d.join("memory.memsw.limit_in_bytes")).unwrap_or(0);
                st.memory.raw = read_kv(&d.join("memory.stat"));
                st.memory.cache = st.memory.raw.get("cache").copied().unwrap_or(0);
            }
            if h.has("pids") {
                st.pids.current = read_u64(&d.join("pids.current")).unwrap_or(0);
                st.pids.limit = read_u64(&d.join("pids.max"))
                    .map(|v| if v == u64::MAX { 0 } else { v })
                    .unwrap_or(0);
            }
        }
        st
    }
}

/// Device cgroup rules (v1) runc always allows on top of the spec's list.
const DEFAULT_DEVICE_RULES: &[&str] = &[
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

fn apply_devices_v1(d: &Path, r: &LinuxResources) -> Result<(), Error> {
    let Some(devs) = r.devices() else {
        return Ok(());
    };
    for dev in devs {
        let typ = dev
            .typ()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "a".into());
        let num = |n: Option<i64>| n.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
        let rule = if typ == "a" && dev.major().is_none() && dev.minor().is_none() {
            "a".to_string()
        } else {
            format!(
                "{typ} {}:{} {}",
                num(dev.major()),
                num(dev.minor()),
                dev.access().clone().unwrap_or_else(|| "rwm".into())
            )
        };
        let f = if dev.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write_file(&d.join(f), &rule)?;
    }
    for rule in DEFAULT_DEVICE_RULES {
        write_file(&d.join("devices.allow"), rule)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_mountinfo() {
        let info = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n\
50 31 0:38 /sub /mnt/x rw,relatime - cgroup2 cgroup2 rw\n";
        let hs = parse_mountinfo(info);
        assert_eq!(hs.len(), 3);
        assert_eq!(hs[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(hs[1].controllers, vec!["name=systemd"]);
        assert!(hs[2].v2);
        let own = "3:cpu,cpuacct:/user/a\n1:name=systemd:/sys\n0::/v2/x\n";
        assert_eq!(own_cgroup(own, &hs[0]), PathBuf::from("/user/a"));
        assert_eq!(own_cgroup(own, &hs[1]), PathBuf::from("/sys"));
        assert_eq!(own_cgroup(own, &hs[2]), PathBuf::from("/v2/x"));
        assert_eq!(
            systemd_to_cgroupfs(Path::new("system.slice:docker:abc")),
            Some(PathBuf::from("/system.slice/docker-abc.scope"))
        );
        assert_eq!(systemd_to_cgroupfs(Path::new("/berth/x")), None);
    }
}
