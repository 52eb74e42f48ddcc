//! [`ClockMap`]: a concurrent map bounded in bytes, with an expiry per entry and CLOCK
//! (second-chance) eviction. It holds the memory store's entries and tag versions, and is
//! what a near cache keeps its decoded values in: it knows nothing of where values come from.
//!
//! - **Sharded.** Keys hash (xxh3, seeded at random per map, so that keys chosen by a client
//!   cannot be made to collide) to one of up to 64 shards, each a `RwLock` over a dense
//!   vector of slots and a `hashbrown` index into it. A read takes its shard's read lock, finds
//!   the slot, checks its expiry and hands out what the caller reads of the value: no
//!   allocation, no queue, no maintenance on the read path.
//! - **Hot entries stay.** A read sets the slot's `visited` bit (only if unset, so a hot slot's
//!   line is not written on every read). When the map is over its budget, the writer's shard
//!   sweeps its hand over the slots: an expired slot goes, a visited one loses its bit and
//!   stays, an unvisited one goes. A slot read since the hand last passed survives a sweep.
//! - **The budget holds.** The map counts each entry at the weight its writer gives (what it
//!   costs in memory) and keeps the sum within its budget: the writer evicts from its own shard
//!   first, then from the others (never waiting for one that is busy), and if it still cannot
//!   make room, drops what it wrote. An entry heavier than the whole budget is not stored.
//! - **Expiry** is checked on every read (an expired entry is absent to readers and writers);
//!   expired slots are dropped first when room is needed, or overwritten.
//!
//! Writes run a closure on the key's current value under the shard's write lock
//! ([`ClockMap::compute`]): a compare-and-set never interleaves with another write of the key.

use hashbrown::HashTable;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

/// Most shards a map has (a power of two).
const MAX_SHARDS: usize = 64;
/// Fewest bytes of budget per shard: a small map has fewer shards.
const MIN_SHARD_BUDGET: u64 = 64 * 1024;

/// What a [`ClockMap::compute`] closure decides for its key.
pub(crate) enum Op<V> {
    /// Leave the key as it is.
    Keep,
    /// Store `value` (replacing the current one), weighing `weight` bytes, until `expires_at`
    /// (`None`: until evicted).
    Put {
        value: V,
        weight: u64,
        expires_at: Option<Instant>,
    },
    /// Remove the key.
    Remove,
}

/// A concurrent map bounded in bytes (see the module's documentation).
pub(crate) struct ClockMap<V> {
    shards: Box<[Shard<V>]>,
    /// The hash's seed, drawn when the map is made.
    seed: u64,
    /// `shards.len() - 1`.
    mask: u64,
    budget: u64,
    /// The weight of every entry stored, all shards together.
    bytes: AtomicU64,
    /// Live entries dropped for room (not expired ones, not removals).
    evictions: AtomicU64,
    /// Where a writer that needs room beyond its own shard starts looking.
    spill: AtomicU64,
}

/// One shard, on cache lines of its own.
#[repr(align(128))]
struct Shard<V>(RwLock<Slots<V>>);

/// A shard's entries: dense slots, an index by key, and the CLOCK hand.
struct Slots<V> {
    index: HashTable<u32>,
    slots: Vec<Slot<V>>,
    hand: usize,
}

struct Slot<V> {
    hash: u64,
    key: Box<str>,
    value: V,
    weight: u64,
    expires_at: Option<Instant>,
    visited: AtomicBool,
}

impl<V> Slot<V> {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

impl<V> ClockMap<V> {
    /// A map of at most `budget` bytes (by its entries' weights).
    pub(crate) fn new(budget: u64) -> Self {
        let wanted = budget / MIN_SHARD_BUDGET;
        let mut n = 1usize;
        while n < MAX_SHARDS && (n as u64) < wanted {
            n = n.saturating_mul(2);
        }
        let shards = (0..n)
            .map(|_| {
                Shard(RwLock::new(Slots {
                    index: HashTable::new(),
                    slots: Vec::new(),
                    hand: 0,
                }))
            })
            .collect();
        ClockMap {
            shards,
            seed: rand::random(),
            mask: (n as u64).saturating_sub(1),
            budget,
            bytes: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            spill: AtomicU64::new(0),
        }
    }

    fn hash_of(&self, key: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(key.as_bytes(), self.seed)
    }

    fn shard_of(&self, hash: u64) -> &Shard<V> {
        // Bits hashbrown uses neither for its buckets (low) nor for its tags (top 7).
        let i = ((hash >> 32) & self.mask) as usize;
        &self.shards[i]
    }

