//! Manifest, manifest list / index types and platform selection.

use serde::{Deserialize, Serialize};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// An image manifest (Docker v2 schema 2 or OCI).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// The media type a manifest declares, or one inferred from its shape.
pub fn media_type_of(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if let Some(m) = v.get("mediaType").and_then(|m| m.as_str()) {
        return Some(m.to_string());
    }
    if v.get("manifests").is_some() {
        Some(OCI_INDEX.into())
    } else if v.get("config").is_some() {
        Some(OCI_MANIFEST.into())
    } else {
        None
    }
}

pub fn is_index(media_type: &str) -> bool {
    media_type == DOCKER_LIST || media_type == OCI_INDEX
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST || media_type == OCI_MANIFEST
}

/// `os/arch[/variant]` (`linux/amd64` style); `None` on a malformed string.
pub fn parse_platform(s: &str) -> Option<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    let (os, arch, variant) = match parts.as_slice() {
        [os] => (*os, default_arch(), None),
        [os, arch] => (*os, *arch, None),
        [os, arch, v] => (*os, *arch, Some(v.to_string())),
        _ => return None,
    };
    if os.is_empty() || arch.is_empty() {
        return None;
    }
    Some(Platform {
        os: os.to_lowercase(),
        architecture: normalize_arch(arch),
        variant,
    })
}

fn normalize_arch(a: &str) -> String {
    match a {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.to_lowercase(),
    }
}

/// This machine's OCI architecture.
pub fn default_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

pub fn default_platform() -> Platform {
    Platform {
        os: "linux".into(),
        architecture: default_arch().into(),
        variant: None,
    }
}

/// Picks the entry of an index for `want` (a variant is matched only when asked for; arm64
/// defaults to v8). Entries without a platform are skipped; attestation manifests
/// (`unknown/unknown`) never match.
pub fn select<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let ok = |d: &&Descriptor| {
        let Some(p) = &d.platform else { return false };
        if p.os != want.os || normalize_arch(&p.architecture) != want.architecture {
            return false;
        }
        match (&want.variant, &p.variant) {
            (Some(w), Some(v)) => w == v,
            (Some(w), None) => want.architecture == "arm64" && w == "v8",
            (None, _) => true,
        }
    };
    // Prefer an exact variant-less match (or arm64/v8) before any variant.
    index.manifests.iter().filter(ok).min_by_key(|d| {
        match d.platform.as_ref().and_then(|p| p.variant.as_deref()) {
            None | Some("v8") => 0,
            Some(_) => 1,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(os: &str, arch: &str, variant: Option<&str>, digest: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
            urls: vec![],
        }
    }

    #[test]
    fn selects_platforms() {
        let idx = Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![
                d("unknown", "unknown", None, "att"),
                d("linux", "arm", Some("v7"), "armv7"),
                d("linux", "arm", Some("v6"), "armv6"),
                d("linux", "amd64", None, "amd"),
                d("linux", "arm64", Some("v8"), "arm64"),
            ],
        };
        let p = |s| parse_platform(s).unwrap();
        assert_eq!(select(&idx, &p("linux/amd64")).unwrap().digest, "amd");
        assert_eq!(select(&idx, &p("linux/arm/v6")).unwrap().digest, "armv6");
        assert_eq!(select(&idx, &p("linux/arm64")).unwrap().digest, "arm64");
        assert_eq!(select(&idx, &p("linux/x86_64")).unwrap().digest, "amd");
        assert!(select(&idx, &p("windows/amd64")).is_none());
        assert!(parse_platform("a/b/c/d").is_none());
    }

    #[test]
    fn media_types() {
        assert_eq!(
            media_type_of(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            OCI_INDEX
        );
        assert_eq!(
            media_type_of(br#"{"schemaVersion":2,"config":{}}"#).unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(
            media_type_of(format!(r#"{{"mediaType":"{DOCKER_LIST}"}}"#).as_bytes()).unwrap(),
            DOCKER_LIST
        );
    }
}
