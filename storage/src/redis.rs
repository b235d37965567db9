//! The optional Redis connection (L2 cache, cross-instance messages).

use std::path::Path;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cache.redis_ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
}

/// A client for `url`: `redis://` in the clear, `rediss://` over TLS, verified against the
/// system's roots or, when `ca_file` is given, against that PEM file (a private CA, as managed
/// Redis services and self-hosted ones use).
pub fn client(url: &str, ca_file: Option<&Path>) -> Result<redis::Client, RedisError> {
    crate::tls::init();
    let Some(path) = ca_file else {
        return Ok(redis::Client::open(url)?);
    };
    let ca_err = |reason: String| RedisError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(ca_err("holds no PEM certificate".into()));
    }
    if !url.starts_with("rediss://") {
        return Err(ca_err("is set but the url is not rediss:// (tls)".into()));
    }
    Ok(redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        },
    )?)
}

/// A reconnecting Redis connection. Cheap to clone; clones share one multiplexed connection.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
}

impl Redis {
    /// Connects; fails if Redis cannot be reached within `timeout`.
    pub async fn connect(client: redis::Client, timeout: Duration) -> Result<Self, RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|_| RedisError::Timeout(timeout))??;
        Ok(Self { conn })
    }

    /// A handle that connects in the background and keeps retrying, for a Redis that is down
    /// at start: requests that need it fail until it is back.
    pub fn lazy(client: redis::Client) -> Result<Self, RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        Ok(Self {
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
        })
    }

    /// PING round trip; returns its latency.
    pub async fn ping(&self, timeout: Duration) -> Result<Duration, RedisError> {
        let started = Instant::now();
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        tokio::time::timeout(timeout, cmd.query_async::<String>(&mut conn))
            .await
            .map_err(|_| RedisError::Timeout(timeout))??;
        Ok(started.elapsed())
    }

    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pings_a_real_redis_and_fails_fast_on_a_dead_one() {
        if let Some(url) = pm_config::testenv::test_server("PM_TEST_REDIS_URL") {
            let r = Redis::connect(client(&url, None).unwrap(), Duration::from_secs(2))
                .await
                .unwrap();
            assert!(r.ping(Duration::from_secs(2)).await.is_ok());
        }
        // Nothing listens on port 1.
        let started = Instant::now();
        let dead = client("redis://127.0.0.1:1", None).unwrap();
        assert!(Redis::connect(dead, Duration::from_millis(500)).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
