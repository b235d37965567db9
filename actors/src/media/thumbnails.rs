//! The `media.thumbnails` job kind (media queue): one original's small, medium and large
//! versions.
//!
//! A job reads its original from the product-images bucket, probes it and makes its thumbnails
//! with `pm_media` on tokio's blocking pool (never on the async workers: a large JPEG takes tens
//! of milliseconds of CPU), stores them next to the original as `{sha256}_{size}.{jpg|webp}`,
//! records them with the metadata, and marks the image `done`. A file `pm_media` cannot read
//! fails the job at once (fatal) and the image `failed` with the reason; object store and
//! database errors are retried with the job layer's backoff. A rerun writes the same keys and
//! replaces the rows: the kind is idempotent. The media queue's workers
//! (`jobs.workers.media`, one per core by default) bound how many images are processed at once.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::StreamExt;
use pm_storage::media::{MediaMetadata, MediaStatus, MediaThumbnail};
use pm_storage::object_store::product_image_key;
use pm_storage::ObjectError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{thumbnail_key, MediaDeps};
use crate::jobs::{JobError, JobHandler, JobRun};

pub const KIND: &str = "media.thumbnails";

/// What a thumbnail job processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    pub media_id: Uuid,
}

/// `media.reprocess`: every image set back to `queued` with its thumbnail job queued again
/// (`POST /media/reprocess {"all": true}`: one job rather than a request that lasts as long as
/// the catalog is large). A rerun queues them again, which only makes the same thumbnails.
pub const REPROCESS_KIND: &str = "media.reprocess";

pub struct ReprocessAll(pub Arc<MediaDeps>);

impl JobHandler for ReprocessAll {
    fn run(&self, run: JobRun) -> BoxFuture<'static, Result<Value, JobError>> {
        let deps = self.0.clone();
        Box::pin(async move {
            let n = deps
                .reprocess(None, run.job.created_by, |done, of| {
                    run.progress(json!({ "queued": done, "images": of }))
                })
                .await
                .map_err(store_err)?;
            Ok(json!({ "enqueued": n }))
        })
    }
}

/// The kind.
pub struct MakeThumbnails(pub Arc<MediaDeps>);

impl JobHandler for MakeThumbnails {
    fn run(&self, run: JobRun) -> BoxFuture<'static, Result<Value, JobError>> {
        let deps = self.0.clone();
        Box::pin(async move { run_job(run, &deps).await })
    }
}

fn store_err(e: pm_storage::StoreError) -> JobError {
    JobError::Retryable(format!("media database: {e}"))
}

fn object_err(e: ObjectError) -> JobError {
    JobError::Retryable(e.to_string())
}

/// Fails the image and the job for good.
async fn fail(d: &MediaDeps, id: Uuid, reason: String) -> Result<Value, JobError> {
    d.store
        .set_status(id, MediaStatus::Failed, Some(&reason))
        .await
        .map_err(store_err)?;
    Err(JobError::Fatal(reason))
}

async fn run_job(run: JobRun, d: &MediaDeps) -> Result<Value, JobError> {
    let p: Payload = serde_json::from_value(run.job.payload.clone())
        .map_err(|e| JobError::Fatal(format!("bad payload: {e}")))?;
    let Some(file) = d.store.get(p.media_id).await.map_err(store_err)? else {
        return Ok(json!({"skipped": "the image was deleted"}));
    };
    d.store
        .set_status(file.id, MediaStatus::Processing, None)
        .await
        .map_err(store_err)?;
    let key = product_image_key(file.product_id, &file.sha256, &file.ext);
    let bytes = match d.objects.get(&d.bucket, &key).await {
        Ok((meta, mut body)) => {
            let mut buf = Vec::with_capacity(meta.size.min(d.limits.max_input_bytes) as usize);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| JobError::Retryable(format!("reading {key}: {e}")))?;
                if (buf.len() + chunk.len()) as u64 > d.limits.max_input_bytes {
                    return fail(
                        d,
                        file.id,
                        format!(
                            "the original is over the limit of {} bytes",
                            d.limits.max_input_bytes
                        ),
                    )
                    .await;
                }
                buf.extend_from_slice(&chunk);
            }
            buf
        }
        Err(ObjectError::NotFound { .. }) => {
            return fail(
                d,
                file.id,
                format!("the original {key} is missing from the store"),
            )
            .await;
        }
        Err(e) => return Err(object_err(e)),
    };
    let (spec, limits) = (d.spec.clone(), d.limits);
    let made = tokio::task::spawn_blocking(move || {
        let info = pm_media::probe(&bytes, &limits)?;
        let thumbs = pm_media::make_thumbnails(&bytes, &spec, &limits)?;
        Ok::<_, pm_media::MediaError>((info, thumbs))
    })
    .await;
    let (info, thumbs) = match made {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return fail(d, file.id, e.to_string()).await,
        Err(e) => return fail(d, file.id, format!("processing the image failed: {e}")).await,
    };
    let mut rows = Vec::with_capacity(thumbs.len());
    for t in thumbs {
        let key = thumbnail_key(file.product_id, &file.sha256, &t.name, d.spec.format);
        let len = t.bytes.len() as i64;
        let body: pm_storage::object_store::ByteStream =
            Box::pin(futures::stream::once(
                async move { Ok(bytes::Bytes::from(t.bytes)) },
            ));
        d.objects
            .put(&d.bucket, &key, body, Some(t.content_type))
            .await
            .map_err(object_err)?;
        rows.push(MediaThumbnail {
            size: t.name,
            key,
            width: i64::from(t.width),
            height: i64::from(t.height),
            bytes: len,
            content_type: t.content_type.to_owned(),
        });
    }
    let exif: serde_json::Map<String, Value> = info
        .exif
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let meta = MediaMetadata {
        format: info.format.as_str().to_owned(),
        width: i64::from(info.display_width),
        height: i64::from(info.display_height),
        color_type: info.color_type.to_owned(),
        exif: (!exif.is_empty()).then_some(Value::Object(exif)),
    };
    if !d.store.finish(file.id, &rows, &meta).await.map_err(store_err)? {
        // Deleted meanwhile: its objects go too (the delete may have run before they existed).
        for t in &rows {
            let _ = d.objects.delete(&d.bucket, &t.key).await;
        }
        return Ok(json!({"skipped": "the image was deleted"}));
    }
    Ok(json!({
        "media_id": file.id,
        "thumbnails": rows.iter().map(|t| json!({"size": t.size, "width": t.width, "height": t.height})).collect::<Vec<_>>(),
    }))
}
