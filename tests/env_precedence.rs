//! The environment wins over settings made in code, whatever their order (`from_env`'s
//! table). Every case is in one `#[test]`: they set and remove process environment variables
//! one after the other, and nothing else in this binary reads them.

use cachette::{Cache, Ttl};
use std::time::Duration;

fn set(name: &str, value: &str) {
    // SAFETY: this binary's only test runs alone and sets variables sequentially; no other
    // thread reads or writes the environment meanwhile.
    unsafe { std::env::set_var(name, value) }
}

fn remove(name: &str) {
    // SAFETY: as in `set`.
    unsafe { std::env::remove_var(name) }
}

#[test]
fn the_environment_wins_whatever_the_order() {
    for name in [
        "CACHETTE_DISABLED",
        "CACHETTE_REDIS_URL",
        "REDIS_URL",
        "CACHETTE_MEMORY_BYTES",
        "CACHETTE_NAMESPACE",
        "CACHETTE_VERSION",
        "CACHETTE_TTL_PROFILES",
        "CACHETTE_REDIS_CLUSTER_URLS",
        "CACHETTE_REDIS_SENTINEL_URLS",
        "CACHETTE_REDIS_SENTINEL_MASTER",
    ] {
        remove(name);
    }

    set("CACHETTE_NAMESPACE", "fromenv");
    let before = Cache::builder()
        .from_env()
        .namespace("incode")
        .build()
        .expect("builds");
    let after = Cache::builder()
        .namespace("incode")
        .from_env()
        .build()
        .expect("builds");
    assert_eq!(
        before.full_key("k"),
        "fromenv:k",
        "namespace set in code after from_env"
    );
    assert_eq!(
        after.full_key("k"),
        "fromenv:k",
        "namespace set in code before from_env"
    );
    remove("CACHETTE_NAMESPACE");

    set("CACHETTE_VERSION", "v9");
    let before = Cache::builder()
        .from_env()
        .version("v1")
        .build()
        .expect("builds");
    let after = Cache::builder()
        .version("v1")
        .from_env()
        .build()
        .expect("builds");
    assert_eq!(before.full_key("k"), "cachette:v9:k");
    assert_eq!(after.full_key("k"), "cachette:v9:k");
    remove("CACHETTE_VERSION");

    set("CACHETTE_DISABLED", "1");
    let before = Cache::builder()
        .from_env()
        .memory(1 << 20)
        .build()
        .expect("builds");
    assert_eq!(
        before.backend_kind(),
        "disabled",
        "backend set in code after from_env"
    );
    remove("CACHETTE_DISABLED");

    // TTL profiles: the variable's profiles win over the same names set in code, before or
    // after `from_env`; profiles it does not name stay as set in code.
    set("CACHETTE_TTL_PROFILES", "session=1h");
    let profile = |c: &Cache, name: &'static str| c.resolve_ttl(&Ttl::Profile(name.into()));
    for (order, cache) in [
        (
            "code after from_env",
            Cache::builder()
                .from_env()
                .ttl_profile("session", Duration::from_secs(5))
                .ttl_profile("presence", Duration::from_secs(60))
                .build(),
        ),
        (
            "code before from_env",
            Cache::builder()
                .ttl_profile("session", Duration::from_secs(5))
                .ttl_profile("presence", Duration::from_secs(60))
                .from_env()
                .build(),
        ),
    ] {
        let cache = cache.expect("builds");
        assert_eq!(
            profile(&cache, "session"),
            Duration::from_secs(3600),
            "{order}"
        );
        assert_eq!(
            profile(&cache, "presence"),
            Duration::from_secs(60),
            "{order}"
        );
    }
    remove("CACHETTE_TTL_PROFILES");

    // The backend: a Redis URL (CACHETTE_REDIS_URL before REDIS_URL) wins over a memory store
    // set in code; a memory size over a Redis URL set in code. Nothing connects at build.
    set("REDIS_URL", "redis://127.0.0.1:1/");
    let redis = Cache::builder()
        .from_env()
        .memory(1 << 20)
        .build()
        .expect("builds");
    assert_eq!(
        redis.backend_kind(),
        "redis",
        "REDIS_URL over code's memory"
    );
    set("CACHETTE_REDIS_URL", "not a url");
    let err = Cache::builder()
        .memory(1 << 20)
        .from_env()
        .build()
        .expect_err("CACHETTE_REDIS_URL is the one used, and it does not parse");
    assert!(
        err.to_string().contains("not a url"),
        "the error names CACHETTE_REDIS_URL's value: {err}"
    );
    remove("CACHETTE_REDIS_URL");
    remove("REDIS_URL");
    // A cluster's seeds, comma-separated, over code's Redis URL (and a Redis URL set too);
    // Sentinel's pair over both; one of the pair alone is an error.
    set("CACHETTE_REDIS_URL", "redis://127.0.0.1:1/");
    set(
        "CACHETTE_REDIS_CLUSTER_URLS",
        " redis://127.0.0.1:1 , redis://127.0.0.1:2 ",
    );
    let cluster = Cache::builder()
        .redis("redis://127.0.0.1:3/")
        .from_env()
        .build()
        .expect("builds");
    assert_eq!(cluster.backend_kind(), "redis-cluster");
    set(
        "CACHETTE_REDIS_CLUSTER_URLS",
        "redis://127.0.0.1:1,not a url",
    );
    let err = Cache::builder()
        .from_env()
        .build()
        .expect_err("a malformed seed");
    assert!(err.to_string().contains("not a url"), "{err}");
    set("CACHETTE_REDIS_SENTINEL_URLS", "redis://127.0.0.1:26379");
    let err = Cache::builder()
        .from_env()
        .build()
        .expect_err("sentinels without a master name");
    assert!(
        err.to_string().contains("CACHETTE_REDIS_SENTINEL_MASTER"),
        "{err}"
    );
    set("CACHETTE_REDIS_SENTINEL_MASTER", "mymaster");
    let sentinel = Cache::builder()
        .from_env()
        .build()
        .expect("builds (the tests have the sentinel feature)");
    assert_eq!(sentinel.backend_kind(), "redis");
    let shown = format!("{sentinel:?}");
    assert!(
        shown.contains("mymaster via redis://127.0.0.1:26379"),
        "the primary Sentinel names: {shown}"
    );
    for name in [
        "CACHETTE_REDIS_URL",
        "CACHETTE_REDIS_CLUSTER_URLS",
        "CACHETTE_REDIS_SENTINEL_URLS",
        "CACHETTE_REDIS_SENTINEL_MASTER",
    ] {
        remove(name);
    }

    set("CACHETTE_MEMORY_BYTES", "1048576");
    let memory = Cache::builder()
        .from_env()
        .redis("redis://127.0.0.1:1/")
        .build()
        .expect("builds");
    assert_eq!(
        memory.backend_kind(),
        "memory",
        "memory size over code's Redis"
    );
    set("CACHETTE_MEMORY_BYTES", "lots");
    let err = Cache::builder()
        .from_env()
        .build()
        .expect_err("a malformed size is an error");
    assert!(err.to_string().contains("CACHETTE_MEMORY_BYTES"), "{err}");
    remove("CACHETTE_MEMORY_BYTES");

    // Unset variables leave the code's settings alone.
    let code = Cache::builder()
        .from_env()
        .namespace("incode")
        .version("v1")
        .build()
        .expect("builds");
    assert_eq!(code.full_key("k"), "incode:v1:k");
}
