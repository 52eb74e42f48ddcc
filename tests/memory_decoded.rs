//! The embedded store keeps a decoded copy of the value of a `#[cached]` call whose type is
//! `Clone`, so that later hits clone it instead of decoding JSON. The copy is an optimisation
//! only: tag versions are still checked on every hit, deletes and pattern invalidations reach
//! it, a hit by another type decodes the stored bytes, and types that are not `Clone` are
//! cached as before.

use cachette::__private::testing;
use cachette::{Cache, cached};
use serde::{Deserialize, Deserializer, Serialize};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// How many `Counted`/`CountedOnce` values this thread decoded.
    static DECODES: Cell<usize> = const { Cell::new(0) };
}

fn decodes() -> usize {
    DECODES.with(Cell::get)
}

/// A `Clone` value that counts its decodings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Counted(u64);

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DECODES.with(|n| n.set(n.get() + 1));
        u64::deserialize(d).map(Counted)
    }
}

/// The same, not `Clone`.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct CountedOnce(u64);

impl<'de> Deserialize<'de> for CountedOnce {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DECODES.with(|n| n.set(n.get() + 1));
        u64::deserialize(d).map(CountedOnce)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    /// Which computation made it: a served copy that should have been invalidated shows.
    version: usize,
}

/// Serializable and deserializable, but not `Clone`.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Token(String);

#[derive(Default)]
struct Calls {
    profile: AtomicUsize,
    small: AtomicUsize,
    wide: AtomicUsize,
    text: AtomicUsize,
    token: AtomicUsize,
    list: AtomicUsize,
    maybe: AtomicUsize,
    fallible: AtomicUsize,
}

fn bump(counter: &AtomicUsize) -> usize {
    counter.fetch_add(1, Ordering::SeqCst) + 1
}

struct Svc {
    cache: Cache,
    calls: Calls,
}

impl Svc {
    fn new() -> Svc {
        Svc {
            cache: Cache::memory(16 << 20),
            calls: Calls::default(),
        }
    }

    fn calls(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }

    #[cached(key = "counted:{id}", ttl = "1h", tags = ["counted"], cache = self.cache)]
    async fn counted(&self, id: u64) -> Counted {
        Counted(id)
    }

    #[cached(key = "counted_once:{id}", ttl = "1h", cache = self.cache)]
    async fn counted_once(&self, id: u64) -> CountedOnce {
        CountedOnce(id)
    }

    #[cached(key = "profile:{id}", ttl = "1h", tags = ["profiles", "profile:{id}"], cache = self.cache)]
    async fn profile(&self, id: u64) -> Profile {
        let version = bump(&self.calls.profile);
        Profile { id, version }
    }

    // Three functions reading and writing the same key with different value types.
    #[cached(key = "n:{id}", ttl = "1h", cache = self.cache)]
    async fn small(&self, id: u64) -> u32 {
        bump(&self.calls.small);
        7 + id as u32
    }

    #[cached(key = "n:{id}", ttl = "1h", cache = self.cache)]
    async fn wide(&self, id: u64) -> u64 {
        bump(&self.calls.wide);
        1_000 + id
    }

    #[cached(key = "n:{id}", ttl = "1h", cache = self.cache)]
    async fn text(&self, id: u64) -> String {
        bump(&self.calls.text);
        format!("text {id}")
    }

    #[cached(key = "token:{id}", ttl = "1h", cache = self.cache)]
    async fn token(&self, id: u64) -> Token {
        let n = bump(&self.calls.token);
        Token(format!("token {id} #{n}"))
    }

    #[cached(key = "list:{id}", ttl = "1h", cache = self.cache)]
    async fn list(&self, id: u64) -> Vec<u64> {
        bump(&self.calls.list);
        vec![id, id + 1]
    }

    #[cached(key = "maybe:{id}", ttl = "1h", tags = ["maybe"], cache_none, cache = self.cache)]
    async fn maybe(&self, id: u64) -> Option<Profile> {
        let version = bump(&self.calls.maybe);
        id.is_multiple_of(2).then_some(Profile { id, version })
    }

