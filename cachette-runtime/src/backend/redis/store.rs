//! The Redis backend as a [`Store`]: each operation of the contract is one of the commands
//! of `commands.rs`, `locks.rs` or `admin.rs`; the epoch key is the store's base key.

use super::RedisBackend;
use super::replies::stats_from_info;
use crate::backend::contract::{BackendStats, Found, Seen, Store};
use crate::error::Result;
use std::time::Duration;

impl Store for RedisBackend {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn base_keys(&self) -> &[String] {
        std::slice::from_ref(&self.epoch_key)
    }

    async fn lookup(&self, key: &str, tag_keys: &[String]) -> Result<Found> {
        Ok(self.fetch(Some(key), tag_keys).await?.into())
    }

    async fn versions(&self, tag_keys: &[String]) -> Result<Vec<Option<String>>> {
        Ok(self.fetch(None, tag_keys).await?.versions)
    }

    async fn ensure_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<Vec<Option<String>>> {
        RedisBackend::ensure_tags(self, tag_keys, ttl).await
    }

    async fn bump_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<()> {
        RedisBackend::bump_tags(self, tag_keys, ttl).await
    }

    async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        _keep_decoded: bool,
        expect: Option<&Seen>,
    ) -> Result<bool> {
        RedisBackend::store(self, key, bytes, ttl, expect).await
    }

    async fn delete(&self, key: &str, fence_ttl: Duration) -> Result<bool> {
        RedisBackend::delete(self, key, fence_ttl).await
    }

    async fn delete_matching(&self, pattern: &str, fence: bool) -> Result<u64> {
        RedisBackend::delete_matching(self, pattern, fence).await
    }

    async fn try_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        RedisBackend::try_lock(self, lock_key, token, ttl).await
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
        RedisBackend::release_lock(self, lock_key, token).await
    }

    async fn extend_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        RedisBackend::extend_lock(self, lock_key, token, ttl).await
    }

    fn round_trips(&self) -> u64 {
        RedisBackend::round_trips(self)
    }

    fn times_round_trips(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<()> {
        RedisBackend::ping(self).await
    }

    fn breaker_open(&self) -> bool {
        RedisBackend::breaker_open(self)
    }

    fn location(&self) -> Option<&str> {
        Some(self.redacted_url())
    }

    async fn backend_stats(&self) -> Result<BackendStats> {
        let (info, dbsize) = self.info().await?;
        Ok(stats_from_info("redis", &info, dbsize))
    }

    async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
        RedisBackend::keys(self, pattern, limit).await
    }

    async fn inspect(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>> {
        RedisBackend::inspect(self, key).await
    }

    async fn clear(&self, namespace: &str) -> Result<u64> {
        // No pattern fence needed: the epoch goes with the internal keys, which makes any
        // entry stored under it invalid.
        let entries = RedisBackend::delete_matching(self, &format!("{namespace}:*"), false).await?;
        let internal =
            RedisBackend::delete_matching(self, &format!("{namespace}#*"), false).await?;
        Ok(entries.saturating_add(internal))
    }
}
