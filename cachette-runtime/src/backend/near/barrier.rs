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

use super::tracking::Tracker;
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The result of ping number `seq`: the link that answered, or `None` if it failed or was
/// `abandoned` (its sender was dropped before it returned: the reads waiting for it ask
/// again).
#[derive(Clone, Copy)]
struct Done {
    seq: u64,
    link: Option<u64>,
    abandoned: bool,
}

/// Pings in flight at once, at most (the rule: one).
const IN_FLIGHT: u32 = 1;

#[derive(Default)]
struct Pings {
    /// Pings taken so far (the last one's number).
    sent: u64,
    /// The highest ping number a read waits for.
    wanted: u64,
    /// Senders of pings at work (each has one in flight, or is about to take one).
    drivers: u32,
}

/// Coalesced pings on a tracking link (see the module's documentation).
pub(super) struct Barrier {
    pings: Mutex<Pings>,
    done: watch::Sender<Done>,
    /// Microseconds since `base` at which the last ping that succeeded was taken, plus one
    /// (0: none yet): bounded reads are served while it is recent enough.
    last_ok: AtomicU64,
    base: Instant,
    /// Pings sent, and reads that waited for one.
    pub(super) waits: AtomicU64,
}

impl Barrier {
    pub(super) fn new() -> Barrier {
        Barrier {
            pings: Mutex::new(Pings::default()),
            done: watch::Sender::new(Done {
                seq: 0,
                link: None,
                abandoned: false,
            }),
            last_ok: AtomicU64::new(0),
            base: Instant::now(),
            waits: AtomicU64::new(0),
        }
    }

    /// Waits for a ping sent after this call began to return; the link that answered it.
    /// Fails if it failed, or after `timeout`. When no ping is in flight, the caller sends
    /// one itself (no task to wake on the way).
    pub(super) async fn pass(
        self: &Arc<Self>,
        tracker: &Arc<Tracker>,
        timeout: Duration,
    ) -> Result<u64> {
        let started = Instant::now();
        self.waits.fetch_add(1, Ordering::Relaxed);
        let waited = tokio::time::timeout(timeout, self.wait(tracker)).await;
        metrics::histogram!("cachette_near_barrier_seconds").record(started.elapsed());
        match waited {
            Ok(link) => link.ok_or(Error::NearBarrier),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// [`pass`](Self::pass) without its timeout: the link that answered (`None`: the ping
    /// failed). A ping abandoned by its sender (dropped before it returned) is asked for
    /// again: any ping taken later was taken after this call began too.
    async fn wait(self: &Arc<Self>, tracker: &Arc<Tracker>) -> Option<u64> {
        let mut done = self.done.subscribe();
        loop {
            let (need, drive) = self.register(true);
            if drive {
                let driver = Driving {
                    barrier: Arc::clone(self),
                    tracker: Arc::clone(tracker),
                    finished: false,
                };
                return driver.once(need).await.link;
            }
            let d = match done.wait_for(|d| d.seq >= need).await {
                Ok(d) => *d,
                Err(_) => return None,
            };
            if !d.abandoned {
                return d.link;
            }
        }
    }

    /// Asks for a ping taken after now, without waiting for it (a task sends it).
    pub(super) fn request(self: &Arc<Self>, tracker: &Arc<Tracker>) {
        if let (_, true) = self.register(false) {
            Driving::spawn(Arc::clone(self), Arc::clone(tracker));
        }
    }

    /// Registers a read that needs a ping taken after now; the number it waits for, and
    /// whether it is to send pings (fewer than [`IN_FLIGHT`] are being sent; with `take`, it
    /// took the one it needs and sends it itself).
    fn register(&self, take: bool) -> (u64, bool) {
        let mut p = self.pings.lock().unwrap_or_else(PoisonError::into_inner);
        let need = p.sent.saturating_add(1);
        p.wanted = p.wanted.max(need);
        let drive = p.drivers < IN_FLIGHT;
        if drive {
            p.drivers = p.drivers.saturating_add(1);
            if take {
                p.sent = need;
            }
        }
        (need, drive)
    }

    /// Pings taken so far.
    pub(super) fn pings(&self) -> u64 {
        self.pings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sent
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

    /// Takes the next ping if a read waits for one (otherwise the sender stops).
    fn take(&self) -> Option<u64> {
        let mut p = self.pings.lock().unwrap_or_else(PoisonError::into_inner);
        if p.wanted <= p.sent {
            p.drivers = p.drivers.saturating_sub(1);
            return None;
        }
        p.sent = p.sent.saturating_add(1);
        Some(p.sent)
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
    async fn once(mut self, seq: u64) -> Done {
        let done = self.ping(seq).await;
        self.finished = true;
        let more = {
            let mut p = self
                .barrier
                .pings
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
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
        while let Some(seq) = self.barrier.take() {
            self.ping(seq).await;
        }
        // Finished normally: `take` counted this sender out.
        self.finished = true;
    }

    /// Sends ping `seq` and publishes its result.
    async fn ping(&self, seq: u64) -> Done {
        let barrier = &self.barrier;
        let taken = barrier.base.elapsed();
        let link = self.tracker.ping().await.ok();
        if link.is_some() {
            let at = u64::try_from(taken.as_micros()).unwrap_or(u64::MAX);
            barrier
                .last_ok
                .fetch_max(at.saturating_add(1), Ordering::AcqRel);
        }
        let done = Done {
            seq,
            link,
            abandoned: false,
        };
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
            let mut p = self
                .barrier
                .pings
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            p.drivers = p.drivers.saturating_sub(1);
            p.sent = p.wanted.max(p.sent);
            p.sent
        };
        self.barrier.done.send_replace(Done {
            seq,
            link: None,
            abandoned: true,
        });
    }
}
