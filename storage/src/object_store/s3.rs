//! Objects on any S3 API (AWS, MinIO, ...).

use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as AwsBody;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use pm_config::S3Settings;

use super::{validate_bucket, validate_key, ByteStream, ObjectError, ObjectMeta, ObjectStore};

/// Size of a multipart upload part. Bodies smaller than this go up in one request; larger ones
/// stream part by part, so memory stays at one part whatever the object size. (S3's minimum
/// part size is 5 MiB.)
const PART_SIZE: usize = 8 * 1024 * 1024;

pub struct S3Store {
    client: Client,
    max_bytes: u64,
}

fn backend_err(e: impl std::error::Error) -> ObjectError {
    // The SDK's Display is terse ("service error"); its source chain says what happened.
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    ObjectError::Backend(msg)
}

impl S3Store {
    pub fn new(s: &S3Settings, max_bytes: u64) -> Result<Self, ObjectError> {
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(s.region.clone()))
            .force_path_style(s.path_style)
            // Self-hosted S3 servers differ in their support of the newer default checksums.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(ep) = &s.endpoint {
            b = b.endpoint_url(ep);
        }
        match (&s.access_key_id, &s.secret_access_key) {
            (Some(id), Some(secret)) => {
                b = b.credentials_provider(Credentials::new(id, secret.expose(), None, None, "pm-settings"));
            }
            _ => {
                return Err(ObjectError::Config(
                    "object_store.s3.access_key_id and secret_access_key are required".into(),
                ))
            }
        }
        // hyper + rustls on ring, the process's one TLS stack (see `crate::tls`).
        crate::tls::init();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        b = b.http_client(http);
        Ok(Self {
            client: Client::from_conf(b.build()),
            max_bytes,
        })
    }

    async fn multipart(
        &self,
        bucket: &str,
        key: &str,
        first: Bytes,
        mut body: ByteStream,
        content_type: Option<&str>,
    ) -> Result<u64, ObjectError> {
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .set_content_type(content_type.map(str::to_owned))
            .send()
            .await
            .map_err(backend_err)?;
        let upload_id = upload.upload_id().unwrap_or_default().to_owned();
        let result = async {
            let mut parts = Vec::new();
            let mut size = first.len() as u64;
            let mut buf = BytesMut::from(&first[..]);
            let mut done = false;
            while !done {
                while buf.len() < PART_SIZE {
                    match body.next().await {
                        Some(chunk) => {
                            let chunk = chunk?;
                            size += chunk.len() as u64;
                            if size > self.max_bytes {
                                return Err(ObjectError::TooLarge {
                                    limit: self.max_bytes,
                                });
                            }
                            buf.extend_from_slice(&chunk);
                        }
                        None => {
                            done = true;
                            break;
                        }
                    }
                }
                if buf.is_empty() {
                    break;
                }
                let part = buf.split_to(buf.len().min(PART_SIZE)).freeze();
                let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
                let out = self
                    .client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(AwsBody::from(part))
                    .send()
                    .await
                    .map_err(backend_err)?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag)
                        .build(),
                );
                if done && !buf.is_empty() {
                    done = false;
                }
            }
            self.client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(backend_err)?;
            Ok(size)
        }
        .await;
        if result.is_err() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        mut body: ByteStream,
        content_type: Option<&str>,
    ) -> Result<ObjectMeta, ObjectError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        let mut buf = BytesMut::new();
        let mut size = 0u64;
        while buf.len() < PART_SIZE {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    size += chunk.len() as u64;
                    if size > self.max_bytes {
                        return Err(ObjectError::TooLarge {
                            limit: self.max_bytes,
                        });
                    }
                    buf.extend_from_slice(&chunk);
                }
                None => {
                    self.client
                        .put_object()
                        .bucket(bucket)
                        .key(key)
                        .set_content_type(content_type.map(str::to_owned))
                        .body(AwsBody::from(buf.freeze()))
                        .send()
                        .await
                        .map_err(backend_err)?;
                    return self.head(bucket, key).await;
                }
            }
        }
        self.multipart(bucket, key, buf.freeze(), body, content_type)
            .await?;
        self.head(bucket, key).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<(ObjectMeta, ByteStream), ObjectError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    ObjectError::NotFound {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    }
                } else {
                    backend_err(e)
                }
            })?;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: out
                .content_length
                .and_then(|l| u64::try_from(l).ok())
                .unwrap_or_default(),
            content_type: out.content_type.clone(),
            last_modified: out
                .last_modified
                .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0)),
        };
        let stream = out.body.into_async_read();
        let stream =
            tokio_util::io::ReaderStream::with_capacity(stream, 64 * 1024).map_err(std::io::Error::other);
        Ok((meta, Box::pin(stream)))
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta, ObjectError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                    ObjectError::NotFound {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    }
                } else {
                    backend_err(e)
                }
            })?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: out
                .content_length
                .and_then(|l| u64::try_from(l).ok())
                .unwrap_or_default(),
            content_type: out.content_type,
            last_modified: out
                .last_modified
                .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0)),
        })
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(backend_err)?;
        Ok(())
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError> {
        validate_bucket(bucket)?;
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(backend_err)?;
            for o in page.contents() {
                out.push(ObjectMeta {
                    key: o.key().unwrap_or_default().to_owned(),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or_default(),
                    content_type: None,
                    last_modified: o
                        .last_modified()
                        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0)),
                });
            }
        }
        Ok(out)
    }

    async fn download_url(&self, bucket: &str, key: &str, ttl: Duration) -> Result<String, ObjectError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        let cfg = PresigningConfig::expires_in(ttl).map_err(backend_err)?;
        let req = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(cfg)
            .await
            .map_err(backend_err)?;
        Ok(req.uri().to_owned())
    }

    async fn ensure_buckets(&self, buckets: &[&str]) -> Result<(), ObjectError> {
        for b in buckets {
            validate_bucket(b)?;
            if self.client.head_bucket().bucket(*b).send().await.is_ok() {
                continue;
            }
            match self.client.create_bucket().bucket(*b).send().await {
                Ok(_) => tracing::info!(bucket = b, "created bucket"),
                Err(e)
                    if e.as_service_error().is_some_and(|s| {
                        s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
                    }) => {}
                Err(e) => return Err(backend_err(e)),
            }
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "s3"
    }
}
