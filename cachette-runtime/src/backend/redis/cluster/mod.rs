//! The Redis Cluster store: the same contract as the single-server store, on a cluster of
//! primaries (each with replicas), through cachette's own routing over redis-rs's connections
//! (`router.rs`), not redis-rs's cluster client, which reconnects and follows failovers
//! silently: the store must know which server process gave each reply.
//!
//! # Keys and slots
//!
//! Keys never carry a hash tag from user values (braces are escaped), so an entry and each of
//! its tag keys are in slots of their own, usually on different primaries. A lookup reads the
//! entry, its tag versions and its slot's pattern count as one `MGET` per slot, pipelined per
//! primary and sent to the primaries in parallel: one round trip of latency. Lookups sent while
//! others are in flight are batched as on one server (`backend/batch.rs`), then split by slot.
//! Every write is grouped the same way. The pattern count is kept per slot
//! (`namespace#patterns{t}`, `{t}` a hash tag landing in the slot: `slots.rs`), beside the
//! entries it fences, so the compare-and-set of a fill reads it atomically; a pattern
//! invalidation moves the count of every slot.
//!
//! # Identities instead of the epoch
//!
//! A primary can lose acknowledged writes: a failover to a replica that had not received
//! them, a restart from an older snapshot. Each connection learns, when made, the identity of
//! the server process it reached: a hash of its `run_id` (new at every start) and its
//! `master_replid` (new at every promotion); a connection never outlives the process it
//! reached. Then:
//! - an entry is stored prefixed by `#` and the identity of the primary it is written to
//!   (tombstones too); read under another identity, it is not the entry (its bytes are kept
//!   as they are, an undecodable miss that the next fill's compare-and-set replaces);
//! - a tag version is read as `identity/version`: the identity of the primary that answered.
//!
//! So after a failover or a restart of a primary, every entry it holds and every entry whose
//! tags it holds is invalid: what the single server's epoch key does, per primary. The store
//! has no base key. A node that answers `MOVED`, `ASK` or `READONLY` has its connections
//! forgotten, so that a primary demoted and promoted again is met under its new identity.

mod commands;
mod router;
mod slots;
mod store;
mod topology;

use self::topology::{Topology, UrlTemplate};
use super::super::batch::Batcher;
use crate::breaker::Breaker;
use crate::config::Config;
use crate::error::{Error, Result, redact_url};
use crate::stats::LogLimiter;
use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

pub(crate) struct ClusterStore {
    /// The seeds' addresses (`host:port`), asked for the topology when no known primary answers.
    seeds: Vec<String>,
    /// The first seed's URL: every node's URL is made from it.
    template: UrlTemplate,
    topology: ArcSwapOption<Topology>,
    /// When the topology was last read; held while it is read.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
    /// `namespace#patterns`, followed by a slot's hash tag: that slot's pattern count.
    patterns_prefix: String,
    /// `WAIT` for this many replicas, at most this long, after each invalidation.
    wait_replicas: Option<(usize, Duration)>,
    op_timeout: Duration,
    round_trips: AtomicU64,
    location: String,
    breaker: Arc<Breaker>,
    batcher: Arc<Batcher>,
    log_oom: LogLimiter,
}

impl std::fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStore")
            .field("seeds", &self.location)
            .field("op_timeout", &self.op_timeout)
            .finish()
    }
}

impl ClusterStore {
    /// Parses the seed URLs (`rediss://` trusting `root_cert` if given); with `config`'s
    /// timeout, breaker, namespace and replicas to wait for. Does not connect.
    pub(crate) fn new(
        urls: &[String],
        root_cert: Option<Vec<u8>>,
        config: &Config,
    ) -> Result<Self> {
        let location = urls
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(",");
        let invalid = |url: &str, reason: String| Error::InvalidUrl {
            url: redact_url(url),
            reason,
        };
        let Some(first) = urls.first() else {
            return Err(Error::Config(
                "a Redis Cluster needs at least one seed URL".to_owned(),
            ));
        };
        let (template, _) =
            UrlTemplate::parse(first, root_cert.clone()).map_err(|r| invalid(first, r))?;
        let mut seeds = Vec::with_capacity(urls.len());
        for url in urls {
            let (_, addr) =
                UrlTemplate::parse(url, root_cert.clone()).map_err(|r| invalid(url, r))?;
            seeds.push(addr);
        }
        Ok(ClusterStore {
            seeds,
            template,
            topology: ArcSwapOption::empty(),
            refreshed: tokio::sync::Mutex::new(None),
            patterns_prefix: format!("{}#patterns", config.namespace),
            wait_replicas: config.wait_replicas,
            op_timeout: config.op_timeout,
            round_trips: AtomicU64::new(0),
            location,
            breaker: Arc::new(Breaker::new(config.breaker, Arc::clone(&config.clock))),
            batcher: Arc::default(),
            log_oom: LogLimiter::default(),
        })
    }

    /// The pattern count of the slot of `key`, in that slot.
    fn patterns_key(&self, key: &str) -> String {
        format!(
            "{}{}",
            self.patterns_prefix,
            slots::slot_tag(slots::slot_of(key.as_bytes()))
        )
    }
}
