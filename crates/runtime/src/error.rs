//! Error type of the runtime library.

use std::io;
use std::path::PathBuf;

/// Errors returned by [`crate::Runtime`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container id contains characters runc would refuse.
    #[error("invalid container id format: {0:?}")]
    InvalidId(String),
    /// `create` with an id that already has a state directory.
    #[error("container with id exists: {0}")]
    Exists(String),
    /// No state for this id.
    #[error("container does not exist: {0}")]
    NotFound(String),
    /// The requested operation is illegal in the container's current status.
    #[error("{message}")]
    BadState { id: String, message: String },
    /// config.json could not be read or parsed.
    #[error("cannot load spec {path}: {}", spec_text(source))]
    Spec {
        path: PathBuf,
        source: oci_spec::OciSpecError,
    },
    /// config.json is well-formed but asks for something unsupported or contradictory.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A file system or syscall operation failed.
    #[error("{context}: {}", io_text(source))]
    Io { context: String, source: io::Error },
    /// A cgroup operation failed.
    #[error("cgroup {path}: {}", io_text(source))]
    Cgroup { path: PathBuf, source: io::Error },
    /// state.json is corrupt.
    #[error("state file {path}: {source}")]
    StateFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// An OCI hook failed or timed out.
    #[error("{kind} hook {path}: {message}")]
    Hook {
        kind: String,
        path: PathBuf,
        message: String,
    },
    /// The container init reported an error while setting up (runc-like text).
    #[error("{message}")]
    Init { message: String, exit_code: i32 },
}

impl Error {
    /// The exit code a runc-compatible front end should use: 127 when the executable is
    /// missing, 126 when it is not executable or the cwd is bad, 1 otherwise.
    pub fn exit_code_hint(&self) -> i32 {
        match self {
            Error::Init { exit_code, .. } => *exit_code,
            _ => 1,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn nix(context: impl Into<String>, e: nix::Error) -> Self {
        Error::Io {
            context: context.into(),
            source: io::Error::from_raw_os_error(e as i32),
        }
    }
}

/// Go-style (lowercase) text for an errno, as runc prints it.
pub(crate) fn errno_text(e: nix::Error) -> String {
    let d = e.desc();
    let mut c = d.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Go-style text for an io::Error.
pub(crate) fn io_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_text(nix::Error::from_raw(n)),
        None => e.to_string(),
    }
}

/// oci-spec's own text is just "serde failed"; the innermost cause says what is wrong.
fn spec_text(e: &oci_spec::OciSpecError) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let t = cur.to_string();
    let mut s = t.as_str();
    while let Some(rest) = s.strip_prefix("serde failed: ") {
        s = rest;
    }
    s.to_string()
}
