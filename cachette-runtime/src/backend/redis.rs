//! The Redis backend: one multiplexed, self-reconnecting connection, every round trip bounded
//! by the operation timeout.

use super::batch::{Batch, Batcher, Entry, Msg, Replies};
use super::{Fetched, new_version};
use crate::breaker::{Admit, Breaker};
use crate::error::{Error, Result, redact_url};
use crate::stats::LogLimiter;
use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    conns: Box<[ArcSwapOption<ConnectionManager>]>,
    next: AtomicUsize,
    op_timeout: Duration,
    round_trips: AtomicU64,
    redacted_url: String,
    timers: OpTimers,
    breaker: Breaker,
    /// Lookups sent while others are in flight leave together, as one `MGET`.
    batcher: Arc<Batcher>,
    /// Warnings about tag invalidations done by `UNLINK` under `maxmemory`.
    log_oom: LogLimiter,
}

/// The kinds of round trip, as the `op` label of `cachette_backend_seconds`.
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

impl Op {
    const ALL: [Op; 8] = [
        Op::Fetch,
        Op::CreateTags,
        Op::Invalidate,
        Op::Store,
        Op::Delete,
        Op::Scan,
        Op::Lock,
        Op::Unlock,
    ];
    fn label(self) -> &'static str {
        match self {
            Op::Fetch => "fetch",
            Op::CreateTags => "create_tags",
            Op::Invalidate => "invalidate",
            Op::Store => "store",
            Op::Delete => "delete",
            Op::Scan => "scan",
            Op::Lock => "lock",
            Op::Unlock => "unlock",
        }
    }
}

/// Histogram handles, registered once on first use (not per call).
#[derive(Default)]
struct OpTimers(OnceLock<[metrics::Histogram; 8]>);

