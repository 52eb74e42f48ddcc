//! The barrier: proof that every invalidation that returned before a read began has reached
//! this process.
//!
//! Redis writes the invalidation push of a key to a tracking connection's output while the
//! command that changed the key runs, before that command's reply (and in `BCAST` mode before
//! the replies of the same event-loop turn are sent). So once the writer's invalidation has
//! returned, the push is ahead of anything the tracking connection is sent afterwards, and the
//! reply to a `PING` sent on it after a read began comes after every such push; redis-rs hands
//! pushes to the callback in order, before it completes later replies
//! (`tests/tracking_order.rs` checks both against a real server).
//!
//! Pings are coalesced: at most one is in flight; every read that arrives meanwhile waits for
//! the next one, which is sent when the one in flight returns. Pings are numbered; a read
//! needs the first ping *taken* after it arrived (`sent + 1`, read under the lock that takes
//! pings), and a ping is written to the socket only after it is taken.
//!
//! Reads hold no timer of their own (one per read cost ~15% of a near hit at 64 tasks): a
//! ping is given what is left of the operation timeout of the first read waiting for it, so
//! that no read waits longer than one operation timeout, and its result (`Outcome`) says
//! whether it timed out.

use super::tracking::Tracker;
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What came of a ping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The link that answered.
    Answered(u64),
    Failed,
    /// Out of the time of the first read waiting for it.
    TimedOut,
    /// Its sender was dropped before it returned: the reads waiting for it ask again.
    Abandoned,
}

/// The outcome of ping number `seq`.
#[derive(Clone, Copy)]
struct Done {
    seq: u64,
    outcome: Outcome,
}

/// Pings in flight at once, at most (the rule: one; two measured slower at 64
/// tasks, BENCHMARKS.md).
const IN_FLIGHT: u32 = 1;

#[derive(Default)]
struct Pings {
    /// Pings taken so far (the last one's number).
    sent: u64,
    /// The highest ping number a read waits for.
    wanted: u64,
    /// Senders of pings at work (each has one in flight, or is about to take one).
    drivers: u32,
    /// When the first read waiting for the next ping arrived: that ping's deadline is one
    /// operation timeout later.
    first_wait: Option<Instant>,
}

impl Pings {
    /// Counts in one more sender of pings if fewer than [`IN_FLIGHT`] are at work; whether
    /// it was.
    fn claim_sender(&mut self) -> bool {
        let free = self.drivers < IN_FLIGHT;
        if free {
            self.drivers = self.drivers.saturating_add(1);
        }
        free
    }

    /// Takes ping `sent + 1`; its deadline.
    fn take_next(&mut self, timeout: Duration, now: Instant) -> (u64, Instant) {
        self.sent = self.sent.saturating_add(1);
        let since = self.first_wait.take().unwrap_or(now).min(now);
        (self.sent, crate::clock::instant_after(since, timeout))
    }
}

/// Coalesced pings on a tracking link (see the module's documentation).
pub(super) struct Barrier {
    pings: Mutex<Pings>,
    done: watch::Sender<Done>,
    /// The operation timeout: no read waits longer.
    timeout: Duration,
    /// Microseconds since `base` at which the last ping that succeeded was taken, plus one
    /// (0: none yet): bounded reads are served while it is recent enough.
    last_ok: AtomicU64,
    base: Instant,
    /// Reads that waited for a ping.
    pub(super) waits: AtomicU64,
    /// `cachette_near_barrier_seconds`, registered once (as the breaker's metrics are).
    waited: metrics::Histogram,
}

