//! Supervision with OTP semantics: child specs, restart types, strategies, restart intensity
//! and escalation.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::behaviour::Behaviour;
use crate::cell::{Cell, Factory};
use crate::exec::Executor;
use crate::mailbox::Mailbox;
use crate::registry::{ChildControl, Entry, Registry, RegistryError};
use crate::stats::{ActorConfig, ActorStatus, Shared};

/// Which children restart when one crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the crashed child.
    OneForOne,
    /// Every child: for children that only make sense together.
    OneForAll,
    /// The crashed child and the children started after it, which depend on it.
    RestForOne,
}

/// Whether a child comes back after it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartType {
    /// Always restarted.
    Permanent,
    /// Restarted when it ends abnormally (a crash). Children here only end by crashing, so
    /// this behaves as permanent until normal exits exist.
    Transient,
    /// Never restarted: after a crash it stays stopped.
    Temporary,
}

/// At most `max_restarts` restarts within `within`; one more and the supervisor gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Intensity {
    pub max_restarts: u32,
    pub within: Duration,
}

/// How to build and run one actor.
pub struct ChildSpec<B: Behaviour> {
    pub name: String,
    pub kind: String,
    /// Mailbox capacity: messages waiting beyond those in flight.
    pub capacity: usize,
    /// Async handlers running at once.
    pub concurrency: usize,
    pub restart: RestartType,
    pub send_timeout: Duration,
    pub stuck_after: Duration,
    /// A stateless gate (a store actor): a panicking request fails alone, restarts nothing
    /// and does not count toward intensity, since there is no state it could have corrupted.
    pub stateless: bool,
    /// Stop normally after this long without work (dynamic children).
    pub idle_after: Option<Duration>,
    pub factory: Factory<B>,
}

impl<B: Behaviour> ChildSpec<B> {
    pub fn new(
        name: impl Into<String>,
        kind: impl Into<String>,
        factory: impl Fn() -> B + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            capacity: 1024,
            concurrency: 1,
            restart: RestartType::Permanent,
            send_timeout: Duration::from_secs(2),
            stuck_after: Duration::from_secs(30),
            stateless: false,
            idle_after: None,
            factory: Arc::new(factory),
        }
    }

    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    pub fn restart(mut self, restart: RestartType) -> Self {
        self.restart = restart;
        self
    }

    pub fn send_timeout(mut self, d: Duration) -> Self {
        self.send_timeout = d;
        self
    }

    pub fn stuck_after(mut self, d: Duration) -> Self {
        self.stuck_after = d;
        self
    }

    pub fn stateless(mut self) -> Self {
        self.stateless = true;
        self
    }

    pub fn idle_after(mut self, d: Duration) -> Self {
        self.idle_after = Some(d);
        self
    }
}

/// What children tell their supervisor.
///
/// The channel is unbounded on purpose: events are rare and bounded by restart intensity
/// (a supervisor stops its children after a few), and a crashing child must never block or
/// drop its report.
pub(crate) enum SupEvent {
    Crashed {
        child: usize,
        reason: String,
        restarted: bool,
    },
    /// The child stopped normally (its own `Ctx::stop`, or idle).
    Exited { child: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SupervisorStatus {
    Running,
    Escalated,
    Stopped,
}

impl SupervisorStatus {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Running,
            1 => Self::Escalated,
            _ => Self::Stopped,
        }
    }
}

type OnEscalate = Box<dyn FnOnce(String) + Send>;

pub(crate) struct SupInner {
    pub name: String,
    strategy: Strategy,
    intensity: Intensity,
    status: AtomicU8,
    pub escalation_reason: Mutex<Option<String>>,
    /// Held briefly to add a child or walk the list; never across an await.
    pub(crate) children: Mutex<Vec<Arc<dyn ChildControl>>>,
    history: Mutex<VecDeque<Instant>>,
    pub(crate) events: mpsc::UnboundedSender<SupEvent>,
    parent: Option<(mpsc::UnboundedSender<SupEvent>, usize)>,
    on_escalate: Mutex<Option<OnEscalate>>,
    /// Where the children run: arbiters shared by the whole tree.
    pub(crate) exec: Executor,
    pub(crate) registry: Registry,
    rt: tokio::runtime::Handle,
}

