//! Who is calling, and what they may do.
//!
//! - [`password`]: Argon2id hashing, off the async threads.
//! - [`tokens`]: JWT access tokens (HS256 only), opaque refresh tokens, API keys.
//! - [`principal`]: [`Principal`], resolved from `Authorization: Bearer ...` by
//!   [`authenticate`], and the permission check handlers call.
//! - [`limits`]: login attempt limits per user and per client address (governor).

pub mod limits;
pub mod password;
pub mod principal;
pub mod tokens;

pub use principal::{authenticate, require_admin, Principal};
pub use tokens::Keys;
