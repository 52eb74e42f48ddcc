use super::*;
use proptest::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

fn put(map: &ClockMap<u32>, key: &str, value: u32, weight: u64, now: Instant) {
    map.compute(key, now, |_| {
        (
            Op::Put {
                value,
                weight,
                expires_at: None,
            },
            (),
        )
    });
}

fn get(map: &ClockMap<u32>, key: &str, now: Instant) -> Option<u32> {
    map.get(key, now, |v| *v)
}

fn weights(map: &ClockMap<u32>) -> u64 {
    map.shards.iter().fold(0, |w, shard| {
        ClockMap::read(shard)
            .slots
            .iter()
            .fold(w, |w, s| w.wrapping_add(s.weight))
    })
}

#[test]
fn what_is_put_is_read_until_removed_or_expired() -> Result<(), &'static str> {
    let map = ClockMap::new(1 << 20);
    let now = Instant::now();
    put(&map, "a", 1, 10, now);
    assert_eq!(get(&map, "a", now), Some(1));
    put(&map, "a", 2, 10, now);
    assert_eq!(get(&map, "a", now), Some(2));
    map.compute("a", now, |v| (Op::Remove, assert_eq!(v, Some(&2))));
    assert_eq!(get(&map, "a", now), None);

    let later = now.checked_add(Duration::from_secs(1)).ok_or("clock")?;
    map.compute("b", now, |_| {
        let op = Op::Put {
            value: 3,
            weight: 10,
            expires_at: Some(later),
        };
        (op, ())
    });
    assert_eq!(get(&map, "b", now), Some(3));
    assert_eq!(get(&map, "b", later), None, "expired at its instant");
    map.compute("b", later, |v| {
        (Op::Keep, assert_eq!(v, None, "absent to writers too"))
    });
    assert_eq!(map.bytes(), 10);
    Ok(())
}

#[test]
fn the_budget_holds_and_evictions_are_counted() {
    let map = ClockMap::new(10_000);
    let now = Instant::now();
    for i in 0..10_000u32 {
        put(&map, &format!("k{i}"), i, 100, now);
        assert!(map.bytes() <= 10_000, "{} B after {i}", map.bytes());
    }
    assert_eq!(map.bytes(), weights(&map));
    assert_eq!(map.len(), 100);
    assert_eq!(map.evictions(), 9_900);
}

#[test]
fn entries_read_since_the_hand_passed_are_kept() {
    // One shard: the whole map is one clock.
    let map = ClockMap::new(100 * 100);
    let now = Instant::now();
    for i in 0..100u32 {
        put(&map, &format!("k{i}"), i, 100, now);
    }
    for round in 0..50u32 {
        for hot in 0..10u32 {
            assert_eq!(
                get(&map, &format!("k{hot}"), now),
                Some(hot),
                "round {round}"
            );
        }
        for cold in 0..20u32 {
            let i = 1000u32
                .wrapping_add(round.wrapping_mul(20))
                .wrapping_add(cold);
            put(&map, &format!("k{i}"), i, 100, now);
        }
    }
    let cold_kept = (1000..2000u32)
        .filter(|i| get(&map, &format!("k{i}"), now).is_some())
        .count();
    // Evicting by age (FIFO) would have dropped the hot ones by round 5; they take 10 slots
    // of 100, the newest cold entries the rest.
    assert_eq!(cold_kept, 90);
    assert_eq!(map.len(), 100);
}

#[test]
fn an_entry_heavier_than_the_budget_is_not_stored_and_supersedes_the_old_one() {
    let map = ClockMap::new(1000);
    let now = Instant::now();
    put(&map, "a", 1, 10, now);
    put(&map, "a", 2, 1001, now);
    assert_eq!(get(&map, "a", now), None);
    assert_eq!(map.bytes(), 0);
    put(&map, "b", 3, 1000, now);
    assert_eq!(get(&map, "b", now), Some(3), "exactly the budget fits");
}

