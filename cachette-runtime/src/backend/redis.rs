//! The Redis backend: multiplexed connections used round-robin (`redis_connections`, one by
//! default), plus one for invalidations that `WAIT` for replicas (`wait_for_replicas`: `WAIT`
//! blocks its connection). Each is made by cachette, and re-made after a connection-level
//! failure or once the runtime that drove it has shut down. Every round trip is bounded by the
//! operation timeout; a `WAIT` by its own.
//!
//! # The epoch
//!
//! A connection is handed out only after it has made sure that the namespace's epoch key
//! (`namespace#epoch`) names the data set it talks to: the key holds the server's replication
//! id (`master_replid` of `INFO replication`) and a random part, and is replaced when it names
//! another (one script, `ENSURE_EPOCH`). Every lookup reads the epoch beside the tag versions
//! and every entry is stored with it, like a tag. A primary restarted (from an older snapshot
//! or not) gets a new replication id, and so does a replica promoted after a failover: the
//! first connection to it replaces the epoch, and every entry stored before, revived with its
//! old tag versions, is invalid. A replica reports its primary's id, so reads from a synced
//! replica keep working. A TCP connection never outlives the server process it reached, which
//! is why connections are made here and not re-made silently inside redis-rs.

use super::batch::{Batch, Batcher, Entry, Msg, Replies};
use super::{Fetched, Seen, new_version};
use crate::breaker::{Admit, Breaker};
use crate::config::MAX_DURATION;
use crate::error::{Error, Result, redact_url};
use crate::stats::LogLimiter;
use arc_swap::ArcSwapOption;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Keys removed per `UNLINK` and asked for per `SCAN` step in pattern invalidation.
const SCAN_BATCH: usize = 1000;

pub(crate) struct RedisBackend {
    client: redis::Client,
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
    /// with every entry: see [`Seen::Absent`].
    patterns_key: String,
    /// `WAIT` for this many replicas, at most this long, after each invalidation.
    wait_replicas: Option<(usize, Duration)>,
    next: AtomicUsize,
    op_timeout: Duration,
    round_trips: AtomicU64,
    redacted_url: String,
    breaker: Breaker,
    /// Lookups sent while others are in flight leave together, as one `MGET`.
    batcher: Arc<Batcher>,
    /// Warnings about tag invalidations done by `UNLINK` under `maxmemory`.
    log_oom: LogLimiter,
}

/// One connection of the pool: empty until first used, and after a connection-level failure.
#[derive(Default)]
struct Slot {
    conn: ArcSwapOption<Conn>,
    /// Held while the slot connects, so that concurrent first uses make one connection.
    connecting: tokio::sync::Mutex<()>,
}

/// A connection and the runtime that drives it. redis-rs spawns a connection's driver task on
/// the runtime current when it is made; when that runtime shuts down (a `#[tokio::test]` ends,
/// a `Runtime` is dropped) the driver is dropped with it and every request on the connection
/// fails. A cache lives longer than a runtime (a `static`, the process-wide default), so a
/// connection whose runtime is gone is re-made, on the caller's runtime, before it is used.
struct Conn {
    conn: MultiplexedConnection,
    /// Set when the runtime the connection was made on drops its tasks.
    runtime_gone: Arc<AtomicBool>,
    /// Ends the watch task when the connection is forgotten (so that re-made connections do
    /// not leave tasks behind).
    _watch: tokio::sync::oneshot::Sender<()>,
}

impl Conn {
    /// Wraps `conn`, made on the current runtime, and watches that runtime: a task spawned on
    /// it (beside the connection's driver) sets `runtime_gone` when it is dropped, which
    /// happens at the runtime's shutdown, or ends quietly when the connection is dropped.
    fn watched(conn: MultiplexedConnection) -> Conn {
        let runtime_gone = Arc::new(AtomicBool::new(false));
        let (watch, forgotten) = tokio::sync::oneshot::channel::<()>();
        let on_drop = SetOnDrop(Arc::clone(&runtime_gone));
        tokio::spawn(async move {
            let _on_drop = on_drop;
            let _ = forgotten.await;
        });
        Conn {
            conn,
            runtime_gone,
            _watch: watch,
        }
    }

