//! The embedded memory backend, on `moka`: entries bounded by a byte budget, each with its own
//! TTL; tag versions in a second, LRU-bounded map. A dropped tag version makes entries that
//! carry the tag invalid, exactly like an evicted tag key in Redis.

use super::Fetched;
use crate::keys::glob_match;
use moka::Expiry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone)]
struct MemEntry {
    bytes: bytes::Bytes,
    ttl: Duration,
    expires_at: Instant,
}

struct PerEntryTtl;

impl Expiry<String, MemEntry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, v: &MemEntry, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
    fn expire_after_update(
        &self,
        _: &String,
        v: &MemEntry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// Bookkeeping bytes counted per entry besides its key and value.
const ENTRY_OVERHEAD: usize = 64;

pub(crate) struct MemoryBackend {
    entries: moka::future::Cache<String, MemEntry>,
    evictions: Arc<AtomicU64>,
    tags: moka::sync::Cache<String, Arc<str>>,
    /// Versions are unique within the process: a counter, never reused.
    next_version: AtomicU64,
    pub locks: crate::lock::MemoryLocks,
}

impl MemoryBackend {
    pub fn new(max_bytes: u64, max_tags: u64) -> Self {
        let evictions = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&evictions);
        let entries = moka::future::Cache::builder()
            .eviction_listener(move |_k, _v, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &MemEntry| {
                u32::try_from(k.len() + v.bytes.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        let tags = moka::sync::Cache::builder()
            .max_capacity(max_tags)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .build();
        MemoryBackend {
            entries,
            evictions,
            tags,
            next_version: AtomicU64::new(1),
            locks: Default::default(),
        }
    }

    fn new_version(&self) -> Arc<str> {
        Arc::from(
            self.next_version
                .fetch_add(1, Ordering::Relaxed)
                .to_string(),
        )
    }

    pub async fn fetch(&self, key: Option<&str>, tag_keys: &[String]) -> Fetched {
        let entry = match key {
            Some(k) => self.entries.get(k).await.map(|e| e.bytes),
            None => None,
        };
        Fetched {
            entry,
            versions: tag_keys
                .iter()
                .map(|t| self.tags.get(t).map(|v| v.to_string()))
                .collect(),
        }
    }

    pub fn ensure_tags(&self, tag_keys: &[String]) -> Vec<Option<String>> {
        tag_keys
            .iter()
            .map(|t| {
                Some(
                    self.tags
                        .get_with_by_ref(t, || self.new_version())
                        .to_string(),
                )
            })
            .collect()
    }

    pub fn bump_tags(&self, tag_keys: &[String]) {
        for t in tag_keys {
            self.tags.insert(t.clone(), self.new_version());
        }
    }

    pub async fn store(&self, key: &str, bytes: Vec<u8>, ttl: Duration) {
        self.entries
            .insert(
                key.to_owned(),
                MemEntry {
                    bytes: bytes::Bytes::from(bytes),
                    ttl,
                    expires_at: Instant::now() + ttl,
                },
            )
            .await;
    }

    pub async fn delete(&self, key: &str) -> bool {
        self.entries.remove(key).await.is_some()
    }

    pub async fn delete_matching(&self, pattern: &str) -> u64 {
        let matching: Vec<Arc<String>> = self
            .entries
            .iter()
            .filter(|(k, _)| glob_match(pattern.as_bytes(), k.as_bytes()))
            .map(|(k, _)| k)
            .collect();
        let mut n = 0;
        for k in matching {
            if self.entries.remove(k.as_str()).await.is_some() {
                n += 1;
            }
        }
        n
    }

    /// Keys matching `pattern`, at most `limit`.
    pub fn keys(&self, pattern: &str, limit: usize) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(k, _)| glob_match(pattern.as_bytes(), k.as_bytes()))
            .take(limit)
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// The raw bytes at `key` and the time it has left.
    pub async fn inspect(&self, key: &str) -> Option<(Vec<u8>, Duration)> {
        self.entries.get(key).await.map(|e| {
            (
                e.bytes.to_vec(),
                e.expires_at.saturating_duration_since(Instant::now()),
            )
        })
    }

    /// Drops every entry and tag version.
    pub async fn clear(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        let n = self.entries.entry_count();
        self.entries.invalidate_all();
        self.tags.invalidate_all();
        self.entries.run_pending_tasks().await;
        n
    }

    /// Entries evicted for room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Test hook: drops a tag version as an eviction would.
    pub fn evict_tag(&self, tag_key: &str) {
        self.tags.invalidate(tag_key);
    }

    /// Test hook: writes raw bytes under a key, as a foreign writer would.
    pub async fn put_raw(&self, key: &str, bytes: Vec<u8>, ttl: Duration) {
        self.store(key, bytes, ttl).await;
    }

    /// Entry count and weighted size, after pending maintenance.
    pub async fn usage(&self) -> (u64, u64) {
        self.entries.run_pending_tasks().await;
        (self.entries.entry_count(), self.entries.weighted_size())
    }
}
