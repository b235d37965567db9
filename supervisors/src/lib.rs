//! What actix 0.13 lacks, built on top of it: bounded inspectable mailboxes, OTP-style
//! supervision, panics turned into counted restarts, stuck detection and a registry.
//!
//! - [`behaviour`]: the traits an actor's state implements ([`Behaviour`], [`Handles`]) and
//!   how it answers ([`Reply`]: now, a future, blocking work, or later through a [`Responder`]).
//! - [`context`]: [`Ctx`], an actor's own handle: self messages, timers, piped futures, stop.
//! - [`exec`]: [`Executor`], the arbiters shared by all actors and the bounded blocking pool.
//! - [`dynamic`]: [`DynamicSupervisor`], children started by key at run time, capped, stopped
//!   when idle.
//! - [`mailbox`]: [`Mailbox`], the bounded handle callers hold; [`CallError`].
//! - [`cell`]: the actix actor that runs a behaviour and catches its panics (internal).
//! - [`stats`]: per-actor counters, handling-time histogram and [`ActorSnapshot`].
//! - [`supervisor`]: [`Supervisor`], strategies, restart types and intensity, escalation.
//! - [`registry`]: [`Registry`] of every supervised actor, read by `/admin/actors` and `/metrics`.
//!
//! Callers depend on [`Mailbox`], never on `actix::Addr`, so actix stays a detail of this crate.

pub mod behaviour;
mod cell;
pub mod context;
pub mod dynamic;
pub mod exec;
pub mod mailbox;
pub mod registry;
pub mod stats;
pub mod supervisor;

pub use behaviour::{Behaviour, Handles, Reply, Responder};
pub use context::{Ctx, TimerId};
pub use dynamic::{DynCallError, DynamicError, DynamicSpec, DynamicSupervisor};
pub use exec::Executor;
pub use mailbox::{CallError, Mailbox};
pub use registry::{ActorEntry, Registry};
pub use stats::{ActorSnapshot, ActorStatus, HandlingSummary};
pub use supervisor::{ChildSpec, Intensity, RestartType, Strategy, Supervisor, SupervisorStatus};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_runtime;
