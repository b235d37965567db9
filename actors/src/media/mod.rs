//! Product images: taking originals in, and the media queue's two job kinds.
//!
//! - [`MediaDeps`]: what every path into media shares: [`MediaDeps::fetch`] (an image from a
//!   URL, bounded), [`MediaDeps::add_original`] (sniff, hash, store once, record, queue its
//!   thumbnails). The upload route and the fetch kind both go through it.
//! - [`thumbnails`]: `media.thumbnails`, one original's three sizes on the blocking pool, and
//!   `media.reprocess`, every image's thumbnails queued again.
//! - [`fetch`]: `media.fetch`, the image URLs of an import's rows (a batch's products at a time).
//!
//! The media queue's workers (`jobs.workers.media`, one per core by default) run both kinds.

pub mod fetch;
pub mod thumbnails;

use std::sync::Arc;
use std::time::Duration;

use pm_media::{Limits, OutputFormat, ThumbSpec};
use pm_storage::jobs::NewJob;
use pm_storage::media::{Added, Media, NewMediaFile};
use pm_storage::object_store::product_image_key;
use pm_storage::{ObjectError, ObjectStore, StoreError};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use thumbnails::{MakeThumbnails, ReprocessAll, KIND};

use crate::jobs::Enqueuer;

/// What the media paths need, shared (one per process).
pub struct MediaDeps {
    pub store: Media,
    pub objects: Arc<dyn ObjectStore>,
    /// The product-images bucket.
    pub bucket: String,
    pub spec: ThumbSpec,
    /// `max_input_bytes` is the largest original (`media.max_upload_bytes`).
    pub limits: Limits,
    pub max_per_product: u32,
    /// Fetches image URLs (one client, its connections shared; redirects checked by
    /// [`crate::outbound::check`]).
    pub http: reqwest::Client,
    pub fetch_timeout: Duration,
    /// `media.fetch_private_addresses`.
    pub private_ok: bool,
    /// The media queue, for thumbnail jobs.
    pub jobs: Enqueuer,
}

/// The limits of `pm_media` for originals of at most `max_bytes` and `max_pixels`.
pub fn limits(max_bytes: u64, max_pixels: u64) -> Limits {
    Limits {
        max_input_bytes: max_bytes,
        max_pixels,
        ..Limits::default()
    }
}

/// The thumbnail sizes and encoding of the settings.
pub fn thumb_spec(settings: &pm_config::MediaSettings) -> ThumbSpec {
    ThumbSpec {
        format: match settings.thumbnail_format {
            pm_config::ThumbnailFormat::Jpeg => OutputFormat::Jpeg,
            pm_config::ThumbnailFormat::Webp => OutputFormat::WebP,
        },
        quality: settings.thumbnail_quality,
        ..ThumbSpec::default()
    }
}

/// The key of a thumbnail of an original.
pub fn thumbnail_key(product_id: Uuid, sha256: &str, size: &str, format: OutputFormat) -> String {
    let ext = match format {
        OutputFormat::Jpeg => "jpg",
        OutputFormat::WebP => "webp",
    };
    product_image_key(product_id, &format!("{sha256}_{size}"), ext)
}

/// The extension of a sniffed format in object keys.
fn ext_of(format: pm_media::ImageFormat) -> &'static str {
    match format {
        pm_media::ImageFormat::Jpeg => "jpg",
        f => f.as_str(),
    }
}

/// Why an image could not be fetched from its URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the url {0}")]
    Refused(String),
    #[error("the image is over the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    #[error("fetching the image failed: {0}")]
    Failed(String),
}

impl FetchError {
    /// Worth another attempt later: no answer, a timeout, a 5xx, 408 or 429.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Failed(_) => true,
            Self::Status(s) => s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429,
            Self::Refused(_) | Self::TooLarge { .. } => false,
        }
    }
}

/// Why an original was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("the file is empty")]
    Empty,
    /// Not an image `pm_media` reads, a format that is not accepted, a bomb.
    #[error(transparent)]
    Unreadable(#[from] pm_media::MediaError),
    /// The probe itself stopped (a panic in a decoder, caught by the blocking pool).
    #[error("probing the image failed: {0}")]
    Probe(String),
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// Includes `Refused` when the product has its most images.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AddError {
    /// Worth another attempt later: the object store or the database failed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Empty | Self::Unreadable(_) | Self::Probe(_) => false,
            Self::Object(e) => !matches!(
                e,
                ObjectError::InvalidKey { .. } | ObjectError::InvalidBucket(_) | ObjectError::TooLarge { .. }
            ),
            Self::Store(e) => !e.is_callers(),
        }
    }
}

