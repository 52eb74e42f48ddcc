//! The memory store's tag versions count in its byte budget: a million distinct tags on a
//! 1 MB store leave its accounting within the budget and the process's resident memory
//! within a small constant of it (own test binary, so that no other test's allocations
//! move the resident size).

#[path = "support/rss.rs"]
mod rss;

use rss::rss_bytes;

use cachette::__private::testing;
use cachette::{Cache, Options};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const BUDGET: u64 = 1024 * 1024;
const TAGS: usize = 1_000_000;

#[tokio::test(flavor = "current_thread")]
async fn a_million_distinct_tags_stay_within_the_byte_budget() {
    let cache = Cache::memory(BUDGET);
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
        weight + entries <= BUDGET,
        "tag versions ({weight} B) and entries ({entries} B) over the budget of {BUDGET} B"
    );
    if let (Some(before), Some(after)) = (before, after) {
        let growth = after.saturating_sub(before);
        assert!(
            growth < 64 * 1024 * 1024,
            "{TAGS} distinct tags grew the resident set by {} MB on a 1 MB store",
            growth / (1024 * 1024)
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