    /// The connection, if its runtime still runs.
    fn usable(&self) -> Option<MultiplexedConnection> {
        if self.runtime_gone.load(Ordering::Acquire) {
            None
        } else {
            Some(self.conn.clone())
        }
    }
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The tag name entries carry their epoch under (reserved: a user tag of that name makes
/// entries never valid, never stale).
pub(crate) const EPOCH_TAG: &str = "#epoch";

/// Makes the epoch key name the data set's current replication id (`master_replid`: new at
/// every start of a primary and at every promotion of a replica; a replica reports its
/// primary's); returns the epoch.
const ENSURE_EPOCH: &str = "local run = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') \
     local cur = redis.call('GET', KEYS[1]) \
     if cur and string.sub(cur, 1, string.len(run) + 1) == run .. ':' then return cur end \
     local new = run .. ':' .. ARGV[1] \
     redis.call('SET', KEYS[1], new) \
     return new";

fn ensure_epoch_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(ENSURE_EPOCH))
}

/// The kinds of round trip: the `op` label of `cachette_backend_seconds`, each the index of
/// its label in [`BACKEND_OPS`](crate::timing::BACKEND_OPS).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Fetch,
    CreateTags,
    Invalidate,
    Store,
    Delete,
    Scan,
    Lock,
    Unlock,
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
    /// Parses the URL; does not connect.
    pub(crate) fn new(
        url: &str,
        root_cert: Option<Vec<u8>>,
        op_timeout: Duration,
        breaker: Breaker,
        connections: usize,
        namespace: &str,
        wait_replicas: Option<(usize, Duration)>,
    ) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: redact_url(url),
            reason,
        };
        let client = if url.starts_with("rediss://") {
            tls_client(url, root_cert).map_err(invalid)?
        } else {
            if root_cert.is_some() {
                return Err(invalid(
                    "a TLS root certificate was given for a URL that is not rediss://".to_owned(),
                ));
            }
            redis::Client::open(url).map_err(|e| invalid(e.to_string()))?
        };
        Ok(RedisBackend {
            client,
            conns: (0..connections.max(1)).map(|_| Slot::default()).collect(),
            waiting: Slot::default(),
            epoch_key: format!("{namespace}#epoch"),
            patterns_key: format!("{namespace}#patterns"),
            wait_replicas,
            next: AtomicUsize::new(0),
            op_timeout,
            round_trips: AtomicU64::new(0),
            redacted_url: redact_url(url),
            breaker,
            batcher: Arc::default(),
            log_oom: LogLimiter::default(),
        })
    }

    pub(crate) fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// A connection of the pool, made on first use (inside the caller's Tokio runtime, which
    /// drives it), after a failure emptied its slot, and after the runtime that drove it shut
    /// down (see [`Conn`]). A new connection first makes sure the epoch names its server
    /// process (see the module's docs). Connection attempts are not retried inside a call, so
    /// a call against a dead server fails fast.
    async fn conn(&self) -> Result<MultiplexedConnection> {
        let slot = &self.conns[self
            .next
            .fetch_add(1, Ordering::Relaxed)
            .checked_rem(self.conns.len())
            .unwrap_or(0)];
        self.conn_of(slot).await
    }

    /// The connection of `slot`, made as [`conn`](Self::conn) makes one.
    async fn conn_of(&self, slot: &Slot) -> Result<MultiplexedConnection> {
        if let Some(c) = slot.conn.load().as_ref().and_then(|c| c.usable()) {
            return Ok(c);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "cachette's Redis backend must be used from within a Tokio runtime".to_owned(),
            ));
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(c) = slot.conn.load().as_ref().and_then(|c| c.usable()) {
            return Ok(c);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.op_timeout.max(Duration::from_millis(500))))
            // Every round trip is bounded by `guarded`'s timeout; a second timer per request
            // inside the connection would only cost time.
            .set_response_timeout(None);
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        ensure_epoch_script()
            .key(&self.epoch_key)
            .arg(new_version())
            .invoke_async::<String>(&mut conn)
            .await?;
        slot.conn.store(Some(Arc::new(Conn::watched(conn.clone()))));
        Ok(conn)
    }

    /// Forgets every connection after a connection-level failure, or after a `READONLY` reply:
    /// the server reached is a replica (a failover demoted it), and a new connection to the
    /// same address reaches the new primary when a failover-aware name or proxy stands in
    /// front. A reconnection is all that helps there, so `READONLY` does not open the breaker.
    fn drop_connections(&self, e: &Error) {
        if let Error::Backend(e) = e
            && (e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly))
        {
            for slot in self.conns.iter().chain([&self.waiting]) {
                slot.conn.store(None);
            }
        }
    }

    /// Runs one pipeline (one round trip) within the operation timeout, timing it into the
    /// `cachette_backend_seconds{cache,backend="redis",op}` histogram (`cache`: see [`crate::timing`]).
    async fn run<T: redis::FromRedisValue>(&self, op: Op, pipe: &redis::Pipeline) -> Result<T> {
        self.guarded(op, |mut conn| async move {
            pipe.query_async::<T>(&mut conn).await
        })
        .await
    }

    /// Every round trip goes through here: the circuit breaker, one connection of the pool,
    /// the round-trip counter, the operation timeout, the timing histogram, and on failure the
    /// breaker's count and the pool's reset. Only an outage ([`Error::is_outage`]: a timeout,
    /// a connection that fails) counts as the breaker's failure; an error reply is an answer,
    /// which tells the breaker Redis is there.
    async fn guarded<T, F, Fut>(&self, op: Op, attempt: F) -> Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.guarded_on(None, op, self.op_timeout, attempt).await
    }

    /// [`guarded`](Self::guarded) on the connection of `slot` (`None`: the pool's), with
    /// another timeout (an invalidation that waits for replicas uses a connection of its own
    /// and gets their wait on top of the operation timeout).
    async fn guarded_on<T, F, Fut>(
        &self,
        slot: Option<&Slot>,
        op: Op,
        timeout: Duration,
        attempt: F,
    ) -> Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let admit = self.breaker.admit();
        if admit == Admit::No {
            return Err(Error::CircuitOpen);
        }
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let round_trip = async {
            let conn = match slot {
                Some(slot) => self.conn_of(slot).await?,
                None => self.conn().await?,
            };
            attempt(conn).await.map_err(Error::from)
        };
        let r = match tokio::time::timeout(timeout, round_trip).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(timeout)),
        };
        crate::timing::record_round_trip(op as usize, started.elapsed());
        match &r {
            Ok(_) => self.breaker.success(&admit),
            Err(e) => {
                if e.is_outage() {
                    self.breaker.failure(&admit);
                } else {
                    self.breaker.success(&admit);
                }
                self.drop_connections(e);
            }
        }
        r
    }

    /// One `PING`, bypassing the breaker: start-up checks.
    pub(crate) async fn ping(&self) -> Result<()> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let check = async {
            let mut conn = self.conn().await?;
            let mut pipe = redis::pipe();
            pipe.cmd("PING");
            pipe.query_async::<(String,)>(&mut conn)
                .await
                .map_err(Error::from)
        };
        match tokio::time::timeout(self.op_timeout.max(Duration::from_secs(1)), check).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(Error::Backend(e)))
                if e.kind() == redis::ErrorKind::AuthenticationFailed
                    || e.to_string().contains("WRONGPASS")
                    || e.to_string().contains("NOAUTH") =>
            {
                Err(Error::Auth {
                    url: self.redacted_url.clone(),
                    reason: e.to_string(),
                })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout(self.op_timeout)),
        }
    }

    /// Whether the circuit breaker is open (calls skip Redis).
    pub(crate) fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// The entry at `key` (if any) and the versions of `tag_keys`: one `MGET`, alone or
    /// batched with the lookups of other callers (see [`super::batch`]).
    pub(crate) async fn fetch(&self, key: Option<&str>, tag_keys: &[String]) -> Result<Fetched> {
        if key.is_none() && tag_keys.is_empty() {
            return Ok(Fetched::default());
        }
        // With an entry, the pattern count last (see `Seen::Absent`).
        let patterns = key.map(|_| self.patterns_key.as_str());
        let keys = || {
            key.into_iter()
                .chain(tag_keys.iter().map(String::as_str))
                .chain(patterns)
        };
        // Who sends this lookup: itself (with a place on the wire, and the queue it took), or
        // the caller whose batch carried it.
        let (slot, waiters) = match self.batcher.enter(|| keys().map(str::to_owned).collect()) {
            Entry::Lead(slot, waiters) => (Some(slot), waiters),
            Entry::Wait(rx) => match rx.await {
                Ok(Msg::Done(r)) => return Ok(fetched(key.is_some(), r?)),
                Ok(Msg::Lead(slot, waiters)) => (Some(slot), waiters),
                // The batch carrying this lookup was dropped before it answered: send alone.
                Err(_) => (None, Vec::new()),
            },
        };
        let replies = self.mget(keys(), waiters).await;
        drop(slot);
        Ok(fetched(key.is_some(), replies?))
    }

    /// One `MGET` of `keys` and of every waiter's keys; delivers the waiters' replies and
    /// returns those of `keys`.
    async fn mget<'a>(
        &self,
        keys: impl Iterator<Item = &'a str>,
        waiters: Vec<super::batch::Waiter>,
    ) -> Result<Replies> {
        let mut cmd = redis::cmd("MGET");
        let batch = Batch::new(keys, &waiters, |k| {
            cmd.arg(k);
        });
        let replies = self
            .guarded(Op::Fetch, |mut conn| async move {
                let v: redis::Value = cmd.query_async(&mut conn).await?;
                Ok(bulk_strings(v))
            })
            .await;
        batch.deliver(waiters, replies)
    }

    pub(crate) async fn ensure_tags(
        &self,
        tag_keys: &[String],
        ttl: Duration,
    ) -> Result<Vec<Option<String>>> {
        if tag_keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for t in tag_keys {
            if *t == self.epoch_key {
                // The epoch is made by the server process it names (see the module's docs).
                pipe.cmd("EVAL")
                    .arg(ENSURE_EPOCH)
                    .arg(1)
                    .arg(t)
                    .arg(new_version());
                continue;
            }
            pipe.cmd("SET")
                .arg(t)
                .arg(new_version())
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
            pipe.get(t);
        }
        let replies: Vec<Option<Vec<u8>>> = self.run(Op::CreateTags, &pipe).await?;
        Ok(replies.into_iter().map(version_from_bytes).collect())
    }

    /// Invalidates by deleting the tag keys: what `bump_tags` falls back to when Redis, full
    /// under `maxmemory` with `noeviction`, refuses the `SET` of new versions (`OOM`) but not
    /// `UNLINK`. A missing tag key matches no stored version, so every entry carrying the tag
    /// is invalid, as after a new version (and the version created later is random, so it
    /// revives none). One more round trip.
    async fn unlink_tags(&self, tag_keys: &[String], refused: &Error) -> Result<()> {
        metrics::counter!("cachette_tag_unlink_fallbacks_total").increment(1);
        if let Some(held) = self.log_oom.allow() {
            tracing::warn!(
                tags = tag_keys.len(), error = %refused, suppressed = held,
                "Redis is out of memory and refused new tag versions; invalidating by deleting the tag keys"
            );
        }
        let mut pipe = redis::pipe();
        for t in tag_keys {
            // One key per command, as the `SET`s: a cluster client can route each.
            pipe.cmd("UNLINK").arg(t).ignore();
        }
        self.run::<()>(Op::Invalidate, &pipe).await
    }

    pub(crate) async fn bump_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<()> {
        if tag_keys.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for t in tag_keys {
            pipe.cmd("SET")
                .arg(t)
                .arg(new_version())
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
        }
        let applied = match self.wait_replicas {
            None => self.run::<()>(Op::Invalidate, &pipe).await,
            // On the same connection, in the same round trip: WAIT counts the replicas that
            // have this connection's writes so far.
            Some((wanted, wait)) => {
                pipe.cmd("WAIT").arg(wanted).arg(millis(wait));
                self.guarded_on(
                    Some(&self.waiting),
                    Op::Invalidate,
                    waiting_timeout(self.op_timeout, 1, wait),
                    |mut conn| {
                        let pipe = &pipe;
                        async move { pipe.query_async::<(usize,)>(&mut conn).await }
                    },
                )
                .await
                .and_then(|(acked,)| replicated(wanted, acked))
            }
        };
        match applied {
            // Under OOM the UNLINKs are not waited for: they are reported as applied by the
            // primary only (see `unlink_tags`).
            Err(e) if is_oom(&e) => self.unlink_tags(tag_keys, &e).await,
            r => r,
        }
    }

    /// `SET key bytes PX ttl`, unconditionally (`expect` is `None`) or only if the key still
    /// holds what `expect` saw: `NX` when it was absent, a compare-and-set script otherwise.
    /// Whether it was stored.
    pub(crate) async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        expect: Option<&Seen>,
    ) -> Result<bool> {
        // The compare-and-set: the same bytes as the lookup saw, or still absent with no
        // pattern invalidation since the lookup.
        let (mode, expected) = match expect {
            Some(Seen::Bytes(old)) => ("same", old.to_vec()),
            Some(Seen::Absent { patterns }) => ("absent", patterns.to_string().into_bytes()),
            // A memory entry is never seen in Redis: nothing to compare with.
            Some(Seen::Memory(_)) => return Ok(false),
            None => return self.set(key, bytes, ttl).await.map(|()| true),
        };
        static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
        let script = SCRIPT.get_or_init(|| {
            redis::Script::new(
                "local ok \
                 if ARGV[3] == 'same' then ok = redis.call('GET', KEYS[1]) == ARGV[4] \
                 else ok = redis.call('EXISTS', KEYS[1]) == 0 and \
                   (redis.call('GET', KEYS[2]) or '0') == ARGV[4] end \
                 if ok then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
                 return 0",
            )
        });
        let ms = millis(ttl);
        let stored = self
            .guarded(Op::Store, |mut conn| async move {
                script
                    .key(key)
                    .key(&self.patterns_key)
                    .arg(bytes)
                    .arg(ms)
                    .arg(mode)
                    .arg(expected)
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await?;
        Ok(stored == 1)
    }

    /// `SET key bytes PX ttl`.
    async fn set(&self, key: &str, bytes: Vec<u8>, ttl: Duration) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(key)
            .arg(bytes)
            .arg("PX")
            .arg(millis(ttl))
            .ignore();
        self.run::<()>(Op::Store, &pipe).await
    }

    /// Replaces what is at `key` by a tombstone living `fence_ttl` (one script, one round
    /// trip); whether an entry (not a tombstone) was there.
    pub(crate) async fn delete(&self, key: &str, fence_ttl: Duration) -> Result<bool> {
        static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
        let script = SCRIPT.get_or_init(|| {
            redis::Script::new(
                "local old = redis.call('GET', KEYS[1]) \
                 redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) \
                 if old and string.sub(old, 1, string.len(ARGV[3])) ~= ARGV[3] then return 1 end \
                 return 0",
            )
        });
        let tomb = crate::codec::tombstone();
        let prefix = crate::codec::TOMBSTONE_PREFIX;
        let ms = millis(fence_ttl);
        let wait = self.wait_replicas;
        // The script, then WAIT: two round trips and the wait.
        let timeout = match wait {
            Some((_, w)) => waiting_timeout(self.op_timeout, 2, w),
            None => self.op_timeout,
        };
        // With a wait, on the connection of waiting invalidations (see `waiting`).
        let slot = wait.map(|_| &self.waiting);
        let (existed, acked) = self
            .guarded_on(slot, Op::Delete, timeout, |mut conn| async move {
                let existed = script
                    .key(key)
                    .arg(tomb)
                    .arg(ms)
                    .arg(prefix)
                    .invoke_async::<i64>(&mut conn)
                    .await?;
                let acked = match wait {
                    Some((wanted, wait)) => Some(
                        redis::cmd("WAIT")
                            .arg(wanted)
                            .arg(millis(wait))
                            .query_async::<usize>(&mut conn)
                            .await?,
                    ),
                    None => None,
                };
                Ok((existed, acked))
            })
            .await?;
        if let (Some((wanted, _)), Some(acked)) = (wait, acked) {
            replicated(wanted, acked)?;
        }
        Ok(existed == 1)
    }

    /// One `SCAN cursor MATCH pattern COUNT 1000` step: the next cursor and the keys found.
    async fn scan_step(&self, pattern: &str, cursor: u64) -> Result<(u64, Vec<Vec<u8>>)> {
        let mut pipe = redis::pipe();
        pipe.cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_BATCH);
        let (step,): ((u64, Vec<Vec<u8>>),) = self.run(Op::Scan, &pipe).await?;
        Ok(step)
    }

    /// `SCAN MATCH` + `UNLINK` in batches; never `KEYS`. Each step is one round trip with its
    /// own timeout, so a large keyspace takes several timeouts' worth in total.
    /// With `fence`, the pattern count is bumped first (see `Seen::Absent`).
    pub(crate) async fn delete_matching(&self, pattern: &str, fence: bool) -> Result<u64> {
        if fence {
            let mut pipe = redis::pipe();
            pipe.cmd("INCR").arg(&self.patterns_key).ignore();
            self.run::<()>(Op::Invalidate, &pipe).await?;
        }
        let mut cursor: u64 = 0;
        let mut deleted = 0u64;
        loop {
            let (next, keys) = self.scan_step(pattern, cursor).await?;
            for chunk in keys.chunks(SCAN_BATCH) {
                let mut pipe = redis::pipe();
                pipe.cmd("UNLINK").arg(chunk);
                let (n,): (u64,) = self.run(Op::Delete, &pipe).await?;
                deleted = deleted.saturating_add(n);
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

impl RedisBackend {
    async fn run_script(
        &self,
        op: Op,
        script: &redis::Script,
        key: &str,
        args: &[&str],
    ) -> Result<i64> {
        self.guarded(op, |mut conn| async move {
            let mut inv = script.key(key);
            for a in args {
                inv.arg(*a);
            }
            inv.invoke_async::<i64>(&mut conn).await
        })
        .await
    }

    /// `SET lock token NX PX ttl`: whether the lock was taken.
    pub(crate) async fn try_lock(
        &self,
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let mut pipe = redis::pipe();
        push_lock(&mut pipe, lock_key, token, ttl);
        let (ok,): (Option<String>,) = self.run(Op::Lock, &pipe).await?;
        Ok(ok.is_some())
    }

    /// The lookup of `fetch` and `try_lock` in one round trip.
    pub(crate) async fn fetch_and_lock(
        &self,
        key: &str,
        tag_keys: &[String],
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(Fetched, bool)> {
        let mut pipe = redis::pipe();
        push_lock(&mut pipe, lock_key, token, ttl);
        pipe.get(key);
        for t in tag_keys {
            pipe.get(t);
        }
        pipe.get(&self.patterns_key);
        let mut replies: Vec<redis::Value> = self.run(Op::Lock, &pipe).await?;
        let patterns = patterns_count(replies.pop());
        let locked = !matches!(replies.first(), None | Some(redis::Value::Nil));
        let mut bytes = replies.drain(..).skip(1).map(|v| match v {
            redis::Value::BulkString(b) => Some(b),
            _ => None,
        });
        let entry = bytes.next().flatten().map(bytes::Bytes::from);
        Ok((
            Fetched {
                entry,
                versions: bytes.map(version_from_bytes).collect(),
                patterns,
            },
            locked,
        ))
    }

    /// Compare-and-delete: releases the lock only if `token` still holds it.
    pub(crate) async fn release_lock(&self, lock_key: &str, token: &str) -> Result<bool> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let script = SCRIPT.get_or_init(|| {
            redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
            )
        });
        Ok(self
            .run_script(Op::Unlock, script, lock_key, &[token])
            .await?
            == 1)
    }

    /// Compare-and-expire: extends the lock only if `token` still holds it.
    pub(crate) async fn extend_lock(
        &self,
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let script = SCRIPT.get_or_init(|| {
            redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end",
            )
        });
        let ms = millis(ttl).to_string();
        Ok(self
            .run_script(Op::Lock, script, lock_key, &[token, &ms])
            .await?
            == 1)
    }
}

impl RedisBackend {
    /// `INFO` (all sections) and `DBSIZE`, in one round trip.
    pub(crate) async fn info(&self) -> Result<(String, u64)> {
        let mut pipe = redis::pipe();
        pipe.cmd("INFO").cmd("DBSIZE");
        self.run(Op::Scan, &pipe).await
    }

    /// Keys matching `pattern` (SCAN, never KEYS), at most `limit`.
    pub(crate) async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys) = self.scan_step(pattern, cursor).await?;
            for k in keys {
                if out.len() >= limit {
                    return Ok(out);
                }
                out.push(String::from_utf8_lossy(&k).into_owned());
            }
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    /// The raw bytes at `key` and its remaining TTL, in one round trip.
    pub(crate) async fn inspect(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>> {
        let mut pipe = redis::pipe();
        pipe.get(key).cmd("PTTL").arg(key);
        let (bytes, pttl): (Option<Vec<u8>>, i64) = self.run(Op::Fetch, &pipe).await?;
        Ok(bytes.map(|b| {
            let left = u64::try_from(pttl).unwrap_or(0);
            (b, Duration::from_millis(left))
        }))
    }
}

#[cfg(feature = "tls")]
fn tls_client(url: &str, root_cert: Option<Vec<u8>>) -> std::result::Result<redis::Client, String> {
    // rustls needs a process-wide crypto provider; another part of the program may have
    // installed one already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert,
    };
    redis::Client::build_with_tls(url, certs).map_err(|e| e.to_string())
}

