//! The `local` volume driver and container mount resolution.
//!
//! On disk: `<data-root>/volumes/<name>/_data` holds the content and `<name>/volume.json` the
//! record (versioned, written atomically). Which containers use a volume is derived from the
//! container records (never stored twice). Anonymous volumes get a random 64-hex name at
//! container create, kept in the container record (`anon_volumes`, destination -> name).
//!
//! A volume created with `--opt type=... --opt device=... --opt o=...` is mounted on its
//! `_data` directory when a container first needs it and unmounted when it is removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::record::Record;
use crate::Engine;

const VOLUME_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub schema: u32,
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// Created for a container's anonymous mount (pruned by default, removed by `rm -v`).
    #[serde(default)]
    pub anonymous: bool,
}

/// dockerd's rule for local volume names.
pub fn valid_volume_name(name: &str) -> std::result::Result<(), String> {
    if name.len() < 2 {
        return Err(format!("create {name}: volume name is too short, names should be at least two alphanumeric characters"));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        ));
    }
    Ok(())
}

fn random_name() -> String {
    let mut b = [0u8; 32];
    let _ = getrandom::getrandom(&mut b);
    hex::encode(b)
}

/// One mount of a container, as `inspect` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MountPoint {
    pub typ: &'static str,
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
}

impl MountPoint {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.typ,
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": self.rw,
            "Propagation": self.propagation,
        });
        if let Some(n) = &self.name {
            v["Name"] = json!(n);
            v["Driver"] = json!("local");
        }
        v
    }
}

impl Engine {
    fn volumes_dir(&self) -> PathBuf {
        self.cfg.data_root.join("volumes")
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.volumes_dir().join(name)
    }

