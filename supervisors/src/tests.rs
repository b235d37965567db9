//! Behaviour of the supervision layer on a real actix system.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::*;

/// Runs `f` inside an actix system on a multi-thread tokio runtime, as the application does.
pub(crate) fn run<F: Future<Output = ()>>(f: impl FnOnce() -> F) {
    actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
    .block_on(f());
}

/// Polls `cond` until it holds, failing the test after a deadline.
pub(crate) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Counter {
    n: u64,
    gate: Arc<Semaphore>,
    starts: Arc<AtomicUsize>,
}

impl Behaviour for Counter {
    fn started(&mut self, _ctx: &Ctx<Self>) -> Result<(), String> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn observe(&self) -> serde_json::Value {
        serde_json::json!({ "n": self.n })
    }
}

struct Incr;
impl Handles<Incr> for Counter {
    type Ok = u64;
    type Err = String;
    fn handle(&mut self, _: Incr, _ctx: &Ctx<Self>) -> Reply<Result<u64, String>> {
        self.n += 1;
        Reply::ready(Ok(self.n))
    }
}

struct Fail;
impl Handles<Fail> for Counter {
    type Ok = u64;
    type Err = String;
    fn handle(&mut self, _: Fail, _ctx: &Ctx<Self>) -> Reply<Result<u64, String>> {
        Reply::ready(Err("refused".into()))
    }
}

struct Boom;
impl Handles<Boom> for Counter {
    type Ok = u64;
    type Err = String;
    fn handle(&mut self, _: Boom, _ctx: &Ctx<Self>) -> Reply<Result<u64, String>> {
        panic!("boom")
    }
}

struct AsyncBoom;
impl Handles<AsyncBoom> for Counter {
    type Ok = u64;
    type Err = String;
    fn handle(&mut self, _: AsyncBoom, _ctx: &Ctx<Self>) -> Reply<Result<u64, String>> {
        Reply::spawn(async { panic!("async boom") })
    }
}

/// Waits for a permit of the test's gate: holds a concurrency slot until the test opens it.
struct Gated;
impl Handles<Gated> for Counter {
    type Ok = u64;
    type Err = String;
    fn handle(&mut self, _: Gated, _ctx: &Ctx<Self>) -> Reply<Result<u64, String>> {
        let gate = self.gate.clone();
        Reply::spawn(async move {
            gate.acquire().await.map_err(|e| e.to_string())?.forget();
            Ok(0)
        })
    }
}

struct Fixture {
    gate: Arc<Semaphore>,
    starts: Arc<AtomicUsize>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            gate: Arc::new(Semaphore::new(0)),
            starts: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn spec(&self, name: &str) -> ChildSpec<Counter> {
        let (gate, starts) = (self.gate.clone(), self.starts.clone());
        ChildSpec::new(name, "counter", move || Counter {
            n: 0,
            gate: gate.clone(),
            starts: starts.clone(),
        })
    }
}

pub(crate) fn intensity(max_restarts: u32) -> Intensity {
    Intensity {
        max_restarts,
        within: Duration::from_secs(60),
    }
}

pub(crate) fn root(
    registry: &Registry,
    max_restarts: u32,
) -> (Supervisor, tokio::sync::watch::Receiver<Option<String>>) {
    let (tx, rx) = tokio::sync::watch::channel(None);
    let sup = Supervisor::root(
        "root",
        Strategy::OneForOne,
        intensity(max_restarts),
        registry.clone(),
        move |r| {
            tx.send_replace(Some(r));
        },
    );
    (sup, rx)
}

