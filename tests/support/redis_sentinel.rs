//! Test harness: a throw-away primary with one replica behind three Redis Sentinels, on free
//! loopback ports (`redis_server.rs` starts each process: no persistence, a watchdog).
//!
//! ```ignore
//! #[path = "support/redis_server.rs"]
//! mod redis_server;
//! #[path = "support/redis_sentinel.rs"]
//! mod redis_sentinel;
//! ```
//! The sentinels watch the primary as [`MASTER`] with a quorum of 2, call it down after
//! 500 ms without an answer, and fail over within a few seconds. Dropping a [`SentinelSetup`]
//! kills every process.
#![allow(dead_code)]

use super::redis_server::RedisServer;
use std::thread;
use std::time::{Duration, Instant};

/// The name the sentinels know the primary by.
pub const MASTER: &str = "m";
const TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

pub struct SentinelSetup {
    /// The data nodes (the primary first, as started).
    pub nodes: Vec<RedisServer>,
    pub sentinels: Vec<RedisServer>,
}

impl SentinelSetup {
    /// Starts the primary, its replica (waiting until it is in sync) and three sentinels
    /// (waiting until each knows the replica and the other sentinels).
    pub fn start() -> SentinelSetup {
        let primary = RedisServer::start();
        let port = primary.port().to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
        let setup = SentinelSetup {
            nodes: vec![primary, replica],
            sentinels: Vec::new(),
        };
        setup.wait("the replica's link up", || {
            let info: String = setup.nodes[1].cmd(&["INFO", "replication"]);
            info.contains("master_link_status:up")
        });
        let conf = format!(
            "sentinel monitor {MASTER} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {MASTER} 500\n\
             sentinel failover-timeout {MASTER} 3000\n\
             sentinel parallel-syncs {MASTER} 1"
        );
        let mut setup = setup;
        setup.sentinels = (0..3).map(|_| RedisServer::start_sentinel(&conf)).collect();
        setup.wait("the sentinels know the replica and each other", || {
            setup.sentinels.iter().all(|s| {
                let replicas: Vec<redis::Value> = s.cmd(&["SENTINEL", "REPLICAS", MASTER]);
                let others: Vec<redis::Value> = s.cmd(&["SENTINEL", "SENTINELS", MASTER]);
                replicas.len() == 1 && others.len() == 2
            })
        });
        setup
    }

    /// `redis://127.0.0.1:P` of each sentinel.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port()))
            .collect()
    }

    /// The primary's port as the first running sentinel names it.
    pub fn primary_port(&self) -> u16 {
        let sentinel = self
            .sentinels
            .iter()
            .find(|s| s.is_running())
            .expect("a running sentinel");
        let (_, port): (String, u16) =
            sentinel.cmd(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER]);
        port
    }

    /// The data node on `port`.
    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no data node on {port}"))
    }

    /// The primary's replica (the other data node).
    pub fn replica(&self) -> &RedisServer {
        let primary = self.primary_port();
        self.nodes
            .iter()
            .find(|n| n.port() != primary)
            .expect("a replica")
    }

    /// SIGKILL the primary; waits until the sentinels name the other node and it answers as
    /// a primary. Returns the time it took.
    pub fn kill_primary_and_wait(&mut self) -> Duration {
        let started = Instant::now();
        let old = self.kill_primary();
        self.wait_for_failover(old);
        started.elapsed()
    }

    /// SIGKILL the primary; returns its port.
    pub fn kill_primary(&mut self) -> u16 {
        let old = self.primary_port();
        self.nodes
            .iter_mut()
            .find(|n| n.port() == old)
            .expect("the primary")
            .kill();
        old
    }

    /// Waits until the sentinels name another node than the one on `old` and it answers as
    /// a primary.
    pub fn wait_for_failover(&self, old: u16) {
        self.wait("a failover", || {
            let now = self.primary_port();
            now != old && {
                let role: Vec<redis::Value> = self.node(now).cmd(&["ROLE"]);
                matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master")
            }
        });
    }

    fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < TIMEOUT,
                "{what}: not after {TIMEOUT:?}\n{}",
                self.sentinels
                    .iter()
                    .map(|s| s.log_tail())
                    .collect::<Vec<_>>()
                    .join("\n---\n")
            );
            thread::sleep(POLL);
        }
    }
}
