//! The storage contract: what every store (Redis, the memory store, the disabled store, and
//! the near cache; later Redis Cluster) does for the engine, and the store-neutral types its
//! answers are made of. The engine (`read_through/`) and the handle (`cache/`) reach a
//! store only through [`Store`]; they never name a concrete one.
//!
//! A store moves bytes and tag versions; it never decides validity or freshness. A lookup
//! answers with a [`Found`]: the entry as envelope bytes ([`Stored::Bytes`], parsed by the
//! engine) or already parsed ([`Stored::Parsed`], a [`ParsedEntry`] whose header was parsed
//! when it was stored), the current version of each tag key asked for, and the namespace's
//! pattern-invalidation count. A store that can answer without waiting says so
//! ([`Store::answers_now`]) and answers [`Store::lookup_now`] and [`Store::versions_now`]:
//! the engine then serves a fresh hit without an `.await`.
//!
//! Compare-and-set: a fill stores only if the key is still in the state its lookup saw
//! ([`Seen`]); a store compares what it handed out ([`Seen::Bytes`] by value,
//! [`Seen::Entry`] by identity, [`Seen::Absent`] by its pattern count).

use super::parsed::ParsedEntry;
pub(crate) use crate::codec::new_version;
use crate::error::Result;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The tag under which an entry records the version of each of its store's base keys
/// ([`Store::base_keys`]: the epoch key on Redis, see `backend/redis/mod.rs`). The engine
/// checks it like any tag, after the call's own, and a store without base keys never sees it.
pub(crate) const EPOCH_TAG: &str = "#epoch";

/// What a lookup of the cached-call path brings back: the entry, in the form its store keeps
/// it, and the current version of each tag asked for.
pub(crate) struct Found {
    pub entry: Option<Stored>,
    pub versions: Versions,
    /// Pattern invalidations of the namespace so far (what an absent key's fill is fenced
    /// with; see [`Seen::Absent`]).
    pub patterns: Patterns,
    /// When the store read the entry (monotonic), if it knows: freshness is judged at that
    /// instant instead of reading the clock again.
    pub read_at: Option<Instant>,
    /// The store found the entry carrying exactly the tag keys asked for, in order, each at
    /// the version `versions` holds (the memory store, whose tag keys are the tags): a check
    /// of its tags need not compare them again.
    pub verified: bool,
}

impl Found {
    /// Nothing stored, and no tag key: what a store that keeps nothing answers.
    pub(crate) fn nothing(tags: usize) -> Found {
        Found {
            entry: None,
            versions: Versions::Owned(vec![None; tags]),
            patterns: Patterns::default(),
            read_at: None,
            verified: false,
        }
    }
}

/// A stored entry as a store hands it out.
pub(crate) enum Stored {
    /// Envelope bytes, parsed by the engine.
    Bytes(bytes::Bytes),
    /// An entry whose header was parsed when it was stored.
    Parsed(Arc<ParsedEntry>),
}

/// The pattern invalidations a lookup saw (the fence of an absent key's fill, see
/// [`Seen::Absent`]): how many, and where the count was read, which only the store that read
/// it interprets (a Redis Cluster: the identity of the primary; elsewhere 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Patterns {
    pub count: u64,
    pub read_on: u64,
}

impl Patterns {
    /// `count` pattern invalidations, read where there is one place to read them.
    pub(crate) fn count(count: u64) -> Patterns {
        Patterns { count, read_on: 0 }
    }
}

/// The state of an entry's key as a lookup saw it. A fill stores its value only if the key
/// is still in that state (compare-and-set), so that a computation that began before a write,
/// a delete (which leaves a tombstone) or another fill of the key never overwrites it; and a
/// caller compares it with a flight's to know that nothing was written between two reads.
#[derive(Clone)]
pub(crate) enum Seen {
    /// Nothing was stored under the key, after this many pattern invalidations of the
    /// namespace. A pattern invalidation cannot leave a tombstone under a key that does not
    /// exist yet, so it counts itself before it scans: a fill of an absent key stores only
    /// if no pattern invalidation began since its lookup.
    Absent { patterns: Patterns },
    /// These bytes were: an entry, a tombstone or anything else.
    Bytes(bytes::Bytes),
    /// This parsed entry was (held, so its address cannot be reused while compared).
    Entry(Arc<ParsedEntry>),
}

impl Seen {
    /// The state a lookup found, taking its entry (cloning `Bytes` made from a `Vec` would
    /// allocate a shared header: a hit does not pay for that).
    pub(crate) fn found(entry: Option<Stored>, patterns: Patterns) -> Seen {
        match entry {
            None => Seen::Absent { patterns },
            Some(Stored::Bytes(b)) => Seen::Bytes(b),
            Some(Stored::Parsed(e)) => Seen::Entry(e),
        }
    }

