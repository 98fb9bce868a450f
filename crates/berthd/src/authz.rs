//! Access control beyond the socket's file mode: who is calling (peer credentials of a Unix
//! client, the certificate of a TLS client) and an optional policy file that can deny API calls.
//!
//! The policy file (`berthd --authz-policy FILE`) is JSON:
//!
//! ```json
//! {"default": "allow",
//!  "rules": [
//!    {"action": "deny", "uids": [1000], "methods": ["POST", "DELETE"], "paths": ["/containers/"],
//!     "message": "read-only users may not change containers"},
//!    {"action": "allow", "users": ["ci-bot"], "paths": ["/images/"]}
//!  ]}
//! ```
//!
//! Rules are tried in order; the first rule whose every given field matches decides. `paths`
//! are prefixes of the request path without the `/v1.xx` version prefix; `users` match a TLS
//! client's certificate common name or a Unix client's user name; `uids` match a Unix client.
//! A denied call gets HTTP 403 and dockerd's AuthZ plugin wording.

use std::path::Path;

use serde::Deserialize;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub pid: Option<i32>,
    /// Unix user name (from the uid) or the TLS client certificate's common name.
    pub user: Option<String>,
    /// `unix` or the TCP remote address.
    pub transport: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub action: Action,
    #[serde(default)]
    pub uids: Vec<u32>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default = "default_allow")]
    pub default: Action,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

fn default_allow() -> Action {
    Action::Allow
}

/// The name under which denials are reported (dockerd: "authorization denied by plugin NAME: msg").
pub const PLUGIN_NAME: &str = "berth-policy";

impl Policy {
    pub fn load(path: &Path) -> anyhow::Result<Policy> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading authz policy {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid authz policy {}: {e}", path.display()))
    }

    /// `Err(message)` when the call is denied. `path` is without the version prefix.
    pub fn check(&self, peer: &Peer, method: &str, path: &str) -> Result<(), String> {
        for r in &self.rules {
            if r.matches(peer, method, path) {
                return match r.action {
                    Action::Allow => Ok(()),
                    Action::Deny => Err(r
                        .message
                        .clone()
                        .unwrap_or_else(|| "denied by policy".into())),
                };
            }
        }
        match self.default {
            Action::Allow => Ok(()),
            Action::Deny => Err("denied by the default policy".into()),
        }
    }
}

impl Rule {
    fn matches(&self, peer: &Peer, method: &str, path: &str) -> bool {
        let uid_ok = self.uids.is_empty() || peer.uid.is_some_and(|u| self.uids.contains(&u));
        let user_ok = self.users.is_empty()
            || peer
                .user
                .as_deref()
                .is_some_and(|u| self.users.iter().any(|x| x == u));
        let method_ok =
            self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method));
        let path_ok =
            self.paths.is_empty() || self.paths.iter().any(|p| path.starts_with(p.as_str()));
        uid_ok && user_ok && method_ok && path_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(uid: u32) -> Peer {
        Peer {
            uid: Some(uid),
            transport: "unix".into(),
            ..Default::default()
        }
    }

    #[test]
    fn first_matching_rule_decides() {
        let p: Policy = serde_json::from_str(
            r#"{"rules":[
                {"action":"allow","uids":[0]},
                {"action":"deny","methods":["post","DELETE"],"paths":["/containers/"],"message":"no"}
            ]}"#,
        )
        .unwrap();
        assert!(p.check(&unix(0), "POST", "/containers/create").is_ok());
        assert_eq!(
            p.check(&unix(1000), "POST", "/containers/create"),
            Err("no".to_string())
        );
        assert!(p.check(&unix(1000), "GET", "/containers/json").is_ok());
        assert!(p.check(&unix(1000), "DELETE", "/images/x").is_ok());
    }

    #[test]
    fn default_deny_and_users() {
        let p: Policy = serde_json::from_str(
            r#"{"default":"deny","rules":[{"action":"allow","users":["ci"],"paths":["/_ping","/version"]}]}"#,
        )
        .unwrap();
        let ci = Peer {
            user: Some("ci".into()),
            ..Default::default()
        };
        assert!(p.check(&ci, "GET", "/version").is_ok());
        assert!(p.check(&ci, "GET", "/containers/json").is_err());
        assert!(p.check(&unix(0), "GET", "/version").is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            serde_json::from_str::<Policy>(r#"{"rules":[{"action":"deny","uid":[1]}]}"#).is_err()
        );
        assert!(serde_json::from_str::<Policy>(r#"{"rules":[{"action":"maybe"}]}"#).is_err());
    }
}