#[cfg(not(feature = "tls"))]
fn tls_client(
    _url: &str,
    _root_cert: Option<Vec<u8>>,
) -> std::result::Result<redis::Client, String> {
    Err("rediss:// needs cachette's `tls` feature".to_owned())
}

/// The timeout of an invalidation that waits for replicas: its round trips, its own wait, and
/// the wait of one invalidation ahead of it on the waiting connection (a `WAIT` blocks the
/// connection it is sent on, so waiting invalidations queue).
fn waiting_timeout(op_timeout: Duration, round_trips: u32, wait: Duration) -> Duration {
    op_timeout
        .saturating_mul(round_trips)
        .saturating_add(wait.saturating_mul(2))
}

/// `Ok` when at least `wanted` replicas acknowledged.
fn replicated(wanted: usize, acked: usize) -> Result<()> {
    if acked >= wanted {
        Ok(())
    } else {
        Err(Error::NotReplicated { wanted, acked })
    }
}

/// `SET lock token NX PX ttl`: takes the lock only if nobody holds it.
fn push_lock(pipe: &mut redis::Pipeline, lock_key: &str, token: &str, ttl: Duration) {
    pipe.cmd("SET")
        .arg(lock_key)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(millis(ttl));
}

/// Whether Redis refused a command (or one of a pipeline) for `maxmemory`: `OOM command not
/// allowed when used memory > 'maxmemory'`.
fn is_oom(e: &Error) -> bool {
    match e {
        Error::Backend(e) => e
            .clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, e)| e.code() == "OOM")),
        _ => false,
    }
}

