//! What a run exercises: the option combinations (scenarios), how writers invalidate, which
//! API readers call, and the size of a run (knobs).

use cachette::{EarlyRefresh, LockOptions, Options};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How a writer invalidates a record after writing it. `None` writes and publishes the fence
/// without invalidating: the canary, whose stale reads prove the checker can see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Tags,
    Key,
    Pattern,
    Set,
    None,
}

/// Number of [`Kind`]s (the length of per-kind counters).
pub const KINDS: usize = 5;

impl Kind {
    /// The four real invalidations.
    pub const REAL: [Kind; 4] = [Kind::Tags, Kind::Key, Kind::Pattern, Kind::Set];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Kind {
        [Kind::Tags, Kind::Key, Kind::Pattern, Kind::Set, Kind::None][i.min(KINDS - 1)]
    }

    pub fn name(self) -> &'static str {
        ["tags", "key", "pattern", "set", "none"][self.index()]
    }

    pub fn parse(s: &str) -> Option<Kind> {
        (0..KINDS).map(Kind::from_index).find(|k| k.name() == s)
    }
}

/// Which entry point a reader calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Api {
    /// `get_or_compute` (policy `Plain`).
    Compute,
    /// `get_or_compute` as `#[cached]` calls it for a `Clone` value: the memory store keeps a
    /// decoded copy, which hits clone (`__private::testing::get_or_compute_decoded`).
    Decoded,
    /// `get_or_try_compute` (policy `Fallible`).
    TryCompute,
    /// `cached_with(.., FallibleShared, ..)`: errors shared with followers.
    SharedErrors,
    /// `cached_with_spawn(.., Plain, ..)`: stale-while-revalidate in the background.
    Spawn,
}

/// One option combination under test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub ttl_ms: u64,
    pub stale_ms: u64,
    pub stale_if_error_ms: u64,
    pub single_flight: bool,
    pub early_beta: Option<f64>,
    pub lock_wait_ms: Option<u64>,
    pub jitter: Option<f64>,
    /// Percentage of computations that fail (fallible APIs only).
    pub fail_percent: u64,
    /// Readers cycle through these.
    pub apis: Vec<Api>,
    /// Writers pick one of these per write.
    pub kinds: Vec<Kind>,
}

impl Scenario {
    fn base(name: &str, ttl_ms: u64) -> Scenario {
        Scenario {
            name: name.to_owned(),
            ttl_ms,
            stale_ms: 0,
            stale_if_error_ms: 0,
            single_flight: true,
            early_beta: None,
            lock_wait_ms: None,
            jitter: None,
            fail_percent: 0,
            apis: vec![Api::Compute, Api::Decoded],
            kinds: Kind::REAL.to_vec(),
        }
    }

    /// Every scenario of the checker, in table order.
    pub fn all() -> Vec<Scenario> {
        vec![
            Scenario::base("plain", 100),
            Scenario {
                single_flight: false,
                ..Scenario::base("no_single_flight", 100)
            },
            Scenario {
                stale_ms: 300,
                apis: vec![Api::Compute, Api::Decoded, Api::Spawn],
                ..Scenario::base("stale", 30)
            },
            Scenario {
                stale_if_error_ms: 300,
                fail_percent: 20,
                apis: vec![Api::TryCompute, Api::SharedErrors],
                ..Scenario::base("stale_if_error", 5)
            },
            Scenario {
                early_beta: Some(5.0),
                // `cached_with_spawn` runs early refreshes in a background task too
                // (`#[cached(background_refresh)]`).
                apis: vec![Api::Compute, Api::Decoded, Api::Spawn],
                ..Scenario::base("early_refresh", 100)
            },
            Scenario {
                lock_wait_ms: Some(300),
                ..Scenario::base("lock", 100)
            },
            Scenario {
                jitter: Some(0.9),
                ..Scenario::base("jitter", 60)
            },
        ]
    }

    /// Writers publish fences without invalidating: every scenario's checks must see stale
    /// reads here, or the checker is blind.
    pub fn canary() -> Scenario {
        Scenario {
            kinds: vec![Kind::None],
            ..Scenario::base("canary", 100)
        }
    }

    /// The options of every call (and of write-through `set`) on record `id`.
    pub fn options(&self, id: u32) -> Options {
        let mut o = Options::new()
            .name(self.name.clone())
            .tags([tag(id)])
            .ttl(Duration::from_millis(self.ttl_ms))
            .single_flight(self.single_flight)
            .stale(Duration::from_millis(self.stale_ms))
            .stale_if_error(Duration::from_millis(self.stale_if_error_ms));
        if let Some(beta) = self.early_beta {
            o = o.early_refresh(EarlyRefresh::Beta(beta));
        }
        if let Some(wait) = self.lock_wait_ms {
            o = o.lock(LockOptions {
                ttl: Duration::from_secs(2),
                wait: Duration::from_millis(wait),
            });
        }
        if let Some(j) = self.jitter {
            o = o.jitter(j);
        }
        o
    }
}

/// The cache key of record `id`.
pub fn key(id: u32) -> String {
    format!("rec:{id}:v")
}

/// A glob covering [`key`] of record `id` and nothing else.
pub fn pattern(id: u32) -> String {
    format!("rec:{id}:*")
}

/// The tag of record `id`.
pub fn tag(id: u32) -> String {
    format!("rec:{id}")
}

/// The size of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Knobs {
    /// How long each scenario runs.
    pub millis: u64,
    pub records: u32,
    /// Reader tasks per process.
    pub readers: u32,
    pub writers: u32,
    /// Reader processes (Redis runs).
    pub children: u32,
    /// A computation waits up to half of this before and half after reading the database.
    pub compute_max_ms: u64,
    /// A reader waits up to this between calls.
    pub think_max_ms: u64,
    /// A writer waits up to this between writes.
    pub writer_pause_max_ms: u64,
    /// The near cache of the Redis runs' caches.
    #[serde(default)]
    pub near: Near,
    /// Where the Redis runs' caches are (the checker's database is always on the run's
    /// `redis-server`).
    #[serde(default)]
    pub deployment: Deployment,
    /// Invalidations wait for one replica, at most this long (`wait_for_replicas`).
    #[serde(default)]
    pub wait_replicas_ms: Option<u64>,
}

/// Where the caches of a Redis run store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Deployment {
    /// The run's `redis-server`.
    #[default]
    Server,
    /// A Redis Cluster, by its seed URLs.
    Cluster(Vec<String>),
    /// The primary the sentinels at these URLs name `master`.
    Sentinel {
        master: String,
        sentinels: Vec<String>,
    },
}

/// Whether the caches of a Redis run have a near cache, and in which mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Near {
    #[default]
    Off,
    Strict,
    /// `near_max_staleness` of this many milliseconds: a stale read is allowed when every
    /// invalidation it missed returned less than this long before the read began.
    Bounded(u64),
}

impl Near {
    /// The store column of the table.
    pub fn store(self) -> &'static str {
        match self {
            Near::Off => "redis",
            Near::Strict => "near",
            Near::Bounded(_) => "near-b",
        }
    }

    /// The staleness bound, in microseconds, of bounded mode.
    pub fn bound_us(self) -> Option<u64> {
        match self {
            Near::Bounded(ms) => Some(ms * 1000),
            _ => None,
        }
    }
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            millis: 2_500,
            records: 4,
            readers: 32,
            writers: 2,
            children: 2,
            compute_max_ms: 30,
            think_max_ms: 4,
            writer_pause_max_ms: 20,
            near: Near::Off,
            deployment: Deployment::Server,
            wait_replicas_ms: None,
        }
    }
}
