//! The freshness workload shared, as this one file, by the two sides of the comparison:
//! `comparisons/cached_client_side` (the `cached` crate's Redis store with client-side
//! caching) and `examples/near_side_by_side.rs` (cachette with and without its near cache).
//! Each includes it with `#[path = ...] mod workload;` and only supplies a [`Reader`] and a
//! [`Writer`]; the database, the tasks, the timing and the verdicts are this file's, so both
//! sides run provably the same workload. Depends on `std` and `tokio` only.
//!
//! A "database" holds a version counter per record. `writers` tasks loop: pick a record,
//! bump its version, invalidate it through the WRITER instance and, once that returned Ok,
//! publish the new version as the record's fence (`fetch_max`), then pause 0 to
//! `writer_pause_ms`. `readers` tasks loop on the READER instance: pick a record, read its
//! fence `f`, note the instant, read through the cache; the read is stale iff the version it
//! returned is below `f` (an invalidation that returned before the read began was missed).
//! With a staleness bound (cachette's bounded near cache) a stale read whose missed
//! invalidations all returned less than the bound before it began is counted as `late`
//! (allowed by that contract), not `stale`.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workload's knobs (`--seconds`, `--records`, `--readers`, `--writers`, `--think-ms`,
/// `--writer-pause-ms`).
#[derive(Debug, Clone)]
pub struct Knobs {
    pub seconds: u64,
    pub records: u32,
    pub readers: u32,
    pub writers: u32,
    pub think_max_ms: u64,
    pub writer_pause_max_ms: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            seconds: 10,
            records: 16,
            readers: 32,
            writers: 2,
            think_max_ms: 4,
            writer_pause_max_ms: 20,
        }
    }
}

