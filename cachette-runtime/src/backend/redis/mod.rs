//! The Redis backend: multiplexed connections used round-robin (`redis_connections`, one by
//! default), plus one for invalidations that `WAIT` for replicas (`wait_for_replicas`: `WAIT`
//! blocks its connection). Each is made by cachette, and re-made after a connection-level
//! failure or once the runtime that drove it has shut down. Every round trip is bounded by the
//! operation timeout; a `WAIT` by its own.
//!
//! # The epoch
//!
//! A connection is handed out only after it has made sure that the namespace's epoch key
//! (`namespace#epoch`, the store's base key, recorded in entries under
//! [`EPOCH_TAG`](crate::backend::EPOCH_TAG)) names the data set it talks to: the key holds the server's replication
//! id (`master_replid` of `INFO replication`) and a random part, and is replaced when it names
//! another (one script, `ENSURE_EPOCH`). Every lookup reads the epoch beside the tag versions
//! and every entry is stored with it, like a tag. A primary restarted (from an older snapshot
//! or not) gets a new replication id, and so does a replica promoted after a failover: the
//! first connection to it replaces the epoch, and every entry stored before, revived with its
//! old tag versions, is invalid. A replica reports its primary's id, so reads from a synced
//! replica keep working. A TCP connection never outlives the server process it reached, which
//! is why connections are made here and not re-made silently inside redis-rs.
//!
//! # Files
//!
//! This file holds the backend's state; each other file adds the methods of one job:
//! `connections.rs` (the pool, each connection's lifecycle, the epoch script, TLS),
//! `round_trip.rs` (the guarded round trip: breaker, timeout, timing), `commands.rs` (lookups,
//! tags, stores, deletes, pattern invalidation), `locks.rs` (fill locks), `admin.rs` (admin
//! queries) and `replies.rs` (reading replies, `PX` milliseconds) and `store.rs` (the backend as a
//! [`Store`](crate::backend::Store): the storage contract's operations, the epoch key as its base
//! key).

mod admin;
mod cluster;
mod commands;
pub(super) mod connections;
mod locks;
pub(super) mod replies;
pub(super) mod round_trip;
mod store;
mod target;

pub(crate) use self::cluster::ClusterStore;
use self::connections::Slot;
pub(crate) use self::target::Target;
use super::batch::Batcher;
use crate::breaker::Breaker;
use crate::config::Config;
use crate::stats::LogLimiter;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) struct RedisBackend {
    target: Target,
    /// A few multiplexed connections, used round-robin: under concurrency one socket (and
    /// the one task that drives it) is the bottleneck, several are not.
    /// A connection-level error empties every slot: after Redis went away, the next use of
    /// each slot connects afresh instead of discovering its stale socket one call at a time.
    conns: Box<[Slot]>,
    /// The connection of invalidations that `WAIT` for replicas: `WAIT` blocks the connection
    /// it is sent on (and counts that connection's writes), so it never shares one with hits.
    waiting: Slot,
    /// `namespace#epoch`.
    epoch_key: String,
    /// `namespace#patterns`: pattern invalidations so far (an `INCR` before each scan), read
    /// with every entry: see [`Seen::Absent`](super::Seen::Absent).
    patterns_key: String,
    /// `WAIT` for this many replicas, at most this long, after each invalidation.
    wait_replicas: Option<(usize, Duration)>,
    next: AtomicUsize,
    op_timeout: Duration,
    round_trips: AtomicU64,
    redacted_url: String,
    /// Shared with a near cache's tracking link, whose barriers pass it too.
    breaker: Arc<Breaker>,
    /// Lookups sent while others are in flight leave together, as one `MGET`.
    batcher: Arc<Batcher>,
    /// Warnings about tag invalidations done by `UNLINK` under `maxmemory`.
    log_oom: LogLimiter,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.redacted_url)
            .field("op_timeout", &self.op_timeout)
            .finish()
    }
}

impl RedisBackend {
    /// The store on `target`, with `config`'s timeout, breaker, connections, namespace and
    /// replicas to wait for; does not connect.
    pub(crate) fn new(target: Target, config: &Config) -> Self {
        RedisBackend {
            redacted_url: target.location(),
            target,
            conns: (0..config.redis_connections.max(1))
                .map(|_| Slot::default())
                .collect(),
            waiting: Slot::default(),
            epoch_key: format!("{}#epoch", config.namespace),
            patterns_key: format!("{}#patterns", config.namespace),
            wait_replicas: config.wait_replicas,
            next: AtomicUsize::new(0),
            op_timeout: config.op_timeout,
            round_trips: AtomicU64::new(0),
            breaker: Arc::new(Breaker::new(config.breaker, Arc::clone(&config.clock))),
            batcher: Arc::default(),
            log_oom: LogLimiter::default(),
        }
    }

    /// The Redis client of the one server (a near cache makes its tracking connection from
    /// it); `None` behind Sentinel, whose primary changes.
    pub(crate) fn client(&self) -> Option<&redis::Client> {
        self.target.fixed()
    }

    /// The circuit breaker (a near cache's barriers pass it).
    pub(crate) fn breaker(&self) -> Arc<Breaker> {
        Arc::clone(&self.breaker)
    }

    pub(crate) fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
}
