//! cachette in one screen: a slow "database" behind a cache.
//!
//! ```text
//! cargo run --example quickstart                                        # embedded store, no server
//! CACHETTE_REDIS_URL=redis://127.0.0.1:6379/ cargo run --example quickstart   # Redis
//! ```
//!
//! Prints a miss, a hit, an invalidation and a miss again, with timings.

use cachette::{Cache, Options};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

/// Stands in for a database query: 50 ms per call.
async fn load_user_from_db(id: u64) -> Result<User, String> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(User {
        id,
        name: format!("user-{id}"),
    })
}

/// Cache-aside with tags, through the runtime entry point the `#[cached]` attribute calls.
async fn get_user(cache: &Cache, id: u64) -> Result<User, String> {
    let opts = Options::new()
        .ttl(Duration::from_secs(600))
        .tags([cachette::tag!("users"), cachette::tag!("user:{id}")])
        .name("quickstart::get_user");
    // `key!`/`tag!` escape `id` as `#[cached(key = "user:{id}")]` would.
    cache
        .get_or_try_compute(cachette::key!("user:{id}"), &opts, || load_user_from_db(id))
        .await
}

async fn timed(label: &str, cache: &Cache, id: u64) -> Result<(), String> {
    let before = cache.stats();
    let t = Instant::now();
    let user = get_user(cache, id).await?;
    let took = t.elapsed();
    let after = cache.stats();
    let outcome = if after.hits > before.hits {
        "HIT "
    } else {
        "MISS"
    };
    println!("{label:<28} {outcome} {took:>10.2?}  {user:?}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();

    let cache = Cache::builder()
        .from_env()
        .namespace("quickstart")
        .build()?;
    println!(
        "cachette quickstart on the {} backend\n",
        cache.backend_kind()
    );
    // Start from a clean slate when a previous run left the entry in Redis.
    cache
        .invalidate_tags([cachette::tag!("user:{}", 42)])
        .await?;

    timed("first call", &cache, 42).await?;
    timed("second call", &cache, 42).await?;
    let t = Instant::now();
    cache
        .invalidate_tags([cachette::tag!("user:{}", 42)])
        .await?;
    println!("{:<28} {:>15.2?}", "invalidate tag user:42", t.elapsed());
    timed("after invalidation", &cache, 42).await?;
    timed("and again", &cache, 42).await?;

    let s = cache.stats();
    println!(
        "\nhits {}, misses {}, hit rate {:.0}%, backend errors {}",
        s.hits,
        s.misses,
        s.hit_rate() * 100.0,
        s.backend_errors
    );
    if s.backend_errors > 0 {
        println!("(the backend failed; every call still returned the computed value)");
    }
    Ok(())
}
