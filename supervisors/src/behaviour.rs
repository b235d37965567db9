//! The trait an actor's state implements.

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use crate::stats::Shared;

/// An actor's state. A fresh one is built by the child spec's factory at start and after every
/// restart, so a panic never leaves a half-updated state behind.
pub trait Behaviour: Send + Unpin + Sized + 'static {
    /// Runs when the actor (re)starts. An error counts as a crash.
    fn started(&mut self, _ctx: &Ctx<Self>) -> Result<(), String> {
        Ok(())
    }

    /// A snapshot of the actor's own state for `/admin/actors/{name}`.
    fn observe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// How an actor answers message `M`. An `Err` counts as a failed message (not a crash); a panic
/// is a crash and restarts the actor.
pub trait Handles<M: Send + 'static>: Behaviour {
    type Ok: Send + 'static;
    type Err: Display + Send + 'static;

    fn handle(&mut self, msg: M, ctx: &Ctx<Self>) -> Reply<Result<Self::Ok, Self::Err>>;
}

/// A handler's answer: ready now (state changes happen in order, one message at a time), or a
/// future that runs on the tokio worker pool, at most the actor's concurrency at once.
pub enum Reply<T> {
    Ready(T),
    Async(Pin<Box<dyn Future<Output = T> + Send + 'static>>),
}

impl<T> Reply<T> {
    pub fn ready(value: T) -> Self {
        Self::Ready(value)
    }

    pub fn spawn(fut: impl Future<Output = T> + Send + 'static) -> Self {
        Self::Async(Box::pin(fut))
    }
}

/// What a handler can reach of its own actor.
pub struct Ctx<B: Behaviour> {
    pub(crate) shared: Arc<Shared>,
    _behaviour: PhantomData<fn() -> B>,
}

impl<B: Behaviour> Ctx<B> {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            _behaviour: PhantomData,
        }
    }

    /// The actor's registered name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }
}
