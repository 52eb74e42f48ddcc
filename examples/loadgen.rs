//! Load generator: replays a service's read/write mix against a user "database" with and
//! without cachette, and reports what the cache saves the database and the callers.
//!
//! ```sh
//! cargo run --release --example loadgen                      # Redis (started here), defaults
//! cargo run --release --example loadgen -- --backend memory  # the embedded store
//! cargo run --release --example loadgen -- --backend near    # Redis with a strict near cache
//! cargo run --release --example loadgen -- --backend near-b  # ... a bounded one (10 ms)
//! cargo run --release --example loadgen -- --help
//! ```
//!
//! The workload: reads of user ids drawn from a Zipf distribution (s = 1.0 over 100,000 ids,
//! sampled exactly by inverse CDF), 1% writes that update a user in the database and then
//! invalidate its tag, sent open-loop at a fixed rate (default 10,000 requests/s). The database
//! is a pool of connections (threads) each answering one query at a time after a configurable
//! latency (default 1 ms), like a database reached over a connection pool.
//!
//! The reads go through the database layer a service would write (`Users` below):
//! `#[cached(key = "user:{id}", tags = ["user:{id}"])]` on the read, and
//! `#[invalidates(tags = ["user:{id}"])]` on the write.
//!
//! Three phases, each at the same offered rate for the same duration:
//! 1. **without cache**: every read is a database query;
//! 2. **cachette, cold start**: an empty cache;
//! 3. **cachette, warmed**: every id is loaded first (`cachette::refresh`, cache warming at
//!    start-up), as in a service that has been running for longer than the TTL's worth of
//!    traffic.
//!
//! Each phase also checks the invalidation guarantee: a read that starts after a write's
//! invalidation returned must not see an older version (counted as stale reads; must be 0).
//!
//! Output: a table (stdout and `<out>/loadgen.md`) and a plot of read latency percentiles
//! (`<out>/loadgen-latency.svg`). While it runs, a progress line on stderr.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, cached, invalidates};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ----- configuration -----------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Config {
    backend: String,
    redis_url: Option<String>,
    rate: u64,
    duration: Duration,
    db_latency: Duration,
    db_connections: usize,
    ids: u64,
    zipf_s: f64,
    writes: f64,
    seed: u64,
    out: PathBuf,
}

const USAGE: &str = "\
loadgen: database load and latency with and without cachette

options (defaults in brackets):
  --backend redis|memory|near|near-b
                           cache backend [redis: a redis-server is started on a free port;
                           near: Redis with a strict near cache of 256 MB; near-b: bounded,
                           near_max_staleness 10 ms]
  --redis-url URL          use this Redis instead of starting one
  --rate N                 requests per second, open loop [10000]
  --duration SECS          length of each of the three phases [20]
  --db-latency MS          latency of one database query, fractional ms allowed [1]
  --db-connections N       database connection pool size [32]
  --ids N                  number of user ids [100000]
  --zipf S                 Zipf exponent of the reads [1.0]
  --writes F               fraction of requests that are writes [0.01]
  --seed N                 random seed [42]
  --out DIR                where loadgen.md and loadgen-latency.svg go [target/loadgen]
";

fn parse_args() -> Result<Config, String> {
    let mut c = Config {
        backend: "redis".to_owned(),
        redis_url: None,
        rate: 10_000,
        duration: Duration::from_secs(20),
        db_latency: Duration::from_millis(1),
        db_connections: 32,
        ids: 100_000,
        zipf_s: 1.0,
        writes: 0.01,
        seed: 42,
        out: PathBuf::from("target/loadgen"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .map_err(|e| format!("{flag} {v}: {e}"))
                .and_then(|x| {
                    if x.is_finite() && x >= 0.0 {
                        Ok(x)
                    } else {
                        Err(format!("{flag} {v}: must be a non-negative number"))
                    }
                })
        };
        match flag.as_str() {
            "--backend" => c.backend = value,
            "--redis-url" => c.redis_url = Some(value),
            "--rate" => c.rate = num(&value)? as u64,
            "--duration" => c.duration = Duration::from_secs_f64(num(&value)?),
            "--db-latency" => c.db_latency = Duration::from_secs_f64(num(&value)? / 1000.0),
            "--db-connections" => c.db_connections = num(&value)? as usize,
            "--ids" => c.ids = num(&value)? as u64,
            "--zipf" => c.zipf_s = num(&value)?,
            "--writes" => c.writes = num(&value)?,
            "--seed" => c.seed = num(&value)? as u64,
            "--out" => c.out = PathBuf::from(value),
            _ => return Err(format!("unknown option {flag}\n\n{USAGE}")),
        }
    }
    if !["redis", "memory", "near", "near-b"].contains(&c.backend.as_str()) {
        return Err(format!(
            "--backend {}: redis, memory, near or near-b",
            c.backend
        ));
    }
    if c.rate == 0 || c.ids == 0 || c.db_connections == 0 || c.writes > 1.0 {
        return Err(
            "--rate, --ids and --db-connections must be positive, --writes at most 1".into(),
        );
    }
    Ok(c)
}

