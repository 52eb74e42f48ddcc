//! Stampede protection and freshness, on both backends: single-flight, fill locks (across
//! real processes), early refresh, stale-while-revalidate, stale-if-error, jitter. Time and
//! randomness are driven by a manual clock and scripted random numbers: nothing here sleeps
//! to make time pass, and nothing asserts on timings.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::__private::testing;
use cachette::clock::{ManualClock, ScriptedRandom};
use cachette::{Cache, CacheBuilder, EarlyRefresh, Fallible, FallibleShared, LockOptions, Options};
use fixture::{Counter, Fixture};
use redis_server::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

const T0: u64 = 1_800_000_000_000;

/// A deterministic cache: manual clock, scripted random numbers (no early refresh, no jitter
/// unless a test asks).
fn controlled(
    b: CacheBuilder,
    clock: &Arc<ManualClock>,
    random: &Arc<ScriptedRandom>,
) -> CacheBuilder {
    b.clock(clock.clone())
        .random(random.clone())
        .jitter(0.0)
        .early_refresh(None)
}

struct Ctl {
    fx: Fixture,
    clock: Arc<ManualClock>,
    random: Arc<ScriptedRandom>,
}

/// The store a suite test runs on.
#[derive(Clone, Copy)]
enum Kind {
    Redis,
    Memory,
    Cluster,
}

fn ctl(kind: Kind) -> Ctl {
    let clock = Arc::new(ManualClock::new(T0));
    let random = Arc::new(ScriptedRandom::constant(0.5));
    let (c, r) = (clock.clone(), random.clone());
    let fx = match kind {
        Kind::Redis => Fixture::redis_with(move |b| controlled(b, &c, &r)),
        Kind::Memory => Fixture::memory_with(move |b| controlled(b, &c, &r)),
        Kind::Cluster => Fixture::cluster_with(move |b| controlled(b, &c, &r)),
    };
    Ctl { fx, clock, random }
}

/// A computation that blocks until released, counting its starts.
#[derive(Clone)]
struct Gate {
    started: Arc<AtomicUsize>,
    permits: Arc<Semaphore>,
    entered: Arc<Notify>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            started: Arc::default(),
            permits: Arc::new(Semaphore::new(0)),
            entered: Arc::default(),
        }
    }
}

impl Gate {
    async fn run<T>(&self, value: T) -> T {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.entered.notify_one();
        if let Ok(permit) = self.permits.acquire().await {
            permit.forget();
        }
        value
    }
    /// Lets `n` computations through.
    fn release(&self, n: usize) {
        self.permits.add_permits(n);
    }
    fn starts(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
}

mod suite {
    use super::*;

    pub async fn single_flight_1000_calls(kind: Kind) {
        let c = ctl(kind);
        let cache = c.fx.cache.clone();
        let counter = Counter::default();
        let opts = Options::new().tags(["users"]);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..1000 {
            let (cache, counter, opts) = (cache.clone(), counter.clone(), opts.clone());
            tasks.spawn(async move {
                cache
                    .get_or_compute("cold", &opts, || async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        counter.compute(7u64).await
                    })
                    .await
            });
        }
        let results = tasks.join_all().await;
        assert_eq!(results.len(), 1000);
        assert!(results.iter().all(|&v| v == 7));
        assert_eq!(counter.runs(), 1, "1,000 concurrent calls, one computation");
        assert_eq!(testing::in_flight(&cache), 0, "nothing remains per key");
        eprintln!("coalesced calls: {}", cache.stats().coalesced);
    }

