//! [`Ctx`]: what a behaviour can reach of its own actor: its name and mailbox, timers, futures
//! whose results come back to it as messages, the blocking pool, and stopping itself.
//!
//! Everything sent to the actor through its context (self messages, timers, piped results)
//! goes through the actor's handlers one at a time, so the state is only ever changed by its
//! own handlers. These messages do not take a mailbox slot: an actor must be able to tick even
//! while callers keep its mailbox full. A restart throws away every timer and pending piped
//! future of the old incarnation (they carry its generation and are dropped on arrival).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use futures::FutureExt;
use parking_lot::Mutex;

use crate::behaviour::{Behaviour, Handles};
use crate::cell::{panic_text, Cell, Crash, SelfMsg, StopSelf};
use crate::exec::Executor;
use crate::mailbox::Mailbox;
use crate::stats::Shared;

/// A timer or piped future; cancel it with [`Ctx::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId(u64);

/// Tasks the context started for the current incarnation, aborted on restart and stop.
/// Locked only to insert or remove one handle, never across an await.
#[derive(Default)]
pub(crate) struct Tasks {
    next: AtomicU64,
    running: Mutex<Vec<(u64, tokio::task::AbortHandle)>>,
}

impl Tasks {
    fn add(&self, handle: tokio::task::AbortHandle) -> TimerId {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut running = self.running.lock();
        running.retain(|(_, h)| !h.is_finished());
        running.push((id, handle));
        TimerId(id)
    }

    fn cancel(&self, id: TimerId) {
        let mut running = self.running.lock();
        if let Some(i) = running.iter().position(|(t, _)| *t == id.0) {
            running.swap_remove(i).1.abort();
        }
    }

    pub(crate) fn abort_all(&self) {
        for (_, h) in self.running.lock().drain(..) {
            h.abort();
        }
    }
}

/// The context of one actor, handed to [`Behaviour::started`] and every handler. Cheap to
/// clone; a clone kept in the state keeps working across restarts only for the incarnation it
/// came from (what it schedules after a restart is dropped).
pub struct Ctx<B: Behaviour> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) addr: Addr<Cell<B>>,
    pub(crate) exec: Executor,
    pub(crate) generation: u64,
    pub(crate) tasks: Arc<Tasks>,
}

impl<B: Behaviour> Clone for Ctx<B> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            addr: self.addr.clone(),
            exec: self.exec.clone(),
            generation: self.generation,
            tasks: self.tasks.clone(),
        }
    }
}

impl<B: Behaviour> Ctx<B> {
    /// The actor's registered name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// A bounded handle to this actor, as callers hold.
    pub fn mailbox(&self) -> Mailbox<B> {
        Mailbox {
            shared: self.shared.clone(),
            addr: self.addr.clone(),
        }
    }

    /// Sends `msg` to this actor: it is handled after the messages already queued.
    pub fn send_self<M>(&self, msg: M)
    where
        B: Handles<M>,
        M: Send + 'static,
    {
        self.addr.do_send(SelfMsg {
            generation: self.generation,
            msg,
        });
    }

    /// Sends `msg` to this actor after `after`.
    pub fn schedule<M>(&self, after: Duration, msg: M) -> TimerId
    where
        B: Handles<M>,
        M: Send + 'static,
    {
        let this = self.clone();
        let task = self.exec.rt.spawn(async move {
            tokio::time::sleep(after).await;
            this.send_self(msg);
        });
        self.tasks.add(task.abort_handle())
    }

    /// Sends `make()` to this actor every `every`, the first time after `every`. Ticks that
    /// the actor has not handled yet are not piled up: a tick is skipped while the previous
    /// one is still queued.
    pub fn interval<M>(&self, every: Duration, make: impl Fn() -> M + Send + 'static) -> TimerId
    where
        B: Handles<M>,
        M: Send + 'static,
    {
        let this = self.clone();
        let task = self.exec.rt.spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.send_self(make());
            }
        });
        self.tasks.add(task.abort_handle())
    }

    /// Cancels a timer or a piped future; nothing happens if it already fired.
    pub fn cancel(&self, id: TimerId) {
        self.tasks.cancel(id);
    }

    /// Runs `fut` on the worker pool and hands its output back to this actor as a message, so
    /// that the state changes it causes happen in the actor's own handler, in order. A panic in
    /// `fut` is a crash of the actor (it was waiting for that result).
    pub fn pipe<M, F>(&self, fut: F) -> TimerId
    where
        B: Handles<M>,
        M: Send + 'static,
        F: Future<Output = M> + Send + 'static,
    {
        let this = self.clone();
        let task = self.exec.rt.spawn(async move {
            match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(msg) => this.send_self(msg),
                Err(p) => this.addr.do_send(Crash {
                    generation: this.generation,
                    reason: format!("panic in a piped future: {}", panic_text(p.as_ref())),
                }),
            }
        });
        self.tasks.add(task.abort_handle())
    }

    /// Runs CPU-bound `f` on the bounded blocking pool; await the result from a piped future
    /// or a [`crate::Reply::spawn`] future. `None` if `f` panicked.
    pub fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let fut = self.exec.run_blocking(f);
        async move { fut.await.ok() }
    }

    /// Stops the actor for good after the current message: [`Behaviour::stopped`] runs, its
    /// timers are cancelled, and its supervisor sees a normal exit (a dynamic supervisor
    /// removes it from the registry; a permanent child is started again).
    pub fn stop(&self) {
        self.addr.do_send(StopSelf {
            generation: self.generation,
        });
    }
}
