//! The actix actor that runs a [`Behaviour`]: it catches panics at the handler boundary, turns
//! them into in-place restarts (the `Addr`, and so every caller's [`Mailbox`], stays valid) and
//! tells the supervisor, which applies restart intensity and its strategy to the siblings.
//!
//! [`Mailbox`]: crate::Mailbox

use std::any::Any;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use actix::{Actor, AsyncContext, Context, Handler, Message, MessageResult};
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use crate::behaviour::{Behaviour, Ctx, Handles, Reply};
use crate::mailbox::CallError;
use crate::stats::{ActorStatus, Shared, Ticket};
use crate::supervisor::{RestartType, SupEvent};

pub(crate) type Factory<B> = Arc<dyn Fn() -> B + Send + Sync>;

pub(crate) struct Cell<B: Behaviour> {
    pub behaviour: B,
    pub factory: Factory<B>,
    pub shared: Arc<Shared>,
    pub restart: RestartType,
    pub child: usize,
    /// Crash reports to the supervisor; see `SupEvent` for why it is unbounded.
    pub events: mpsc::UnboundedSender<SupEvent>,
    /// The multi-thread runtime that async handlers run on (the cell itself lives on its own
    /// arbiter thread, whose runtime is single-threaded).
    pub rt: tokio::runtime::Handle,
    pub ctx: Ctx<B>,
}

impl<B: Behaviour> Actor for Cell<B> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        match self.behaviour.started(&self.ctx) {
            Ok(()) => self.shared.set_status(ActorStatus::Running),
            Err(reason) => ctx.address().do_send(Crash { reason }),
        }
    }
}

/// A caller's message with everything that must travel with it.
pub(crate) struct Envelope<M, T, E> {
    pub msg: M,
    pub reply: oneshot::Sender<Result<T, CallError<E>>>,
    /// The mailbox slot, released when the message starts running.
    pub permit: OwnedSemaphorePermit,
    pub ticket: Ticket,
}

impl<M, T, E> Message for Envelope<M, T, E> {
    type Result = ();
}

impl<B, M> Handler<Envelope<M, B::Ok, B::Err>> for Cell<B>
where
    B: Handles<M>,
    M: Send + 'static,
{
    type Result = ();

    fn handle(&mut self, env: Envelope<M, B::Ok, B::Err>, ctx: &mut Context<Self>) {
        let Envelope {
            msg,
            reply,
            permit,
            ticket,
        } = env;
        self.run(move |b, c| b.handle(msg, c), reply, permit, ticket, ctx);
    }
}

