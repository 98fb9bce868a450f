//! Docker/OCI image config blobs (`application/vnd.docker.container.image.v1+json` /
//! `application/vnd.oci.image.config.v1+json`), with the JSON names dockerd writes:
//! lowercase at the top level, PascalCase inside `config`/`container_config`.

use serde::{Deserialize, Serialize};

pub use berth_api_types::ContainerConfig;

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `rootfs`: `{"type":"layers","diff_ids":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub typ: String,
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            typ: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    /// RFC 3339 (nano).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "is_empty")]
    pub author: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub created_by: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub comment: String,
    /// True for history entries that did not produce a layer (not counted in diff_ids).
    #[serde(skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

/// An image config blob. Unknown fields are ignored; absent ones default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    #[serde(skip_serializing_if = "is_empty")]
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(skip_serializing_if = "is_empty")]
    pub container: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    /// RFC 3339 (nano).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "is_empty")]
    pub docker_version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(skip_serializing_if = "is_empty")]
    pub os: String,
    #[serde(rename = "os.version", skip_serializing_if = "is_empty")]
    pub os_version: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub variant: String,
    pub rootfs: RootFs,
    #[serde(skip_serializing_if = "is_empty")]
    pub author: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub comment: String,
    /// Legacy v1 parent id (only in locally committed images).
    #[serde(skip_serializing_if = "is_empty")]
    pub parent: String,
}

impl ImageConfig {
    /// The runtime config (`config`), or an empty one.
    pub fn runtime_config(&self) -> ContainerConfig {
        self.config.clone().unwrap_or_default()
    }

    /// Serialised bytes as stored in the blob store (compact JSON, field order as declared).
    /// The image id is the sha256 of these bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data structs with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a config blob.
    pub fn from_bytes(b: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockerd_config_blob_and_keeps_names() {
        let blob = r##"{"architecture":"amd64","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"Image":"sha256:abc","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"container":"ba5e","container_config":{"Hostname":"ba5e","Cmd":["/bin/sh","-c","#(nop) ","CMD [\"sh\"]"]},"created":"2023-05-19T20:19:26.164313766Z","docker_version":"20.10.23","history":[{"created":"2023-05-19T20:19:25.919419338Z","created_by":"/bin/sh -c #(nop) ADD file:abc in / "},{"created":"2023-05-19T20:19:26.164313766Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:9547b4c33213e630a0ca602a989ecc094e042146ae8afa502e1e65af6473db03"]}}"##;
        let c = ImageConfig::from_bytes(blob.as_bytes()).unwrap();
        assert_eq!(c.architecture, "amd64");
        assert_eq!(c.runtime_config().cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.history.len(), 2);
        assert!(c.history[1].empty_layer);
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        let v: serde_json::Value = serde_json::from_slice(&c.to_bytes()).unwrap();
        let orig: serde_json::Value = serde_json::from_str(blob).unwrap();
        for k in orig.as_object().unwrap().keys() {
            assert!(v.get(k).is_some(), "lost {k}");
        }
        assert_eq!(v["config"]["Env"], orig["config"]["Env"]);
        assert_eq!(v["config"]["Entrypoint"], serde_json::Value::Null);
        assert_eq!(v["history"][1]["empty_layer"], true);
        assert!(v["history"][0].get("empty_layer").is_none());
        assert_eq!(v["rootfs"]["type"], "layers");
    }

    #[test]
    fn oci_minimal_config() {
        let blob = r#"{"architecture":"arm64","variant":"v8","os":"linux","config":{"Env":["A=1"],"Entrypoint":["/init"],"ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c = ImageConfig::from_bytes(blob.as_bytes()).unwrap();
        assert_eq!(c.variant, "v8");
        let rc = c.runtime_config();
        assert_eq!(rc.entrypoint, Some(vec!["/init".to_string()]));
        assert!(rc.exposed_ports.unwrap().contains_key("80/tcp"));
        let out = String::from_utf8(c.to_bytes()).unwrap();
        assert!(out.contains(r#""variant":"v8""#), "{out}");
        assert!(!out.contains("docker_version"), "{out}");
    }
}
