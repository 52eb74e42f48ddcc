//! Shared by the bench binaries: the value every contender caches, the criterion set-up, the
//! 64-task throughput driver, and the ratio table printed at the end of each binary (read back
//! from criterion's own estimates, so the figures are those of this run).
#![allow(dead_code)]

pub mod contenders;
pub mod rounds;

use criterion::{Criterion, Throughput};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Ids every hit bench cycles through (all pre-filled, for every contender).
pub const IDS: u64 = 1000;
/// Concurrent tasks of the throughput groups.
pub const TASKS: u64 = 64;
/// Worker threads of the benches' runtime (the machine has 2 cores).
pub const WORKERS: usize = 2;

/// The cached value, the same for every contender: a user row of ~200 bytes of JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub bio: String,
    pub version: u64,
}

/// The "database row" of `id` (what every contender's computation returns).
pub fn make_user(id: u64) -> User {
    User {
        id,
        name: format!("User number {id}"),
        email: format!("user{id}@example.com"),
        bio: "Writes Rust services for a living; likes caches that do not serve stale data. \
              Lives somewhere with good coffee."
            .to_owned(),
        version: 1,
    }
}

/// Whether the binary runs as a benchmark (`cargo bench`) rather than once as a test
/// (`cargo test --benches`, or `cargo bench -- --test`: criterion runs every routine once).
/// Heavy set-up (the 1,000,000-entry fill) is scaled down in test mode.
pub fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list")
}

/// The runtime every contender of a binary runs on: multi-thread, 2 workers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Criterion configured from the command line (`--warm-up-time`, `--measurement-time`, a
/// filter...). Plots are off: the tables are what BENCHMARKS.md quotes.
pub fn criterion() -> Criterion {
    Criterion::default().without_plots().configure_from_args()
}

