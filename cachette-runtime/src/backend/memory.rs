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

use super::Seen;
use crate::codec::{self, Meta};
use crate::config::MAX_DURATION;
use crate::keys::glob_match;
use moka::Expiry;
use moka::ops::compute::{CompResult, Op};
use std::any::Any;
use std::cell::Cell;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A decoded value kept beside its bytes.
pub(crate) type Decoded = Arc<dyn Any + Send + Sync>;

/// One stored entry (shared by every hit: moka hands out clones of the `Arc`).
pub(crate) struct MemEntry {
    bytes: bytes::Bytes,
    /// The envelope's header, parsed when the entry was stored; `Err`: why the bytes are not
    /// a readable envelope (every lookup of it is then an undecodable entry, as in Redis).
    header: Result<MemHeader, Box<str>>,
    ttl: Duration,
    expires_at: Instant,
    /// Room for a decoded copy of the value (counted in the entry's weight), for entries
    /// stored by a call that can use one.
    decoded: Option<OnceLock<Decoded>>,
}

/// A parsed envelope header.
pub(crate) struct MemHeader {
    /// Each tag with the version it was stored with.
    pub tags: Box<[(Box<str>, Box<str>)]>,
    pub meta: Meta,
    /// Where the serialized value lies in the entry's bytes.
    value: Range<usize>,
}

