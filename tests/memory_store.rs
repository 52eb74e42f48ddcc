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
    // What is kept is served (moka's TinyLFU admission decides which entries stay, so this
    // does not ask for the most recent ones).
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
