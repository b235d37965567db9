//! The traits an actor's state implements, and how a handler answers.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::oneshot;

pub use crate::context::Ctx;

/// An actor's state. A fresh one is built by the child spec's factory at start and after every
/// restart, so a panic never leaves a half-updated state behind.
pub trait Behaviour: Send + Unpin + Sized + 'static {
    /// Runs when the actor (re)starts, before any message. Timers and self messages are
    /// usually set up here. An error, or a panic, counts as a crash.
    fn started(&mut self, _ctx: &Ctx<Self>) -> Result<(), String> {
        Ok(())
    }

    /// Runs when the actor stops for good (its own [`Ctx::stop`], idle, shutdown); not on a
    /// restart after a crash, whose state is thrown away.
    fn stopped(&mut self) {}

    /// Whether the actor is doing work that no message shows (a future piped back to itself,
    /// a job it runs between ticks): an actor that is busy is never stopped for being idle.
    fn busy(&self) -> bool {
        false
    }

    /// A snapshot of the actor's own state for `/admin/actors/{name}`.
    fn observe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// How an actor answers message `M`. An `Err` counts as a failed message (not a crash).
///
/// A panic in `handle` is a crash of a stateful actor (its state may be half-updated, so it
/// restarts from the factory and the restart counts toward its supervisor's intensity); in a
/// stateless gate ([`crate::ChildSpec::stateless`]) it fails that one request. A panic inside
/// the future or closure of [`Reply::spawn`] / [`Reply::blocking`] fails that one request only:
/// such work cannot touch the actor's state.
pub trait Handles<M: Send + 'static>: Behaviour {
    type Ok: Send + 'static;
    type Err: Display + Send + 'static;

    fn handle(&mut self, msg: M, ctx: &Ctx<Self>) -> Reply<Result<Self::Ok, Self::Err>>;

    /// Whether an error answer means the actor failed (counted in `failed`, kept as
    /// `last_error`) rather than the caller (not found, invalid input), which is only counted
    /// in `rejected_by_handler`. Every error is the actor's by default.
    fn is_failure(_err: &Self::Err) -> bool {
        true
    }
}

/// A handler's answer.
pub enum Reply<T> {
    /// Answered now; the state changes happened in order, one message at a time.
    Ready(T),
    /// A future that runs on the tokio worker pool, at most the actor's concurrency at once.
    /// It cannot touch the actor's state: to change state with its result, use
    /// [`Ctx::pipe`] instead.
    Async(Pin<Box<dyn Future<Output = T> + Send + 'static>>),
    /// CPU-bound work (parsing, image resizing) on the bounded blocking pool, never on the
    /// async workers; at most the actor's concurrency at once, and at most the pool's size
    /// across all actors.
    Blocking(Box<dyn FnOnce() -> T + Send + 'static>),
    /// Answered later through the [`Responder`] the handler kept (a resolver that batches
    /// requests for 200 ms answers each caller when its batch comes back).
    Deferred(oneshot::Receiver<T>),
}

impl<T> Reply<T> {
    pub fn ready(value: T) -> Self {
        Self::Ready(value)
    }

    pub fn spawn(fut: impl Future<Output = T> + Send + 'static) -> Self {
        Self::Async(Box::pin(fut))
    }

    pub fn blocking(f: impl FnOnce() -> T + Send + 'static) -> Self {
        Self::Blocking(Box::new(f))
    }

    /// A reply to be given later: keep the [`Responder`] in the actor's state.
    pub fn deferred() -> (Self, Responder<T>) {
        let (tx, rx) = oneshot::channel();
        (Self::Deferred(rx), Responder(tx))
    }
}

/// The other end of [`Reply::deferred`]. Dropping it unanswered fails the caller's request.
#[derive(Debug)]
pub struct Responder<T>(oneshot::Sender<T>);

impl<T> Responder<T> {
    /// Answers the caller; `false` if the caller has gone.
    pub fn send(self, value: T) -> bool {
        self.0.send(value).is_ok()
    }

    /// Whether the caller is gone (its timeout passed, the client disconnected).
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}
