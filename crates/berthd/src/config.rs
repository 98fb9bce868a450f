//! `daemon.json` (Docker's format; `--config-file`, default `/etc/berth/daemon.json`): the
//! keys Berth understands are merged under the command line (flags win, lists add up), like
//! dockerd does; an unknown key is an error naming it, so a typo is not silently ignored.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DaemonJson {
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    #[serde(default)]
    pub log_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub data_root: Option<std::path::PathBuf>,
    #[serde(default)]
    pub exec_root: Option<std::path::PathBuf>,
    #[serde(default)]
    pub tlsverify: Option<bool>,
    #[serde(default)]
    pub tlscacert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub tlscert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub tlskey: Option<std::path::PathBuf>,
    #[serde(default)]
    pub debug: Option<bool>,
}

/// Reads the file; a missing default file is an empty config, a missing explicit one an error.
pub fn load(path: &Path, explicit: bool) -> anyhow::Result<DaemonJson> {
    match std::fs::read(path) {
        Ok(b) => {
            let text =
                String::from_utf8(b).with_context(|| format!("{} is not UTF-8", path.display()))?;
            if text.trim().is_empty() {
                return Ok(DaemonJson::default());
            }
            serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "unable to configure the Berth daemon with file {}: {e}",
                    path.display()
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(DaemonJson::default())
        }
        Err(e) => bail!("unable to read {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_and_typos() {
        let c: DaemonJson = serde_json::from_str(
            r#"{"insecure-registries": ["reg.local:5000"], "log-opts": {"max-size": "1m"}}"#,
        )
        .unwrap();
        assert_eq!(c.insecure_registries, ["reg.local:5000"]);
        assert_eq!(c.log_opts["max-size"], "1m");
        assert!(serde_json::from_str::<DaemonJson>(r#"{"insecure-registry": []}"#).is_err());
    }
}