impl Barrier {
    pub(super) fn new(timeout: Duration) -> Barrier {
        Barrier {
            pings: Mutex::new(Pings::default()),
            done: watch::Sender::new(Done {
                seq: 0,
                outcome: Outcome::Failed,
            }),
            timeout,
            last_ok: AtomicU64::new(0),
            base: Instant::now(),
            waits: AtomicU64::new(0),
            waited: metrics::histogram!("cachette_near_barrier_seconds"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pings> {
        self.pings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a ping sent after this call began to return; the link that answered it.
    /// Fails if it failed, or after one operation timeout. When no ping is in flight, the
    /// caller sends one itself (no task to wake on the way).
    pub(super) async fn pass(self: &Arc<Self>, tracker: &Arc<Tracker>) -> Result<u64> {
        let arrived = Instant::now();
        self.waits.fetch_add(1, Ordering::Relaxed);
        let outcome = self.wait(tracker, arrived).await;
        self.waited.record(arrived.elapsed());
        match outcome {
            Outcome::Answered(link) => Ok(link),
            Outcome::TimedOut => Err(Error::Timeout(self.timeout)),
            Outcome::Failed | Outcome::Abandoned => Err(Error::NearBarrier),
        }
    }

    /// [`pass`](Self::pass)'s wait. A ping abandoned by its sender is asked for again (any
    /// ping taken later was taken after this call began too), within the same deadline.
    async fn wait(self: &Arc<Self>, tracker: &Arc<Tracker>, arrived: Instant) -> Outcome {
        let mut done = self.done.subscribe();
        loop {
            let (need, deadline) = self.register(arrived);
            if let Some(deadline) = deadline {
                let driver = Driving {
                    barrier: Arc::clone(self),
                    tracker: Arc::clone(tracker),
                    finished: false,
                };
                return driver.once(need, deadline).await.outcome;
            }
            let outcome = match done.wait_for(|d| d.seq >= need).await {
                Ok(d) => d.outcome,
                Err(_) => return Outcome::Failed,
            };
            if outcome != Outcome::Abandoned {
                return outcome;
            }
        }
    }

    /// Asks for a ping taken after now, without waiting for it (a task sends it).
    pub(super) fn request(self: &Arc<Self>, tracker: &Arc<Tracker>) {
        let start = {
            let mut p = self.lock();
            p.wanted = p.wanted.max(p.sent.saturating_add(1));
            p.claim_sender()
        };
        if start {
            Driving::spawn(Arc::clone(self), Arc::clone(tracker));
        }
    }

    /// Registers a read that arrived at `arrived` and needs a ping taken after now: the
    /// number it waits for and, if it is to send that ping itself (fewer than [`IN_FLIGHT`]
    /// are being sent), the ping's deadline.
    fn register(&self, arrived: Instant) -> (u64, Option<Instant>) {
        let mut p = self.lock();
        let need = p.sent.saturating_add(1);
        p.wanted = p.wanted.max(need);
        p.first_wait = Some(p.first_wait.map_or(arrived, |f| f.min(arrived)));
        if p.claim_sender() {
            let (seq, deadline) = p.take_next(self.timeout, Instant::now());
            return (seq, Some(deadline));
        }
        (need, None)
    }

    /// Pings taken so far.
    pub(super) fn pings(&self) -> u64 {
        self.lock().sent
    }

    /// Whether a ping that succeeded was taken less than `max` ago (bounded mode).
    pub(super) fn recent(&self, max: Duration) -> bool {
        let last = self.last_ok.load(Ordering::Acquire);
        if last == 0 {
            return false;
        }
        let now = u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX);
        let max = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        now.saturating_sub(last.saturating_sub(1)) < max
    }

    /// Takes the next ping if a read waits for one (otherwise the sender stops); with its
    /// deadline.
    fn take(&self) -> Option<(u64, Instant)> {
        let mut p = self.lock();
        if p.wanted <= p.sent {
            p.drivers = p.drivers.saturating_sub(1);
            return None;
        }
        Some(p.take_next(self.timeout, Instant::now()))
    }
}

/// The one sending pings while reads wait for them: a caller that found none in flight (one
/// ping), then a task while more are wanted. If it is dropped before it is done, the reads
/// it owed ask again (see its `Drop`).
struct Driving {
    barrier: Arc<Barrier>,
    tracker: Arc<Tracker>,
    finished: bool,
}

impl Driving {
    fn spawn(barrier: Arc<Barrier>, tracker: Arc<Tracker>) {
        let driver = Driving {
            barrier,
            tracker,
            finished: false,
        };
        tokio::spawn(driver.drive());
    }

    /// Sends ping `seq` (taken by the caller), then hands the rest to a task.
    async fn once(mut self, seq: u64, deadline: Instant) -> Done {
        let done = self.ping(seq, deadline).await;
        self.finished = true;
        let more = {
            let mut p = self.barrier.lock();
            let more = p.wanted > p.sent;
            if !more {
                p.drivers = p.drivers.saturating_sub(1);
            }
            more
        };
        if more {
            Driving::spawn(Arc::clone(&self.barrier), Arc::clone(&self.tracker));
        }
        done
    }

    async fn drive(mut self) {
        while let Some((seq, deadline)) = self.barrier.take() {
            self.ping(seq, deadline).await;
        }
        // Finished normally: `take` counted this sender out.
        self.finished = true;
    }

    /// Sends ping `seq` (unless its deadline has passed) and publishes its outcome.
    async fn ping(&self, seq: u64, deadline: Instant) -> Done {
        let barrier = &self.barrier;
        let taken = barrier.base.elapsed();
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = if left.is_zero() {
            Outcome::TimedOut
        } else {
            match self.tracker.ping(left).await {
                Ok(link) => {
                    let at = u64::try_from(taken.as_micros()).unwrap_or(u64::MAX);
                    barrier
                        .last_ok
                        .fetch_max(at.saturating_add(1), Ordering::AcqRel);
                    Outcome::Answered(link)
                }
                Err(Error::Timeout(_)) => Outcome::TimedOut,
                Err(_) => Outcome::Failed,
            }
        };
        let done = Done { seq, outcome };
        barrier.done.send_if_modified(|d| {
            let newer = d.seq < seq;
            if newer {
                *d = done;
            }
            newer
        });
        done
    }
}

impl Drop for Driving {
    /// Dropped before it was done (its caller gave up, its runtime shut down): the reads
    /// waiting for its ping ask again, and one of them sends the next (no task is spawned
    /// here: a runtime shutting down would drop it at once, and again).
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let seq = {
            let mut p = self.barrier.lock();
            p.drivers = p.drivers.saturating_sub(1);
            p.sent = p.wanted.max(p.sent);
            // The reads waiting ask again, each with its own arrival.
            p.first_wait = None;
            p.sent
        };
        self.barrier.done.send_replace(Done {
            seq,
            outcome: Outcome::Abandoned,
        });
    }
}
