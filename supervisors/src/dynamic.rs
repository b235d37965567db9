//! Dynamic supervisors (OTP's simple_one_for_one, Elixir's DynamicSupervisor): children of one
//! kind started by key at run time (`import.session.<supplier>`), at most `max_children` alive,
//! stopped when idle; a child that ended leaves the registry and its name can be used again.
//! Crashes restart the child in place and count toward the supervisor's intensity; past it the
//! supervisor stops its children and escalates to its parent like any supervisor.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::behaviour::{Behaviour, Handles};
use crate::exec::Executor;
use crate::mailbox::{CallError, Mailbox};
use crate::registry::{ChildControl, Entry, Registry, RegistryError, SupervisorView};
use crate::stats::ActorStatus;
use crate::supervisor::{start_cell, ChildSpec, Intensity, RestartType, SupEvent, SupervisorStatus};

/// How to build the children of a dynamic supervisor.
pub struct DynamicSpec<B: Behaviour> {
    /// The supervisor's name; children are named `<name>.<key>`.
    pub name: String,
    pub kind: String,
    pub max_children: usize,
    pub idle_after: Option<Duration>,
    pub intensity: Intensity,
    pub capacity: usize,
    pub concurrency: usize,
    pub send_timeout: Duration,
    pub stuck_after: Duration,
    pub factory: Arc<dyn Fn(&str) -> B + Send + Sync>,
}

