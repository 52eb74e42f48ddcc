//! The tracking link of a near cache: one RESP3 connection to Redis with
//! `CLIENT TRACKING ON BCAST` over the namespace's prefixes, and what its pushes move.
//!
//! - **Marks.** Every key Redis reports changed (written, deleted, expired, evicted: Redis
//!   sends a push for each) moves on the mark of its slot (`Marks`: the key's hash picks one
//!   of [`MARK_SLOTS`] counters). A near entry records the marks of its key and of the keys
//!   it was checked against (its tags', the epoch) before the read that filled it was sent;
//!   it holds while they are unchanged. Two keys sharing a slot only cost a refill.
//! - **Flushes.** A push that flushes everything (`FLUSHALL`, `FLUSHDB`: an invalidation of
//!   no key), and the loss of the link (redis-rs's disconnection push, a failed `PING`),
//!   move on the flush count: every near entry recorded before is gone.
//! - **Links.** Each link made gets a serial. An entry records the link that was up when
//!   its marks were read, and holds only while that link is (pushes arrive in order on one
//!   connection, so nothing sent on it can have been missed; a new link may have missed what
//!   was sent between the two).
//!
//! Why `BCAST` and not default-mode tracking: the default mode tracks the keys *this
//! connection* read, so every near fill would have to read on the tracking connection, and
//! Redis keeps a table entry per key per client (measured: ~9.9 MB per 100,000 keys, against
//! 24 KB for `BCAST` with a prefix; `tests/tracking_order.rs`). `BCAST` sends every change
//! under the prefixes, fills included, to every process; a push costs a hash and an atomic
//! add here. It keeps no table of keys, so `tracking-table-max-keys` never applies.

use crate::breaker::{Admit, Breaker};
use crate::error::{Error, Result};
use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use smallvec::SmallVec;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Invalidation marks: one counter per slot.
pub(super) const MARK_SLOTS: usize = 1 << 14;

/// What the push callback and the near store share.
pub(super) struct Shared {
    marks: Box<[AtomicU64]>,
    /// Drawn when the store is made: which slot a key takes cannot be chosen by a client.
    seed: u64,
    /// Moved on by every flush (see the module's documentation).
    flushes: AtomicU64,
    /// Pushes received (one per `invalidate` message).
    pushes: AtomicU64,
    /// `cachette_near_pushes_total` and `cachette_near_flushes_total`, registered once.
    pushes_total: metrics::Counter,
    flushes_total: metrics::Counter,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            marks: (0..MARK_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            seed: rand::random(),
            flushes: AtomicU64::new(0),
            pushes: AtomicU64::new(0),
            pushes_total: metrics::counter!("cachette_near_pushes_total"),
            flushes_total: metrics::counter!("cachette_near_flushes_total"),
        }
    }

    fn slot_of(&self, key: &[u8]) -> u32 {
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(key, self.seed);
        // MARK_SLOTS is a power of two below 2^32.
        (h & (MARK_SLOTS as u64).saturating_sub(1)) as u32
    }

    /// Moves on the mark of `key`.
    pub(super) fn bump(&self, key: &[u8]) {
        if let Some(m) = self.marks.get(self.slot_of(key) as usize) {
            m.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn mark(&self, slot: u32) -> u64 {
        self.marks
            .get(slot as usize)
            .map_or(u64::MAX, |m| m.load(Ordering::SeqCst))
    }

    /// Drops every near entry recorded so far.
    pub(super) fn flush(&self) {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        self.flushes_total.increment(1);
    }

    pub(super) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }

    pub(super) fn pushes(&self) -> u64 {
        self.pushes.load(Ordering::Relaxed)
    }

    /// Applies one push of link `link` (called by the connection's driver, in order, before
    /// it completes any reply that follows the push).
    fn on_push(&self, link: &LinkState, push: PushInfo) {
        match push.kind {
            PushKind::Invalidate => {
                self.pushes.fetch_add(1, Ordering::Relaxed);
                self.pushes_total.increment(1);
                let mut any = false;
                for value in push.data {
                    if let Value::Array(keys) = value {
                        for key in keys {
                            match key {
                                Value::BulkString(k) => self.bump(&k),
                                Value::SimpleString(k) => self.bump(k.as_bytes()),
                                // Anything else is not a key: drop everything to be safe.
                                _ => self.flush(),
                            }
                            any = true;
                        }
                    }
                }
                // `FLUSHALL`/`FLUSHDB` send an invalidation of no key (a null).
                if !any {
                    self.flush();
                }
            }
            PushKind::Disconnection => {
                link.alive.store(false, Ordering::SeqCst);
                self.flush();
            }
            _ => {}
        }
    }
}

/// The marks a near entry was filled under: the link, the flush count, and each key's slot
/// with its mark.
pub(super) struct Snapshot {
    link: u64,
    flushes: u64,
    marks: SmallVec<[(u32, u64); 6]>,
}

/// Whether a link's connection still stands (cleared by its disconnection push).
struct LinkState {
    alive: AtomicBool,
}

/// A tracking connection and its serial.
struct Link {
    conn: MultiplexedConnection,
    serial: u64,
    state: Arc<LinkState>,
}