#[test]
fn expired_entries_make_room_before_read_ones() -> Result<(), &'static str> {
    let map = ClockMap::new(1000);
    let now = Instant::now();
    let soon = now.checked_add(Duration::from_millis(1)).ok_or("clock")?;
    for i in 0..5u32 {
        put(&map, &format!("live{i}"), i, 100, now);
        // Visited: only expiry can make them go.
        get(&map, &format!("live{i}"), now);
    }
    for i in 0..5u32 {
        map.compute(&format!("dead{i}"), now, |_| {
            let op = Op::Put {
                value: i,
                weight: 100,
                expires_at: Some(soon),
            };
            (op, ())
        });
    }
    let later = soon.checked_add(Duration::from_millis(1)).ok_or("clock")?;
    for i in 0..5u32 {
        put(&map, &format!("new{i}"), i, 100, later);
    }
    for i in 0..5u32 {
        assert_eq!(get(&map, &format!("live{i}"), later), Some(i), "read: kept");
    }
    let dead = map.remove_where(later, |k, _, live| {
        assert!(live || !k.starts_with("dead"), "{k}: expired, yet kept");
        false
    });
    assert!(dead.is_empty());
    assert!(map.bytes() <= 1000);
    Ok(())
}

#[test]
fn remove_where_and_for_each_live() {
    let map = ClockMap::new(1 << 20);
    let now = Instant::now();
    for i in 0..1000u32 {
        put(&map, &format!("k{i}"), i, 10, now);
    }
    let removed = map.remove_where(now, |k, v, live| {
        assert!(live);
        assert_eq!(k, format!("k{v}"));
        v & 1 == 0
    });
    assert_eq!(removed.len(), 500);
    let mut seen = 0u32;
    map.for_each_live(now, |_, v| {
        assert_eq!(v & 1, 1);
        seen = seen.wrapping_add(1);
        true
    });
    assert_eq!(seen, 500);
    assert_eq!(map.bytes(), 5000);
    assert_eq!(map.clear(), 500);
    assert_eq!((map.bytes(), map.len()), (0, 0));
}

#[test]
fn writers_on_many_threads_keep_the_budget_and_the_count() -> Result<(), String> {
    let map = std::sync::Arc::new(ClockMap::new(256 * 1024));
    let now = Instant::now();
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let map = std::sync::Arc::clone(&map);
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let key = format!("k{}", i.wrapping_mul(7).wrapping_add(t) & 4095);
                    if i & 3 == 0 {
                        map.compute(&key, now, |_| (Op::Remove, ()));
                    } else {
                        put(&map, &key, i, 100u64.wrapping_add(u64::from(i & 63)), now);
                    }
                    let _ = get(&map, &key, now);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "a writer panicked".to_owned())?;
    }
    assert!(map.bytes() <= 256 * 1024);
    assert_eq!(map.bytes(), weights(&map));
    Ok(())
}

#[derive(Debug, Clone)]
enum Step {
    Put(u8, u32, u64),
    Remove(u8),
    Get(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..40, any::<u32>(), 1u64..300).prop_map(|(k, v, w)| Step::Put(k, v, w)),
        (0u8..40).prop_map(Step::Remove),
        (0u8..40).prop_map(Step::Get),
    ]
}

proptest! {
    /// Against a plain map: a read finds the value last put (or, under eviction, nothing),
    /// never another key's or an older one; the weights add up and stay within the budget.
    #[test]
    fn reads_agree_with_a_plain_map(steps in prop::collection::vec(step(), 1..400), budget in 300u64..20_000) {
        let map = ClockMap::new(budget);
        let now = Instant::now();
        let mut model: HashMap<u8, u32> = HashMap::new();
        for s in steps {
            match s {
                Step::Put(k, v, w) => {
                    put(&map, &format!("key:{k}"), v, w, now);
                    model.insert(k, v);
                }
                Step::Remove(k) => {
                    map.compute(&format!("key:{k}"), now, |_| (Op::Remove, ()));
                    model.remove(&k);
                }
                Step::Get(k) => {
                    let got = get(&map, &format!("key:{k}"), now);
                    prop_assert!(got.is_none() || got == model.get(&k).copied());
                }
            }
            prop_assert!(map.bytes() <= budget);
            prop_assert_eq!(map.bytes(), weights(&map));
        }
    }
}
