//! Where actors run: a fixed set of arbiters shared by every actor of an application (about
//! one per core, not one thread per actor, so thousands of sessions cost no threads), the
//! tokio worker pool for async handlers, and a bounded pool for CPU-bound work.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::{Arbiter, ArbiterHandle};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

struct Inner {
    /// Handles of the shared arbiters, picked round robin when an actor starts.
    handles: Vec<ArbiterHandle>,
    next: AtomicUsize,
    /// The arbiters themselves, stopped at shutdown; locked only then.
    arbiters: Mutex<Vec<Arbiter>>,
    /// Bounds CPU-bound work across all actors to the blocking pool's size, so that a burst
    /// of image resizes queues here (behind each actor's mailbox bound) instead of spawning
    /// threads without limit.
    blocking: Arc<Semaphore>,
    blocking_size: usize,
}

/// The execution resources of one application. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
    pub(crate) rt: tokio::runtime::Handle,
}

impl Executor {
    /// `arbiters` threads for actors (0: one per core) and at most `blocking` CPU-bound tasks
    /// at once (0: one per core). Must be called inside an actix `System` on a tokio
    /// multi-thread runtime.
    pub fn new(arbiters: usize, blocking: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = if arbiters == 0 { cores } else { arbiters };
        let blocking = if blocking == 0 { cores } else { blocking };
        let arbiters: Vec<Arbiter> = (0..n).map(|_| Arbiter::new()).collect();
        Self {
            inner: Arc::new(Inner {
                handles: arbiters.iter().map(Arbiter::handle).collect(),
                next: AtomicUsize::new(0),
                arbiters: Mutex::new(arbiters),
                blocking: Arc::new(Semaphore::new(blocking)),
                blocking_size: blocking,
            }),
            rt: tokio::runtime::Handle::current(),
        }
    }

    /// The arbiter the next actor starts on.
    pub(crate) fn pick(&self) -> ArbiterHandle {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.handles.len();
        self.inner.handles[i].clone()
    }

    pub fn arbiters(&self) -> usize {
        self.inner.handles.len()
    }

    /// CPU-bound tasks running or waiting for a slot of the blocking pool.
    pub fn blocking_in_use(&self) -> usize {
        self.inner.blocking_size - self.inner.blocking.available_permits()
    }

    pub fn blocking_size(&self) -> usize {
        self.inner.blocking_size
    }

    /// Runs `f` on tokio's blocking threads once a slot of the bounded pool is free; the
    /// error is the panic's text if `f` panicked.
    pub(crate) fn run_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = Result<T, String>> + Send + 'static {
        let sem = self.inner.blocking.clone();
        let rt = self.rt.clone();
        async move {
            // Never closed: the semaphore lives as long as the executor.
            let _slot = sem.acquire_owned().await.map_err(|e| e.to_string())?;
            rt.spawn_blocking(f).await.map_err(|e| match e.try_into_panic() {
                Ok(p) => crate::cell::panic_text(p.as_ref()),
                Err(e) => e.to_string(),
            })
        }
    }

    /// Stops the arbiter threads (after the actors stopped).
    pub(crate) fn shutdown(&self) {
        for a in self.inner.arbiters.lock().drain(..) {
            a.stop();
        }
    }
}
