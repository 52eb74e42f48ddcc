//! A lookup and what it found: the entry and its tag versions read and checked for validity
//! (tags, epoch, kept invalidations); `freshness.rs` then classifies a valid entry.

use super::*;

impl Cache {
    /// One round trip: the entry and the versions of the call's tags; then the entry is
    /// classified by validity and freshness. A store that answers without waiting is asked
    /// without an `.await`.
    pub(super) async fn lookup<S: DeserializeOwned>(
        &self,
        full_key: &str,
        tag_keys: &[String],
        opts: &Options,
        decoded: Option<DecodedCopy<S>>,
    ) -> Lookup<S> {
        if let Some(found) = self
            .store()
            .lookup_now(full_key, tag_keys, std::time::Instant::now())
        {
            return self.looked_now(full_key, opts, decoded, found);
        }
        self.ensure_pending_worker();
        let found = match self.store().lookup(full_key, tag_keys).await {
            Ok(f) => f,
            Err(e) => {
                self.log_error(&self.recorder().log_backend, &opts.name, "fetch", &e);
                return Lookup::failed();
            }
        };
        let (state, now_ms) =
            if self
                .pending()
                .blocks(full_key, &opts.tags, self.store_tag_prefix())
            {
                (Freshness::Missing { fallback: None }, 0)
            } else {
                self.classify(full_key, &found, opts, decoded).await
            };
        Lookup {
            state,
            seen: Some(Seen::found(found.entry, found.patterns)),
            fetched: Some(found.versions),
            now_ms,
        }
    }

    /// [`lookup`](Self::lookup) of what a store answered without waiting
    /// ([`Store::lookup_now`]): no `.await`.
    pub(super) fn looked_now<S: DeserializeOwned>(
        &self,
        full_key: &str,
        opts: &Options,
        decoded: Option<DecodedCopy<S>>,
        found: Found,
    ) -> Lookup<S> {
        let (state, now_ms, _) = self.classify_now(full_key, &opts.tags, opts, decoded, &found);
        Lookup::found(state, now_ms, found)
    }

    /// Checks a stored entry against the current tag versions and decodes its value.
    ///
    /// `versions.get(i)` is the current version of `tags[i]`. The entry is valid only if it
    /// carries every tag in `tags` and each of its tags still has the version it was stored
    /// with; tags the entry carries beyond `tags` are read from the store (without waiting
    /// when it can answer so; otherwise one more round trip).
    pub(crate) async fn check_stored<T: DeserializeOwned>(
        &self,
        entry: &Stored,
        tags: &[String],
        versions: &Versions,
        decoded: Option<DecodedCopy<T>>,
    ) -> Result<Check<T>> {
        match self.check_entry(entry, tags, versions, decoded) {
            Checked::Done(check) => Ok(check),
            Checked::Extra { extra, valid } => {
                let keys: Vec<String> = extra.iter().map(|(t, _)| self.store_tag_key(t)).collect();
                let still = match self.store().versions_now(&keys) {
                    Some(now) => extra_still_valid(&extra, (0..keys.len()).map(|i| now.get(i))),
                    None => {
                        let current = self.store().versions(&keys).await?;
                        extra_still_valid(&extra, current.iter().map(Option::as_deref))
                    }
                };
                Ok(if still { valid } else { Check::Invalid })
            }
        }
    }

    /// [`check_stored`](Self::check_stored) without an `.await`: the versions of tags beyond
    /// the call's come from [`Store::versions_now`]; a store that cannot answer them now
    /// makes such an entry invalid (a miss, never an unchecked hit).
    pub(super) fn check_now<T: DeserializeOwned, G: AsRef<str>>(
        &self,
        entry: &Stored,
        tags: &[G],
        versions: &Versions,
        decoded: Option<DecodedCopy<T>>,
    ) -> Result<Check<T>> {
        Ok(match self.check_entry(entry, tags, versions, decoded) {
            Checked::Done(check) => check,
            Checked::Extra { extra, valid } => {
                let keys: Vec<String> = extra.iter().map(|(t, _)| self.store_tag_key(t)).collect();
                match self.store().versions_now(&keys) {
                    Some(now) if extra_still_valid(&extra, (0..keys.len()).map(|i| now.get(i))) => {
                        valid
                    }
                    _ => Check::Invalid,
                }
            }
        })
    }

