//! Secrets kept in a database (Amazon refresh tokens and client secrets) are encrypted with
//! AES-256-GCM under a key the database does not hold: a dump of the core database alone
//! reveals nothing. The key is derived (SHA-256) from `amazon.secrets_key`, or from a random
//! key made once in the data directory.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Why a stored secret cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CryptoError {
    #[error("stored secret is not in the expected format")]
    Format,
    #[error("stored secret does not decrypt with this key (was amazon.secrets_key changed?)")]
    Key,
}

/// Encrypts and decrypts short secrets. Cheap to clone.
#[derive(Clone)]
pub struct SecretCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher(..)")
    }
}

const PREFIX: &str = "v1:";

impl SecretCipher {
    /// A cipher whose key is the SHA-256 of `material`.
    pub fn from_key_material(material: &[u8]) -> Self {
        let key = Sha256::digest(material);
        Self {
            cipher: Aes256Gcm::new(&key),
        }
    }

    /// `v1:` then base64 of a random 96-bit nonce followed by the ciphertext and tag.
    pub fn encrypt(&self, plain: &str) -> String {
        // 96 random bits from the OS for every secret: a nonce is never reused in practice.
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plain.as_bytes())
            .expect("aes-gcm encrypts any input shorter than 64 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let b64 = stored.strip_prefix(PREFIX).ok_or(CryptoError::Format)?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| CryptoError::Format)?;
        if raw.len() < 12 + 16 {
            return Err(CryptoError::Format);
        }
        let (nonce, sealed) = raw.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| CryptoError::Key)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_another_key_or_tampering() {
        let c = SecretCipher::from_key_material(b"key one");
        let sealed = c.encrypt("Atzr|refresh-token");
        assert!(!sealed.contains("refresh"));
        assert_ne!(sealed, c.encrypt("Atzr|refresh-token"), "a fresh nonce each time");
        assert_eq!(c.decrypt(&sealed).unwrap(), "Atzr|refresh-token");
        let other = SecretCipher::from_key_material(b"key two");
        assert_eq!(other.decrypt(&sealed), Err(CryptoError::Key));
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(c.decrypt(&String::from_utf8(bytes).unwrap()).is_err());
        assert_eq!(c.decrypt("plain"), Err(CryptoError::Format));
    }
}
