//! Reading the results: the per-scenario table, the stale reads' breakdown and examples, and
//! the checks that a run actually raced (a run that never raced proves nothing).

use super::report::Report;
use super::scenario::{Kind, Scenario};
use std::fmt::Write;

/// One line of the table: a scenario run on a store.
#[derive(Debug, Clone)]
pub struct Row {
    pub store: String,
    pub scenario: Scenario,
    pub report: Report,
}

/// Least reads a scenario must make.
pub const MIN_READS: u64 = 500;
/// Least invalidations of each kind the scenario uses.
pub const MIN_INVALIDATIONS_PER_KIND: u64 = 5;
/// Least computations (misses and refreshes must happen).
pub const MIN_COMPUTATIONS: u64 = 20;
/// Least cache hits.
pub const MIN_HITS: u64 = 10;

/// What a run of `scenario` on `store` failed to exercise (empty: it raced as intended).
pub fn not_raced(row: &Row) -> Vec<String> {
    let (s, r, c) = (&row.scenario, &row.report, &row.report.cache);
    let mut missing = Vec::new();
    let mut need = |ok: bool, what: String| {
        if !ok {
            missing.push(format!("{}/{}: {what}", row.store, s.name));
        }
    };
    need(
        r.reads >= MIN_READS,
        format!("reads {} < {MIN_READS}", r.reads),
    );
    for k in &s.kinds {
        let n = r.invalidations[k.index()];
        need(
            n >= MIN_INVALIDATIONS_PER_KIND,
            format!(
                "{} invalidations {n} < {MIN_INVALIDATIONS_PER_KIND}",
                k.name()
            ),
        );
    }
    need(
        r.computations >= MIN_COMPUTATIONS,
        format!("computations {} < {MIN_COMPUTATIONS}", r.computations),
    );
    need(c.hits >= MIN_HITS, format!("hits {} < {MIN_HITS}", c.hits));
    if row.store.starts_with("near") {
        need(
            c.near_hits >= MIN_HITS,
            format!("near hits {} < {MIN_HITS}", c.near_hits),
        );
    }
    if s.single_flight {
        need(c.coalesced > 0, "no call coalesced (single-flight)".into());
    }
    if s.stale_ms > 0 {
        need(c.stale_served > 0, "no stale value served".into());
    }
    if s.stale_if_error_ms > 0 {
        need(r.errors > 0, "no computation error returned".into());
        need(c.stale_if_error > 0, "no stale-if-error fallback".into());
    }
    if s.early_beta.is_some() {
        need(c.early_refreshes > 0, "no early refresh".into());
    }
    if s.lock_wait_ms.is_some() && row.store != "memory" {
        need(c.lock_waits > 0, "no fill-lock wait".into());
    }
    missing
}

/// The table's columns and their widths (the first two left-aligned).
const COLUMNS: [(&str, usize); 19] = [
    ("store", 6),
    ("scenario", 16),
    ("procs", 5),
    ("reads", 7),
    ("STALE", 6),
    ("errors", 6),
    ("comps", 6),
    ("writes", 6),
    ("inv tag/key/pat/set", 19),
    ("ierr", 4),
    ("hits", 7),
    ("misses", 6),
    ("coal", 6),
    ("swr", 5),
    ("sie", 5),
    ("early", 5),
    ("lockw", 5),
    ("berr", 4),
    ("near", 6),
];

fn line(cells: &[String]) -> String {
    let padded = cells
        .iter()
        .zip(COLUMNS)
        .enumerate()
        .map(|(i, (c, (_, w)))| {
            if i < 2 {
                format!("{c:<w$}")
            } else {
                format!("{c:>w$}")
            }
        });
    padded.collect::<Vec<_>>().join(" ")
}

fn cells(row: &Row) -> Vec<String> {
    let (r, c) = (&row.report, &row.report.cache);
    let inv = &r.invalidations;
    let inv = if row.scenario.kinds == [Kind::None] {
        format!("(none {})", inv[Kind::None.index()])
    } else {
        format!("{}/{}/{}/{}", inv[0], inv[1], inv[2], inv[3])
    };
    let numbers = [
        r.processes.into(),
        r.reads,
        r.stale,
        r.errors,
        r.computations,
        r.writes,
    ];
    let more = [
        r.invalidation_errors,
        c.hits,
        c.misses,
        c.coalesced,
        c.stale_served,
        c.stale_if_error,
        c.early_refreshes,
        c.lock_waits,
        c.backend_errors,
        c.near_hits,
    ];
    let names = [row.store.clone(), row.scenario.name.clone()];
    let numbers = numbers.iter().map(u64::to_string);
    let more = more.iter().map(u64::to_string);
    names
        .into_iter()
        .chain(numbers)
        .chain([inv])
        .chain(more)
        .collect()
}

/// The table of every row, the stale reads' breakdown and a few examples.
pub fn render(rows: &[Row]) -> String {
    let header: Vec<String> = COLUMNS.iter().map(|(h, _)| (*h).to_owned()).collect();
    let mut out = line(&header) + "\n";
    for row in rows {
        out += &(line(&cells(row)) + "\n");
    }
    for row in rows
        .iter()
        .filter(|r| r.store.starts_with("cluster") || r.store.starts_with("sentinel"))
    {
        let _ = writeln!(
            out,
            "{}/{}: the longest call took {:.1} ms; {} invalidations failed",
            row.store,
            row.scenario.name,
            row.report.max_call_us as f64 / 1000.0,
            row.report.invalidation_errors
        );
    }
    for row in rows.iter().filter(|r| r.report.late > 0) {
        let r = &row.report;
        let _ = writeln!(
            out,
            "late {}/{}: {} of {} reads missed only invalidations that returned within the bound (at most {:.1} ms before the read began)",
            row.store,
            row.scenario.name,
            r.late,
            r.reads,
            r.max_late_us as f64 / 1000.0
        );
    }
    for row in rows.iter().filter(|r| r.report.stale > 0) {
        let r = &row.report;
        let by: Vec<String> = r.stale_by.iter().map(|(k, n)| format!("{k}={n}")).collect();
        let _ = writeln!(
            out,
            "stale {}/{}: {} of {} reads ({:.3}%); by fence kind/outcome: {}",
            row.store,
            row.scenario.name,
            r.stale,
            r.reads,
            100.0 * r.stale as f64 / r.reads.max(1) as f64,
            by.join(" ")
        );
        for e in r.examples.iter().take(3) {
            let _ = writeln!(
                out,
                "  e.g. record {} fenced {} returned {} (fence by {}, {:?} call, outcome {}, process {})",
                e.record,
                e.fenced,
                e.returned,
                e.kind.map_or("?", Kind::name),
                e.api,
                e.outcome,
                e.process
            );
        }
    }
    out
}
