//! The near cache: a [`Store`] layer in this process in front of the Redis store, keeping the
//! entries Redis answered with, parsed (and decoded once, shared by every hit), and proving
//! them fresh before serving them.
//!
//! - **Fill.** A lookup the near cache cannot answer reads Redis (the entry, its tag versions
//!   and their expiries, in one pipeline) and keeps what it found if a tracking link was up
//!   when the read was sent: with the marks of its keys read before it was sent
//!   (`tracking.rs`). Kept at most as long as Redis keeps the entry and its tag keys.
//! - **Hit, strict** (the default). A near entry is served after a barrier (`barrier.rs`): the
//!   reply to a `PING` sent on the tracking link after the lookup began, so that every
//!   invalidation that returned before the lookup began has been applied; and only if its
//!   marks, the link and the flush count are still those it was filled under.
//! - **Hit, bounded** (`max_staleness`). Served at once if a barrier's ping was sent less than
//!   `max_staleness` ago (and the marks hold); otherwise as in strict mode.
//! - **Writes** go to Redis, then move the marks of the keys they wrote (a pattern
//!   invalidation or a clear flushes), so that this process's own invalidations are applied
//!   to the near cache before they return, whatever the mode. Fills and write-throughs are
//!   not kept as they are written: the next read fills.
//! - Everything else (locks, admin, the lookups of lock waits) is Redis's alone.
//!
//! Files: `tracking.rs` the tracking link and the marks, `barrier.rs` the coalesced pings.

mod barrier;
mod tracking;

use self::barrier::Barrier;
use self::tracking::{Snapshot, Tracker};
use super::contract::{BackendStats, Found, NearStats, Patterns, Seen, Store, Stored, Versions};
use super::memory::MemoryBackend;
use super::memory::map::{ClockMap, Op};
use super::parsed::ParsedEntry;
use super::redis::RedisBackend;
use crate::error::{Error, Result};
use crate::stats::Counts;
use crate::stats::Event;
use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Bookkeeping of a near entry beyond its parsed entry and the text it holds: the
/// `NearEntry` and its `Arc`, the snapshot, the boxes of the tag keys and versions. An
/// estimate from their sizes, rounded up; not measured under churn as `ENTRY_OVERHEAD` is.
const NEAR_OVERHEAD: usize = 256;

/// How a near cache serves its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NearMode {
    /// After a barrier begun after the lookup.
    Strict,
    /// At once while a barrier was sent less than this long ago.
    Bounded(Duration),
}

/// What a near cache keeps of an entry.
struct NearEntry {
    entry: Arc<ParsedEntry>,
    /// The tag keys the lookup that filled it asked for (the call's, then the epoch).
    tag_keys: Box<[Box<str>]>,
    versions: Arc<[Option<String>]>,
    patterns: Patterns,
    snapshot: Snapshot,
}

impl NearEntry {
    /// Whether it was filled for the call's `tags`: its tag keys are `tag_prefix` + each
    /// tag, then `base` (the store's base keys).
    fn asked_for_tags<T: AsRef<str>>(&self, tags: &[T], tag_prefix: &str, base: &[String]) -> bool {
        self.tag_keys.len() == tags.len().saturating_add(base.len())
            && self
                .tag_keys
                .iter()
                .zip(tags)
                .all(|(k, t)| k.strip_prefix(tag_prefix) == Some(t.as_ref()))
            && self
                .tag_keys
                .iter()
                .skip(tags.len())
                .zip(base)
                .all(|(k, b)| **k == **b)
    }

    fn asked_for<K: AsRef<str>>(&self, tag_keys: &[K]) -> bool {
        self.tag_keys.len() == tag_keys.len()
            && self
                .tag_keys
                .iter()
                .zip(tag_keys)
                .all(|(a, b)| **a == *b.as_ref())
    }

    /// What a lookup finds in it, read at `read_at` (when known).
    fn found(&self, read_at: Option<Instant>) -> Found {
        Found {
            entry: Some(Stored::Parsed(Arc::clone(&self.entry))),
            versions: Versions::Shared(Arc::clone(&self.versions)),
            patterns: self.patterns,
            read_at,
            verified: false,
        }
    }
}