    fn read(shard: &Shard<V>) -> RwLockReadGuard<'_, Slots<V>> {
        shard.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(shard: &Shard<V>) -> RwLockWriteGuard<'_, Slots<V>> {
        shard.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// `read` of the value at `key`, if it is live at `now`; marks it visited.
    // Always inlined: the lookup of every memory hit (callgrind: a call costs ~40
    // instructions there).
    #[inline(always)]
    pub(crate) fn get<R>(&self, key: &str, now: Instant, read: impl FnOnce(&V) -> R) -> Option<R> {
        let hash = self.hash_of(key);
        let slots = Self::read(self.shard_of(hash));
        let slot = slots.find(hash, key)?;
        if !slot.live(now) {
            return None;
        }
        if !slot.visited.load(Ordering::Relaxed) {
            slot.visited.store(true, Ordering::Relaxed);
        }
        Some(read(&slot.value))
    }

    /// Runs `decide` on the value at `key` (`None`: absent or expired at `now`) under the
    /// key's shard's write lock, and carries out its [`Op`]; returns what `decide` returned
    /// beside it.
    pub(crate) fn compute<R>(
        &self,
        key: &str,
        now: Instant,
        decide: impl FnOnce(Option<&V>) -> (Op<V>, R),
    ) -> R {
        let hash = self.hash_of(key);
        let shard = self.shard_of(hash);
        let mut slots = Self::write(shard);
        let at = slots.position(hash, key);
        let current = at.and_then(|i| slots.slots.get(i)).filter(|s| s.live(now));
        let (op, out) = decide(current.map(|s| &s.value));
        match op {
            Op::Keep => {}
            Op::Remove => {
                if let Some(i) = at {
                    self.remove_at(&mut slots, i);
                }
            }
            Op::Put {
                value,
                weight,
                expires_at,
            } => {
                if weight > self.budget {
                    // Never storable: what was there is superseded all the same.
                    if let Some(i) = at {
                        self.remove_at(&mut slots, i);
                    }
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                    return out;
                }
                let key_ptr = match at {
                    Some(i) => {
                        let Some(slot) = slots.slots.get_mut(i) else {
                            return out;
                        };
                        let old = std::mem::replace(&mut slot.weight, weight);
                        slot.value = value;
                        slot.expires_at = expires_at;
                        self.bytes.fetch_sub(old, Ordering::Relaxed);
                        slot.key.as_ptr()
                    }
                    None => slots.push(hash, key, value, weight, expires_at),
                };
                self.bytes.fetch_add(weight, Ordering::Relaxed);
                self.make_room(shard, slots, key_ptr, now);
            }
        }
        out
    }

