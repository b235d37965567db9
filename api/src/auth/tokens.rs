//! Access tokens (JWT, HS256), refresh tokens and API keys.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pm_domain::Permission;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Tokens remembered per thread (see [`Keys::verify`]).
const VERIFIED_MAX: usize = 10_000;

thread_local! {
    /// Verified access tokens of this worker thread, keyed by the whole token (so a token that
    /// differs in one byte is verified afresh) and tagged with the key that accepted it.
    static VERIFIED: std::cell::RefCell<std::collections::HashMap<String, (u64, Claims)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Prefix of API keys, so that they are told from JWTs at a glance (and by secret scanners).
pub const API_KEY_PREFIX: &str = "pmk_";

/// Claims of an access token. Permissions are copied in at issue time, so that checking a
/// request needs no database; a role change takes effect at the next refresh (at most
/// `auth.access_token_ttl_secs` later).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: Uuid,
    pub name: String,
    pub perms: Vec<Permission>,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: Uuid,
    /// The user's token generation at issue; a later bump revokes the token.
    #[serde(default)]
    pub tgen: i64,
}

/// The signing keys and token lifetimes.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub issuer: String,
    /// Identifies this key in the per-thread cache of verified tokens: a token verified with
    /// another key (another secret) is never answered from it.
    cache_tag: u64,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("access token expired")]
    Expired,
    #[error("invalid access token")]
    Invalid,
}

impl Keys {
    pub fn new(
        secret: &[u8],
        issuer: &str,
        access_ttl: Duration,
        refresh_ttl: Duration,
        leeway: Duration,
    ) -> Self {
        // Only HS256: a token that names another algorithm (`none` included) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = leeway.as_secs();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            cache_tag: rand::random(),
            access_ttl,
            refresh_ttl,
        }
    }

    pub fn issue(
        &self,
        user: Uuid,
        name: &str,
        perms: Vec<Permission>,
        generation: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user,
            name: name.to_owned(),
            perms,
            iss: self.issuer.clone(),
            iat: now,
            exp: now + self.access_ttl.as_secs(),
            jti: Uuid::new_v4(),
            tgen: generation,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Checks signature, algorithm, issuer and expiry. A token already verified on this
    /// thread is answered from a small per-thread map until it expires: a client sends the same
    /// token with every request, and the signature and the claims' JSON are the costly part.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let now = jsonwebtoken::get_current_timestamp();
        let cached = VERIFIED.with(|v| {
            let v = v.borrow();
            v.get(token)
                .filter(|(tag, c)| *tag == self.cache_tag && c.exp + self.validation.leeway > now)
                .map(|(_, c)| c.clone())
        });
        if let Some(c) = cached {
            return Ok(c);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        VERIFIED.with(|v| {
            let mut v = v.borrow_mut();
            if v.len() >= VERIFIED_MAX {
                v.retain(|_, (_, c)| c.exp + self.validation.leeway > now);
                if v.len() >= VERIFIED_MAX {
                    v.clear();
                }
            }
            v.insert(token.to_owned(), (self.cache_tag, claims.clone()));
        });
        Ok(claims)
    }
}

/// 32 random bytes, URL-safe base64: an opaque refresh token.
pub fn new_refresh_token() -> String {
    random_b64(32)
}

fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API key: `pmk_<prefix>_<secret>`; the prefix finds the row, the whole key's hash proves it.
pub fn new_api_key() -> (String, String) {
    let prefix: String = {
        use rand::distr::{Alphanumeric, SampleString};
        Alphanumeric
            .sample_string(&mut rand::rng(), 10)
            .to_ascii_lowercase()
    };
    let key = format!("{API_KEY_PREFIX}{prefix}_{}", random_b64(32));
    (prefix, key)
}

/// The prefix of an API key, if the string has the shape of one.
pub fn api_key_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    (!prefix.is_empty() && !secret.is_empty()).then_some(prefix)
}

/// Compares two hashes in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &[u8], ttl: u64) -> Keys {
        Keys::new(
            secret,
            "pm",
            Duration::from_secs(ttl),
            Duration::from_secs(60),
            Duration::from_secs(5),
        )
    }

    #[test]
    fn issues_and_verifies() {
        let k = keys(b"secret-1", 60);
        let id = Uuid::now_v7();
        let t = k.issue(id, "ann", vec![Permission::CatalogRead], 0).unwrap();
        let c = k.verify(&t).unwrap();
        assert_eq!(
            (c.sub, c.name.as_str(), c.perms),
            (id, "ann", vec![Permission::CatalogRead])
        );
    }

    #[test]
    fn refuses_tampered_foreign_none_and_expired_tokens() {
        let k = keys(b"secret-1", 60);
        let t = k
            .issue(Uuid::now_v7(), "ann", vec![Permission::CatalogRead], 0)
            .unwrap();
        // Another key, even right after this thread verified the token with the right one.
        assert!(k.verify(&t).is_ok());
        assert_eq!(keys(b"secret-2", 60).verify(&t), Err(TokenError::Invalid));
        // A changed payload (grant admin) with the old signature.
        let parts: Vec<&str> = t.split('.').collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        claims["perms"] = serde_json::json!(["admin"]);
        let forged = format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2]);
        assert_eq!(k.verify(&forged), Err(TokenError::Invalid));
        // alg: none, no signature.
        let none = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert_eq!(k.verify(&none), Err(TokenError::Invalid));
        // Expired (beyond the leeway).
        let mut c: Claims = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        c.exp = jsonwebtoken::get_current_timestamp() - 60;
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(b"secret-1"),
        )
        .unwrap();
        assert_eq!(k.verify(&old), Err(TokenError::Expired));
        assert_eq!(k.verify("garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn api_keys_have_a_findable_prefix() {
        let (prefix, key) = new_api_key();
        assert_eq!(api_key_prefix(&key), Some(prefix.as_str()));
        assert_eq!(api_key_prefix("eyJhbGciOi.x.y"), None);
        assert_eq!(api_key_prefix("pmk_"), None);
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
