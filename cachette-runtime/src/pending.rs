//! Invalidations that could not reach the backend: the queue (the worker that applies it is
//! `cache/kept.rs`). They are
//! kept and retried in the background (a task of the runtime that kept them, restarted from
//! any runtime if that one ends) until they succeed; until then this process does not serve,
//! from the cache, any entry they cover (lookups of those keys, or of entries carrying those
//! tags, compute).
//!
//! Other processes cannot learn of an invalidation that never reached the shared backend:
//! until it is applied they may serve entries it covers, for at most those entries' TTL.
//! Bounded: past [`MAX_PENDING`] items the queue collapses into one "clear the namespace"
//! item, and every read of this process bypasses the cache until it is applied.
//!
//! The `cachette_pending_invalidations` gauge follows the number of kept items (of every
//! cache of the process): raised when items are kept, lowered when they are applied.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Most invalidations kept one by one.
pub(crate) const MAX_PENDING: usize = 100_000;

/// One kept invalidation (backend keys and patterns, namespace prefixes included).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Item {
    Tag(String),
    Key(String),
    Pattern(String),
    /// Everything of the namespace: what the queue collapses to when full.
    All,
}

#[derive(Default)]
pub(crate) struct Pending {
    /// Item → generation (bumped when re-added), so that an item re-added while the worker
    /// applies it is not dropped.
    items: Mutex<HashMap<Item, u64>>,
    generation: AtomicU64,
    nonempty: AtomicBool,
    all: AtomicBool,
    pub worker_running: AtomicBool,
}

/// Moves the `cachette_pending_invalidations` gauge by `after - before` (called with the
/// items locked, so that the gauge sees the changes of a cache in their order).
fn track(before: usize, after: usize) {
    let gauge = metrics::gauge!("cachette_pending_invalidations");
    let change = after.abs_diff(before) as f64;
    if after > before {
        gauge.increment(change);
    } else if before > after {
        gauge.decrement(change);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let items = self.items.get_mut().unwrap_or_else(|e| e.into_inner());
        track(items.len(), 0);
    }
}

impl Pending {
    /// Keeps `items`; true when the retry worker must be started.
    pub(crate) fn add(&self, new: impl IntoIterator<Item = Item>) -> bool {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let before = items.len();
        for item in new {
            let g = self.generation.fetch_add(1, Ordering::Relaxed);
            items.insert(item, g);
        }
        if items.len() > MAX_PENDING {
            items.clear();
            let g = self.generation.fetch_add(1, Ordering::Relaxed);
            items.insert(Item::All, g);
            self.all.store(true, Ordering::Release);
            tracing::error!(
                "more than {MAX_PENDING} invalidations are waiting for the backend; \
                 this process bypasses the cache until the namespace is cleared"
            );
        }
        track(before, items.len());
        self.nonempty.store(!items.is_empty(), Ordering::Release);
        !self.worker_running.swap(true, Ordering::AcqRel)
    }

    /// A copy of what is kept, with generations.
    pub(crate) fn snapshot(&self) -> Vec<(Item, u64)> {
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.iter().map(|(i, g)| (i.clone(), *g)).collect()
    }

    /// Drops `applied` items unless they were re-added since; whether anything is left.
    pub(crate) fn applied(&self, applied: &[(Item, u64)]) -> bool {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let before = items.len();
        for (item, g) in applied {
            if items.get(item) == Some(g) {
                items.remove(item);
                if *item == Item::All {
                    self.all.store(false, Ordering::Release);
                }
            }
        }
        track(before, items.len());
        let left = !items.is_empty();
        self.nonempty.store(left, Ordering::Release);
        left
    }

    pub(crate) fn len(&self) -> usize {
        self.items.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether a read of `full_key`, asking for `tags`, must bypass the cache. Tags are kept
    /// as the store's tag keys: `tag_prefix` + the tag (so a caller holding the tags needs
    /// no key built).
    pub(crate) fn blocks<T: AsRef<str>>(
        &self,
        full_key: &str,
        tags: &[T],
        tag_prefix: &str,
    ) -> bool {
        if !self.nonempty.load(Ordering::Acquire) {
            return false;
        }
        if self.all.load(Ordering::Acquire) {
            return true;
        }
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.keys().any(|item| match item {
            Item::Tag(t) => tags
                .iter()
                .any(|tag| is_key_of(t, tag_prefix, tag.as_ref())),
            Item::Key(k) => k == full_key,
            Item::Pattern(p) => crate::keys::glob_match(p.as_bytes(), full_key.as_bytes()),
            Item::All => true,
        })
    }

    /// Whether anything is kept (one atomic load: the hot path's check).
    pub(crate) fn any(&self) -> bool {
        self.nonempty.load(Ordering::Acquire)
    }

    /// Whether an entry carrying `tag` (its store's tag key: `tag_prefix` + `tag`) must be
    /// bypassed.
    pub(crate) fn blocks_tag(&self, tag: &str, tag_prefix: &str) -> bool {
        if !self.nonempty.load(Ordering::Acquire) {
            return false;
        }
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.keys().any(|item| match item {
            Item::Tag(t) => is_key_of(t, tag_prefix, tag),
            Item::All => true,
            Item::Key(_) | Item::Pattern(_) => false,
        })
    }
}

/// Whether `key` is `prefix` + `tag`.
fn is_key_of(key: &str, prefix: &str, tag: &str) -> bool {
    key.strip_prefix(prefix) == Some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_what_it_keeps_until_applied() {
        let p = Pending::default();
        assert!(!p.blocks("ns:user:1", &["users"], "ns#tag:"));
        assert!(p.add([
            Item::Tag("ns#tag:users".into()),
            Item::Pattern("ns:guild:*".into())
        ]));
        assert!(
            !p.add([Item::Key("ns:k".into())]),
            "the worker already runs"
        );
        assert!(p.blocks("ns:user:1", &["users"], "ns#tag:"));
        assert!(p.blocks_tag("users", "ns#tag:"));
        assert!(p.blocks::<&str>("ns:guild:7", &[], "ns#tag:"));
        assert!(p.blocks::<&str>("ns:k", &[], "ns#tag:"));
        assert!(!p.blocks("ns:other", &["others"], "ns#tag:"));
        let snap = p.snapshot();
        // Re-added while being applied: kept.
        p.add([Item::Key("ns:k".into())]);
        assert!(p.applied(&snap));
        assert!(p.blocks::<&str>("ns:k", &[], "ns#tag:"));
        assert!(!p.blocks::<&str>("ns:guild:7", &[], "ns#tag:"));
        let snap = p.snapshot();
        assert!(!p.applied(&snap));
        assert!(!p.blocks::<&str>("ns:k", &[], "ns#tag:"));
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn collapses_when_full() {
        let p = Pending::default();
        p.add((0..=MAX_PENDING).map(|i| Item::Key(format!("ns:{i}"))));
        assert_eq!(p.len(), 1);
        assert!(p.blocks::<&str>("ns:anything", &[], "ns#tag:"));
        let snap = p.snapshot();
        assert!(!p.applied(&snap));
        assert!(!p.blocks::<&str>("ns:anything", &[], "ns#tag:"));
    }
}
