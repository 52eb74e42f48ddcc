//! The memory store counts an entry at what it costs: a million distinct small entries (a
//! key, a `u32`) churning through a store leave the process's resident memory within 1.5 times
//! the configured bytes (issue 15's target), not a multiple of them. Own test binary, so that
//! no other test's allocations move the resident size.

#[path = "support/rss.rs"]
mod rss;

use rss::rss_bytes;

use cachette::{Cache, Options};

const BUDGET: u64 = 64 << 20;
/// A million distinct keys: enough to fill the store several times over.
const ENTRIES: u32 = 1_000_000;

#[tokio::test(flavor = "current_thread")]
async fn small_entries_keep_resident_memory_near_the_byte_budget() {
    let cache = Cache::memory(BUDGET);
    let opts = Options::new();
    let before = rss_bytes();
    for i in 0..ENTRIES {
        cache.set(format!("k:{i}"), &i, &opts).await.unwrap();
    }
    let after = rss_bytes();
    let stats = cache.backend_stats().await.unwrap();
    let used = stats.used_memory_bytes.unwrap();
    let kept = stats.keys.unwrap();
    eprintln!("{kept} entries kept, {used} B counted; RSS before {before:?}, after {after:?}");
    assert!(used <= BUDGET, "{used} B counted over the budget");
    assert!(
        kept < u64::from(ENTRIES) / 2,
        "the store evicted: {kept} kept"
    );
    if let (Some(before), Some(after)) = (before, after) {
        let growth = after.saturating_sub(before);
        assert!(
            growth <= BUDGET * 3 / 2,
            "{ENTRIES} small entries grew the resident set by {} MB on a {} MB store",
            growth >> 20,
            BUDGET >> 20
        );
    }
}