    /// The part of a check that needs no store: the envelope, the call's tags, the base
    /// keys' versions, kept invalidations, and the value.
    fn check_entry<'a, T: DeserializeOwned, G: AsRef<str>>(
        &self,
        entry: &'a Stored,
        tags: &[G],
        versions: &Versions,
        decoded: Option<DecodedCopy<T>>,
    ) -> Checked<'a, T> {
        match entry {
            Stored::Parsed(entry) => self.check_parsed(entry, tags, versions, decoded),
            Stored::Bytes(bytes) => self.check_bytes(bytes, tags, versions),
        }
    }

    /// [`check_entry`](Self::check_entry) of envelope bytes: the header and the value are
    /// decoded in one pass.
    fn check_bytes<'a, T: DeserializeOwned, G: AsRef<str>>(
        &self,
        bytes: &'a [u8],
        tags: &[G],
        versions: &Versions,
    ) -> Checked<'a, T> {
        let env = match codec::decode_whole::<T>(bytes) {
            Ok(env) => env,
            // A deleted key: a miss, not a decode failure.
            Err(WholeError::Envelope(_)) if codec::is_tombstone(bytes) => {
                return Checked::Done(Check::Invalid);
            }
            Err(WholeError::Envelope(e)) => {
                return Checked::Done(Check::Undecodable(e.to_string()));
            }
            Err(WholeError::Value(header, e)) => {
                // Rare: an entry whose value is of another type is still only `Invalid` (not
                // a decode failure) when its tags say it was invalidated anyway.
                let invalid = self.check_tags(&header.tags[..], tags, versions).is_none();
                return Checked::Done(if invalid {
                    Check::Invalid
                } else {
                    Check::Undecodable(wrong_type(&e))
                });
            }
        };
        let meta = env.meta();
        // Owned: the envelope's tags may be unescaped copies, which do not outlive it.
        let extra: Vec<(Cow<'a, str>, Cow<'a, str>)> =
            match self.check_tags(&env.tags[..], tags, versions) {
                None => return Checked::Done(Check::Invalid),
                // The common case, a hit carrying no tag beyond the call's: no collect.
                Some(extra) if extra.is_empty() => Vec::new(),
                Some(extra) => extra
                    .into_iter()
                    .map(|(t, v)| (Cow::Owned(t.to_owned()), Cow::Owned(v.to_owned())))
                    .collect(),
            };
        let valid = Check::Valid(env.value, meta);
        if extra.is_empty() {
            Checked::Done(valid)
        } else {
            Checked::Extra { extra, valid }
        }
    }

    /// [`check_entry`](Self::check_entry) of a parsed entry: no parsing. With `decoded`, the
    /// entry's decoded copy is cloned instead of decoding the bytes, and the first value
    /// decoded is kept as that copy. The call's tag versions are checked first, before the
    /// value is touched.
    fn check_parsed<'a, T: DeserializeOwned, G: AsRef<str>>(
        &self,
        entry: &'a ParsedEntry,
        tags: &[G],
        versions: &Versions,
        decoded: Option<DecodedCopy<T>>,
    ) -> Checked<'a, T> {
        let header = match entry.header() {
            Ok(h) => h,
            Err(_) if entry.is_tombstone() => return Checked::Done(Check::Invalid),
            Err(why) => return Checked::Done(Check::Undecodable(why.to_owned())),
        };
        let Some(extra) = self.check_tags(&header.tags, tags, versions) else {
            return Checked::Done(Check::Invalid);
        };
        let valid = 'value: {
            if let Some(copy) = decoded
                && let Some(v) = entry.decoded().and_then(|kept| copy.take(kept.as_ref()))
            {
                break 'value Check::Valid(v, header.meta);
            }
            match serde_json::from_slice::<T>(entry.value()) {
                Ok(v) => {
                    if let Some(copy) = decoded {
                        entry.keep_decoded(|| copy.keep(&v));
                    }
                    Check::Valid(v, header.meta)
                }
                Err(e) => Check::Undecodable(wrong_type(&e)),
            }
        };
        // The common case, a hit carrying no tag beyond the call's: no collect, and nothing
        // to drop but an empty vector of borrows.
        if extra.is_empty() {
            Checked::Done(valid)
        } else {
            Checked::Extra {
                extra: extra
                    .into_iter()
                    .map(|(t, v)| (Cow::Borrowed(t), Cow::Borrowed(v)))
                    .collect(),
                valid,
            }
        }
    }

    /// Whether an entry carrying `entry_tags` (each with the version it was stored with) is
    /// valid for a call asking for `tags`, whose current versions are `versions`: it must
    /// carry every tag asked for, and each of its tags must still have its stored version
    /// (for tags beyond the call's, the caller fetches the current versions). An entry
    /// carrying a tag whose invalidation is kept (`pending.rs`) is not valid.
    ///
    /// `None`: invalid. `Some(extra)`: valid if each tag of `extra`, one the entry carries
    /// beyond the call's, still has the version it was stored with (none: valid).
    pub(super) fn check_tags<'a, E: TagPairs + ?Sized, G: AsRef<str>>(
        &self,
        entry_tags: &'a E,
        tags: &[G],
        versions: &Versions,
    ) -> Option<Vec<(&'a str, &'a str)>> {
        // The common case: the entry carries the call's tags in the call's order (it was
        // stored by this call site), then at most the epoch: each tag is compared once.
        let in_order = entry_tags.count() >= tags.len()
            && entry_tags
                .pairs()
                .zip(tags)
                .all(|((et, _), t)| et == t.as_ref())
            && entry_tags
                .pairs()
                .skip(tags.len())
                .all(|(t, _)| t == EPOCH_TAG);
        if !in_order
            && !tags
                .iter()
                .all(|t| entry_tags.pairs().any(|(et, _)| et == t.as_ref()))
        {
            return None;
        }
        // On Redis the lookup also read the epoch, after the tags: the entry must have been
        // stored under it (a revived entry of an older server life never is).
        if versions.len() > tags.len() {
            let epoch = versions.get(tags.len());
            let stored = entry_tags
                .pairs()
                .find(|(t, _)| *t == EPOCH_TAG)
                .map(|(_, v)| v);
            if epoch.is_none() || stored != epoch {
                return None;
            }
        }
        if self.kept_invalidated(entry_tags) {
            return None;
        }
        if in_order {
            let current = entry_tags
                .pairs()
                .take(tags.len())
                .enumerate()
                .all(|(i, (_, stored))| versions.is(i, stored));
            return current.then(Vec::new);
        }
        let mut extra = Vec::new();
        for (tag, stored) in entry_tags.pairs() {
            if tag == EPOCH_TAG {
                continue;
            }
            match tags.iter().position(|t| t.as_ref() == tag) {
                Some(i) => {
                    if !versions.is(i, stored) {
                        return None;
                    }
                }
                None => extra.push((tag, stored)),
            }
        }
        Some(extra)
    }

    /// Whether an entry carrying `entry_tags` carries the call's `tags` and no other, each
    /// at its current version in `found`, none of them kept invalidated: [`check_tags`]
    /// finding no extra tag, or, for an entry the store verified ([`Found::verified`]: its
    /// tags are the tag keys asked for, which are the tags on a store that verifies), the
    /// kept invalidations alone.
    ///
    /// [`check_tags`]: Self::check_tags
    #[inline(always)]
    pub(super) fn carries_only_current<E: TagPairs + ?Sized, G: AsRef<str>>(
        &self,
        entry_tags: &E,
        tags: &[G],
        found: &Found,
    ) -> bool {
        if found.verified && entry_tags.count() == tags.len() && found.versions.len() == tags.len()
        {
            return !self.kept_invalidated(entry_tags);
        }
        self.check_tags(entry_tags, tags, &found.versions)
            .is_some_and(|extra| extra.is_empty())
    }

    /// Whether an invalidation of one of `entry_tags` is kept (`pending.rs`): such an entry
    /// is not valid.
    #[inline]
    fn kept_invalidated<E: TagPairs + ?Sized>(&self, entry_tags: &E) -> bool {
        self.pending().any()
            && entry_tags
                .pairs()
                .any(|(t, _)| self.pending().blocks_tag(t, self.store_tag_prefix()))
    }

    pub(crate) fn decode_failure(&self, name: &Cow<'static, str>, full_key: &str, why: &str) {
        self.recorder().record(Event::DecodeFailure, name);
        if let Some(held) = self.recorder().log_decode.allow() {
            tracing::warn!(
                cache = %name, error = why, suppressed = held,
                "stored entry does not decode; recomputing and overwriting it"
            );
        }
        tracing::debug!(cache = %name, key = %full_key, "undecodable entry");
    }
}

