//! The `filters` query parameter.
//!
//! Clients send either the map form `{"label":{"k=v":true}}` (current docker CLI) or the legacy
//! list form `{"label":["k=v"]}` (older docker-py); both parse into the same [`Filters`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Filter name -> values, in a stable order. Serialises in the map form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

/// Why a `filters` value was rejected (text as dockerd words it).
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// Not JSON of either accepted shape.
    #[error("invalid filter: {0}")]
    Json(#[source] serde_json::Error),
    /// A filter name this endpoint does not know.
    #[error("invalid filter '{0}'")]
    UnknownFilter(String),
}

impl Filters {
    /// Parses the (already URL-decoded) `filters` query value; empty means no filters.
    pub fn parse(s: &str) -> Result<Self, FilterError> {
        if s.trim().is_empty() {
            return Ok(Filters::default());
        }
        serde_json::from_str(s).map_err(FilterError::Json)
    }

    /// Rejects any filter name not in `accepted` with dockerd's `invalid filter 'name'`.
    pub fn validate(&self, accepted: &[&str]) -> Result<(), FilterError> {
        for k in self.0.keys() {
            if !accepted.contains(&k.as_str()) {
                return Err(FilterError::UnknownFilter(k.clone()));
            }
        }
        Ok(())
    }

    /// No filters at all.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(|v| v.is_empty())
    }

    /// The values given for `name` (empty if none).
    pub fn get(&self, name: &str) -> &[String] {
        self.0.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether `name` was given at all.
    pub fn contains(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// Adds a value (builder style, for clients).
    pub fn add(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let v = self.0.entry(name.into()).or_default();
        let value = value.into();
        if !v.contains(&value) {
            v.push(value);
        }
        self
    }

    /// True if no `name` filter is given or `value` equals one of them.
    pub fn exact_match(&self, name: &str, value: &str) -> bool {
        let vals = self.get(name);
        vals.is_empty() || vals.iter().any(|v| v == value)
    }

    /// Docker's `MatchKVList`: every `key` / `key=value` filter under `name` (usually
    /// `label`) must be satisfied by `labels`. True when no such filter is given.
    pub fn match_kv(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(name).iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|lv| lv == v),
            None => labels.contains_key(f.as_str()),
        })
    }

    /// The map form as a JSON string (what to put in the query string).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

impl Serialize for Filters {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .0
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.iter().map(|v| (v.as_str(), true)).collect()))
            .collect();
        m.serialize(s)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FilterValues {
    List(Vec<String>),
    Map(BTreeMap<String, bool>),
}

impl<'de> Deserialize<'de> for Filters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Filters;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a filters object {\"name\": {\"value\": true}} or {\"name\": [\"value\"]}",
                )
            }
            fn visit_unit<E: de::Error>(self) -> Result<Filters, E> {
                Ok(Filters::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Filters, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = a.next_entry::<String, Option<FilterValues>>()? {
                    let vals = match v {
                        None => Vec::new(),
                        Some(FilterValues::List(l)) => l,
                        Some(FilterValues::Map(m)) => m.into_keys().collect(),
                    };
                    let e: &mut Vec<String> = out.entry(k).or_default();
                    for v in vals {
                        if !e.contains(&v) {
                            e.push(v);
                        }
                    }
                }
                Ok(Filters(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_the_same() {
        let a =
            Filters::parse(r#"{"label":{"k=v":true,"x":true},"status":{"running":true}}"#).unwrap();
        let b = Filters::parse(r#"{"label":["k=v","x"],"status":["running"]}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("label"), ["k=v".to_string(), "x".to_string()]);
        assert_eq!(a.get("status"), ["running".to_string()]);
        assert!(a.get("name").is_empty());
    }

    #[test]
    fn empty_and_invalid() {
        assert!(Filters::parse("").unwrap().is_empty());
        assert!(Filters::parse("{}").unwrap().is_empty());
        assert!(Filters::parse("[1]").is_err());
        assert!(Filters::parse(r#"{"label":"x"}"#).is_err());
        let f = Filters::parse(r#"{"bogus":["1"]}"#).unwrap();
        assert_eq!(
            f.validate(&["label", "name"]).unwrap_err().to_string(),
            "invalid filter 'bogus'"
        );
        assert!(f.validate(&["bogus"]).is_ok());
    }

    #[test]
    fn serialises_map_form_and_round_trips() {
        let mut f = Filters::default();
        f.add("label", "a=b").add("label", "c").add("label", "c");
        assert_eq!(f.to_json(), r#"{"label":{"a=b":true,"c":true}}"#);
        assert_eq!(Filters::parse(&f.to_json()).unwrap(), f);
    }

    #[test]
    fn kv_matching() {
        let labels: BTreeMap<String, String> = [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "".to_string()),
        ]
        .into();
        let f = |s: &str| Filters::parse(s).unwrap();
        assert!(f("{}").match_kv("label", &labels));
        assert!(f(r#"{"label":["a=1"]}"#).match_kv("label", &labels));
        assert!(f(r#"{"label":["a","b"]}"#).match_kv("label", &labels));
        assert!(f(r#"{"label":["b="]}"#).match_kv("label", &labels));
        assert!(!f(r#"{"label":["a=2"]}"#).match_kv("label", &labels));
        assert!(!f(r#"{"label":["a=1","c"]}"#).match_kv("label", &labels));
        assert!(f(r#"{"name":["x"]}"#).exact_match("name", "x"));
        assert!(!f(r#"{"name":["x"]}"#).exact_match("name", "y"));
        assert!(f("{}").exact_match("name", "y"));
    }
}
