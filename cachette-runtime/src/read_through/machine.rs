//! The state machine of one call. [`State`] names every point a call can be at; each
//! transition is one arm of the `match` in [`Call::run`], which loops until a state decides
//! the call's [`Step`]:
//!
//! ```text
//! Look ──> Looked ─┬─ fresh ─────────────> hit, or (XFetch) Refresh { early }
//!   ^              ├─ stale ─────────────> Refresh, or served (someone refreshes already)
//!   |              └─ missing ──> Missing ─┬─> Lead ─┬─> hit (its second look found one)
//!   |                                      |         ├─> LockedFill (fill lock)
//!   |                                      |         └─> Fill
//!   |                                      ├─> Follow ─┬─> the leader's value, shared
//!   └──────── refused or abandoned ────────────────────┤
//!                                          |           └─> Fill (unshareable)
//!                                          └─> Fill (no single-flight, or too many looks)
//! ```

use super::*;

/// Where a call is.
pub(super) enum State<S> {
    /// To look the key up (again).
    Look,
    /// A lookup found this, after the shard's mark was read.
    Looked(Mark, Lookup<S>),
    /// Nothing usable was found: the call joins the key's flight.
    Missing {
        mark: Mark,
        read: Read,
        fallback: Option<S>,
    },
    /// This call leads the key's flight in this process.
    Lead {
        mark: Mark,
        guard: LeaderGuard,
        read: Read,
        fallback: Option<S>,
    },
    /// Another call of this process computes the key: wait for its value.
    Follow {
        mark: Mark,
        rx: tokio::sync::watch::Receiver<Outcome>,
        read: Read,
        fallback: Option<S>,
    },
    /// Compute under the fill lock (one process computes, the others poll).
    LockedFill {
        guard: LeaderGuard,
        lock: LockOptions,
        fallback: Option<S>,
    },
    /// Compute and store, inline; `guard`: leading the flight.
    Fill {
        guard: Option<LeaderGuard>,
        read: Read,
        fallback: Option<S>,
    },
    /// Serve `served` and refresh it: stale-while-revalidate, or an early refresh (XFetch)
    /// of a fresh hit.
    Refresh {
        served: S,
        early: bool,
        guard: Option<LeaderGuard>,
        read: Read,
    },
}

/// What a leader's second look found.
enum Relook<S> {
    /// A fresh value, already shared with the flight's followers.
    Found(S),
    /// Nothing fresh: the flight, still led, what the look read, and its stale-if-error
    /// fallback.
    Missing(LeaderGuard, Read, Option<S>),
}