/// What the part of a check that needs no store found.
pub(super) enum Checked<'a, T> {
    /// Decided.
    Done(Check<T>),
    /// `valid` if each of these tags beyond the call's (with the version the entry stored)
    /// still has that version; otherwise invalid.
    Extra {
        extra: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        valid: Check<T>,
    },
}

/// Whether each extra tag (with its stored version) still has that version; `current` gives
/// their current versions, in order.
pub(super) fn extra_still_valid<V: AsRef<str>>(
    extra: &[(Cow<'_, str>, Cow<'_, str>)],
    current: impl IntoIterator<Item = Option<V>>,
) -> bool {
    let mut current = current.into_iter();
    extra.iter().all(|(_, stored)| {
        current
            .next()
            .flatten()
            .is_some_and(|cur| cur.as_ref() == stored.as_ref())
    })
}

pub(super) fn wrong_type(e: &serde_json::Error) -> String {
    format!("value does not decode as the expected type: {e}")
}

/// An entry's tags with the versions it was stored with, as a check reads them: a parsed
/// entry's ([`EntryTags`]) or a decoded envelope's pairs.
pub(crate) trait TagPairs {
    /// How many tags.
    fn count(&self) -> usize;
    /// Each tag with its version, in order.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)>;
}

impl<S: AsRef<str>> TagPairs for [(S, S)] {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }

    #[inline]
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().map(|(t, v)| (t.as_ref(), v.as_ref()))
    }
}

impl TagPairs for EntryTags {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }

    #[inline]
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter()
    }
}
