//! Freshness: where a valid entry leaves a call (fresh, stale, within stale-if-error, or
//! missing) by cachette's clock; early refresh (XFetch); and, on a steady clock, the quiet
//! deadline a parsed entry keeps so that later hits compare instants instead of converting
//! the time.

use super::*;

impl Cache {
    /// Whether a fresh hit should be recomputed now (XFetch); `now` is cachette's clock.
    pub(super) fn refresh_early(&self, opts: &Options, meta: Meta, now: u64) -> bool {
        let Some(beta) = self.xfetch_beta(opts) else {
            return false;
        };
        if meta.fresh_until_ms == 0 || meta.compute_us == 0 {
            return false;
        }
        let left_ms = meta.fresh_until_ms.saturating_sub(now) as f64;
        let delta_ms = meta.compute_us as f64 / 1000.0;
        let exponent = -left_ms / (beta * delta_ms);
        // Below -746, `exp` is 0 and no number in [0, 1) is under it: no draw (most hits).
        exponent >= -746.0 && self.config().random.next_f64() < exponent.exp()
    }

    /// The XFetch β of a call (`None`: no early refresh).
    fn xfetch_beta(&self, opts: &Options) -> Option<f64> {
        let beta = match opts.early_refresh {
            EarlyRefresh::Default => self.config().early_refresh_beta,
            EarlyRefresh::Off => None,
            EarlyRefresh::Beta(b) => Some(b),
        };
        beta.filter(|b| b.is_finite() && *b > 0.0)
    }

    /// What [`looked_now`](Self::looked_now) classifies, leaving `found` to the caller (a
    /// fresh hit drops it without building a [`Lookup`]); and whether the entry is quiet:
    /// fresh and certainly not due for an early refresh.
    ///
    /// On a steady clock ([`Clock::steady`](crate::clock::Clock::steady)), the first hit
    /// that finds a parsed entry fresh keeps the instant until which it stays fresh and
    /// XFetch cannot pick it (`exp(-left / (β·δ))` is 0 once `left > 746·β·δ`); later hits
    /// before that instant are judged by comparing instants, without converting the time.
    /// Validity (tags, kept invalidations) is checked on every hit as before.
    // Inlined into the first look, where nearly every memory hit ends: the call and the
    // return of its tuple cost a hit ~90 instructions (callgrind).
    #[inline(always)]
    pub(super) fn classify_now<S: DeserializeOwned, T: AsRef<str>>(
        &self,
        full_key: &str,
        tags: &[T],
        opts: &Options,
        decoded: Option<DecodedCopy<S>>,
        found: &Found,
    ) -> (Freshness<S>, u64, bool) {
        self.ensure_pending_worker();
        let Some(entry) = &found.entry else {
            return (Freshness::Missing { fallback: None }, 0, false);
        };
        if self
            .pending()
            .blocks(full_key, tags, self.store_tag_prefix())
        {
            return (Freshness::Missing { fallback: None }, 0, false);
        }
        // On a steady clock, a parsed entry read at a known instant may be quiet.
        let steady = match (entry, found.read_at) {
            (Stored::Parsed(parsed), Some(at)) if self.config().clock.steady() => {
                let beta = self.xfetch_beta(opts);
                Some((parsed, at, beta, beta.map_or(u64::MAX, f64::to_bits)))
            }
            _ => None,
        };
        // A quiet entry carrying the call's tags and no other (each still at its version) and
        // a decoded copy of this type: the copy, cloned, without decoding anything or
        // classifying the entry step by step (what most memory hits are).
        if let Some((parsed, at, _, bits)) = steady
            && is_quiet(parsed, at, bits)
            && let Some(copy) = decoded
            && let Ok(header) = parsed.header()
            && self.carries_only_current(&header.tags, tags, found)
            && let Some(value) = parsed.decoded().and_then(|kept| copy.take(kept.as_ref()))
        {
            return (Freshness::Fresh(value, header.meta), 0, true);
        }
        let checked = self.check_now(entry, tags, &found.versions, decoded);
        match (steady, checked) {
            (Some((parsed, at, beta, bits)), Ok(Check::Valid(value, meta))) => {
                if is_quiet(parsed, at, bits) {
                    return (Freshness::Fresh(value, meta), 0, true);
                }
                let (state, now) =
                    self.state_of(full_key, opts, Ok(Check::Valid(value, meta)), Some(at));
                if matches!(state, Freshness::Fresh(..))
                    && let Some(until) = quiet_deadline(at, now, meta, beta)
                {
                    parsed.keep_quiet_until(bits, until);
                }
                (state, now, false)
            }
            (_, checked) => {
                let (state, now) = self.state_of(full_key, opts, checked, found.read_at);
                (state, now, false)
            }
        }
    }

