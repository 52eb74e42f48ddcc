//! The server-side ordering the near cache (`backend/near/barrier.rs`) relies on, checked against a
//! real `redis-server` through redis-rs 1.x: on a RESP3 connection with `CLIENT TRACKING`,
//! the invalidation push for a key changed by another connection's write that has returned
//! reaches the connection's push sender before the reply to a `PING` sent afterwards. So the
//! reply to one `PING` proves that every invalidation returned before it was sent has been
//! received (redis-rs hands a push to the sender in its driver, before it completes the
//! next reply: `aio/multiplexed_connection.rs`, `send_result`).
//!
//! Many tasks race writes, reads and barriers on many keys, in default tracking mode and in
//! `BCAST` mode with a prefix. Without the `PING`, the same check misses pushes: the count is
//! printed, to show what the barrier is for (it is not asserted: a miss there depends on
//! timing).

#[path = "support/redis_server.rs"]
mod redis_server;

use redis::{AsyncCommands, AsyncConnectionConfig, PushInfo, PushKind, Value};
use redis_server::RedisServer;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Keys each task writes, and tasks.
const KEYS: u64 = 150;
const TASKS: u64 = 16;

/// The keys whose invalidation push the tracking connection received and no check has
/// taken yet.
#[derive(Default)]
struct Received(Mutex<HashSet<Vec<u8>>>);

impl Received {
    fn record(&self, push: PushInfo) {
        if push.kind != PushKind::Invalidate {
            return;
        }
        let Ok(mut seen) = self.0.lock() else { return };
        for value in push.data {
            if let Value::Array(keys) = value {
                for key in keys {
                    if let Value::BulkString(key) = key {
                        seen.insert(key);
                    }
                }
            }
        }
    }

    fn take(&self, key: &str) -> bool {
        self.0
            .lock()
            .map(|mut seen| seen.remove(key.as_bytes()))
            .unwrap_or(false)
    }
}

/// Runs the race with tracking enabled by `tracking` (the arguments after `CLIENT TRACKING
/// ON`); returns (checks, misses with the barrier, misses without it).
async fn race(server: &RedisServer, tracking: &[&str]) -> Result<(u64, u64, u64)> {
    let received = Arc::new(Received::default());
    let sink = Arc::clone(&received);
    let config = AsyncConnectionConfig::new().set_push_sender(move |push: PushInfo| {
        sink.record(push);
        Ok::<(), ()>(())
    });
    let resp3 = redis::Client::open(format!("{}?protocol=resp3", server.url()))?;
    let mut tracked = resp3
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut on = redis::cmd("CLIENT");
    on.arg("TRACKING").arg("ON").arg(tracking);
    let () = on.query_async(&mut tracked).await?;
    let writer = redis::Client::open(server.url())?
        .get_multiplexed_async_connection()
        .await?;

    let checks = Arc::new(AtomicU64::new(0));
    let missed = Arc::new(AtomicU64::new(0));
    let missed_unfenced = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (mut tracked, mut writer) = (tracked.clone(), writer.clone());
        let received = Arc::clone(&received);
        let (checks, missed, missed_unfenced) = (
            Arc::clone(&checks),
            Arc::clone(&missed),
            Arc::clone(&missed_unfenced),
        );
        tasks.push(tokio::spawn(async move {
            for k in 0..KEYS {
                let key = format!("ns:{t}:{k}");
                // Read on the tracking connection (the key does not exist yet, so in `BCAST`
                // mode too the only push for it is the write's below): tracked from here on.
                let _: Option<i64> = tracked.get(&key).await?;
                let () = writer.set(&key, 1).await?;
                // The write has returned. Half the checks look at once, half after a barrier.
                if k % 2 == 0 {
                    if !received.take(&key) {
                        missed_unfenced.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                let pong: String = redis::cmd("PING").query_async(&mut tracked).await?;
                assert_eq!(pong, "PONG");
                checks.fetch_add(1, Ordering::Relaxed);
                if !received.take(&key) {
                    missed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), redis::RedisError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((
        checks.load(Ordering::Relaxed),
        missed.load(Ordering::Relaxed),
        missed_unfenced.load(Ordering::Relaxed),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_push_arrives_before_the_reply_to_a_later_ping() -> Result {
    let server = RedisServer::start();
    for tracking in [&[][..], &["BCAST", "PREFIX", "ns:"][..]] {
        let (checks, missed, unfenced) = race(&server, tracking).await?;
        println!(
            "tracking ON {tracking:?}: {checks} checks after a PING, {missed} pushes missing; \
             {unfenced} missing without the PING"
        );
        assert_eq!(checks, TASKS * KEYS / 2);
        assert_eq!(missed, 0, "a push arrived after the reply to a later PING");
    }
    Ok(())
}
