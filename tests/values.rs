//! Stored values read back as computed (issue 13): values JSON cannot tell apart are not
//! stored, and tag versions are compared as bytes.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::Options;
use fixture::{Counter, Fixture};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

fn opts() -> Options {
    Options::new().ttl(Duration::from_secs(60))
}

mod suite {
    use super::*;

    /// `Some(NaN)` and `Some(None)` are written as JSON `null`, which reads back as `None`:
    /// such a value is computed again, never returned as `None`.
    pub async fn values_json_cannot_keep_are_not_stored(fx: Fixture) {
        let c = &fx.cache;
        let counter = Counter::default();
        for _ in 0..2 {
            let v: Option<f64> = c
                .get_or_compute("nan", &opts(), || counter.compute(Some(f64::NAN)))
                .await;
            assert!(v.is_some_and(f64::is_nan), "got {v:?}");
        }
        assert_eq!(counter.runs(), 2);
        for _ in 0..2 {
            let v: Option<Option<u8>> = c
                .get_or_compute("some-none", &opts(), || counter.compute(Some(None)))
                .await;
            assert_eq!(v, Some(None));
        }
        assert_eq!(counter.runs(), 4);
        assert_eq!(c.stats().lossy, 4, "two lossy fills per key");
        // A plain `None` (and `Some(7)`) reads back as computed: stored, a hit.
        for _ in 0..2 {
            let v: Option<Option<u8>> = c
                .get_or_compute("none", &opts(), || counter.compute(None))
                .await;
            assert_eq!(v, None);
        }
        assert_eq!(counter.runs(), 5);
        assert_eq!(c.stats().lossy, 4, "two lossy fills per key");
    }

    /// A value JSON cannot keep (`Some(None)` inside a struct).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Maybe(Option<Option<u8>>);

    #[cachette::cache_put(key = "maybe:{id}", cache = cache)]
    async fn put_maybe(cache: &cachette::Cache, id: u32, v: Option<Option<u8>>) -> Maybe {
        let _ = (cache, id);
        Maybe(v)
    }

    /// A `#[cache_put]` value that would not read back is not stored either, and the value it
    /// replaces is gone.
    pub async fn write_through_values_json_cannot_keep_are_not_stored(fx: Fixture) {
        let c = &fx.cache;
        c.set("maybe:1", &Maybe(Some(Some(1))), &opts())
            .await
            .expect("an older value");
        assert_eq!(put_maybe(c, 1, Some(None)).await, Maybe(Some(None)));
        assert_eq!(
            c.get::<Maybe>("maybe:1").await.expect("a read"),
            None,
            "Some(None) is not stored as None, and the older value is deleted"
        );
        assert_eq!(c.stats().lossy, 1);
        put_maybe(c, 1, Some(Some(2))).await;
        assert_eq!(
            c.get::<Maybe>("maybe:1").await.expect("a read"),
            Some(Maybe(Some(Some(2))))
        );
    }
}

fixture::both_backends!(std::convert::identity; values_json_cannot_keep_are_not_stored, write_through_values_json_cannot_keep_are_not_stored);

/// Unit and newtype variants, nested options, every kind of float, maps with integer keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Variant {
    Unit,
    Newtype(Option<f64>),
    Pair(Option<Option<()>>, f32),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Value {
    float: f64,
    nested: Option<Option<Option<f64>>>,
    variants: Vec<Variant>,
    by_int: BTreeMap<i32, Option<Option<u8>>>,
    unit: Option<()>,
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        any::<f64>(),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let variant = prop_oneof![
        Just(Variant::Unit),
        proptest::option::of(float()).prop_map(Variant::Newtype),
        (
            proptest::option::of(proptest::option::of(Just(()))),
            any::<f32>()
        )
            .prop_map(|(o, f)| Variant::Pair(o, f)),
    ];
    (
        float(),
        proptest::option::of(proptest::option::of(proptest::option::of(float()))),
        proptest::collection::vec(variant, 0..3),
        proptest::collection::btree_map(
            any::<i32>(),
            proptest::option::of(proptest::option::of(any::<u8>())),
            0..3,
        ),
        proptest::option::of(Just(())),
    )
        .prop_map(|(float, nested, variants, by_int, unit)| Value {
            float,
            nested,
            variants,
            by_int,
            unit,
        })
}

/// Equal, NaN-aware: `Debug` prints floats so that they read back exactly (`NaN`, `inf`,
/// `-0.0`) and keeps `Some`/`None` apart.
fn same(a: &Value, b: &Value) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// After a call computed a value, a second call returns an equal value or computes again:
/// never another value.
fn round_trips(fx: &Fixture, rt: &tokio::runtime::Runtime, cases: u32) {
    let n = std::sync::atomic::AtomicU64::new(0);
    proptest!(ProptestConfig::with_cases(cases), |(v in value())| {
        let key = format!("prop:{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let counter = Counter::default();
        let first: Value = rt.block_on(fx.cache.get_or_compute(&key, &opts(), || counter.compute(v.clone())));
        prop_assert!(same(&first, &v));
        let second: Value = rt.block_on(fx.cache.get_or_compute(&key, &opts(), || counter.compute(v.clone())));
        prop_assert!(same(&second, &v), "{second:?} is not {v:?}");
    });
}

#[test]
fn values_round_trip_or_are_recomputed_on_memory() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let fx = Fixture::memory();
    round_trips(&fx, &rt, 256);
}

#[test]
fn values_round_trip_or_are_recomputed_on_redis() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let fx = rt.block_on(async { Fixture::redis() });
    round_trips(&fx, &rt, 128);
}

/// A tag key holding bytes that are not UTF-8 (planted by another writer) is compared as bytes:
/// when it changes to other such bytes, entries filled under the first are invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_tag_versions_compare_as_bytes() {
    let fx = Fixture::redis();
    let c = &fx.cache;
    let Some(server) = &fx.server else {
        unreachable!("a Redis fixture")
    };
    let tag_key = c.tag_key("users");
    let set = |bytes: &[u8]| {
        let mut con = server.connection();
        redis::cmd("SET")
            .arg(&tag_key)
            .arg(bytes)
            .query::<()>(&mut con)
            .expect("SET");
    };
    set(b"\xff\xfeA");
    let counter = Counter::default();
    let tagged = opts().tags(["users"]);
    for _ in 0..2 {
        let v: u32 = c
            .get_or_compute("user:1", &tagged, || counter.compute(1))
            .await;
        assert_eq!(v, 1);
    }
    assert_eq!(
        counter.runs(),
        1,
        "filled once under the first bytes, then a hit"
    );
    set(b"\xff\xfeB");
    let v: u32 = c
        .get_or_compute("user:1", &tagged, || counter.compute(2))
        .await;
    assert_eq!(v, 2, "the tag key changed: the entry is invalid");
    assert_eq!(counter.runs(), 2);
}
