//! The pool and each connection's lifecycle: the slots, made on first use and emptied after a
//! connection-level failure; the runtime that drives a connection, watched so that a connection
//! whose runtime has shut down is re-made; the epoch script every new connection runs first
//! (see *The epoch* in the module above); the TLS client.

use super::RedisBackend;
use crate::backend::new_version;
use crate::error::{Error, Result};
use arc_swap::ArcSwapOption;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One connection of the pool: empty until first used, and after a connection-level failure.
#[derive(Default)]
pub(super) struct Slot {
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
    /// What the connection learned of its server when made (a cluster node's identity, see
    /// `cluster/`; 0 on a single node, whose epoch is a key).
    ident: u64,
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
    fn watched(conn: MultiplexedConnection, ident: u64) -> Conn {
        let runtime_gone = Arc::new(AtomicBool::new(false));
        let (watch, forgotten) = tokio::sync::oneshot::channel::<()>();
        let on_drop = SetOnDrop(Arc::clone(&runtime_gone));
        tokio::spawn(async move {
            let _on_drop = on_drop;
            let _ = forgotten.await;
        });
        Conn {
            conn,
            ident,
            runtime_gone,
            _watch: watch,
        }
    }

    /// The connection, if its runtime still runs.
    fn usable(&self) -> Option<(MultiplexedConnection, u64)> {
        if self.runtime_gone.load(Ordering::Acquire) {
            None
        } else {
            Some((self.conn.clone(), self.ident))
        }
    }
}

impl Slot {
    /// The slot's connection and what it learned of its server, made by `make` when the slot
    /// is empty (one maker at a time) or its runtime has shut down (see [`Conn`]).
    pub(super) async fn get_or_connect<F, Fut>(
        &self,
        make: F,
    ) -> Result<(MultiplexedConnection, u64)>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(MultiplexedConnection, u64)>>,
    {
        if let Some(c) = self.conn.load().as_ref().and_then(|c| c.usable()) {
            return Ok(c);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(c) = self.conn.load().as_ref().and_then(|c| c.usable()) {
            return Ok(c);
        }
        let (conn, ident) = make().await?;
        self.conn
            .store(Some(Arc::new(Conn::watched(conn.clone(), ident))));
        Ok((conn, ident))
    }

    /// Forgets the connection: the next use makes another.
    pub(super) fn forget(&self) {
        self.conn.store(None);
    }
}

/// How connections are configured: a connection timeout, no response timeout (every round
/// trip is bounded by `guarded`'s timeout; a second timer per request inside the connection
/// would only cost time).
pub(super) fn connection_config(op_timeout: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(op_timeout.max(Duration::from_millis(500))))
        .set_response_timeout(None)
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Makes the epoch key name the data set's current replication id (`master_replid`: new at
/// every start of a primary and at every promotion of a replica; a replica reports its
/// primary's); returns the epoch.
pub(super) const ENSURE_EPOCH: &str = "local run = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') \
     local cur = redis.call('GET', KEYS[1]) \
     if cur and string.sub(cur, 1, string.len(run) + 1) == run .. ':' then return cur end \
     local new = run .. ':' .. ARGV[1] \
     redis.call('SET', KEYS[1], new) \
     return new";

fn ensure_epoch_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(ENSURE_EPOCH))
}

impl RedisBackend {
    /// A connection of the pool, made on first use (inside the caller's Tokio runtime, which
    /// drives it), after a failure emptied its slot, and after the runtime that drove it shut
    /// down (see [`Conn`]). A new connection first makes sure the epoch names its server
    /// process (see the module's docs). Connection attempts are not retried inside a call, so
    /// a call against a dead server fails fast.
    pub(super) async fn conn(&self) -> Result<MultiplexedConnection> {
        let slot = &self.conns[self
            .next
            .fetch_add(1, Ordering::Relaxed)
            .checked_rem(self.conns.len())
            .unwrap_or(0)];
        self.conn_of(slot).await
    }

    /// The connection of `slot`, made as [`conn`](Self::conn) makes one.
    pub(super) async fn conn_of(&self, slot: &Slot) -> Result<MultiplexedConnection> {
        let (conn, _) = slot
            .get_or_connect(|| async {
                let mut conn = self
                    .target
                    .client()
                    .await?
                    .get_multiplexed_async_connection_with_config(&connection_config(
                        self.op_timeout,
                    ))
                    .await
                    .map_err(Error::redis)?;
                ensure_epoch_script()
                    .key(&self.epoch_key)
                    .arg(new_version())
                    .invoke_async::<String>(&mut conn)
                    .await
                    .map_err(Error::redis)?;
                Ok((conn, 0))
            })
            .await?;
        Ok(conn)
    }

    /// Forgets every connection after a connection-level failure, or after a `READONLY` reply:
    /// the server reached is a replica (a failover demoted it), and a new connection to the
    /// same address reaches the new primary when a failover-aware name or proxy stands in
    /// front. A reconnection is all that helps there, so `READONLY` does not open the breaker.
    pub(super) fn drop_connections(&self, e: &Error) {
        if connection_lost(e) {
            for slot in self.conns.iter().chain([&self.waiting]) {
                slot.forget();
            }
        }
    }
}

/// Whether `e` means the connection is no use any more: it failed or was refused, or the
/// server is a replica now (`READONLY`). Its connections are then forgotten (on a cluster, a
/// node's, and the topology read again).
pub(super) fn connection_lost(e: &Error) -> bool {
    match e {
        Error::Backend(e) => {
            let e = e.redis();
            e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
        }
        _ => false,
    }
}

#[cfg(feature = "tls")]
pub(super) fn tls_client(
    url: &str,
    root_cert: Option<Vec<u8>>,
) -> std::result::Result<redis::Client, String> {
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
pub(super) fn tls_client(
    _url: &str,
    _root_cert: Option<Vec<u8>>,
) -> std::result::Result<redis::Client, String> {
    Err("rediss:// needs cachette's `tls` feature".to_owned())
}
