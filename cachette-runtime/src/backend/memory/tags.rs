//! The memory store's tag versions: a [`ClockMap`] from tag key to [`Version`], bounded by its
//! share of the store's byte budget. A version is a number drawn from a counter that never
//! repeats within the process, kept as its decimal text inline (no allocation, no shared
//! reference count): a hit copies it and compares it with the text its entry was stored
//! with. A dropped version (evicted for room) makes every entry carrying the tag invalid, as
//! an evicted tag key does in Redis: a new version is drawn when the tag is next needed.

use super::map::{ClockMap, Op};
use crate::backend::contract::{Version, Versions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Bytes counted per tag version besides its key: what one costs in the map (its slot, its
/// index entry, the key's allocation and the allocator's rounding), measured by
/// `tests/memory_tag_budget.rs`: with 112, a million distinct tags kept 137,518 versions on a
/// 64 MB store (16.8 MB counted) and grew the process by 17.9 MB (~130 B each).
const TAG_OVERHEAD: u64 = 120;

/// What a tag version counts against the byte budget.
fn weight(key: &str) -> u64 {
    (key.len() as u64).saturating_add(TAG_OVERHEAD)
}

/// Tag versions (see the module's documentation).
pub(crate) struct TagVersions {
    map: ClockMap<Version>,
    /// The next version; never reused.
    next: AtomicU64,
    /// Moved on after every change of a version that is not its creation (a bump, a drop, a
    /// clear; with the map's evictions, [`generation`](Self::generation)): on its own cache
    /// line, which every tagged hit reads and only those changes write.
    changes: Padded,
}

/// An atomic on a cache line of its own.
#[repr(align(128))]
struct Padded(AtomicU64);

impl TagVersions {
    /// A table of at most `budget` bytes.
    pub(crate) fn new(budget: u64) -> Self {
        TagVersions {
            map: ClockMap::new(budget),
            next: AtomicU64::new(1),
            changes: Padded(AtomicU64::new(1)),
        }
    }

    /// The generation of the versions: it moves on after any version is bumped, dropped,
    /// cleared or evicted (never when one is first drawn: an entry carrying a tag without a
    /// version is invalid already). Read before a lookup's versions: if it is unchanged
    /// later, no version the lookup read has changed or gone since (`SeqCst` on both sides:
    /// a lookup that begins after a bump returned sees the new generation).
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.changes
            .0
            .load(Ordering::SeqCst)
            .wrapping_add(self.map.evictions())
    }

    fn changed(&self) {
        self.changes.0.fetch_add(1, Ordering::SeqCst);
    }

    fn draw(&self) -> Version {
        Version::number(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// The current version of `tag_key` (versions do not expire: `now` is any instant the
    /// caller has at hand).
    #[inline]
    pub(crate) fn get(&self, tag_key: &str, now: Instant) -> Option<Version> {
        self.map.get(tag_key, now, |v| *v)
    }

    /// The current versions of `tag_keys` (no allocation for up to [`Versions::INLINE`]
    /// tags).
    #[inline]
    pub(crate) fn versions<K: AsRef<str>>(&self, tag_keys: &[K], now: Instant) -> Versions {
        Versions::inline(tag_keys.iter().map(|t| self.get(t.as_ref(), now)))
    }

    /// The version of `tag_key`, drawn now if it has none.
    pub(crate) fn ensure(&self, tag_key: &str) -> Version {
        self.map
            .compute(tag_key, Instant::now(), |current| match current {
                Some(v) => (Op::Keep, *v),
                None => {
                    let v = self.draw();
                    (Self::put(tag_key, v), v)
                }
            })
    }

    /// Gives `tag_key` a new version.
    pub(crate) fn bump(&self, tag_key: &str) {
        let v = self.draw();
        self.map
            .compute(tag_key, Instant::now(), |_| (Self::put(tag_key, v), ()));
        self.changed();
    }

    fn put(tag_key: &str, v: Version) -> Op<Version> {
        Op::Put {
            value: v,
            weight: weight(tag_key),
            expires_at: None,
        }
    }

    /// Drops the version of `tag_key`, as an eviction would.
    pub(crate) fn drop_version(&self, tag_key: &str) {
        self.map
            .compute(tag_key, Instant::now(), |_| (Op::<Version>::Remove, ()));
        self.changed();
    }

    /// Versions kept and their weight.
    pub(crate) fn usage(&self) -> (u64, u64) {
        (self.map.len(), self.map.bytes())
    }

    /// Drops every version.
    pub(crate) fn clear(&self) {
        self.map.clear();
        self.changed();
    }
}