    /// Whether two reads saw the key in the same state.
    pub(crate) fn same(&self, other: &Seen) -> bool {
        match (self, other) {
            (Seen::Absent { patterns: a }, Seen::Absent { patterns: b }) => a == b,
            (Seen::Bytes(a), Seen::Bytes(b)) => a == b,
            (Seen::Entry(a), Seen::Entry(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// Current tag versions (`None`: the tag key is missing).
pub(crate) enum Versions {
    Owned(Vec<Option<String>>),
    /// A store's own versions, copied inline (no allocation for up to [`Versions::INLINE`]).
    Inline(InlineVersions),
    /// Versions a near cache keeps beside its entry (shared by its hits).
    Shared(Arc<[Option<String>]>),
}

/// Versions held inline: the first [`Versions::INLINE`] in place, any more in `rest`.
pub(crate) struct InlineVersions {
    len: usize,
    first: [Option<Version>; Versions::INLINE],
    rest: Vec<Option<Version>>,
}

impl InlineVersions {
    /// The version of the `i`-th tag asked for.
    #[inline]
    fn version(&self, i: usize) -> Option<&Version> {
        let slot = match i.checked_sub(Versions::INLINE) {
            None => self.first.get(i),
            Some(j) => self.rest.get(j),
        };
        slot.and_then(Option::as_ref)
    }
}

impl Versions {
    /// Tags whose versions a lookup carries without allocating.
    pub(crate) const INLINE: usize = 4;

    /// The versions of `each`, in order.
    #[inline(always)]
    pub(crate) fn inline(each: impl IntoIterator<Item = Option<Version>>) -> Versions {
        let mut v = InlineVersions {
            len: 0,
            first: [None; Versions::INLINE],
            rest: Vec::new(),
        };
        for version in each {
            match v.first.get_mut(v.len) {
                Some(slot) => *slot = version,
                None => v.rest.push(version),
            }
            v.len = v.len.saturating_add(1);
        }
        Versions::Inline(v)
    }

    /// The version of the `i`-th tag asked for.
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        match self {
            Versions::Owned(v) => v.get(i).and_then(Option::as_deref),
            Versions::Inline(v) => v.version(i).map(Version::as_str),
            Versions::Shared(v) => v.get(i).and_then(Option::as_deref),
        }
    }

    /// Whether the `i`-th tag asked for has version `stored` (compared as bytes, without
    /// checking text).
    #[inline]
    pub(crate) fn is(&self, i: usize, stored: &str) -> bool {
        match self {
            Versions::Owned(v) => v.get(i).and_then(Option::as_deref) == Some(stored),
            Versions::Shared(v) => v.get(i).and_then(Option::as_deref) == Some(stored),
            Versions::Inline(v) => v
                .version(i)
                .is_some_and(|v| v.as_bytes() == stored.as_bytes()),
        }
    }

    /// How many versions (the call's tags, then the store's base keys).
    pub(crate) fn len(&self) -> usize {
        match self {
            Versions::Owned(v) => v.len(),
            Versions::Inline(v) => v.len,
            Versions::Shared(v) => v.len(),
        }
    }

    pub(crate) fn into_owned(self) -> Vec<Option<String>> {
        match self {
            Versions::Owned(v) => v,
            Versions::Shared(v) => v.to_vec(),
            Versions::Inline(_) => (0..self.len())
                .map(|i| self.get(i).map(String::from))
                .collect(),
        }
    }
}

/// A tag version whose text is held inline (a store that counts its versions hands them out
/// without allocating or sharing a reference count): the decimal digits of a number.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    len: u8,
    text: [u8; 20],
}

impl Version {
    /// The version numbered `n`.
    pub(crate) fn number(n: u64) -> Version {
        let mut digits = itoa::Buffer::new();
        // A u64 has at most 20 digits: it always fits.
        Version::of_text(digits.format(n).as_bytes()).unwrap_or(Version {
            len: 0,
            text: [0u8; 20],
        })
    }

    /// The version whose text is `text` (`None`: longer than a number's digits).
    #[inline]
    pub(crate) fn of_text(text: &[u8]) -> Option<Version> {
        let mut v = Version {
            len: u8::try_from(text.len()).ok()?,
            text: [0u8; 20],
        };
        v.text.get_mut(..text.len())?.copy_from_slice(text);
        Some(v)
    }

    /// Its text's bytes.
    #[inline]
    fn as_bytes(&self) -> &[u8] {
        self.text.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Its text.
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        let digits = self.text.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(digits).unwrap_or_default()
    }
}

/// The store's view of itself. Fields a store cannot tell are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendStats {
    /// `"redis"`, `"redis-cluster"`, `"memory"` or `"disabled"`.
    pub backend: &'static str,
    /// Redis `used_memory`, or the memory store's weighted size: its entries and its tag
    /// versions, what its byte budget bounds (see
    /// [`CacheBuilder::memory`](crate::CacheBuilder::memory)).
    pub used_memory_bytes: Option<u64>,
    /// Redis `evicted_keys`, or entries the memory store evicted for room.
    pub evicted_keys: Option<u64>,
    /// Redis `keyspace_hits` (all clients).
    pub keyspace_hits: Option<u64>,
    /// Redis `keyspace_misses` (all clients).
    pub keyspace_misses: Option<u64>,
    /// Redis `connected_clients`.
    pub connected_clients: Option<u64>,
    /// Keys in the Redis database (all namespaces, `DBSIZE`: tag keys, tombstones and locks
    /// included), or the memory store's live entries: those a lookup could still find (within
    /// their TTL and stale windows), never a delete's tombstone nor an expired entry.
    pub keys: Option<u64>,
    /// Redis `maxmemory` as it reports it (`0`: no limit), or the memory store's byte budget
    /// (entries and tag versions: see [`CacheBuilder::memory`](crate::CacheBuilder::memory)).
    pub maxmemory_bytes: Option<u64>,
    /// Redis `maxmemory_policy` (`noeviction`, `allkeys-lru`, ...): what Redis does when
    /// full, which decides whether entries, tag keys and fences may be evicted (see
    /// ARCHITECTURE.md, *Not guaranteed*). `None` on the memory store (it evicts entries and
    /// tag versions by CLOCK, within its budget).
    pub eviction_policy: Option<String>,
}

/// What a near cache did (see [`CacheBuilder::near_cache`](crate::CacheBuilder::near_cache)),
/// since the cache was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearStats {
    /// Lookups answered from the near cache.
    pub hits: u64,
    /// Lookups it could not answer (read from Redis).
    pub misses: u64,
    /// Lookups that waited for a barrier (a `PING` on the tracking connection).
    pub barrier_waits: u64,
    /// Barrier `PING`s sent (each serves every lookup that waited for it).
    pub pings: u64,
    /// Invalidation pushes received from Redis.
    pub pushes: u64,
    /// Times every near entry was dropped at once (a tracking connection lost or re-made,
    /// `FLUSHALL`, a pattern invalidation or a clear by this process).
    pub flushes: u64,
    /// What its entries weigh (decoded values counted at their encoded size).
    pub bytes: u64,
    /// Entries kept (some may be invalid already, until looked up or evicted).
    pub entries: u64,
}

/// What every store does. Each operation is one round trip on a remote store (lookups of
/// concurrent callers may share theirs: `batch.rs`). Keys are full keys (namespace
/// included); the store adds nothing to them.
///
/// Static dispatch: the cache holds the enum [`Backend`](super::Backend), which implements
/// this trait by delegating to its variant, so the hit path has no boxing and no dynamic
/// call.
pub(crate) trait Store {
    /// `"redis"`, `"redis-cluster"`, `"memory"` or `"disabled"`.
    fn kind(&self) -> &'static str;