pub(crate) fn panic_text(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

impl<B: Behaviour> Cell<B> {
    fn run<T, E>(
        &mut self,
        work: impl FnOnce(&mut B, &Ctx<B>) -> Reply<Result<T, E>>,
        reply: oneshot::Sender<Result<T, CallError<E>>>,
        permit: OwnedSemaphorePermit,
        ticket: Ticket,
        ctx: &mut Context<Self>,
    ) where
        T: Send + 'static,
        E: Display + Send + 'static,
    {
        if !self.shared.status().is_up() {
            let _ = reply.send(Err(CallError::Stopped {
                actor: self.shared.name.clone(),
            }));
            return;
        }
        if reply.is_closed() {
            // The caller gave up (timeout, client gone): don't do work nobody will read.
            return;
        }
        let shared = self.shared.clone();
        let started = shared.begin();
        match catch_unwind(AssertUnwindSafe(|| work(&mut self.behaviour, &self.ctx))) {
            Ok(Reply::Ready(result)) => {
                drop(permit);
                shared.finish(started, result.as_ref().err().map(ToString::to_string));
                drop(ticket);
                let _ = reply.send(result.map_err(CallError::Handler));
            }
            Ok(Reply::Async(fut)) => {
                shared.unbegin();
                let addr = ctx.address();
                self.rt.spawn(async move {
                    // Never closed: the semaphore lives as long as `shared`.
                    let _running = shared.running.clone().acquire_owned().await;
                    #[cfg(feature = "fault-injection")]
                    {
                        let mut paused = shared.paused.subscribe();
                        let _ = paused.wait_for(|p| !*p).await;
                    }
                    drop(permit);
                    let started = shared.begin();
                    match AssertUnwindSafe(fut).catch_unwind().await {
                        Ok(result) => {
                            shared.finish(started, result.as_ref().err().map(ToString::to_string));
                            drop(ticket);
                            let _ = reply.send(result.map_err(CallError::Handler));
                        }
                        Err(p) => {
                            let reason = panic_text(p.as_ref());
                            shared.crashed(&reason);
                            drop(ticket);
                            let _ = reply.send(Err(CallError::Panicked {
                                actor: shared.name.clone(),
                                reason: reason.clone(),
                            }));
                            addr.do_send(Crash { reason });
                        }
                    }
                });
            }
            Err(p) => {
                let reason = panic_text(p.as_ref());
                shared.crashed(&reason);
                drop(permit);
                drop(ticket);
                let _ = reply.send(Err(CallError::Panicked {
                    actor: shared.name.clone(),
                    reason: reason.clone(),
                }));
                self.crash(reason, ctx);
            }
        }
    }

    /// A crash: restart in place unless the child is temporary, then tell the supervisor.
    fn crash(&mut self, reason: String, ctx: &mut Context<Self>) {
        tracing::error!(actor = %self.shared.name, %reason, "actor crashed");
        let restarted = self.restart != RestartType::Temporary;
        if restarted {
            self.restart_in_place(ctx);
        } else {
            self.shared.set_status(ActorStatus::Stopped);
        }
        let _ = self.events.send(SupEvent::Crashed {
            child: self.child,
            reason,
            restarted,
        });
    }

    fn restart_in_place(&mut self, ctx: &mut Context<Self>) {
        self.behaviour = (self.factory)();
        self.shared.restarted();
        match self.behaviour.started(&self.ctx) {
            Ok(()) => self.shared.set_status(ActorStatus::Running),
            // A start that fails is one more crash; restart intensity bounds the loop.
            Err(reason) => ctx.address().do_send(Crash { reason }),
        }
    }
}

/// A crash noticed outside the handler (an async handler's panic, a failed start).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Crash {
    pub reason: String,
}

impl<B: Behaviour> Handler<Crash> for Cell<B> {
    type Result = ();
    fn handle(&mut self, msg: Crash, ctx: &mut Context<Self>) {
        if self.shared.status().is_up() {
            self.crash(msg.reason, ctx);
        }
    }
}

/// Restart on the supervisor's (a sibling crashed) or an operator's order.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Restart {
    pub reason: String,
}

impl<B: Behaviour> Handler<Restart> for Cell<B> {
    type Result = ();
    fn handle(&mut self, msg: Restart, ctx: &mut Context<Self>) {
        tracing::warn!(actor = %self.shared.name, reason = %msg.reason, "actor restarting");
        self.restart_in_place(ctx);
    }
}

/// Stop taking messages (shutdown or escalation). The actix actor stays alive so that a later
/// restart keeps the same address.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Stop {
    pub status: ActorStatus,
}

impl<B: Behaviour> Handler<Stop> for Cell<B> {
    type Result = ();
    fn handle(&mut self, msg: Stop, _: &mut Context<Self>) {
        self.shared.set_status(msg.status);
    }
}

/// The behaviour's own state snapshot.
#[derive(Message)]
#[rtype(result = "serde_json::Value")]
pub(crate) struct Observe;

impl<B: Behaviour> Handler<Observe> for Cell<B> {
    type Result = MessageResult<Observe>;
    fn handle(&mut self, _: Observe, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.behaviour.observe())
    }
}

/// Test-only: panic inside the handler boundary, synchronously or inside an async handler,
/// through exactly the path a real handler's panic takes.
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct InjectPanic {
    pub in_task: bool,
    pub reply: oneshot::Sender<Result<(), CallError<String>>>,
    pub permit: OwnedSemaphorePermit,
    pub ticket: Ticket,
}

#[cfg(feature = "fault-injection")]
impl<B: Behaviour> Handler<InjectPanic> for Cell<B> {
    type Result = ();
    fn handle(&mut self, msg: InjectPanic, ctx: &mut Context<Self>) {
        let in_task = msg.in_task;
        self.run(
            move |_, _| -> Reply<Result<(), String>> {
                if in_task {
                    Reply::spawn(async { panic!("injected fault in an async handler") })
                } else {
                    panic!("injected fault")
                }
            },
            msg.reply,
            msg.permit,
            msg.ticket,
            ctx,
        );
    }
}
