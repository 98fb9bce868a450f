//! Docker image references, parsed and normalised like docker/distribution's
//! `reference.ParseNormalizedNamed` (+ `TagNameOnly`), with the same error texts.
//!
//! Grammar: `[domain/]path[:tag][@digest]`; `domain` = host components separated by `.`
//! (or `[ipv6]`) with an optional `:port`; path components are `[a-z0-9]+` joined by `.`, `_`,
//! `__` or runs of `-`; tags `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; digests `algo:hex{32,}`.

use std::fmt;

/// Registry used when a reference has no domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Tag added by [`Reference::parse_normalized_tagged`] when none is given.
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a reference was rejected (texts as Docker prints them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Does not match the grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// Upper case in the repository path (`remote` is the path that was checked).
    /// Upper case elsewhere in the name (e.g. the first component): dockerd 20.10 answers
    /// `invalid reference format: repository name must be lowercase`.
    #[error("invalid reference format: repository name must be lowercase")]
    NameContainsUppercase,
    #[error("invalid reference format: repository name ({remote}) must be lowercase")]
    MustBeLowercase {
        /// e.g. `library/Busybox`.
        remote: String,
    },
    /// Would be an image id.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    /// Domain + path longer than 255.
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    /// Bad digest syntax.
    #[error("invalid checksum digest format")]
    DigestFormat,
    /// Wrong length for the digest algorithm.
    #[error("invalid checksum digest length")]
    DigestLength,
    /// Digest algorithm other than sha256/sha384/sha512.
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
    /// A tag given to [`Reference::with_tag`] is invalid.
    #[error("invalid tag format")]
    InvalidTag,
}

/// A parsed, normalised reference: always has a domain (`docker.io` by default) and, for
/// `docker.io` single-component names, the `library/` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // separator run
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        // [ipv6]:port
        let Some(end) = rest.find(']') else {
            return false;
        };
        let ip = &rest[..end];
        if ip.is_empty()
            || !ip
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return false;
        }
        let after = &rest[end + 1..];
        if after.is_empty() {
            return true;
        }
        match after.strip_prefix(':') {
            Some(p) => ("x", Some(p)),
            None => return false,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    host.split('.').all(is_domain_component)
}

fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let w = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && w(b[0])
        && b[1..].iter().all(|c| w(*c) || *c == b'.' || *c == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn digest_matches_grammar(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|p| {
        let b = p.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|c| c.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// go-digest's `Digest.Validate` for a string that already matched the grammar.
fn validate_digest(s: &str) -> Result<(), ReferenceError> {
    let (alg, hex) = s.split_once(':').ok_or(ReferenceError::DigestFormat)?;
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestUnsupported),
    };
    if hex.len() != len {
        return Err(ReferenceError::DigestLength);
    }
    if !hex
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return Err(ReferenceError::DigestFormat);
    }
    Ok(())
}

/// True for exactly 64 lowercase hex characters (a full image/container id).
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// True if `s` could be a (possibly truncated) hex id, with or without a `sha256:` prefix:
/// 1 to 64 lowercase hex characters.
pub fn looks_like_id(s: &str) -> bool {
    let s = s.strip_prefix("sha256:").unwrap_or(s);
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Splits `name` into (domain, remainder) like distribution's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

impl Reference {
    /// distribution's `Parse`: the strict grammar, no normalisation. A first path component
    /// that is a valid domain *and* followed by more components is taken as the domain;
    /// otherwise the domain is empty.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !digest_matches_grammar(d) {
                    return Err(Self::grammar_error(s));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            if !is_tag(t) {
                return Err(Self::grammar_error(s));
            }
        }
        let comps: Vec<&str> = name.split('/').collect();
        let (domain, path) = if comps.len() >= 2
            && is_domain(comps[0])
            && comps[1..].iter().all(|c| is_path_component(c))
        {
            (comps[0].to_string(), comps[1..].join("/"))
        } else if comps.iter().all(|c| is_path_component(c)) {
            (String::new(), name.to_string())
        } else {
            return Err(Self::grammar_error(s));
        };
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(d) = &digest {
            validate_digest(d)?;
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    fn grammar_error(_s: &str) -> ReferenceError {
        // Upper case in the path is reported earlier by `parse_normalized` with the repository
        // name; everything else is the generic message.
        ReferenceError::InvalidFormat
    }

    /// `ParseNormalizedNamed`: `busybox` -> `docker.io/library/busybox` (no tag added).
    pub fn parse_normalized(s: &str) -> Result<Self, ReferenceError> {
        if is_full_id(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => &remainder[..],
        };
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::MustBeLowercase {
                remote: remote.to_string(),
            });
        }
        let name_part = remainder.split(['@']).next().unwrap_or("");
        let name_part = match name_part.rfind(':') {
            Some(i) if !name_part[i..].contains('/') => &name_part[..i],
            _ => name_part,
        };
        if domain.to_lowercase() != domain && !domain.contains(['.', ':']) && domain != "localhost"
        {
            // A first component with upper case that is not a host name: observed on dockerd
            // (`docker import f UPPER/case:bad`).
            let _ = name_part;
            return Err(ReferenceError::NameContainsUppercase);
        }
        Self::parse(&format!("{domain}/{remainder}"))
    }

    /// `ParseNormalizedNamed` + `TagNameOnly`: adds `:latest` when there is neither a tag nor
    /// a digest. This is what `docker pull/run/tag` use.
    pub fn parse_normalized_tagged(s: &str) -> Result<Self, ReferenceError> {
        Ok(Self::parse_normalized(s)?.with_default_tag())
    }

    /// Adds `latest` if neither tag nor digest is present.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// Same repository with the given tag (digest dropped).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// Registry domain, e.g. `docker.io`, `localhost:5000` (empty only from [`Self::parse`]).
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// Repository path, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    /// Digest (`sha256:<hex>`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
    /// Full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }
    /// Short repository name as Docker displays it: `busybox`, `user/app`,
    /// `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }
    /// Display form: `busybox:latest`, `user/app:v1`, `busybox@sha256:...`.
    pub fn familiar_string(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    fn with_suffix(&self, mut s: String) -> String {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

/// Full form: `docker.io/library/busybox:latest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.name()))
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    /// Same as [`Reference::parse_normalized`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_normalized(s)
    }
}