    pub async fn dropped_leader(kind: Kind) {
        let c = ctl(kind);
        let cache = c.fx.cache.clone();
        let gate = Gate::default();
        let opts = Options::new();
        let entered = gate.entered.notified();
        let leader = {
            let (cache, gate, opts) = (cache.clone(), gate.clone(), opts.clone());
            tokio::spawn(async move { cache.get_or_compute("k", &opts, || gate.run(1u8)).await })
        };
        entered.await;
        let mut followers = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (cache, opts) = (cache.clone(), opts.clone());
            followers
                .spawn(async move { cache.get_or_compute("k", &opts, || async { 2u8 }).await });
        }
        // Wait until every follower waits on the leader's flight.
        while cache.stats().coalesced < 10 {
            tokio::task::yield_now().await;
        }
        leader.abort();
        let results = followers.join_all().await;
        assert!(results.iter().all(|&v| v == 2), "{results:?}");
        assert_eq!(gate.starts(), 1, "the dropped leader ran once");
        assert_eq!(
            cache.stats().stores,
            1,
            "one follower took over: one more computation"
        );
        assert_eq!(testing::in_flight(&cache), 0);
    }

    pub async fn errors_in_flight(kind: Kind) {
        let c = ctl(kind);
        let cache = c.fx.cache.clone();
        let opts = Options::new();
        for shared in [false, true] {
            let key = if shared { "shared" } else { "unshared" };
            let gate = Gate::default();
            let coalesced_before = cache.stats().coalesced;
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..5 {
                let (cache2, gate2, opts) = (cache.clone(), gate.clone(), opts.clone());
                let entered = gate.entered.notified();
                tasks.spawn(async move {
                    let f = || gate2.run(Err::<u8, String>(format!("db down {i}")));
                    if shared {
                        cache2.cached_with(key, &opts, FallibleShared, f).await
                    } else {
                        cache2.cached_with(key, &opts, Fallible, f).await
                    }
                });
                if i == 0 {
                    // The first call leads; the others join its flight.
                    entered.await;
                }
            }
            while cache.stats().coalesced < coalesced_before + 4 {
                tokio::task::yield_now().await;
            }
            gate.release(5);
            let results = tasks.join_all().await;
            assert!(results.iter().all(Result::is_err), "{results:?}");
            if shared {
                assert_eq!(
                    gate.starts(),
                    1,
                    "a Clone error is shared with the waiting callers"
                );
                assert!(
                    results.iter().all(|r| r == &Err("db down 0".to_owned())),
                    "{results:?}"
                );
            } else {
                assert_eq!(
                    gate.starts(),
                    5,
                    "each waiting caller runs its own computation"
                );
            }
        }
    }

    pub async fn keys_do_not_wait_on_each_other(kind: Kind) {
        let c = ctl(kind);
        let cache = c.fx.cache.clone();
        let gate = Gate::default();
        let opts = Options::new();
        let entered = gate.entered.notified();
        let blocked = {
            let (cache, gate, opts) = (cache.clone(), gate.clone(), opts.clone());
            tokio::spawn(async move { cache.get_or_compute("a", &opts, || gate.run(1u8)).await })
        };
        entered.await;
        // Key "b" completes while "a" is still computing.
        assert_eq!(cache.get_or_compute("b", &opts, || async { 2u8 }).await, 2);
        assert!(!blocked.is_finished());
        gate.release(1);
        assert_eq!(blocked.await.unwrap(), 1);
    }

    pub async fn lock_safety(kind: Kind) {
        let c = ctl(kind);
        let cache = &c.fx.cache;
        let old = cache
            .try_lock("job", Duration::from_millis(200))
            .await
            .unwrap()
            .expect("free");
        assert!(
            cache
                .try_lock("job", Duration::from_secs(5))
                .await
                .unwrap()
                .is_none()
        );
        // The holder outlives its lock (real time: the backend expires it).
        tokio::time::sleep(Duration::from_millis(400)).await;
        let new = cache
            .try_lock("job", Duration::from_secs(5))
            .await
            .unwrap()
            .expect("the expired lock is free again");
        assert!(
            !old.extend(Duration::from_secs(5)).await.unwrap(),
            "not the owner"
        );
        assert!(
            !old.release().await.unwrap(),
            "the old holder does not release the new lock"
        );
        assert!(
            cache
                .try_lock("job", Duration::from_secs(5))
                .await
                .unwrap()
                .is_none(),
            "the new holder still has it"
        );
        assert!(new.extend(Duration::from_secs(5)).await.unwrap());
        assert!(new.release().await.unwrap());
        assert!(
            cache
                .lock("job", Duration::from_secs(5), Duration::from_millis(100))
                .await
                .unwrap()
                .is_some()
        );
    }

    /// XFetch: with Δ left and δ the last computation time, a hit refreshes with probability
    /// exp(-Δ/(β·δ)). The entry is planted with δ = 1 s and Δ = 1 s: p = e^-1 ≈ 0.368.
    pub async fn early_refresh_probability(kind: Kind) {
        let c = ctl(kind);
        let cache = &c.fx.cache;
        let counter = Counter::default();
        let opts = Options::new().early_refresh(EarlyRefresh::Beta(1.0));
        let plant = |fresh_for_ms: u64| {
            format!(
                r#"{{"v":1,"tags":[],"created_ms":{T0},"fresh_until_ms":{},"compute_us":1000000,"value":1}}"#,
                T0 + fresh_for_ms
            )
        };
        c.fx.plant("x", plant(1000).as_bytes()).await;
        c.random.set(0.37); // above e^-1: no refresh
        assert_eq!(
            cache
                .get_or_compute("x", &opts, || counter.compute(2u32))
                .await,
            1
        );
        assert_eq!(counter.runs(), 0);
        c.random.set(0.36); // below e^-1: refresh, and the caller gets the new value
        assert_eq!(
            cache
                .get_or_compute("x", &opts, || counter.compute(2u32))
                .await,
            2
        );
        assert_eq!(counter.runs(), 1);
        assert_eq!(cache.stats().early_refreshes, 1);

        // β = 2 doubles the reach: p = e^-0.5 ≈ 0.607.
        c.fx.plant("x", plant(1000).as_bytes()).await;
        c.random.set(0.6);
        let beta2 = Options::new().early_refresh(EarlyRefresh::Beta(2.0));
        assert_eq!(
            cache
                .get_or_compute("x", &beta2, || counter.compute(3u32))
                .await,
            3
        );
        // Far from expiry nothing refreshes, even with the smallest random number.
        c.fx.plant("x", plant(3_600_000).as_bytes()).await;
        c.random.set(0.0);
        assert_eq!(
            cache
                .get_or_compute("x", &opts, || counter.compute(4u32))
                .await,
            1
        );
        // Off means off.
        c.fx.plant("x", plant(1).as_bytes()).await;
        let off = Options::new().early_refresh(EarlyRefresh::Off);
        assert_eq!(
            cache
                .get_or_compute("x", &off, || counter.compute(5u32))
                .await,
            1
        );
        assert_eq!(counter.runs(), 2);
    }

    pub async fn early_refresh_single_refresher(kind: Kind) {
        let c = ctl(kind);
        let cache = c.fx.cache.clone();
        let planted = format!(
            r#"{{"v":1,"tags":[],"created_ms":{T0},"fresh_until_ms":{},"compute_us":1000000,"value":1}}"#,
            T0 + 10
        );
        c.fx.plant("x", planted.as_bytes()).await;
        c.random.set(0.0); // every hit wants to refresh
        let opts = Options::new().early_refresh(EarlyRefresh::Beta(1.0));
        let gate = Gate::default();
        let entered = gate.entered.notified();
        let refresher = {
            let (cache, gate, opts) = (cache.clone(), gate.clone(), opts.clone());
            tokio::spawn(async move { cache.get_or_compute("x", &opts, || gate.run(2u32)).await })
        };
        entered.await;
        for _ in 0..20 {
            let v = cache.get_or_compute("x", &opts, || gate.run(3u32)).await;
            assert_eq!(v, 1, "others keep getting the cached value meanwhile");
        }
        gate.release(1);
        assert_eq!(refresher.await.unwrap(), 2);
        assert_eq!(gate.starts(), 1, "one early refresh at a time");
        assert_eq!(cache.stats().early_refreshes, 1);
    }

    pub async fn stale_while_revalidate(kind: Kind) {
        let c = ctl(kind);
        let cache = c.fx.cache.clone();
        let opts = Options::new()
            .ttl(Duration::from_secs(10))
            .stale(Duration::from_secs(30))
            .tags(["users"]);
        let v: u32 = cache.get_or_compute("u", &opts, || async { 1 }).await;
        assert_eq!(v, 1);
        c.clock.advance(Duration::from_secs(15)); // past the TTL, inside the stale window
        let gate = Gate::default();
        let entered = gate.entered.notified();
        for _ in 0..5 {
            let g = gate.clone();
            let v = cache
                .cached_with_spawn("u", &opts, cachette::Plain, move || async move {
                    g.run(2u32).await
                })
                .await;
            assert_eq!(v, 1, "the stale value, at once");
        }
        entered.await;
        assert_eq!(cache.stats().stale_served, 5);
        gate.release(1);
        while cache.stats().stores < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.starts(), 1, "a single background refresh");
        let v: u32 = cache.get_or_compute("u", &opts, || async { 3 }).await;
        assert_eq!(v, 2, "the refreshed value, fresh again");

        // Inline flavour: the caller that finds the stale entry refreshes and gets the new
        // value.
        c.clock.advance(Duration::from_secs(15));
        let v: u32 = cache.get_or_compute("u", &opts, || async { 4 }).await;
        assert_eq!(v, 4);

        // Past the stale window: a plain miss.
        c.clock.advance(Duration::from_secs(60));
        let v: u32 = cache.get_or_compute("u", &opts, || async { 5 }).await;
        assert_eq!(v, 5);

        // Invalidation beats the stale window.
        c.clock.advance(Duration::from_secs(15));
        cache.invalidate_tags(["users"]).await.unwrap();
        let served = cache.stats().stale_served;
        let v: u32 = cache.get_or_compute("u", &opts, || async { 6 }).await;
        assert_eq!(v, 6, "an invalidated entry is never served stale");
        assert_eq!(cache.stats().stale_served, served);
    }

    pub async fn stale_if_error(kind: Kind) {
        let c = ctl(kind);
        let cache = &c.fx.cache;
        let opts = Options::new()
            .ttl(Duration::from_secs(10))
            .stale_if_error(Duration::from_secs(300))
            .tags(["users"]);
        let ok: Result<u32, String> = cache
            .get_or_try_compute("u", &opts, || async { Ok(1) })
            .await;
        assert_eq!(ok, Ok(1));
        c.clock.advance(Duration::from_secs(20));
        let r: Result<u32, String> = cache
            .get_or_try_compute("u", &opts, || async { Err("db down".into()) })
            .await;
        assert_eq!(r, Ok(1), "the stale value instead of the error");
        assert_eq!(cache.stats().stale_if_error, 1);
        // A success replaces it.
        let r: Result<u32, String> = cache
            .get_or_try_compute("u", &opts, || async { Ok(2) })
            .await;
        assert_eq!(r, Ok(2));
        // Beyond the window: the error.
        c.clock.advance(Duration::from_secs(400));
        let r: Result<u32, String> = cache
            .get_or_try_compute("u", &opts, || async { Err("db down".into()) })
            .await;
        assert_eq!(r, Err("db down".to_owned()));
        // Invalidated: the error, never the invalidated value.
        let _: Result<u32, String> = cache
            .get_or_try_compute("u", &opts, || async { Ok(3) })
            .await;
        c.clock.advance(Duration::from_secs(20));
        cache.invalidate_tags(["users"]).await.unwrap();
        let r: Result<u32, String> = cache
            .get_or_try_compute("u", &opts, || async { Err("db down".into()) })
            .await;
        assert_eq!(r, Err("db down".to_owned()));
        assert_eq!(cache.stats().stale_if_error, 1);
    }

    pub async fn ttl_jitter(kind: Kind) {
        let c = ctl(kind);
        let cache = &c.fx.cache;
        let counter = Counter::default();
        let opts = Options::new().ttl(Duration::from_secs(10)).jitter(0.5);
        c.random.set(1.0); // the largest cut: fresh for 5 s
        cache
            .get_or_compute("a", &opts, || counter.compute(1u8))
            .await;
        c.random.set(0.0); // no cut: fresh for 10 s
        cache
            .get_or_compute("b", &opts, || counter.compute(1u8))
            .await;
        c.clock.advance(Duration::from_secs(6));
        cache
            .get_or_compute("a", &opts, || counter.compute(1u8))
            .await;
        cache
            .get_or_compute("b", &opts, || counter.compute(1u8))
            .await;
        assert_eq!(counter.runs(), 3, "a expired at 5 s, b did not");
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { suite::$name(Kind::Redis).await; }
            )*
        }
        mod on_memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { suite::$name(Kind::Memory).await; }
            )*
        }
        mod on_cluster {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { suite::$name(Kind::Cluster).await; }
            )*
        }
    };
}

