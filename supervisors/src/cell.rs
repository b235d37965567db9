//! The actix actor that runs a [`Behaviour`]. It catches panics everywhere the behaviour's
//! code runs (the factory, `started`, handlers, timers, piped futures), restarts a stateful
//! actor in place (the `Addr`, and so every caller's [`Mailbox`], stays valid) and tells the
//! supervisor, which applies restart intensity and its strategy to the siblings. A stateless
//! gate's panicking request fails alone.
//!
//! [`Mailbox`]: crate::Mailbox

use std::any::Any;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, MessageResult};
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use crate::behaviour::{Behaviour, Handles, Reply};
use crate::context::{Ctx, Tasks};
use crate::exec::Executor;
use crate::mailbox::CallError;
use crate::stats::{ActorStatus, Shared, Ticket};
use crate::supervisor::{RestartType, SupEvent};

pub(crate) type Factory<B> = Arc<dyn Fn() -> B + Send + Sync>;

pub(crate) struct Cell<B: Behaviour> {
    /// `None` until the factory built it, and after a factory that panicked.
    pub behaviour: Option<B>,
    pub factory: Factory<B>,
    pub shared: Arc<Shared>,
    pub restart: RestartType,
    /// A stateless gate: a panicking request fails alone and restarts nothing.
    pub stateless: bool,
    /// Stop (normally) after this long without work.
    pub idle_after: Option<Duration>,
    pub child: usize,
    /// Crash and exit reports to the supervisor; see `SupEvent` for why it is unbounded.
    pub events: mpsc::UnboundedSender<SupEvent>,
    pub exec: Executor,
    /// The context of the current incarnation, built once the actix actor has an address.
    pub ctx: Option<Ctx<B>>,
    pub generation: u64,
}

impl<B: Behaviour> Actor for Cell<B> {
    type Context = Context<Self>;

