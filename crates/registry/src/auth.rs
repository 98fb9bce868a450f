//! Credentials (`X-Registry-Auth`, `POST /auth`) and `WWW-Authenticate` challenges.

use base64::Engine as _;
use serde::Deserialize;

/// Docker's AuthConfig, as sent in `X-Registry-Auth` and the `POST /auth` body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub auth: String,
    #[serde(default)]
    pub serveraddress: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    #[serde(default, rename = "registrytoken")]
    pub registry_token: String,
}

impl AuthConfig {
    /// Decodes `X-Registry-Auth` (base64url JSON, padded or not; `e30=` is `{}`).
    pub fn from_header(h: &str) -> Option<AuthConfig> {
        let h = h.trim();
        if h.is_empty() {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(h)
            .or_else(|_| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h.trim_end_matches('='))
            })
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
            .ok()?;
        let mut c: AuthConfig = serde_json::from_slice(&bytes).ok()?;
        c.fill_from_auth();
        Some(c)
    }

    /// Fills username/password from the `auth` field (`base64(user:pass)`) when they are empty.
    pub fn fill_from_auth(&mut self) {
        if self.username.is_empty() && !self.auth.is_empty() {
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(&self.auth) {
                if let Some((u, p)) = String::from_utf8_lossy(&b).split_once(':') {
                    self.username = u.to_string();
                    self.password = p.to_string();
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty() && self.identity_token.is_empty()
    }

    /// `Basic base64(user:pass)`, if there is a user name.
    pub fn basic(&self) -> Option<String> {
        if self.username.is_empty() {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
    pub fn parse(h: &str) -> Option<Challenge> {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        let params = parse_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic {
                realm: get("realm"),
            })
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
            })
        } else {
            None
        }
    }
}

/// `k="v", k2=v2` with quoted strings that may contain commas.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i] == b' ') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let key = s[ks..i].trim().to_string();
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i.min(b.len());
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i.min(b.len())].trim().to_string();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic() {
        let c = Challenge::parse(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg, x",scope="repository:a:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: Some("reg, x".into())
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic {
                realm: Some("Registry Realm".into())
            })
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn decodes_x_registry_auth() {
        assert!(AuthConfig::from_header("e30=").unwrap().is_empty());
        let h = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"u","password":"p?>","serveraddress":"r"}"#);
        let c = AuthConfig::from_header(&h).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
        assert_eq!(c.basic().unwrap(), "Basic dTpwPz4=");
        let mut c = AuthConfig {
            auth: "dTpw".into(),
            ..Default::default()
        };
        c.fill_from_auth();
        assert_eq!(c.username, "u");
    }
}
