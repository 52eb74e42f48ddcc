//! One behavioural suite, two backends: every test in `suite` runs against a real
//! `redis-server` (started by the harness, one per test) and against the embedded memory store.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::keys::KeyBuilder;
use cachette::{Cache, Options};
use fixture::{Counter, Fixture};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    id: u64,
    name: String,
}

fn user(id: u64, name: &str) -> User {
    User {
        id,
        name: name.to_owned(),
    }
}

mod suite {
    use super::*;

    pub async fn round_trip(fx: Fixture) {
        let c = &fx.cache;
        let opts = Options::new().ttl(Duration::from_secs(60));
        assert_eq!(c.get::<User>("user:1").await.unwrap(), None);
        assert!(!c.exists("user:1").await.unwrap());
        c.set("user:1", &user(1, "Ada"), &opts).await.unwrap();
        assert_eq!(c.get::<User>("user:1").await.unwrap(), Some(user(1, "Ada")));
        assert!(c.exists("user:1").await.unwrap());
        assert!(c.delete("user:1").await.unwrap());
        assert!(!c.delete("user:1").await.unwrap());
        assert_eq!(c.get::<User>("user:1").await.unwrap(), None);

        let counter = Counter::default();
        for _ in 0..3 {
            let v = c
                .get_or_compute("user:2", &opts, || counter.compute(user(2, "Grace")))
                .await;
            assert_eq!(v, user(2, "Grace"));
        }
        assert_eq!(counter.runs(), 1, "one miss, then hits");
        let s = c.stats();
        assert!(s.hits >= 2 && s.stores >= 2, "{s:?}");
    }

    pub async fn ttl_expiry(fx: Fixture) {
        let c = &fx.cache;
        let counter = Counter::default();
        let short = Options::new().ttl(Duration::from_millis(300));
        let long = Options::new().ttl(Duration::from_secs(60));
        c.get_or_compute("short", &short, || counter.compute(1u32))
            .await;
        c.get_or_compute("long", &long, || counter.compute(2u32))
            .await;
        assert_eq!(c.get::<u32>("short").await.unwrap(), Some(1));
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(c.get::<u32>("short").await.unwrap(), None, "expired");
        assert_eq!(c.get::<u32>("long").await.unwrap(), Some(2), "not expired");
        c.get_or_compute("short", &short, || counter.compute(1u32))
            .await;
        assert_eq!(counter.runs(), 3, "the expired entry was recomputed");
    }