    #[cached(key = "fallible:{id}", ttl = "1h", tags = ["fallible"], cache = self.cache)]
    async fn fallible(&self, id: u64) -> Result<Profile, String> {
        let version = bump(&self.calls.fallible);
        if id == 0 {
            Err("no profile 0".to_owned())
        } else {
            Ok(Profile { id, version })
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn hits_of_a_clone_type_decode_once_then_clone() {
    let svc = Svc::new();
    assert_eq!(
        svc.counted(1).await,
        Counted(1),
        "a miss: computed, not decoded"
    );
    assert_eq!(decodes(), 0);
    assert_eq!(svc.counted(1).await, Counted(1));
    assert_eq!(
        decodes(),
        1,
        "the first hit decodes the stored bytes and keeps the value"
    );
    for _ in 0..5 {
        assert_eq!(svc.counted(1).await, Counted(1));
    }
    assert_eq!(decodes(), 1, "later hits clone the kept value");
    // The manual API decodes (it keeps no copy).
    assert_eq!(
        svc.cache.get::<Counted>("counted:1").await.unwrap(),
        Some(Counted(1))
    );
    assert_eq!(decodes(), 2);
    // After an invalidation the entry is recomputed, and its first hit decodes again.
    svc.cache.invalidate_tags(["counted"]).await.unwrap();
    assert_eq!(svc.counted(1).await, Counted(1));
    assert_eq!(decodes(), 2);
    assert_eq!(svc.counted(1).await, Counted(1));
    assert_eq!(svc.counted(1).await, Counted(1));
    assert_eq!(decodes(), 3);
    assert_eq!(svc.cache.stats().hits, 9);
}

#[tokio::test(flavor = "current_thread")]
async fn hits_of_a_type_that_is_not_clone_decode_every_time() {
    let svc = Svc::new();
    assert_eq!(svc.counted_once(2).await, CountedOnce(2));
    for n in 1..=3 {
        assert_eq!(svc.counted_once(2).await, CountedOnce(2));
        assert_eq!(decodes(), n);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_decoded_copy_never_outlives_a_tag_invalidation() {
    let svc = Svc::new();
    let first = svc.profile(1).await;
    assert_eq!(first, Profile { id: 1, version: 1 });
    // Hits: the first decodes the stored bytes and keeps the copy, the next ones clone it.
    for _ in 0..3 {
        assert_eq!(svc.profile(1).await, first);
    }
    assert_eq!(Svc::calls(&svc.calls.profile), 1);

    svc.cache.invalidate_tags(["profile:1"]).await.unwrap();
    let second = svc.profile(1).await;
    assert_eq!(
        second,
        Profile { id: 1, version: 2 },
        "recomputed after the invalidation"
    );
    assert_eq!(svc.profile(1).await, second, "and cached again");

    svc.cache.invalidate_tags(["profiles"]).await.unwrap();
    assert_eq!(svc.profile(1).await.version, 3);
    assert_eq!(svc.profile(1).await.version, 3);

    // A dropped tag version (an eviction of the tag key) invalidates too.
    assert!(testing::memory_evict_tag(&svc.cache, "profiles"));
    assert_eq!(svc.profile(1).await.version, 4);
    assert_eq!(Svc::calls(&svc.calls.profile), 4);
}

#[tokio::test(flavor = "current_thread")]
async fn deletes_and_pattern_invalidations_reach_decoded_copies() {
    let svc = Svc::new();
    assert_eq!(svc.profile(5).await.version, 1);
    assert_eq!(svc.profile(5).await.version, 1);
    assert!(svc.cache.delete("profile:5").await.unwrap());
    assert_eq!(svc.profile(5).await.version, 2);
    assert_eq!(svc.profile(5).await.version, 2);
    assert_eq!(svc.cache.invalidate_pattern("profile:*").await.unwrap(), 1);
    assert_eq!(svc.profile(5).await.version, 3);
    assert_eq!(svc.profile(5).await.version, 3);
}

#[tokio::test(flavor = "current_thread")]
async fn another_type_reading_the_same_key_decodes_the_stored_bytes() {
    let svc = Svc::new();
    assert_eq!(svc.small(1).await, 8);
    assert_eq!(svc.small(1).await, 8, "a hit, which keeps a decoded `u32`");
    // Another `Clone` type at the same key: the kept copy is a `u32`, so this hit decodes the
    // bytes (`8`) as a `u64`, and its own computation does not run.
    assert_eq!(svc.wide(1).await, 8);
    assert_eq!(svc.wide(1).await, 8);
    assert_eq!(Svc::calls(&svc.calls.wide), 0);
    assert_eq!(svc.cache.get::<u64>("n:1").await.unwrap(), Some(8));
    assert_eq!(svc.small(1).await, 8);
    assert_eq!(Svc::calls(&svc.calls.small), 1);

    // A type the stored value does not decode as: an undecodable entry, counted, recomputed
    // and overwritten.
    let before = svc.cache.stats().decode_failures;
    assert_eq!(svc.text(1).await, "text 1");
    assert_eq!(svc.cache.stats().decode_failures, before + 1);
    assert_eq!(svc.text(1).await, "text 1");
    assert_eq!(Svc::calls(&svc.calls.text), 1);
    // Now the entry holds a string: the `u32` function finds it undecodable in turn.
    assert_eq!(svc.small(1).await, 8);
    assert_eq!(Svc::calls(&svc.calls.small), 2);
    assert_eq!(svc.cache.stats().decode_failures, before + 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_type_that_is_not_clone_is_still_cached() {
    let svc = Svc::new();
    let first = svc.token(3).await;
    assert_eq!(first, Token("token 3 #1".to_owned()));
    assert_eq!(svc.token(3).await, first);
    assert_eq!(svc.token(3).await, first);
    assert_eq!(Svc::calls(&svc.calls.token), 1);
    assert_eq!(svc.cache.stats().hits, 2);
}

#[tokio::test(flavor = "current_thread")]
async fn hits_get_their_own_copy() {
    let svc = Svc::new();
    let mut mine = svc.list(2).await;
    assert_eq!(svc.list(2).await, vec![2, 3]);
    mine.push(99);
    let mut again = svc.list(2).await;
    again.clear();
    assert_eq!(
        svc.list(2).await,
        vec![2, 3],
        "callers' changes do not reach the cache"
    );
    assert_eq!(Svc::calls(&svc.calls.list), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn optional_and_fallible_values_keep_copies_and_honour_invalidations() {
    let svc = Svc::new();
    // A cached `None` (negative caching) and a cached `Some`.
    assert_eq!(svc.maybe(1).await, None);
    assert_eq!(svc.maybe(1).await, None);
    assert_eq!(svc.maybe(2).await.map(|p| p.version), Some(2));
    assert_eq!(svc.maybe(2).await.map(|p| p.version), Some(2));
    assert_eq!(Svc::calls(&svc.calls.maybe), 2);
    svc.cache.invalidate_tags(["maybe"]).await.unwrap();
    assert_eq!(svc.maybe(1).await, None);
    assert_eq!(svc.maybe(2).await.map(|p| p.version), Some(4));
    assert_eq!(Svc::calls(&svc.calls.maybe), 4);

    assert_eq!(svc.fallible(1).await.map(|p| p.version), Ok(1));
    assert_eq!(svc.fallible(1).await.map(|p| p.version), Ok(1));
    assert!(svc.fallible(0).await.is_err());
    assert!(svc.fallible(0).await.is_err(), "errors are not cached");
    svc.cache.invalidate_tags(["fallible"]).await.unwrap();
    assert_eq!(svc.fallible(1).await.map(|p| p.version), Ok(4));
    assert_eq!(Svc::calls(&svc.calls.fallible), 4);
}

#[tokio::test(flavor = "current_thread")]
async fn undecodable_entries_are_counted_misses() {
    let svc = Svc::new();
    let full = svc.cache.full_key("profile:9");
    assert!(testing::memory_put_raw(&svc.cache, &full, b"not an envelope".to_vec()).await);
    assert_eq!(svc.profile(9).await.version, 1);
    assert_eq!(svc.cache.stats().decode_failures, 1);
    assert_eq!(svc.cache.stats().misses, 1);
    // Overwritten by the fill: a hit now.
    assert_eq!(svc.profile(9).await.version, 1);
    assert_eq!(svc.cache.stats().hits, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn entries_with_room_for_a_copy_weigh_it() {
    let svc = Svc::new();
    // The same value at the same key, without tags: once written by `set` (no decoded copy
    // kept), once by a `#[cached]` call of a `Clone` type (room for one).
    let opts = cachette::Options::new().ttl(std::time::Duration::from_secs(3600));
    svc.cache.set("n:4", &11u32, &opts).await.unwrap();
    let (count, plain) = testing::memory_usage(&svc.cache).await.unwrap();
    assert_eq!(count, 1);
    svc.cache.delete("n:4").await.unwrap();
    assert_eq!(svc.small(4).await, 11);
    let (count, with_copy) = testing::memory_usage(&svc.cache).await.unwrap();
    assert_eq!(count, 1);
    assert!(
        with_copy >= plain + 32,
        "an entry with room for a decoded copy weighs more ({with_copy} vs {plain} bytes)"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn counters_stay_per_cache_for_one_call_name() {
    // Two caches, one call site (one static name): each cache counts its own calls.
    let a = Svc::new();
    let b = Svc::new();
    for _ in 0..3 {
        let _ = a.profile(1).await;
    }
    let _ = b.profile(1).await;
    let name = |cache: &Cache| {
        cache
            .stats_by_name()
            .into_iter()
            .find(|(n, _)| n.ends_with("::profile"))
            .map(|(_, s)| (s.hits, s.misses))
    };
    assert_eq!(name(&a.cache), Some((2, 1)));
    assert_eq!(name(&b.cache), Some((0, 1)));
    assert_eq!(a.cache.stats().hits, 2);
    assert_eq!(b.cache.stats().hits, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_add_up_across_threads() {
    let svc = std::sync::Arc::new(Svc::new());
    let _ = svc.profile(1).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let svc = std::sync::Arc::clone(&svc);
            tokio::spawn(async move {
                for _ in 0..250 {
                    assert_eq!(svc.profile(1).await.version, 1);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = svc.cache.stats();
    assert_eq!((stats.hits, stats.misses), (2_000, 1));
    let by_name: u64 = svc.cache.stats_by_name().iter().map(|(_, s)| s.hits).sum();
    assert_eq!(by_name, 2_000);
}
