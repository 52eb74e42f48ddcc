//! The freshness (linearizability) checker: does a read ever return a value whose
//! computation began before an invalidation that returned `Ok` before the read began?
//!
//! A "database" holds one version per record, raised by every write. A writer writes (new
//! version `v`), invalidates the record in the cache (tags, `delete`, `invalidate_pattern`
//! or a write-through `set` of `v`) and, once that returned `Ok`, publishes `v` as *fenced*
//! (set-if-greater). A reader reads the fence `f` before its call starts; the computation
//! reads the database between random delays. The read is **stale** iff it returns a version
//! below `f`: that version was read before `f` was written, so its computation began before
//! the invalidation of `f` began, and that invalidation returned before the read began. No
//! clock is compared, across processes or within one.
//!
//! Used by `tests/freshness.rs` (bounded runs that assert no stale read) and
//! `examples/freshness.rs` (long runs), each with its own way of re-executing itself as a
//! child process.
#![allow(dead_code)]

pub mod db;
pub mod processes;
pub mod reader;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod table;
pub mod writer;

use cachette::{Cache, Options};
use db::Db;
use report::{Report, Tally};
use scenario::{Knobs, Scenario};

/// What the tasks of one process share.
pub struct Ctx {
    pub cache: Cache,
    pub db: Db,
    pub scenario: Scenario,
    pub knobs: Knobs,
    /// The options of each record's calls.
    pub opts: Vec<Options>,
    pub tally: Tally,
    /// 0 for the parent (or the only process), 1.. for children.
    pub process: u32,
}

impl Ctx {
    pub fn new(cache: Cache, db: Db, scenario: &Scenario, knobs: &Knobs, process: u32) -> Ctx {
        Ctx {
            cache,
            db,
            opts: (0..knobs.records).map(|id| scenario.options(id)).collect(),
            scenario: scenario.clone(),
            knobs: knobs.clone(),
            tally: Tally::default(),
            process,
        }
    }

    /// This process's report, with its cache's counters.
    pub fn report(&self) -> Report {
        let mut report = self.tally.report(self.cache.stats());
        report.cache.near_hits = self.cache.near_stats().map_or(0, |n| n.hits);
        report
    }
}