    /// Whether the store keeps anything (`false`: every call computes, nothing is looked up).
    fn stores(&self) -> bool {
        true
    }

    /// Keys every lookup reads after the call's tags, whose versions every entry records
    /// under [`EPOCH_TAG`] (the epoch key on Redis; none elsewhere).
    fn base_keys(&self) -> &[String] {
        &[]
    }

    /// Whether [`lookup_now`](Self::lookup_now) answers. Such a store never waits, so the
    /// engine spends a unit of the task's cooperative budget before its first look (a loop
    /// of hits then lets the runtime's other tasks run).
    fn answers_now(&self) -> bool {
        false
    }

    /// [`lookup`](Self::lookup) without awaiting, for a store that can (`None`: it cannot;
    /// use `lookup`). Does not spend the cooperative budget.
    ///
    /// `now`: the instant the caller read the clock at, which the store judges expiry at (a
    /// store that answers now need not read it again).
    fn lookup_now<K: AsRef<str>>(
        &self,
        _key: &str,
        _tag_keys: &[K],
        _now: Instant,
    ) -> Option<Found> {
        None
    }

    /// Whether the engine must [`settle`](Self::settle) before a first look
    /// ([`lookup_tags_now`](Self::lookup_tags_now)).
    fn settles(&self) -> bool {
        false
    }

