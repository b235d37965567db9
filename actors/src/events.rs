//! [`Hub`]: live events by topic, for the WebSocket edge and anything else that watches.
//!
//! Topics are dotted strings: `jobs.<queue>` (every job of a queue), `jobs.<queue>.<id>` (one
//! job), `catalog.products.<id>` (changes of one product), `catalog.products` (all of them),
//! `notifications.<user id>` (the notifications of one user).
//!
//! A publisher never waits: every subscriber has a bounded buffer of its own, an event that
//! does not fit is dropped for that subscriber only and counted, and the subscriber is told how
//! many it missed (a `lagged` delivery) the next time it reads. A slow WebSocket client never
//! slows a job, a write or another client.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

/// One event as subscribers get it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    pub topic: String,
    /// What happened: `job`, `product`, `notification`, ...
    pub event: &'static str,
    pub data: Value,
}

/// What a subscriber reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Event(Event),
    /// Events dropped because the subscriber's buffer was full.
    Lagged(u64),
}

struct Sub {
    /// Locked only to test or change membership, never across an await.
    topics: Mutex<HashSet<String>>,
    tx: mpsc::Sender<Event>,
    missed: AtomicU64,
}

#[derive(Default)]
struct Inner {
    /// Read-locked by every publish (many at once), write-locked only to add or remove a
    /// subscriber; never held across an await.
    subs: RwLock<HashMap<u64, Arc<Sub>>>,
    next: AtomicU64,
    published: AtomicU64,
    dropped: AtomicU64,
}

/// The topic hub of one application. Cheap to clone.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("subscribers", &self.subscribers())
            .finish()
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hands `data` to every subscriber of `topic`, now, without waiting for any of them.
    pub fn publish(&self, topic: impl Into<String>, event: &'static str, data: Value) {
        let topic = topic.into();
        let subs = self.inner.subs.read();
        if subs.is_empty() {
            return;
        }
        let ev = Event { topic, event, data };
        for sub in subs.values() {
            if !sub.topics.lock().contains(&ev.topic) {
                continue;
            }
            self.inner.published.fetch_add(1, Ordering::Relaxed);
            if sub.tx.try_send(ev.clone()).is_err() {
                sub.missed.fetch_add(1, Ordering::Relaxed);
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("pm_events_dropped_total").increment(1);
            }
        }
    }

    /// A new subscriber with a buffer of `buffer` events and no topics yet.
    pub fn subscriber(&self, buffer: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let sub = Arc::new(Sub {
            topics: Mutex::default(),
            tx,
            missed: AtomicU64::new(0),
        });
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner.subs.write().insert(id, sub.clone());
        Subscription {
            id,
            hub: self.clone(),
            sub,
            rx,
        }
    }

    pub fn subscribers(&self) -> usize {
        self.inner.subs.read().len()
    }

    /// Events handed to subscribers, and those dropped for full buffers, since the start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.inner.published.load(Ordering::Relaxed),
            self.inner.dropped.load(Ordering::Relaxed),
        )
    }
}

/// One subscriber's end; dropping it unsubscribes from everything.
pub struct Subscription {
    id: u64,
    hub: Hub,
    sub: Arc<Sub>,
    rx: mpsc::Receiver<Event>,
}

impl Subscription {
    /// Whether it was new.
    pub fn subscribe(&self, topic: impl Into<String>) -> bool {
        self.sub.topics.lock().insert(topic.into())
    }

    pub fn unsubscribe(&self, topic: &str) -> bool {
        self.sub.topics.lock().remove(topic)
    }

    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.sub.topics.lock().iter().cloned().collect();
        t.sort();
        t
    }

    /// The next delivery: a `Lagged` first when events were dropped since the last read.
    pub async fn recv(&mut self) -> Option<Delivery> {
        let missed = self.sub.missed.swap(0, Ordering::Relaxed);
        if missed > 0 {
            return Some(Delivery::Lagged(missed));
        }
        self.rx.recv().await.map(Delivery::Event)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.inner.subs.write().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn subscribers_get_their_topics_only() {
        let hub = Hub::new();
        let mut a = hub.subscriber(8);
        let mut b = hub.subscriber(8);
        a.subscribe("jobs.imports");
        b.subscribe("jobs.exports");
        hub.publish("jobs.imports", "job", json!(1));
        hub.publish("jobs.exports", "job", json!(2));
        let Some(Delivery::Event(e)) = a.recv().await else {
            panic!()
        };
        assert_eq!((e.topic.as_str(), e.data), ("jobs.imports", json!(1)));
        let Some(Delivery::Event(e)) = b.recv().await else {
            panic!()
        };
        assert_eq!(e.data, json!(2));
        assert!(a.unsubscribe("jobs.imports"));
        hub.publish("jobs.imports", "job", json!(3));
        assert!(futures::poll!(Box::pin(a.recv())).is_pending());
        drop(b);
        assert_eq!(hub.subscribers(), 1);
    }

    #[tokio::test]
    async fn a_full_buffer_drops_for_that_subscriber_only_and_says_how_many() {
        let hub = Hub::new();
        let mut slow = hub.subscriber(2);
        let mut fast = hub.subscriber(100);
        slow.subscribe("t");
        fast.subscribe("t");
        for i in 0..10 {
            hub.publish("t", "x", json!(i));
        }
        assert_eq!(slow.recv().await, Some(Delivery::Lagged(8)));
        let Some(Delivery::Event(e)) = slow.recv().await else {
            panic!()
        };
        assert_eq!(e.data, json!(0));
        let mut got = 0;
        while let std::task::Poll::Ready(Some(_)) = futures::poll!(Box::pin(fast.recv())) {
            got += 1;
        }
        assert_eq!(got, 10);
        assert_eq!(hub.counts().1, 8);
    }
}