impl<B: Behaviour> DynamicSpec<B> {
    pub fn new(
        name: impl Into<String>,
        kind: impl Into<String>,
        factory: impl Fn(&str) -> B + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            max_children: 64,
            idle_after: Some(Duration::from_secs(300)),
            intensity: Intensity {
                max_restarts: 3,
                within: Duration::from_secs(5),
            },
            capacity: 64,
            concurrency: 1,
            send_timeout: Duration::from_secs(2),
            stuck_after: Duration::from_secs(30),
            factory: Arc::new(factory),
        }
    }

    pub fn max_children(mut self, n: usize) -> Self {
        self.max_children = n;
        self
    }

    pub fn idle_after(mut self, d: Option<Duration>) -> Self {
        self.idle_after = d;
        self
    }

    pub fn intensity(mut self, i: Intensity) -> Self {
        self.intensity = i;
        self
    }

    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DynamicError {
    #[error("{supervisor} already runs its maximum of {max} children")]
    Full { supervisor: String, max: usize },
    #[error("{supervisor} is not running (it escalated or stopped)")]
    Down { supervisor: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

struct Child<B: Behaviour> {
    key: String,
    entry: Arc<Entry<B>>,
    mailbox: Mailbox<B>,
}

/// Live children by id, and ids by key.
type ChildMaps<B> = (HashMap<u64, Child<B>>, HashMap<String, u64>);

struct DynInner<B: Behaviour> {
    spec: DynamicSpec<B>,
    registry: Registry,
    exec: Executor,
    status: Mutex<SupervisorStatus>,
    escalation: Mutex<Option<String>>,
    /// Live children by id, and ids by key. Locked to look up, insert or remove one child;
    /// never across an await.
    children: Mutex<ChildMaps<B>>,
    next_id: AtomicU64,
    history: Mutex<VecDeque<Instant>>,
    events: mpsc::UnboundedSender<SupEvent>,
    parent: (mpsc::UnboundedSender<SupEvent>, usize),
}

/// Handle to a dynamic supervisor. Cheap to clone.
pub struct DynamicSupervisor<B: Behaviour> {
    inner: Arc<DynInner<B>>,
}

impl<B: Behaviour> Clone for DynamicSupervisor<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<B: Behaviour> DynamicSupervisor<B> {
    pub(crate) fn build(
        spec: DynamicSpec<B>,
        registry: Registry,
        exec: Executor,
        parent: (mpsc::UnboundedSender<SupEvent>, usize),
    ) -> Self {
        let (events, mut rx) = mpsc::unbounded_channel();
        let inner = Arc::new(DynInner {
            spec,
            registry: registry.clone(),
            exec: exec.clone(),
            status: Mutex::new(SupervisorStatus::Running),
            escalation: Mutex::new(None),
            children: Mutex::new((HashMap::new(), HashMap::new())),
            next_id: AtomicU64::new(0),
            history: Mutex::new(VecDeque::new()),
            events,
            parent,
        });
        registry.add_supervisor(inner.clone());
        let weak = Arc::downgrade(&inner);
        exec.rt.spawn(async move {
            while let Some(ev) = rx.recv().await {
                match weak.upgrade() {
                    Some(inner) => inner.on_event(ev),
                    None => break,
                }
            }
        });
        Self { inner }
    }

    pub(crate) fn control(&self) -> Arc<dyn ChildControl> {
        self.inner.clone()
    }

    pub fn name(&self) -> &str {
        &self.inner.spec.name
    }

    pub fn status(&self) -> SupervisorStatus {
        *self.inner.status.lock()
    }

    /// The mailbox of the child for `key`, started if it is not running.
    pub fn get_or_start(&self, key: &str) -> Result<Mailbox<B>, DynamicError> {
        let d = &self.inner;
        if self.status() != SupervisorStatus::Running {
            return Err(DynamicError::Down {
                supervisor: d.spec.name.clone(),
            });
        }
        let mut guard = d.children.lock();
        let (by_id, by_key) = &mut *guard;
        if let Some(c) = by_key.get(key).and_then(|id| by_id.get(id)) {
            if c.entry.shared.status().is_up() {
                return Ok(c.mailbox.clone());
            }
        }
        if by_key.len() >= d.spec.max_children {
            return Err(DynamicError::Full {
                supervisor: d.spec.name.clone(),
                max: d.spec.max_children,
            });
        }
        let id = d.next_id.fetch_add(1, Ordering::Relaxed);
        let factory = d.spec.factory.clone();
        let k = key.to_owned();
        let mut spec = ChildSpec::new(format!("{}.{key}", d.spec.name), d.spec.kind.clone(), move || {
            factory(&k)
        })
        .capacity(d.spec.capacity)
        .concurrency(d.spec.concurrency)
        .restart(RestartType::Transient)
        .send_timeout(d.spec.send_timeout)
        .stuck_after(d.spec.stuck_after);
        spec.idle_after = d.spec.idle_after;
        let child = usize::try_from(id).unwrap_or(usize::MAX);
        let (entry, mailbox) = start_cell(&d.spec.name, &d.registry, &d.exec, spec, child, d.events.clone())?;
        d.registry.add_actor(entry.clone());
        by_key.insert(key.to_owned(), id);
        by_id.insert(
            id,
            Child {
                key: key.to_owned(),
                entry,
                mailbox: mailbox.clone(),
            },
        );
        Ok(mailbox)
    }

    /// The mailbox of the running child for `key`, if any.
    pub fn get(&self, key: &str) -> Option<Mailbox<B>> {
        let guard = self.inner.children.lock();
        let (by_id, by_key) = &*guard;
        by_key
            .get(key)
            .and_then(|id| by_id.get(id))
            .map(|c| c.mailbox.clone())
    }

    /// Sends `msg` to the child for `key`, starting it if needed. A child that stopped (idle)
    /// between the look-up and the send is started again once.
    pub async fn send<M>(&self, key: &str, msg: M) -> Result<B::Ok, DynCallError<B::Err>>
    where
        B: Handles<M>,
        M: Send + 'static,
    {
        let mailbox = self.get_or_start(key).map_err(DynCallError::Start)?;
        mailbox.send(msg).await.map_err(DynCallError::Call)
    }

    /// Keys of the running children.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.inner.children.lock().1.keys().cloned().collect();
        keys.sort();
        keys
    }

    pub fn len(&self) -> usize {
        self.inner.children.lock().1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the child for `key` for good; `false` if there was none.
    pub fn stop_child(&self, key: &str) -> bool {
        let id = self.inner.children.lock().1.get(key).copied();
        id.is_some_and(|id| self.inner.remove(id))
    }
}

/// Why a call through a dynamic supervisor failed.
#[derive(Debug, thiserror::Error)]
pub enum DynCallError<E> {
    #[error(transparent)]
    Start(DynamicError),
    #[error(transparent)]
    Call(CallError<E>),
}

impl<B: Behaviour> DynInner<B> {
    /// Takes child `id` out of the supervisor and the registry and ends its actix actor.
    fn remove(&self, id: u64) -> bool {
        let child = {
            let mut guard = self.children.lock();
            let (by_id, by_key) = &mut *guard;
            let Some(child) = by_id.remove(&id) else {
                return false;
            };
            if by_key.get(&child.key) == Some(&id) {
                by_key.remove(&child.key);
            }
            child
        };
        child.entry.terminate();
        self.registry.remove(&child.entry.shared.name);
        true
    }

    fn on_event(&self, ev: SupEvent) {
        match ev {
            SupEvent::Exited { child } => {
                self.remove(child as u64);
            }
            SupEvent::Crashed {
                child,
                reason,
                restarted,
            } => {
                if *self.status.lock() != SupervisorStatus::Running {
                    return;
                }
                if !restarted {
                    self.remove(child as u64);
                    return;
                }
                let now = Instant::now();
                let over = {
                    let mut h = self.history.lock();
                    h.push_back(now);
                    while h
                        .front()
                        .is_some_and(|t| now.duration_since(*t) > self.spec.intensity.within)
                    {
                        h.pop_front();
                    }
                    h.len() > self.spec.intensity.max_restarts as usize
                };
                if over {
                    let why = format!(
                        "more than {} restarts within {:?}; last: {reason}",
                        self.spec.intensity.max_restarts, self.spec.intensity.within
                    );
                    tracing::error!(supervisor = %self.spec.name, reason = %why, "dynamic supervisor escalates");
                    *self.status.lock() = SupervisorStatus::Escalated;
                    *self.escalation.lock() = Some(why.clone());
                    self.remove_all();
                    let _ = self.parent.0.send(SupEvent::Crashed {
                        child: self.parent.1,
                        reason: format!("supervisor {} escalated: {why}", self.spec.name),
                        restarted: true,
                    });
                }
            }
        }
    }

    fn remove_all(&self) {
        let ids: Vec<u64> = self.children.lock().0.keys().copied().collect();
        for id in ids {
            self.remove(id);
        }
    }
}

impl<B: Behaviour> SupervisorView for DynInner<B> {
    fn sup_name(&self) -> String {
        self.spec.name.clone()
    }
    fn sup_status(&self) -> SupervisorStatus {
        *self.status.lock()
    }
    fn sup_escalation(&self) -> Option<String> {
        self.escalation.lock().clone()
    }
}

/// Seen by the parent: restarting a dynamic supervisor clears it (children come back on
/// demand); stopping it stops its children.
impl<B: Behaviour> ChildControl for DynInner<B> {
    fn name(&self) -> String {
        self.spec.name.clone()
    }

    fn restarts_itself(&self) -> bool {
        false
    }

    fn restart(&self, reason: &str) {
        tracing::warn!(supervisor = %self.spec.name, %reason, "dynamic supervisor restarting");
        self.remove_all();
        self.history.lock().clear();
        *self.escalation.lock() = None;
        *self.status.lock() = SupervisorStatus::Running;
    }

    fn stop(&self, status: ActorStatus) {
        *self.status.lock() = if status == ActorStatus::Escalated {
            SupervisorStatus::Escalated
        } else {
            SupervisorStatus::Stopped
        };
        for c in self.children.lock().0.values() {
            ChildControl::stop(&*c.entry, status);
        }
    }
}