/// Milliseconds of a duration for `PX`, `PEXPIRE` and `WAIT`: at least 1, at most
/// [`MAX_DURATION`]. Redis takes a TTL `n` only while `now_ms + n` fits in an `i64`
/// ("invalid expire time"; 7.0 refuses `PX 9223372036854775807` and takes
/// `PX <i64::MAX - now_ms - 10000>`), and no `n` past `i64::MAX` ("value is not an integer or
/// out of range"); 100 years stays far below both for the next 292 million years.
fn millis(d: Duration) -> u64 {
    crate::clock::millis(d.min(MAX_DURATION)).max(1)
}

/// What a version read from bytes that are not kept as they are starts with (see
/// [`version_from_bytes`]).
const HEX_VERSION_PREFIX: &str = "\u{fffd}hex:";

/// A tag key's value as a version, one to one: distinct bytes give distinct versions, so an
/// entry filled under some bytes is invalid once the key holds others. UTF-8 is kept as it is;
/// bytes that are not UTF-8 (planted by another writer), or that begin with
/// [`HEX_VERSION_PREFIX`], are that prefix followed by their hex digits (so no kept UTF-8
/// version can be mistaken for an encoded one).
fn version_from_bytes<B: AsRef<[u8]>>(v: Option<B>) -> Option<String> {
    v.map(|b| {
        let b = b.as_ref();
        match std::str::from_utf8(b) {
            Ok(s) if !s.starts_with(HEX_VERSION_PREFIX) => s.to_owned(),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut s = String::with_capacity(
                    HEX_VERSION_PREFIX
                        .len()
                        .saturating_add(b.len().saturating_mul(2)),
                );
                s.push_str(HEX_VERSION_PREFIX);
                for byte in b {
                    s.push(char::from(HEX[usize::from(byte >> 4)]));
                    s.push(char::from(HEX[usize::from(byte & 0xf)]));
                }
                s
            }
        }
    })
}

