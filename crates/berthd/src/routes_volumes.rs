//! Volume routes: `GET /volumes`, `POST /volumes/create`, `GET|DELETE /volumes/{name}`,
//! `POST /volumes/prune`.

use std::sync::Arc;

use berth_engine::{Engine, Error};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

use crate::http::*;

/// Largest volume create request accepted.
const MAX_BODY: usize = 1 << 20;

pub fn handles(_method: &Method, segs: &[&str]) -> bool {
    segs.first() == Some(&"volumes")
}

pub async fn route(
    engine: &Arc<Engine>,
    method: Method,
    segs: &[&str],
    q: Query,
    req: Request<Incoming>,
) -> Result<Reply, Error> {
    match (&method, segs) {
        (&Method::GET, ["volumes"]) => Ok(ok_json(&engine.volume_list(&q.filters()?)?)),
        (&Method::POST, ["volumes", "create"]) => {
            let body = http_body_util::Limited::new(req.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| Error::invalid(format!("error reading request body: {e}")))?
                .to_bytes();
            let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Object(Default::default())
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?
            };
            Ok(json_reply(StatusCode::CREATED, &engine.volume_create(&v)?))
        }
        (&Method::POST, ["volumes", "prune"]) => {
            let mut f = q.filters()?;
            // Before API 1.42 prune took every unused volume, named ones included.
            let (ver, _) = split_version(req.uri().path());
            if ver.is_some_and(|v| version_cmp(v, "1.42") == std::cmp::Ordering::Less)
                && !f.contains_key("all")
            {
                f.insert("all".into(), vec!["true".into()]);
            }
            Ok(ok_json(&engine.volume_prune(&f)?))
        }
        (&Method::GET, ["volumes", name]) => Ok(ok_json(&engine.volume_inspect(name)?)),
        (&Method::DELETE, ["volumes", name]) => {
            engine.volume_remove(name, q.bool("force"))?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        _ => Err(Error::not_found("page not found")),
    }
}
