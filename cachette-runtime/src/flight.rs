//! Single-flight: concurrent misses of one key in one process share one computation.
//!
//! A flight lives in a sharded map only while its computation runs; the leader's guard
//! removes it when the flight ends, however it ends (value, error, or the leader's future
//! dropped), so nothing remains per key afterwards. Shard locks are held for a map insert
//! or removal only, never across an `.await`: misses of different keys never wait on each
//! other.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

const SHARDS: usize = 64;

/// How a flight ended, as its followers see it.
#[derive(Clone)]
pub(crate) enum Outcome {
    Pending,
    /// The value in its stored form, serialized (followers decode their own copy).
    Value(Arc<[u8]>),
    /// The leader's return value, shared as it is (an error of a `Clone` type).
    Shared(Arc<dyn Any + Send + Sync>),
    /// The leader's result cannot be shared (an error that is not `Clone`): each follower
    /// runs its own computation.
    Unshareable,
    /// The leader's future was dropped: the followers elect a new leader.
    Abandoned,
}

struct Shard {
    flights: Mutex<HashMap<String, watch::Receiver<Outcome>>>,
    /// Bumped whenever a flight of this shard ends: a caller whose lookup began before a
    /// flight of its key ended looks again instead of computing.
    completed: AtomicU64,
}

pub(crate) struct Flights {
    shards: Vec<Shard>,
    /// Seeds the shard choice, so that which keys share a shard differs between processes.
    seed: u64,
}

pub(crate) enum Role {
    Leader(LeaderGuard),
    Follower(watch::Receiver<Outcome>),
}

impl Flights {
    pub fn new() -> Arc<Flights> {
        Arc::new(Flights {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    flights: Mutex::new(HashMap::new()),
                    completed: AtomicU64::new(0),
                })
                .collect(),
            seed: rand::random(),
        })
    }

    /// The shard of `key`: XXH3, a few nanoseconds for a key (every call reads its shard's
    /// epoch before its lookup). A shard only groups keys; its map hashes keys on its own.
    fn shard_index(&self, key: &str) -> usize {
        (xxhash_rust::xxh3::xxh3_64_with_seed(key.as_bytes(), self.seed) as usize) % SHARDS
    }

    /// The completion counter of `key`'s shard (read before a lookup).
    pub fn epoch(&self, key: &str) -> u64 {
        self.shards[self.shard_index(key)]
            .completed
            .load(Ordering::Acquire)
    }

    /// Joins the flight of `key`, or starts it.
    pub fn join(self: &Arc<Self>, key: &str) -> Role {
        let idx = self.shard_index(key);
        let shard = &self.shards[idx];
        // A poisoned shard only means another thread panicked while holding it; the map is
        // still consistent (insert/remove are single operations), so go on with it.
        let mut map = shard.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = map.get(key) {
            return Role::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(Outcome::Pending);
        map.insert(key.to_owned(), rx);
        Role::Leader(LeaderGuard {
            flights: Arc::clone(self),
            shard: idx,
            key: key.to_owned(),
            tx: Some(tx),
        })
    }

    /// Number of flights in progress (for tests of the memory bound).
    pub fn in_flight(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.flights.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

/// Held by the leader; ends the flight when finished or dropped.
pub(crate) struct LeaderGuard {
    flights: Arc<Flights>,
    shard: usize,
    key: String,
    tx: Option<watch::Sender<Outcome>>,
}

impl LeaderGuard {
    /// Ends the flight with `outcome`.
    pub fn finish(mut self, outcome: Outcome) {
        self.end(outcome);
    }

    fn end(&mut self, outcome: Outcome) {
        let Some(tx) = self.tx.take() else { return };
        let shard = &self.flights.shards[self.shard];
        shard
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
        shard.completed.fetch_add(1, Ordering::Release);
        // Followers may all be gone; that is fine.
        let _ = tx.send(outcome);
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        self.end(Outcome::Abandoned);
    }
}

/// Waits for a flight to end. A closed channel counts as abandoned.
pub(crate) async fn wait(mut rx: watch::Receiver<Outcome>) -> Outcome {
    match rx.wait_for(|o| !matches!(o, Outcome::Pending)).await {
        Ok(o) => o.clone(),
        Err(_) => Outcome::Abandoned,
    }
}
