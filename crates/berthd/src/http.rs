//! HTTP plumbing: bodies, replies, query parsing, the error-kind -> status mapping, and the
//! version prefix.

use std::collections::BTreeMap;
use std::convert::Infallible;

use berth_engine::{Error, ErrorKind};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{header, Response, StatusCode};
use tokio::sync::mpsc;

pub type Body = BoxBody<Bytes, Infallible>;
pub type Reply = Response<Body>;

/// Highest API version Berth speaks (and advertises in `Api-Version`).
pub const API_VERSION: &str = "1.47";
/// Lowest API version accepted in a `/vX.Y/` prefix.
pub const MIN_API_VERSION: &str = "1.24";

/// The one mapping from engine error classes to HTTP status codes.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub fn empty_body() -> Body {
    full(Bytes::new())
}

/// A chunked body fed by a channel.
pub fn channel_body(rx: mpsc::Receiver<Bytes>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    BoxBody::new(StreamBody::new(stream))
}

pub fn json_reply<T: serde::Serialize>(status: StatusCode, v: &T) -> Reply {
    let mut body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .expect("static response parts")
}

pub fn ok_json<T: serde::Serialize>(v: &T) -> Reply {
    json_reply(StatusCode::OK, v)
}

pub fn status_only(status: StatusCode) -> Reply {
    Response::builder()
        .status(status)
        .body(empty_body())
        .expect("static response parts")
}

pub fn error_reply(e: &Error) -> Reply {
    message_reply(status_for(e.kind), &e.message)
}

pub fn message_reply(status: StatusCode, message: &str) -> Reply {
    json_reply(status, &serde_json::json!({ "message": message }))
}

/// Query parameters (last value wins, plus access to every value of repeated keys).
#[derive(Debug, Default)]
pub struct Query {
    map: BTreeMap<String, Vec<String>>,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(q) = q {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                map.entry(k.into_owned()).or_default().push(v.into_owned());
            }
        }
        Query { map }
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).and_then(|v| v.last()).map(|s| s.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<String> {
        self.map.get(k).cloned().unwrap_or_default()
    }
    /// Booleans as both clients send them: 1/0, true/false, True/False.
    pub fn bool(&self, k: &str) -> bool {
        matches!(
            self.get(k).map(|s| s.to_ascii_lowercase()).as_deref(),
            Some("1") | Some("true") | Some("yes")
        )
    }
    pub fn int(&self, k: &str) -> Result<Option<i64>, Error> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| Error::invalid(format!("invalid value for {k}: {s:?}"))),
        }
    }
    /// `filters` in both encodings: `{"k":{"v":true}}` (Go CLI) and `{"k":["v"]}` (docker-py).
    pub fn filters(&self) -> Result<BTreeMap<String, Vec<String>>, Error> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(BTreeMap::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| Error::invalid(format!("invalid filter: {e}")))?;
        let mut out = BTreeMap::new();
        let obj = v
            .as_object()
            .ok_or_else(|| Error::invalid("invalid filter: not an object"))?;
        for (k, val) in obj {
            let vals: Vec<String> = match val {
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, b)| b.as_bool().unwrap_or(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::String(s) => vec![s.clone()],
                _ => return Err(Error::invalid(format!("invalid filter for {k}"))),
            };
            out.insert(k.clone(), vals);
        }
        Ok(out)
    }
}

/// Splits an optional `/vX.Y` prefix off a path. Returns the version (if any) and the rest.
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(idx) = rest.find('/') {
            let ver = &rest[..idx];
            if !ver.is_empty() && ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return (Some(ver), &rest[idx..]);
            }
        }
    }
    (None, path)
}

/// Compares dotted API versions numerically.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            (Some("1.41"), "/containers/json")
        );
        assert_eq!(
            split_version("/containers/json"),
            (None, "/containers/json")
        );
        assert_eq!(split_version("/version"), (None, "/version"));
        assert_eq!(split_version("/volumes/x"), (None, "/volumes/x"));
        assert_eq!(version_cmp("1.9", "1.41"), std::cmp::Ordering::Less);
        assert_eq!(version_cmp("1.50", "1.47"), std::cmp::Ordering::Greater);
    }

    #[test]
    fn filters_both_forms() {
        let q = Query::parse(Some("filters=%7B%22label%22%3A%7B%22k%3Dv%22%3Atrue%7D%7D"));
        assert_eq!(q.filters().unwrap()["label"], vec!["k=v".to_string()]);
        let q = Query::parse(Some("filters=%7B%22label%22%3A%5B%22a%22%2C%22b%22%5D%7D"));
        assert_eq!(
            q.filters().unwrap()["label"],
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(Query::parse(Some("filters=nope")).filters().is_err());
    }

    #[test]
    fn bools() {
        let q = Query::parse(Some("a=1&b=True&c=0&d=false&e=TRUE"));
        assert!(q.bool("a") && q.bool("b") && q.bool("e"));
        assert!(!q.bool("c") && !q.bool("d") && !q.bool("zz"));
    }

    #[test]
    fn every_kind_has_a_status() {
        assert_eq!(status_for(ErrorKind::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_for(ErrorKind::Conflict), StatusCode::CONFLICT);
        assert_eq!(
            status_for(ErrorKind::InvalidArgument),
            StatusCode::BAD_REQUEST
        );
    }
}

/// A streamed reply of JSON lines (pull, push, build progress): send objects on the returned
/// sender; the reply ends when it is dropped.
pub fn progress_reply() -> (mpsc::Sender<serde_json::Value>, Reply) {
    let (tx, mut rx) = mpsc::channel::<serde_json::Value>(256);
    let (btx, brx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            if btx.send(Bytes::from(format!("{v}\n"))).await.is_err() {
                break;
            }
        }
    });
    let reply = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(channel_body(brx))
        .expect("static");
    (tx, reply)
}

/// A JSON request body of at most `limit` bytes; an empty body is `{}`.
pub async fn json_body(
    req: hyper::Request<hyper::body::Incoming>,
    limit: usize,
) -> Result<serde_json::Value, Error> {
    let b = http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|e| Error::invalid(format!("error reading request body: {e}")))?
        .to_bytes();
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_slice(&b).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))
}
