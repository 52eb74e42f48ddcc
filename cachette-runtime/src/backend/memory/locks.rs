//! The lock table of the stores that keep their locks in this process (the memory store, the
//! disabled store): token and deadline per key, pruned of expired locks as it grows. Locks
//! are released or extended only by their owner's token and expire by themselves.

use crate::clock::instant_after;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A lock table: token and deadline per key, pruned of expired locks as it grows.
#[derive(Default)]
pub(crate) struct MemoryLocks {
    locks: Mutex<HashMap<String, (String, Instant)>>,
}

const PRUNE_ABOVE: usize = 4096;

impl MemoryLocks {
    pub(crate) fn try_lock(&self, key: &str, token: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, (_, deadline)| *deadline > now);
        }
        match map.get(key) {
            Some((_, deadline)) if *deadline > now => false,
            _ => {
                map.insert(key.to_owned(), (token.to_owned(), instant_after(now, ttl)));
                true
            }
        }
    }

    pub(crate) fn release(&self, key: &str, token: &str) -> bool {
        let now = Instant::now();
        let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((t, deadline)) if t == token && *deadline > now => {
                map.remove(key);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn extend(&self, key: &str, token: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(key) {
            Some((t, deadline)) if t == token && *deadline > now => {
                *deadline = instant_after(now, ttl);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.locks.lock().map(|m| m.len()).unwrap_or(0)
    }
}
