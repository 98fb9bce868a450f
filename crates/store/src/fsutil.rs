//! Small filesystem helpers: atomic writes, temp names.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// A random hex suffix for temp names.
pub(crate) fn rand_suffix() -> String {
    let mut b = [0u8; 8];
    // getrandom only fails if the OS has no randomness source; fall back to pid+time.
    if getrandom::getrandom(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!("{}-{t}", std::process::id());
    }
    hex::encode(b)
}

/// fsync a directory so a rename inside it is durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .ctx("fsync dir", dir)
}

/// Write `data` to `path` atomically: temp file in the same dir, fsync, rename, fsync(dir).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", rand_suffix()));
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .ctx("create", &tmp)?;
        f.write_all(data).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
        drop(f);
        fs::rename(&tmp, path).ctx("rename", path)?;
        fsync_dir(dir)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

pub(crate) fn mkdir_all(p: &Path) -> Result<()> {
    fs::create_dir_all(p).ctx("mkdir", p)
}

/// Remove a path whatever it is; missing is fine.
pub(crate) fn remove_any(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::Error::io("stat", p, e)),
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).ctx("remove", p),
        Ok(_) => fs::remove_file(p).ctx("remove", p),
    }
}

pub(crate) fn tmp_path(dir: &Path, prefix: &str) -> PathBuf {
    dir.join(format!("{prefix}{}", rand_suffix()))
}
