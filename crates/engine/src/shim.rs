//! The engine's side of the shim protocol (docs/DESIGN.md, "Shim"): spawning `berth-shim`,
//! and the framed control connection.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::error::{Error, Result};

pub use berth_shim::protocol::{
    CLOSE_STDIN, EXIT, FAILED, RESIZE, START, STARTED, STDERR, STDIN, STDOUT,
};

/// Largest frame accepted from a shim (the protocol's own bound).
const MAX_FRAME: u32 = berth_shim::protocol::MAX_FRAME as u32;

/// What the shim needs to know to monitor one container.
pub struct ShimArgs<'a> {
    pub shim_bin: &'a Path,
    /// Executed instead of `shim_bin` when set (the daemon's sealed copy), with `shim_bin` as
    /// argv[0].
    pub exec_path: Option<&'a Path>,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub runtime_root: &'a Path,
    pub log_path: &'a Path,
    pub socket: &'a Path,
    pub exit_file: &'a Path,
    pub tty: bool,
    pub stdin: bool,
    /// `--log-driver ... --log-max-size ...` (crate::logs::LogSetup::shim_args).
    pub log_args: Vec<std::ffi::OsString>,
}

/// Runs `berth-shim`; returns the container init pid once the runtime `create` succeeded, or the
/// runtime's error text.
pub async fn spawn(a: &ShimArgs<'_>) -> Result<i32> {
    let mut cmd = tokio::process::Command::new(a.exec_path.unwrap_or(a.shim_bin));
    cmd.arg0(a.shim_bin);
    cmd.arg("--id")
        .arg(a.id)
        .arg("--bundle")
        .arg(a.bundle)
        .arg("--runtime-root")
        .arg(a.runtime_root)
        .arg("--log-path")
        .arg(a.log_path)
        .arg("--socket")
        .arg(a.socket)
        .arg("--exit-file")
        .arg(a.exit_file)
        .args(&a.log_args);
    if a.tty {
        cmd.arg("--tty");
    }
    if a.stdin {
        cmd.arg("--stdin");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd
        .output()
        .await
        .map_err(|e| Error::internal(format!("cannot run {}: {e}", a.shim_bin.display())))?;
    if out.status.success() {
        let s = String::from_utf8_lossy(&out.stdout);
        s.trim()
            .parse::<i32>()
            .map_err(|_| Error::internal(format!("shim reported an invalid pid: {:?}", s.trim())))
    } else {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(Error::new(crate::ErrorKind::InvalidArgument, msg))
    }
}

/// Reading half of a shim connection.
pub struct FrameReader {
    r: OwnedReadHalf,
}

/// Writing half of a shim connection.
pub struct FrameWriter {
    w: OwnedWriteHalf,
}

pub async fn connect(socket: &Path) -> std::io::Result<(FrameReader, FrameWriter)> {
    let s = UnixStream::connect(socket).await?;
    let (r, w) = s.into_split();
    Ok((FrameReader { r }, FrameWriter { w }))
}

impl FrameReader {
    /// The next frame, or None at EOF.
    pub async fn next(&mut self) -> std::io::Result<Option<(u8, Bytes)>> {
        let mut hdr = [0u8; 5];
        match self.r.read_exact(&mut hdr).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]);
        if len > MAX_FRAME {
            return Err(std::io::Error::other(format!(
                "shim frame too large: {len}"
            )));
        }
        let mut buf = vec![0u8; len as usize];
        self.r.read_exact(&mut buf).await?;
        Ok(Some((hdr[0], Bytes::from(buf))))
    }
}

impl FrameWriter {
    pub async fn send(&mut self, kind: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(5 + payload.len());
        buf.push(kind);
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(payload);
        self.w.write_all(&buf).await
    }
}

/// Locates `berth-shim`: `$BERTH_SHIM`, else next to the running executable, else `$PATH`.
pub fn find_shim_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_SHIM") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("berth-shim");
            if p.exists() {
                return p;
            }
        }
    }
    PathBuf::from("berth-shim")
}