// ----- the database --------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
    bio: String,
    version: u64,
}

#[derive(Debug)]
struct DbError;

enum Query {
    Get(u64),
    Update(u64),
}

struct Job {
    query: Query,
    reply: tokio::sync::oneshot::Sender<User>,
}

/// A database reached through a pool of connections: `connections` threads, each answering
/// one query at a time after `latency`. Counts its queries.
struct Database {
    jobs: std::sync::mpsc::Sender<Job>,
    rows: Arc<Vec<AtomicU64>>,
    queries: AtomicU64,
}

impl Database {
    fn start(ids: u64, connections: usize, latency: Duration) -> Database {
        let rows: Arc<Vec<AtomicU64>> = Arc::new((0..ids).map(|_| AtomicU64::new(1)).collect());
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..connections {
            let rx = Arc::clone(&rx);
            let rows = Arc::clone(&rows);
            std::thread::Builder::new()
                .name(format!("db-{n}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        std::thread::sleep(latency);
                        let (id, version) = match job.query {
                            Query::Get(id) => (id, rows[id as usize].load(Ordering::SeqCst)),
                            Query::Update(id) => {
                                (id, rows[id as usize].fetch_add(1, Ordering::SeqCst) + 1)
                            }
                        };
                        let _ = job.reply.send(row(id, version));
                    }
                })
                .expect("a database thread");
        }
        Database {
            jobs: tx,
            rows,
            queries: AtomicU64::new(0),
        }
    }

    async fn query(&self, query: Query) -> Result<User, DbError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs.send(Job { query, reply }).map_err(|_| DbError)?;
        answer.await.map_err(|_| DbError)
    }

    fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

fn row(id: u64, version: u64) -> User {
    User {
        id,
        name: format!("User number {id}"),
        email: format!("user{id}@example.com"),
        bio: "Writes Rust services for a living; likes caches that do not serve stale data. \
              Lives somewhere with good coffee."
            .to_owned(),
        version,
    }
}

// ----- the service's database layer --------------------------------------------------------

/// What a service's user repository looks like with cachette.
struct Users {
    db: Arc<Database>,
    cache: Cache,
}

impl Users {
    /// `went_to_db` is set when the body runs (a miss): how the generator tells hits apart.
    #[cached(key = "user:{id}", ttl = "10m", tags = ["user:{id}"], cache = self.cache)]
    async fn get(&self, id: u64, went_to_db: &AtomicBool) -> Result<User, DbError> {
        went_to_db.store(true, Ordering::Relaxed);
        self.db.query(Query::Get(id)).await
    }

    /// Updates the row, then invalidates every entry tagged with the user. Returns the new
    /// version.
    #[invalidates(tags = ["user:{id}"], cache = self.cache)]
    async fn update(&self, id: u64) -> Result<u64, DbError> {
        Ok(self.db.query(Query::Update(id)).await?.version)
    }
}

// ----- the workload ------------------------------------------------------------------------

/// SplitMix64: small, fast, good enough for a workload.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Exact Zipf sampling over ranks 1..=n by inverse CDF: P(k) ∝ 1/k^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n as usize);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += 1.0 / (k as f64).powf(s);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    /// A rank in 0..n (0 is the most popular).
    fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.next_f64();
        let i = self.cdf.partition_point(|&c| c <= u);
        i.min(self.cdf.len() - 1) as u64
    }
}

#[derive(Clone, Copy)]
enum Op {
    Read(u64),
    Write(u64),
}

