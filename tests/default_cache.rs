//! The environment decides the backend, and the process-wide default cache is created from it
//! lazily. One test function: the environment and the default cache are process-wide.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, Options};
use redis_server::RedisServer;

const VARS: [&str; 7] = [
    "CACHETTE_REDIS_URL",
    "REDIS_URL",
    "CACHETTE_DISABLED",
    "CACHETTE_NAMESPACE",
    "CACHETTE_VERSION",
    "CACHETTE_TTL_PROFILES",
    "CACHETTE_MEMORY_BYTES",
];

fn set_env(pairs: &[(&str, &str)]) {
    // SAFETY: this test binary has a single test; nothing else reads the environment
    // concurrently.
    unsafe {
        for v in VARS {
            std::env::remove_var(v);
        }
        for (k, v) in pairs {
            std::env::set_var(k, v);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_selects_the_backend_and_the_default_cache() {
    let server = RedisServer::start();
    let url = server.url();

    set_env(&[]);
    assert_eq!(Cache::from_env().unwrap().backend_kind(), "memory");

    set_env(&[("REDIS_URL", &url)]);
    assert_eq!(Cache::from_env().unwrap().backend_kind(), "redis");

    set_env(&[
        ("CACHETTE_REDIS_URL", &url),
        ("REDIS_URL", "redis://:x@[bad"),
    ]);
    assert_eq!(
        Cache::from_env().unwrap().backend_kind(),
        "redis",
        "CACHETTE_REDIS_URL wins over REDIS_URL"
    );

    set_env(&[("CACHETTE_DISABLED", "1"), ("REDIS_URL", &url)]);
    assert_eq!(Cache::from_env().unwrap().backend_kind(), "disabled");

    set_env(&[("CACHETTE_TTL_PROFILES", "session=1h, presence=90s")]);
    let c = Cache::builder()
        .ttl_profile("presence", std::time::Duration::from_secs(60))
        .from_env()
        .build()
        .unwrap();
    assert_eq!(
        c.resolve_ttl(&cachette::Ttl::Profile("presence".into())),
        std::time::Duration::from_secs(90),
        "the environment overrides profiles set in code, without recompiling"
    );

    set_env(&[("CACHETTE_TTL_PROFILES", "session=forever")]);
    let err = Cache::from_env().unwrap_err().to_string();
    assert!(err.contains("session=forever"), "{err}");
    set_env(&[("CACHETTE_NAMESPACE", "bad:ns")]);
    assert!(Cache::from_env().is_err());
    set_env(&[("REDIS_URL", "redis://:hunter2@[bad")]);
    let err = Cache::from_env().unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");

    // The process-wide default: created lazily from the environment on first use.
    set_env(&[("CACHETTE_REDIS_URL", &url), ("CACHETTE_NAMESPACE", "svc")]);
    let default = cachette::default_cache();
    assert_eq!(default.backend_kind(), "redis");
    let v: u32 = default
        .get_or_compute("answer", &Options::new(), || async { 42 })
        .await;
    assert_eq!(v, 42);
    let raw: String = server.cmd(&["GET", "svc:answer"]);
    assert!(raw.contains("\"value\":42"), "{raw}");
    assert!(matches!(
        cachette::install_default(Cache::disabled()),
        Err(cachette::Error::DefaultAlreadySet)
    ));
    assert!(
        std::ptr::eq(default, cachette::default_cache()),
        "one default"
    );
}