impl Knobs {
    /// Applies one `--flag value` pair; `Ok(false)` if the flag is not a workload flag.
    pub fn apply(&mut self, flag: &str, value: &str) -> Result<bool, String> {
        let num = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag {
            "--seconds" => self.seconds = num()?,
            "--records" => self.records = num()?.max(1) as u32,
            "--readers" => self.readers = num()? as u32,
            "--writers" => self.writers = num()? as u32,
            "--think-ms" => self.think_max_ms = num()?,
            "--writer-pause-ms" => self.writer_pause_max_ms = num()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The source of truth: a version per record, the published fences, and when each fence
/// was published (for the `late` verdict).
#[derive(Debug)]
pub struct Db {
    versions: Vec<AtomicU64>,
    fences: Vec<AtomicU64>,
    /// Per record: (version, instant its invalidation returned), in publication order.
    published: Vec<Mutex<Vec<(u64, Instant)>>>,
}

impl Db {
    pub fn new(records: u32) -> Db {
        let n = records as usize;
        Db {
            versions: (0..n).map(|_| AtomicU64::new(0)).collect(),
            fences: (0..n).map(|_| AtomicU64::new(0)).collect(),
            published: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// What a miss computes: the record's current version.
    pub fn read(&self, id: u32) -> u64 {
        self.versions[id as usize].load(Ordering::SeqCst)
    }

    fn bump(&self, id: u32) -> u64 {
        self.versions[id as usize].fetch_add(1, Ordering::SeqCst) + 1
    }

    fn fence(&self, id: u32) -> u64 {
        self.fences[id as usize].load(Ordering::SeqCst)
    }

    /// After the invalidation of `version` returned Ok.
    fn publish(&self, id: u32, version: u64) {
        let now = Instant::now();
        self.published[id as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((version, now));
        self.fences[id as usize].fetch_max(version, Ordering::SeqCst);
    }

    /// The earliest instant, before `began`, at which an invalidation of a version above
    /// `got` returned: the oldest invalidation a read that began at `began` and returned
    /// `got` missed.
    fn first_missed(&self, id: u32, got: u64, began: Instant) -> Option<Instant> {
        let log = self.published[id as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        log.iter()
            .filter(|(v, at)| *v > got && *at <= began)
            .map(|(_, at)| *at)
            .min()
    }
}

/// The reading side: one cache instance (its own connections).
pub trait Reader: Send + Sync + 'static {
    /// Reads record `id` through the cache; a miss computes `db.read(id)` (and stores it,
    /// as the library's read-through path does).
    fn read(&self, id: u32, db: &Arc<Db>) -> impl Future<Output = Result<u64, String>> + Send;

    /// Reads answered locally (near / client-side cache) since the instance was built, if
    /// the library can tell.
    fn local_hits(&self) -> Option<u64>;
}

/// The writing side: another cache instance (other connections), as another process.
pub trait Writer: Send + Sync + 'static {
    /// Invalidates record `id` in the cache; returns once the library says it is done.
    fn invalidate(&self, id: u32) -> impl Future<Output = Result<(), String>> + Send;
}

/// What one contender's run saw.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub reads: u64,
    pub stale: u64,
    pub late: u64,
    pub errors: u64,
    pub writes: u64,
    pub write_errors: u64,
    pub local_hits: Option<u64>,
    /// The largest `fence - version` of a stale read (how many versions behind).
    pub max_behind: u64,
    /// The longest time between the first missed invalidation's return and a stale read's
    /// start (how old the staleness was).
    pub max_stale_age: Duration,
    /// `late` only: a read missing invalidations within this bound is late, not stale.
    pub bound: Option<Duration>,
}

impl Report {
    pub fn header() -> String {
        format!(
            "{:<28} {:>9} {:>7} {:>8} {:>6} {:>10} {:>7} {:>6} {:>10} {:>12}",
            "contender",
            "reads",
            "stale",
            "stale%",
            "late",
            "near_hits",
            "writes",
            "errors",
            "max_behind",
            "max_stale_ms"
        )
    }

    pub fn line(&self, name: &str) -> String {
        let pct = if self.reads == 0 {
            0.0
        } else {
            100.0 * self.stale as f64 / self.reads as f64
        };
        let late = match self.bound {
            Some(_) => self.late.to_string(),
            None => "-".to_owned(),
        };
        let hits = self
            .local_hits
            .map_or_else(|| "-".to_owned(), |h| h.to_string());
        format!(
            "{:<28} {:>9} {:>7} {:>7.3}% {:>6} {:>10} {:>7} {:>6} {:>10} {:>12.1}",
            name,
            self.reads,
            self.stale,
            pct,
            late,
            hits,
            self.writes,
            self.errors + self.write_errors,
            self.max_behind,
            self.max_stale_age.as_secs_f64() * 1000.0
        )
    }
}

/// A small xorshift generator (no `rand` dependency in either crate).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

/// A random pause of 0 to `max_ms` milliseconds, in microseconds (0 yields).
async fn pause(rng: &mut Rng, max_ms: u64) {
    let micros = rng.upto(max_ms * 1000);
    if micros == 0 {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(Duration::from_micros(micros)).await;
    }
}

#[derive(Default)]
struct Tally {
    reads: AtomicU64,
    stale: AtomicU64,
    late: AtomicU64,
    errors: AtomicU64,
    writes: AtomicU64,
    write_errors: AtomicU64,
    max_behind: AtomicU64,
    max_stale_age_us: AtomicU64,
}

/// Runs the workload for `knobs.seconds` against `reader` and `writer` (fresh instances,
/// whose keys hold nothing yet). `bound`: the contender's staleness bound, if it has one.
pub async fn run<R: Reader, W: Writer>(
    reader: Arc<R>,
    writer: Arc<W>,
    knobs: &Knobs,
    bound: Option<Duration>,
) -> Report {
    let db = Arc::new(Db::new(knobs.records));
    let tally = Arc::new(Tally::default());
    let hits_before = reader.local_hits();
    let deadline = Instant::now() + Duration::from_secs(knobs.seconds);
    let mut tasks = Vec::new();
    for w in 0..knobs.writers {
        let (db, writer, tally) = (db.clone(), writer.clone(), tally.clone());
        let (records, pause_ms) = (knobs.records, knobs.writer_pause_max_ms);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(1_000 + u64::from(w));
            while Instant::now() < deadline {
                let id = (rng.next() % u64::from(records)) as u32;
                let version = db.bump(id);
                match writer.invalidate(id).await {
                    Ok(()) => {
                        db.publish(id, version);
                        tally.writes.fetch_add(1, Ordering::Relaxed);
                    }
                    // Not published: no reader is held to an invalidation that failed.
                    Err(_) => {
                        tally.write_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                pause(&mut rng, pause_ms).await;
            }
        }));
    }
    for r in 0..knobs.readers {
        let (db, reader, tally) = (db.clone(), reader.clone(), tally.clone());
        let (records, think_ms) = (knobs.records, knobs.think_max_ms);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(1 + u64::from(r));
            while Instant::now() < deadline {
                let id = (rng.next() % u64::from(records)) as u32;
                let fence = db.fence(id);
                let began = Instant::now();
                match reader.read(id, &db).await {
                    Ok(got) => {
                        tally.reads.fetch_add(1, Ordering::Relaxed);
                        if got < fence {
                            let first = db.first_missed(id, got, began).unwrap_or(began);
                            let age = began.saturating_duration_since(first);
                            let is_late = bound.is_some_and(|b| age < b);
                            if is_late {
                                tally.late.fetch_add(1, Ordering::Relaxed);
                            } else {
                                tally.stale.fetch_add(1, Ordering::Relaxed);
                                tally.max_behind.fetch_max(fence - got, Ordering::Relaxed);
                                tally
                                    .max_stale_age_us
                                    .fetch_max(age.as_micros() as u64, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(_) => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                pause(&mut rng, think_ms).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let local_hits = match (reader.local_hits(), hits_before) {
        (Some(after), Some(before)) => Some(after.saturating_sub(before)),
        (after, _) => after,
    };
    Report {
        reads: tally.reads.load(Ordering::Relaxed),
        stale: tally.stale.load(Ordering::Relaxed),
        late: tally.late.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        writes: tally.writes.load(Ordering::Relaxed),
        write_errors: tally.write_errors.load(Ordering::Relaxed),
        local_hits,
        max_behind: tally.max_behind.load(Ordering::Relaxed),
        max_stale_age: Duration::from_micros(tally.max_stale_age_us.load(Ordering::Relaxed)),
        bound,
    }
}

/// The command line this process was started with (for the report).
pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}
