//! Client errors.

use std::path::PathBuf;

/// Everything that can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `DOCKER_HOST` / `-H` had a form we cannot use.
    #[error("invalid daemon host {host:?}: {reason}")]
    InvalidHost { host: String, reason: String },

    /// The socket could not be reached at all.
    #[error("{}", connect_message(socket, source))]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A `tcp://` daemon could not be reached (or its TLS handshake failed).
    #[error("Cannot connect to the Berth daemon at tcp://{addr}: {source}. Is berthd listening there (berthd --host tcp://{addr} --tlsverify ...)?")]
    ConnectTcp {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    /// The daemon answered with a non-success status.
    #[error("Error response from daemon: {message}")]
    Api { status: u16, message: String },

    /// A hijack request was not answered with 101.
    #[error("unable to upgrade to tcp, received {status}")]
    NoUpgrade { status: u16 },

    /// Transport-level HTTP failure.
    #[error("{context}: {source}")]
    Http {
        context: String,
        #[source]
        source: hyper::Error,
    },

    /// Building a request failed (bad path characters, ...).
    #[error("building request for {path}: {source}")]
    Request {
        path: String,
        #[source]
        source: hyper::http::Error,
    },

    /// A response body could not be decoded.
    #[error("decoding response of {context}: {source}")]
    Decode {
        context: String,
        #[source]
        source: serde_json::Error,
    },

    /// Reading a local file/stdin or the hijacked stream failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// An error reported inside a JSON-lines stream after a 200 header.
    #[error("{message}")]
    Stream { message: String, code: Option<i64> },
}

/// What to say when the socket cannot be reached: what is wrong and what to do next.
fn connect_message(socket: &std::path::Path, source: &std::io::Error) -> String {
    let host = format!("unix://{}", socket.display());
    match source.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied while trying to connect to the Berth daemon socket at {host}: \
             run as root, or add your user to the socket's group (berthd --group, default 'berth')"
        ),
        _ => format!(
            "Cannot connect to the Berth daemon at {host}. Is berthd running? \
             Start it with: sudo berthd --host {host} &"
        ),
    }
}

impl Error {
    /// HTTP status for `Api` errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 from the daemon.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The daemon's `message`, if this is an API error.
    pub fn api_message(&self) -> Option<&str> {
        match self {
            Error::Api { message, .. } => Some(message),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn http(context: impl Into<String>, source: hyper::Error) -> Self {
        Error::Http {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
