//! Validated domain values shared by storage, actors and the HTTP edge.
//!
//! Parse, don't validate twice: a value of one of these types is valid by construction, so code
//! that receives a [`Gtin`] never checks a check digit again.
//!
//! - [`gtin`]: GTIN-8/12/13/14 (EAN, UPC) with check digit and one canonical stored form.
//! - [`access`]: permissions and the built-in roles.
//! - [`asin`]: Amazon's 10-character product identifier.
//! - [`product`]: product lifecycle status.
//! - [`money`]: ISO 4217 currencies and exact decimal amounts.
//! - [`text`]: the one rule for every text field (no control characters, bounded, visible).
//! - [`schema`]: their OpenAPI schemas, as they look on the wire.

pub mod access;
pub mod asin;
pub mod gtin;
pub mod money;
pub mod product;
pub mod schema;
pub mod text;

pub use access::{Permission, UnknownPermission, BUILTIN_ROLES};
pub use asin::{Asin, AsinError};
pub use gtin::{Gtin, GtinError};
pub use money::{Amount, Currency, Decimal, Money, MoneyError};
pub use product::{ProductStatus, UnknownStatus};
pub use text::{TextError, TextKind};
