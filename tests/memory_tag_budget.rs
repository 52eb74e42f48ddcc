//! The memory store's tag versions count in its byte budget: a million distinct tags leave
//! its accounting within the budget and the process's resident memory within 1.5 times it
//! (issue 15's target), on a 64 MB store, and within a small constant of a 1 MB one (own test
//! binary, so that no other test's allocations move the resident size).

#[path = "support/rss.rs"]
mod rss;

use rss::rss_bytes;

use cachette::__private::testing;
use cachette::{Cache, Options};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const TAGS: usize = 1_000_000;

#[tokio::test(flavor = "current_thread")]
async fn a_million_distinct_tags_stay_within_the_byte_budget() {
    // One after the other in one test: resident memory is the process's.
    flood(1024 * 1024, 64 * 1024 * 1024).await;
    flood(64 * 1024 * 1024, 96 * 1024 * 1024).await;
}

/// A million distinct tags invalidated on a store of `budget` bytes: the accounting stays
/// within the budget, the resident memory grows by at most `most` bytes, and the entry whose
/// tag version the flood evicted is computed again.
async fn flood(budget: u64, most: u64) {
    let cache = Cache::memory(budget);
    let computed = Arc::new(AtomicU32::new(0));
    let get = |cache: Cache, computed: Arc<AtomicU32>| async move {
        cache
            .get_or_compute("entry", &Options::new().tags(["first"]), || async move {
                computed.fetch_add(1, Ordering::Relaxed);
                7u32
            })
            .await
    };
    assert_eq!(get(cache.clone(), computed.clone()).await, 7);
    assert_eq!(get(cache.clone(), computed.clone()).await, 7);
    assert_eq!(
        computed.load(Ordering::Relaxed),
        1,
        "the second call is a hit"
    );

    let before = rss_bytes();
    let mut tags = Vec::with_capacity(1000);
    for chunk in 0..TAGS / 1000 {
        tags.clear();
        tags.extend((0..1000).map(|i| format!("tag:{}", chunk * 1000 + i)));
        cache.invalidate_tags(&tags).await.unwrap();
    }
    let (count, weight) = testing::memory_tag_usage(&cache).unwrap();
    let (_, entries) = testing::memory_usage(&cache).await.unwrap();
    let after = rss_bytes();
    eprintln!(
        "{count} tag versions kept, weighing {weight} B, entries {entries} B; \
         RSS before {before:?}, after {after:?}"
    );
    assert!(
        weight + entries <= budget,
        "tag versions ({weight} B) and entries ({entries} B) over the budget of {budget} B"
    );
    if let (Some(before), Some(after)) = (before, after) {
        let growth = after.saturating_sub(before);
        assert!(
            growth <= most,
            "{TAGS} distinct tags grew the resident set by {} MB on a {} MB store",
            growth >> 20,
            budget >> 20
        );
    }

    // The flood evicted the version of `first` (least recently used): its entry is invalid,
    // never served again.
    assert_eq!(get(cache.clone(), computed.clone()).await, 7);
    assert_eq!(
        computed.load(Ordering::Relaxed),
        2,
        "an entry whose tag version was evicted is computed again"
    );
}