    /// What a store that answers now needs before a call's first look, begun after the call
    /// began: a near cache's barrier (every invalidation that returned before it has been
    /// applied). `Err`: it could not (the call goes on as after a failed lookup).
    async fn settle(&self) -> Result<()> {
        Ok(())
    }

    /// [`lookup_now`](Self::lookup_now) asked with the call's tags instead of the store's tag
    /// keys (the engine's first look, which builds no key): a store names its own tag keys
    /// and base keys. Asked only after [`settle`](Self::settle) returned `Ok` for this call,
    /// when the store [`settles`](Self::settles). `None`: it cannot answer now.
    fn lookup_tags_now<T: AsRef<str>>(
        &self,
        _key: &str,
        _tags: &[T],
        _now: Instant,
    ) -> Option<Found> {
        None
    }

    /// The current versions of `tag_keys` without awaiting (`None`: the store cannot answer
    /// now). A store that hands out [`Stored::Parsed`] from `lookup_now` answers this too:
    /// otherwise an entry carrying tags beyond the call's is a miss on that path.
    fn versions_now(&self, _tag_keys: &[String]) -> Option<Versions> {
        None
    }

    /// The entry at `key` and the versions of `tag_keys`, in one round trip.
    async fn lookup(&self, key: &str, tag_keys: &[String]) -> Result<Found>;

    /// The current versions of `tag_keys`.
    async fn versions(&self, tag_keys: &[String]) -> Result<Vec<Option<String>>>;

    /// Creates each missing tag key with a fresh version (keeping existing ones) and returns
    /// the version each key holds afterwards.
    async fn ensure_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<Vec<Option<String>>>;

    /// Gives every tag key a new version: every entry stored with an older one is invalid.
    async fn bump_tags(&self, tag_keys: &[String], ttl: Duration) -> Result<()>;

    /// Stores an entry: unconditionally (`expect` is `None`), or only if the key is still in
    /// the state `expect` (compare-and-set); whether it was stored. `keep_decoded`: a store
    /// of parsed entries gives it room for a decoded copy of its value.
    async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        keep_decoded: bool,
        expect: Option<&Seen>,
    ) -> Result<bool>;

    /// Replaces what is stored at `key` by a tombstone living `fence_ttl` (a fence against
    /// computations that began before); whether an entry was there.
    async fn delete(&self, key: &str, fence_ttl: Duration) -> Result<bool>;

    /// Removes every key matching the glob `pattern`; how many. With `fence`, first counts a
    /// pattern invalidation, so that fills of keys that were absent do not store afterwards
    /// (see [`Seen::Absent`]).
    async fn delete_matching(&self, pattern: &str, fence: bool) -> Result<u64>;

    /// Takes the lock `lock_key` for `ttl` with `token` if nobody holds it.
    async fn try_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool>;

    /// A lookup and a lock attempt (one round trip where the store can).
    async fn lookup_and_lock(
        &self,
        key: &str,
        tag_keys: &[String],
        lock_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(Found, bool)> {
        let locked = self.try_lock(lock_key, token, ttl).await?;
        Ok((self.lookup(key, tag_keys).await?, locked))
    }

    /// Releases the lock if `token` still owns it.
    async fn release_lock(&self, lock_key: &str, token: &str) -> Result<bool>;

    /// Extends the lock to `ttl` from now if `token` still owns it.
    async fn extend_lock(&self, lock_key: &str, token: &str, ttl: Duration) -> Result<bool>;

    /// Round trips made so far (0 for a store that makes none).
    fn round_trips(&self) -> u64 {
        0
    }

    /// Whether the store makes round trips worth timing per call name.
    fn times_round_trips(&self) -> bool {
        false
    }

    /// Checks that the store answers and accepts the credentials.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// Whether a circuit breaker has the store skipped.
    fn breaker_open(&self) -> bool {
        false
    }

    /// Where the store is, secrets redacted (for `Debug`).
    fn location(&self) -> Option<&str> {
        None
    }

    /// The store's view of itself.
    async fn backend_stats(&self) -> Result<BackendStats>;

    /// Keys matching the glob `pattern`, at most `limit`.
    async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>>;

    /// The raw bytes at `key` and the time they have left.
    async fn inspect(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>>;

    /// Removes every key of `namespace` (entries of all versions, tag versions, locks);
    /// how many.
    async fn clear(&self, namespace: &str) -> Result<u64>;
}
