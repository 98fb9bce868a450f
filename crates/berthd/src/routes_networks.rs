//! Network routes: `GET /networks`, `GET|DELETE /networks/{id}`, `POST /networks/create`,
//! `POST /networks/{id}/connect|disconnect`, `POST /networks/prune`.

use std::sync::Arc;

use berth_engine::{Engine, Error};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::http::*;

/// Largest network request accepted.
const MAX_BODY: usize = 1 << 20;

pub fn handles(_method: &Method, segs: &[&str]) -> bool {
    segs.first() == Some(&"networks")
}

async fn body(req: Request<Incoming>) -> Result<Value, Error> {
    json_body(req, MAX_BODY).await
}

pub async fn route(
    engine: &Arc<Engine>,
    method: Method,
    segs: &[&str],
    q: Query,
    req: Request<Incoming>,
) -> Result<Reply, Error> {
    match (&method, segs) {
        (&Method::GET, ["networks"]) => Ok(ok_json(&engine.list_networks(&q.filters()?)?)),
        (&Method::POST, ["networks", "create"]) => {
            let v = body(req).await?;
            Ok(json_reply(
                StatusCode::CREATED,
                &engine.create_network(&v).await?,
            ))
        }
        (&Method::POST, ["networks", "prune"]) => {
            let gone = engine.prune_networks().await?;
            Ok(ok_json(
                &json!({"NetworksDeleted": if gone.is_empty() { Value::Null } else { json!(gone) }}),
            ))
        }
        (&Method::GET, ["networks", id]) => Ok(ok_json(&engine.inspect_network(id)?)),
        (&Method::DELETE, ["networks", id]) => {
            engine.remove_network(id).await?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["networks", id, "connect"]) => {
            let v = body(req).await?;
            let c = v["Container"].as_str().unwrap_or("").to_string();
            let cfg = serde_json::from_value(v["EndpointConfig"].clone()).ok();
            engine.connect_network(id, &c, cfg).await?;
            Ok(status_only(StatusCode::OK))
        }
        (&Method::POST, ["networks", id, "disconnect"]) => {
            let v = body(req).await?;
            let c = v["Container"].as_str().unwrap_or("").to_string();
            engine
                .disconnect_network(id, &c, v["Force"].as_bool().unwrap_or(false))
                .await?;
            Ok(status_only(StatusCode::OK))
        }
        _ => Err(Error::not_found("page not found")),
    }
}
