//! The disabled store: keeps nothing (every call computes), but its locks still exclude
//! within the process, so that switching caching off keeps mutual exclusion.

use super::contract::{BackendStats, Found, Seen, Store};
use super::memory::MemoryLocks;
use crate::error::Result;
use std::time::Duration;

/// A store that keeps nothing but a lock table.
#[derive(Default)]
pub(crate) struct DisabledStore {
    locks: MemoryLocks,
}

impl Store for DisabledStore {
    fn kind(&self) -> &'static str {
        "disabled"
    }

    fn stores(&self) -> bool {
        false
    }

    async fn lookup(&self, _key: &str, tag_keys: &[String]) -> Result<Found> {
        // It answers without waiting: a loop of lookups must still let other tasks run.
        tokio::task::coop::consume_budget().await;
        Ok(Found::nothing(tag_keys.len()))
    }

    async fn versions(&self, tag_keys: &[String]) -> Result<Vec<Option<String>>> {
        Ok(vec![None; tag_keys.len()])
    }

    async fn ensure_tags(&self, tag_keys: &[String], _: Duration) -> Result<Vec<Option<String>>> {
        Ok(vec![None; tag_keys.len()])
    }

    async fn bump_tags(&self, _: &[String], _: Duration) -> Result<()> {
        Ok(())
    }

    async fn store(
        &self,
        _: &str,
        _: Vec<u8>,
        _: Duration,
        _: bool,
        _: Option<&Seen>,
    ) -> Result<bool> {
        Ok(false)
    }

    async fn delete(&self, _: &str, _: Duration) -> Result<bool> {
        Ok(false)
    }

    async fn delete_matching(&self, _: &str, _: bool) -> Result<u64> {
        Ok(0)
    }

    async fn try_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        Ok(self.locks.try_lock(lock_key, token, ttl))
    }

    async fn release_lock(&self, lock_key: &str, token: &str) -> Result<bool> {
        Ok(self.locks.release(lock_key, token))
    }

    async fn extend_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        Ok(self.locks.extend(lock_key, token, ttl))
    }

    async fn backend_stats(&self) -> Result<BackendStats> {
        Ok(BackendStats {
            backend: "disabled",
            ..Default::default()
        })
    }

    async fn keys(&self, _: &str, _: usize) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn inspect(&self, _: &str) -> Result<Option<(Vec<u8>, Duration)>> {
        Ok(None)
    }

    async fn clear(&self, _: &str) -> Result<u64> {
        Ok(0)
    }
}
