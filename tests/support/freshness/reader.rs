//! A reader task: reads a record's fence, then calls the cache, whose computation reads the
//! database; the read is stale iff the version returned is below the fence read first.

use super::Ctx;
use super::report::Example;
use super::rng;
use super::scenario::{Api, key};
use cachette::__private::testing;
use cachette::observe::capture_outcome;
use cachette::{FallibleShared, Plain};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Reads random records until `deadline`; reader `index` starts its API rotation there.
pub async fn read_loop(ctx: Arc<Ctx>, index: u32, deadline: Instant) {
    let apis = &ctx.scenario.apis;
    let mut turn = index as usize;
    while Instant::now() < deadline {
        let id = rng::below(u64::from(ctx.knobs.records)) as u32;
        let api = apis[turn % apis.len()];
        turn += 1;
        read_once(&ctx, id, api).await;
        rng::pause(ctx.knobs.think_max_ms).await;
    }
}

async fn read_once(ctx: &Arc<Ctx>, id: u32, api: Api) {
    // The fence is read before the call starts: every version below it was invalidated by
    // an invalidation that returned before this point.
    let fenced = ctx.db.fenced(id).await;
    let began = super::db::now_us();
    let (got, outcome) = capture_outcome(call(ctx, id, api)).await;
    ctx.tally
        .call_took(super::db::now_us().saturating_sub(began));
    ctx.tally.reads.fetch_add(1, Ordering::Relaxed);
    let Some(returned) = got else {
        ctx.tally.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if returned < fenced {
        // Bounded near cache: a read may miss invalidations that returned less than the
        // bound before it began.
        if let Some(bound) = ctx.knobs.near.bound_us()
            && let Some(first) = ctx.db.first_returned_us(id, returned, fenced).await
            && began.saturating_sub(first) < bound
        {
            ctx.tally.late_read(began.saturating_sub(first));
            return;
        }
        let kind = ctx.db.fence_kind(id, fenced).await;
        let outcome = outcome.map_or_else(|| "none".to_owned(), |o| format!("{o:?}"));
        ctx.tally.stale_read(Example {
            record: id,
            fenced,
            returned,
            kind,
            api,
            outcome: outcome.to_lowercase(),
            process: ctx.process,
        });
    }
}

/// One cached call; `None` when it returned an error.
async fn call(ctx: &Arc<Ctx>, id: u32, api: Api) -> Option<u64> {
    let (cache, key, opts) = (&ctx.cache, key(id), &ctx.opts[id as usize]);
    match api {
        Api::Compute => Some(cache.get_or_compute(&key, opts, || compute(ctx, id)).await),
        Api::Decoded => {
            Some(testing::get_or_compute_decoded(cache, &key, opts, || compute(ctx, id)).await)
        }
        Api::TryCompute => cache
            .get_or_try_compute(&key, opts, || try_compute(ctx, id))
            .await
            .ok(),
        Api::SharedErrors => cache
            .cached_with(&key, opts, FallibleShared, || try_compute(ctx, id))
            .await
            .ok(),
        Api::Spawn => {
            let owned = Arc::clone(ctx);
            let compute = move || async move { compute(&owned, id).await };
            Some(cache.cached_with_spawn(&key, opts, Plain, compute).await)
        }
    }
}

/// The computation: waits, reads the database, waits again, so that computations overlap
/// writes and invalidations.
async fn compute(ctx: &Ctx, id: u32) -> u64 {
    ctx.tally.computations.fetch_add(1, Ordering::Relaxed);
    let half = ctx.knobs.compute_max_ms / 2;
    rng::pause(half).await;
    let version = ctx.db.read(id).await;
    rng::pause(half).await;
    version
}

/// [`compute`] that fails `fail_percent` of the time (after reading).
async fn try_compute(ctx: &Ctx, id: u32) -> Result<u64, String> {
    let version = compute(ctx, id).await;
    if rng::below(100) < ctx.scenario.fail_percent {
        Err(format!("injected failure (record {id})"))
    } else {
        Ok(version)
    }
}
