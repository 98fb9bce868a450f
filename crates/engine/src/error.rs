//! The engine's error type: every API-visible failure carries an [`ErrorKind`], which the API
//! server maps to an HTTP status in exactly one place (`berthd::http::status_for`).

use std::fmt;

/// Error classes, after moby's `errdefs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object does not exist (HTTP 404).
    NotFound,
    /// The request is malformed or names something invalid (HTTP 400).
    InvalidArgument,
    /// The request conflicts with the object's state (HTTP 409).
    Conflict,
    /// The operation is refused (HTTP 403).
    Forbidden,
    /// The request body or a header is over Berth's limits (HTTP 413).
    TooLarge,
    /// Nothing to do (HTTP 304).
    NotModified,
    /// The operation is not implemented (HTTP 501).
    NotImplemented,
    /// A dependency such as a registry is unreachable (HTTP 500, as dockerd).
    Unavailable,
    /// Anything else (HTTP 500).
    Internal,
}

/// An engine error: a kind and dockerd-compatible message text.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, m)
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, m)
    }
    pub fn no_such_container(name: &str) -> Self {
        Self::not_found(format!("No such container: {name}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
