//! Daemon address parsing (`-H`, `DOCKER_HOST`).

use crate::error::{Error, Result};
use std::path::PathBuf;

/// The default daemon socket.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// Parse `unix:///path` (or `unix://` alone, meaning the default) into a socket path.
pub fn parse_host(host: &str) -> Result<PathBuf> {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix("unix://") {
        if rest.is_empty() {
            return Ok(PathBuf::from(DEFAULT_SOCKET));
        }
        if !rest.starts_with('/') {
            return Err(Error::InvalidHost {
                host: host.to_string(),
                reason: "the socket path must be absolute, e.g. unix:///run/berth/berth.sock"
                    .into(),
            });
        }
        return Ok(PathBuf::from(rest));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    let reason = match host.split_once("://") {
        Some((scheme, _)) => {
            format!("the {scheme}:// scheme is not supported; use unix:///path/to/socket")
        }
        None => "expected unix:///path/to/socket".to_string(),
    };
    Err(Error::InvalidHost {
        host: host.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_hosts() {
        assert_eq!(
            parse_host("unix:///run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert_eq!(
            parse_host("unix://").unwrap(),
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(parse_host("/tmp/s").unwrap(), PathBuf::from("/tmp/s"));
        let e = parse_host("tcp://1.2.3.4:2375").unwrap_err().to_string();
        assert!(e.contains("tcp:// scheme is not supported"), "{e}");
        assert!(parse_host("unix://relative").is_err());
    }
}
