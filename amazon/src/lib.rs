//! Amazon SP-API client for looking products up by EAN, and a stand-in server to test it.
//!
//! Map:
//! - [`marketplace`]: [`Marketplace`] (country code or marketplace id → id, [`Region`], host).
//! - [`lwa`]: Login with Amazon. [`LwaCredentials`] and [`TokenProvider`], which caches the
//!   access token, renews it before expiry, one refresh at a time.
//! - [`catalog`]: [`CatalogClient::search_by_identifiers`], `searchCatalogItems` for up to 20
//!   EANs with pagination and one retry on 403; [`SpApiError`]; no rate limiting (the caller's).
//! - [`model`]: the fields of SP-API's JSON that we read ([`CatalogItem`], `ErrorList`).
//! - [`matching`]: [`match_items`] maps items back to requested GTINs (as GTIN-14);
//!   [`choose`] suggests one ASIN per GTIN with a confidence and a reason.
//! - `standin` (feature `standin`): an in-process SP-API + LWA server that validates requests
//!   as Amazon does, throttles with a token bucket and serves a deterministic catalog derived
//!   from each EAN; the `sp-api-standin` binary runs it for demos and scripts.
//!
//! The contract these follow is `docs/external-apis.md` §1 and Amazon's model
//! `docs/external-apis/catalogItems_2022-04-01.json`.

pub mod catalog;
pub mod lwa;
pub mod marketplace;
pub mod matching;
pub mod model;
#[cfg(feature = "standin")]
pub mod standin;

pub use catalog::{throttle_backoff, CatalogClient, SearchOutcome, SpApiError, MAX_IDENTIFIERS};
pub use lwa::{LwaCredentials, LwaError, TokenProvider, DEFAULT_LWA_ENDPOINT};
pub use marketplace::{Marketplace, Region, UnknownMarketplace};
pub use matching::{choose, match_items, Candidate, Choice, ChoiceKind};
pub use model::CatalogItem;
