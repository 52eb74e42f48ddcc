//! The embedded memory backend, on `moka`: entries bounded by a byte budget, each with its own
//! TTL; tag versions in a second, LRU-bounded map that takes its share of the same budget
//! ([`TAG_SHARE`]), each version weighed by its key, its version and a fixed overhead. A
//! dropped tag version makes entries that carry the tag invalid, exactly like an evicted tag
//! key in Redis.
//!
//! An entry keeps its envelope bytes and, parsed once when it is stored, its header (tags with
//! their versions, metadata, where the value lies in the bytes): a hit checks the tag versions
//! without parsing anything. An entry stored by a call whose value type is `Clone` (see
//! [`DecodedCopy`](crate::policy::DecodedCopy)) also has room for one decoded copy of its
//! value, filled by the first hit that decodes it; later hits of that type clone it instead of
//! decoding the bytes.

//!
//! Files: this one holds the store and its [`Store`] implementation; `locks.rs` the lock
//! table (shared with the disabled store). The parsed entry is `backend/parsed.rs`.

mod locks;

pub(crate) use self::locks::MemoryLocks;
use super::contract::{BackendStats, Found, Seen, Store, Stored, Versions};
use super::parsed::ParsedEntry;
use crate::codec;
use crate::error::Result;
use crate::keys::glob_match;
use moka::Expiry;
use moka::ops::compute::{CompResult, Op};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct PerEntryTtl;