#[cfg(test)]
mod regression_uppercase_domain {
    use super::*;
    #[test]
    fn uppercase_first_component_is_rejected_like_dockerd() {
        let e = Reference::parse_normalized("UPPER/case:bad").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid reference format: repository name must be lowercase"
        );
        assert!(Reference::parse_normalized("Foo/bar").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalisation_table() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
            (
                "user/app/sub",
                "docker.io/user/app/sub:latest",
                "user/app/sub:latest",
            ),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
            ),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            (
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000/x:latest",
            ),
            (
                "localhost:5000/x:t",
                "localhost:5000/x:t",
                "localhost:5000/x:t",
            ),
            (
                "example.com/a/b:V1.0-rc_1",
                "example.com/a/b:V1.0-rc_1",
                "example.com/a/b:V1.0-rc_1",
            ),
            ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
            (
                "a__b-c---d/f_g.h",
                "docker.io/a__b-c---d/f_g.h:latest",
                "a__b-c---d/f_g.h:latest",
            ),
            (
                "localhost:5000",
                "docker.io/library/localhost:5000",
                "localhost:5000",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse_normalized_tagged(input)
                .unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *full, "{input}");
            assert_eq!(r.familiar_string(), *familiar, "{input}");
        }
    }

    #[test]
    fn digests() {
        let s = format!("example.com/a/b@{D}");
        let r = Reference::parse_normalized_tagged(&s).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.to_string(), s);
        let r = Reference::parse_normalized_tagged(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/busybox:1@{D}"));
        assert_eq!(r.familiar_string(), format!("busybox:1@{D}"));
        assert_eq!(
            Reference::parse_normalized("busybox@sha256:abcd").unwrap_err(),
            ReferenceError::InvalidFormat
        );
        assert_eq!(
            Reference::parse_normalized(&format!("busybox@{}", &D[..70])).unwrap_err(),
            ReferenceError::DigestLength
        );
        assert_eq!(
            Reference::parse_normalized(&format!("busybox@md5:{}", &D[7..])).unwrap_err(),
            ReferenceError::DigestUnsupported
        );
    }

    #[test]
    fn errors() {
        let e = |s: &str| Reference::parse_normalized(s).unwrap_err().to_string();
        assert_eq!(
            e("Busybox"),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            e("user/App:v1"),
            "invalid reference format: repository name (user/App) must be lowercase"
        );
        for bad in [
            "",
            ":",
            "busybox:",
            "busy box",
            "busybox::1",
            "-x",
            "x-",
            "a//b",
            "a/",
            "x:-t",
            "a@b",
            "a...b",
            "ex.com:port/x",
            "busybox:tag/x",
        ] {
            assert_eq!(e(bad), "invalid reference format", "{bad:?}");
        }
        let hex = &D[7..];
        assert_eq!(
            e(hex),
            format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings")
        );
        let long = "a".repeat(250);
        assert_eq!(
            e(&format!("x/{long}")),
            "repository name must not be more than 255 characters"
        );
        assert!(Reference::parse_normalized(&format!("busybox:{}", "t".repeat(128))).is_ok());
        assert_eq!(
            e(&format!("busybox:{}", "t".repeat(129))),
            "invalid reference format"
        );
    }

    #[test]
    fn with_tag_and_names() {
        let r = Reference::parse_normalized("user/app@".trim_end_matches('@')).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.name(), "docker.io/user/app");
        assert_eq!(r.familiar_name(), "user/app");
        let t = r.with_tag("v2").unwrap();
        assert_eq!(t.to_string(), "docker.io/user/app:v2");
        assert!(r.with_tag("bad tag").is_err());
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "user/app");
    }

    #[test]
    fn id_helpers() {
        assert!(looks_like_id("abc123"));
        assert!(looks_like_id("sha256:abc"));
        assert!(looks_like_id(&D[7..]));
        assert!(!looks_like_id(""));
        assert!(!looks_like_id("busybox"));
        assert!(!looks_like_id("ABC"));
        assert!(!looks_like_id(&format!("{}0", &D[7..])));
        assert!(is_full_id(&D[7..]));
        assert!(!is_full_id(&D[8..]));
    }
}
