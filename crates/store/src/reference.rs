//! Reference handling for the store: a thin adapter over `berth_spec::reference`, the
//! project's one implementation of docker's reference grammar and normalisation.

use berth_spec::reference::Reference;

use crate::error::{Error, Result};

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized(Reference);

impl Normalized {
    /// Full string with `:latest` added when there is neither tag nor digest:
    /// `docker.io/library/busybox:latest`.
    pub fn to_full_string(&self) -> String {
        self.0.to_string()
    }
}

/// Parses and normalises `input` (docker's ParseNormalizedNamed + TagNameOnly semantics).
pub fn normalize(input: &str) -> Result<Normalized> {
    Reference::parse_normalized_tagged(input)
        .map(Normalized)
        .map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// The short form docker shows: `docker.io/library/busybox:latest` -> `busybox:latest`.
pub fn familiar(full: &str) -> String {
    match Reference::parse(full) {
        Ok(r) => r.familiar_string(),
        Err(_) => full.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let n = |s: &str| normalize(s).unwrap().to_full_string();
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(n("me/app"), "docker.io/me/app:latest");
        assert_eq!(n("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(n("quay.io/a/b"), "quay.io/a/b:latest");
        assert!(normalize("Busybox").is_err());
        assert!(normalize("a:").is_err());
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("docker.io/me/app:latest"), "me/app:latest");
        assert_eq!(familiar("quay.io/a/b:latest"), "quay.io/a/b:latest");
    }
}