    fn started(&mut self, actx: &mut Self::Context) {
        self.incarnate(actx);
        if let Some(idle) = self.idle_after {
            let every = (idle / 4).max(Duration::from_millis(5));
            actx.run_interval(every, move |cell, actx| cell.check_idle(idle, actx));
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

    fn handle(&mut self, env: Envelope<M, B::Ok, B::Err>, actx: &mut Context<Self>) {
        let Envelope {
            msg,
            reply,
            permit,
            ticket,
        } = env;
        let sink = Sink::Caller(reply);
        self.run(
            move |b, c| b.handle(msg, c),
            sink,
            Some(permit),
            Some(ticket),
            B::is_failure,
            actx,
        );
    }
}

/// A message from the actor to itself (timer, interval, piped result, `send_self`).
pub(crate) struct SelfMsg<M> {
    pub generation: u64,
    pub msg: M,
}

impl<M> Message for SelfMsg<M> {
    type Result = ();
}

impl<B, M> Handler<SelfMsg<M>> for Cell<B>
where
    B: Handles<M>,
    M: Send + 'static,
{
    type Result = ();

    fn handle(&mut self, m: SelfMsg<M>, actx: &mut Context<Self>) {
        if m.generation != self.generation {
            return; // scheduled by an incarnation that crashed since
        }
        let msg = m.msg;
        let sink = Sink::<B::Ok, B::Err>::Own(self.shared.clone());
        self.run(
            move |b, c| b.handle(msg, c),
            sink,
            None,
            None,
            B::is_failure,
            actx,
        );
    }
}

/// Where a handler's answer goes: the caller, or (a self message) the log.
enum Sink<T, E> {
    Caller(oneshot::Sender<Result<T, CallError<E>>>),
    Own(Arc<Shared>),
}

impl<T, E: Display> Sink<T, E> {
    fn is_closed(&self) -> bool {
        matches!(self, Self::Caller(r) if r.is_closed())
    }

    fn send(self, result: Result<T, CallError<E>>) {
        match self {
            Self::Caller(r) => {
                let _ = r.send(result);
            }
            Self::Own(shared) => {
                if let Err(e) = result {
                    tracing::warn!(actor = %shared.name, error = %e, "actor's own message failed");
                }
            }
        }
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

/// Counts a finished message; an error counts as the actor's failure only if its handler
/// says so.
fn finish<T, E: Display>(
    shared: &Shared,
    started: std::time::Instant,
    result: &Result<T, E>,
    is_failure: fn(&E) -> bool,
) {
    let (failure, refused) = match result {
        Err(e) if is_failure(e) => (Some(e.to_string()), false),
        Err(_) => (None, true),
        Ok(_) => (None, false),
    };
    shared.finish(started, failure, refused);
}

impl<B: Behaviour> Cell<B> {
    /// Builds a fresh behaviour and runs `started`, both under the panic boundary.
    fn incarnate(&mut self, actx: &mut Context<Self>) {
        self.generation += 1;
        let tasks = Arc::new(Tasks::default());
        if let Some(old) = self.ctx.take() {
            old.tasks.abort_all();
        }
        let ctx = Ctx {
            shared: self.shared.clone(),
            addr: actx.address(),
            exec: self.exec.clone(),
            generation: self.generation,
            tasks,
        };
        let factory = self.factory.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut b = factory();
            let started = b.started(&ctx);
            (b, started)
        }));
        self.ctx = Some(ctx);
        match outcome {
            Ok((b, Ok(()))) => {
                self.behaviour = Some(b);
                self.shared.set_status(ActorStatus::Running);
            }
            Ok((b, Err(reason))) => {
                self.behaviour = Some(b);
                self.crash_later(format!("start failed: {reason}"), actx);
            }
            Err(p) => {
                self.behaviour = None;
                self.crash_later(format!("panic while starting: {}", panic_text(p.as_ref())), actx);
            }
        }
    }

    /// A crash noticed while (re)starting: handled as a message, so that a factory that always
    /// fails loops through the supervisor (and its intensity) rather than recursing here.
    fn crash_later(&mut self, reason: String, actx: &mut Context<Self>) {
        actx.address().do_send(Crash {
            generation: self.generation,
            reason,
        });
    }

    fn run<T, E>(
        &mut self,
        work: impl FnOnce(&mut B, &Ctx<B>) -> Reply<Result<T, E>>,
        sink: Sink<T, E>,
        permit: Option<OwnedSemaphorePermit>,
        ticket: Option<Ticket>,
        is_failure: fn(&E) -> bool,
        actx: &mut Context<Self>,
    ) where
        T: Send + 'static,
        E: Display + Send + 'static,
    {
        let stopped = || CallError::Stopped {
            actor: self.shared.name.clone(),
        };
        let (Some(behaviour), Some(ctx)) = (self.behaviour.as_mut(), self.ctx.as_ref()) else {
            return sink.send(Err(stopped()));
        };
        if !self.shared.status().is_up() {
            return sink.send(Err(stopped()));
        }
        if sink.is_closed() {
            // The caller gave up (timeout, client gone): don't do work nobody will read.
            return;
        }
        let shared = self.shared.clone();
        let started = shared.begin();
        let answer = catch_unwind(AssertUnwindSafe(|| work(behaviour, ctx)));
        let reply = match answer {
            Ok(reply) => reply,
            Err(p) => {
                let reason = panic_text(p.as_ref());
                shared.crashed(&reason);
                drop(permit);
                drop(ticket);
                // Restart (or mark failed) before answering, so that the caller who sees the
                // panic also sees the actor's new status.
                if self.stateless {
                    tracing::error!(actor = %shared.name, %reason, "request panicked in a stateless actor");
                } else {
                    self.crash(reason.clone(), actx);
                }
                sink.send(Err(CallError::Panicked {
                    actor: shared.name.clone(),
                    reason,
                }));
                return;
            }
        };
        match reply {
            Reply::Ready(result) => {
                drop(permit);
                finish(&shared, started, &result, is_failure);
                drop(ticket);
                sink.send(result.map_err(CallError::Handler));
            }
            Reply::Deferred(rx) => {
                drop(permit);
                self.exec.rt.spawn(async move {
                    let result = rx.await;
                    drop(ticket);
                    match result {
                        Ok(result) => {
                            finish(&shared, started, &result, is_failure);
                            sink.send(result.map_err(CallError::Handler));
                        }
                        Err(_) => {
                            shared.finish(started, Some("request dropped unanswered".into()), false);
                            sink.send(Err(CallError::Stopped {
                                actor: shared.name.clone(),
                            }));
                        }
                    }
                });
            }
            Reply::Async(fut) => {
                shared.unbegin();
                let work = fut.map(Ok);
                self.exec
                    .rt
                    .spawn(run_detached(shared, permit, ticket, sink, is_failure, work));
            }
            Reply::Blocking(f) => {
                shared.unbegin();
                let work = self.exec.run_blocking(f);
                self.exec
                    .rt
                    .spawn(run_detached(shared, permit, ticket, sink, is_failure, work));
            }
        }
    }

    /// A crash of a stateful actor: restart in place unless the child is temporary, then tell
    /// the supervisor (whose intensity counts it).
    fn crash(&mut self, reason: String, actx: &mut Context<Self>) {
        tracing::error!(actor = %self.shared.name, %reason, "actor crashed");
        let restarted = self.restart != RestartType::Temporary;
        if restarted {
            self.shared.restarted();
            self.incarnate(actx);
        } else {
            self.shared.note_error(&reason);
            self.shared.set_status(ActorStatus::Failed);
            if let Some(ctx) = self.ctx.take() {
                ctx.tasks.abort_all();
            }
        }
        let _ = self.events.send(SupEvent::Crashed {
            child: self.child,
            reason,
            restarted,
        });
    }

    fn check_idle(&mut self, idle: Duration, actx: &mut Context<Self>) {
        let busy = self.behaviour.as_ref().is_some_and(Behaviour::busy);
        if !busy && self.shared.status().is_up() && self.shared.idle_for().is_some_and(|d| d >= idle) {
            tracing::debug!(actor = %self.shared.name, "stopping after being idle");
            self.exit(actx);
        }
    }

    /// A normal exit: the behaviour's `stopped`, timers cancelled, the supervisor told.
    fn exit(&mut self, actx: &mut Context<Self>) {
        // Refuse new messages at once; queued ones get `Stopped`.
        self.shared.set_status(ActorStatus::Stopped);
        if let Some(mut b) = self.behaviour.take() {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| b.stopped())) {
                tracing::error!(actor = %self.shared.name, reason = %panic_text(p.as_ref()), "panic while stopping");
            }
        }
        if let Some(ctx) = self.ctx.take() {
            ctx.tasks.abort_all();
        }
        let _ = self.events.send(SupEvent::Exited { child: self.child });
        if self.restart == RestartType::Permanent {
            return; // the supervisor starts it again in place
        }
        actx.stop();
    }
}

