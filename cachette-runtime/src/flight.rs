//! Single-flight: concurrent misses of one key in one process share one computation, but
//! only with callers for whom that computation is fresh.
//!
//! A flight lives in a sharded map only while its computation runs; the leader's guard
//! removes it when the flight ends, however it ends (value, error, or the leader's future
//! dropped), so nothing remains per key afterwards. Shard locks are held for a map insert
//! or removal only, never across an `.await`: misses of different keys never wait on each
//! other.
//!
//! # Who may take a flight's value
//!
//! A flight's result comes with its [`Basis`]: when its computation started (a tick of the
//! shard's clock) and what it was computed under (the tag versions and the state of the key
//! its leader read before computing). A follower takes it only if it is fresh for the
//! follower ([`Basis::serves`]): the computation started after the follower's lookup began,
//! or the follower's own lookup read the very same tag versions and key state. Versions are
//! random and never reused, a key state changes with every write, delete or fill of the key:
//! equality means no invalidation landed between the leader's read and the follower's, so no
//! invalidation that returned before the follower began can postdate the computation. Any
//! other follower looks again.

#[cfg(test)]
use crate::backend::Patterns;
use crate::backend::{Seen, Versions};
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

const SHARDS: usize = 64;

/// What a computation (or a value read from the store) was made under.
pub(crate) struct Basis {
    /// The shard's clock when the computation (or the read) started: later than the mark of
    /// every lookup that began before it.
    pub started: u64,
    /// The tag versions it was computed under, in the call's tag order (`None`: unknown).
    pub versions: Option<Box<[Box<str>]>>,
    /// The state of the key its leader read before computing (`None`: unknown).
    pub seen: Option<Seen>,
}

/// What a caller read before looking at a flight: its mark, and what its lookup found.
pub(crate) struct View<'a> {
    pub mark: Mark,
    pub versions: Option<&'a Versions>,
    pub seen: Option<&'a Seen>,
}

impl Basis {
    /// Whether a value made under this basis is fresh for a caller with `view`: started after
    /// the caller's lookup began, or made under the tag versions and key state the caller's
    /// own lookup read.
    pub(crate) fn serves(&self, view: &View<'_>) -> bool {
        if self.started > view.mark.clock {
            return true;
        }
        let (Some(mine), Some(theirs)) = (view.versions, &self.versions) else {
            return false;
        };
        let same_versions = theirs
            .iter()
            .enumerate()
            .all(|(i, v)| mine.get(i) == Some(&**v))
            && mine.get(theirs.len()).is_none();
        let same_key = match (view.seen, &self.seen) {
            (Some(a), Some(b)) => a.same(b),
            _ => false,
        };
        same_versions && same_key
    }
}

/// How a flight ended, as its followers see it.
#[derive(Clone)]
pub(crate) enum Outcome {
    Pending,
    /// The value in its stored form, serialized (followers decode their own copy).
    Value(Arc<[u8]>, Arc<Basis>),
    /// The leader's return value, shared as it is (an error of a `Clone` type).
    Shared(Arc<dyn Any + Send + Sync>, Arc<Basis>),
    /// The leader's result cannot be shared (an error that is not `Clone`): each follower
    /// runs its own computation.
    Unshareable,
    /// The leader's future was dropped: the followers elect a new leader.
    Abandoned,
}

/// A caller's reading of its key's shard, taken before its lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    /// Flights of the shard ended so far.
    pub completed: u64,
    /// The shard's clock.
    pub clock: u64,
}

