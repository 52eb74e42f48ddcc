//! A writer task: writes a record (new version), invalidates it in the cache, and once the
//! invalidation returned `Ok`, publishes the version as fenced. Each writer owns the records
//! `id % writers == writer`, so that two write-through `set`s of one record never race each
//! other (that race is the application's, not the cache's).

use super::Ctx;
use super::rng;
use super::scenario::{Kind, key, pattern, tag};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

pub async fn write_loop(ctx: Arc<Ctx>, writer: u32, deadline: Instant) {
    let writers = ctx.knobs.writers.max(1);
    let owned: Vec<u32> = (0..ctx.knobs.records)
        .filter(|id| id % writers == writer)
        .collect();
    let kinds = &ctx.scenario.kinds;
    if owned.is_empty() || kinds.is_empty() {
        return;
    }
    while Instant::now() < deadline {
        let id = owned[rng::below(owned.len() as u64) as usize];
        let kind = kinds[rng::below(kinds.len() as u64) as usize];
        let version = ctx.db.write(id).await;
        ctx.tally.writes.fetch_add(1, Ordering::Relaxed);
        if invalidate(&ctx, id, version, kind).await {
            let returned = super::db::now_us();
            ctx.db.publish(id, version, kind, returned).await;
            ctx.tally.invalidations[kind.index()].fetch_add(1, Ordering::Relaxed);
        } else {
            // No fence: the promise covers invalidations that returned `Ok`.
            ctx.tally
                .invalidation_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        rng::pause(ctx.knobs.writer_pause_max_ms).await;
    }
}

/// Invalidates record `id` after `version` was written; whether it returned `Ok`.
async fn invalidate(ctx: &Ctx, id: u32, version: u64, kind: Kind) -> bool {
    let cache = &ctx.cache;
    match kind {
        Kind::Tags => cache.invalidate_tags([tag(id)]).await.is_ok(),
        Kind::Key => cache.delete(&key(id)).await.is_ok(),
        Kind::Pattern => cache.invalidate_pattern(&pattern(id)).await.is_ok(),
        Kind::Set => cache
            .set(&key(id), &version, &ctx.opts[id as usize])
            .await
            .is_ok(),
        Kind::None => true,
    }
}
