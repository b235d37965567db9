//! The second-stage runtime: context (self messages, timers, piped futures, stop), deferred
//! and blocking replies, shared arbiters, panics in every place, stateless gates and dynamic
//! children.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::tests::{root, run, wait_until};
use crate::*;

#[derive(Default)]
struct Clockwork {
    ticks: u64,
    piped: Vec<u64>,
    later: bool,
    waiting: Vec<(u64, Responder<Result<u64, String>>)>,
}

impl Behaviour for Clockwork {
    fn started(&mut self, ctx: &Ctx<Self>) -> Result<(), String> {
        ctx.interval(Duration::from_millis(5), || Tick);
        ctx.schedule(Duration::from_millis(20), Later);
        Ok(())
    }
    fn observe(&self) -> serde_json::Value {
        serde_json::json!({ "ticks": self.ticks })
    }
}

macro_rules! handles {
    ($b:ty, $m:ty => $ok:ty, |$s:ident, $msg:ident, $ctx:ident| $body:expr) => {
        impl Handles<$m> for $b {
            type Ok = $ok;
            type Err = String;
            #[allow(unused_variables)]
            fn handle(&mut self, $msg: $m, $ctx: &Ctx<Self>) -> Reply<Result<$ok, String>> {
                let $s = self;
                $body
            }
        }
    };
}

struct Tick;
handles!(Clockwork, Tick => (), |s, m, ctx| { s.ticks += 1; Reply::ready(Ok(())) });
struct Later;
handles!(Clockwork, Later => (), |s, m, ctx| { s.later = true; Reply::ready(Ok(())) });
struct PipeIt(u64);
handles!(Clockwork, PipeIt => (), |s, m, ctx| {
    ctx.pipe(async move {
        tokio::task::yield_now().await;
        Piped(m.0 * 2)
    });
    Reply::ready(Ok(()))
});
struct Piped(u64);
handles!(Clockwork, Piped => (), |s, m, ctx| { s.piped.push(m.0); Reply::ready(Ok(())) });
struct Get;
handles!(Clockwork, Get => (u64, Vec<u64>, bool), |s, m, ctx| Reply::ready(Ok((s.ticks, s.piped.clone(), s.later))));
struct StopMe;
handles!(Clockwork, StopMe => (), |s, m, ctx| { ctx.stop(); Reply::ready(Ok(())) });
/// Answered when the batch is flushed, 10 ms after its first request.
struct Batched(u64);
handles!(Clockwork, Batched => u64, |s, m, ctx| {
    if s.waiting.is_empty() {
        ctx.schedule(Duration::from_millis(10), Flush);
    }
    let (reply, responder) = Reply::deferred();
    s.waiting.push((m.0, responder));
    reply
});
struct Flush;
handles!(Clockwork, Flush => (), |s, m, ctx| {
    let sum: u64 = s.waiting.iter().map(|(n, _)| n).sum();
    for (_, r) in s.waiting.drain(..) {
        r.send(Ok(sum));
    }
    Reply::ready(Ok(()))
});
struct Square(u64);
handles!(Clockwork, Square => u64, |s, m, ctx| Reply::blocking(move || Ok(m.0 * m.0)));
struct ThreadName;
handles!(Clockwork, ThreadName => String, |s, m, ctx| {
    Reply::ready(Ok(format!("{:?}", std::thread::current().id())))
});

