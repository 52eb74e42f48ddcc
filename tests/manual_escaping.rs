//! The manual API reaches exactly the entries the attributes made: `tag!` and `pattern!`
//! escape interpolated values as `#[cached]` does, on both stores.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, cached};
use fixture::{Counter, Fixture};

#[cached(key = "user:{id}", ttl = "10m", tags = ["users", "user:{id}"], cache = cache)]
async fn user_name(cache: &Cache, runs: &Counter, id: &str) -> String {
    runs.compute(format!("user {id}")).await
}

#[cached(key = "guild:{id}:{part}", ttl = "10m", cache = cache)]
async fn guild_part(cache: &Cache, runs: &Counter, id: &str, part: &str) -> String {
    runs.compute(format!("{part} of {id}")).await
}

/// User and guild ids that read as separators, globs or escapes once unescaped.
const USERS: [&str; 7] = ["1:*", "1", "1:", "1:2", "*", "1%3A%2A", "1:*:x"];
const GUILDS: [&str; 5] = ["a*", "a", "ab", "a%2A", "a*b"];

mod suite {
    use super::*;

    /// Invalidating the tag of user `1:*` drops that user's entry and no other.
    pub async fn tag_reaches_the_attributes_entry(fx: Fixture) {
        let c = &fx.cache;
        let runs = Counter::default();
        for id in USERS {
            user_name(c, &runs, id).await;
        }
        assert_eq!(runs.runs(), USERS.len(), "one miss per user");

        c.invalidate_tags([cachette::tag!("user:{}", "1:*")])
            .await
            .unwrap();

        for id in USERS {
            let key = cachette::key_of(user_name(c, &runs, id)).unwrap();
            assert_eq!(
                c.exists(&key).await.unwrap(),
                id != "1:*",
                "entry of user {id:?} after invalidating the tag of user \"1:*\""
            );
        }
        for id in USERS {
            user_name(c, &runs, id).await;
        }
        assert_eq!(runs.runs(), USERS.len() + 1, "only user 1:* computed again");
    }

    /// A pattern over guild `a*` removes that guild's keys, not guild `a`'s or `ab`'s.
    pub async fn pattern_matches_only_its_value(fx: Fixture) {
        let c = &fx.cache;
        let runs = Counter::default();
        for id in GUILDS {
            for part in ["roles", "members"] {
                guild_part(c, &runs, id, part).await;
            }
        }
        let removed = c
            .invalidate_pattern(cachette::pattern!("guild:{}:*", "a*"))
            .await
            .unwrap();

        for id in GUILDS {
            for part in ["roles", "members"] {
                let key = cachette::key_of(guild_part(c, &runs, id, part)).unwrap();
                assert_eq!(
                    c.exists(&key).await.unwrap(),
                    id != "a*",
                    "key {key:?} after the pattern of guild \"a*\""
                );
            }
        }
        assert_eq!(removed, 2, "the two keys of guild a*");
    }
}

fixture::both_backends!(
    std::convert::identity;
    tag_reaches_the_attributes_entry,
    pattern_matches_only_its_value,
);

/// Values an attacker or a careless caller could pass: separators, globs, hash-tag braces, the
/// escape character and escapes, spaces, controls, unicode, nothing.
const HOSTILE: [&str; 17] = [
    ":",
    "*",
    "?",
    "[",
    "]",
    "{",
    "}",
    "%",
    "%3A",
    " ",
    "a b",
    "\\",
    "\n\u{7f}\u{85}",
    "日本語 🚀",
    "",
    "1:*",
    "a*",
];

#[cached(key = "n:{n}", cache = cache)]
async fn by_number(cache: &Cache, n: i64) -> i64 {
    n
}

pub struct Member {
    pub guild: String,
    pub id: u64,
}

#[cached(key = "member:{m.guild}:{m.id}", cache = cache)]
async fn member(cache: &Cache, m: &Member) -> u64 {
    m.id
}

// The expansion of every form of the builders is warning-free under pedantic clippy (the
// workspace's clippy run keeps it so).
#[deny(warnings, clippy::all, clippy::pedantic)]
#[test]
fn builders_escape_exactly_as_the_attributes() -> Result<(), cachette::CallError> {
    let cache = Cache::disabled();
    let runs = Counter::default();
    for v in HOSTILE {
        let attribute = cachette::key_of(user_name(&cache, &runs, v))?;
        assert_eq!(cachette::key!("user:{}", v), attribute, "{v:?}");
        assert_eq!(cachette::key!("user:{v}"), attribute, "{v:?}");
        assert_eq!(cachette::key!("user:{0}", v), attribute, "{v:?}");
        assert_eq!(cachette::key!("user:{id}", id = v), attribute, "{v:?}");
        for w in HOSTILE {
            let attribute = cachette::key_of(guild_part(&cache, &runs, v, w))?;
            assert_eq!(
                cachette::key!("guild:{}:{}", v, w),
                attribute,
                "{v:?} {w:?}"
            );
        }
        let m = Member {
            guild: v.to_owned(),
            id: 7,
        };
        let attribute = cachette::key_of(member(&cache, &m))?;
        assert_eq!(cachette::key!("member:{m.guild}:{m.id}"), attribute);
        assert_eq!(cachette::key!("member:{0.guild}:{0.id}", m), attribute);
    }
    for n in [i64::MIN, -1, 0, 42, i64::MAX] {
        let attribute = cachette::key_of(by_number(&cache, n))?;
        assert_eq!(cachette::key!("n:{}", n), attribute, "{n}");
    }
    assert_eq!(runs.runs(), 0, "key_of runs no body");
    Ok(())
}

/// `tag!` is the tag the attribute stored in the entry (read back with `inspect`), and
/// `pattern!` escapes as `key!` does.
#[tokio::test]
async fn tags_and_patterns_escape_as_the_attributes() -> Result<(), Box<dyn std::error::Error>> {
    let cache = Cache::memory(16 << 20);
    let runs = Counter::default();
    for v in HOSTILE {
        user_name(&cache, &runs, v).await;
        let info = cache
            .inspect(cachette::key!("user:{v}"))
            .await?
            .ok_or("the entry was stored")?;
        let stored: Vec<&str> = info.tags.iter().map(|(t, _)| t.as_str()).collect();
        assert!(
            stored.contains(&cachette::tag!("user:{}", v).as_str()),
            "{v:?}: {stored:?}"
        );
        let key = cachette::key!("guild:{}:*", v);
        assert_eq!(cachette::pattern!("guild:{}:*", v), key.as_str());
    }
    Ok(())
}

#[deny(warnings, clippy::all, clippy::pedantic)]
#[test]
fn arguments_are_evaluated_once_in_order() {
    let mut order = Vec::new();
    let mut next = |name: &'static str| {
        order.push(name);
        name
    };
    let key = cachette::key!("{1}:{0}:{1}:{x}", next("a"), next("b"), x = next("c"));
    assert_eq!(key, "b:a:b:c");
    assert_eq!(order, ["a", "b", "c"]);
    assert_eq!(cachette::tag!("{{literal}}:{}", 1), "{literal}:1");
}

proptest::proptest! {
    #[test]
    fn any_string_is_keyed_as_the_attribute_keys_it(v in "\\PC*|[:*?\\[\\]{}%\\\\ \\x00-\\x1f\\x7f\\u{80}-\\u{9f}a-c]{0,12}") {
        let cache = Cache::disabled();
        let runs = Counter::default();
        let attribute = cachette::key_of(user_name(&cache, &runs, &v)).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
        proptest::prop_assert_eq!(cachette::key!("user:{}", v), attribute);
    }
}
