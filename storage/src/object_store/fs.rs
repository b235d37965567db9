//! Objects as files under one root directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{validate_bucket, validate_key, ByteStream, ObjectError, ObjectMeta, ObjectStore};

type HmacSha256 = Hmac<Sha256>;

/// Suffix of files being written; a put writes there, then renames, so readers never see half
/// an object and a crash leaves no partial object under the real key.
const PARTIAL: &str = ".pm-partial";

pub struct FsStore {
    root: PathBuf,
    link_key: Vec<u8>,
    max_bytes: u64,
}

impl FsStore {
    /// `link_key` signs download links; without one a random key is made (links then die with
    /// the process).
    pub fn new(root: PathBuf, link_key: Option<Vec<u8>>, max_bytes: u64) -> Self {
        let link_key = link_key.unwrap_or_else(|| {
            let mut k = uuid::Uuid::new_v4().as_bytes().to_vec();
            k.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            k
        });
        Self {
            root,
            link_key,
            max_bytes,
        }
    }

    fn path(&self, bucket: &str, key: &str) -> Result<PathBuf, ObjectError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        Ok(self.root.join(bucket).join(key))
    }

    fn signature(&self, bucket: &str, key: &str, expires: u64) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.link_key).expect("hmac takes any key length");
        mac.update(format!("{bucket}\n{key}\n{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    async fn meta(path: &Path, key: &str) -> Result<ObjectMeta, ObjectError> {
        let md = tokio::fs::metadata(path).await?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: md.len(),
            content_type: content_type_of(key).map(str::to_owned),
            last_modified: md.modified().ok().map(Into::into),
        })
    }
}

/// Content type from the key's extension, for the files this service handles.
pub fn content_type_of(key: &str) -> Option<&'static str> {
    let ext = key.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "csv" => "text/csv",
        "json" => "application/json",
        "txt" => "text/plain",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xls" => "application/vnd.ms-excel",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

fn not_found(e: std::io::Error, bucket: &str, key: &str) -> ObjectError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ObjectError::NotFound {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }
    } else {
        e.into()
    }
}

#[async_trait::async_trait]
impl ObjectStore for FsStore {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        mut body: ByteStream,
        _content_type: Option<&str>,
    ) -> Result<ObjectMeta, ObjectError> {
        let path = self.path(bucket, key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = path.with_file_name(format!(
            "{}.{}{PARTIAL}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("object"),
            uuid::Uuid::new_v4().simple()
        ));
        let result = async {
            // Chunks come as the client sent them (often a few KiB); every write to a tokio
            // file is a trip to the blocking pool, so they are gathered into 1 MiB writes.
            let mut file = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(&tmp).await?);
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                if size > self.max_bytes {
                    return Err(ObjectError::TooLarge {
                        limit: self.max_bytes,
                    });
                }
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            file.get_ref().sync_all().await?;
            tokio::fs::rename(&tmp, &path).await?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result?;
        Self::meta(&path, key).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<(ObjectMeta, ByteStream), ObjectError> {
        let path = self.path(bucket, key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| not_found(e, bucket, key))?;
        let meta = Self::meta(&path, key).await?;
        Ok((meta, Box::pin(ReaderStream::with_capacity(file, 64 * 1024))))
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta, ObjectError> {
        let path = self.path(bucket, key)?;
        Self::meta(&path, key).await.map_err(|e| match e {
            ObjectError::Io(io) => not_found(io, bucket, key),
            other => other,
        })
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        let path = self.path(bucket, key)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError> {
        validate_bucket(bucket)?;
        let root = self.root.join(bucket);
        let prefix = prefix.to_owned();
        // Walking a directory tree is blocking file-system work.
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                for entry in entries {
                    let entry = entry?;
                    let path = entry.path();
                    let ft = entry.file_type()?;
                    if ft.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    let Some(key) = path.strip_prefix(&root).ok().and_then(|p| p.to_str()) else {
                        continue;
                    };
                    let key = key.replace(std::path::MAIN_SEPARATOR, "/");
                    if key.ends_with(PARTIAL) || !key.starts_with(&prefix) {
                        continue;
                    }
                    let md = entry.metadata()?;
                    out.push(ObjectMeta {
                        content_type: content_type_of(&key).map(str::to_owned),
                        key,
                        size: md.len(),
                        last_modified: md.modified().ok().map(Into::into),
                    });
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| ObjectError::Backend(e.to_string()))?
    }

    async fn download_url(&self, bucket: &str, key: &str, ttl: Duration) -> Result<String, ObjectError> {
        self.path(bucket, key)?;
        let expires = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + ttl.as_secs();
        let sig = self.signature(bucket, key, expires);
        let key_enc: String = key.split('/').map(urlencode).collect::<Vec<_>>().join("/");
        Ok(format!("/objects/{bucket}/{key_enc}?expires={expires}&sig={sig}"))
    }

    async fn ensure_buckets(&self, buckets: &[&str]) -> Result<(), ObjectError> {
        for b in buckets {
            validate_bucket(b)?;
            tokio::fs::create_dir_all(self.root.join(b)).await?;
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "fs"
    }

    /// Checks a download link's signature and expiry (constant-time comparison).
    fn verify_link(&self, bucket: &str, key: &str, expires: u64, sig: &str) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if expires < now {
            return false;
        }
        let Ok(sig) = hex::decode(sig) else { return false };
        let mut mac = HmacSha256::new_from_slice(&self.link_key).expect("hmac takes any key length");
        mac.update(format!("{bucket}\n{key}\n{expires}").as_bytes());
        mac.verify_slice(&sig).is_ok()
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