#[test]
fn bounded_mailbox_holds_exactly_capacity_and_refuses_the_rest() {
    run(|| async {
        let registry = Registry::new();
        let (sup, _) = root(&registry, 3);
        let f = Fixture::new();
        let capacity = 5;
        let mb = sup
            .start(
                f.spec("c")
                    .capacity(capacity)
                    .concurrency(2)
                    .send_timeout(Duration::from_millis(50)),
            )
            .unwrap();
        // Fill: 2 run (held by the gate), 5 wait in the mailbox.
        let mut calls = Vec::new();
        for _ in 0..capacity + 2 {
            let mb = mb.clone();
            calls.push(tokio::spawn(async move { mb.send(Gated).await }));
        }
        wait_until("a full mailbox", || {
            let s = mb.snapshot();
            s.in_flight == 2 && s.depth == capacity
        })
        .await;
        // Every further send fails: at once with try_send, after the deadline with send.
        let started = Instant::now();
        let err = mb.send(Incr).await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(
            matches!(err, CallError::Backpressure { ref actor, retry_after } if actor == "c" && retry_after >= Duration::from_secs(1))
        );
        assert!(matches!(
            mb.try_send(Incr).await,
            Err(CallError::Backpressure { .. })
        ));
        let s = mb.snapshot();
        assert_eq!((s.depth, s.in_flight, s.rejected), (capacity, 2, 2));
        // Open the gate: everything queued completes, nothing is lost.
        f.gate.add_permits(capacity + 2);
        for c in calls {
            assert_eq!(c.await.unwrap(), Ok(0));
        }
        wait_until("an empty mailbox", || mb.snapshot().depth == 0).await;
        assert_eq!(mb.send(Incr).await, Ok(1));
        let s = mb.snapshot();
        assert_eq!((s.processed, s.in_flight, s.depth), (capacity as u64 + 3, 0, 0));
        sup.shutdown();
    });
}

#[test]
fn handler_errors_count_as_failed_not_as_crashes() {
    run(|| async {
        let registry = Registry::new();
        let (sup, _) = root(&registry, 3);
        let f = Fixture::new();
        let mb = sup.start(f.spec("c")).unwrap();
        assert_eq!(
            mb.send(Fail).await,
            Err(CallError::Handler("refused".to_string()))
        );
        let s = mb.snapshot();
        assert_eq!((s.processed, s.failed, s.panics, s.restarts), (1, 1, 0, 0));
        assert_eq!(s.last_error.as_deref(), Some("refused"));
        sup.shutdown();
    });
}

#[test]
fn a_panic_restarts_the_actor_with_fresh_state_and_handles_stay_valid() {
    run(|| async {
        let registry = Registry::new();
        let (sup, escalated) = root(&registry, 3);
        let f = Fixture::new();
        let mb = sup.start(f.spec("c")).unwrap();
        let other_handle = mb.clone();
        assert_eq!(mb.send(Incr).await, Ok(1));
        assert_eq!(mb.send(Incr).await, Ok(2));
        let err = mb.send(Boom).await.unwrap_err();
        assert!(
            matches!(err, CallError::Panicked { ref reason, .. } if reason == "boom"),
            "{err:?}"
        );
        // The same handles work, on a fresh state.
        assert_eq!(other_handle.send(Incr).await, Ok(1));
        let s = mb.snapshot();
        assert_eq!((s.panics, s.restarts), (1, 1));
        assert_eq!(s.status, ActorStatus::Running);
        assert!(s.last_restart.is_some());
        assert_eq!(s.last_error.as_deref(), Some("panic: boom"));
        assert_eq!(f.starts.load(Ordering::SeqCst), 2);
        let state = registry.get("c").unwrap().observe(Duration::from_secs(1)).await;
        assert_eq!(state, Some(serde_json::json!({ "n": 1 })));
        // A panic inside an async handler fails that request only: the future had no
        // access to the state, so nothing is restarted and the state is kept.
        let err = mb.send(AsyncBoom).await.unwrap_err();
        assert!(matches!(err, CallError::Panicked { ref reason, .. } if reason == "async boom"));
        assert_eq!(mb.send(Incr).await, Ok(2));
        let s = mb.snapshot();
        assert_eq!((s.panics, s.restarts), (2, 1));
        assert!(escalated.borrow().is_none());
        assert_eq!(sup.status(), SupervisorStatus::Running);
        sup.shutdown();
    });
}

#[test]
fn beyond_restart_intensity_the_root_escalates_and_actors_stop() {
    run(|| async {
        let registry = Registry::new();
        let (sup, mut escalated) = root(&registry, 2);
        let f = Fixture::new();
        let mb = sup.start(f.spec("c")).unwrap();
        for _ in 0..3 {
            assert!(matches!(mb.send(Boom).await, Err(CallError::Panicked { .. })));
        }
        let reason = escalated
            .wait_for(Option::is_some)
            .await
            .unwrap()
            .clone()
            .unwrap();
        assert!(reason.contains("more than 2 restarts"), "{reason}");
        assert_eq!(sup.status(), SupervisorStatus::Escalated);
        wait_until("the actor to stop", || {
            mb.snapshot().status == ActorStatus::Escalated
        })
        .await;
        assert!(matches!(mb.send(Incr).await, Err(CallError::Stopped { .. })));
        let sups = registry.supervisors();
        assert_eq!(sups[0].status, SupervisorStatus::Escalated);
        sup.shutdown();
    });
}

