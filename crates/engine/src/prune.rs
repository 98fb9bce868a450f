//! `POST /containers/prune` (stopped containers; `until` and label filters), and the prunes of
//! objects Berth does not have yet, answered truthfully with nothing deleted
//! (`/networks/prune`: no user-defined networks exist; `/build/prune`: no build cache), so
//! `docker system prune` works end to end.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::Engine;

impl Engine {
    /// `POST /containers/prune`.
    pub async fn prune_containers(
        self: &Arc<Self>,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<Value> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "until" | "label" | "label!") {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        let until = filters
            .get("until")
            .and_then(|v| v.first())
            .map(|s| crate::image_io::parse_until(s))
            .transpose()?;
        let label_ok = |labels: &BTreeMap<String, String>| {
            let m = |l: &String| match l.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(l),
            };
            filters
                .get("label")
                .map(|ls| ls.iter().all(m))
                .unwrap_or(true)
                && filters
                    .get("label!")
                    .map(|ls| !ls.iter().any(m))
                    .unwrap_or(true)
        };
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for c in self.all_containers() {
            let rec = c.snapshot();
            if rec.state.status.is_running() {
                continue;
            }
            if until.is_some_and(|u| rec.created.timestamp() >= u) {
                continue;
            }
            if !label_ok(&rec.config.labels.clone().unwrap_or_default()) {
                continue;
            }
            let (rw, _) = self.container_sizes(&rec);
            if self.remove_container(&rec.id, false, false).await.is_ok() {
                reclaimed += rw.max(0);
                deleted.push(rec.id.clone());
            }
        }
        Ok(json!({
            "ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
            "SpaceReclaimed": reclaimed,
        }))
    }
}