/// Runs `iters` hits of contender `name` spread over [`TASKS`] tasks on `rt` and returns the
/// wall time: what `iter_custom` needs for a throughput figure (criterion then reports time
/// per op, and ops/s with `Throughput::Elements(1)`). Each task holds one handle on the
/// contenders, cloned when it starts: a clone per call would add the handle's reference
/// counts, written by both workers, to every hit of every contender.
pub fn run_tasks<C: Contenders>(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    c: &C,
    name: &'static str,
) -> Duration {
    let c = c.clone();
    rt.block_on(async move {
        let per = iters / TASKS;
        let rem = iters % TASKS;
        let started = Instant::now();
        let handles: Vec<_> = (0..TASKS)
            .map(|t| {
                let c = c.clone();
                let n = per + u64::from(t < rem);
                tokio::spawn(async move {
                    // Spread the tasks over the id space, so they do not all read one key.
                    let base = t * 7919;
                    for i in 0..n {
                        c.run(name, (base + i) % IDS).await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("bench task");
        }
        started.elapsed()
    })
}

/// A bench binary's contenders, each run by name (`REDIS_HITS`, `MEMORY_HITS`, ...).
pub trait Contenders: Clone + Send + Sync + 'static {
    /// One call of contender `which` for `id` (a hit once the contenders are filled).
    fn run(&self, which: &'static str, id: u64) -> impl Future<Output = ()> + Send;
}

/// One call of `which` for `id`, owning its handle on the contenders (what the drivers spawn).
pub fn hit<C: Contenders>(
    c: &C,
    which: &'static str,
    id: u64,
) -> impl Future<Output = ()> + Send + use<C> {
    let c = c.clone();
    async move { c.run(which, id).await }
}

/// Fills ids `0..IDS` for every contender in `names`, in that order, checking that a second
/// call computes nothing.
pub async fn prefill<C: Contenders>(c: &C, names: impl IntoIterator<Item = &'static str>) {
    for name in names {
        prefill_and_check(name, |id| hit(c, name, id)).await;
    }
}

/// A group of hit benches, one per contender of `names`, each timed by `bench`.
fn hit_group(
    cr: &mut Criterion,
    group: &str,
    names: &[&'static str],
    mut bench: impl FnMut(&mut criterion::Bencher<'_>, &'static str),
) {
    let mut g = cr.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    for &name in names {
        g.bench_function(name, |b| bench(b, name));
    }
    g.finish();
}

/// The latency group `group`: one call at a time from the runtime, cycling through the ids.
pub fn latency_group<C: Contenders>(
    cr: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    names: &[&'static str],
    c: &C,
) {
    // One running id across samples (criterion calls the routine once per sample).
    let mut i = 0u64;
    hit_group(cr, group, names, |b, name| {
        b.to_async(rt).iter(|| {
            i += 1;
            hit(c, name, i % IDS)
        })
    });
}

/// The throughput group `group`: calls spread over [`TASKS`] tasks ([`run_tasks`]).
pub fn throughput_group<C: Contenders>(
    cr: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    names: &[&'static str],
    c: &C,
) {
    hit_group(cr, group, names, |b, name| {
        b.iter_custom(|iters| run_tasks(rt, iters, c, name))
    });
}

/// One row of a ratio table: a measured bench and the bench it is compared with.
pub struct Row {
    pub label: &'static str,
    pub group: &'static str,
    pub id: &'static str,
    pub baseline: Option<(&'static str, &'static str)>,
}

/// A row compared with `baseline` (group, id).
pub fn row(
    label: &'static str,
    group: &'static str,
    id: &'static str,
    baseline: (&'static str, &'static str),
) -> Row {
    Row {
        label,
        group,
        id,
        baseline: Some(baseline),
    }
}

/// Criterion's output directory, found as criterion finds it.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("criterion");
    }
    // target/<profile>/deps/<bench>: three levels up is the target directory.
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

/// The median time per iteration (ns) criterion measured for `group/id` in this process, or
/// `None` when it was not run now (filtered out, test mode).
fn median_ns(group: &str, id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(id)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("median")?.get("point_estimate")?.as_f64()
}

fn human_time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn human_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k", per_s / 1e3)
    } else {
        format!("{per_s:.1}")
    }
}

/// Prints (and appends to `<criterion dir>/cachette-ratios.md`) a markdown table of `rows`:
/// median time per op, ops/s, and speed relative to the baseline (baseline time / time, so
/// above 1 means faster than the baseline), all from the estimates criterion wrote in this run.
pub fn ratio_table(title: &str, since: SystemTime, rows: &[Row]) {
    let mut out = String::new();
    let _ = writeln!(out, "\n### {title}\n");
    let _ = writeln!(out, "| bench | median time/op | ops/s | vs baseline |");
    let _ = writeln!(out, "|---|---:|---:|---|");
    let mut any = false;
    for r in rows {
        let Some(ns) = median_ns(r.group, r.id, since) else {
            continue;
        };
        any = true;
        let ratio = match r.baseline {
            Some((g, i)) if (g, i) == (r.group, r.id) => "baseline".to_owned(),
            Some((g, i)) => match median_ns(g, i, since) {
                Some(base) => format!("**{:.2}×** `{g}/{i}`", base / ns),
                None => "(baseline not run)".to_owned(),
            },
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "| `{}/{}` {} | {} | {} | {} |",
            r.group,
            r.id,
            r.label,
            human_time(ns),
            human_rate(1e9 / ns),
            ratio
        );
    }
    if !any {
        println!("\n({title}: no estimates from this run; test mode or filtered out)");
        return;
    }
    println!("{out}");
    let path = criterion_dir().join("cachette-ratios.md");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        use std::io::Write as _;
        let _ = f.write_all(out.as_bytes());
        println!("(appended to {})", path.display());
    }
}

/// How many times a contender's computation ran (the hit benches check it stays put: what
/// they measure are hits).
pub static COMPUTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The computation of every contender: counts, then builds the row.
pub fn compute(id: u64) -> User {
    COMPUTES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    make_user(id)
}

pub fn computes() -> u64 {
    COMPUTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// cachette's contenders: the same function under `#[cached]` with 0, 1, 2 and 4 tags (each
/// with its own key prefix, so their entries are distinct), and two for the miss path.
pub struct Svc {
    pub cache: cachette::Cache,
}

impl Svc {
    #[cachette::cached(key = "t0:{id}", ttl = "1h", cache = self.cache)]
    pub async fn user_t0(&self, id: u64) -> User {
        compute(id)
    }

    #[cachette::cached(key = "t1:{id}", ttl = "1h", tags = ["users"], cache = self.cache)]
    pub async fn user_t1(&self, id: u64) -> User {
        compute(id)
    }

    #[cachette::cached(key = "t2:{id}", ttl = "1h", tags = ["users", "user:{id}"], cache = self.cache)]
    pub async fn user_t2(&self, id: u64) -> User {
        compute(id)
    }

    #[cachette::cached(
        key = "t4:{id}",
        ttl = "1h",
        tags = ["users", "user:{id}", "tenant:acme", "region:eu"],
        cache = self.cache
    )]
    pub async fn user_t4(&self, id: u64) -> User {
        compute(id)
    }

    #[cachette::cached(key = "m0:{id}", ttl = "1h", cache = self.cache)]
    pub async fn miss_t0(&self, id: u64) -> User {
        compute(id)
    }

    #[cachette::cached(key = "m1:{id}", ttl = "1h", tags = ["users"], cache = self.cache)]
    pub async fn miss_t1(&self, id: u64) -> User {
        compute(id)
    }
}

/// Fills ids `0..IDS` for `fill` and checks that calling them again computes nothing.
pub async fn prefill_and_check<F, Fut>(what: &str, mut call: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    for id in 0..IDS {
        call(id).await;
    }
    let before = computes();
    for id in 0..IDS {
        call(id).await;
    }
    let again = computes() - before;
    assert_eq!(
        again, 0,
        "{what}: {again} of {IDS} calls computed after the fill: not hits"
    );
}
