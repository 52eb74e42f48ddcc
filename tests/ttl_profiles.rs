//! TTL profiles named by the attributes are checked when a cache is built (issue 13): a
//! misspelled `ttl = profile("lnad")` is an `Error::Config` from `build()` naming it and the
//! function, until the profile is defined in code or in `CACHETTE_TTL_PROFILES`; the lazily
//! created default cache logs it at error level and counts it instead of failing.
//!
//! One `#[test]`: it sets and removes `CACHETTE_TTL_PROFILES`, and the default cache reads the
//! environment when it is created, so nothing else in this binary may run meanwhile.

use cachette::{Cache, CacheBuilder, Error, cache_put, cached};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use std::time::Duration;

#[cached(key = "load:{id}", ttl = profile("lnad"))]
async fn load(id: u64) -> u64 {
    id
}

/// Named twice (two functions): reported once, with both.
#[cached(key = "find:{id}", ttl = profile("lnad"), cache_none(ttl = profile("absent")))]
async fn find(id: u64) -> Option<u64> {
    Some(id)
}

#[cache_put(key = "load:{id}", ttl = profile("written"))]
async fn save(id: u64) -> u64 {
    id
}

/// A profile defined by every builder below, never reported.
#[cached(key = "fine:{id}", ttl = profile("fine"))]
async fn fine(id: u64) -> u64 {
    id
}

fn set(name: &str, value: &str) {
    // SAFETY: this binary's only test runs alone and sets variables sequentially; no other
    // thread reads or writes the environment meanwhile.
    unsafe { std::env::set_var(name, value) }
}

fn remove(name: &str) {
    // SAFETY: as in `set`.
    unsafe { std::env::remove_var(name) }
}

fn config_error(built: Result<Cache, Error>) -> String {
    match built {
        Err(Error::Config(msg)) => msg,
        Err(other) => panic!("expected Error::Config, got {other}"),
        Ok(_) => panic!("expected Error::Config, the cache was built"),
    }
}

fn builder() -> CacheBuilder {
    Cache::builder()
        .memory(1 << 20)
        .ttl_profile("fine", Duration::from_secs(5))
}

#[test]
fn profiles_named_in_code_must_be_defined() {
    for name in [
        "CACHETTE_DISABLED",
        "CACHETTE_REDIS_URL",
        "REDIS_URL",
        "CACHETTE_MEMORY_BYTES",
        "CACHETTE_TTL_PROFILES",
    ] {
        remove(name);
    }

    // The lazily created default cache: built, the problem logged and counted.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let default = cachette::default_cache();
    assert_eq!(default.backend_kind(), "memory", "built, not disabled");
    let counted: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(k, _, _, _)| k.key().name() == "cachette_undefined_profiles_total")
        .map(|(_, _, _, v)| match v {
            DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(
        counted, 4,
        "lnad, absent, written and fine are defined nowhere"
    );

    // build(): every missing profile, with the functions naming it.
    let msg = config_error(builder().build());
    for expected in [
        "TTL profile `lnad` is named by `ttl_profiles::find`, `ttl_profiles::load`",
        "TTL profile `absent` is named by `ttl_profiles::find`",
        "TTL profile `written` is named by `ttl_profiles::save`",
        "CACHETTE_TTL_PROFILES",
    ] {
        assert!(msg.contains(expected), "{expected:?} missing from: {msg}");
    }
    assert!(
        !msg.contains("`fine`"),
        "a defined profile is not reported: {msg}"
    );

    // Defined in code: nothing missing.
    let in_code = builder()
        .ttl_profile("lnad", Duration::from_secs(60))
        .ttl_profiles("absent=30s, written=1h")
        .build();
    assert!(in_code.is_ok(), "{:?}", in_code.err());
    // One still missing: only it is reported.
    let msg = config_error(
        builder()
            .ttl_profile("lnad", Duration::from_secs(60))
            .ttl_profile("absent", Duration::from_secs(30))
            .build(),
    );
    assert!(
        msg.contains("`written`") && !msg.contains("`lnad`"),
        "{msg}"
    );

    // Defined by the environment.
    set("CACHETTE_TTL_PROFILES", "lnad=1m,absent=30s,written=1h");
    let from_env = builder().from_env().build();
    assert!(from_env.is_ok(), "{:?}", from_env.err());
    remove("CACHETTE_TTL_PROFILES");

    // The functions are linked (and work): what registered the profiles.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(load(1).await, 1);
        assert_eq!(find(2).await, Some(2));
        assert_eq!(save(3).await, 3);
        assert_eq!(fine(4).await, 4);
    });
}
