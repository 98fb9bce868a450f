//! Store errors.

use std::path::PathBuf;

/// Coarse classification of an [`Error`], for mapping to HTTP statuses
/// (NotFound -> 404, Conflict -> 409, InvalidArgument -> 400, Io/Corrupt -> 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Io,
    Corrupt,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An image reference or id that resolves to nothing. `what` is the familiar reference,
    /// e.g. `nosuchimage:latest`, so the text matches dockerd's.
    #[error("No such image: {what}")]
    NoSuchImage { what: String },

    /// Any other missing object (blob, snapshot, tag).
    #[error("{what} not found")]
    NotFound { what: String },

    /// A short id prefix that matches more than one image. dockerd answers 404 for this, so
    /// [`Error::kind`] reports NotFound.
    #[error("multiple IDs found with provided prefix: {prefix}")]
    Ambiguous { prefix: String },

    #[error("conflict: {0}")]
    Conflict(String),

    #[error("{0}")]
    InvalidArgument(String),

    /// A layer whose tar entry could not be extracted safely or correctly.
    #[error("invalid layer entry {entry:?}: {reason}")]
    InvalidLayer { entry: String, reason: String },

    /// Content whose digest or size did not match what was expected.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },

    #[error("size mismatch: expected {expected}, got {actual}")]
    SizeMismatch { expected: u64, actual: u64 },

    #[error("corrupt store data at {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoSuchImage { .. } | Error::NotFound { .. } | Error::Ambiguous { .. } => {
                ErrorKind::NotFound
            }
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::InvalidArgument(_)
            | Error::InvalidLayer { .. }
            | Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. } => ErrorKind::InvalidArgument,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach an operation and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e.into()))
    }
}