    /// The host path of a volume's content.
    pub fn volume_path(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    fn load_volume(&self, name: &str) -> Result<VolumeRecord> {
        if name.contains('/') || name == "." || name == ".." || name.is_empty() {
            return Err(Error::not_found(format!("get {name}: no such volume")));
        }
        let p = self.volume_dir(name).join("volume.json");
        let b = std::fs::read(&p)
            .map_err(|_| Error::not_found(format!("get {name}: no such volume")))?;
        serde_json::from_slice(&b)
            .map_err(|e| Error::internal(format!("corrupt volume record {}: {e}", p.display())))
    }

    fn all_volumes(&self) -> Vec<VolumeRecord> {
        let Ok(rd) = std::fs::read_dir(self.volumes_dir()) else {
            return Vec::new();
        };
        let mut v: Vec<VolumeRecord> = rd
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| self.load_volume(n).ok())
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn volume_json(&self, v: &VolumeRecord) -> Value {
        json!({
            "CreatedAt": v.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "Driver": v.driver,
            "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
            "Mountpoint": self.volume_path(&v.name).display().to_string(),
            "Name": v.name,
            "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
            "Scope": "local",
        })
    }

    /// Creates (or returns the existing) volume. `name` None or empty: a random name.
    fn ensure_volume(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<VolumeRecord> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                valid_volume_name(n).map_err(Error::invalid)?;
                n.to_string()
            }
            None => random_name(),
        };
        if let Ok(v) = self.load_volume(&name) {
            return Ok(v);
        }
        for k in options.keys() {
            if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
                return Err(Error::invalid(format!(
                    "create {name}: invalid option key: {k:?}"
                )));
            }
        }
        let rec = VolumeRecord {
            schema: VOLUME_SCHEMA,
            name: name.clone(),
            driver: "local".into(),
            labels,
            options,
            created_at: Utc::now(),
            anonymous,
        };
        let dir = self.volume_dir(&name);
        std::fs::create_dir_all(dir.join("_data"))?;
        crate::persist::write_json(&dir.join("volume.json"), &rec)?;
        self.events
            .publish(volume_event("create", &name, &[("driver", "local")]));
        Ok(rec)
    }

    /// `POST /volumes/create`.
    pub fn volume_create(&self, body: &Value) -> Result<Value> {
        let name = body.get("Name").and_then(Value::as_str);
        let driver = body.get("Driver").and_then(Value::as_str).unwrap_or("");
        if !driver.is_empty() && driver != "local" {
            return Err(Error::not_found(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        let strings = |k: &str| -> BTreeMap<String, String> {
            body.get(k)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let v = self.ensure_volume(name, strings("Labels"), strings("DriverOpts"), false)?;
        Ok(self.volume_json(&v))
    }

    /// `GET /volumes/{name}`.
    pub fn volume_inspect(&self, name: &str) -> Result<Value> {
        Ok(self.volume_json(&self.load_volume(name)?))
    }

    /// Container ids using each volume.
    fn volume_users(&self) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in self.all_containers() {
            let rec = c.snapshot();
            for name in volume_names_of(&rec) {
                m.entry(name).or_default().push(rec.id.clone());
            }
        }
        m
    }

    /// `GET /volumes` with dockerd's filters (dangling, name, label, driver).
    pub fn volume_list(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<Value> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "dangling" | "name" | "label" | "driver") {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        let users = self.volume_users();
        let vols: Vec<Value> = self
            .all_volumes()
            .into_iter()
            .filter(|v| volume_matches(v, filters, users.contains_key(&v.name)))
            .map(|v| self.volume_json(&v))
            .collect();
        Ok(json!({"Volumes": vols, "Warnings": []}))
    }

    /// `DELETE /volumes/{name}`.
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let v = match self.load_volume(name) {
            Ok(v) => v,
            Err(e) if force && e.kind == ErrorKind::NotFound => return Ok(()),
            Err(_) => return Err(Error::not_found(format!("get {name}: no such volume"))),
        };
        if let Some(ids) = self.volume_users().get(&v.name) {
            return Err(Error::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                ids.join(", ")
            )));
        }
        self.destroy_volume(&v)
    }

    fn destroy_volume(&self, v: &VolumeRecord) -> Result<()> {
        let data = self.volume_path(&v.name);
        if v.options.contains_key("type") {
            let _ = nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH);
        }
        std::fs::remove_dir_all(self.volume_dir(&v.name))?;
        self.events
            .publish(volume_event("destroy", &v.name, &[("driver", "local")]));
        Ok(())
    }

    /// `POST /volumes/prune`: unused anonymous volumes (API >= 1.42), or all unused ones with
    /// the `all` filter; label filters apply.
    pub fn volume_prune(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<Value> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "label" | "label!" | "all") {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        let all = filters
            .get("all")
            .and_then(|v| v.first())
            .is_some_and(|v| v == "true" || v == "1");
        let users = self.volume_users();
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for v in self.all_volumes() {
            if users.contains_key(&v.name) || (!all && !v.anonymous) {
                continue;
            }
            if !labels_match(&v.labels, filters) {
                continue;
            }
            let size = dir_size(&self.volume_path(&v.name));
            if self.destroy_volume(&v).is_ok() {
                reclaimed += size;
                deleted.push(v.name.clone());
            }
        }
        Ok(
            json!({"VolumesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed}),
        )
    }

    /// At container create: creates the named volumes it mentions and an anonymous volume for
    /// every anonymous mount and image VOLUME not covered by another mount; returns
    /// destination -> name for the anonymous ones (kept in the record).
    pub(crate) fn create_container_volumes(
        &self,
        config: &berth_api_types::ContainerConfig,
        hc: &berth_api_types::HostConfig,
    ) -> Result<BTreeMap<String, String>> {
        let mut covered: BTreeSet<String> = BTreeSet::new();
        let mut anon = BTreeMap::new();
        for b in hc.binds.iter().flatten() {
            let spec = berth_spec::oci::parse_bind(b).map_err(|e| Error::invalid(e.to_string()))?;
            covered.insert(clean(&spec.destination));
            if spec.source.is_empty() {
                anon.insert(clean(&spec.destination), String::new());
            } else if spec.is_volume() {
                self.ensure_volume(Some(&spec.source), BTreeMap::new(), BTreeMap::new(), false)?;
            }
        }
        for m in hc.mounts.iter().flatten() {
            covered.insert(clean(&m.target));
            match m.r#type.as_str() {
                "volume" if m.source.is_empty() => {
                    anon.insert(clean(&m.target), String::new());
                }
                "volume" => {
                    let (labels, opts) = m
                        .volume_options
                        .as_ref()
                        .map(|o| {
                            (
                                o.labels.clone().unwrap_or_default().into_iter().collect(),
                                o.driver_config
                                    .as_ref()
                                    .and_then(|d| d.options.clone())
                                    .unwrap_or_default()
                                    .into_iter()
                                    .collect(),
                            )
                        })
                        .unwrap_or_default();
                    self.ensure_volume(Some(&m.source), labels, opts, false)?;
                }
                "bind" => {
                    if std::fs::metadata(&m.source).is_err() {
                        return Err(Error::invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                }
                _ => {}
            }
        }
        for d in hc.tmpfs.iter().flatten().map(|(d, _)| d) {
            covered.insert(clean(d));
        }
        for d in config.volumes.iter().flat_map(|v| v.keys()) {
            if !covered.contains(&clean(d)) {
                anon.insert(clean(d), String::new());
            }
        }
        for (_, name) in anon.iter_mut() {
            *name = self
                .ensure_volume(None, BTreeMap::new(), BTreeMap::new(), true)?
                .name;
        }
        // `-v /host:/x` with a missing host path: dockerd creates it.
        for b in hc.binds.iter().flatten() {
            if let Ok(spec) = berth_spec::oci::parse_bind(b) {
                if spec.source.starts_with('/') && std::fs::symlink_metadata(&spec.source).is_err()
                {
                    std::fs::create_dir_all(&spec.source)?;
                }
            }
        }
        Ok(anon)
    }

    /// The inputs the OCI spec needs: volume name or anonymous destination -> host path, plus
    /// extra host config entries (image VOLUMEs and `--volumes-from`) as binds.
    pub(crate) fn resolve_mounts(
        &self,
        rec: &Record,
    ) -> Result<(BTreeMap<String, String>, Vec<String>)> {
        let mut paths = BTreeMap::new();
        for name in volume_names_of(rec) {
            let v = self.load_volume(&name)?;
            self.mount_volume_device(&v)?;
            paths.insert(name.clone(), self.volume_path(&name).display().to_string());
        }
        let mut extra_binds = Vec::new();
        for (dest, name) in &rec.anon_volumes {
            paths.insert(dest.clone(), self.volume_path(name).display().to_string());
            // Image VOLUMEs (not written by the user as binds or mounts) become binds here.
            let user_wrote = rec.host_config.binds.iter().flatten().any(|b| {
                berth_spec::oci::parse_bind(b).is_ok_and(|s| clean(&s.destination) == *dest)
            }) || rec
                .host_config
                .mounts
                .iter()
                .flatten()
                .any(|m| clean(&m.target) == *dest);
            if !user_wrote {
                extra_binds.push(format!("{}:{dest}", self.volume_path(name).display()));
            }
        }
        for from in rec.host_config.volumes_from.iter().flatten() {
            let (cname, mode) = match from.rsplit_once(':') {
                Some((c, m)) if m == "ro" || m == "rw" => (c, Some(m)),
                _ => (from.as_str(), None),
            };
            let other = self.container(cname)?.snapshot();
            for mp in self.mount_points(&other) {
                if mp.typ == "tmpfs" {
                    continue;
                }
                let ro = match mode {
                    Some("ro") => true,
                    Some(_) => false,
                    None => !mp.rw,
                };
                extra_binds.push(format!(
                    "{}:{}{}",
                    mp.source,
                    mp.destination,
                    if ro { ":ro" } else { "" }
                ));
            }
        }
        Ok((paths, extra_binds))
    }

    /// Mounts a volume created with driver options (`type`, `device`, `o`) on its `_data`.
    fn mount_volume_device(&self, v: &VolumeRecord) -> Result<()> {
        let Some(typ) = v.options.get("type") else {
            return Ok(());
        };
        let data = self.volume_path(&v.name);
        let mounted = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some(data.to_str().unwrap_or("")));
        if mounted {
            return Ok(());
        }
        let device = v
            .options
            .get("device")
            .cloned()
            .unwrap_or_else(|| typ.clone());
        let mut flags = nix::mount::MsFlags::empty();
        let mut data_opts = Vec::new();
        for o in v
            .options
            .get("o")
            .map(|s| s.split(',').collect::<Vec<_>>())
            .unwrap_or_default()
        {
            match o {
                "bind" => flags |= nix::mount::MsFlags::MS_BIND,
                "rbind" => flags |= nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
                "ro" => flags |= nix::mount::MsFlags::MS_RDONLY,
                "" => {}
                other => data_opts.push(other),
            }
        }
        let fstype = if typ == "none" {
            None
        } else {
            Some(typ.as_str())
        };
        let d = data_opts.join(",");
        nix::mount::mount(Some(device.as_str()), &data, fstype, flags, if d.is_empty() { None } else { Some(d.as_str()) })
            .map_err(|e| Error::internal(format!("error while mounting volume '{}': failed to mount local volume: mount {device}:{}, flags: {flags:?}, data: {d}: {e}", data.display(), data.display())))
    }

    /// Copies the image's content at each fresh volume's destination into the volume (Docker's
    /// copy-up), once, when the volume is empty; `nocopy` turns it off. `rootfs` is the
    /// mounted container root.
    pub(crate) fn copy_up_volumes(&self, rec: &Record, rootfs: &Path) -> Result<()> {
        let mut targets: Vec<(String, String)> = Vec::new();
        for b in rec.host_config.binds.iter().flatten() {
            let nocopy = b
                .rsplit(':')
                .next()
                .is_some_and(|m| m.split(',').any(|o| o == "nocopy"));
            if let Ok(s) = berth_spec::oci::parse_bind(b) {
                if s.is_volume() && !nocopy {
                    let name = if s.source.is_empty() {
                        rec.anon_volumes.get(&clean(&s.destination)).cloned()
                    } else {
                        Some(s.source.clone())
                    };
                    if let Some(n) = name {
                        targets.push((n, s.destination.clone()));
                    }
                }
            }
        }
        for m in rec
            .host_config
            .mounts
            .iter()
            .flatten()
            .filter(|m| m.r#type == "volume")
        {
            let nocopy = m.volume_options.as_ref().is_some_and(|o| o.no_copy);
            if nocopy {
                continue;
            }
            let name = if m.source.is_empty() {
                rec.anon_volumes.get(&clean(&m.target)).cloned()
            } else {
                Some(m.source.clone())
            };
            if let Some(n) = name {
                targets.push((n, m.target.clone()));
            }
        }
        for (dest, name) in &rec.anon_volumes {
            if !targets.iter().any(|(n, _)| n == name) {
                targets.push((name.clone(), dest.clone()));
            }
        }
        for (name, dest) in targets {
            let data = self.volume_path(&name);
            let empty = std::fs::read_dir(&data)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                continue;
            }
            // Resolve the destination inside the container root (symlinks stay inside).
            let Ok(root) = std::fs::File::open(rootfs) else {
                continue;
            };
            let Ok(inside) =
                berth_sys::resolve_in_root_path(std::os::fd::AsFd::as_fd(&root), Path::new(&dest))
            else {
                continue;
            };
            let src = rootfs.join(inside.strip_prefix("/").unwrap_or(&inside));
            if !src.is_dir() {
                continue;
            }
            let out = std::process::Command::new("cp")
                .arg("-a")
                .arg("--no-dereference")
                .arg(format!("{}/.", src.display()))
                .arg(&data)
                .output()?;
            if !out.status.success() {
                return Err(Error::internal(format!(
                    "copying image content into volume {name}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        Ok(())
    }

    /// A container's mounts, as `inspect` shows them.
    pub fn mount_points(&self, rec: &Record) -> Vec<MountPoint> {
        let mut out = Vec::new();
        for b in rec.host_config.binds.iter().flatten() {
            let Ok(s) = berth_spec::oci::parse_bind(b) else {
                continue;
            };
            let mode = b.splitn(3, ':').nth(2).unwrap_or("").to_string();
            if s.is_volume() {
                let name = if s.source.is_empty() {
                    rec.anon_volumes
                        .get(&clean(&s.destination))
                        .cloned()
                        .unwrap_or_default()
                } else {
                    s.source.clone()
                };
                out.push(MountPoint {
                    typ: "volume",
                    source: self.volume_path(&name).display().to_string(),
                    name: Some(name),
                    destination: s.destination.clone(),
                    mode: if mode.is_empty() { "z".into() } else { mode },
                    rw: !s.read_only,
                    propagation: String::new(),
                });
            } else {
                out.push(MountPoint {
                    typ: "bind",
                    name: None,
                    source: s.source.clone(),
                    destination: s.destination.clone(),
                    mode,
                    rw: !s.read_only,
                    propagation: s.propagation.clone(),
                });
            }
        }
        for m in rec.host_config.mounts.iter().flatten() {
            match m.r#type.as_str() {
                "volume" => {
                    let name = if m.source.is_empty() {
                        rec.anon_volumes
                            .get(&clean(&m.target))
                            .cloned()
                            .unwrap_or_default()
                    } else {
                        m.source.clone()
                    };
                    out.push(MountPoint {
                        typ: "volume",
                        source: self.volume_path(&name).display().to_string(),
                        name: Some(name),
                        destination: m.target.clone(),
                        mode: "z".into(),
                        rw: !m.read_only,
                        propagation: String::new(),
                    });
                }
                "bind" => out.push(MountPoint {
                    typ: "bind",
                    name: None,
                    source: m.source.clone(),
                    destination: m.target.clone(),
                    mode: String::new(),
                    rw: !m.read_only,
                    propagation: m
                        .bind_options
                        .as_ref()
                        .map(|o| o.propagation.clone())
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "rprivate".into()),
                }),
                "tmpfs" => out.push(MountPoint {
                    typ: "tmpfs",
                    name: None,
                    source: String::new(),
                    destination: m.target.clone(),
                    mode: String::new(),
                    rw: !m.read_only,
                    propagation: String::new(),
                }),
                _ => {}
            }
        }
        let listed: BTreeSet<String> = out.iter().map(|m| clean(&m.destination)).collect();
        for (dest, name) in &rec.anon_volumes {
            if !listed.contains(dest) {
                out.push(MountPoint {
                    typ: "volume",
                    source: self.volume_path(name).display().to_string(),
                    name: Some(name.clone()),
                    destination: dest.clone(),
                    mode: String::new(),
                    rw: true,
                    propagation: String::new(),
                });
            }
        }
        out
    }

    /// `rm -v`: the container's anonymous volumes go with it (named ones never do).
    pub(crate) fn remove_anonymous_volumes(&self, rec: &Record) {
        for name in rec.anon_volumes.values() {
            let still_used = self
                .volume_users()
                .get(name)
                .is_some_and(|ids| ids.iter().any(|i| *i != rec.id));
            if still_used {
                continue;
            }
            if let Ok(v) = self.load_volume(name) {
                let _ = self.destroy_volume(&v);
            }
        }
    }

    /// The `volume` filter of `ps`: a volume name or a mount destination.
    pub fn container_uses_volume(&self, rec: &Record, what: &str) -> bool {
        self.mount_points(rec)
            .iter()
            .any(|m| m.name.as_deref() == Some(what) || m.destination == what)
    }
}

/// Every volume name a container record refers to (named and anonymous).
pub fn volume_names_of(rec: &Record) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = rec.anon_volumes.values().cloned().collect();
    for b in rec.host_config.binds.iter().flatten() {
        if let Ok(s) = berth_spec::oci::parse_bind(b) {
            if s.is_volume() && !s.source.is_empty() {
                out.insert(s.source);
            }
        }
    }
    for m in rec.host_config.mounts.iter().flatten() {
        if m.r#type == "volume" && !m.source.is_empty() {
            out.insert(m.source.clone());
        }
    }
    out
}

fn clean(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.to_string()
    }
}

fn labels_match(
    labels: &BTreeMap<String, String>,
    filters: &BTreeMap<String, Vec<String>>,
) -> bool {
    let m = |l: &String| match l.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(l),
    };
    filters
        .get("label")
        .map(|ls| ls.iter().all(m))
        .unwrap_or(true)
        && filters
            .get("label!")
            .map(|ls| !ls.iter().any(m))
            .unwrap_or(true)
}

