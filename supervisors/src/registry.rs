//! Every supervised actor and supervisor, for `/admin/actors`, `/health/actors` and `/metrics`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use futures::future::BoxFuture;
use parking_lot::RwLock;
use serde::Serialize;

use crate::behaviour::Behaviour;
use crate::cell::{Cell, Observe, Restart, Stop};
use crate::stats::{ActorSnapshot, ActorStatus, Shared};
use crate::supervisor::{SupInner, SupervisorStatus};

/// What a supervisor can do to a child: an actor or a nested supervisor.
pub(crate) trait ChildControl: Send + Sync {
    fn name(&self) -> String;
    /// Actors restart themselves in place when they crash; a nested supervisor that gave up
    /// waits for its parent to restart it.
    fn restarts_itself(&self) -> bool {
        true
    }
    fn restart(&self, reason: &str);
    fn stop(&self, status: ActorStatus);
    /// Restarted even after a normal exit.
    fn is_permanent(&self) -> bool {
        true
    }
}

/// What health reads of a supervisor, static or dynamic.
pub(crate) trait SupervisorView: Send + Sync {
    fn sup_name(&self) -> String;
    fn sup_status(&self) -> SupervisorStatus;
    fn sup_escalation(&self) -> Option<String>;
}

impl SupervisorView for SupInner {
    fn sup_name(&self) -> String {
        self.name.clone()
    }
    fn sup_status(&self) -> SupervisorStatus {
        self.status()
    }
    fn sup_escalation(&self) -> Option<String> {
        self.escalation_reason.lock().clone()
    }
}

/// What the registry can read or do on one actor, whatever its behaviour type.
pub trait ActorEntry: Send + Sync {
    fn name(&self) -> &str;
    fn snapshot(&self) -> ActorSnapshot;
    /// The behaviour's own state, or `None` if the actor did not answer within `timeout`.
    fn observe(&self, timeout: Duration) -> BoxFuture<'static, Option<serde_json::Value>>;
    /// Restarts the actor in place (operator's order).
    fn restart(&self, reason: &str);
    /// Test-only: a crash that loses the actor's state (restarts even a stateless gate).
    #[cfg(feature = "fault-injection")]
    fn inject_crash(&self);
    /// Test-only: panics in the handler (`in_task`: inside an async handler).
    #[cfg(feature = "fault-injection")]
    fn inject_panic(&self, in_task: bool) -> BoxFuture<'static, ()>;
    /// Test-only: holds async handlers before they run, so that the mailbox fills.
    #[cfg(feature = "fault-injection")]
    fn pause(&self, paused: bool);
}

pub(crate) struct Entry<B: Behaviour> {
    pub shared: Arc<Shared>,
    pub addr: Addr<Cell<B>>,
    pub restart: crate::supervisor::RestartType,
}

impl<B: Behaviour> Entry<B> {
    /// Ends the actix actor for good (a dynamic child being removed).
    pub fn terminate(&self) {
        self.shared.set_status(ActorStatus::Stopped);
        self.addr.do_send(Stop {
            status: ActorStatus::Stopped,
            terminate: true,
        });
    }
}

impl<B: Behaviour> ChildControl for Entry<B> {
    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn restart(&self, reason: &str) {
        self.addr.do_send(Restart {
            reason: reason.to_owned(),
        });
    }

    fn stop(&self, status: ActorStatus) {
        // Set now so that senders fail fast; the cell confirms it in order.
        self.shared.set_status(status);
        self.addr.do_send(Stop {
            status,
            terminate: false,
        });
    }

    fn is_permanent(&self) -> bool {
        self.restart == crate::supervisor::RestartType::Permanent
    }
}

impl<B: Behaviour> ActorEntry for Entry<B> {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn snapshot(&self) -> ActorSnapshot {
        let mut s = self.shared.snapshot();
        if !self.addr.connected() && s.status.is_up() {
            // The actix actor is gone although nobody stopped it: never report it green.
            s.status = ActorStatus::Failed;
        }
        s
    }

    fn observe(&self, timeout: Duration) -> BoxFuture<'static, Option<serde_json::Value>> {
        let fut = self.addr.send(Observe);
        Box::pin(async move { tokio::time::timeout(timeout, fut).await.ok()?.ok() })
    }

    fn restart(&self, reason: &str) {
        ChildControl::restart(self, reason);
    }

    #[cfg(feature = "fault-injection")]
    fn inject_crash(&self) {
        self.addr.do_send(crate::cell::Crash {
            generation: 0,
            reason: "injected crash".into(),
        });
    }

    #[cfg(feature = "fault-injection")]
    fn inject_panic(&self, in_task: bool) -> BoxFuture<'static, ()> {
        let shared = self.shared.clone();
        let addr = self.addr.clone();
        Box::pin(async move {
            let Ok(permit) = shared.slots.clone().acquire_owned().await else {
                return;
            };
            let (reply, answer) = tokio::sync::oneshot::channel();
            let ticket = shared.enqueue();
            addr.do_send(crate::cell::InjectPanic {
                in_task,
                reply,
                permit,
                ticket,
            });
            let _ = answer.await;
        })
    }

    #[cfg(feature = "fault-injection")]
    fn pause(&self, paused: bool) {
        self.shared.paused.send_replace(paused);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("an actor named {0} is already registered")]
    Duplicate(String),
}

/// A supervisor's state as health reports it.
#[derive(Debug, Clone, Serialize)]
pub struct SupervisorSnapshot {
    pub name: String,
    pub status: SupervisorStatus,
    pub escalation_reason: Option<String>,
}

#[derive(Default)]
struct Inner {
    names: HashSet<String>,
    actors: Vec<Arc<dyn ActorEntry>>,
    supervisors: Vec<Arc<dyn SupervisorView>>,
}

/// The registry of one application. Cheap to clone; reads take a read lock for the length of
/// a copy of the list, writes only happen while actors start.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn reserve(&self, name: &str) -> Result<(), RegistryError> {
        if self.inner.write().names.insert(name.to_owned()) {
            Ok(())
        } else {
            Err(RegistryError::Duplicate(name.to_owned()))
        }
    }

    pub(crate) fn add_actor(&self, entry: Arc<dyn ActorEntry>) {
        self.inner.write().actors.push(entry);
    }

    pub(crate) fn add_supervisor(&self, sup: Arc<dyn SupervisorView>) {
        self.inner.write().supervisors.push(sup);
    }

    /// Removes an actor that ended for good and frees its name.
    pub(crate) fn remove(&self, name: &str) {
        let mut inner = self.inner.write();
        inner.names.remove(name);
        inner.actors.retain(|a| a.name() != name);
    }

    pub fn actors(&self) -> Vec<Arc<dyn ActorEntry>> {
        self.inner.read().actors.clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn ActorEntry>> {
        self.inner
            .read()
            .actors
            .iter()
            .find(|a| a.name() == name)
            .cloned()
    }

    pub fn snapshots(&self) -> Vec<ActorSnapshot> {
        self.actors().iter().map(|a| a.snapshot()).collect()
    }

    pub fn supervisors(&self) -> Vec<SupervisorSnapshot> {
        self.inner
            .read()
            .supervisors
            .iter()
            .map(|s| SupervisorSnapshot {
                name: s.sup_name(),
                status: s.sup_status(),
                escalation_reason: s.sup_escalation(),
            })
            .collect()
    }

    /// Waits until no actor has queued or running messages, or the deadline passes. Returns
    /// whether everything drained.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        loop {
            let busy = self.snapshots().iter().any(|s| s.depth + s.in_flight > 0);
            if !busy {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