/// A lookup's replies: the entry first when there is an entry key, then the tag versions.
fn fetched(has_entry: bool, mut replies: Replies) -> Fetched {
    // With an entry, the pattern count came last.
    let patterns = if has_entry {
        replies
            .pop()
            .flatten()
            .and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
            .unwrap_or(0)
    } else {
        0
    };
    let mut replies = replies.into_iter();
    let entry = if has_entry {
        replies.next().flatten()
    } else {
        None
    };
    // Not collected in place: that would shrink the replies' allocation (a reallocation) even
    // when no tag version is left.
    let mut versions = Vec::new();
    if replies.len() > 0 {
        versions.reserve_exact(replies.len());
        versions.extend(replies.map(version_from_bytes));
    }
    Fetched {
        entry,
        versions,
        patterns,
    }
}

/// The pattern count from a `GET` reply (missing: none yet).
fn patterns_count(reply: Option<redis::Value>) -> u64 {
    match reply {
        Some(redis::Value::BulkString(b)) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// The elements of an array reply (`MGET`) as bytes, without copying them; anything but a bulk
/// string (nil, or a type no cachette key holds) is `None`.
fn bulk_strings(v: redis::Value) -> Replies {
    match v {
        redis::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                redis::Value::BulkString(b) => Some(bytes::Bytes::from(b)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_distinct_bytes_are_distinct() {
        let v = |b: &[u8]| version_from_bytes(Some(b));
        assert_eq!(v(b"5f0c"), Some("5f0c".to_owned()));
        assert_eq!(v(b"\xff\x00"), Some("\u{fffd}hex:ff00".to_owned()));
        assert_ne!(v(b"\xff\xfeA"), v(b"\xff\xfeB"));
        // UTF-8 that looks like an encoded version is encoded too, so it differs from it.
        let looks_encoded = "\u{fffd}hex:ff00".as_bytes();
        assert_ne!(v(looks_encoded), v(b"\xff\x00"));
        assert_eq!(version_from_bytes::<&[u8]>(None), None);
    }

    #[test]
    fn millis_are_what_redis_takes() {
        assert_eq!(millis(Duration::ZERO), 1, "PX 0 is refused");
        assert_eq!(millis(Duration::from_micros(1_500)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2_000);
        let bound = MAX_DURATION.as_secs() * 1000;
        assert_eq!(millis(MAX_DURATION), bound);
        assert_eq!(millis(Duration::MAX), bound, "past the bound: the bound");
        assert!(bound < i64::MAX as u64 / 2, "far from what Redis refuses");
    }
}