fn volume_matches(v: &VolumeRecord, f: &BTreeMap<String, Vec<String>>, in_use: bool) -> bool {
    if let Some(d) = f.get("dangling").and_then(|v| v.first()) {
        let want_dangling = d == "true" || d == "1";
        if want_dangling == in_use {
            return false;
        }
    }
    if let Some(names) = f.get("name") {
        if !names.iter().any(|n| v.name.contains(n.as_str())) {
            return false;
        }
    }
    if let Some(ds) = f.get("driver") {
        if !ds.iter().any(|d| *d == v.driver) {
            return false;
        }
    }
    labels_match(&v.labels, f)
}

fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

fn volume_event(action: &str, name: &str, attrs: &[(&str, &str)]) -> Value {
    let now = Utc::now();
    let mut a = serde_json::Map::new();
    for (k, v) in attrs {
        a.insert((*k).to_string(), json!(v));
    }
    json!({
        "Type": "volume",
        "Action": action,
        "Actor": {"ID": name, "Attributes": a},
        "scope": "local",
        "time": now.timestamp(),
        "timeNano": now.timestamp_nanos_opt().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_dockerd() {
        assert!(valid_volume_name("ab").is_ok());
        assert!(valid_volume_name("a.b-c_d9").is_ok());
        assert!(valid_volume_name("a").unwrap_err().contains("too short"));
        assert!(valid_volume_name("x/y")
            .unwrap_err()
            .contains("includes invalid characters"));
        assert!(valid_volume_name("_x").is_err());
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean("/data/"), "/data");
        assert_eq!(clean("/"), "/");
    }
}
