//! `GET /events`: dockerd's event vocabulary, a bounded history for `since`, and live
//! subscribers (a broadcast channel; slow readers skip rather than block the engine).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::record::Record;

/// Events kept for `since` queries (dockerd keeps the last 256 too).
const HISTORY: usize = 256;

pub struct EventBus {
    tx: broadcast::Sender<Value>,
    history: Mutex<VecDeque<Value>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(1024).0,
            history: Mutex::new(VecDeque::new()),
        }
    }
}

impl EventBus {
    pub fn publish(&self, ev: Value) {
        {
            let mut h = self.history.lock().expect("lock");
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// Past events (filtered later by the caller) and a receiver for what follows, taken
    /// under the same lock so nothing falls between them.
    pub fn subscribe(&self) -> (Vec<Value>, broadcast::Receiver<Value>) {
        let h = self.history.lock().expect("lock");
        (h.iter().cloned().collect(), self.tx.subscribe())
    }
}

fn now_parts() -> (i64, i64) {
    let t = Utc::now();
    (t.timestamp(), t.timestamp_nanos_opt().unwrap_or(0))
}

/// A container event as dockerd sends it (with the legacy `status`/`id`/`from` fields).
pub fn container_event(action: &str, rec: &Record, extra: &[(&str, String)]) -> Value {
    let mut attrs: BTreeMap<String, String> = rec.config.labels.clone().unwrap_or_default();
    attrs.insert("image".into(), rec.config.image.clone());
    attrs.insert("name".into(), rec.name.clone());
    for (k, v) in extra {
        attrs.insert((*k).to_string(), v.clone());
    }
    let (time, nano) = now_parts();
    json!({
        "status": action,
        "id": rec.id,
        "from": rec.config.image,
        "Type": "container",
        "Action": action,
        "Actor": {"ID": rec.id, "Attributes": attrs},
        "scope": "local",
        "time": time,
        "timeNano": nano
    })
}

/// An image event (`tag`, `untag`, `delete`, `import`, ...).
pub fn image_event(action: &str, id: &str, name: &str) -> Value {
    let (time, nano) = now_parts();
    json!({
        "status": action,
        "id": id,
        "Type": "image",
        "Action": action,
        "Actor": {"ID": id, "Attributes": {"name": name}},
        "scope": "local",
        "time": time,
        "timeNano": nano
    })
}

/// What `GET /events` asked for.
#[derive(Debug, Default, Clone)]
pub struct EventQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub filters: BTreeMap<String, Vec<String>>,
}

impl EventQuery {
    fn time_of(ev: &Value) -> i64 {
        ev["timeNano"].as_i64().unwrap_or(0)
    }

    pub fn in_window(&self, ev: &Value) -> bool {
        let t = Self::time_of(ev);
        self.since
            .is_none_or(|s| t >= s.timestamp_nanos_opt().unwrap_or(0))
            && self
                .until
                .is_none_or(|u| t <= u.timestamp_nanos_opt().unwrap_or(i64::MAX))
    }

    /// dockerd's event filters: type, event/action, container, image, label, scope.
    pub fn matches(&self, ev: &Value) -> bool {
        let attr = |k: &str| {
            ev["Actor"]["Attributes"][k]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        let actor = ev["Actor"]["ID"].as_str().unwrap_or("");
        self.filters.iter().all(|(k, vals)| {
            vals.is_empty()
                || match k.as_str() {
                    "type" => vals.iter().any(|v| ev["Type"] == v.as_str()),
                    "event" | "action" => vals.iter().any(|v| {
                        let a = ev["Action"].as_str().unwrap_or("");
                        a == v || a.split(':').next() == Some(v.as_str())
                    }),
                    "container" => {
                        ev["Type"] == "container"
                            && vals
                                .iter()
                                .any(|v| actor.starts_with(v.as_str()) || attr("name") == *v)
                    }
                    "image" => vals.iter().any(|v| {
                        attr("image") == *v
                            || attr("name") == *v
                            || actor == v
                            || ev["from"] == v.as_str()
                    }),
                    "label" => vals.iter().all(|v| match v.split_once('=') {
                        Some((lk, lv)) => attr(lk) == lv,
                        None => !ev["Actor"]["Attributes"][v.as_str()].is_null(),
                    }),
                    "scope" => vals.iter().any(|v| v == "local"),
                    _ => true,
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_window() {
        let ev = image_event("tag", "sha256:abc", "busybox:latest");
        let mut q = EventQuery::default();
        q.filters.insert("type".into(), vec!["image".into()]);
        assert!(q.matches(&ev));
        q.filters.insert("event".into(), vec!["untag".into()]);
        assert!(!q.matches(&ev));
        let q = EventQuery {
            until: Some(Utc::now() - chrono::Duration::hours(1)),
            ..Default::default()
        };
        assert!(!q.in_window(&ev));
        let bus = EventBus::default();
        bus.publish(ev.clone());
        let (past, _rx) = bus.subscribe();
        assert_eq!(past.len(), 1);
    }
}