impl OpTimers {
    fn record(&self, op: Op, elapsed: Duration) {
        let timers = self.0.get_or_init(|| {
            Op::ALL.map(|op| {
                metrics::histogram!("cachette_backend_seconds", "backend" => "redis", "op" => op.label())
            })
        });
        timers[op as usize].record(elapsed.as_secs_f64());
    }
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
    pub fn new(
        url: &str,
        root_cert: Option<Vec<u8>>,
        op_timeout: Duration,
        breaker: Breaker,
        connections: usize,
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
            conns: (0..connections.max(1))
                .map(|_| ArcSwapOption::empty())
                .collect(),
            next: AtomicUsize::new(0),
            op_timeout,
            round_trips: AtomicU64::new(0),
            redacted_url: redact_url(url),
            timers: OpTimers::default(),
            breaker,
            batcher: Arc::default(),
            log_oom: LogLimiter::default(),
        })
    }

    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The connection manager, created on first use (inside the caller's Tokio runtime). It
    /// connects lazily and reconnects by itself after a failure; connection attempts are not
    /// retried inside a call, so a call against a dead server fails fast.
    fn conn(&self) -> Result<ConnectionManager> {
        let slot = &self.conns[self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len()];
        if let Some(c) = slot.load().as_ref() {
            return Ok(ConnectionManager::clone(c));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "cachette's Redis backend must be used from within a Tokio runtime".to_owned(),
            ));
        }
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(self.op_timeout.max(Duration::from_millis(500))))
            // Every round trip is bounded by `guarded`'s timeout; a second timer per request
            // inside the connection would only cost time.
            .set_response_timeout(None);
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        let manager = Arc::new(manager);
        // Another task may have filled the slot meanwhile: use whichever won.
        let prev =
            slot.compare_and_swap(&None::<Arc<ConnectionManager>>, Some(Arc::clone(&manager)));
        Ok(match prev.as_ref() {
            Some(existing) => ConnectionManager::clone(existing),
            None => ConnectionManager::clone(&manager),
        })
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
            for slot in self.conns.iter() {
                slot.store(None);
            }
        }
    }

    /// Runs one pipeline (one round trip) within the operation timeout, timing it into the
    /// `cachette_backend_seconds{backend="redis",op}` histogram.
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
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let admit = self.breaker.admit();
        if admit == Admit::No {
            return Err(Error::CircuitOpen);
        }
        let conn = self.conn()?;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let r = match tokio::time::timeout(self.op_timeout, attempt(conn)).await {
            Ok(r) => r.map_err(Error::from),
            Err(_) => Err(Error::Timeout(self.op_timeout)),
        };
        self.timers.record(op, started.elapsed());
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
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn()?;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut pipe = redis::pipe();
        pipe.cmd("PING");
        match tokio::time::timeout(
            self.op_timeout.max(Duration::from_secs(1)),
            pipe.query_async::<(String,)>(&mut conn),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e))
                if e.kind() == redis::ErrorKind::AuthenticationFailed
                    || e.to_string().contains("WRONGPASS")
                    || e.to_string().contains("NOAUTH") =>
            {
                Err(Error::Auth {
                    url: self.redacted_url.clone(),
                    reason: e.to_string(),
                })
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(Error::Timeout(self.op_timeout)),
        }
    }

    /// Whether the circuit breaker is open (calls skip Redis).
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// The entry at `key` (if any) and the versions of `tag_keys`: one `MGET`, alone or
    /// batched with the lookups of other callers (see [`super::batch`]).
    pub async fn fetch(&self, key: Option<&str>, tag_keys: &[String]) -> Result<Fetched> {
        if key.is_none() && tag_keys.is_empty() {
            return Ok(Fetched::default());
        }
        let keys = || key.into_iter().chain(tag_keys.iter().map(String::as_str));
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

    pub async fn ensure_tags(
        &self,
        tag_keys: &[String],
        ttl: Duration,
    ) -> Result<Vec<Option<String>>> {
        if tag_keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for t in tag_keys {
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

    pub async fn bump_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<()> {
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
        match self.run::<()>(Op::Invalidate, &pipe).await {
            Err(e) if is_oom(&e) => self.unlink_tags(tag_keys, &e).await,
            r => r,
        }
    }

    pub async fn store(&self, key: &str, bytes: Vec<u8>, ttl: Duration) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(key)
            .arg(bytes)
            .arg("PX")
            .arg(millis(ttl))
            .ignore();
        self.run::<()>(Op::Store, &pipe).await
    }

    pub async fn delete(&self, key: &str) -> Result<bool> {
        let mut pipe = redis::pipe();
        pipe.cmd("UNLINK").arg(key);
        let (n,): (u64,) = self.run(Op::Delete, &pipe).await?;
        Ok(n > 0)
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
    pub async fn delete_matching(&self, pattern: &str) -> Result<u64> {
        let mut cursor: u64 = 0;
        let mut deleted = 0u64;
        loop {
            let (next, keys) = self.scan_step(pattern, cursor).await?;
            for chunk in keys.chunks(SCAN_BATCH) {
                let mut pipe = redis::pipe();
                pipe.cmd("UNLINK").arg(chunk);
                let (n,): (u64,) = self.run(Op::Delete, &pipe).await?;
                deleted += n;
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
    pub async fn try_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let mut pipe = redis::pipe();
        push_lock(&mut pipe, lock_key, token, ttl);
        let (ok,): (Option<String>,) = self.run(Op::Lock, &pipe).await?;
        Ok(ok.is_some())
    }

    /// The lookup of `fetch` and `try_lock` in one round trip.
    pub async fn fetch_and_lock(
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
        let mut replies: Vec<redis::Value> = self.run(Op::Lock, &pipe).await?;
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
            },
            locked,
        ))
    }

    /// Compare-and-delete: releases the lock only if `token` still holds it.
    pub async fn release_lock(&self, lock_key: &str, token: &str) -> Result<bool> {
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
    pub async fn extend_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
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
    pub async fn info(&self) -> Result<(String, u64)> {
        let mut pipe = redis::pipe();
        pipe.cmd("INFO").cmd("DBSIZE");
        self.run(Op::Scan, &pipe).await
    }

    /// Keys matching `pattern` (SCAN, never KEYS), at most `limit`.
    pub async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
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
    pub async fn inspect(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>> {
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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A tag key's value as a version. A value that is not UTF-8 (planted by someone else) is read
/// as a version no entry can carry, so entries under it are invalid.
fn version_from_bytes<B: AsRef<[u8]>>(v: Option<B>) -> Option<String> {
    v.map(|b| match std::str::from_utf8(b.as_ref()) {
        Ok(s) => s.to_owned(),
        Err(_) => "\u{fffd}invalid".to_owned(),
    })
}

/// A lookup's replies: the entry first when there is an entry key, then the tag versions.
fn fetched(has_entry: bool, replies: Replies) -> Fetched {
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
    Fetched { entry, versions }
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
