//! What actix 0.13 lacks, built on top of it: bounded inspectable mailboxes, OTP-style
//! supervision, panics turned into counted restarts, stuck detection and a registry.
//!
//! - [`behaviour`]: the trait an actor's state implements ([`Behaviour`], [`Handles`], [`Reply`]).
//! - [`mailbox`]: [`Mailbox`], the bounded handle callers hold; [`CallError`].
//! - [`cell`]: the actix actor that runs a behaviour and catches its panics (internal).
//! - [`stats`]: per-actor counters, handling-time histogram and [`ActorSnapshot`].
//! - [`supervisor`]: [`Supervisor`], strategies, restart types and intensity, escalation.
//! - [`registry`]: [`Registry`] of every supervised actor, read by `/admin/actors` and `/metrics`.
//!
//! Callers depend on [`Mailbox`], never on `actix::Addr`, so actix stays a detail of this crate.

pub mod behaviour;
mod cell;
pub mod mailbox;
pub mod registry;
pub mod stats;
pub mod supervisor;

pub use behaviour::{Behaviour, Ctx, Handles, Reply};
pub use mailbox::{CallError, Mailbox};
pub use registry::{ActorEntry, Registry};
pub use stats::{ActorSnapshot, ActorStatus, HandlingSummary};
pub use supervisor::{ChildSpec, Intensity, RestartType, Strategy, Supervisor, SupervisorStatus};

#[cfg(test)]
mod tests;
