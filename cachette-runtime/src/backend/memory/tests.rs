//! The memory store's lookup of tag versions: an entry verified at the current generation
//! takes its versions from itself, and every change of a version (bump, drop, clear,
//! eviction) makes the next lookup read the table again.

use super::*;
use crate::codec::{self, Meta};

type Result = std::result::Result<(), String>;

/// Stores `key` carrying `tags` at their current versions (created if missing).
fn store_tagged(store: &MemoryBackend, key: &str, tags: &[String]) -> Result {
    let versions = store.ensure_tags(tags);
    let pairs: Vec<(String, String)> = tags
        .iter()
        .cloned()
        .zip(versions.into_iter().map(Option::unwrap_or_default))
        .collect();
    let bytes = codec::encode(&1u32, &pairs, Meta::default()).map_err(|e| e.to_string())?;
    if store.store(key, bytes, Duration::from_secs(600), false, None) {
        Ok(())
    } else {
        Err(format!("{key} was not stored"))
    }
}

/// What a lookup of `key` with `tags` finds: whether each tag is at the version the entry
/// was stored with.
fn current(
    store: &MemoryBackend,
    key: &str,
    tags: &[String],
) -> std::result::Result<Vec<bool>, String> {
    let found = store.lookup(key, tags, Instant::now());
    let Some(Stored::Parsed(entry)) = &found.entry else {
        return Err(format!("{key} is missing"));
    };
    let header = entry.header()?;
    Ok((0..tags.len())
        .map(|i| {
            header
                .tags
                .iter()
                .nth(i)
                .is_some_and(|(_, v)| found.versions.is(i, v))
        })
        .collect())
}

fn tags(names: &[&str]) -> Vec<String> {
    names.iter().map(|t| String::from(*t)).collect()
}

#[test]
fn a_verified_entry_is_invalid_after_any_change_of_its_versions() -> Result {
    let store = MemoryBackend::new(64 << 20);
    let both = tags(&["users", "user:1"]);
    for change in ["bump", "drop", "clear"] {
        store_tagged(&store, "k", &both)?;
        // The first lookup reads the table and verifies the entry; the second takes the
        // entry's own versions.
        assert_eq!(current(&store, "k", &both)?, [true, true]);
        let Some(Stored::Parsed(entry)) = store.lookup("k", &both, Instant::now()).entry else {
            return Err("k is missing".into());
        };
        assert_eq!(entry.verified(), store.tags.generation(), "verified now");
        assert_eq!(current(&store, "k", &both)?, [true, true]);
        match change {
            "bump" => store.bump_tags(&tags(&["users"])),
            "drop" => store.tags.drop_version("users"),
            _ => store.tags.clear(),
        }
        let after = current(&store, "k", &both)?;
        assert_eq!(after.first(), Some(&false), "after a {change}: {after:?}");
    }
    // Another tag list than the entry's is read from the table, never taken from the entry.
    store_tagged(&store, "k", &both)?;
    assert_eq!(current(&store, "k", &both)?, [true, true]);
    store.bump_tags(&tags(&["user:1"]));
    let reversed = tags(&["user:1", "users"]);
    let found = store.lookup("k", &reversed, Instant::now());
    let stored_version = store.tags.get("user:1", Instant::now());
    assert_eq!(
        found.versions.get(0),
        stored_version.as_ref().map(Version::as_str),
        "the table's version"
    );
    Ok(())
}

#[test]
fn an_evicted_version_makes_its_verified_entries_invalid() -> Result {
    // A store whose tag share holds a few hundred versions.
    let store = MemoryBackend::new(1 << 18);
    let one = tags(&["t:0"]);
    store_tagged(&store, "k", &one)?;
    assert_eq!(current(&store, "k", &one)?, [true]);
    assert_eq!(current(&store, "k", &one)?, [true], "verified");
    // Far more new tags than the share holds ("t:0" is not read meanwhile).
    for n in 1..=20_000u32 {
        store.ensure_tags(&[format!("t:{n}")]);
    }
    let (kept, _) = store.tag_usage();
    assert!(kept < 20_000, "versions were evicted ({kept} kept)");
    assert_eq!(current(&store, "k", &one)?, [false], "t:0 was evicted");
    Ok(())
}