    pub async fn ttl_profiles(fx: Fixture) {
        let c = &fx.cache;
        c.set("p", &1u8, &Options::new().profile("presence"))
            .await
            .unwrap();
        c.set("q", &1u8, &Options::new().profile("no-such-profile"))
            .await
            .unwrap();
        assert_eq!(c.stats().unknown_profiles, 1);
        assert_eq!(
            c.resolve_ttl(&cachette::Ttl::Profile("presence".into())),
            Duration::from_millis(300)
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(c.get::<u8>("p").await.unwrap(), None, "profile TTL applied");
        assert_eq!(
            c.get::<u8>("q").await.unwrap(),
            Some(1),
            "default TTL applied"
        );
    }

    /// The invariant, with a deterministic interleaving: the fill's computation is paused
    /// after it started; the invalidation runs and returns; the fill then stores; the next read
    /// must not return the value computed before the invalidation.
    pub async fn tag_invariant_interleaving(fx: Fixture) {
        let c = fx.cache.clone();
        let other_process = fx.second_handle();
        let opts = Options::new()
            .ttl(Duration::from_secs(60))
            .tags(["users", "user:7"]);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let fill = {
            let c = c.clone();
            let opts = opts.clone();
            tokio::spawn(async move {
                c.get_or_compute("user:7", &opts, || async move {
                    // The database read happens here: the old name.
                    let v = user(7, "old");
                    started_tx.send(()).unwrap();
                    go_rx.await.unwrap();
                    v
                })
                .await
            })
        };
        started_rx.await.unwrap();
        // The write commits "new", then invalidates, from another process.
        other_process.invalidate_tags(["user:7"]).await.unwrap();
        go_tx.send(()).unwrap();
        assert_eq!(
            fill.await.unwrap(),
            user(7, "old"),
            "the fill returns its own value"
        );
        // The stale value was stored, but must not be served.
        let counter = Counter::default();
        for reader in [&c, &other_process] {
            let v = reader
                .get_or_compute("user:7", &opts, || counter.compute(user(7, "new")))
                .await;
            assert_eq!(
                v,
                user(7, "new"),
                "no read returns the pre-invalidation value"
            );
        }
        assert_eq!(
            counter.runs(),
            1,
            "recomputed once, then served from the cache"
        );
        assert_eq!(c.get::<User>("user:7").await.unwrap(), Some(user(7, "new")));
    }

    pub async fn invalidate_tags(fx: Fixture) {
        let c = &fx.cache;
        let counter = Counter::default();
        let a = Options::new().tags(["users", "user:1"]);
        let b = Options::new().tags(["users", "user:2"]);
        let other = Options::new().tags(["guilds"]);
        for _ in 0..2 {
            c.get_or_compute("user:1", &a, || counter.compute(1u8))
                .await;
            c.get_or_compute("user:2", &b, || counter.compute(2u8))
                .await;
            c.get_or_compute("guild:1", &other, || counter.compute(3u8))
                .await;
        }
        assert_eq!(counter.runs(), 3);
        c.invalidate_tags(["user:1"]).await.unwrap();
        assert_eq!(c.get::<u8>("user:1").await.unwrap(), None);
        assert_eq!(c.get::<u8>("user:2").await.unwrap(), Some(2));
        c.invalidate_tags(["users"]).await.unwrap();
        assert_eq!(c.get::<u8>("user:2").await.unwrap(), None);
        assert_eq!(
            c.get::<u8>("guild:1").await.unwrap(),
            Some(3),
            "other tags untouched"
        );
        // An entry stored without a tag the caller requires is not trusted.
        c.set("loose", &9u8, &Options::new()).await.unwrap();
        let v = c
            .get_or_compute("loose", &Options::new().tags(["users"]), || {
                counter.compute(10u8)
            })
            .await;
        assert_eq!(v, 10);
    }

    pub async fn evicted_tag_key(fx: Fixture) {
        let c = &fx.cache;
        let counter = Counter::default();
        let opts = Options::new().tags(["users", "user:3"]);
        c.get_or_compute("user:3", &opts, || counter.compute(user(3, "v1")))
            .await;
        c.get_or_compute("user:3", &opts, || counter.compute(user(3, "v1")))
            .await;
        assert_eq!(counter.runs(), 1);
        fx.evict_tag("user:3");
        // Through the manual path (tags read from the entry) and the macro path alike.
        assert_eq!(c.get::<User>("user:3").await.unwrap(), None);
        let v = c
            .get_or_compute("user:3", &opts, || counter.compute(user(3, "v2")))
            .await;
        assert_eq!(
            v,
            user(3, "v2"),
            "a missing tag key makes old entries invalid"
        );
        assert_eq!(counter.runs(), 2);
        let v = c
            .get_or_compute("user:3", &opts, || counter.compute(user(3, "v3")))
            .await;
        assert_eq!(
            v,
            user(3, "v2"),
            "a new tag key is created and caching resumes"
        );
        // Evicting the tag again must not bring back an entry made under the first version.
        fx.evict_tag("users");
        assert_eq!(c.get::<User>("user:3").await.unwrap(), None);
    }

    pub async fn pattern_invalidation_10k(fx: Fixture) {
        let c = &fx.cache;
        let opts = Options::new().ttl(Duration::from_secs(120));
        let n = 10_050u32;
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in 0..10u32 {
            let c = c.clone();
            let opts = opts.clone();
            tasks.spawn(async move {
                for i in (chunk..n).step_by(10) {
                    c.set(&format!("session:{i}"), &i, &opts).await.unwrap();
                }
            });
        }
        tasks.join_all().await;
        for i in 0..20u32 {
            c.set(&format!("user:{i}"), &i, &opts).await.unwrap();
        }
        let removed = c.invalidate_pattern("session:*").await.unwrap();
        assert_eq!(removed, u64::from(n));
        assert_eq!(c.get::<u32>("session:0").await.unwrap(), None);
        assert_eq!(c.get::<u32>("session:10049").await.unwrap(), None);
        for i in 0..20u32 {
            assert_eq!(c.get::<u32>(&format!("user:{i}")).await.unwrap(), Some(i));
        }
    }

    pub async fn escaped_values(fx: Fixture) {
        let c = &fx.cache;
        let opts = Options::new();
        let key = |parts: &[&str]| {
            let mut k = KeyBuilder::new();
            k.lit("user:");
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    k.lit(":");
                }
                k.arg(p);
            }
            k.finish()
        };
        // `user:{id}` with id = "1:admin" vs `user:{id}:{role}` with ("1", "admin").
        let k1 = key(&["1:admin"]);
        let k2 = key(&["1", "admin"]);
        assert_ne!(k1, k2);
        c.set(&k1, &"one-colon-admin", &opts).await.unwrap();
        c.set(&k2, &"one/admin", &opts).await.unwrap();
        assert_eq!(
            c.get::<String>(&k1).await.unwrap().as_deref(),
            Some("one-colon-admin")
        );
        assert_eq!(
            c.get::<String>(&k2).await.unwrap().as_deref(),
            Some("one/admin")
        );