/// The Redis store with a near cache in front (see the module's documentation).
pub(crate) struct NearStore {
    redis: RedisBackend,
    mode: NearMode,
    entries: ClockMap<Arc<NearEntry>>,
    tracker: Arc<Tracker>,
    barrier: Arc<Barrier>,
    /// `namespace#tag:`: what the store's tag keys start with.
    tag_prefix: String,
    /// Near hits (`Event::Hit`) and lookups it could not answer (`Event::Miss`).
    counts: Counts,
    /// A test's pause of fills between Redis's reply and the keeping of the entry.
    pause: ArcSwapOption<FillPause>,
    /// `cachette_near_bytes`, registered once.
    bytes_gauge: metrics::Gauge,
}

/// Holds fills between Redis's reply and the keeping of what it answered, for a test to
/// change Redis there (`__private::testing::near_pause_fills`).
#[derive(Debug)]
pub struct FillPause {
    reached: tokio::sync::Notify,
    resume: tokio::sync::Semaphore,
}

impl Default for FillPause {
    fn default() -> Self {
        FillPause {
            reached: tokio::sync::Notify::new(),
            resume: tokio::sync::Semaphore::new(0),
        }
    }
}

impl FillPause {
    /// Waits until a fill is held.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets one held fill go on.
    pub fn resume(&self) {
        self.resume.add_permits(1);
    }

    async fn hold(&self) {
        self.reached.notify_one();
        if let Ok(permit) = self.resume.acquire().await {
            permit.forget();
        }
    }
}

impl NearStore {
    /// A near cache of at most `max_bytes` in front of `redis`, tracking the keys under
    /// `prefixes` (the namespace's entries, tag keys and epoch).
    pub(crate) fn new(
        redis: RedisBackend,
        max_bytes: u64,
        mode: NearMode,
        prefixes: &[String],
        tag_prefix: String,
        op_timeout: Duration,
    ) -> Result<NearStore> {
        let Some(client) = redis.client() else {
            return Err(crate::Error::Config(
                "near_cache needs a single Redis server, not one Sentinel names".to_owned(),
            ));
        };
        let tracker = Tracker::new(client, redis.breaker(), prefixes, op_timeout)?;
        Ok(NearStore {
            redis,
            mode,
            entries: ClockMap::new(max_bytes),
            tracker: Arc::new(tracker),
            barrier: Arc::new(Barrier::new(op_timeout)),
            tag_prefix,
            counts: Counts::default(),
            pause: ArcSwapOption::empty(),
            bytes_gauge: metrics::gauge!("cachette_near_bytes"),
        })
    }

    /// Holds every fill until resumed (`Some`), or lets them run (`None`).
    pub(crate) fn pause_fills(&self, pause: Option<Arc<FillPause>>) {
        self.pause.store(pause);
    }

    pub(crate) fn stats(&self) -> NearStats {
        NearStats {
            hits: self.counts.get(Event::Hit),
            misses: self.counts.get(Event::Miss),
            barrier_waits: self.barrier.waits.load(Ordering::Relaxed),
            pings: self.barrier.pings(),
            pushes: self.tracker.shared.pushes(),
            flushes: self.tracker.shared.flushes(),
            bytes: self.entries.bytes(),
            entries: self.entries.len(),
        }
    }

    /// The near entry for this lookup, if one is kept for these tag keys.
    fn kept<K: AsRef<str>>(
        &self,
        key: &str,
        tag_keys: &[K],
        now: Instant,
    ) -> Option<Arc<NearEntry>> {
        self.entries
            .get(key, now, |e| e.asked_for(tag_keys).then(|| Arc::clone(e)))
            .flatten()
    }

    /// A hit in bounded mode, served without waiting: a barrier was sent recently enough and
    /// the entry's marks hold.
    fn bounded_hit(&self, near: &NearEntry, now: Instant) -> Option<Found> {
        let NearMode::Bounded(max) = self.mode else {
            return None;
        };
        (self.barrier.recent(max) && self.tracker.holds_now(&near.snapshot))
            .then(|| self.hit(near, Some(now)))
    }

    /// `near` served: counted, and what the lookup finds in it.
    fn hit(&self, near: &NearEntry, read_at: Option<Instant>) -> Found {
        self.counts.add(Event::Hit);
        near.found(read_at)
    }