both_backends!(
    single_flight_1000_calls,
    dropped_leader,
    errors_in_flight,
    keys_do_not_wait_on_each_other,
    lock_safety,
    early_refresh_probability,
    early_refresh_single_refresher,
    stale_while_revalidate,
    stale_if_error,
    ttl_jitter,
);

// ----- across processes -------------------------------------------------------------------

const CHILD_ENV: &str = "CACHETTE_STAMPEDE_CHILD";

/// Entry point of the child processes of `fill_lock_across_processes` (not a test on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of fill_lock_across_processes"]
async fn stampede_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split('|');
    let (url, lock, key) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap() == "lock",
        parts.next().unwrap().to_owned(),
    );
    let cache = Cache::redis(&url).unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    // Start together: wait for the parent's signal.
    loop {
        let go: Option<String> = redis::cmd("GET")
            .arg("go")
            .query_async(&mut con)
            .await
            .unwrap();
        if go.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut opts = Options::new().tags(["stampede"]);
    if lock {
        opts = opts.lock(LockOptions {
            ttl: Duration::from_secs(10),
            wait: Duration::from_secs(10),
        });
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..250 {
        let (cache, opts, key, mut con) = (cache.clone(), opts.clone(), key.clone(), con.clone());
        let counter_key = format!("computations:{key}");
        tasks.spawn(async move {
            cache
                .get_or_compute(&key, &opts, || async move {
                    let _: u64 = redis::cmd("INCR")
                        .arg(counter_key)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    42u64
                })
                .await
        });
    }
    let results = tasks.join_all().await;
    assert!(results.iter().all(|&v| v == 42));
    println!("child done: {} calls", results.len());
}

fn run_processes(server: &RedisServer, lock: bool, key: &str) -> u64 {
    let exe = std::env::current_exe().unwrap();
    let _: () = server.cmd(&["DEL", "go"]);
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "stampede_child",
                    "--ignored",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(
                    CHILD_ENV,
                    format!(
                        "{}|{}|{}",
                        server.url(),
                        if lock { "lock" } else { "nolock" },
                        key
                    ),
                )
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let _: () = server.cmd(&["SET", "go", "1"]);
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("child done: 250 calls"),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server
        .cmd::<Option<u64>>(&["GET", &format!("computations:{key}")])
        .unwrap_or(0)
}

/// 4 processes × 250 concurrent calls on one cold key: with the fill lock, one computation
/// in total; without it, one per process at most (single-flight still works inside each).
#[test]
fn fill_lock_across_processes() {
    let server = RedisServer::start();
    let with_lock = run_processes(&server, true, "locked");
    assert_eq!(with_lock, 1, "exactly one computation across 4 processes");
    let without = run_processes(&server, false, "unlocked");
    eprintln!(
        "computations across 4 processes x 250 calls: lock on {with_lock}, lock off {without}"
    );
    assert!(
        (1..=4).contains(&without),
        "single-flight bounds each process to one: {without}"
    );
}
