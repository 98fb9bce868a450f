//! Registry routes: pull (`POST /images/create?fromImage=`), push
//! (`POST /images/{name}/push`) and login (`POST /auth`).

use std::sync::Arc;

use berth_engine::{Engine, Error};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use crate::http::*;

/// Whether this module serves `method path` (other than pull, which `images_create` hands over).
pub fn handles(method: &Method, segs: &[&str]) -> bool {
    matches!((method, segs), (&Method::POST, ["auth"]))
        || (method == Method::POST
            && segs.len() >= 3
            && segs[0] == "images"
            && segs[segs.len() - 1] == "push")
}

fn registry_auth(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `POST /images/create?fromImage=...&tag=...&platform=...`.
pub async fn pull(
    engine: &Arc<Engine>,
    image: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Reply, Error> {
    let auth = registry_auth(&req);
    let mut body = req.into_body();
    while let Some(Ok(_)) = body.frame().await {}
    let plan = engine
        .pull_prepare(
            image,
            q.get("tag").unwrap_or(""),
            q.get("platform").unwrap_or(""),
            auth.as_deref(),
        )
        .await?;
    let (tx, reply) = progress_reply();
    tokio::spawn(plan.run(tx));
    Ok(reply)
}

pub async fn route(
    engine: &Arc<Engine>,
    segs: &[&str],
    q: Query,
    req: Request<Incoming>,
) -> Result<Reply, Error> {
    if segs == ["auth"] {
        let body = http_body_util::Limited::new(req.into_body(), 1 << 20)
            .collect()
            .await
            .map_err(|e| Error::invalid(format!("error reading request body: {e}")))?
            .to_bytes();
        return match engine.registry_login(&body).await {
            Ok(()) => Ok(ok_json(
                &json!({"IdentityToken": "", "Status": "Login Succeeded"}),
            )),
            Err((code, m)) => Ok(message_reply(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &m,
            )),
        };
    }
    let name = segs[1..segs.len() - 1].join("/");
    let auth = registry_auth(&req);
    let mut body = req.into_body();
    while let Some(Ok(_)) = body.frame().await {}
    let tag = q.get("tag").unwrap_or("").to_string();
    let (tx, reply) = progress_reply();
    let engine = engine.clone();
    tokio::spawn(async move { engine.push_image(&name, &tag, auth, tx).await });
    Ok(reply)
}
