//! What one hit costs, contender by contender, in units that a busy machine does not blur:
//!
//! 1. **Allocations per hit**: a counting global allocator around the system one, over a
//!    sequential loop of hits (after a warm-up). Every thread is counted, so the Redis
//!    connection's driver task and moka's housekeeping are included.
//! 2. **CPU and system calls per hit at 64 tasks on 2 workers**: the process's CPU time
//!    (`/proc/self/stat`), the redis-server's (`/proc/<pid>/stat`), write system calls
//!    (`/proc/self/io`: `write`/`writev`) and context switches (`/proc/self/task/*/status`) over a run of hits
//!    spread over 64 tasks, divided by the number of hits. CPU per hit, unlike ops/s, does not
//!    depend on what else the machine runs.
//!
//! Not a criterion bench: it prints two tables. `cargo bench --bench hit_costs`
//! (`HIT_COSTS_ONLY=raw_get,cachette_0_tags cargo bench --bench hit_costs` for some,
//! `HIT_COSTS_ONLY=redis/cachette_0_tags` for one store's). Linux only
//! (reads `/proc`); elsewhere the second table is empty.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

mod common;

use common::contenders::{
    MEMORY_HITS, MemoryContenders, REDIS_HITS, REDIS_LAYERS, REDIS_URL, RedisContenders,
};
use common::{Contenders, IDS, hit, run_tasks};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to the system allocator with the caller's arguments, unchanged;
// the counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: as above; `ptr` was allocated by this allocator, that is by `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A snapshot of the process's (and the server's) counters.
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu_ticks: u64,
    server_ticks: u64,
    syscw: u64,
    switches: u64,
}

fn stat_ticks(path: &str) -> u64 {
    // Fields 14 and 15 (utime, stime), counted after the `(comm)` field, which may hold spaces.
    let Ok(s) = std::fs::read_to_string(path) else {
        return 0;
    };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    // `rest` starts at field 3 (state): utime is field 14, at index 11.
    n(11) + n(12)
}

