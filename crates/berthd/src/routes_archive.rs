//! `docker cp` (HEAD/GET/PUT `/containers/{id}/archive`) and disk usage (`GET /system/df`).

use std::sync::Arc;

use berth_engine::archive::PutOptions;
use berth_engine::{Engine, Error};
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};

use crate::http::*;

/// The header carrying the base64 JSON stat of the path.
const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// Whether this module serves `method path` (path without the version prefix).
pub fn handles(method: &Method, segs: &[&str]) -> bool {
    matches!(
        (method, segs),
        (
            &Method::HEAD | &Method::GET | &Method::PUT,
            ["containers", _, "archive"]
        ) | (&Method::GET, ["system", "df"])
    )
}

pub async fn route(
    engine: &Arc<Engine>,
    method: Method,
    segs: &[&str],
    q: Query,
    req: Request<Incoming>,
) -> Result<Reply, Error> {
    match (&method, segs) {
        (&Method::GET, ["system", "df"]) => Ok(ok_json(&engine.system_df(&q.all("type"))?)),
        (_, ["containers", id, "archive"]) => {
            let path = q.get("path").unwrap_or("").to_string();
            if path.is_empty() {
                // (sic: dockerd's text has no space)
                return Err(Error::invalid("bad parameter: pathcannot be empty"));
            }
            match method {
                Method::HEAD => {
                    let st = engine.archive_stat(id, &path).await?;
                    Ok(Response::builder()
                        .status(StatusCode::OK)
                        .header(STAT_HEADER, st.header_value())
                        .body(empty_body())
                        .expect("static"))
                }
                Method::GET => {
                    let (st, rx) = engine.archive_get(id, &path).await?;
                    Ok(Response::builder()
                        .status(StatusCode::OK)
                        .header(CONTENT_TYPE, "application/x-tar")
                        .header(STAT_HEADER, st.header_value())
                        .body(channel_body(rx))
                        .expect("static"))
                }
                _ => {
                    let opts = PutOptions {
                        no_overwrite_dir_non_dir: q.bool("noOverwriteDirNonDir"),
                        chown: None,
                    };
                    let stream = req
                        .into_body()
                        .into_data_stream()
                        .map_err(std::io::Error::other);
                    let reader = tokio_util::io::StreamReader::new(stream);
                    engine
                        .archive_put(id, &path, opts, q.bool("copyUIDGID"), Box::new(reader))
                        .await?;
                    Ok(status_only(StatusCode::OK))
                }
            }
        }
        _ => Err(Error::not_found("page not found")),
    }
}
