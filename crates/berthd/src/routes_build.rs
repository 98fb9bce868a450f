//! `POST /build` (the classic builder: a tar context in the body, dockerd's JSON stream back)
//! and `POST /build/prune`.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_engine::builder::BuildOptions;
use berth_engine::{Engine, Error};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;

use crate::http::*;

/// Largest build context accepted in one request.
const MAX_CONTEXT: usize = 2 << 30;

pub async fn build(engine: &Arc<Engine>, q: Query, req: Request<Incoming>) -> Result<Reply, Error> {
    if q.get("version") == Some("2") {
        return Err(Error::invalid(
            "BuildKit (version=2) is not supported by Berth: use the classic builder (version=1)",
        ));
    }
    let json_map = |k: &str| -> Result<BTreeMap<String, Option<String>>, Error> {
        match q.get(k).filter(|s| !s.is_empty()) {
            None => Ok(BTreeMap::new()),
            Some(s) => {
                serde_json::from_str(s).map_err(|e| Error::invalid(format!("invalid {k}: {e}")))
            }
        }
    };
    let opts = BuildOptions {
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        dockerfile: q.get("dockerfile").unwrap_or("").to_string(),
        build_args: json_map("buildargs")?,
        labels: json_map("labels")?
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
        target: q.get("target").unwrap_or("").to_string(),
        no_cache: q.bool("nocache"),
        rm: q.get("rm").map(|_| q.bool("rm")).unwrap_or(true),
        force_rm: q.bool("forcerm"),
        quiet: q.bool("q"),
        remote: q.get("remote").unwrap_or("").to_string(),
        network_mode: q.get("networkmode").unwrap_or("").to_string(),
    };
    berth_engine::builder::validate_tags(&opts.tags)?;
    let body = http_body_util::Limited::new(req.into_body(), MAX_CONTEXT)
        .collect()
        .await
        .map_err(|e| Error::invalid(format!("error reading build context: {e}")))?
        .to_bytes();
    let (tx, reply) = progress_reply();
    let engine = engine.clone();
    tokio::spawn(async move { engine.build_image(opts, body.to_vec(), tx).await });
    Ok(reply)
}

pub fn prune(engine: &Arc<Engine>) -> Result<Reply, Error> {
    Ok(ok_json(&engine.prune_build_cache()))
}
