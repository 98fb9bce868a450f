//! Garbage collection of blobs by reference, with leases.
//!
//! What keeps a blob: it is an image's config (its id), or the uncompressed or compressed form
//! of a layer (diff id) that some image uses (compressed forms are found through
//! `<data-root>/distribution/layers/<diff>.json`), or an in-flight operation holds a lease on
//! it (a pull between download and image creation). Everything else is collected after image
//! deletions and prunes, and when the daemon starts.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::Engine;

/// Digests leased by in-flight operations (digest -> holders).
#[derive(Default)]
pub struct Leases(Mutex<HashMap<String, usize>>);

/// Holds leases until dropped.
pub struct Lease<'a> {
    leases: &'a Leases,
    digests: Vec<String>,
}

impl Leases {
    pub fn take<'a>(&'a self, digests: impl IntoIterator<Item = String>) -> Lease<'a> {
        let digests: Vec<String> = digests.into_iter().collect();
        let mut m = self.0.lock().expect("leases lock");
        for d in &digests {
            *m.entry(d.clone()).or_default() += 1;
        }
        Lease {
            leases: self,
            digests,
        }
    }

    fn held(&self) -> HashSet<String> {
        self.0
            .lock()
            .expect("leases lock")
            .keys()
            .cloned()
            .collect()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut m = self.leases.0.lock().expect("leases lock");
        for d in &self.digests {
            if let Some(n) = m.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    m.remove(d);
                }
            }
        }
    }
}

impl Engine {
    /// Removes every blob nothing references (see the module docs); returns the bytes freed.
    pub fn gc_blobs(&self) -> u64 {
        let Ok(images) = self.images.list() else {
            return 0;
        };
        let mut keep: HashSet<String> = HashSet::new();
        let mut used_diffs: HashSet<String> = HashSet::new();
        for s in &images {
            keep.insert(s.id.to_string());
            if let Ok(info) = self.images.inspect(&s.id) {
                for d in &info.record.diff_ids {
                    used_diffs.insert(d.to_string());
                    keep.insert(d.to_string());
                }
            }
        }
        // Compressed layer blobs recorded per diff id.
        let layers_dir = self.cfg.data_root.join("distribution").join("layers");
        if let Ok(rd) = std::fs::read_dir(&layers_dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(hex) = name.strip_suffix(".json") else {
                    continue;
                };
                let diff = format!("sha256:{hex}");
                let blob = std::fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v.get("digest").and_then(|d| d.as_str()).map(str::to_string));
                if used_diffs.contains(&diff) {
                    if let Some(b) = blob {
                        keep.insert(b);
                    }
                } else {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        keep.extend(self.leases.held());
        let mut freed = 0;
        for (d, size) in self.images.blobs().list().unwrap_or_default() {
            if keep.contains(&d.to_string()) {
                continue;
            }
            // Re-check the lease right before deleting (a pull may have started meanwhile).
            if self.leases.held().contains(&d.to_string()) {
                continue;
            }
            if self.images.blobs().delete(&d).is_ok() {
                freed += size;
                tracing::debug!(blob = %d, "collected an unreferenced blob");
            }
        }
        freed
    }
}
