//! What a run counted: the live counters of one process ([`Tally`]) and the report they
//! become ([`Report`]), which travels from child processes to the parent as one JSON line
//! and merges across processes.

use super::scenario::{Api, KINDS, Kind};
use cachette::StatsSnapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many stale reads a report keeps as examples.
pub const MAX_EXAMPLES: usize = 8;

/// One stale read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Example {
    pub record: u32,
    /// The fence read before the call started.
    pub fenced: u64,
    /// The version the call returned (lower than `fenced`).
    pub returned: u64,
    /// The kind of the invalidation that fenced `fenced`.
    pub kind: Option<Kind>,
    pub api: Api,
    /// What the call said it did (`capture_outcome`).
    pub outcome: String,
    pub process: u32,
}

/// The cache's own counters that show the run raced (summed over processes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
    pub coalesced: u64,
    pub stale_served: u64,
    pub stale_if_error: u64,
    pub early_refreshes: u64,
    pub lock_waits: u64,
    pub lock_timeouts: u64,
    pub stores: u64,
    pub backend_errors: u64,
    /// Lookups the near cache answered (runs with one).
    #[serde(default)]
    pub near_hits: u64,
}

/// The counts of a run of one scenario on one store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub processes: u32,
    pub reads: u64,
    pub stale: u64,
    /// Bounded near cache: reads that missed only invalidations returned less than the bound
    /// before they began (allowed), and the longest such lag, in microseconds.
    #[serde(default)]
    pub late: u64,
    #[serde(default)]
    pub max_late_us: u64,
    /// The longest cached call, in microseconds (fault runs report it).
    #[serde(default)]
    pub max_call_us: u64,
    /// Calls that returned an error (fallible scenarios).
    pub errors: u64,
    pub computations: u64,
    pub writes: u64,
    /// Invalidations that returned `Ok`, by [`Kind::index`].
    pub invalidations: [u64; KINDS],
    pub invalidation_errors: u64,
    /// Stale reads by `kind/outcome` (kind of the fence's invalidation, outcome of the call).
    pub stale_by: BTreeMap<String, u64>,
    pub cache: CacheCounts,
    pub examples: Vec<Example>,
}

impl Report {
    pub fn invalidations_total(&self) -> u64 {
        self.invalidations.iter().sum()
    }

    pub fn merge(&mut self, other: Report) {
        self.processes += other.processes;
        self.reads += other.reads;
        self.stale += other.stale;
        self.late += other.late;
        self.max_late_us = self.max_late_us.max(other.max_late_us);
        self.max_call_us = self.max_call_us.max(other.max_call_us);
        self.errors += other.errors;
        self.computations += other.computations;
        self.writes += other.writes;
        for (a, b) in self.invalidations.iter_mut().zip(other.invalidations) {
            *a += b;
        }
        self.invalidation_errors += other.invalidation_errors;
        for (k, n) in other.stale_by {
            *self.stale_by.entry(k).or_default() += n;
        }
        let (c, o) = (&mut self.cache, other.cache);
        c.hits += o.hits;
        c.misses += o.misses;
        c.coalesced += o.coalesced;
        c.stale_served += o.stale_served;
        c.stale_if_error += o.stale_if_error;
        c.early_refreshes += o.early_refreshes;
        c.lock_waits += o.lock_waits;
        c.lock_timeouts += o.lock_timeouts;
        c.stores += o.stores;
        c.backend_errors += o.backend_errors;
        c.near_hits += o.near_hits;
        let room = MAX_EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }
}

/// The live counters of one process, shared by its reader and writer tasks.
#[derive(Default)]
pub struct Tally {
    pub reads: AtomicU64,
    pub errors: AtomicU64,
    pub computations: AtomicU64,
    pub writes: AtomicU64,
    pub invalidations: [AtomicU64; KINDS],
    pub invalidation_errors: AtomicU64,
    late: AtomicU64,
    max_late_us: AtomicU64,
    max_call_us: AtomicU64,
    stale: Mutex<(u64, BTreeMap<String, u64>, Vec<Example>)>,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::SeqCst)
}

impl Tally {
    pub fn late_read(&self, lag_us: u64) {
        self.late.fetch_add(1, Ordering::SeqCst);
        self.max_late_us.fetch_max(lag_us, Ordering::SeqCst);
    }

    pub fn call_took(&self, us: u64) {
        self.max_call_us.fetch_max(us, Ordering::SeqCst);
    }

    pub fn stale_read(&self, example: Example) {
        let mut s = self.stale.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += 1;
        let kind = example.kind.map_or("?", Kind::name);
        *s.1.entry(format!("{kind}/{}", example.outcome))
            .or_default() += 1;
        if s.2.len() < MAX_EXAMPLES {
            s.2.push(example);
        }
    }

    /// The report of this process, with its cache's counters.
    pub fn report(&self, stats: StatsSnapshot) -> Report {
        let s = self.stale.lock().unwrap_or_else(|e| e.into_inner());
        Report {
            processes: 1,
            reads: get(&self.reads),
            stale: s.0,
            late: get(&self.late),
            max_late_us: get(&self.max_late_us),
            max_call_us: get(&self.max_call_us),
            errors: get(&self.errors),
            computations: get(&self.computations),
            writes: get(&self.writes),
            invalidations: std::array::from_fn(|i| get(&self.invalidations[i])),
            invalidation_errors: get(&self.invalidation_errors),
            stale_by: s.1.clone(),
            cache: CacheCounts {
                hits: stats.hits,
                misses: stats.misses,
                coalesced: stats.coalesced,
                stale_served: stats.stale_served,
                stale_if_error: stats.stale_if_error,
                early_refreshes: stats.early_refreshes,
                lock_waits: stats.lock_waits,
                lock_timeouts: stats.lock_timeouts,
                stores: stats.stores,
                backend_errors: stats.backend_errors,
                near_hits: 0,
            },
            examples: s.2.clone(),
        }
    }
}