impl SupInner {
    pub fn status(&self) -> SupervisorStatus {
        SupervisorStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    pub(crate) fn set_status(&self, s: SupervisorStatus) {
        let v = match s {
            SupervisorStatus::Running => 0,
            SupervisorStatus::Escalated => 1,
            SupervisorStatus::Stopped => 2,
        };
        self.status.store(v, Ordering::Release);
    }

    fn on_event(&self, ev: SupEvent) {
        let (child, reason, restarted) = match ev {
            SupEvent::Crashed {
                child,
                reason,
                restarted,
            } => (child, reason, restarted),
            SupEvent::Exited { child } => {
                // OTP: a permanent child comes back even after a normal exit; the others
                // stay stopped. Not a crash, so intensity does not count it.
                let children = self.children.lock().clone();
                if let Some(c) = children.get(child) {
                    if c.is_permanent() {
                        c.restart("exited normally; permanent children are restarted");
                    }
                }
                return;
            }
        };
        if self.status() != SupervisorStatus::Running || !restarted {
            return;
        }
        let now = Instant::now();
        let over = {
            let mut h = self.history.lock();
            h.push_back(now);
            while h
                .front()
                .is_some_and(|t| now.duration_since(*t) > self.intensity.within)
            {
                h.pop_front();
            }
            h.len() > self.intensity.max_restarts as usize
        };
        let children = self.children.lock().clone();
        let name = children.get(child).map(|c| c.name()).unwrap_or_default();
        if over {
            self.escalate(format!(
                "more than {} restarts within {:?}; last: {name}: {reason}",
                self.intensity.max_restarts, self.intensity.within
            ));
            return;
        }
        if let Some(c) = children.get(child).filter(|c| !c.restarts_itself()) {
            c.restart(&reason);
        }
        let why = format!("sibling {name} crashed: {reason}");
        let restart_from = match self.strategy {
            Strategy::OneForOne => return,
            Strategy::OneForAll => 0,
            Strategy::RestForOne => child + 1,
        };
        for (i, c) in children.iter().enumerate().skip(restart_from) {
            if i != child {
                c.restart(&why);
            }
        }
    }

    fn escalate(&self, reason: String) {
        tracing::error!(supervisor = %self.name, %reason, "supervisor escalates");
        self.set_status(SupervisorStatus::Escalated);
        *self.escalation_reason.lock() = Some(reason.clone());
        for c in self.children.lock().iter() {
            c.stop(ActorStatus::Escalated);
        }
        let reason = format!("supervisor {} escalated: {reason}", self.name);
        if let Some((parent, idx)) = &self.parent {
            let _ = parent.send(SupEvent::Crashed {
                child: *idx,
                reason,
                restarted: true,
            });
        } else if let Some(cb) = self.on_escalate.lock().take() {
            cb(reason);
        }
    }
}

/// A nested supervisor is a child of its parent: restarting it restarts all its children.
impl ChildControl for SupInner {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn restarts_itself(&self) -> bool {
        false
    }

    fn restart(&self, reason: &str) {
        tracing::warn!(supervisor = %self.name, %reason, "supervisor restarting");
        self.history.lock().clear();
        *self.escalation_reason.lock() = None;
        self.set_status(SupervisorStatus::Running);
        for c in self.children.lock().iter() {
            c.restart(reason);
        }
    }

    fn stop(&self, status: ActorStatus) {
        self.set_status(if status == ActorStatus::Escalated {
            SupervisorStatus::Escalated
        } else {
            SupervisorStatus::Stopped
        });
        for c in self.children.lock().iter() {
            c.stop(status);
        }
    }
}

/// A supervisor: starts children, restarts them per its strategy, escalates past its intensity.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<SupInner>,
}

impl Supervisor {
    /// The root of a tree. When it gives up, `on_escalate` runs once with the reason (the
    /// application turns health red and exits non-zero). Must be called inside a tokio
    /// multi-thread runtime running an actix `System`.
    pub fn root(
        name: impl Into<String>,
        strategy: Strategy,
        intensity: Intensity,
        registry: Registry,
        on_escalate: impl FnOnce(String) + Send + 'static,
    ) -> Self {
        Self::build(
            name.into(),
            strategy,
            intensity,
            registry,
            None,
            Some(Box::new(on_escalate)),
            Executor::new(0, 0),
        )
    }

    /// A root on a given executor (arbiter count and blocking pool size from the settings).
    pub fn root_on(
        name: impl Into<String>,
        strategy: Strategy,
        intensity: Intensity,
        registry: Registry,
        exec: Executor,
        on_escalate: impl FnOnce(String) + Send + 'static,
    ) -> Self {
        Self::build(
            name.into(),
            strategy,
            intensity,
            registry,
            None,
            Some(Box::new(on_escalate)),
            exec,
        )
    }

    pub fn executor(&self) -> &Executor {
        &self.inner.exec
    }

