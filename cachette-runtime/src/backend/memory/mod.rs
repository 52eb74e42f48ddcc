//! The embedded memory backend: entries bounded by a byte budget, each with its own TTL, in a
//! [`ClockMap`] (`map.rs`: sharded, CLOCK eviction, expiry checked on read); tag versions in
//! a second one ([`TagVersions`], `tags.rs`) that takes its share of the same budget
//! ([`TAG_SHARE`]). A dropped tag version makes entries that carry the tag invalid, exactly
//! like an evicted tag key in Redis.
//!
//! An entry keeps its envelope bytes and, parsed once when it is stored, its header (tags with
//! their versions, metadata, where the value lies in the bytes): a hit checks the tag versions
//! without parsing anything. An entry stored by a call whose value type is `Clone` (see
//! [`DecodedCopy`](crate::policy::DecodedCopy)) also has room for one decoded copy of its
//! value, filled by the first hit that decodes it; later hits of that type clone it instead of
//! decoding the bytes.
//!
//! Files: this one holds the store and its [`Store`] implementation; `map.rs` the map;
//! `tags.rs` the tag versions; `locks.rs` the lock table (shared with the disabled store).
//! The parsed entry is `backend/parsed.rs`.

mod locks;
pub(crate) mod map;
mod tags;

pub(crate) use self::locks::MemoryLocks;
use self::map::{ClockMap, Op};
use self::tags::TagVersions;
use super::contract::{BackendStats, Found, Patterns, Seen, Store, Stored, Version, Versions};
use super::parsed::ParsedEntry;
use crate::codec;
use crate::error::Result;
use crate::keys::glob_match;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The share of the memory store's byte budget that tag versions may use (a quarter; the
/// entries get the rest). The budget bounds the two together, whatever the workload: a
/// million distinct tags on a 1 MB store keep a few thousand versions (those not read
/// lately are dropped, which invalidates their entries), not a million.
pub(crate) const TAG_SHARE: u64 = 4;

