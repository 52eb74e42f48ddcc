//! The embedded store stays within its byte budget.

use cachette::__private::testing;
use cachette::{Cache, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_stays_within_its_byte_budget() {
    let budget = 1024 * 1024;
    let cache = Cache::memory(budget);
    let value = "x".repeat(1000);
    for i in 0..10_000 {
        cache
            .set(&format!("k:{i}"), &value, &Options::new())
            .await
            .unwrap();
    }
    let (count, bytes) = testing::memory_usage(&cache).await.unwrap();
    assert!(
        bytes <= budget,
        "{bytes} bytes stored over a budget of {budget}"
    );
    assert!(
        count > 100 && count < 10_000,
        "evicted down to the budget: {count} entries"
    );
    // What is kept is served (CLOCK eviction decides which entries stay, so this does not
    // ask for the most recent ones).
    let mut present = 0;
    for i in 0..10_000 {
        if cache
            .get::<String>(&format!("k:{i}"))
            .await
            .unwrap()
            .is_some()
        {
            present += 1;
        }
    }
    assert_eq!(present, count, "every entry kept is served");
}

/// A loop of memory hits takes part in Tokio's cooperative budget: on a current-thread
/// runtime, a task spawned before the loop runs while the loop is still going (counted in
/// iterations, not time).
#[tokio::test(flavor = "current_thread")]
async fn a_loop_of_memory_hits_lets_other_tasks_run() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const HITS: u32 = 10_000;
    let cache = Cache::memory(1 << 20);
    let opts = Options::new().tags(["t"]);
    cache.get_or_compute("k", &opts, || async { 1u32 }).await;
    cache.set("m", &1u32, &Options::new()).await.unwrap();

    // The cached-call path, then the manual `get`.
    for manual in [false, true] {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let other = tokio::spawn(async move { flag.store(true, Ordering::Release) });
        let mut ran_at = None;
        for i in 0..HITS {
            let v = if manual {
                cache.get::<u32>("m").await.unwrap()
            } else {
                Some(cache.get_or_compute("k", &opts, || async { 2u32 }).await)
            };
            assert_eq!(v, Some(1), "a hit");
            if ran.load(Ordering::Acquire) {
                ran_at = Some(i);
                break;
            }
        }
        assert!(
            ran_at.is_some(),
            "the spawned task did not run during {HITS} hits (manual get: {manual})"
        );
        other.await.unwrap();
    }
}