    /// After a write to `shard` (still locked as `slots`): evicts until the map is within its
    /// budget, from this shard first (sparing the key just written, at `keep`), then from the
    /// others it can lock without waiting; if that is not enough, drops the key just written.
    fn make_room(
        &self,
        shard: &Shard<V>,
        mut slots: RwLockWriteGuard<'_, Slots<V>>,
        keep: *const u8,
        now: Instant,
    ) {
        if self.over() {
            self.sweep(&mut slots, Some(keep), now);
        }
        if !self.over() {
            return;
        }
        drop(slots);
        let start = self.spill.fetch_add(1, Ordering::Relaxed);
        for step in 0..self.shards.len() as u64 {
            if !self.over() {
                return;
            }
            let i = (start.wrapping_add(step) & self.mask) as usize;
            let other = &self.shards[i];
            if std::ptr::eq(other, shard) {
                continue;
            }
            if let Ok(mut theirs) = other.0.try_write() {
                self.sweep(&mut theirs, None, now);
            }
        }
        if self.over() {
            let mut slots = Self::write(shard);
            if let Some(i) = slots.slots.iter().position(|s| s.key.as_ptr() == keep) {
                self.remove_at(&mut slots, i);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn over(&self) -> bool {
        self.bytes.load(Ordering::Relaxed) > self.budget
    }

    /// Moves the CLOCK hand over `slots` until the map is within budget or the shard has
    /// nothing left to give (two turns at most): expired slots go, visited ones lose their
    /// bit, unvisited ones go. The slot whose key is at `keep` is spared.
    fn sweep(&self, slots: &mut Slots<V>, keep: Option<*const u8>, now: Instant) {
        let mut steps = slots.slots.len().saturating_mul(2).saturating_add(1);
        while self.over() && steps > 0 {
            steps = steps.saturating_sub(1);
            if slots.hand >= slots.slots.len() {
                slots.hand = 0;
            }
            let i = slots.hand;
            let Some(slot) = slots.slots.get(i) else {
                return;
            };
            let spared = keep == Some(slot.key.as_ptr());
            let live = slot.live(now);
            if spared || (live && slot.visited.swap(false, Ordering::Relaxed)) {
                slots.hand = i.saturating_add(1);
                continue;
            }
            // The last slot, the newest, moves into `i`: the hand passes over it, so that the
            // newest entries are looked at last (as they are in SIEVE).
            self.remove_at(slots, i);
            slots.hand = i.saturating_add(1);
            if live {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn remove_at(&self, slots: &mut Slots<V>, i: usize) -> Option<Slot<V>> {
        let slot = slots.remove_at(i)?;
        self.bytes.fetch_sub(slot.weight, Ordering::Relaxed);
        Some(slot)
    }

    /// Removes every entry for which `remove(key, value, live)` says so, a shard at a time
    /// under its write lock; the removed values.
    pub(crate) fn remove_where(
        &self,
        now: Instant,
        mut remove: impl FnMut(&str, &V, bool) -> bool,
    ) -> Vec<V> {
        let mut removed = Vec::new();
        for shard in &self.shards {
            let mut slots = Self::write(shard);
            let mut i = 0;
            while let Some(slot) = slots.slots.get(i) {
                if remove(&slot.key, &slot.value, slot.live(now)) {
                    if let Some(slot) = self.remove_at(&mut slots, i) {
                        removed.push(slot.value);
                    }
                } else {
                    i = i.saturating_add(1);
                }
            }
        }
        removed
    }

    /// Calls `visit(key, value)` on every entry live at `now`, a shard at a time under its
    /// read lock, until it returns `false`.
    pub(crate) fn for_each_live(&self, now: Instant, mut visit: impl FnMut(&str, &V) -> bool) {
        for shard in &self.shards {
            let slots = Self::read(shard);
            for slot in slots.slots.iter().filter(|s| s.live(now)) {
                if !visit(&slot.key, &slot.value) {
                    return;
                }
            }
        }
    }

    /// Drops every entry; how many there were (expired ones included).
    pub(crate) fn clear(&self) -> u64 {
        let mut n = 0u64;
        for shard in &self.shards {
            let mut slots = Self::write(shard);
            n = n.saturating_add(slots.slots.len() as u64);
            let weight = slots
                .slots
                .iter()
                .fold(0u64, |w, s| w.saturating_add(s.weight));
            slots.slots = Vec::new();
            slots.index = HashTable::new();
            slots.hand = 0;
            self.bytes.fetch_sub(weight, Ordering::Relaxed);
        }
        n
    }

    /// The weight of every entry stored (expired ones not yet dropped included).
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Entries stored (expired ones not yet dropped included).
    pub(crate) fn len(&self) -> u64 {
        self.shards.iter().fold(0u64, |n, shard| {
            n.saturating_add(Self::read(shard).slots.len() as u64)
        })
    }

    /// Live entries dropped for room so far.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

impl<V> Slots<V> {
    fn position(&self, hash: u64, key: &str) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| {
                slots
                    .get(i as usize)
                    .is_some_and(|s| s.hash == hash && &*s.key == key)
            })
            .map(|&i| i as usize)
    }

    #[inline]
    fn find(&self, hash: u64, key: &str) -> Option<&Slot<V>> {
        self.position(hash, key).and_then(|i| self.slots.get(i))
    }

    /// Appends a slot for a key that has none; its key's address (stable while it lives).
    fn push(
        &mut self,
        hash: u64,
        key: &str,
        value: V,
        weight: u64,
        expires_at: Option<Instant>,
    ) -> *const u8 {
        let i = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        let key: Box<str> = Box::from(key);
        let ptr = key.as_ptr();
        self.slots.push(Slot {
            hash,
            key,
            value,
            weight,
            expires_at,
            visited: AtomicBool::new(false),
        });
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i, |&j| slots.get(j as usize).map_or(0, |s| s.hash));
        ptr
    }

    /// Removes slot `i` (the last slot takes its place).
    fn remove_at(&mut self, i: usize) -> Option<Slot<V>> {
        let hash = self.slots.get(i)?.hash;
        let at = u32::try_from(i).ok()?;
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == at) {
            entry.remove();
        }
        let last = self.slots.len().checked_sub(1)?;
        let slot = self.slots.swap_remove(i);
        if i != last
            && let Some(moved) = self.slots.get(i)
        {
            let from = u32::try_from(last).ok()?;
            if let Some(j) = self.index.find_mut(moved.hash, |&j| j == from) {
                *j = at;
            }
        }
        Some(slot)
    }
}

#[cfg(test)]
mod tests;