#[test]
fn timers_self_messages_and_piped_futures_change_state_in_order() {
    run(|| async {
        let registry = Registry::new();
        let (sup, _) = root(&registry, 5);
        let mb = sup
            .start(ChildSpec::new("clock", "test", Clockwork::default).restart(RestartType::Transient))
            .unwrap();
        let mut state = mb.send(Get).await.unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while !(state.0 >= 3 && state.2) {
            assert!(std::time::Instant::now() < until, "no ticks: {state:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
            state = mb.send(Get).await.unwrap();
        }
        for n in 1..=3 {
            mb.send(PipeIt(n)).await.unwrap();
        }
        let (_, mut piped, _) = mb.send(Get).await.unwrap();
        while piped.len() < 3 {
            assert!(
                std::time::Instant::now() < until,
                "piped results missing: {piped:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
            piped = mb.send(Get).await.unwrap().1;
        }
        piped.sort_unstable();
        assert_eq!(piped, [2, 4, 6]);
        // Stopping itself: refused afterwards, timers gone.
        mb.send(StopMe).await.unwrap();
        wait_until("stopped", || mb.snapshot().status == ActorStatus::Stopped).await;
        assert!(matches!(mb.send(Get).await, Err(CallError::Stopped { .. })));
        sup.shutdown();
    });
}

#[test]
fn a_permanent_child_that_stops_itself_is_started_again() {
    run(|| async {
        let registry = Registry::new();
        let (sup, _) = root(&registry, 5);
        let mb = sup
            .start(ChildSpec::new("clock", "test", Clockwork::default))
            .unwrap();
        mb.send(StopMe).await.unwrap();
        wait_until("started again", || mb.snapshot().restarts == 1).await;
        let mut state = mb.send(Get).await;
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while state.is_err() {
            assert!(std::time::Instant::now() < until, "{state:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
            state = mb.send(Get).await;
        }
        assert_eq!(mb.snapshot().status, ActorStatus::Running);
        sup.shutdown();
    });
}

#[test]
fn deferred_replies_answer_a_whole_batch_and_blocking_work_runs_off_the_arbiter() {
    run(|| async {
        let registry = Registry::new();
        let (sup, _) = root(&registry, 5);
        let mb = sup
            .start(ChildSpec::new("batch", "test", Clockwork::default).concurrency(4))
            .unwrap();
        let answers = futures::future::join_all((1..=4).map(|n| mb.send(Batched(n)))).await;
        assert!(
            answers.iter().all(|a| a.as_ref().ok() == Some(&10)),
            "{answers:?}"
        );
        assert_eq!(mb.send(Square(12)).await, Ok(144));
        let s = mb.snapshot();
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.failed, 0);
        sup.shutdown();
    });
}

#[test]
fn actors_share_a_fixed_set_of_arbiters() {
    run(|| async {
        let registry = Registry::new();
        let (tx, _rx) = tokio::sync::watch::channel(None::<String>);
        let exec = Executor::new(2, 2);
        let sup = Supervisor::root_on(
            "root",
            Strategy::OneForOne,
            crate::tests::intensity(5),
            registry.clone(),
            exec,
            move |r| {
                tx.send_replace(Some(r));
            },
        );
        let mut threads = HashSet::new();
        for i in 0..40 {
            let mb = sup
                .start(ChildSpec::new(format!("a{i}"), "test", Clockwork::default))
                .unwrap();
            threads.insert(mb.send(ThreadName).await.unwrap());
        }
        assert_eq!(threads.len(), 2, "40 actors on 2 arbiters: {threads:?}");
        sup.shutdown();
    });
}

/// Panics where told to, a given number of times.
struct Fragile {
    n: u64,
}
impl Behaviour for Fragile {
    fn started(&mut self, ctx: &Ctx<Self>) -> Result<(), String> {
        ctx.schedule(Duration::from_millis(1), Armed);
        Ok(())
    }
}
struct Armed;
handles!(Fragile, Armed => (), |s, m, ctx| Reply::ready(Ok(())));
struct Boom;
handles!(Fragile, Boom => u64, |s, m, ctx| panic!("boom"));
struct Incr;
handles!(Fragile, Incr => u64, |s, m, ctx| { s.n += 1; Reply::ready(Ok(s.n)) });
struct TimerBoom;
handles!(Fragile, TimerBoom => (), |s, m, ctx| { ctx.schedule(Duration::from_millis(1), Boom); Reply::ready(Ok(())) });
struct PipeBoom;
handles!(Fragile, PipeBoom => (), |s, m, ctx| {
    ctx.pipe(async { panic!("piped boom"); #[allow(unreachable_code)] Armed });
    Reply::ready(Ok(()))
});

#[test]
fn panics_in_the_factory_started_timers_and_piped_futures_are_caught_and_restart() {
    run(|| async {
        let registry = Registry::new();
        let (sup, escalated) = root(&registry, 20);
        // The factory panics on its first call, `started` on its second.
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        struct Moody;
        impl Behaviour for Moody {}
        struct Hello;
        handles!(Moody, Hello => u64, |s, m, ctx| Reply::ready(Ok(7)));
        let mb = sup
            .start(ChildSpec::new("moody", "test", move || {
                match c.fetch_add(1, Ordering::SeqCst) {
                    0 => panic!("factory boom"),
                    _ => Moody,
                }
            }))
            .unwrap();
        wait_until("restarted after the factory panic", || {
            mb.snapshot().restarts == 1
        })
        .await;
        assert_eq!(mb.send(Hello).await.unwrap(), 7);
        let s = mb.snapshot();
        assert_eq!((s.status, s.panics), (ActorStatus::Running, 1));
        assert!(s.last_error.unwrap().contains("factory boom"));

        let mb = sup
            .start(ChildSpec::new("fragile", "test", || Fragile { n: 0 }))
            .unwrap();
        assert_eq!(mb.send(Incr).await, Ok(1));
        mb.send(TimerBoom).await.unwrap();
        wait_until("restart after the timer's panic", || mb.snapshot().restarts == 1).await;
        assert_eq!(mb.send(Incr).await, Ok(1), "fresh state after the restart");
        mb.send(PipeBoom).await.unwrap();
        wait_until("restart after the piped panic", || mb.snapshot().restarts == 2).await;
        assert_eq!(mb.snapshot().status, ActorStatus::Running);
        assert!(escalated.borrow().is_none());
        sup.shutdown();
    });
}

#[test]
fn a_stateless_gate_fails_panicking_requests_alone_and_keeps_serving() {
    run(|| async {
        let registry = Registry::new();
        let (sup, escalated) = root(&registry, 3);
        let mb = sup
            .start(
                ChildSpec::new("gate", "store", || Fragile { n: 0 })
                    .stateless()
                    .capacity(2000),
            )
            .unwrap();
        mb.send(Incr).await.unwrap();
        let answers = futures::future::join_all((0..1000).map(|_| mb.send(Boom))).await;
        assert!(answers
            .iter()
            .all(|a| matches!(a, Err(CallError::Panicked { .. }))));
        let s = mb.snapshot();
        assert_eq!((s.panics, s.restarts, s.status), (1000, 0, ActorStatus::Running));
        assert_eq!(mb.send(Incr).await, Ok(2), "state kept: nothing restarted");
        assert!(escalated.borrow().is_none());
        assert_eq!(sup.status(), SupervisorStatus::Running);
        sup.shutdown();
    });
}

struct Session {
    key: String,
    seen: Arc<Mutex<Vec<String>>>,
}
impl Behaviour for Session {
    fn started(&mut self, _: &Ctx<Self>) -> Result<(), String> {
        self.seen.lock().push(self.key.clone());
        Ok(())
    }
    fn observe(&self) -> serde_json::Value {
        serde_json::json!({ "key": self.key })
    }
}
struct Who;
handles!(Session, Who => String, |s, m, ctx| Reply::ready(Ok(s.key.clone())));
struct Crash;
handles!(Session, Crash => String, |s, m, ctx| panic!("session boom"));

#[test]
fn dynamic_children_start_by_key_are_capped_stop_when_idle_and_free_their_names() {
    run(|| async {
        let registry = Registry::new();
        let (sup, _) = root(&registry, 5);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sessions = sup.dynamic(
            DynamicSpec::new("import.session", "import_session", move |key| Session {
                key: key.to_owned(),
                seen: s2.clone(),
            })
            .max_children(2)
            .idle_after(Some(Duration::from_millis(100))),
        );
        assert_eq!(sessions.send("acme", Who).await.unwrap(), "acme");
        assert_eq!(
            sessions.send("acme", Who).await.unwrap(),
            "acme",
            "the same child"
        );
        assert_eq!(sessions.send("bolt", Who).await.unwrap(), "bolt");
        assert_eq!(seen.lock().len(), 2);
        assert!(matches!(
            sessions.get_or_start("cargo"),
            Err(DynamicError::Full { max: 2, .. })
        ));
        // In the registry like any actor, with its own state.
        let entry = registry.get("import.session.acme").expect("registered");
        assert_eq!(
            entry.observe(Duration::from_secs(1)).await,
            Some(serde_json::json!({ "key": "acme" }))
        );
        // A crash restarts it in place.
        assert!(sessions.send("acme", Crash).await.is_err());
        assert_eq!(sessions.send("acme", Who).await.unwrap(), "acme");
        // Idle children stop and leave the registry.
        wait_until("idle children gone", || {
            sessions.is_empty() && registry.get("import.session.acme").is_none()
        })
        .await;
        // The names are free again, and the cap counts live children only.
        assert_eq!(sessions.send("cargo", Who).await.unwrap(), "cargo");
        assert_eq!(sessions.send("acme", Who).await.unwrap(), "acme");
        assert_eq!(sessions.keys(), ["acme", "cargo"]);
        assert!(sessions.stop_child("cargo"));
        assert!(registry.get("import.session.cargo").is_none());
        sup.shutdown();
    });
}
