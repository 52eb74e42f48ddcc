//! Running the tasks of one process: readers and writers until a deadline, and the memory
//! store run, where both live in this process.

use super::Ctx;
use super::db::Db;
use super::report::Report;
use super::scenario::{Knobs, Scenario};
use super::{reader, writer};
use cachette::Cache;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Which tasks a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Readers,
    Writers,
    Both,
}

/// Runs this process's tasks for `knobs.millis` and returns its report (with its cache's
/// counters). A panicking task (the checker's database failed) panics here.
pub async fn run_tasks(ctx: Arc<Ctx>, role: Role) -> Report {
    let deadline = Instant::now() + Duration::from_millis(ctx.knobs.millis);
    let mut tasks = JoinSet::new();
    if role != Role::Writers {
        for i in 0..ctx.knobs.readers {
            tasks.spawn(reader::read_loop(Arc::clone(&ctx), i, deadline));
        }
    }
    if role != Role::Readers {
        for w in 0..ctx.knobs.writers {
            tasks.spawn(writer::write_loop(Arc::clone(&ctx), w, deadline));
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    ctx.report()
}

/// One scenario on the embedded memory store: readers and writers as tasks of this process.
pub async fn run_memory(scenario: &Scenario, knobs: &Knobs) -> Report {
    let cache = Cache::builder()
        .memory(64 << 20)
        .namespace(format!("fr-{}", scenario.name))
        .build()
        .expect("a valid memory cache configuration");
    let ctx = Ctx::new(cache, Db::memory(knobs.records), scenario, knobs, 0);
    run_tasks(Arc::new(ctx), Role::Both).await
}