/// Runs a handler's detached work (async or blocking) under the actor's concurrency limit.
/// A panic there fails this request only: the work had no access to the actor's state.
async fn run_detached<T, E>(
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
    ticket: Option<Ticket>,
    sink: Sink<T, E>,
    is_failure: fn(&E) -> bool,
    work: impl std::future::Future<Output = Result<Result<T, E>, String>> + Send,
) where
    T: Send + 'static,
    E: Display + Send + 'static,
{
    // Never closed: the semaphore lives as long as `shared`.
    let _running = shared.running.clone().acquire_owned().await;
    #[cfg(feature = "fault-injection")]
    {
        let mut paused = shared.paused.subscribe();
        let _ = paused.wait_for(|p| !*p).await;
    }
    drop(permit);
    let started = shared.begin();
    let outcome = match AssertUnwindSafe(work).catch_unwind().await {
        Ok(r) => r,
        Err(p) => Err(panic_text(p.as_ref())),
    };
    drop(ticket);
    match outcome {
        Ok(result) => {
            finish(&shared, started, &result, is_failure);
            sink.send(result.map_err(CallError::Handler));
        }
        Err(reason) => {
            shared.crashed(&reason);
            tracing::error!(actor = %shared.name, %reason, "request panicked");
            sink.send(Err(CallError::Panicked {
                actor: shared.name.clone(),
                reason,
            }));
        }
    }
}

