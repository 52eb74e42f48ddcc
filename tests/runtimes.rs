//! A cache used from more than one Tokio runtime: a connection made on a runtime that is gone
//! (its driver task dropped with it) must not fail the next runtime's calls. The shape users
//! hit: a `static` cache (the process-wide default) and one `#[tokio::test]` runtime per test.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, Options};
use redis_server::RedisServer;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A call of `key` returning `value`; whether it computed (a miss).
async fn computed(cache: &Cache, key: &str, value: u64) -> bool {
    let runs = AtomicUsize::new(0);
    let v = cache
        .get_or_compute(key, &Options::new(), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            value
        })
        .await;
    assert_eq!(v, value);
    runs.load(Ordering::SeqCst) > 0
}

#[test]
fn a_hit_from_a_new_runtime_after_the_first_one_is_dropped() {
    let server = RedisServer::start();
    let cache = Cache::builder().redis(server.url()).build().unwrap();

    let a = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    a.block_on(async {
        assert!(computed(&cache, "k", 7).await, "the first call fills");
        assert!(!computed(&cache, "k", 7).await, "then it is a hit");
    });
    drop(a);

    let errors_before = cache.stats().backend_errors;
    let b = tokio::runtime::Runtime::new().unwrap();
    b.block_on(async {
        assert!(
            !computed(&cache, "k", 7).await,
            "a hit from runtime B after runtime A was dropped"
        );
        assert!(!computed(&cache, "k", 7).await, "and the next one too");
    });
    assert_eq!(
        cache.stats().backend_errors,
        errors_before,
        "no failed round trip in runtime B"
    );
}

/// The server and cache shared by the two `#[tokio::test]`s below (the harness kills a
/// `static` server when the test process exits).
fn shared() -> &'static (RedisServer, Cache) {
    static SHARED: OnceLock<(RedisServer, Cache)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let server = RedisServer::start();
        let cache = Cache::builder().redis(server.url()).build().unwrap();
        (server, cache)
    })
}

/// One turn at a time (the tests may run in parallel threads).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Whether a test filled the key.
static FILLED: AtomicBool = AtomicBool::new(false);
/// Set when the runtime of the test that filled the key drops its tasks (shuts down).
static FILLER_RUNTIME_GONE: AtomicBool = AtomicBool::new(false);

struct SetOnDrop(&'static AtomicBool);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Whichever test runs first fills `shared`; the other waits until the first one's runtime
/// is gone, then must hit.
async fn fill_or_hit_from_another_runtime() {
    let _turn = TURN.lock().await;
    let (_server, cache) = shared();
    if !FILLED.swap(true, Ordering::SeqCst) {
        assert!(computed(cache, "shared", 11).await, "the first test fills");
        // Dropped when this test's runtime shuts down (after the connection's driver task,
        // spawned earlier).
        let gone = SetOnDrop(&FILLER_RUNTIME_GONE);
        tokio::spawn(async move {
            let _gone = gone;
            std::future::pending::<()>().await
        });
        return;
    }
    // A bounded wait for the other test's runtime to end, not a timing assertion.
    for _ in 0..1000 {
        if FILLER_RUNTIME_GONE.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(FILLER_RUNTIME_GONE.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let errors_before = cache.stats().backend_errors;
    assert!(
        !computed(cache, "shared", 11).await,
        "the second test hits what the first one stored"
    );
    assert_eq!(cache.stats().backend_errors, errors_before);
}

#[tokio::test]
async fn static_cache_first_test() {
    fill_or_hit_from_another_runtime().await;
}

#[tokio::test]
async fn static_cache_second_test() {
    fill_or_hit_from_another_runtime().await;
}

/// A call of `key` tagged `t`; whether it computed.
async fn computed_tagged(cache: &Cache, key: &str) -> bool {
    let runs = AtomicUsize::new(0);
    cache
        .get_or_compute(key, &Options::new().tags(["t"]), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            1u64
        })
        .await;
    runs.load(Ordering::SeqCst) > 0
}

/// An invalidation kept during an outage is retried by a task of the runtime that kept it.
/// When that runtime ends, the task goes with it; the invalidation must still be applied once
/// Redis answers, from whichever runtime uses the cache next (until then this process
/// bypasses the entries it covers, so a lost retry task would stop caching them for good).
#[test]
fn an_invalidation_kept_on_a_runtime_that_ended_is_applied_from_the_next() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .op_timeout(Duration::from_millis(100))
        .build()
        .unwrap();

    let a = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    a.block_on(async {
        assert!(computed_tagged(&cache, "k").await, "the first call fills");
        assert!(!computed_tagged(&cache, "k").await, "then it is a hit");
        server.pause();
        assert!(cache.invalidate_tags(["t"]).await.is_err());
        assert_eq!(cache.pending_invalidations(), 1, "kept for retry");
    });
    drop(a); // with it, the retry task it was running
    server.resume();

    let b = tokio::runtime::Runtime::new().unwrap();
    b.block_on(async {
        // A bounded wait for the retry (its backoff starts at 50 ms), not a timing assertion.
        for _ in 0..200 {
            if cache.pending_invalidations() == 0 {
                break;
            }
            assert!(
                computed_tagged(&cache, "k").await,
                "bypassed while the invalidation is kept"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            cache.pending_invalidations(),
            0,
            "the invalidation kept on runtime A is applied from runtime B"
        );
        computed_tagged(&cache, "k").await;
        assert!(!computed_tagged(&cache, "k").await, "caching works again");
    });
}