/// The tracking link of one near store (see the module's documentation).
pub(super) struct Tracker {
    /// The Redis client, speaking RESP3 (pushes need it).
    client: redis::Client,
    /// `CLIENT TRACKING ON BCAST PREFIX ...` arguments.
    tracking: Vec<String>,
    op_timeout: Duration,
    /// The Redis store's circuit breaker: a barrier's `PING` is a round trip like any other.
    breaker: Arc<Breaker>,
    pub(super) shared: Arc<Shared>,
    link: ArcSwapOption<Link>,
    serials: AtomicU64,
}

impl Tracker {
    /// A tracker for the keys under `prefixes` on the server of `client` (not connected).
    pub(super) fn new(
        client: &redis::Client,
        breaker: Arc<Breaker>,
        prefixes: &[String],
        op_timeout: Duration,
    ) -> Result<Tracker> {
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client =
            redis::Client::open(info.set_redis_settings(settings)).map_err(Error::redis)?;
        let mut tracking: Vec<String> = ["TRACKING", "ON", "BCAST"].map(String::from).to_vec();
        for p in prefixes {
            tracking.push("PREFIX".to_owned());
            tracking.push(p.clone());
        }
        Ok(Tracker {
            client,
            tracking,
            op_timeout,
            breaker,
            shared: Arc::new(Shared::new()),
            link: ArcSwapOption::empty(),
            serials: AtomicU64::new(0),
        })
    }

    /// The serial of the link that is up now, if one is.
    fn live_link(&self) -> Option<u64> {
        self.link
            .load()
            .as_ref()
            .filter(|l| l.state.alive.load(Ordering::SeqCst))
            .map(|l| l.serial)
    }

    /// The marks of `keys` now, under the live link (`None`: no link is up, so nothing read
    /// now may be kept).
    pub(super) fn snapshot<'k>(&self, keys: impl Iterator<Item = &'k str>) -> Option<Snapshot> {
        // The flush count before the link: a flush that drops the link moves it first.
        let flushes = self.shared.flushes();
        let link = self.live_link()?;
        let marks = keys
            .map(|k| {
                let slot = self.shared.slot_of(k.as_bytes());
                (slot, self.shared.mark(slot))
            })
            .collect();
        Some(Snapshot {
            link,
            flushes,
            marks,
        })
    }

    /// Whether an entry filled under `snap` still holds, after a barrier on link `link`
    /// completed (or, in bounded mode, with the live link).
    pub(super) fn holds(&self, snap: &Snapshot, link: u64) -> bool {
        snap.link == link
            && self.shared.flushes() == snap.flushes
            && snap
                .marks
                .iter()
                .all(|&(slot, mark)| self.shared.mark(slot) == mark)
    }

    /// Whether `snap` holds with the link that is up now (bounded mode).
    pub(super) fn holds_now(&self, snap: &Snapshot) -> bool {
        self.live_link().is_some_and(|link| self.holds(snap, link))
    }

    /// One `PING` on the tracking link (made first if none is up), within the operation
    /// timeout; the serial of the link that answered. On failure the link is dropped and
    /// the near entries with it.
    pub(super) async fn ping(&self, timeout: Duration) -> Result<u64> {
        let admit = self.breaker.admit();
        if admit == Admit::No {
            return Err(Error::CircuitOpen);
        }
        let attempt = async {
            let (mut conn, serial) = self.link().await?;
            redis::cmd("PING")
                .query_async::<Value>(&mut conn)
                .await
                .map_err(Error::redis)?;
            Ok(serial)
        };
        let r = match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(timeout)),
        };
        self.breaker.record(&admit, &r);
        if r.is_err() {
            self.drop_link();
        }
        r
    }

    /// Forgets the link (and flushes: what it would have told is lost).
    pub(super) fn drop_link(&self) {
        if let Some(l) = self.link.swap(None) {
            l.state.alive.store(false, Ordering::SeqCst);
        }
        self.shared.flush();
    }

    /// The live link, or a new one: a RESP3 connection whose pushes go to
    /// [`Shared::on_push`], with tracking on.
    async fn link(&self) -> Result<(MultiplexedConnection, u64)> {
        if let Some(l) = self.link.load().as_ref()
            && l.state.alive.load(Ordering::SeqCst)
        {
            return Ok((l.conn.clone(), l.serial));
        }
        let state = Arc::new(LinkState {
            alive: AtomicBool::new(true),
        });
        let (shared, pushed) = (Arc::clone(&self.shared), Arc::clone(&state));
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.op_timeout.max(Duration::from_millis(500))))
            .set_response_timeout(None)
            .set_push_sender(move |push: PushInfo| {
                shared.on_push(&pushed, push);
                Ok::<(), std::convert::Infallible>(())
            });
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(Error::redis)?;
        let mut on = redis::cmd("CLIENT");
        for a in &self.tracking {
            on.arg(a);
        }
        on.query_async::<()>(&mut conn)
            .await
            .map_err(Error::redis)?;
        let serial = self
            .serials
            .fetch_add(1, Ordering::SeqCst)
            .saturating_add(1);
        self.link.store(Some(Arc::new(Link {
            conn: conn.clone(),
            serial,
            state,
        })));
        Ok((conn, serial))
    }
}