fn usage(server_pid: Option<u32>) -> Usage {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut switches = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            for l in status.lines() {
                if let Some(v) = l
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    switches += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    Usage {
        cpu_ticks: stat_ticks("/proc/self/stat"),
        server_ticks: server_pid
            .map(|p| stat_ticks(&format!("/proc/{p}/stat")))
            .unwrap_or(0),
        syscw: field("syscw:"),
        switches,
    }
}

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

struct Allocs {
    name: String,
    allocs: f64,
    bytes: f64,
}

fn allocs_per_hit<F, Fut>(rt: &tokio::runtime::Runtime, name: String, n: u64, op: F) -> Allocs
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    rt.block_on(async {
        for i in 0..n.min(2000) {
            op(i % IDS).await;
        }
        let (a0, b0) = (
            ALLOCS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        for i in 0..n {
            op(i % IDS).await;
        }
        let (a1, b1) = (
            ALLOCS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        Allocs {
            name,
            allocs: (a1 - a0) as f64 / n as f64,
            bytes: (b1 - b0) as f64 / n as f64,
        }
    })
}

struct Costs {
    name: String,
    ops_per_s: f64,
    cpu_us: f64,
    server_us: f64,
    syscw: f64,
    switches: f64,
}

fn costs_at_64_tasks<C: Contenders>(
    rt: &tokio::runtime::Runtime,
    name: String,
    n: u64,
    server_pid: Option<u32>,
    c: &C,
    which: &'static str,
) -> Costs {
    run_tasks(rt, n / 10, c, which);
    let u0 = usage(server_pid);
    let started = Instant::now();
    run_tasks(rt, n, c, which);
    let wall = started.elapsed().as_secs_f64();
    let u1 = usage(server_pid);
    let per = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / n as f64;
    Costs {
        name,
        ops_per_s: n as f64 / wall,
        cpu_us: per(u0.cpu_ticks, u1.cpu_ticks) / TICKS_PER_S * 1e6,
        server_us: per(u0.server_ticks, u1.server_ticks) / TICKS_PER_S * 1e6,
        syscw: per(u0.syscw, u1.syscw),
        switches: per(u0.switches, u1.switches),
    }
}

/// Allocations, then costs at 64 tasks, of each of `names`: `n.0` sequential hits, `n.1`
/// spread over the tasks.
#[allow(clippy::too_many_arguments)]
fn measure<C: Contenders>(
    rt: &tokio::runtime::Runtime,
    backend: &str,
    names: &[&'static str],
    c: &C,
    n: (u64, u64),
    server_pid: Option<u32>,
    allocs: &mut Vec<Allocs>,
    costs: &mut Vec<Costs>,
) {
    for &name in names {
        let c = c.clone();
        allocs.push(allocs_per_hit(
            rt,
            format!("{backend}/{name}"),
            n.0,
            move |id| hit(&c, name, id),
        ));
    }
    for &name in names {
        costs.push(costs_at_64_tasks(
            rt,
            format!("{backend}/{name}"),
            n.1,
            server_pid,
            c,
            name,
        ));
    }
}

fn main() {
    let bench = common::bench_mode();
    let (n_seq, n_par) = if bench {
        (20_000, 300_000)
    } else {
        (200, 2_000)
    };
    let server = redis_server::RedisServer::start();
    REDIS_URL.set(server.url()).expect("set once");
    let pid = server.pid();
    let rt = common::runtime();
    let redis = rt.block_on(async {
        let c = RedisContenders::connect(&server.url()).await;
        c.prefill().await;
        c
    });
    let memory = MemoryContenders::new();
    rt.block_on(memory.prefill());

    // `HIT_COSTS_ONLY=raw_get,cachette_0_tags` measures only the contenders named, in both
    // stores; `redis/cachette_0_tags` names one in one store.
    let only: Option<Vec<String>> = std::env::var("HIT_COSTS_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let wanted = |store: &str, name: &str| {
        only.as_ref().is_none_or(|o| {
            o.iter()
                .any(|w| w == name || w.strip_prefix(store) == Some(name))
        })
    };
    let redis_names: Vec<&'static str> = REDIS_HITS
        .iter()
        .chain(REDIS_LAYERS.iter())
        .copied()
        .filter(|n| wanted("redis/", n))
        .collect();
    let memory_names: Vec<&'static str> = MEMORY_HITS
        .iter()
        .copied()
        .filter(|n| wanted("memory/", n))
        .collect();

    let mut allocs = Vec::new();
    let mut costs = Vec::new();
    // Redis (with redis-server's CPU) and the embedded store (10× the hits: they are short).
    measure(
        &rt,
        "redis",
        &redis_names,
        &redis,
        (n_seq, n_par),
        pid,
        &mut allocs,
        &mut costs,
    );
    measure(
        &rt,
        "memory",
        &memory_names,
        &memory,
        (n_seq, n_par * 10),
        None,
        &mut allocs,
        &mut costs,
    );

    println!("\n### Allocations per hit ({n_seq} sequential hits each, all threads counted)\n");
    println!("| contender | allocations/hit | bytes allocated/hit |");
    println!("|---|---:|---:|");
    for r in allocs {
        println!("| `{}` | {:.1} | {:.0} |", r.name, r.allocs, r.bytes);
    }
    println!(
        "\n### Costs per hit, 64 tasks on 2 workers ({n_par} hits for Redis, {} in memory)\n",
        n_par * 10
    );
    println!(
        "| contender | CPU/hit, this process | CPU/hit, redis-server | write syscalls/hit | context switches/hit | ops/s (wall clock, noisy) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in costs {
        println!(
            "| `{}` | {:.2} µs | {:.2} µs | {:.2} | {:.2} | {:.0} |",
            r.name, r.cpu_us, r.server_us, r.syscw, r.switches, r.ops_per_s
        );
    }
    drop(rt);
    drop(server);
}