thread_local! {
    /// The instant moka read the time at during this thread's last lookup (see
    /// [`MemoryBackend::lookup`]).
    static READ_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

impl Expiry<String, Arc<ParsedEntry>> for PerEntryTtl {
    /// Keeps the entry's expiry as it is, and notes the time of the read: moka reads the
    /// clock on every lookup, so the caller need not read it again.
    fn expire_after_read(
        &self,
        _: &String,
        _: &Arc<ParsedEntry>,
        read_at: Instant,
        duration_until_expiry: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        let _ = READ_AT.try_with(|r| r.set(Some(read_at)));
        duration_until_expiry
    }
    fn expire_after_create(
        &self,
        _: &String,
        v: &Arc<ParsedEntry>,
        _: Instant,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
    fn expire_after_update(
        &self,
        _: &String,
        v: &Arc<ParsedEntry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// The share of the memory store's byte budget that tag versions may use (a quarter; the
/// entries get the rest). The budget bounds the two together, whatever the workload: a
/// million distinct tags on a 1 MB store keep about 750 versions (the least recently used
/// are dropped, which invalidates their entries), not a million.
pub(crate) const TAG_SHARE: u64 = 4;

/// Bytes counted per tag version besides its key and version: what one version costs in
/// moka's map (its node, the LRU queue, the hash table, the `String` and `Arc<str>` headers),
/// about 320 B measured by `tests/memory_tag_budget.rs` with versions in an unbounded map
/// (~385 B of resident memory per version, key and version included).
const TAG_OVERHEAD: usize = 320;

/// What a tag version counts against the byte budget.
fn tag_weight(key: &str, version: &str) -> u32 {
    u32::try_from(
        key.len()
            .saturating_add(version.len())
            .saturating_add(TAG_OVERHEAD),
    )
    .unwrap_or(u32::MAX)
}

pub(crate) struct MemoryBackend {
    /// The byte budget, entries and tag versions together.
    max_bytes: u64,
    entries: moka::sync::Cache<String, Arc<ParsedEntry>>,
    evictions: Arc<AtomicU64>,
    tags: moka::sync::Cache<String, Arc<str>>,
    /// Versions are unique within the process: a counter, never reused.
    next_version: AtomicU64,
    /// Pattern invalidations so far, and the lock that orders them with the compare-and-set
    /// of absent keys: a fill checks the count and stores under a read lock, a pattern
    /// invalidation counts under the write lock before it scans, so its scan sees every
    /// entry stored under the old count.
    patterns: AtomicU64,
    pattern_fence: std::sync::RwLock<()>,
    pub locks: MemoryLocks,
}

impl MemoryBackend {
    /// A store of `max_bytes` in all: tag versions get at most `max_bytes / TAG_SHARE`, the
    /// entries the rest.
    pub(crate) fn new(max_bytes: u64) -> Self {
        let tag_bytes = max_bytes / TAG_SHARE;
        let entry_bytes = max_bytes.saturating_sub(tag_bytes);
        let evictions = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&evictions);
        let entries = moka::sync::Cache::builder()
            .eviction_listener(move |_k, _v, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .max_capacity(entry_bytes)
            .weigher(|k: &String, v: &Arc<ParsedEntry>| {
                u32::try_from(k.len().saturating_add(v.weight())).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        let tags = moka::sync::Cache::builder()
            .max_capacity(tag_bytes)
            .weigher(|k: &String, v: &Arc<str>| tag_weight(k, v))
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .build();
        MemoryBackend {
            max_bytes,
            entries,
            evictions,
            tags,
            next_version: AtomicU64::new(1),
            patterns: AtomicU64::new(0),
            pattern_fence: std::sync::RwLock::new(()),
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

    /// The current versions of `tag_keys`, copied.
    pub(crate) fn versions(&self, tag_keys: &[String]) -> Vec<Option<String>> {
        tag_keys
            .iter()
            .map(|t| self.tags.get(t).map(|v| v.to_string()))
            .collect()
    }

    /// The current version of `tag_key`.
    pub(crate) fn version(&self, tag_key: &str) -> Option<Arc<str>> {
        self.tags.get(tag_key)
    }

    pub(crate) fn ensure_tags(&self, tag_keys: &[String]) -> Vec<Option<String>> {
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

    pub(crate) fn bump_tags(&self, tag_keys: &[String]) {
        for t in tag_keys {
            self.tags.insert(t.clone(), self.new_version());
        }
    }

    /// The entry at `key`, the current version of each of `tag_keys` (shared, not copied),
    /// and, when moka told it, the monotonic instant at which it read the entry.
    pub(crate) fn lookup(&self, key: &str, tag_keys: &[String]) -> Found {
        let _ = READ_AT.try_with(|r| r.set(None));
        let patterns = self.patterns.load(Ordering::Acquire);
        let entry = self.entries.get(key);
        let read_at = match entry {
            Some(_) => READ_AT.try_with(Cell::take).ok().flatten(),
            None => None,
        };
        let versions = if tag_keys.is_empty() {
            Vec::new()
        } else {
            tag_keys.iter().map(|t| self.tags.get(t)).collect()
        };
        Found {
            entry: entry.map(Stored::Parsed),
            versions: Versions::Shared(versions),
            read_at,
            patterns,
        }
    }

    /// Stores `bytes` at `key` for `ttl`: unconditionally (`expect` is `None`), or only if the
    /// key still holds what `expect` saw; whether it was stored. With `keep_decoded`, the entry
    /// has room for a decoded copy of its value (and is weighed with it). Every write of an
    /// entry goes through moka's per-key compute lock, so a compare-and-set never interleaves
    /// with another write of the key.
    pub(crate) fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        keep_decoded: bool,
        expect: Option<&Seen>,
    ) -> bool {
        let entry = Arc::new(ParsedEntry::new(
            bytes::Bytes::from(bytes),
            ttl,
            keep_decoded,
        ));
        let _fence = self.pattern_fence.read().unwrap_or_else(|e| e.into_inner());
        let result = self.entries.entry_by_ref(key).and_compute_with(|current| {
            let current = current.map(|e| e.into_value());
            let unchanged = match expect {
                None => true,
                Some(Seen::Absent { patterns }) => {
                    current.is_none() && self.patterns.load(Ordering::Acquire) == *patterns
                }
                Some(Seen::Entry(seen)) => current.is_some_and(|c| Arc::ptr_eq(&c, seen)),
                Some(Seen::Bytes(_)) => false,
            };
            if unchanged { Op::Put(entry) } else { Op::Nop }
        });
        !matches!(result, CompResult::Unchanged(_) | CompResult::StillNone(_))
    }

    /// Replaces the entry at `key` by a tombstone living `fence_ttl`; whether an entry (not a
    /// tombstone) was there.
    pub(crate) fn delete(&self, key: &str, fence_ttl: Duration) -> bool {
        let tomb = Arc::new(ParsedEntry::new(
            bytes::Bytes::from(codec::tombstone()),
            fence_ttl,
            false,
        ));
        let mut existed = false;
        self.entries.entry_by_ref(key).and_compute_with(|current| {
            existed = current.is_some_and(|e| !e.value().is_tombstone());
            Op::Put(tomb)
        });
        existed
    }

    /// Removes every entry whose key matches `pattern` (each under its key's compute lock, so
    /// that a fill's compare-and-set cannot interleave); how many. With `fence`, first counts
    /// a pattern invalidation (see [`Seen::Absent`]).
    pub(crate) fn delete_matching(&self, pattern: &str, fence: bool) -> u64 {
        if fence {
            let _fence = self
                .pattern_fence
                .write()
                .unwrap_or_else(|e| e.into_inner());
            self.patterns.fetch_add(1, Ordering::AcqRel);
        }
        let matching: Vec<Arc<String>> = self
            .entries
            .iter()
            .filter(|(k, _)| glob_match(pattern.as_bytes(), k.as_bytes()))
            .map(|(k, _)| k)
            .collect();
        let mut n: u64 = 0;
        for k in matching {
            let removed = self
                .entries
                .entry_by_ref(k.as_str())
                .and_compute_with(|current| match current {
                    // Tombstones too: a fill that saw one must not store over this.
                    Some(_) => Op::Remove,
                    None => Op::Nop,
                });
            if matches!(&removed, CompResult::Removed(e) if !e.value().is_tombstone()) {
                n = n.saturating_add(1);
            }
        }
        n
    }

    /// Keys matching `pattern`, at most `limit`.
    pub(crate) fn keys(&self, pattern: &str, limit: usize) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(k, _)| glob_match(pattern.as_bytes(), k.as_bytes()))
            .take(limit)
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// The raw bytes at `key` and the time it has left.
    pub(crate) fn inspect(&self, key: &str) -> Option<(Vec<u8>, Duration)> {
        self.entries.get(key).map(|e| {
            (
                e.bytes.to_vec(),
                e.expires_at.saturating_duration_since(Instant::now()),
            )
        })
    }

    /// Drops every entry and tag version.
    pub(crate) fn clear(&self) -> u64 {
        self.entries.run_pending_tasks();
        let n = self.entries.entry_count();
        self.entries.invalidate_all();
        self.tags.invalidate_all();
        self.entries.run_pending_tasks();
        n
    }

    /// The byte budget, entries and tag versions together.
    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Entries evicted for room so far.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Test hook: drops a tag version as an eviction would.
    pub(crate) fn evict_tag(&self, tag_key: &str) {
        self.tags.invalidate(tag_key);
    }

    /// Test hook: writes raw bytes under a key, as a foreign writer would.
    pub(crate) fn put_raw(&self, key: &str, bytes: Vec<u8>, ttl: Duration) {
        self.store(key, bytes, ttl, false, None);
    }

    /// Tag versions kept and their weighted size, after pending maintenance.
    pub(crate) fn tag_usage(&self) -> (u64, u64) {
        self.tags.run_pending_tasks();
        (self.tags.entry_count(), self.tags.weighted_size())
    }

    /// Live entries and weighted size, after pending maintenance.
    ///
    /// Live: an entry a lookup could still find, i.e. not past its TTL (stale windows
    /// included) and not a tombstone (what a delete leaves: always a miss). moka's own count
    /// includes expired entries until its maintenance drops them, and tombstones, so the live
    /// ones are counted by walking the store (an admin operation, O(entries)). An entry written
    /// through ([`Cache::set`](crate::Cache::set)) and kept past its windows as a fence (at
    /// least the fence TTL) still counts until then: its windows are not recorded apart.
    pub(crate) fn usage(&self) -> (u64, u64) {
        self.entries.run_pending_tasks();
        let now = Instant::now();
        let live = self
            .entries
            .iter()
            .filter(|(_, e)| !e.is_tombstone() && e.expires_at > now)
            .count();
        (
            u64::try_from(live).unwrap_or(u64::MAX),
            self.entries.weighted_size(),
        )
    }
}

impl Store for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    #[inline]
    fn answers_now(&self) -> bool {
        true
    }

    #[inline]
    fn lookup_now(&self, key: &str, tag_keys: &[String]) -> Option<Found> {
        Some(self.lookup(key, tag_keys))
    }

    fn versions_now(&self, tag_keys: &[String]) -> Option<Versions> {
        Some(Versions::Shared(
            tag_keys.iter().map(|t| self.version(t)).collect(),
        ))
    }

    async fn lookup(&self, key: &str, tag_keys: &[String]) -> Result<Found> {
        // It answers without waiting: a loop of lookups must still let other tasks run.
        tokio::task::coop::consume_budget().await;
        Ok(MemoryBackend::lookup(self, key, tag_keys))
    }

    async fn versions(&self, tag_keys: &[String]) -> Result<Vec<Option<String>>> {
        Ok(MemoryBackend::versions(self, tag_keys))
    }

    async fn ensure_tags(&self, tag_keys: &[String], _: Duration) -> Result<Vec<Option<String>>> {
        Ok(MemoryBackend::ensure_tags(self, tag_keys))
    }

    async fn bump_tags(&self, tag_keys: &[String], _: Duration) -> Result<()> {
        MemoryBackend::bump_tags(self, tag_keys);
        Ok(())
    }

    async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        keep_decoded: bool,
        expect: Option<&Seen>,
    ) -> Result<bool> {
        Ok(MemoryBackend::store(
            self,
            key,
            bytes,
            ttl,
            keep_decoded,
            expect,
        ))
    }

    async fn delete(&self, key: &str, fence_ttl: Duration) -> Result<bool> {
        Ok(MemoryBackend::delete(self, key, fence_ttl))
    }

    async fn delete_matching(&self, pattern: &str, fence: bool) -> Result<u64> {
        Ok(MemoryBackend::delete_matching(self, pattern, fence))
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
        let (entries, bytes) = self.usage();
        let (_, tag_bytes) = self.tag_usage();
        Ok(BackendStats {
            backend: "memory",
            used_memory_bytes: Some(bytes.saturating_add(tag_bytes)),
            evicted_keys: Some(self.evictions()),
            keys: Some(entries),
            maxmemory_bytes: Some(self.max_bytes()),
            ..Default::default()
        })
    }

    async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
        Ok(MemoryBackend::keys(self, pattern, limit))
    }

    async fn inspect(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>> {
        Ok(MemoryBackend::inspect(self, key))
    }

    async fn clear(&self, _namespace: &str) -> Result<u64> {
        // One store per cache: everything in it is the namespace's.
        Ok(MemoryBackend::clear(self))
    }
}