struct Shard {
    flights: Mutex<HashMap<String, watch::Receiver<Outcome>>>,
    /// Bumped whenever a flight of this shard ends: a leader whose lookup began before a
    /// flight of its shard ended looks again (still leading) before computing.
    completed: AtomicU64,
    /// Ticks whenever a computation (or a leader's read) of this shard starts.
    clock: AtomicU64,
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
    pub(crate) fn new() -> Arc<Flights> {
        Arc::new(Flights {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    flights: Mutex::new(HashMap::new()),
                    completed: AtomicU64::new(0),
                    clock: AtomicU64::new(0),
                })
                .collect(),
            seed: rand::random(),
        })
    }

    /// The shard of `key`: XXH3, a few nanoseconds for a key (every call marks its shard
    /// before its lookup). A shard only groups keys; its map hashes keys on its own.
    fn shard(&self, key: &str) -> &Shard {
        let i = (xxhash_rust::xxh3::xxh3_64_with_seed(key.as_bytes(), self.seed) as usize) % SHARDS;
        &self.shards[i]
    }

    /// The mark of `key`'s shard (read before a lookup).
    pub(crate) fn mark(&self, key: &str) -> Mark {
        let shard = self.shard(key);
        Mark {
            completed: shard.completed.load(Ordering::Acquire),
            clock: shard.clock.load(Ordering::SeqCst),
        }
    }

    /// Whether a flight of `key`'s shard ended since `mark` was taken.
    pub(crate) fn ended_since(&self, key: &str, mark: Mark) -> bool {
        self.shard(key).completed.load(Ordering::Acquire) != mark.completed
    }

    /// A tick of `key`'s shard clock, taken right before a computation (or a read whose value
    /// will be shared) starts: greater than the clock of every mark taken before.
    pub(crate) fn tick(&self, key: &str) -> u64 {
        self.shard(key)
            .clock
            .fetch_add(1, Ordering::SeqCst)
            .wrapping_add(1)
    }

    /// Joins the flight of `key`, or starts it.
    pub(crate) fn join(self: &Arc<Self>, key: &str) -> Role {
        let shard = self.shard(key);
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
            key: key.to_owned(),
            tx: Some(tx),
        })
    }

    /// Number of flights in progress (for tests of the memory bound).
    pub(crate) fn in_flight(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.flights.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

/// Held by the leader; ends the flight when finished or dropped.
pub(crate) struct LeaderGuard {
    flights: Arc<Flights>,
    key: String,
    tx: Option<watch::Sender<Outcome>>,
}

impl LeaderGuard {
    /// Ends the flight with `outcome`.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.end(outcome);
    }

    /// A tick of the flight's shard clock (see [`Flights::tick`]).
    pub(crate) fn tick(&self) -> u64 {
        self.flights.tick(&self.key)
    }

    fn end(&mut self, outcome: Outcome) {
        let Some(tx) = self.tx.take() else { return };
        let shard = self.flights.shard(&self.key);
        let mut map = shard.flights.lock().unwrap_or_else(|e| e.into_inner());
        // Counted before the flight leaves the map, under its lock: whoever leads the key's
        // next flight (after taking this lock) sees the count moved, and looks again before
        // computing. Counted after, a leader elected in between would compute the key again.
        shard.completed.fetch_add(1, Ordering::Release);
        map.remove(&self.key);
        drop(map);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn basis(started: u64, versions: &[&str], seen: Seen) -> Basis {
        Basis {
            started,
            versions: Some(versions.iter().map(|v| Box::from(*v)).collect()),
            seen: Some(seen),
        }
    }

    fn owned(v: &[Option<&str>]) -> Versions {
        Versions::Owned(v.iter().map(|v| v.map(str::to_owned)).collect())
    }

    #[test]
    fn a_basis_serves_later_lookups_only_with_the_same_versions_and_key_state() {
        let mark = Mark {
            completed: 0,
            clock: 5,
        };
        fn view<'a>(versions: &'a Versions, seen: &'a Seen) -> View<'a> {
            View {
                mark: Mark {
                    completed: 0,
                    clock: 5,
                },
                versions: Some(versions),
                seen: Some(seen),
            }
        }
        let b = basis(
            3,
            &["v1", "w1"],
            Seen::Absent {
                patterns: Patterns::default(),
            },
        );
        assert!(b.serves(&view(
            &owned(&[Some("v1"), Some("w1")]),
            &Seen::Absent {
                patterns: Patterns::default()
            }
        )));
        // An invalidation landed between the two reads: the versions differ.
        assert!(!b.serves(&view(
            &owned(&[Some("v2"), Some("w1")]),
            &Seen::Absent {
                patterns: Patterns::default()
            }
        )));
        // The tag key vanished (deleted under OOM, evicted): unknown order, refused.
        assert!(!b.serves(&view(
            &owned(&[None, Some("w1")]),
            &Seen::Absent {
                patterns: Patterns::default()
            }
        )));
        // A delete (tombstone) or a write landed on the key between the two reads.
        let tomb = Seen::Bytes(bytes::Bytes::from_static(b"#tombstone:1"));
        assert!(!b.serves(&view(&owned(&[Some("v1"), Some("w1")]), &tomb)));
        // Fewer or more tags than the basis: refused.
        assert!(!b.serves(&view(
            &owned(&[Some("v1")]),
            &Seen::Absent {
                patterns: Patterns::default()
            }
        )));
        assert!(!b.serves(&view(
            &owned(&[Some("v1"), Some("w1"), Some("x")]),
            &Seen::Absent {
                patterns: Patterns::default()
            }
        )));
        // A computation that started after the lookup began serves it whatever it read.
        let later = basis(
            6,
            &["v0", "w0"],
            Seen::Absent {
                patterns: Patterns::default(),
            },
        );
        assert!(later.serves(&view(&owned(&[Some("v1"), Some("w1")]), &tomb)));
        // Nothing known about the caller's lookup (its backend failed): only a later start.
        let blind = View {
            mark,
            versions: None,
            seen: None,
        };
        assert!(!b.serves(&blind));
        assert!(later.serves(&blind));
    }

    #[test]
    fn ticks_follow_marks() {
        let flights = Flights::new();
        let before = flights.mark("k");
        let t = flights.tick("k");
        assert!(t > before.clock);
        let after = flights.mark("k");
        assert!(t <= after.clock);
        assert!(!flights.ended_since("k", before));
        if let Role::Leader(guard) = flights.join("k") {
            guard.finish(Outcome::Unshareable);
        }
        assert!(flights.ended_since("k", before));
    }

    /// A call that marked the shard before a flight ended, and then leads the key's next
    /// flight, must see that the first one ended (so it looks again before computing, and
    /// finds the value the first one stored). Two threads race the end of a flight against
    /// the election of the next leader, many times.
    #[test]
    fn a_leader_elected_after_a_flight_ended_sees_it_ended() -> Result<(), String> {
        use std::sync::Barrier;
        const ROUNDS: usize = 20_000;
        let flights = Flights::new();
        let barrier = Arc::new(Barrier::new(2));
        let ender = {
            let (flights, barrier) = (Arc::clone(&flights), Arc::clone(&barrier));
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let Role::Leader(guard) = flights.join("k") else {
                        return Err("the previous round left a flight".to_owned());
                    };
                    barrier.wait(); // the flight exists
                    barrier.wait(); // the other thread has marked
                    guard.finish(Outcome::Unshareable);
                    barrier.wait(); // the other thread is done with this round
                }
                Ok(())
            })
        };
        let mut missed = 0usize;
        for _ in 0..ROUNDS {
            barrier.wait();
            let mark = flights.mark("k");
            barrier.wait();
            // Spin until the flight is gone and this thread leads the next one.
            let guard = loop {
                if let Role::Leader(g) = flights.join("k") {
                    break g;
                }
                std::hint::spin_loop();
            };
            if !flights.ended_since("k", mark) {
                missed = missed.saturating_add(1);
            }
            drop(guard);
            barrier.wait();
        }
        ender
            .join()
            .map_err(|_| "the ending thread panicked".to_owned())??;
        assert_eq!(
            missed, 0,
            "leaders elected after a flight ended that did not see it end"
        );
        Ok(())
    }
}
