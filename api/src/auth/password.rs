//! Argon2id password hashing. Hashing costs tens of milliseconds of CPU by design, so it runs on
//! the blocking pool, never on an async worker.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::ApiError;

/// Shortest password accepted.
pub const MIN_LEN: usize = 10;

/// Hashes `password` with Argon2id (the crate's defaults follow OWASP's recommendation).
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// Checks `password` against a stored hash. A malformed stored hash is "no".
pub async fn verify(password: String, stored: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// A dummy verification so that an unknown username costs as much time as a wrong password
/// (no user enumeration by timing).
pub async fn burn() {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(b"not a password", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone();
    let _ = verify("wrong".into(), stored).await;
}

/// Refuses passwords too weak to accept.
pub fn check_strength(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_LEN {
        return Err(ApiError::invalid(
            "password",
            format!("must have at least {MIN_LEN} characters"),
        ));
    }
    Ok(())
}

/// A random password for the bootstrap admin: 24 characters from 62, about 143 bits.
pub fn generate() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ_per_salt() {
        let h1 = hash("correct horse battery".into()).await.unwrap();
        let h2 = hash("correct horse battery".into()).await.unwrap();
        assert!(h1.starts_with("$argon2id$"));
        assert_ne!(h1, h2);
        assert!(verify("correct horse battery".into(), h1.clone()).await.unwrap());
        assert!(!verify("wrong".into(), h1).await.unwrap());
        assert!(!verify("x".into(), "not a hash".into()).await.unwrap());
        assert!(check_strength("short").is_err());
        assert_eq!(generate().len(), 24);
    }
}