        // `guild:{id}:*` with id = "*" must remove only the keys of the guild named "*".
        for g in ["*", "1", "2", "?", "[12]"] {
            let mut k = KeyBuilder::new();
            k.lit("guild:").arg(g).lit(":roles");
            c.set(&k.finish(), &g, &opts).await.unwrap();
        }
        let mut pattern = KeyBuilder::new();
        pattern.lit("guild:").arg("*").lit(":*");
        assert_eq!(c.invalidate_pattern(&pattern.finish()).await.unwrap(), 1);
        let mut pattern = KeyBuilder::new();
        pattern.lit("guild:").arg("[12]").lit(":*");
        assert_eq!(c.invalidate_pattern(&pattern.finish()).await.unwrap(), 1);
        for (g, present) in [
            ("*", false),
            ("1", true),
            ("2", true),
            ("?", true),
            ("[12]", false),
        ] {
            let mut k = KeyBuilder::new();
            k.lit("guild:").arg(g).lit(":roles");
            assert_eq!(
                c.get::<String>(&k.finish()).await.unwrap().is_some(),
                present,
                "guild {g:?}"
            );
        }

        // A tag built from a hostile value is its own tag.
        let t_star = {
            let mut k = KeyBuilder::new();
            k.lit("user:").arg("*");
            k.finish()
        };
        c.set("a", &1u8, &Options::new().tags([t_star.clone()]))
            .await
            .unwrap();
        c.set("b", &2u8, &Options::new().tags(["user:1"]))
            .await
            .unwrap();
        c.invalidate_tags([t_star]).await.unwrap();
        assert_eq!(c.get::<u8>("a").await.unwrap(), None);
        assert_eq!(c.get::<u8>("b").await.unwrap(), Some(2));
    }

    pub async fn undecodable_values(fx: Fixture) {
        let c = &fx.cache;
        let counter = Counter::default();
        let opts = Options::new();
        fx.plant("user:5", b"\xff\xfe not json").await;
        let v = c
            .get_or_compute("user:5", &opts, || counter.compute(user(5, "x")))
            .await;
        assert_eq!(v, user(5, "x"), "garbage is a miss");
        assert_eq!(c.stats().decode_failures, 1);
        let v = c
            .get_or_compute("user:5", &opts, || counter.compute(user(5, "y")))
            .await;
        assert_eq!(v, user(5, "x"), "the garbage was overwritten");
        assert_eq!(counter.runs(), 1);

        // The type changed across a deploy: the old entry is a miss, never an error.
        c.set("count", &"not a number", &opts).await.unwrap();
        let n: u64 = c
            .get_or_compute("count", &opts, || counter.compute(5u64))
            .await;
        assert_eq!(n, 5);
        assert_eq!(c.stats().decode_failures, 2);
        assert_eq!(c.get::<u64>("count").await.unwrap(), Some(5));

        // A foreign envelope format is a miss too.
        fx.plant("future", br#"{"v":99,"value":1}"#).await;
        assert_eq!(c.get::<u64>("future").await.unwrap(), None);
        assert_eq!(c.stats().decode_failures, 3);

        // An entry its tag invalidated is invalid, not a decode failure, whatever its type.
        let tagged = Options::new().tags(["retyped"]);
        c.set("retyped", &"text", &tagged).await.unwrap();
        c.invalidate_tags(["retyped"]).await.unwrap();
        let n: u64 = c
            .get_or_compute("retyped", &tagged, || counter.compute(7u64))
            .await;
        assert_eq!(n, 7);
        assert_eq!(c.stats().decode_failures, 3, "invalid, not undecodable");
    }

    pub async fn errors_and_oversize(fx: Fixture) {
        let c = &fx.cache;
        let counter = Counter::default();
        let opts = Options::new();
        let r: Result<u8, String> = c
            .get_or_try_compute("fallible", &opts, || async { Err("db down".to_owned()) })
            .await;
        assert_eq!(r, Err("db down".to_owned()));
        assert_eq!(
            c.get::<u8>("fallible").await.unwrap(),
            None,
            "Err is not stored"
        );
        let r: Result<u8, String> = c
            .get_or_try_compute("fallible", &opts, || async { Ok(4) })
            .await;
        assert_eq!(r, Ok(4));
        assert_eq!(c.get::<u8>("fallible").await.unwrap(), Some(4));

        // max_value_bytes is 256 KiB in this fixture.
        let big = "x".repeat(512 * 1024);
        let v = c
            .get_or_compute("big", &opts, || counter.compute(big.clone()))
            .await;
        assert_eq!(v, big);
        assert_eq!(c.stats().oversize, 1);
        assert_eq!(c.get::<String>("big").await.unwrap(), None, "not stored");
        assert!(matches!(
            c.set("big", &big, &opts).await,
            Err(cachette::Error::TooLarge { .. })
        ));
    }

    pub async fn optional_and_refresh(fx: Fixture) {
        use cachette::{Optional, Plain, Ttl};
        let c = &fx.cache;
        let counter = Counter::default();
        let opts = Options::new().tags(["users"]);
        let no_none = Optional::default();
        for _ in 0..2 {
            let r: Option<u8> = c
                .cached_with("missing", &opts, no_none.clone(), || counter.compute(None))
                .await;
            assert_eq!(r, None);
        }
        assert_eq!(counter.runs(), 2, "None is not stored by default");
        let with_none = Optional {
            cache_none: true,
            none_ttl: Some(Ttl::Fixed(Duration::from_millis(300))),
        };
        for _ in 0..2 {
            let r: Option<u8> = c
                .cached_with("missing", &opts, with_none.clone(), || {
                    counter.compute(None)
                })
                .await;
            assert_eq!(r, None);
        }
        assert_eq!(counter.runs(), 3, "None stored when asked");
        tokio::time::sleep(Duration::from_millis(700)).await;
        let r: Option<u8> = c
            .cached_with("missing", &opts, with_none.clone(), || {
                counter.compute(Some(1))
            })
            .await;
        assert_eq!(r, Some(1), "the stored None had its own, shorter TTL");
        let r: Option<u8> = c
            .cached_with("missing", &opts, with_none, || counter.compute(Some(2)))
            .await;
        assert_eq!(r, Some(1), "Some is stored");
        assert_eq!(counter.runs(), 4);

        // refresh recomputes and stores without a lookup; the next call is a hit on it.
        c.get_or_compute("warm", &opts, || counter.compute(1u8))
            .await;
        let v = c
            .refresh("warm", &opts, Plain, || counter.compute(2u8))
            .await;
        assert_eq!(v, 2);
        assert_eq!(
            c.get_or_compute("warm", &opts, || counter.compute(3u8))
                .await,
            2
        );
        assert_eq!(counter.runs(), 6);
    }

    /// Keys and tags from user input: very long, control characters, separators, glob
    /// characters, Unicode. Every command succeeds; nothing collides; invalidations stay exact.
    pub async fn hostile_keys_and_tags(fx: Fixture) {
        let c = &fx.cache;
        let long = "x".repeat(64 * 1024);
        let values = [
            long.as_str(),
            "\0\r\n\u{1b}[31m",
            "a:b:c",
            "*",
            "?",
            "[a-z]",
            "{slot}",
            "%3A",
            "日本語 🚀",
            "\u{202e}rtl",
            "",
            " ",
        ];
        let key_of = |v: &str| {
            let mut k = KeyBuilder::new();
            k.lit("item:").arg(v);
            k.finish()
        };
        let tag_of = |v: &str| {
            let mut k = KeyBuilder::new();
            k.lit("owner:").arg(v);
            k.finish()
        };
        for (i, v) in values.iter().enumerate() {
            let opts = Options::new().tags([tag_of(v), "items".to_owned()]);
            c.set(&key_of(v), &i, &opts).await.unwrap();
        }
        for (i, v) in values.iter().enumerate() {
            assert_eq!(
                c.get::<usize>(&key_of(v)).await.unwrap(),
                Some(i),
                "value {i}"
            );
        }
        // Invalidating one hostile tag touches exactly its entry.
        c.invalidate_tags([tag_of("*")]).await.unwrap();
        for (i, v) in values.iter().enumerate() {
            let expected = if *v == "*" { None } else { Some(i) };
            assert_eq!(
                c.get::<usize>(&key_of(v)).await.unwrap(),
                expected,
                "value {i}"
            );
        }
        // A hostile pattern value matches only itself.
        let mut p = KeyBuilder::new();
        p.lit("item:").arg("[a-z]");
        assert_eq!(c.invalidate_pattern(&p.finish()).await.unwrap(), 1);
        assert_eq!(c.get::<usize>(&key_of("a")).await.unwrap(), None);
        assert_eq!(c.get::<usize>(&key_of("?")).await.unwrap(), Some(4));
        // Raw (unescaped) manual keys with control bytes and globs are stored as they are.
        c.set("raw:\n*?[", &1u8, &Options::new()).await.unwrap();
        assert_eq!(c.get::<u8>("raw:\n*?[").await.unwrap(), Some(1));
    }

    pub async fn namespaces_and_versions(fx: Fixture, v2: Cache, other_ns: Cache) {
        let v1 = &fx.cache;
        let opts = Options::new().tags(["users"]);
        v1.set("k", &1u8, &opts).await.unwrap();
        v2.set("k", &2u8, &opts).await.unwrap();
        other_ns.set("k", &3u8, &opts).await.unwrap();
        assert_eq!(v1.get::<u8>("k").await.unwrap(), Some(1));
        assert_eq!(v2.get::<u8>("k").await.unwrap(), Some(2));
        assert_eq!(other_ns.get::<u8>("k").await.unwrap(), Some(3));
        // A tag invalidation reaches every version of the namespace (rolling deploys), and
        // no other namespace.
        v2.invalidate_tags(["users"]).await.unwrap();
        assert_eq!(v1.get::<u8>("k").await.unwrap(), None);
        assert_eq!(v2.get::<u8>("k").await.unwrap(), None);
        assert_eq!(other_ns.get::<u8>("k").await.unwrap(), Some(3));
        assert_eq!(v1.invalidate_pattern("*").await.unwrap(), 1);
        assert_eq!(other_ns.get::<u8>("k").await.unwrap(), Some(3));
    }
}

fn short_profiles(b: cachette::CacheBuilder) -> cachette::CacheBuilder {
    b.ttl_profile("presence", Duration::from_millis(300))
        .max_value_bytes(256 * 1024)
}

fixture::both_backends!(
    short_profiles;
    round_trip,
    ttl_expiry,
    ttl_profiles,
    tag_invariant_interleaving,
    invalidate_tags,
    evicted_tag_key,
    pattern_invalidation_10k,
    escaped_values,
    undecodable_values,
    errors_and_oversize,
    optional_and_refresh,
    hostile_keys_and_tags,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_versions_on_redis() {
    let fx = Fixture::redis_with(|b| b.namespace("app").version("v1"));
    let url = fx.server.as_ref().unwrap().url();
    let v2 = Cache::builder()
        .redis(&url)
        .namespace("app")
        .version("v2")
        .build()
        .unwrap();
    let other = Cache::builder()
        .redis(&url)
        .namespace("other")
        .build()
        .unwrap();
    suite::namespaces_and_versions(fx, v2, other).await;
}