#[test]
fn nested_supervisor_escalates_to_its_parent_which_restarts_it() {
    run(|| async {
        let registry = Registry::new();
        let (root, escalated) = root(&registry, 5);
        let stores = root.child_supervisor("stores", Strategy::OneForOne, intensity(1));
        let f = Fixture::new();
        let mb = stores.start(f.spec("c")).unwrap();
        assert_eq!(mb.send(Incr).await, Ok(1));
        for _ in 0..2 {
            assert!(matches!(mb.send(Boom).await, Err(CallError::Panicked { .. })));
        }
        // `stores` gave up; the root restarted it, and with it the actor.
        wait_until("the restart by the root", || {
            stores.status() == SupervisorStatus::Running
                && mb.snapshot().status == ActorStatus::Running
                && mb.snapshot().restarts == 3
        })
        .await;
        assert_eq!(mb.send(Incr).await, Ok(1));
        assert!(escalated.borrow().is_none());
        root.shutdown();
    });
}

#[test]
fn one_for_all_and_rest_for_one_restart_siblings() {
    run(|| async {
        for (strategy, expected) in [
            (Strategy::OneForAll, [1, 1, 1]),
            (Strategy::RestForOne, [0, 1, 1]),
            (Strategy::OneForOne, [0, 1, 0]),
        ] {
            let registry = Registry::new();
            let (tx, _rx) = tokio::sync::watch::channel(None::<String>);
            let sup = Supervisor::root("root", strategy, intensity(5), registry.clone(), move |r| {
                tx.send_replace(Some(r));
            });
            let f = Fixture::new();
            let mbs: Vec<_> = ["a", "b", "c"]
                .iter()
                .map(|n| sup.start(f.spec(n)).unwrap())
                .collect();
            for mb in &mbs {
                assert_eq!(mb.send(Incr).await, Ok(1));
            }
            let _ = mbs[1].send(Boom).await;
            wait_until("sibling restarts", || {
                mbs.iter()
                    .zip(expected)
                    .all(|(mb, e)| mb.snapshot().restarts == e)
            })
            .await;
            for (mb, e) in mbs.iter().zip(expected) {
                // A restarted actor starts counting again.
                assert_eq!(
                    mb.send(Incr).await,
                    Ok(if e == 1 { 1 } else { 2 }),
                    "{strategy:?}"
                );
            }
            sup.shutdown();
        }
    });
}

#[test]
fn a_temporary_child_stays_stopped_after_a_crash() {
    run(|| async {
        let registry = Registry::new();
        let (sup, _) = root(&registry, 5);
        let f = Fixture::new();
        let mb = sup.start(f.spec("t").restart(RestartType::Temporary)).unwrap();
        let _ = mb.send(Boom).await;
        // The status is set before the panicking caller is answered, so no wait is needed.
        assert_eq!(mb.snapshot().status, ActorStatus::Failed);
        assert!(matches!(mb.send(Incr).await, Err(CallError::Stopped { .. })));
        sup.shutdown();
    });
}

#[test]
fn an_actor_that_finishes_nothing_within_its_deadline_is_stuck() {
    run(|| async {
        let registry = Registry::new();
        let (sup, _) = root(&registry, 5);
        let f = Fixture::new();
        let mb = sup
            .start(f.spec("s").stuck_after(Duration::from_millis(50)))
            .unwrap();
        let call = {
            let mb = mb.clone();
            tokio::spawn(async move { mb.send(Gated).await })
        };
        wait_until("stuck", || mb.snapshot().status == ActorStatus::Stuck).await;
        f.gate.add_permits(1);
        assert_eq!(call.await.unwrap(), Ok(0));
        assert_eq!(mb.snapshot().status, ActorStatus::Running);
        sup.shutdown();
    });
}

#[test]
fn duplicate_names_are_refused() {
    run(|| async {
        let registry = Registry::new();
        let (sup, _) = root(&registry, 5);
        let f = Fixture::new();
        sup.start(f.spec("x")).unwrap();
        assert!(sup.start(f.spec("x")).is_err());
        sup.shutdown();
    });
}
