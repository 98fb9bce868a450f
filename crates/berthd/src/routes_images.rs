//! Routes for image interchange and container-to-image commands: commit, diff (changes),
//! export, save (`/images/get`), load, and image prune.

use std::sync::Arc;

use berth_engine::image_io::CommitRequest;
use berth_engine::{Engine, Error};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use crate::http::*;

/// Whether this module serves `method path` (path without the version prefix).
pub fn handles(method: &Method, segs: &[&str]) -> bool {
    matches!(
        (method, segs),
        (&Method::POST, ["commit"])
            | (&Method::GET, ["containers", _, "changes"])
            | (&Method::GET, ["containers", _, "export"])
            | (&Method::GET, ["images", "get"])
            | (&Method::GET, ["images", _, "get"])
            | (&Method::POST, ["images", "load"])
            | (&Method::POST, ["images", "prune"])
    )
}

fn stream_reply(content_type: &'static str, rx: mpsc::Receiver<Bytes>) -> Reply {
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, content_type)
        .body(channel_body(rx))
        .expect("static")
}

pub async fn route(
    engine: &Arc<Engine>,
    method: Method,
    segs: &[&str],
    q: Query,
    req: Request<Incoming>,
) -> Result<Reply, Error> {
    match (&method, segs) {
        (&Method::POST, ["commit"]) => {
            // The CLI sends a JSON container config body (often empty); changes come in the
            // query. Drain it.
            let mut body = req.into_body();
            while let Some(Ok(_)) = body.frame().await {}
            let creq = CommitRequest {
                container: q.get("container").unwrap_or("").to_string(),
                repo: q.get("repo").unwrap_or("").to_string(),
                tag: q.get("tag").unwrap_or("").to_string(),
                comment: q.get("comment").unwrap_or("").to_string(),
                author: q.get("author").unwrap_or("").to_string(),
                changes: q.all("changes"),
                // dockerd pauses unless told `pause=0`.
                pause: q.get("pause").map(|_| q.bool("pause")).unwrap_or(true),
            };
            let id = engine.commit_container(creq).await?;
            Ok(json_reply(StatusCode::CREATED, &json!({"Id": id})))
        }
        (&Method::GET, ["containers", id, "changes"]) => {
            Ok(ok_json(&engine.container_changes(id)?))
        }
        (&Method::GET, ["containers", id, "export"]) => Ok(stream_reply(
            "application/octet-stream",
            engine.export_container(id)?,
        )),
        (&Method::GET, ["images", "get"]) => Ok(stream_reply(
            "application/x-tar",
            engine.save_images(&q.all("names"))?,
        )),
        (&Method::GET, ["images", name, "get"]) => Ok(stream_reply(
            "application/x-tar",
            engine.save_images(&[name.to_string()])?,
        )),
        (&Method::POST, ["images", "load"]) => {
            let stream = req
                .into_body()
                .into_data_stream()
                .map_err(std::io::Error::other);
            let reader = tokio_util::io::StreamReader::new(stream);
            let lines = engine
                .load_images(Box::new(reader), q.bool("quiet"))
                .await?;
            let (tx, rx) = mpsc::channel::<Bytes>(lines.len().max(1));
            for l in lines {
                let _ = tx.send(Bytes::from(format!("{l}\n"))).await;
            }
            drop(tx);
            Ok(stream_reply("application/json", rx))
        }
        (&Method::POST, ["images", "prune"]) => Ok(ok_json(&engine.prune_images(&q.filters()?)?)),
        _ => Err(Error::not_found("page not found")),
    }
}
