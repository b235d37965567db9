//! Object storage: one interface, two implementations.
//!
//! - [`fs`]: files under `<data_dir>/objects/<bucket>/<key>`; download links are HMAC-signed
//!   app URLs (`/objects/<bucket>/<key>?expires=..&sig=..`) that the edge verifies and serves.
//! - [`s3`]: any S3 API through aws-sdk-s3; download links are presigned URLs.
//!
//! Bodies stream in and out ([`ByteStream`]); nothing holds a whole object in memory.

pub mod fs;
pub mod s3;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::Stream;
use pm_config::{ObjectStoreBackend, Settings};
use serde::Serialize;

/// A body streamed chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// What is known about a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub content_type: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object {bucket}/{key} not found")]
    NotFound { bucket: String, key: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("invalid bucket name {0:?}: 3 to 63 lowercase letters, digits, dots or hyphens")]
    InvalidBucket(String),
    #[error("object is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("object store misconfigured: {0}")]
    Config(String),
    #[error("object store i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("object store backend error: {0}")]
    Backend(String),
}

/// Operations on objects in buckets.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Stores `body` under `bucket/key`, replacing any object there, streaming.
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        content_type: Option<&str>,
    ) -> Result<ObjectMeta, ObjectError>;
    async fn get(&self, bucket: &str, key: &str) -> Result<(ObjectMeta, ByteStream), ObjectError>;
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta, ObjectError>;
    /// Deletes the object; deleting a missing object is not an error.
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError>;
    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError>;
    /// A link that downloads the object without other credentials until `ttl` has passed.
    async fn download_url(&self, bucket: &str, key: &str, ttl: Duration) -> Result<String, ObjectError>;
    /// Creates the buckets that do not exist.
    async fn ensure_buckets(&self, buckets: &[&str]) -> Result<(), ObjectError>;
    /// "fs" or "s3".
    fn backend(&self) -> &'static str;
    /// Whether an app-served download link is genuine and unexpired. Only the filesystem store
    /// makes such links; S3 links go to S3.
    fn verify_link(&self, _bucket: &str, _key: &str, _expires: u64, _sig: &str) -> bool {
        false
    }
}

/// Builds the store the settings ask for.
pub async fn from_settings(settings: &Settings) -> Result<Arc<dyn ObjectStore>, ObjectError> {
    let os = &settings.object_store;
    let store: Arc<dyn ObjectStore> = match os.backend {
        ObjectStoreBackend::Fs => Arc::new(fs::FsStore::new(
            settings.storage.data_dir.join("objects"),
            os.link_secret.as_ref().map(|s| s.expose().as_bytes().to_vec()),
            os.max_object_bytes,
        )),
        ObjectStoreBackend::S3 => Arc::new(s3::S3Store::new(&os.s3, os.max_object_bytes)?),
    };
    if os.backend == ObjectStoreBackend::Fs || os.s3.create_buckets {
        store.ensure_buckets(&os.buckets.all()).await?;
    }
    Ok(store)
}

/// Refuses keys that could escape the bucket or that S3 would store differently.
pub fn validate_key(key: &str) -> Result<(), ObjectError> {
    let bad = |reason| {
        Err(ObjectError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("starts with a slash");
    }
    if key.contains('\\') || key.chars().any(char::is_control) {
        return bad("contains a backslash or a control character");
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("has an empty, '.' or '..' segment");
    }
    Ok(())
}

pub fn validate_bucket(bucket: &str) -> Result<(), ObjectError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && !bucket.starts_with(['.', '-'])
        && !bucket.ends_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(ObjectError::InvalidBucket(bucket.to_owned()))
    }
}

/// The seed's date layout for files: `YYYY/MM/DD/<name>`.
pub fn dated_key(at: DateTime<Utc>, name: &str) -> String {
    format!("{}/{name}", at.format("%Y/%m/%d"))
}

