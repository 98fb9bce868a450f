//! The JSON-lines progress stream (`pull`, `push`, `load`, `import`, `build`, `create`).

use serde::{Deserialize, Serialize};

use crate::de::{is_empty_str, is_false, is_zero_i64};

/// `progressDetail`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub current: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub total: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub start: i64,
    #[serde(rename = "hidecounts", skip_serializing_if = "is_false")]
    pub hide_counts: bool,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub units: String,
}

/// `errorDetail`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub code: i64,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub message: String,
}

/// One line of a progress stream (Go's `jsonmessage.JSONMessage`). Every field is omitted
/// when empty. A failing stream ends with a message carrying both `errorDetail` and `error`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgressMessage {
    #[serde(skip_serializing_if = "is_empty_str")]
    pub stream: String,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub status: String,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub progress: String,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub id: String,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub from: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub time: i64,
    #[serde(rename = "timeNano", skip_serializing_if = "is_zero_i64")]
    pub time_nano: i64,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl ProgressMessage {
    /// `{"status": s}`.
    pub fn status(s: impl Into<String>) -> Self {
        ProgressMessage {
            status: s.into(),
            ..Default::default()
        }
    }
    /// `{"status": s, "id": id}`.
    pub fn status_id(s: impl Into<String>, id: impl Into<String>) -> Self {
        ProgressMessage {
            status: s.into(),
            id: id.into(),
            ..Default::default()
        }
    }
    /// `{"stream": s}`.
    pub fn stream(s: impl Into<String>) -> Self {
        ProgressMessage {
            stream: s.into(),
            ..Default::default()
        }
    }
    /// `{"errorDetail": {"message": m}, "error": m}`, how dockerd ends a failed stream.
    pub fn error(m: impl Into<String>) -> Self {
        let m = m.into();
        ProgressMessage {
            error_detail: Some(ErrorDetail {
                code: 0,
                message: m.clone(),
            }),
            error: m,
            ..Default::default()
        }
    }
    /// `{"aux": v}`.
    pub fn aux(v: serde_json::Value) -> Self {
        ProgressMessage {
            aux: Some(v),
            ..Default::default()
        }
    }
    /// The error text of this message, if it reports one.
    pub fn error_text(&self) -> Option<&str> {
        if !self.error.is_empty() {
            Some(&self.error)
        } else {
            self.error_detail
                .as_ref()
                .map(|e| e.message.as_str())
                .filter(|m| !m.is_empty())
        }
    }
}