    /// A near entry proven fresh by a barrier begun now; `Err` only when the barrier timed
    /// out (the call then goes on without the cache rather than wait a second timeout).
    async fn proven(&self, key: &str, near: Arc<NearEntry>) -> Result<Option<Found>> {
        match self.barrier.pass(&self.tracker).await {
            Ok(link) if self.tracker.holds(&near.snapshot, link) => Ok(Some(self.hit(&near, None))),
            Ok(_) => {
                self.forget(key, &near);
                Ok(None)
            }
            Err(e @ Error::Timeout(_)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// Drops `near` from the map if it is still the entry there.
    fn forget(&self, key: &str, near: &Arc<NearEntry>) {
        self.entries.compute(key, Instant::now(), |current| {
            let same = current.is_some_and(|c| Arc::ptr_eq(c, near));
            (if same { Op::Remove } else { Op::Keep }, ())
        });
    }

    /// Reads Redis and keeps what it found when it may (see the module's documentation).
    async fn fill(&self, key: &str, tag_keys: &[String]) -> Result<Found> {
        self.counts.add(Event::Miss);
        let keys = std::iter::once(key).chain(tag_keys.iter().map(String::as_str));
        let snapshot = self.tracker.snapshot(keys);
        if snapshot.is_none() {
            // No link: ask for one (a ping makes it), so that later reads can keep entries.
            self.barrier.request(&self.tracker);
        }
        let sent = Instant::now();
        let (fetched, keep) = self.redis.fetch_expiring(key, tag_keys).await?;
        if let Some(pause) = self.pause.load_full() {
            pause.hold().await;
        }
        let (Some(snapshot), Some(bytes), Some(keep)) = (snapshot, &fetched.entry, keep) else {
            return Ok(fetched.into());
        };
        let keep = keep.saturating_sub(sent.elapsed());
        let entry = Arc::new(ParsedEntry::new(bytes.clone(), keep, true));
        if keep.is_zero() || entry.header().is_err() {
            return Ok(fetched.into());
        }
        let near = Arc::new(NearEntry {
            entry: Arc::clone(&entry),
            tag_keys: tag_keys.iter().map(|t| Box::from(t.as_str())).collect(),
            versions: fetched.versions.into(),
            patterns: fetched.patterns,
            snapshot,
        });
        let weight = near_weight(key, &near);
        let found = near.found(None);
        self.entries.compute(key, Instant::now(), |_| {
            let put = Op::Put {
                weight,
                expires_at: Some(entry.expires_at),
                value: near,
            };
            (put, ())
        });
        self.bytes_gauge.set(self.entries.bytes() as f64);
        Ok(found)
    }

    /// Moves on the marks of keys this process wrote (after the write, whatever its result).
    fn wrote<'k>(&self, keys: impl IntoIterator<Item = &'k str>) {
        for k in keys {
            self.tracker.shared.bump(k.as_bytes());
        }
    }
}

/// What a near entry costs in the map: its parsed entry as the memory store weighs one, plus
/// the tag keys and versions it keeps and [`NEAR_OVERHEAD`].
fn near_weight(key: &str, near: &NearEntry) -> u64 {
    let tag_keys = near.tag_keys.iter().map(|t| t.len()).sum::<usize>();
    let versions = near
        .versions
        .iter()
        .flatten()
        .map(String::len)
        .sum::<usize>();
    let extra = tag_keys
        .saturating_add(versions)
        .saturating_add(NEAR_OVERHEAD);
    MemoryBackend::weight(key, &near.entry).saturating_add(u64::try_from(extra).unwrap_or(u64::MAX))
}

/// A compare-and-set against what a near hit handed out compares the bytes Redis holds.
fn in_redis(seen: Option<&Seen>) -> Option<Seen> {
    seen.map(|s| match s {
        Seen::Entry(e) => Seen::Bytes(e.bytes.clone()),
        other => other.clone(),
    })
}

impl Store for NearStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn base_keys(&self) -> &[String] {
        self.redis.base_keys()
    }

    fn answers_now(&self) -> bool {
        true
    }

    fn settles(&self) -> bool {
        true
    }

    /// A barrier begun now (in bounded mode, unless one was sent recently enough).
    async fn settle(&self) -> Result<()> {
        if let NearMode::Bounded(max) = self.mode
            && self.barrier.recent(max)
        {
            return Ok(());
        }
        self.barrier.pass(&self.tracker).await.map(|_| ())
    }

    fn lookup_now<K: AsRef<str>>(&self, key: &str, tag_keys: &[K], now: Instant) -> Option<Found> {
        // Only bounded mode answers without a barrier of the call's own.
        if !matches!(self.mode, NearMode::Bounded(_)) {
            return None;
        }
        let near = self.kept(key, tag_keys, now)?;
        self.bounded_hit(&near, now)
    }

    /// After [`settle`](Self::settle): the entry, if it still holds (one that does not is
    /// dropped, so that the call's lookup reads Redis).
    fn lookup_tags_now<T: AsRef<str>>(&self, key: &str, tags: &[T], now: Instant) -> Option<Found> {
        let base = self.redis.base_keys();
        let near = self
            .entries
            .get(key, now, |e| {
                e.asked_for_tags(tags, &self.tag_prefix, base)
                    .then(|| Arc::clone(e))
            })
            .flatten()?;
        if self.tracker.holds_now(&near.snapshot) {
            return Some(self.hit(&near, Some(now)));
        }
        self.forget(key, &near);
        None
    }

    async fn lookup(&self, key: &str, tag_keys: &[String]) -> Result<Found> {
        if self.redis.breaker_open() {
            return Store::lookup(&self.redis, key, tag_keys).await;
        }
        let now = Instant::now();
        if let Some(near) = self.kept(key, tag_keys, now) {
            if let Some(found) = self.bounded_hit(&near, now) {
                return Ok(found);
            }
            if let Some(found) = self.proven(key, near).await? {
                return Ok(found);
            }
        }
        self.fill(key, tag_keys).await
    }

    async fn versions(&self, tag_keys: &[String]) -> Result<Vec<Option<String>>> {
        Store::versions(&self.redis, tag_keys).await
    }

    async fn ensure_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<Vec<Option<String>>> {
        Store::ensure_tags(&self.redis, tag_keys, ttl).await
    }

    async fn bump_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<()> {
        let r = Store::bump_tags(&self.redis, tag_keys, ttl).await;
        self.wrote(tag_keys.iter().map(String::as_str));
        r
    }

    async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        keep_decoded: bool,
        expect: Option<&Seen>,
    ) -> Result<bool> {
        let expect = in_redis(expect);
        let r = Store::store(&self.redis, key, bytes, ttl, keep_decoded, expect.as_ref()).await;
        self.wrote([key]);
        r
    }

