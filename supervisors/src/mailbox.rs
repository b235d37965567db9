//! The bounded handle every caller holds.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use tokio::sync::{oneshot, OwnedSemaphorePermit, TryAcquireError};

use crate::behaviour::{Behaviour, Handles};
use crate::cell::{Cell, Envelope};
use crate::stats::{ActorSnapshot, Shared};

/// Why a call to an actor did not produce the handler's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError<E> {
    /// The mailbox stayed full until the send deadline: the caller should retry later.
    #[error("actor {actor} is overloaded (mailbox full); retry after {retry_after:?}")]
    Backpressure { actor: String, retry_after: Duration },
    /// The actor is stopped (shutdown, or its supervisor escalated).
    #[error("actor {actor} is not running")]
    Stopped { actor: String },
    /// The handler panicked; the actor was restarted and the message is lost.
    #[error("actor {actor} crashed while handling the request: {reason}")]
    Panicked { actor: String, reason: String },
    /// The handler's own error.
    #[error(transparent)]
    Handler(E),
}

/// A cloneable, bounded handle to a supervised actor. It survives restarts of the actor.
pub struct Mailbox<B: Behaviour> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) addr: Addr<Cell<B>>,
}

impl<B: Behaviour> Clone for Mailbox<B> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            addr: self.addr.clone(),
        }
    }
}

impl<B: Behaviour> std::fmt::Debug for Mailbox<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("name", &self.shared.name)
            .finish()
    }
}

impl<B: Behaviour> Mailbox<B> {
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn snapshot(&self) -> ActorSnapshot {
        self.shared.snapshot()
    }

    /// Sends `msg` and waits for the answer. Waits at most the actor's send timeout for a
    /// mailbox slot, then fails with [`CallError::Backpressure`].
    pub async fn send<M>(&self, msg: M) -> Result<B::Ok, CallError<B::Err>>
    where
        B: Handles<M>,
        M: Send + 'static,
    {
        self.check_up()?;
        let slot = self.shared.slots.clone().acquire_owned();
        let permit = match tokio::time::timeout(self.shared.send_timeout, slot).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(self.stopped()),
            Err(_) => return Err(self.backpressure()),
        };
        self.deliver(msg, permit).await
    }

    /// Sends `msg` only if a mailbox slot is free right now.
    pub async fn try_send<M>(&self, msg: M) -> Result<B::Ok, CallError<B::Err>>
    where
        B: Handles<M>,
        M: Send + 'static,
    {
        self.check_up()?;
        let permit = match self.shared.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(TryAcquireError::NoPermits) => return Err(self.backpressure()),
            Err(TryAcquireError::Closed) => return Err(self.stopped()),
        };
        self.deliver(msg, permit).await
    }

    async fn deliver<M>(&self, msg: M, permit: OwnedSemaphorePermit) -> Result<B::Ok, CallError<B::Err>>
    where
        B: Handles<M>,
        M: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let ticket = self.shared.enqueue();
        self.addr.do_send(Envelope {
            msg,
            reply,
            permit,
            ticket,
        });
        answer.await.unwrap_or_else(|_| Err(self.stopped()))
    }

    fn check_up<E>(&self) -> Result<(), CallError<E>> {
        if self.shared.status().is_up() {
            Ok(())
        } else {
            Err(self.stopped())
        }
    }

    fn stopped<E>(&self) -> CallError<E> {
        CallError::Stopped {
            actor: self.shared.name.clone(),
        }
    }

    fn backpressure<E>(&self) -> CallError<E> {
        self.shared.note_rejected();
        // A guess at when a slot frees up: the queue ahead of us at the mean handling time,
        // between one second and a minute.
        let s = self.shared.snapshot();
        let per = Duration::from_secs_f64(s.handling.mean_ms / 1000.0);
        let guess = per * u32::try_from(s.capacity / s.concurrency).unwrap_or(u32::MAX);
        CallError::Backpressure {
            actor: self.shared.name.clone(),
            retry_after: guess.clamp(Duration::from_secs(1), Duration::from_secs(60)),
        }
    }
}
