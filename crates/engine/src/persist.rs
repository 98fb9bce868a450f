//! Atomic persistence: write a temp file, fsync it, rename it over the target, fsync the dir.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` so that a crash leaves either the old or the new content.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|s| s.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes `data` to `path` atomically (temp + rename) without fsync: for files that are
/// regenerated from durable state or live under the exec root (a tmpfs that does not survive a
/// reboot anyway), such as an OCI bundle's config.json or an exec's process.json. A crash
/// leaves the old file, the new one, or (for a new file) possibly an empty one, never a mix.
pub fn write_volatile(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|s| s.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    fs::write(&tmp, data)?;
    fs::rename(&tmp, path)
}

/// Serialises `v` as JSON and writes it with [`write_volatile`].
pub fn write_json_volatile<T: serde::Serialize>(path: &Path, v: &T) -> std::io::Result<()> {
    let data = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    write_volatile(path, &data)
}

/// Serialises `v` as JSON and writes it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> std::io::Result<()> {
    let data = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
    write_atomic(path, &data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b.json");
        super::write_atomic(&p, b"one").unwrap();
        super::write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // no temp files left behind
        assert_eq!(std::fs::read_dir(d.path().join("a")).unwrap().count(), 1);
    }
}
