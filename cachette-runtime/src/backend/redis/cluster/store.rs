//! The cluster store as a [`Store`]: each operation of the contract is one of the commands of
//! `commands.rs`; what a single server answers for itself (statistics, `PING`) is asked of
//! every primary.

use super::ClusterStore;
use crate::backend::contract::{BackendStats, Found, Seen, Store};
use crate::backend::redis::replies::stats_from_info;
use crate::backend::redis::round_trip::{Op, as_auth};
use crate::error::Result;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Store for ClusterStore {
    fn kind(&self) -> &'static str {
        "redis-cluster"
    }

    async fn lookup(&self, key: &str, tag_keys: &[String]) -> Result<Found> {
        Ok(self.fetch(Some(key), tag_keys).await?.into())
    }

    async fn versions(&self, tag_keys: &[String]) -> Result<Vec<Option<String>>> {
        Ok(self.fetch(None, tag_keys).await?.versions)
    }

    async fn ensure_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<Vec<Option<String>>> {
        ClusterStore::ensure_tags(self, tag_keys, ttl).await
    }

    async fn bump_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<()> {
        ClusterStore::bump_tags(self, tag_keys, ttl).await
    }

    async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        _keep_decoded: bool,
        expect: Option<&Seen>,
    ) -> Result<bool> {
        ClusterStore::store(self, key, bytes, ttl, expect).await
    }

    async fn delete(&self, key: &str, fence_ttl: Duration) -> Result<bool> {
        ClusterStore::delete(self, key, fence_ttl).await
    }

    async fn delete_matching(&self, pattern: &str, fence: bool) -> Result<u64> {
        ClusterStore::delete_matching(self, pattern, fence).await
    }

    async fn try_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        ClusterStore::try_lock(self, lock_key, token, ttl).await
    }

    async fn lookup_and_lock(
        &self,
        key: &str,
        tag_keys: &[String],
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(Found, bool)> {
        let (fetched, locked) = self
            .fetch_and_lock(key, tag_keys, lock_key, token, ttl)
            .await?;
        Ok((fetched.into(), locked))
    }

    async fn release_lock(&self, lock_key: &str, token: &str) -> Result<bool> {
        ClusterStore::release_lock(self, lock_key, token).await
    }

    async fn extend_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        ClusterStore::extend_lock(self, lock_key, token, ttl).await
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    fn times_round_trips(&self) -> bool {
        true
    }

    /// `PING` on every primary (start-up checks): a wrong password is [`Error::Auth`].
    async fn ping(&self) -> Result<()> {
        let auth = |e| as_auth(e, &self.location);
        let topology = self.topology().await.map_err(auth)?;
        for node in &topology.nodes {
            self.on_primary::<String>(Op::Fetch, node, redis::cmd("PING"))
                .await
                .map_err(auth)?;
        }
        Ok(())
    }

    fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    fn location(&self) -> Option<&str> {
        Some(&self.location)
    }

    /// `INFO` and `DBSIZE` of every primary: counts summed, settings of the first.
    async fn backend_stats(&self) -> Result<BackendStats> {
        let topology = self.topology().await?;
        let mut total: Option<BackendStats> = None;
        for node in &topology.nodes {
            let info: String = self.on_primary(Op::Scan, node, redis::cmd("INFO")).await?;
            let dbsize: u64 = self
                .on_primary(Op::Scan, node, redis::cmd("DBSIZE"))
                .await?;
            let one = stats_from_info("redis-cluster", &info, dbsize);
            total = Some(match total {
                None => one,
                Some(t) => summed(t, one),
            });
        }
        Ok(total.unwrap_or(BackendStats {
            backend: "redis-cluster",
            ..BackendStats::default()
        }))
    }

    async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
        Ok(self
            .scan(pattern, limit)
            .await?
            .into_iter()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    async fn inspect(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>> {
        ClusterStore::inspect(self, key).await
    }

    /// The internal keys (tags, pattern counts, locks), then the entries behind a new pattern
    /// count in every slot: there is no epoch to go with the internal keys, so a fill that
    /// began before the clear and found its key absent is fenced by the counts moved after.
    async fn clear(&self, namespace: &str) -> Result<u64> {
        let internal = self
            .delete_matching(&format!("{namespace}#*"), false)
            .await?;
        let entries = self
            .delete_matching(&format!("{namespace}:*"), true)
            .await?;
        Ok(entries.saturating_add(internal))
    }
}

/// Two primaries' statistics as one: counts summed, settings of the first.
fn summed(a: BackendStats, b: BackendStats) -> BackendStats {
    let add = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) => Some(x.saturating_add(y)),
        (x, y) => x.or(y),
    };
    BackendStats {
        backend: a.backend,
        used_memory_bytes: add(a.used_memory_bytes, b.used_memory_bytes),
        evicted_keys: add(a.evicted_keys, b.evicted_keys),
        keyspace_hits: add(a.keyspace_hits, b.keyspace_hits),
        keyspace_misses: add(a.keyspace_misses, b.keyspace_misses),
        connected_clients: add(a.connected_clients, b.connected_clients),
        keys: add(a.keys, b.keys),
        maxmemory_bytes: add(a.maxmemory_bytes, b.maxmemory_bytes),
        eviction_policy: a.eviction_policy.or(b.eviction_policy),
    }
}