/// A crash noticed outside a handler (a failed start, a piped future's panic, an operator's
/// or a test's order).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Crash {
    /// The incarnation it concerns; 0: whichever runs now.
    pub generation: u64,
    pub reason: String,
}

impl<B: Behaviour> Handler<Crash> for Cell<B> {
    type Result = ();
    fn handle(&mut self, msg: Crash, actx: &mut Context<Self>) {
        if (msg.generation == 0 || msg.generation == self.generation) && self.shared.status().is_up() {
            self.shared.note_panic(&msg.reason);
            self.crash(msg.reason, actx);
        }
    }
}

/// The behaviour asked to stop ([`Ctx::stop`]).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopSelf {
    pub generation: u64,
}

impl<B: Behaviour> Handler<StopSelf> for Cell<B> {
    type Result = ();
    fn handle(&mut self, msg: StopSelf, actx: &mut Context<Self>) {
        if msg.generation == self.generation && self.shared.status().is_up() {
            self.exit(actx);
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
    fn handle(&mut self, msg: Restart, actx: &mut Context<Self>) {
        tracing::warn!(actor = %self.shared.name, reason = %msg.reason, "actor restarting");
        self.shared.restarted();
        self.incarnate(actx);
    }
}

/// Stop taking messages (shutdown or escalation). The actix actor stays alive so that a later
/// restart keeps the same address; `terminate` ends it for good (a dynamic child removed).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Stop {
    pub status: ActorStatus,
    pub terminate: bool,
}

impl<B: Behaviour> Handler<Stop> for Cell<B> {
    type Result = ();
    fn handle(&mut self, msg: Stop, actx: &mut Context<Self>) {
        self.shared.set_status(msg.status);
        if let Some(ctx) = self.ctx.as_ref() {
            ctx.tasks.abort_all();
        }
        if msg.terminate {
            if let Some(mut b) = self.behaviour.take() {
                let _ = catch_unwind(AssertUnwindSafe(|| b.stopped()));
            }
            actx.stop();
        }
    }
}

/// The behaviour's own state snapshot.
#[derive(Message)]
#[rtype(result = "serde_json::Value")]
pub(crate) struct Observe;

impl<B: Behaviour> Handler<Observe> for Cell<B> {
    type Result = MessageResult<Observe>;
    fn handle(&mut self, _: Observe, _: &mut Context<Self>) -> Self::Result {
        let state = self
            .behaviour
            .as_ref()
            .map(|b| catch_unwind(AssertUnwindSafe(|| b.observe())));
        MessageResult(match state {
            Some(Ok(v)) => v,
            Some(Err(p)) => serde_json::json!({ "observe_panicked": panic_text(p.as_ref()) }),
            None => serde_json::Value::Null,
        })
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
    fn handle(&mut self, msg: InjectPanic, actx: &mut Context<Self>) {
        let in_task = msg.in_task;
        self.run(
            move |_, _| -> Reply<Result<(), String>> {
                if in_task {
                    Reply::spawn(async { panic!("injected fault in an async handler") })
                } else {
                    panic!("injected fault")
                }
            },
            Sink::Caller(msg.reply),
            Some(msg.permit),
            Some(msg.ticket),
            |_| true,
            actx,
        );
    }
}
