//! The cluster store as a [`Store`]: each operation of the contract is one of the commands of
//! `commands.rs`; what a single server answers for itself (statistics, `PING`) is asked of
//! every primary.

use super::ClusterStore;
use crate::backend::contract::{BackendStats, Found, Seen, Store};
use crate::backend::redis::round_trip::Op;
use crate::error::{Error, Result};
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
        let topology = self.topology().await.map_err(|e| self.auth(e))?;
        for node in &topology.nodes {
            self.on_primary::<String>(Op::Fetch, node, redis::cmd("PING"))
                .await
                .map_err(|e| self.auth(e))?;
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
        let mut stats = BackendStats {
            backend: "redis-cluster",
            ..BackendStats::default()
        };
        let add = |sum: &mut Option<u64>, v: Option<u64>| {
            if let Some(v) = v {
                *sum = Some(sum.unwrap_or(0).saturating_add(v));
            }
        };
        for node in &topology.nodes {
            let info: String = self.on_primary(Op::Scan, node, redis::cmd("INFO")).await?;
            let dbsize: u64 = self
                .on_primary(Op::Scan, node, redis::cmd("DBSIZE"))
                .await?;
            let text = |name: &str| {
                info.lines().find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix(':'))
                        .map(str::trim)
                })
            };
            let field = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
            add(&mut stats.used_memory_bytes, field("used_memory"));
            add(&mut stats.evicted_keys, field("evicted_keys"));
            add(&mut stats.keyspace_hits, field("keyspace_hits"));
            add(&mut stats.keyspace_misses, field("keyspace_misses"));
            add(&mut stats.connected_clients, field("connected_clients"));
            add(&mut stats.keys, Some(dbsize));
            add(&mut stats.maxmemory_bytes, field("maxmemory"));
            if stats.eviction_policy.is_none() {
                stats.eviction_policy = text("maxmemory_policy")
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned);
            }
        }
        Ok(stats)
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

    async fn clear(&self, namespace: &str) -> Result<u64> {
        let entries = self
            .delete_matching(&format!("{namespace}:*"), false)
            .await?;
        let internal = self
            .delete_matching(&format!("{namespace}#*"), false)
            .await?;
        Ok(entries.saturating_add(internal))
    }
}

impl ClusterStore {
    /// A wrong password as [`Error::Auth`].
    fn auth(&self, e: Error) -> Error {
        match e {
            Error::Backend(b)
                if b.redis().kind() == redis::ErrorKind::AuthenticationFailed
                    || b.to_string().contains("WRONGPASS")
                    || b.to_string().contains("NOAUTH") =>
            {
                Error::Auth {
                    url: self.location.clone(),
                    reason: b.to_string(),
                }
            }
            e => e,
        }
    }
}