    /// Classifies a found entry by validity and freshness; with the clock's time.
    pub(super) async fn classify<S: DeserializeOwned>(
        &self,
        full_key: &str,
        found: &Found,
        opts: &Options,
        decoded: Option<DecodedCopy<S>>,
    ) -> (Freshness<S>, u64) {
        let Some(entry) = &found.entry else {
            return (Freshness::Missing { fallback: None }, 0);
        };
        let checked = self
            .check_stored::<S>(entry, &opts.tags, &found.versions, decoded)
            .await;
        self.state_of(full_key, opts, checked, found.read_at)
    }

    /// Where a checked entry leaves the call, by freshness; with the clock's time (at
    /// `read_at`, the instant the store read the entry, when it knows it).
    pub(super) fn state_of<S>(
        &self,
        full_key: &str,
        opts: &Options,
        checked: Result<Check<S>>,
        read_at: Option<std::time::Instant>,
    ) -> (Freshness<S>, u64) {
        match checked {
            Ok(Check::Valid(v, meta)) => {
                let clock = &self.config().clock;
                let now = match read_at {
                    Some(at) => clock.now_ms_at(at),
                    None => clock.now_ms(),
                };
                let fresh_until = meta.fresh_until_ms;
                let state = if fresh_until == 0 || now < fresh_until {
                    Freshness::Fresh(v, meta)
                } else if now < fresh_until.saturating_add(millis(opts.stale)) {
                    Freshness::Stale(v)
                } else if now < fresh_until.saturating_add(millis(opts.stale_if_error)) {
                    Freshness::Missing { fallback: Some(v) }
                } else {
                    Freshness::Missing { fallback: None }
                };
                (state, now)
            }
            Ok(Check::Invalid) => (Freshness::Missing { fallback: None }, 0),
            Ok(Check::Undecodable(why)) => {
                self.decode_failure(&opts.name, full_key, &why);
                (Freshness::Missing { fallback: None }, 0)
            }
            Err(e) => {
                self.log_error(&self.recorder().log_backend, &opts.name, "fetch_tags", &e);
                (Freshness::Missing { fallback: None }, 0)
            }
        }
    }
}

/// Whether `entry`, read at `at`, is quiet for the XFetch β of bits `beta`.
#[inline]
fn is_quiet(entry: &ParsedEntry, at: Instant, beta: u64) -> bool {
    entry.quiet_until(beta).is_some_and(|until| at < until)
}

/// The instant until which an entry found fresh at `at` (cachette's clock then: `now`) stays
/// fresh and XFetch with `beta` cannot pick it; `None` when there is no such time to count on.
fn quiet_deadline(at: Instant, now: u64, meta: Meta, beta: Option<f64>) -> Option<Instant> {
    if meta.fresh_until_ms == 0 {
        // Fresh for good, and never refreshed early.
        return at.checked_add(MAX_DURATION);
    }
    let margin_ms = match beta {
        Some(beta) if meta.compute_us > 0 => {
            let margin = (746.0 * beta * (meta.compute_us as f64 / 1000.0)).ceil();
            if !(0.0..1e15).contains(&margin) {
                return None;
            }
            (margin as u64).saturating_add(1)
        }
        _ => 0,
    };
    let left = meta
        .fresh_until_ms
        .checked_sub(now)?
        .checked_sub(margin_ms)?;
    at.checked_add(Duration::from_millis(left))
}
