//! Internal maps stay bounded under many distinct keys: in-flight computations, locks, the
//! memory store and its tag versions.

use cachette::__private::testing;
use cachette::{Cache, LockOptions, Options};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_distinct_keys_leave_nothing_behind() {
    let cache = Cache::builder().memory(2 * 1024 * 1024).build().unwrap();
    let lock = LockOptions {
        ttl: Duration::from_secs(5),
        wait: Duration::from_secs(5),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8u64 {
        let cache = cache.clone();
        tasks.spawn(async move {
            for i in 0..2_000u64 {
                let id = t * 1_000_000 + i;
                let opts = Options::new().tags([format!("row:{id}")]).lock(lock);
                let v: u64 = cache
                    .get_or_compute(&format!("row:{id}"), &opts, || async move { id })
                    .await;
                assert_eq!(v, id);
            }
        });
    }
    tasks.join_all().await;
    assert_eq!(
        testing::in_flight(&cache),
        0,
        "no flight outlives its computation"
    );
    let locks = testing::memory_locks(&cache).unwrap();
    assert_eq!(locks, 0, "every fill lock was released");
    let (entries, bytes) = testing::memory_usage(&cache).await.unwrap();
    assert!(bytes <= 2 * 1024 * 1024, "{entries} entries, {bytes} bytes");
    assert!(cache.stats_by_name().len() <= 2);
    assert_eq!(cache.pending_invalidations(), 0);
}