    /// A supervisor under this one.
    pub fn child_supervisor(
        &self,
        name: impl Into<String>,
        strategy: Strategy,
        intensity: Intensity,
    ) -> Self {
        let idx = self.inner.children.lock().len();
        let child = Self::build(
            name.into(),
            strategy,
            intensity,
            self.inner.registry.clone(),
            Some((self.inner.events.clone(), idx)),
            None,
            self.inner.exec.clone(),
        );
        self.inner.children.lock().push(child.inner.clone());
        child
    }

    fn build(
        name: String,
        strategy: Strategy,
        intensity: Intensity,
        registry: Registry,
        parent: Option<(mpsc::UnboundedSender<SupEvent>, usize)>,
        on_escalate: Option<OnEscalate>,
        exec: Executor,
    ) -> Self {
        let (events, mut rx) = mpsc::unbounded_channel();
        let inner = Arc::new(SupInner {
            name,
            strategy,
            intensity,
            status: AtomicU8::new(0),
            escalation_reason: Mutex::new(None),
            children: Mutex::new(Vec::new()),
            history: Mutex::new(VecDeque::new()),
            events,
            parent,
            on_escalate: Mutex::new(on_escalate),
            registry: registry.clone(),
            rt: exec.rt.clone(),
            exec,
        });
        registry.add_supervisor(inner.clone());
        let weak = Arc::downgrade(&inner);
        inner.rt.spawn(async move {
            while let Some(ev) = rx.recv().await {
                match weak.upgrade() {
                    Some(inner) => inner.on_event(ev),
                    None => break,
                }
            }
        });
        Self { inner }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn status(&self) -> SupervisorStatus {
        self.inner.status()
    }

    /// Starts a supervised actor on one of the shared arbiters and returns its mailbox handle.
    /// The behaviour is built on the arbiter, under the panic boundary: a factory that panics
    /// is a crash like any other.
    pub fn start<B: Behaviour>(&self, spec: ChildSpec<B>) -> Result<Mailbox<B>, RegistryError> {
        let child = self.inner.children.lock().len();
        let (entry, mailbox) = start_cell(
            &self.inner.name,
            &self.inner.registry,
            &self.inner.exec,
            spec,
            child,
            self.inner.events.clone(),
        )?;
        self.inner.children.lock().push(entry.clone());
        self.inner.registry.add_actor(entry);
        Ok(mailbox)
    }

    /// A dynamic supervisor under this one: children started by key at run time.
    pub fn dynamic<B: Behaviour>(&self, spec: crate::dynamic::DynamicSpec<B>) -> crate::DynamicSupervisor<B> {
        let idx = self.inner.children.lock().len();
        let d = crate::dynamic::DynamicSupervisor::build(
            spec,
            self.inner.registry.clone(),
            self.inner.exec.clone(),
            (self.inner.events.clone(), idx),
        );
        self.inner.children.lock().push(d.control());
        d
    }

    /// Stops every child (they refuse new messages) and their arbiter threads, depth first.
    pub fn shutdown(&self) {
        self.inner.stop(ActorStatus::Stopped);
        if self.inner.parent.is_none() {
            self.inner.exec.shutdown();
        }
    }
}

/// Builds a cell for `spec` on the next shared arbiter; the caller records the entry.
pub(crate) fn start_cell<B: Behaviour>(
    supervisor: &str,
    registry: &Registry,
    exec: &Executor,
    spec: ChildSpec<B>,
    child: usize,
    events: mpsc::UnboundedSender<SupEvent>,
) -> Result<(Arc<Entry<B>>, Mailbox<B>), RegistryError> {
    let shared = Arc::new(Shared::new(ActorConfig {
        name: spec.name,
        kind: spec.kind,
        supervisor: supervisor.to_owned(),
        capacity: spec.capacity,
        concurrency: spec.concurrency,
        send_timeout: spec.send_timeout,
        stuck_after: spec.stuck_after,
    }));
    registry.reserve(&shared.name)?;
    let cell = Cell {
        behaviour: None,
        factory: spec.factory,
        shared: shared.clone(),
        restart: spec.restart,
        stateless: spec.stateless,
        idle_after: spec.idle_after,
        child,
        events,
        exec: exec.clone(),
        ctx: None,
        generation: 0,
    };
    let addr = Cell::start_in_arbiter(&exec.pick(), move |_| cell);
    let entry = Arc::new(Entry {
        shared: shared.clone(),
        addr: addr.clone(),
        restart: spec.restart,
    });
    Ok((entry, Mailbox { shared, addr }))
}