pub(crate) struct MemoryBackend {
    /// The byte budget, entries and tag versions together.
    max_bytes: u64,
    entries: ClockMap<Arc<ParsedEntry>>,
    tags: TagVersions,
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
        MemoryBackend {
            max_bytes,
            entries: ClockMap::new(entry_bytes),
            tags: TagVersions::new(tag_bytes),
            patterns: AtomicU64::new(0),
            pattern_fence: std::sync::RwLock::new(()),
            locks: Default::default(),
        }
    }

    /// The current versions of `tag_keys`, copied.
    pub(crate) fn versions(&self, tag_keys: &[String]) -> Vec<Option<String>> {
        self.tags.versions(tag_keys, Instant::now()).into_owned()
    }

    pub(crate) fn ensure_tags(&self, tag_keys: &[String]) -> Vec<Option<String>> {
        tag_keys
            .iter()
            .map(|t| Some(self.tags.ensure(t).as_str().to_owned()))
            .collect()
    }

    pub(crate) fn bump_tags(&self, tag_keys: &[String]) {
        for t in tag_keys {
            self.tags.bump(t);
        }
    }

    /// The entry at `key` live at `now`, the current version of each of `tag_keys` (copied
    /// inline), and `now` as the instant the entry was read at.
    #[inline]
    pub(crate) fn lookup<K: AsRef<str>>(&self, key: &str, tag_keys: &[K], now: Instant) -> Found {
        let patterns = Patterns::count(self.patterns.load(Ordering::Acquire));
        // Read before the entry and the versions (see `versions_for`).
        let generation = (!tag_keys.is_empty()).then(|| self.tags.generation());
        let entry = self.entries.get(key, now, Arc::clone);
        let (versions, verified) = match (&entry, generation) {
            (Some(entry), Some(generation)) => self.versions_for(entry, tag_keys, generation, now),
            // No tag asked for: verified if the entry carries none.
            (Some(entry), None) => (
                Versions::inline([]),
                entry.header().is_ok_and(|h| h.tags.is_empty()),
            ),
            (None, _) => (self.tags.versions(tag_keys, now), false),
        };
        let read_at = entry.as_ref().map(|_| now);
        Found {
            entry: entry.map(Stored::Parsed),
            versions,
            read_at,
            patterns,
            verified,
        }
    }

    /// The current versions of `tag_keys`, for a lookup that found `entry` after reading the
    /// versions' `generation`. When the entry carries exactly these tags, in this order (the
    /// memory store's tag keys are the tags), and was verified at this generation, they are
    /// the versions it was stored with: none changed or went since it was verified, and the
    /// table is not read (nor its shared locks written). Otherwise they are read, and the
    /// entry is verified at `generation` if they are all its own. With whether the entry is
    /// verified ([`Found::verified`]).
    #[inline]
    fn versions_for<K: AsRef<str>>(
        &self,
        entry: &ParsedEntry,
        tag_keys: &[K],
        generation: u64,
        now: Instant,
    ) -> (Versions, bool) {
        let Some(stored) = entry
            .header()
            .ok()
            .map(|h| &h.tags)
            .filter(|stored| stored.are(tag_keys))
        else {
            return (self.tags.versions(tag_keys, now), false);
        };
        if entry.verified() == generation {
            let own = Versions::inline(stored.versions().map(Version::of_text));
            return (own, true);
        }
        let versions = self.tags.versions(tag_keys, now);
        let verified = stored
            .iter()
            .enumerate()
            .all(|(i, (_, v))| versions.is(i, v));
        if verified {
            entry.verify(generation);
        }
        (versions, verified)
    }

    /// The weight of `entry` at `key`: what it costs in the map.
    pub(crate) fn weight(key: &str, entry: &ParsedEntry) -> u64 {
        u64::try_from(key.len().saturating_add(entry.weight())).unwrap_or(u64::MAX)
    }

    fn put(key: &str, entry: Arc<ParsedEntry>) -> Op<Arc<ParsedEntry>> {
        Op::Put {
            weight: Self::weight(key, &entry),
            expires_at: Some(entry.expires_at),
            value: entry,
        }
    }

    /// Stores `bytes` at `key` for `ttl`: unconditionally (`expect` is `None`), or only if the
    /// key still holds what `expect` saw; whether it was stored. With `keep_decoded`, the entry
    /// has room for a decoded copy of its value (and is weighed with it). Every write of an
    /// entry runs under its shard's write lock, so a compare-and-set never interleaves with
    /// another write of the key.
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
        self.entries.compute(key, Instant::now(), |current| {
            let unchanged = match expect {
                None => true,
                Some(Seen::Absent { patterns }) => {
                    current.is_none() && self.patterns.load(Ordering::Acquire) == patterns.count
                }
                Some(Seen::Entry(seen)) => current.is_some_and(|c| Arc::ptr_eq(c, seen)),
                Some(Seen::Bytes(_)) => false,
            };
            if unchanged {
                (Self::put(key, entry), true)
            } else {
                (Op::Keep, false)
            }
        })
    }

    /// Replaces the entry at `key` by a tombstone living `fence_ttl`; whether an entry (not a
    /// tombstone) was there.
    pub(crate) fn delete(&self, key: &str, fence_ttl: Duration) -> bool {
        let tomb = Arc::new(ParsedEntry::new(
            bytes::Bytes::from(codec::tombstone()),
            fence_ttl,
            false,
        ));
        self.entries.compute(key, Instant::now(), |current| {
            let existed = current.is_some_and(|e| !e.is_tombstone());
            (Self::put(key, tomb), existed)
        })
    }

    /// Removes every entry whose key matches `pattern` (under its shard's write lock, so that
    /// a fill's compare-and-set cannot interleave); how many. With `fence`, first counts a
    /// pattern invalidation (see [`Seen::Absent`]).
    pub(crate) fn delete_matching(&self, pattern: &str, fence: bool) -> u64 {
        if fence {
            let _fence = self
                .pattern_fence
                .write()
                .unwrap_or_else(|e| e.into_inner());
            self.patterns.fetch_add(1, Ordering::AcqRel);
        }
        let mut n: u64 = 0;
        // Tombstones too: a fill that saw one must not store over this.
        self.entries.remove_where(Instant::now(), |k, e, live| {
            let matches = glob_match(pattern.as_bytes(), k.as_bytes());
            if matches && live && !e.is_tombstone() {
                n = n.saturating_add(1);
            }
            matches
        });
        n
    }

    /// Keys matching `pattern`, at most `limit`.
    pub(crate) fn keys(&self, pattern: &str, limit: usize) -> Vec<String> {
        let mut keys = Vec::new();
        self.entries.for_each_live(Instant::now(), |k, _| {
            if keys.len() >= limit {
                return false;
            }
            if glob_match(pattern.as_bytes(), k.as_bytes()) {
                keys.push(k.to_owned());
            }
            true
        });
        keys
    }

    /// The raw bytes at `key` and the time it has left.
    pub(crate) fn inspect(&self, key: &str) -> Option<(Vec<u8>, Duration)> {
        let now = Instant::now();
        self.entries.get(key, now, |e| {
            (
                e.bytes.to_vec(),
                e.expires_at.saturating_duration_since(now),
            )
        })
    }

    /// Drops every entry and tag version; how many entries there were.
    pub(crate) fn clear(&self) -> u64 {
        let n = self.entries.clear();
        self.tags.clear();
        n
    }

    /// The byte budget, entries and tag versions together.
    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Entries evicted for room so far.
    pub(crate) fn evictions(&self) -> u64 {
        self.entries.evictions()
    }

    /// Test hook: drops a tag version as an eviction would.
    pub(crate) fn evict_tag(&self, tag_key: &str) {
        self.tags.drop_version(tag_key);
    }

    /// Test hook: writes raw bytes under a key, as a foreign writer would.
    pub(crate) fn put_raw(&self, key: &str, bytes: Vec<u8>, ttl: Duration) {
        self.store(key, bytes, ttl, false, None);
    }

    /// Tag versions kept and their weighted size.
    pub(crate) fn tag_usage(&self) -> (u64, u64) {
        self.tags.usage()
    }

    /// Live entries and weighted size.
    ///
    /// Live: an entry a lookup could still find, i.e. not past its TTL (stale windows
    /// included) and not a tombstone (what a delete leaves: always a miss). The weighted size
    /// counts expired entries and tombstones until they are dropped or overwritten, so the
    /// live ones are counted by walking the store (an admin operation, O(entries)). An entry
    /// written through ([`Cache::set`](crate::Cache::set)) and kept past its windows as a
    /// fence (at least the fence TTL) still counts until then: its windows are not recorded
    /// apart.
    pub(crate) fn usage(&self) -> (u64, u64) {
        let mut live = 0u64;
        self.entries.for_each_live(Instant::now(), |_, e| {
            if !e.is_tombstone() {
                live = live.saturating_add(1);
            }
            true
        });
        (live, self.entries.bytes())
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
    fn lookup_now<K: AsRef<str>>(&self, key: &str, tag_keys: &[K], now: Instant) -> Option<Found> {
        Some(self.lookup(key, tag_keys, now))
    }

    /// The memory store's tag keys are the tags.
    #[inline]
    fn lookup_tags_now<T: AsRef<str>>(&self, key: &str, tags: &[T], now: Instant) -> Option<Found> {
        Some(self.lookup(key, tags, now))
    }

    fn versions_now(&self, tag_keys: &[String]) -> Option<Versions> {
        Some(self.tags.versions(tag_keys, Instant::now()))
    }

    async fn lookup(&self, key: &str, tag_keys: &[String]) -> Result<Found> {
        // It answers without waiting: a loop of lookups must still let other tasks run.
        tokio::task::coop::consume_budget().await;
        Ok(MemoryBackend::lookup(self, key, tag_keys, Instant::now()))
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

#[cfg(test)]
mod tests;
