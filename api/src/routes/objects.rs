//! `GET /objects/{bucket}/{key}`: downloads through signed, expiring links made by the
//! filesystem object store. (S3 links point at S3 itself.)

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::Query;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/objects/{bucket}/{*key}", get(download))
}

#[derive(Deserialize)]
struct Link {
    expires: u64,
    sig: String,
}

async fn download(
    State(s): State<AppState>,
    Path((bucket, key)): Path<(String, String)>,
    Query(link): Query<Link>,
) -> Result<Response, ApiError> {
    if !s.objects.verify_link(&bucket, &key, link.expires, &link.sig) {
        // One answer for bad and expired signatures and missing objects behind them.
        return Err(ApiError::NotFound(
            "no such download link, or it has expired".into(),
        ));
    }
    let (meta, stream) = s.objects.get(&bucket, &key).await?;
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    if let Some(ct) = meta
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert(header::CONTENT_TYPE, ct);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=60"),
    );
    Ok(resp)
}
