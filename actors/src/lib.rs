//! The actors and their typed messages, and the supervision tree that runs them.
//!
//! - [`store`]: one store actor per database. [`store::db`] is the plain store (health, pool
//!   state) used by the six databases that have no queries yet; [`store::catalog`] serves the
//!   catalog's queries. Each runs up to its pool size of queries at once; beyond that messages
//!   wait in its bounded mailbox.
//! - [`jobs`]: the job layer: per queue a gate (`jobs.<queue>.queue`) and a pool of workers
//!   (`jobs.<queue>.worker.<n>`) on the durable queues of `pm_storage::jobs`.
//! - [`changes`]: write-side change events: [`changes::Write`] (a write and its origin), the
//!   [`changes::ChangeBus`] every store write publishes on after its commit.
//! - [`code2asin`]: ASIN resolvers per Amazon account and marketplace, and the job kind that
//!   feeds them.
//! - [`outbound`]: the rule for URLs the service fetches (import sources, images) and their
//!   client.
//! - [`activity`]: the batched activity-log writer (`activity.writer`).
//! - [`events`]: [`Hub`], live events by topic with a bounded buffer per subscriber.
//! - [`system`]: builds the tree (root → `stores`) from the settings and hands out the
//!   mailboxes; see `ARCHITECTURE.md` for the whole picture.
//!
//! Callers hold [`pm_supervisors::Mailbox`] handles; nothing outside this crate sees a pool.

pub mod activity;
pub mod changes;
pub mod code2asin;
pub mod events;
pub mod jobs;
pub mod media;
pub mod outbound;
pub mod store;
pub mod system;

pub use events::Hub;
pub use store::{Ping, StoreCallError};
pub use system::{ActorSystem, Jobs, Services, Stores};