impl MemEntry {
    fn new(bytes: bytes::Bytes, ttl: Duration, keep_decoded: bool) -> MemEntry {
        let header = match codec::decode_header(&bytes) {
            Ok(env) => {
                let raw = env.value.get().as_bytes();
                // `raw` borrows from `bytes`: its offset locates the value.
                let start = (raw.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
                let value = start..start.saturating_add(raw.len());
                if bytes.get(value.clone()) == Some(raw) {
                    Ok(MemHeader {
                        tags: env
                            .tags
                            .iter()
                            .map(|(t, v)| (Box::from(t.as_ref()), Box::from(v.as_ref())))
                            .collect(),
                        meta: env.meta(),
                        value,
                    })
                } else {
                    Err(Box::from("the value is not part of the entry"))
                }
            }
            Err(e) => Err(e.to_string().into_boxed_str()),
        };
        let decoded = (keep_decoded && header.is_ok()).then(OnceLock::new);
        let ttl = ttl.min(MAX_DURATION);
        MemEntry {
            bytes,
            header,
            ttl,
            expires_at: crate::clock::instant_after(Instant::now(), ttl),
            decoded,
        }
    }

    /// Whether this is a tombstone (what a delete leaves: a miss, not a decode failure).
    pub(crate) fn is_tombstone(&self) -> bool {
        self.header.is_err() && codec::is_tombstone(&self.bytes)
    }

    /// The parsed header, or why there is none.
    pub(crate) fn header(&self) -> Result<&MemHeader, &str> {
        self.header.as_ref().map_err(|e| &**e)
    }

    /// The serialized value (empty when the entry has no readable header).
    pub(crate) fn value(&self) -> &[u8] {
        match &self.header {
            Ok(h) => self.bytes.get(h.value.clone()).unwrap_or_default(),
            Err(_) => &[],
        }
    }

    /// The decoded copy of the value, if one was kept.
    pub(crate) fn decoded(&self) -> Option<&Decoded> {
        self.decoded.as_ref().and_then(OnceLock::get)
    }

    /// Keeps `make()` as the decoded copy when the entry has room for one and has none yet.
    pub(crate) fn keep_decoded(&self, make: impl FnOnce() -> Decoded) {
        if let Some(slot) = &self.decoded {
            let _ = slot.get_or_init(make);
        }
    }

    /// What the entry counts against the byte budget besides its key: its bytes, the
    /// bookkeeping, and, when it has room for a decoded copy, an estimate of that copy (the
    /// serialized size of the value again).
    fn weight(&self) -> usize {
        let decoded = match (&self.decoded, &self.header) {
            (Some(_), Ok(h)) => h.value.len().saturating_add(ENTRY_OVERHEAD),
            _ => 0,
        };
        self.bytes
            .len()
            .saturating_add(ENTRY_OVERHEAD)
            .saturating_add(decoded)
    }
}

struct PerEntryTtl;

thread_local! {
    /// The instant moka read the time at during this thread's last lookup (see
    /// [`MemoryBackend::lookup`]).
    static READ_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

impl Expiry<String, Arc<MemEntry>> for PerEntryTtl {
    /// Keeps the entry's expiry as it is, and notes the time of the read: moka reads the
    /// clock on every lookup, so the caller need not read it again.
    fn expire_after_read(
        &self,
        _: &String,
        _: &Arc<MemEntry>,
        read_at: Instant,
        duration_until_expiry: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        let _ = READ_AT.try_with(|r| r.set(Some(read_at)));
        duration_until_expiry
    }
    fn expire_after_create(&self, _: &String, v: &Arc<MemEntry>, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
    fn expire_after_update(
        &self,
        _: &String,
        v: &Arc<MemEntry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// What [`MemoryBackend::lookup`] found.
pub(crate) struct Looked {
    pub entry: Option<Arc<MemEntry>>,
    pub versions: Vec<Option<Arc<str>>>,
    /// When the entry was read (monotonic), if moka reported it.
    pub read_at: Option<Instant>,
    /// Pattern invalidations so far, read before the entry.
    pub patterns: u64,
}

/// Bytes counted per entry besides its key and envelope: what an entry costs in moka's map
/// (its node and queues, the hash table and its deferred frees, the key's and the envelope's
/// allocations, the parsed header) under churn, measured by `tests/memory_entry_budget.rs`:
/// ~800 B of resident memory per entry kept with small values, against ~185 B counted when
/// this was 64 (a 16 MB store grew the process by 52 MB; with 640, by 13 MB).
const ENTRY_OVERHEAD: usize = 640;

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
    entries: moka::sync::Cache<String, Arc<MemEntry>>,
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
    pub locks: crate::lock::MemoryLocks,
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
            .weigher(|k: &String, v: &Arc<MemEntry>| {
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
    pub(crate) fn lookup(&self, key: &str, tag_keys: &[String]) -> Looked {
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
        Looked {
            entry,
            versions,
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
        let entry = Arc::new(MemEntry::new(bytes::Bytes::from(bytes), ttl, keep_decoded));
        let _fence = self.pattern_fence.read().unwrap_or_else(|e| e.into_inner());
        let result = self.entries.entry_by_ref(key).and_compute_with(|current| {
            let current = current.map(|e| e.into_value());
            let unchanged = match expect {
                None => true,
                Some(Seen::Absent { patterns }) => {
                    current.is_none() && self.patterns.load(Ordering::Acquire) == *patterns
                }
                Some(Seen::Memory(seen)) => current.is_some_and(|c| Arc::ptr_eq(&c, seen)),
                Some(Seen::Bytes(_)) => false,
            };
            if unchanged { Op::Put(entry) } else { Op::Nop }
        });
        !matches!(result, CompResult::Unchanged(_) | CompResult::StillNone(_))
    }

    /// Replaces the entry at `key` by a tombstone living `fence_ttl`; whether an entry (not a
    /// tombstone) was there.
    pub(crate) fn delete(&self, key: &str, fence_ttl: Duration) -> bool {
        let tomb = Arc::new(MemEntry::new(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(bytes: &[u8], keep_decoded: bool) -> MemEntry {
        MemEntry::new(
            bytes::Bytes::copy_from_slice(bytes),
            Duration::from_secs(60),
            keep_decoded,
        )
    }

    #[test]
    fn the_header_is_parsed_once_when_stored() -> Result<(), String> {
        let bytes = br#"{"v":1,"tags":[["users","v7"]],"created_ms":5,"fresh_until_ms":9,"compute_us":3,"value":{"a":[1,2]}}"#;
        let e = entry(bytes, false);
        let h = e
            .header()
            .map_err(|err| format!("a readable envelope: {err}"))?;
        assert_eq!(h.meta.fresh_until_ms, 9);
        assert_eq!(h.meta.compute_us, 3);
        assert_eq!(h.tags.len(), 1);
        assert_eq!((&*h.tags[0].0, &*h.tags[0].1), ("users", "v7"));
        assert_eq!(e.value(), br#"{"a":[1,2]}"#);
        assert!(e.decoded().is_none());
        e.keep_decoded(|| Arc::new(1u8));
        assert!(e.decoded().is_none(), "no room for a copy");
        Ok(())
    }

    #[test]
    fn garbage_has_no_header_and_no_value() {
        for bytes in [&b"not json"[..], br#"{"v":2,"value":1}"#, b""] {
            let e = entry(bytes, true);
            assert!(e.header().is_err());
            assert!(e.value().is_empty());
            e.keep_decoded(|| Arc::new(1u8));
            assert!(e.decoded().is_none());
        }
    }

    #[test]
    fn room_for_a_decoded_copy_is_weighed_and_kept_once() {
        let bytes = br#"{"v":1,"value":"abcdefgh"}"#;
        let plain = entry(bytes, false);
        let roomy = entry(bytes, true);
        assert_eq!(roomy.weight(), plain.weight() + 10 + ENTRY_OVERHEAD);
        roomy.keep_decoded(|| Arc::new(String::from("abcdefgh")));
        roomy.keep_decoded(|| Arc::new(String::from("other")));
        let kept = roomy.decoded().and_then(|d| d.downcast_ref::<String>());
        assert_eq!(kept.map(String::as_str), Some("abcdefgh"));
    }
}
