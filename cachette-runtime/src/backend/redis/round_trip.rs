//! The guarded round trip: every request to Redis goes through [`RedisBackend::guarded_on`]
//! (the circuit breaker, one connection of the pool, the round-trip counter, the operation
//! timeout, the timing histogram, and on failure the breaker's count and the pool's reset);
//! `PING` at start-up, which bypasses the breaker.

use super::RedisBackend;
use super::connections::Slot;
use crate::breaker::{Admit, Breaker};
use crate::error::{Error, Result};
use redis::aio::MultiplexedConnection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The kinds of round trip: the `op` label of `cachette_backend_seconds`, each the index of
/// its label in [`BACKEND_OPS`](crate::stats::names::BACKEND_OPS).
#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Fetch,
    CreateTags,
    Invalidate,
    Store,
    Delete,
    Scan,
    Lock,
    Unlock,
}

impl RedisBackend {
    /// Runs one pipeline (one round trip) within the operation timeout, timing it into the
    /// `cachette_backend_seconds{cache,backend="redis",op}` histogram (`cache`: see [`attributed`](crate::stats::attributed)).
    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        op: Op,
        pipe: &redis::Pipeline,
    ) -> Result<T> {
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
    pub(super) async fn guarded<T, F, Fut>(&self, op: Op, attempt: F) -> Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.guarded_on(None, op, self.op_timeout, attempt).await
    }

    /// [`guarded`](Self::guarded) on the connection of `slot` (`None`: the pool's), with
    /// another timeout (an invalidation that waits for replicas uses a connection of its own
    /// and gets their wait on top of the operation timeout).
    pub(super) async fn guarded_on<T, F, Fut>(
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
        let round_trip = async {
            let conn = match slot {
                Some(slot) => self.conn_of(slot).await?,
                None => self.conn().await?,
            };
            attempt(conn).await.map_err(Error::redis)
        };
        let r = guard(&self.breaker, &self.round_trips, op, timeout, round_trip).await;
        if let Err(e) = &r {
            self.drop_connections(e);
        }
        r
    }

    /// One `PING`, bypassing the breaker: start-up checks.
    pub(crate) async fn ping(&self) -> Result<()> {
        within_runtime()?;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let check = async {
            let mut conn = self.conn().await?;
            let mut pipe = redis::pipe();
            pipe.cmd("PING");
            pipe.query_async::<(String,)>(&mut conn)
                .await
                .map_err(Error::redis)
        };
        match tokio::time::timeout(self.op_timeout.max(Duration::from_secs(1)), check).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(as_auth(e, &self.redacted_url)),
            Err(_) => Err(Error::Timeout(self.op_timeout)),
        }
    }

    /// Whether the circuit breaker is open (calls skip Redis).
    pub(crate) fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    pub(super) async fn run_script(
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
}

/// What every round trip passes, on one server or on a cluster: the runtime check (before the
/// breaker is asked: a missing runtime says nothing about Redis), the circuit breaker, the
/// round-trip counter, `timeout`, the timing histogram (`op`), and the breaker's count.
pub(super) async fn guard<T>(
    breaker: &Breaker,
    round_trips: &AtomicU64,
    op: Op,
    timeout: Duration,
    round_trip: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    within_runtime()?;
    let admit = breaker.admit();
    if admit == Admit::No {
        return Err(Error::CircuitOpen);
    }
    round_trips.fetch_add(1, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let r = match tokio::time::timeout(timeout, round_trip).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(timeout)),
    };
    crate::stats::record_round_trip(op as usize, started.elapsed());
    breaker.record(&admit, &r);
    r
}

/// A refused password as [`Error::Auth`] (naming `location`, without credentials); any other
/// error as it is.
pub(super) fn as_auth(e: Error, location: &str) -> Error {
    match e {
        Error::Backend(b)
            if b.redis().kind() == redis::ErrorKind::AuthenticationFailed
                || b.to_string().contains("WRONGPASS")
                || b.to_string().contains("NOAUTH") =>
        {
            Error::Auth {
                url: location.to_owned(),
                reason: b.to_string(),
            }
        }
        e => e,
    }
}

/// The timeout of an invalidation that waits for replicas: its round trips, its own wait, and
/// the wait of one invalidation ahead of it on the waiting connection (a `WAIT` blocks the
/// connection it is sent on, so waiting invalidations queue).
pub(super) fn waiting_timeout(op_timeout: Duration, round_trips: u32, wait: Duration) -> Duration {
    op_timeout
        .saturating_mul(round_trips)
        .saturating_add(wait.saturating_mul(2))
}

/// The one check that a Redis round trip can run here: Tokio's timer (each round trip's
/// timeout) and the connection's driver task need a Tokio runtime. Outside one, a typed error
/// ([`Error::NoRuntime`]) instead of Tokio's panic. Both ways to Redis ([`guarded_on`] and
/// [`ping`]) start with it, so a connection is never made without one.
///
/// [`guarded_on`]: RedisBackend::guarded_on
/// [`ping`]: RedisBackend::ping
pub(super) fn within_runtime() -> Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::NoRuntime),
    }
}