impl MediaDeps {
    /// Fetches an image from `url`: at most `limits.max_input_bytes`, within `fetch_timeout`,
    /// at most 5 redirects, each checked like the URL itself.
    pub async fn fetch(&self, url: &url::Url) -> Result<Vec<u8>, FetchError> {
        crate::outbound::check(url, self.private_ok, "media.fetch_private_addresses")
            .map_err(FetchError::Refused)?;
        let max_bytes = self.limits.max_input_bytes;
        let mut resp = self
            .http
            .get(url.clone())
            .timeout(self.fetch_timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_redirect() {
                    FetchError::Refused(crate::outbound::error_chain(&e))
                } else {
                    FetchError::Failed(crate::outbound::error_chain(&e))
                }
            })?;
        if !resp.status().is_success() {
            return Err(FetchError::Status(resp.status()));
        }
        if resp.content_length().is_some_and(|n| n > max_bytes) {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Failed(crate::outbound::error_chain(&e)))?
        {
            if (buf.len() + chunk.len()) as u64 > max_bytes {
                return Err(FetchError::TooLarge { limit: max_bytes });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }

    /// Adds an original to a product: its format sniffed from the bytes (never the name), on
    /// the blocking pool with its hash; stored once under `products/{id[0:2]}/{id}/{sha256}.{ext}`
    /// before it is recorded (a recorded image always has its original); a new one queued for
    /// its thumbnails. The same bytes again answer the product's existing image (`created`
    /// false). Refused (`Store(Refused)`) when the product has `max_per_product` images.
    pub async fn add_original(
        &self,
        product_id: Uuid,
        bytes: Vec<u8>,
        source_url: Option<String>,
        by: Option<Uuid>,
    ) -> Result<Added, AddError> {
        if bytes.is_empty() {
            return Err(AddError::Empty);
        }
        let limits = self.limits;
        let (bytes, info, sha256) = tokio::task::spawn_blocking(move || {
            let info = pm_media::probe(&bytes, &limits);
            let sha = hex::encode(Sha256::digest(&bytes));
            (bytes, info, sha)
        })
        .await
        .map_err(|e| AddError::Probe(e.to_string()))?;
        let info = info?;
        let ext = ext_of(info.format);
        let key = product_image_key(product_id, &sha256, ext);
        let size = bytes.len() as i64;
        let body: pm_storage::object_store::ByteStream =
            Box::pin(futures::stream::once(
                async move { Ok(bytes::Bytes::from(bytes)) },
            ));
        // The same bytes again write the same object.
        self.objects
            .put(&self.bucket, &key, body, Some(info.format.content_type()))
            .await?;
        let new = NewMediaFile {
            product_id,
            sha256,
            ext: ext.to_owned(),
            content_type: info.format.content_type().to_owned(),
            size,
            source_url,
        };
        let added = match self.store.add(&new, self.max_per_product).await {
            Ok(a) => a,
            Err(e) => {
                // Refused (the limit): no image of the product has these bytes, so the object
                // is no one's.
                if matches!(e, StoreError::Refused { .. }) {
                    let _ = self.objects.delete(&self.bucket, &key).await;
                }
                return Err(e.into());
            }
        };
        if added.created {
            self.queue_thumbnails(added.file.id, by).await?;
        }
        Ok(added)
    }

    /// Sets images back to `queued` and queues their thumbnails again (after a change of
    /// `media.thumbnail_format` or quality): a product's, or every image (`None`; the
    /// `media.reprocess` job does that one, it may be many). `done` is told the count so far.
    pub async fn reprocess(
        &self,
        product_id: Option<Uuid>,
        by: Option<Uuid>,
        done: impl Fn(usize, usize),
    ) -> Result<usize, StoreError> {
        let ids = self.store.ids(product_id).await?;
        for (n, (id, _)) in ids.iter().enumerate() {
            self.store
                .set_status(*id, pm_storage::media::MediaStatus::Queued, None)
                .await?;
            self.queue_thumbnails(*id, by).await?;
            done(n + 1, ids.len());
        }
        Ok(ids.len())
    }

    /// Queues a `media.reprocess` job for every image.
    pub async fn queue_reprocess_all(&self, by: Option<Uuid>) -> Result<pm_storage::jobs::Job, StoreError> {
        let kind = thumbnails::REPROCESS_KIND;
        self.queue(kind, serde_json::json!({}), kind.to_owned(), by).await
    }

    /// Queues the fetching of products' image URLs (`media.fetch`), named by an import's rows.
    /// One import's fetches run one at a time (their group), so that an import with images
    /// leaves the other media workers to thumbnails.
    pub async fn queue_fetch(
        &self,
        import_job: Option<Uuid>,
        products: Vec<fetch::ProductUrls>,
        by: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let group = import_job.map_or_else(|| "media.fetch".to_owned(), |j| format!("media.fetch:{j}"));
        let payload = fetch::Payload { import_job, products };
        let payload = serde_json::to_value(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.queue(fetch::KIND, payload, group, by).await?;
        Ok(())
    }

    /// Queues an image's thumbnails (`media.thumbnails`); one image's jobs run one at a time,
    /// in order (a reprocess after the first run).
    pub async fn queue_thumbnails(&self, media_id: Uuid, by: Option<Uuid>) -> Result<(), StoreError> {
        let payload = serde_json::json!({ "media_id": media_id });
        self.queue(KIND, payload, format!("media:{media_id}"), by).await?;
        Ok(())
    }

    /// A job of `kind` on the media queue; jobs of one `group` run one at a time, in order.
    async fn queue(
        &self,
        kind: &str,
        payload: serde_json::Value,
        group: String,
        by: Option<Uuid>,
    ) -> Result<pm_storage::jobs::Job, StoreError> {
        let new = NewJob {
            group_key: Some(group),
            created_by: by,
            ..NewJob::new(kind, payload)
        };
        self.jobs.enqueue(new).await
    }
}