    async fn delete(&self, key: &str, fence_ttl: Duration) -> Result<bool> {
        let r = Store::delete(&self.redis, key, fence_ttl).await;
        self.wrote([key]);
        r
    }

    async fn delete_matching(&self, pattern: &str, fence: bool) -> Result<u64> {
        let r = Store::delete_matching(&self.redis, pattern, fence).await;
        self.tracker.shared.flush();
        r
    }

    async fn try_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        Store::try_lock(&self.redis, lock_key, token, ttl).await
    }

    async fn lookup_and_lock(
        &self,
        key: &str,
        tag_keys: &[String],
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(Found, bool)> {
        Store::lookup_and_lock(&self.redis, key, tag_keys, lock_key, token, ttl).await
    }

    async fn release_lock(&self, lock_key: &str, token: &str) -> Result<bool> {
        Store::release_lock(&self.redis, lock_key, token).await
    }

    async fn extend_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool> {
        Store::extend_lock(&self.redis, lock_key, token, ttl).await
    }

    fn round_trips(&self) -> u64 {
        Store::round_trips(&self.redis)
    }

    fn times_round_trips(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<()> {
        Store::ping(&self.redis).await
    }

    fn breaker_open(&self) -> bool {
        Store::breaker_open(&self.redis)
    }

    fn location(&self) -> Option<&str> {
        self.redis.location()
    }

    async fn backend_stats(&self) -> Result<BackendStats> {
        Store::backend_stats(&self.redis).await
    }

    async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
        Store::keys(&self.redis, pattern, limit).await
    }

    async fn inspect(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>> {
        Store::inspect(&self.redis, key).await
    }

    async fn clear(&self, namespace: &str) -> Result<u64> {
        let r = Store::clear(&self.redis, namespace).await;
        self.tracker.shared.flush();
        r
    }
}
