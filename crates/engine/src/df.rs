//! Disk usage: `GET /system/df` (dockerd's shape: LayersSize, Images, Containers, Volumes,
//! BuildCache) and the `SizeRw`/`SizeRootFs` of `GET /containers/json?size=1`. Sizes are
//! measured on disk (every regular file and symlink under the directory, hard links counted
//! once), not taken from records.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::Result;
use crate::record::Record;
use crate::Engine;

/// Bytes under `dir` (not following symlinks; each inode once).
pub fn dir_size(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                stack.push(e.path());
            } else if md.nlink() <= 1 || seen.insert((md.dev(), md.ino())) {
                if md.is_file() || md.file_type().is_symlink() {
                    total += md.len();
                }
            }
        }
    }
    total
}

/// Image size by id (sum of its layers' measured sizes), with a per-layer cache.
struct Layers<'a> {
    engine: &'a Engine,
    sizes: HashMap<PathBuf, u64>,
}

impl Layers<'_> {
    fn of_image(&mut self, id: &str) -> Vec<(PathBuf, u64)> {
        let dirs = crate::images::lower_dirs_of(&self.engine.images, id).unwrap_or_default();
        dirs.into_iter()
            .map(|d| {
                let s = *self.sizes.entry(d.clone()).or_insert_with(|| dir_size(&d));
                (d, s)
            })
            .collect()
    }
}

impl Engine {
    /// `SizeRw` (the writable layer) and `SizeRootFs` (it plus the image) of a container.
    pub fn container_sizes(&self, rec: &Record) -> (i64, i64) {
        let rw = dir_size(&self.cfg.container_dir(&rec.id).join("upper"));
        let mut layers = Layers {
            engine: self,
            sizes: HashMap::new(),
        };
        let image: u64 = layers.of_image(&rec.image_id).iter().map(|l| l.1).sum();
        (rw as i64, (rw + image) as i64)
    }

    /// Adds `SizeRw`/`SizeRootFs` to one `/containers/json` row.
    pub fn add_container_sizes(&self, rec: &Record, row: &mut Value) {
        let (rw, root) = self.container_sizes(rec);
        if let Some(o) = row.as_object_mut() {
            o.insert("SizeRw".into(), json!(rw));
            o.insert("SizeRootFs".into(), json!(root));
        }
    }

    /// `GET /system/df`; `types` limits the parts (`container`, `image`, `volume`,
    /// `build-cache`), empty = all.
    pub fn system_df(self: &Arc<Self>, types: &[String]) -> Result<Value> {
        let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
        let recs: Vec<Record> = self.all_containers().iter().map(|c| c.snapshot()).collect();
        let mut layers = Layers {
            engine: self,
            sizes: HashMap::new(),
        };
        let mut out = serde_json::Map::new();
        if want("image") {
            let mut images = self.list_images(true, &Default::default())?;
            // How many images use each layer: a layer used by more than one is shared.
            let mut per_image: Vec<Vec<(PathBuf, u64)>> = Vec::new();
            let mut users: HashMap<PathBuf, usize> = HashMap::new();
            for img in &images {
                let l = layers.of_image(img["Id"].as_str().unwrap_or(""));
                for (d, _) in &l {
                    *users.entry(d.clone()).or_default() += 1;
                }
                per_image.push(l);
            }
            for (img, l) in images.iter_mut().zip(&per_image) {
                let id = img["Id"].as_str().unwrap_or("").to_string();
                let size: u64 = l.iter().map(|x| x.1).sum();
                let shared: u64 = l
                    .iter()
                    .filter(|x| users.get(&x.0).copied().unwrap_or(0) > 1)
                    .map(|x| x.1)
                    .sum();
                let n = recs.iter().filter(|r| r.image_id == id).count();
                if let Some(o) = img.as_object_mut() {
                    o.insert("Containers".into(), json!(n));
                    o.insert("Size".into(), json!(size));
                    o.insert("SharedSize".into(), json!(shared));
                    o.insert("VirtualSize".into(), json!(size));
                }
            }
            let total: u64 = layers.sizes.values().sum();
            out.insert("LayersSize".into(), json!(total));
            out.insert("Images".into(), Value::Array(images));
        }
        if want("container") {
            let mut rows = self.list_containers(true, None, &Default::default(), false)?;
            for row in rows.iter_mut() {
                let id = row["Id"].as_str().unwrap_or("").to_string();
                if let Some(rec) = recs.iter().find(|r| r.id == id) {
                    let rw = dir_size(&self.cfg.container_dir(&rec.id).join("upper"));
                    let image: u64 = layers.of_image(&rec.image_id).iter().map(|l| l.1).sum();
                    if let Some(o) = row.as_object_mut() {
                        o.insert("SizeRw".into(), json!(rw));
                        o.insert("SizeRootFs".into(), json!(rw + image));
                    }
                }
            }
            out.insert("Containers".into(), Value::Array(rows));
        }
        if want("volume") {
            let mut vols = self.df_volumes();
            // RefCount: containers that mount it.
            for v in vols.iter_mut() {
                let mp = PathBuf::from(v["Mountpoint"].as_str().unwrap_or(""));
                let n = recs
                    .iter()
                    .filter(|r| {
                        crate::archive::bind_specs(r, &self.cfg.data_root)
                            .iter()
                            .any(|b| b.source == mp)
                    })
                    .count();
                v["UsageData"]["RefCount"] = json!(n);
            }
            out.insert("Volumes".into(), Value::Array(vols));
        }
        if want("build-cache") {
            out.insert("BuildCache".into(), json!([]));
        }
        Ok(Value::Object(out))
    }

    /// Local volumes found under `<data-root>/volumes/<name>/_data` (dockerd's layout).
    fn df_volumes(&self) -> Vec<Value> {
        let dir = self.cfg.data_root.join("volumes");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut v = Vec::new();
        for e in rd.flatten() {
            let data = e.path().join("_data");
            if !data.is_dir() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let created = e
                .metadata()
                .ok()
                .and_then(|m| chrono::DateTime::from_timestamp(m.ctime(), 0))
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            v.push(json!({
                "CreatedAt": created,
                "Driver": "local",
                "Labels": null,
                "Mountpoint": data,
                "Name": name,
                "Options": null,
                "Scope": "local",
                "UsageData": {"RefCount": 0, "Size": dir_size(&data)},
            }));
        }
        v.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_once_per_inode() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/f"), vec![0u8; 1000]).unwrap();
        std::fs::write(d.path().join("g"), vec![0u8; 24]).unwrap();
        std::fs::hard_link(d.path().join("g"), d.path().join("a/h")).unwrap();
        std::os::unix::fs::symlink("xyz", d.path().join("l")).unwrap();
        assert_eq!(dir_size(d.path()), 1000 + 24 + 3);
    }
}