/// The same sequence of requests for every phase.
struct Workload {
    rng: Rng,
    zipf: Arc<Zipf>,
    writes: f64,
}

impl Workload {
    fn next(&mut self) -> Op {
        let write = self.rng.next_f64() < self.writes;
        let id = self.zipf.sample(&mut self.rng);
        if write { Op::Write(id) } else { Op::Read(id) }
    }
}

// ----- recording -----------------------------------------------------------------------------

#[derive(Default)]
struct Samples {
    /// Read latencies (ns), by how the read was served.
    hit: Vec<u64>,
    db: Vec<u64>,
    write: Vec<u64>,
    /// How late the generator sent requests (ns): it must keep up for the rate to hold.
    lag: Vec<u64>,
}

#[derive(Default)]
struct Live {
    done: AtomicU64,
    hits: AtomicU64,
    stale: AtomicU64,
    errors: AtomicU64,
}

struct PhaseResult {
    name: &'static str,
    elapsed: Duration,
    requests: u64,
    reads: u64,
    hits: u64,
    db_queries: u64,
    stale: u64,
    errors: u64,
    hit: Vec<u64>,
    db: Vec<u64>,
    all_reads: Vec<u64>,
    write: Vec<u64>,
    lag: Vec<u64>,
}

impl PhaseResult {
    fn db_per_s(&self) -> f64 {
        self.db_queries as f64 / self.elapsed.as_secs_f64()
    }
    fn req_per_s(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn hit_ratio(&self) -> f64 {
        if self.reads == 0 {
            0.0
        } else {
            self.hits as f64 / self.reads as f64
        }
    }
}

/// The `p`-th percentile (0..=100) of sorted `v`, nearest rank.
fn pct(v: &[u64], p: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

fn fmt_ns(ns: u64) -> String {
    let ns = ns as f64;
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.0} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn fmt_pct(v: &[u64], p: f64) -> String {
    pct(v, p).map(fmt_ns).unwrap_or_else(|| "–".to_owned())
}

fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

// ----- one phase -----------------------------------------------------------------------------

/// Requests in flight at most; past it the generator waits (and its lag shows it).
const MAX_IN_FLIGHT: usize = 4096;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Uncached,
    Cached,
}

struct Phase {
    name: &'static str,
    mode: Mode,
}

/// Progress on stderr: a `\r` line on a terminal, a line every 5 s otherwise. Hand-written
/// (a few lines) rather than a dependency: one bar, no styling needed.
struct Progress {
    phase: usize,
    name: &'static str,
    started: Instant,
    total: Duration,
    live: Arc<Live>,
    db: Arc<Database>,
    db0: u64,
}

impl Progress {
    fn print(&self) {
        let tty = std::io::stderr().is_terminal();
        let elapsed = self.started.elapsed().min(self.total);
        let frac = elapsed.as_secs_f64() / self.total.as_secs_f64().max(1e-9);
        let width = 30;
        let filled = ((frac * width as f64).round() as usize).min(width);
        let done = self.live.done.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let line = format!(
            "[{}{}] {:>3.0}%  phase {}/3 {:<22} {:>5.1}/{:.0}s  {:>7} req/s  hits {:>5.1}%  db {:>7} q/s",
            "#".repeat(filled),
            ".".repeat(width - filled),
            frac * 100.0,
            self.phase,
            self.name,
            elapsed.as_secs_f64(),
            self.total.as_secs_f64(),
            thousands(done as f64 / secs),
            100.0 * self.live.hits.load(Ordering::Relaxed) as f64 / done.max(1) as f64,
            thousands((self.db.queries() - self.db0) as f64 / secs),
        );
        let mut err = std::io::stderr();
        if tty {
            let _ = write!(err, "\r{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}

async fn run_phase(
    cfg: &Config,
    index: usize,
    phase: &Phase,
    users: Arc<Users>,
    confirmed: Arc<Vec<AtomicU64>>,
    zipf: Arc<Zipf>,
) -> PhaseResult {
    let db = Arc::clone(&users.db);
    let db0 = db.queries();
    let live = Arc::new(Live::default());
    let samples = Arc::new(Mutex::new(Samples::default()));
    let total = (cfg.rate as f64 * cfg.duration.as_secs_f64()).round() as u64;
    let mut workload = Workload {
        rng: Rng(cfg.seed),
        zipf,
        writes: cfg.writes,
    };
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let started = Instant::now();

    let progress = Arc::new(Progress {
        phase: index + 1,
        name: phase.name,
        started,
        total: cfg.duration,
        live: Arc::clone(&live),
        db: Arc::clone(&db),
        db0,
    });
    let reporter = {
        let progress = Arc::clone(&progress);
        let every = if std::io::stderr().is_terminal() {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        };
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                progress.print();
            }
        })
    };

    // The generator is a thread of its own, sleeping with the OS timer (tens of µs) rather
    // than tokio's (1 ms): requests leave one by one at the rate, not in 1 ms bursts.
    let rate = cfg.rate;
    let mode = phase.mode;
    let handle = tokio::runtime::Handle::current();
    let generator = {
        let in_flight = Arc::clone(&in_flight);
        let live = Arc::clone(&live);
        let samples = Arc::clone(&samples);
        tokio::task::spawn_blocking(move || {
            let mut lags = Vec::with_capacity(total as usize);
            for i in 0..total {
                let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let Ok(permit) = handle.block_on(Arc::clone(&in_flight).acquire_owned()) else {
                    break;
                };
                lags.push(u64::try_from(due.elapsed().as_nanos()).unwrap_or(u64::MAX));
                let op = workload.next();
                let users = Arc::clone(&users);
                let live = Arc::clone(&live);
                let samples = Arc::clone(&samples);
                let confirmed = Arc::clone(&confirmed);
                handle.spawn(async move {
                    let t0 = Instant::now();
                    match op {
                        Op::Read(id) => {
                            // The newest version whose invalidation has returned: no read that starts
                            // now may return an older one.
                            let floor = confirmed[id as usize].load(Ordering::SeqCst);
                            let went_to_db = AtomicBool::new(mode == Mode::Uncached);
                            let r = match mode {
                                Mode::Uncached => users.db.query(Query::Get(id)).await,
                                Mode::Cached => users.get(id, &went_to_db).await,
                            };
                            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            match r {
                                Ok(u) if u.version < floor => {
                                    live.stale.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(_) => {}
                                Err(_) => {
                                    live.errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            let db = went_to_db.load(Ordering::Relaxed);
                            if !db {
                                live.hits.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Ok(mut s) = samples.lock() {
                                if db { s.db.push(ns) } else { s.hit.push(ns) }
                            }
                        }
                        Op::Write(id) => {
                            let r = match mode {
                                Mode::Uncached => {
                                    users.db.query(Query::Update(id)).await.map(|u| u.version)
                                }
                                Mode::Cached => users.update(id).await,
                            };
                            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            match r {
                                Ok(v) => {
                                    confirmed[id as usize].fetch_max(v, Ordering::SeqCst);
                                }
                                Err(_) => {
                                    live.errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            if let Ok(mut s) = samples.lock() {
                                s.write.push(ns);
                            }
                        }
                    }
                    live.done.fetch_add(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            lags
        })
    };
    let lags = generator.await.expect("the generator thread");
    // Wait for the requests still in flight.
    let _all = in_flight
        .acquire_many(MAX_IN_FLIGHT as u32)
        .await
        .expect("semaphore open");
    let elapsed = started.elapsed();
    reporter.abort();
    progress.print();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }

    let mut s = std::mem::take(&mut *samples.lock().expect("samples"));
    s.lag = lags;
    for v in [&mut s.hit, &mut s.db, &mut s.write, &mut s.lag] {
        v.sort_unstable();
    }
    let mut all_reads: Vec<u64> = s.hit.iter().chain(&s.db).copied().collect();
    all_reads.sort_unstable();
    let reads = all_reads.len() as u64;
    PhaseResult {
        name: phase.name,
        elapsed,
        requests: live.done.load(Ordering::Relaxed),
        reads,
        hits: s.hit.len() as u64,
        db_queries: db.queries() - db0,
        stale: live.stale.load(Ordering::Relaxed),
        errors: live.errors.load(Ordering::Relaxed),
        hit: s.hit,
        db: s.db,
        all_reads,
        write: s.write,
        lag: s.lag,
    }
}

// ----- the report ----------------------------------------------------------------------------

fn report(cfg: &Config, backend: &str, r: &[PhaseResult]) -> String {
    let (base, cold, warm) = (&r[0], &r[1], &r[2]);
    let load = |p: &PhaseResult| 100.0 * p.db_per_s() / base.db_per_s().max(1e-9);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Workload: {} requests/s for {} s per phase, Zipf s = {} over {} ids, {}% writes \
         (update + tag invalidation), database latency {} with {} connections, cache: cachette on {backend}.\n",
        thousands(cfg.rate as f64),
        cfg.duration.as_secs_f64(),
        cfg.zipf_s,
        thousands(cfg.ids as f64),
        cfg.writes * 100.0,
        fmt_ns(u64::try_from(cfg.db_latency.as_nanos()).unwrap_or(u64::MAX)),
        cfg.db_connections,
    );
    let _ = writeln!(
        o,
        "| Metric | Without cache | cachette, cold start | cachette, warmed | Improvement (warmed) |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|");
    let _ = writeln!(
        o,
        "| **Database load** | 100% | {:.1}% | {:.1}% | **−{:.1}%** |",
        load(cold),
        load(warm),
        100.0 - load(warm)
    );
    let _ = writeln!(
        o,
        "| **Database queries** | {}/s | {}/s | {}/s | **−{:.1}%** |",
        thousands(base.db_per_s()),
        thousands(cold.db_per_s()),
        thousands(warm.db_per_s()),
        100.0 - load(warm)
    );
    let _ = writeln!(
        o,
        "| **Cache hit ratio** (reads) | 0% (no cache) | {:.1}% | {:.2}% | |",
        100.0 * cold.hit_ratio(),
        100.0 * warm.hit_ratio()
    );
    let speedup = |p: f64| match (pct(&base.all_reads, p), pct(&warm.hit, p)) {
        (Some(b), Some(h)) if h > 0 => format!("**{:.1}× faster**", b as f64 / h as f64),
        _ => String::new(),
    };
    for p in [50.0, 99.0] {
        let _ = writeln!(
            o,
            "| **Response time p{p} (cached calls)** | {} (every call uncached) | {} | {} | {} |",
            fmt_pct(&base.all_reads, p),
            fmt_pct(&cold.hit, p),
            fmt_pct(&warm.hit, p),
            speedup(p)
        );
    }
    for p in [50.0, 99.0] {
        let ratio = match (pct(&base.all_reads, p), pct(&warm.all_reads, p)) {
            (Some(b), Some(w)) if w > 0 => format!("{:.1}× faster", b as f64 / w as f64),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "| **Response time p{p} (all reads)** | {} | {} | {} | {ratio} |",
            fmt_pct(&base.all_reads, p),
            fmt_pct(&cold.all_reads, p),
            fmt_pct(&warm.all_reads, p),
        );
    }
    for p in [50.0, 99.0] {
        let _ = writeln!(
            o,
            "| Response time p{p} (uncached calls: reads that queried the database) | {} | {} | {} | |",
            fmt_pct(&base.db, p),
            fmt_pct(&cold.db, p),
            fmt_pct(&warm.db, p),
        );
    }
    let _ = writeln!(
        o,
        "| Write (update + invalidation) p50 / p99 | {} / {} | {} / {} | {} / {} | |",
        fmt_pct(&base.write, 50.0),
        fmt_pct(&base.write, 99.0),
        fmt_pct(&cold.write, 50.0),
        fmt_pct(&cold.write, 99.0),
        fmt_pct(&warm.write, 50.0),
        fmt_pct(&warm.write, 99.0),
    );
    let _ = writeln!(
        o,
        "| Stale reads (older than a returned invalidation) | {} | {} | {} | |",
        base.stale, cold.stale, warm.stale
    );
    let _ = writeln!(
        o,
        "| Requests served (rate achieved) | {} ({}/s) | {} ({}/s) | {} ({}/s) | |",
        thousands(base.requests as f64),
        thousands(base.req_per_s()),
        thousands(cold.requests as f64),
        thousands(cold.req_per_s()),
        thousands(warm.requests as f64),
        thousands(warm.req_per_s()),
    );
    let _ = writeln!(
        o,
        "| Generator lag p99 (late sends) | {} | {} | {} | |",
        fmt_pct(&base.lag, 99.0),
        fmt_pct(&cold.lag, 99.0),
        fmt_pct(&warm.lag, 99.0),
    );
    let errors: u64 = r.iter().map(|p| p.errors).sum();
    if errors > 0 {
        let _ = writeln!(o, "\n**{errors} requests failed.**");
    }
    let _ = writeln!(
        o,
        "\nDatabase load is the phase's database queries per second (reads that missed, plus \
         the writes) over those of the phase without cache, at the same offered rate. \
         \"Cached calls\" are reads served without a database query."
    );
    o
}

const PERCENTILES: [f64; 7] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99];

/// A log-scale line chart of read latency percentiles, written by hand.
fn svg(cfg: &Config, backend: &str, r: &[PhaseResult]) -> String {
    let series: [(&str, &str, &[u64]); 4] = [
        (
            "without cache: every read queries the database",
            "#d62728",
            &r[0].all_reads,
        ),
        (
            "cachette, cold start: all reads",
            "#ff7f0e",
            &r[1].all_reads,
        ),
        ("cachette, warmed: all reads", "#1f77b4", &r[2].all_reads),
        (
            "cachette, warmed: cached calls (hits)",
            "#2ca02c",
            &r[2].hit,
        ),
    ];
    let (w, h) = (820.0, 480.0);
    let (left, right, top, bottom) = (80.0, 20.0, 60.0, 60.0);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, _, v)| PERCENTILES.iter().filter_map(|&p| pct(v, p)))
        .map(|ns| (ns.max(1) as f64) / 1000.0)
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(0.1);
    let hi = values.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let (dlo, dhi) = (lo.log10().floor(), hi.log10().ceil());
    let x = |i: usize| left + (w - left - right) * i as f64 / (PERCENTILES.len() - 1) as f64;
    let y = |us: f64| top + (h - top - bottom) * (dhi - us.max(1e-3).log10()) / (dhi - dlo);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(s, r##"<rect width="{w}" height="{h}" fill="white"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Read latency by percentile (log scale)</text>"##,
        w / 2.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="40" text-anchor="middle" fill="#555">{} req/s, Zipf s={} over {} ids, {}% writes, {} database, cachette on {backend}</text>"##,
        w / 2.0,
        thousands(cfg.rate as f64),
        cfg.zipf_s,
        thousands(cfg.ids as f64),
        cfg.writes * 100.0,
        fmt_ns(u64::try_from(cfg.db_latency.as_nanos()).unwrap_or(u64::MAX)),
    );
    // Horizontal grid: 1, 2, 5 per decade.
    let mut d = dlo;
    while d <= dhi {
        for m in [1.0, 2.0, 5.0] {
            let us = m * 10f64.powf(d);
            if us.log10() > dhi + 1e-9 {
                continue;
            }
            let yy = y(us);
            let (stroke, label) = if m == 1.0 {
                ("#bbb", true)
            } else {
                ("#eee", false)
            };
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="{stroke}"/>"##,
                w - right
            );
            if label {
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                    left - 6.0,
                    yy + 4.0,
                    if us >= 1000.0 {
                        format!("{} ms", us / 1000.0)
                    } else {
                        format!("{us} µs")
                    }
                );
            }
        }
        d += 1.0;
    }
    for (i, p) in PERCENTILES.iter().enumerate() {
        let xx = x(i);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{}" stroke="#eee"/>"##,
            h - bottom
        );
        let _ = writeln!(
            s,
            r##"<text x="{xx:.1}" y="{}" text-anchor="middle">p{p}</text>"##,
            h - bottom + 18.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" text-anchor="middle">percentile</text>"##,
        (left + w - right) / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r##"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">latency</text>"##,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    );
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#888"/>"##,
        w - left - right,
        h - top - bottom
    );
    for (k, (name, color, v)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = PERCENTILES
            .iter()
            .enumerate()
            .filter_map(|(i, &p)| pct(v, p).map(|ns| (x(i), y(ns as f64 / 1000.0))))
            .collect();
        let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2.5"/>"##,
            path.join(" ")
        );
        for (a, b) in &pts {
            let _ = writeln!(
                s,
                r##"<circle cx="{a:.1}" cy="{b:.1}" r="3.5" fill="{color}"/>"##
            );
        }
        let ly = top + 16.0 + 18.0 * k as f64;
        let _ = writeln!(
            s,
            r##"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2.5"/><text x="{}" y="{}">{name}</text>"##,
            left + 12.0,
            left + 36.0,
            left + 42.0,
            ly + 4.0
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

// ----- main ----------------------------------------------------------------------------------

fn main() {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let on_redis = cfg.backend != "memory";
    let server = match (on_redis, &cfg.redis_url) {
        (true, None) => Some(redis_server::RedisServer::start_with(&[
            "--maxmemory",
            "2gb",
            "--maxmemory-policy",
            "allkeys-lru",
        ])),
        _ => None,
    };
    let url = cfg
        .redis_url
        .clone()
        .or_else(|| server.as_ref().map(|s| s.url()));
    let backend = match (&url, &cfg.backend[..]) {
        (Some(u), "near") => format!("Redis ({u}) with a strict near cache"),
        (Some(u), "near-b") => format!("Redis ({u}) with a bounded near cache (10 ms)"),
        (Some(u), _) if on_redis => format!("Redis ({u})"),
        _ => "the embedded memory store".to_owned(),
    };
    let make_cache = |namespace: &str| -> Cache {
        let b = Cache::builder().namespace(namespace);
        let b = match &url {
            Some(u) if on_redis => b.redis(u.clone()),
            _ => b.memory(512 << 20),
        };
        let b = match &cfg.backend[..] {
            "near" => b.near_cache(256 << 20),
            "near-b" => b
                .near_cache(256 << 20)
                .near_max_staleness(Duration::from_millis(10)),
            _ => b,
        };
        b.build().expect("a valid cache configuration")
    };

    let db = Arc::new(Database::start(cfg.ids, cfg.db_connections, cfg.db_latency));
    let zipf = Arc::new(Zipf::new(cfg.ids, cfg.zipf_s));
    let phases = [
        Phase {
            name: "without cache",
            mode: Mode::Uncached,
        },
        Phase {
            name: "cachette, cold start",
            mode: Mode::Cached,
        },
        Phase {
            name: "cachette, warmed",
            mode: Mode::Cached,
        },
    ];
    eprintln!(
        "loadgen: {} req/s, {} s per phase, cache on {backend}",
        thousands(cfg.rate as f64),
        cfg.duration.as_secs_f64()
    );

    let results: Vec<PhaseResult> = rt.block_on(async {
        let mut results = Vec::new();
        for (i, phase) in phases.iter().enumerate() {
            // A namespace per phase: each cached phase starts from an empty cache.
            let users = Arc::new(Users {
                db: Arc::clone(&db),
                cache: make_cache(&format!("loadgen{i}")),
            });
            if i == 2 {
                let started = Instant::now();
                warm(&users, cfg.ids).await;
                eprintln!(
                    "warmed {} ids in {:.1?} (cache warming at start-up; not measured)",
                    thousands(cfg.ids as f64),
                    started.elapsed()
                );
            }
            let confirmed: Arc<Vec<AtomicU64>> = Arc::new(
                (0..cfg.ids)
                    .map(|id| AtomicU64::new(db.rows[id as usize].load(Ordering::SeqCst)))
                    .collect(),
            );
            results.push(run_phase(&cfg, i, phase, users, confirmed, Arc::clone(&zipf)).await);
        }
        results
    });

    let table = report(&cfg, &backend, &results);
    println!("\n{table}");
    let _ = std::fs::create_dir_all(&cfg.out);
    let md = cfg.out.join("loadgen.md");
    let plot = cfg.out.join("loadgen-latency.svg");
    match std::fs::write(&md, &table)
        .and_then(|()| std::fs::write(&plot, svg(&cfg, &backend, &results)))
    {
        Ok(()) => println!("wrote {} and {}", md.display(), plot.display()),
        Err(e) => eprintln!("cannot write to {}: {e}", cfg.out.display()),
    }
    for p in &results {
        println!(
            "{}: {} reads, {} hits, {} database queries in {:.1?}",
            p.name,
            thousands(p.reads as f64),
            thousands(p.hits as f64),
            thousands(p.db_queries as f64),
            p.elapsed
        );
    }
    drop(rt);
    drop(server);
}

/// Loads every id through the cache (`cachette::refresh`: compute and store, no lookup), 64 at
/// a time.
async fn warm(users: &Arc<Users>, ids: u64) {
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let users = Arc::clone(users);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                loop {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    if id >= ids {
                        return;
                    }
                    let flag = AtomicBool::new(false);
                    let _ = cachette::refresh(users.get(id, &flag)).await;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}
