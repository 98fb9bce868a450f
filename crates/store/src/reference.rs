//! Minimal image-reference normalisation used until `berth_spec::reference` lands.
//! Only what resolution and tagging need: `busybox` -> `docker.io/library/busybox:latest`.

use crate::error::{Error, Result};

const DEFAULT_DOMAIN: &str = "docker.io";
const OFFICIAL_PREFIX: &str = "library/";

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// `docker.io/library/busybox`
    pub name: String,
    pub tag: Option<String>,
    /// `sha256:<hex>`
    pub digest: Option<String>,
}

impl Normalized {
    /// Full string with `:latest` added when there is neither tag nor digest.
    pub fn to_full_string(&self) -> String {
        let mut s = self.name.clone();
        match (&self.tag, &self.digest) {
            (None, None) => s.push_str(":latest"),
            (tag, digest) => {
                if let Some(t) = tag {
                    s.push(':');
                    s.push_str(t);
                }
                if let Some(d) = digest {
                    s.push('@');
                    s.push_str(d);
                }
            }
        }
        s
    }
}

fn invalid(input: &str) -> Error {
    Error::InvalidArgument(format!("invalid reference format: {input:?}"))
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    b.iter().all(|&x| alnum(x) || x == b'.' || x == b'_' || x == b'-')
}

/// Parses and normalises `input` (docker's ParseNormalizedNamed + TagNameOnly semantics).
pub fn normalize(input: &str) -> Result<Normalized> {
    if input.is_empty() {
        return Err(invalid(input));
    }
    let (rest, digest) = match input.split_once('@') {
        Some((r, d)) => {
            let _: crate::Digest = d.parse().map_err(|_| invalid(input))?;
            (r, Some(d.to_string()))
        }
        None => (input, None),
    };
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let t = &rest[last_slash + i + 1..];
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(invalid(input));
            }
            (&rest[..last_slash + i], Some(t.to_string()))
        }
        None => (rest, None),
    };
    let (domain, path) = match name.split_once('/') {
        Some((d, p)) if d.contains('.') || d.contains(':') || d == "localhost" || d.chars().any(|c| c.is_ascii_uppercase()) => {
            (d.to_string(), p.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path
    };
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(Error::InvalidArgument(format!(
            "invalid reference format: repository name ({path}) must be lowercase"
        )));
    }
    if !path.split('/').all(valid_path_component) {
        return Err(invalid(input));
    }
    if crate::digest::is_full_hex(&path[path.rfind('/').map(|i| i + 1).unwrap_or(0)..])
        && domain == DEFAULT_DOMAIN
        && path.starts_with(OFFICIAL_PREFIX)
    {
        return Err(Error::InvalidArgument(format!(
            "invalid repository name ({input}), cannot specify 64-byte hexadecimal strings"
        )));
    }
    Ok(Normalized { name: format!("{domain}/{path}"), tag, digest })
}

/// The short form docker shows: `docker.io/library/busybox:latest` -> `busybox:latest`.
pub fn familiar(full: &str) -> String {
    if let Some(r) = full.strip_prefix("docker.io/library/") {
        if !r.contains('/') {
            return r.to_string();
        }
    }
    full.strip_prefix("docker.io/").unwrap_or(full).to_string()
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
        assert_eq!(familiar("docker.io/library/busybox:latest"), "busybox:latest");
        assert_eq!(familiar("docker.io/me/app:latest"), "me/app:latest");
        assert_eq!(familiar("quay.io/a/b:latest"), "quay.io/a/b:latest");
    }
}