impl<R, P: ReturnPolicy<R>> Call<'_, R, P> {
    /// Runs the call from `first` (what its first look found, if it looked) until a state
    /// decides its step.
    pub(super) async fn run<F: Compute<R>>(
        &self,
        first: Option<(Mark, Lookup<P::Stored>)>,
        mut refresh_first: Option<bool>,
        compute: F,
    ) -> Step<R, P::Stored, F> {
        let (cache, opts, key) = (self.cache, self.opts, &self.full_key);
        let stats = &cache.recorder();
        let flights = &cache.flights();
        let mut counted_miss = false;
        let (mut attempt, mut state) = match first {
            Some((mark, lookup)) => (1u32, State::Looked(mark, lookup)),
            None => (0, State::Look),
        };
        loop {
            state = match state {
                State::Look => {
                    attempt = attempt.saturating_add(1);
                    let mark = flights.mark(key);
                    let lookup = cache.lookup(key, &self.tag_keys, opts, self.decoded).await;
                    State::Looked(mark, lookup)
                }
                State::Looked(mark, lookup) => {
                    let read = (lookup.fetched, lookup.seen);
                    match lookup.state {
                        Freshness::Fresh(value, meta) => {
                            stats.record_hit(&opts.name, self.started);
                            tracing::debug!(cache = %opts.name, key = %key, "cache hit");
                            let refresh = match refresh_first.take() {
                                Some(decided) => decided,
                                None => cache.refresh_early(opts, meta, lookup.now_ms),
                            };
                            match refresh.then(|| flights.join(key)) {
                                Some(Role::Leader(guard)) => State::Refresh {
                                    served: value,
                                    early: true,
                                    guard: Some(guard),
                                    read,
                                },
                                _ => {
                                    report(CallOutcome::Hit);
                                    return Step::Done(self.policy.restore(value));
                                }
                            }
                        }
                        Freshness::Stale(value) => {
                            stats.record(Event::StaleServed, &opts.name);
                            tracing::debug!(cache = %opts.name, key = %key, "stale hit; revalidating");
                            let guard = if opts.single_flight {
                                match flights.join(key) {
                                    Role::Leader(g) => Some(g),
                                    // Someone is refreshing already. The stale value was
                                    // checked against this call's own lookup: it is this
                                    // call's to serve.
                                    Role::Follower(_) => {
                                        report(CallOutcome::Stale);
                                        return Step::Done(self.policy.restore(value));
                                    }
                                }
                            } else {
                                None
                            };
                            State::Refresh {
                                served: value,
                                early: false,
                                guard,
                                read,
                            }
                        }
                        Freshness::Missing { fallback } => {
                            if !counted_miss {
                                counted_miss = true;
                                stats.record(Event::Miss, &opts.name);
                                report(CallOutcome::Miss);
                                tracing::debug!(cache = %opts.name, key = %key, "cache miss");
                            }
                            State::Missing {
                                mark,
                                read,
                                fallback,
                            }
                        }
                    }
                }
                State::Missing {
                    mark,
                    read,
                    fallback,
                } => {
                    if !opts.single_flight || attempt >= MAX_ATTEMPTS {
                        State::Fill {
                            guard: None,
                            read,
                            fallback,
                        }
                    } else {
                        match flights.join(key) {
                            Role::Leader(guard) => State::Lead {
                                mark,
                                guard,
                                read,
                                fallback,
                            },
                            Role::Follower(rx) => {
                                stats.record(Event::Coalesced, &opts.name);
                                State::Follow {
                                    mark,
                                    rx,
                                    read,
                                    fallback,
                                }
                            }
                        }
                    }
                }
                State::Lead {
                    mark,
                    guard,
                    read,
                    fallback,
                } => {
                    // A flight of this shard ended after the lookup began: its value may be
                    // stored now. Look again, still leading (callers arriving meanwhile wait
                    // for this flight; nothing is handed over).
                    let (guard, read, fallback) = if flights.ended_since(key, mark) {
                        match self.relook(guard).await {
                            Relook::Found(v) => {
                                stats.record_hit(&opts.name, self.started);
                                return Step::Done(self.policy.restore(v));
                            }
                            // Its own fallback, never the first lookup's: a fallback is
                            // shared under the basis of the read that found it.
                            Relook::Missing(guard, read, fallback) => (guard, read, fallback),
                        }
                    } else {
                        (guard, read, fallback)
                    };
                    match opts.lock {
                        Some(lock) => State::LockedFill {
                            guard,
                            lock,
                            fallback,
                        },
                        None => State::Fill {
                            guard: Some(guard),
                            read,
                            fallback,
                        },
                    }
                }
                State::Follow {
                    mark,
                    rx,
                    read,
                    fallback,
                } => {
                    let view = View {
                        mark,
                        versions: read.0.as_ref(),
                        seen: read.1.as_ref(),
                    };
                    match flight::wait(rx).await {
                        Outcome::Value(_, basis) | Outcome::Shared(_, basis)
                            if !basis.serves(&view) =>
                        {
                            stats.record(Event::ShareRefused, &opts.name);
                            State::Look
                        }
                        Outcome::Value(bytes, _) => {
                            match serde_json::from_slice::<P::Stored>(&bytes) {
                                Ok(v) => {
                                    report(CallOutcome::Coalesced);
                                    return Step::Done(self.policy.restore(v));
                                }
                                Err(_) => State::Fill {
                                    guard: None,
                                    read,
                                    fallback,
                                },
                            }
                        }
                        Outcome::Shared(shared, _) => {
                            match self.policy.restore_error(shared.as_ref()) {
                                Some(r) => {
                                    report(CallOutcome::Coalesced);
                                    return Step::Done(r);
                                }
                                None => State::Fill {
                                    guard: None,
                                    read,
                                    fallback,
                                },
                            }
                        }
                        // The leader's future was dropped: elect a new leader.
                        Outcome::Abandoned => State::Look,
                        // Each follower runs its own computation.
                        Outcome::Unshareable | Outcome::Pending => State::Fill {
                            guard: None,
                            read,
                            fallback,
                        },
                    }
                }
                State::LockedFill {
                    guard,
                    lock,
                    fallback,
                } => {
                    return Step::Done(self.locked_fill(lock, guard, compute, fallback).await);
                }
                State::Fill {
                    guard,
                    read,
                    fallback,
                } => {
                    let fill = self.prepare_fill(read, guard, compute).await;
                    let r = cache.fill(fill, self.policy, opts, fallback, None).await;
                    return Step::Done(r);
                }
                State::Refresh {
                    served,
                    early,
                    guard,
                    read,
                } => {
                    if early {
                        stats.record(Event::EarlyRefresh, &opts.name);
                    }
                    let fill = self.prepare_fill(read, guard, compute).await;
                    return if early {
                        Step::Refresh {
                            fresh: served,
                            fill,
                        }
                    } else {
                        Step::Revalidate {
                            stale: served,
                            fill,
                        }
                    };
                }
            };
        }
    }

    /// A leader's second look, taken when a flight of its shard ended after its first lookup
    /// began: a fresh value found is shared with the flight's followers (with the basis of
    /// this read) and returned; otherwise the leader goes on to compute with what it read.
    async fn relook(&self, guard: LeaderGuard) -> Relook<P::Stored> {
        let started = guard.tick();
        let again = self
            .cache
            .lookup(&self.full_key, &self.tag_keys, self.opts, self.decoded)
            .await;
        let fallback = match again.state {
            Freshness::Fresh(v, _) => {
                let basis = Basis {
                    started,
                    versions: again
                        .fetched
                        .as_ref()
                        .and_then(|f| basis_versions(f, self.tag_keys.len())),
                    seen: again.seen,
                };
                share_found(guard, &v, basis);
                report(CallOutcome::Hit);
                return Relook::Found(v);
            }
            Freshness::Stale(v) => Some(v),
            Freshness::Missing { fallback } => fallback,
        };
        Relook::Missing(guard, (again.fetched, again.seen), fallback)
    }

    /// Reads (or creates) the tag versions a computation starting now is stored with.
    pub(super) async fn prepare_fill<F>(
        &self,
        (fetched, seen): Read,
        guard: Option<LeaderGuard>,
        compute: F,
    ) -> Fill<F> {
        let looked_at = Instant::now();
        let versions = self
            .cache
            .fill_versions(
                &self.opts.tags,
                &self.tag_keys,
                fetched.map(Versions::into_owned),
                self.ttl,
                &self.opts.name,
            )
            .await;
        Fill {
            full_key: self.full_key.clone(),
            versions,
            seen,
            looked_at,
            ttl: self.ttl,
            compute,
            guard,
            keep_decoded: self.keep_decoded,
        }
    }
}