/// The seed's layout for product images: `products/{uuid[0:2]}/{product_id}/{hash}.{ext}`, which
/// spreads products over 256 prefixes.
pub fn product_image_key(product_id: uuid::Uuid, hash: &str, ext: &str) -> String {
    let id = product_id.to_string();
    format!("products/{}/{id}/{hash}.{ext}", &id[..2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_escape_are_refused() {
        for k in ["", "/etc/passwd", "a/../b", "..", "a//b", "a\\b", "a/./b", "a\nb"] {
            assert!(validate_key(k).is_err(), "{k:?}");
        }
        for k in [
            "a",
            "2026/11/21/file.csv",
            "products/ab/x/h.jpg",
            "name with spaces.txt",
        ] {
            assert!(validate_key(k).is_ok(), "{k:?}");
        }
        assert!(validate_bucket("imports").is_ok());
        assert!(validate_bucket("Imports").is_err());
        assert!(validate_bucket("ab").is_err());
    }

    #[test]
    fn seed_layouts() {
        let at = DateTime::parse_from_rfc3339("2026-03-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(dated_key(at, "f.csv"), "2026/03/04/f.csv");
        let id = uuid::Uuid::parse_str("ab12cd34-0000-0000-0000-000000000000").unwrap();
        assert_eq!(
            product_image_key(id, "h", "jpg"),
            format!("products/ab/{id}/h.jpg")
        );
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;
    use futures::TryStreamExt;

    fn body(data: Vec<u8>, chunk: usize) -> ByteStream {
        let chunks: Vec<std::io::Result<Bytes>> = data
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures::stream::iter(chunks))
    }

    async fn read_all(s: ByteStream) -> Vec<u8> {
        s.try_fold(Vec::new(), |mut acc, b| async move {
            acc.extend_from_slice(&b);
            Ok(acc)
        })
        .await
        .unwrap()
    }

    /// Stores available to this run: the filesystem always, S3 when `PM_TEST_S3_ENDPOINT` is set.
    fn stores(max_bytes: u64) -> Vec<(Arc<dyn ObjectStore>, String)> {
        let run = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let dir = std::env::temp_dir().join(format!("pm-objects-{run}"));
        let mut out: Vec<(Arc<dyn ObjectStore>, String)> = vec![(
            Arc::new(fs::FsStore::new(dir, Some(b"k".to_vec()), max_bytes)),
            format!("fs-{run}"),
        )];
        if let Some(endpoint) = pm_config::testenv::test_server("PM_TEST_S3_ENDPOINT") {
            let s = pm_config::S3Settings {
                endpoint: Some(endpoint),
                region: std::env::var("PM_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
                path_style: true,
                access_key_id: Some(std::env::var("PM_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "test".into())),
                secret_access_key: Some(pm_config::Secret::new(
                    std::env::var("PM_TEST_S3_SECRET_KEY").unwrap_or_else(|_| "test".into()),
                )),
                create_buckets: true,
            };
            out.push((
                Arc::new(s3::S3Store::new(&s, max_bytes).unwrap()),
                format!("s3-{run}"),
            ));
        }
        out
    }

    #[tokio::test]
    async fn put_get_head_list_delete_on_every_backend() {
        for (store, bucket) in stores(64 * 1024 * 1024) {
            let b = store.backend();
            store.ensure_buckets(&[&bucket]).await.unwrap();
            store.ensure_buckets(&[&bucket]).await.unwrap();
            let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            let meta = store
                .put(
                    &bucket,
                    "2026/11/21/a.csv",
                    body(data.clone(), 7000),
                    Some("text/csv"),
                )
                .await
                .unwrap();
            assert_eq!(meta.size, data.len() as u64, "{b}");
            store
                .put(&bucket, "2026/11/22/b.csv", body(b"x".to_vec(), 1), None)
                .await
                .unwrap();
            store
                .put(&bucket, "other/c.txt", body(b"y".to_vec(), 1), None)
                .await
                .unwrap();

            let (m, s) = store.get(&bucket, "2026/11/21/a.csv").await.unwrap();
            assert_eq!(m.size, data.len() as u64);
            assert_eq!(m.content_type.as_deref(), Some("text/csv"), "{b}");
            assert_eq!(read_all(s).await, data, "{b}");
            assert_eq!(store.head(&bucket, "other/c.txt").await.unwrap().size, 1);

            let keys: Vec<String> = store
                .list(&bucket, "2026/")
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.key)
                .collect();
            assert_eq!(keys, ["2026/11/21/a.csv", "2026/11/22/b.csv"], "{b}");

            store.delete(&bucket, "other/c.txt").await.unwrap();
            store.delete(&bucket, "other/c.txt").await.unwrap();
            assert!(
                matches!(
                    store.head(&bucket, "other/c.txt").await,
                    Err(ObjectError::NotFound { .. })
                ),
                "{b}"
            );
            assert!(
                matches!(
                    store.get(&bucket, "nope").await,
                    Err(ObjectError::NotFound { .. })
                ),
                "{b}"
            );
            assert!(matches!(
                store.put(&bucket, "../escape", body(vec![1], 1), None).await,
                Err(ObjectError::InvalidKey { .. })
            ));
        }
    }

    #[tokio::test]
    async fn large_bodies_stream_in_parts_and_oversize_is_refused() {
        let limit = 20 * 1024 * 1024;
        for (store, bucket) in stores(limit) {
            let b = store.backend();
            store.ensure_buckets(&[&bucket]).await.unwrap();
            // Larger than one part: the S3 store uploads it in parts.
            let data: Vec<u8> = (0..(9 * 1024 * 1024 + 123))
                .map(|i: u32| (i % 253) as u8)
                .collect();
            let meta = store
                .put(&bucket, "big.bin", body(data.clone(), 256 * 1024), None)
                .await
                .unwrap();
            assert_eq!(meta.size, data.len() as u64, "{b}");
            let (_, s) = store.get(&bucket, "big.bin").await.unwrap();
            assert_eq!(read_all(s).await, data, "{b}");

            let too_big = vec![0u8; limit as usize + 1];
            let err = store
                .put(&bucket, "too-big.bin", body(too_big, 1024 * 1024), None)
                .await
                .unwrap_err();
            assert!(matches!(err, ObjectError::TooLarge { .. }), "{b}: {err}");
            assert!(
                matches!(
                    store.head(&bucket, "too-big.bin").await,
                    Err(ObjectError::NotFound { .. })
                ),
                "{b}"
            );
            assert!(
                store
                    .list(&bucket, "")
                    .await
                    .unwrap()
                    .iter()
                    .all(|m| m.key == "big.bin"),
                "{b}"
            );
        }
    }

    #[tokio::test]
    async fn download_links_work_and_expire() {
        for (store, bucket) in stores(1024 * 1024) {
            store.ensure_buckets(&[&bucket]).await.unwrap();
            store
                .put(
                    &bucket,
                    "img/p 1.jpg",
                    body(b"jpegdata".to_vec(), 3),
                    Some("image/jpeg"),
                )
                .await
                .unwrap();
            let url = store
                .download_url(&bucket, "img/p 1.jpg", Duration::from_secs(60))
                .await
                .unwrap();
            match store.backend() {
                "s3" => {
                    let resp = reqwest::get(&url).await.unwrap();
                    assert_eq!(resp.status(), 200, "{url}");
                    assert_eq!(&resp.bytes().await.unwrap()[..], b"jpegdata");
                }
                _ => {
                    let parsed = url::Url::parse(&format!("http://x{url}")).unwrap();
                    assert_eq!(parsed.path(), format!("/objects/{bucket}/img/p%201.jpg"));
                    let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
                    let expires: u64 = q["expires"].parse().unwrap();
                    assert!(store.verify_link(&bucket, "img/p 1.jpg", expires, &q["sig"]));
                    assert!(!store.verify_link(&bucket, "img/p 2.jpg", expires, &q["sig"]));
                    assert!(!store.verify_link(&bucket, "img/p 1.jpg", expires + 1, &q["sig"]));
                    // Expired links are refused even with a valid signature.
                    let old = store
                        .download_url(&bucket, "img/p 1.jpg", Duration::ZERO)
                        .await
                        .unwrap();
                    let parsed = url::Url::parse(&format!("http://x{old}")).unwrap();
                    let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
                    let expired_at: u64 = q["expires"].parse::<u64>().unwrap() - 1;
                    assert!(!store.verify_link(&bucket, "img/p 1.jpg", expired_at, &q["sig"]));
                }
            }
        }
    }
}
