//! A stored entry with its envelope header parsed once, when it was stored: what a store that
//! keeps entries in this process (the memory store, a near cache) hands out, so that a hit
//! checks tag versions without parsing anything. It has room for one decoded copy of its
//! value when the call that stored it can use one (see
//! [`DecodedCopy`](crate::policy::DecodedCopy)): the first hit that decodes the value keeps
//! it, later hits of that type clone it.

use crate::codec::{self, Meta};
use crate::config::MAX_DURATION;
use crate::keys::KeyText;
use smallvec::SmallVec;
use std::any::Any;
use std::ops::Range;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A decoded value kept beside its bytes.
pub(crate) type Decoded = Arc<dyn Any + Send + Sync>;

/// One stored entry (shared by every hit: the store hands out clones of the `Arc`).
pub(crate) struct ParsedEntry {
    pub(crate) bytes: bytes::Bytes,
    /// The envelope's header, parsed when the entry was stored; `Err`: why the bytes are not
    /// a readable envelope (every lookup of it is then an undecodable entry, as in Redis).
    header: Result<Header, Box<str>>,
    pub(crate) expires_at: Instant,
    /// Room for a decoded copy of the value (counted in the entry's weight), for entries
    /// stored by a call that can use one.
    decoded: Option<OnceLock<Decoded>>,
    /// On a steady clock: the monotonic instant before which the entry is fresh and cannot be
    /// picked for an early refresh, for the XFetch β whose bits come first (see
    /// [`quiet_until`](Self::quiet_until)).
    quiet: OnceLock<(u64, Instant)>,
    /// The generation of its store's tag versions at which each of its tags was last found
    /// at the version it was stored with (0: never; see [`verified`](Self::verified)).
    verified: AtomicU64,
}

/// A parsed envelope header.
pub(crate) struct Header {
    /// Each tag with the version it was stored with.
    pub tags: EntryTags,
    pub meta: Meta,
    /// Where the serialized value lies in the entry's bytes.
    value: Range<usize>,
}

impl ParsedEntry {
    pub(crate) fn new(bytes: bytes::Bytes, ttl: Duration, keep_decoded: bool) -> ParsedEntry {
        let header = match codec::decode_header(&bytes) {
            Ok(env) => {
                let raw = env.value.get().as_bytes();
                // `raw` borrows from `bytes`: its offset locates the value.
                let start = (raw.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
                let value = start..start.saturating_add(raw.len());
                if bytes.get(value.clone()) == Some(raw) {
                    Ok(Header {
                        tags: EntryTags::new(env.tags.iter().map(|(t, v)| (&**t, &**v))),
                        meta: env.meta(),
                        value,
                    })
                } else {
                    Err(Box::from("the value is not part of the entry"))
                }
            }
            Err(e) => Err(e.to_string().into_boxed_str()),
        };
        let decoded = (keep_decoded && header.is_ok()).then(OnceLock::new);
        let ttl = ttl.min(MAX_DURATION);
        ParsedEntry {
            bytes,
            header,
            expires_at: crate::clock::instant_after(Instant::now(), ttl),
            decoded,
            quiet: OnceLock::new(),
            verified: AtomicU64::new(0),
        }
    }

    /// Whether this is a tombstone (what a delete leaves: a miss, not a decode failure).
    pub(crate) fn is_tombstone(&self) -> bool {
        self.header.is_err() && codec::is_tombstone(&self.bytes)
    }

    /// The parsed header, or why there is none.
    pub(crate) fn header(&self) -> Result<&Header, &str> {
        self.header.as_ref().map_err(|e| &**e)
    }

    /// The serialized value (empty when the entry has no readable header).
    pub(crate) fn value(&self) -> &[u8] {
        match &self.header {
            Ok(h) => self.bytes.get(h.value.clone()).unwrap_or_default(),
            Err(_) => &[],
        }
    }

    /// The instant before which a hit finds this entry fresh and not due for an early
    /// refresh with the XFetch β of bits `beta`, if a hit worked it out before (with that β).
    #[inline]
    pub(crate) fn quiet_until(&self, beta: u64) -> Option<Instant> {
        self.quiet
            .get()
            .and_then(|&(bits, until)| (bits == beta).then_some(until))
    }

    /// Keeps `until` as the instant of [`quiet_until`](Self::quiet_until) for `beta`, unless
    /// one was kept already.
    pub(crate) fn keep_quiet_until(&self, beta: u64, until: Instant) {
        let _ = self.quiet.set((beta, until));
    }

    /// The latest generation of its store's tag versions (a count the store moves on after
    /// any version changes or goes) at which every tag of the entry was found at the version
    /// it was stored with: while the store's generation is still that one, they all still
    /// are, and a lookup need not read them.
    #[inline]
    pub(crate) fn verified(&self) -> u64 {
        self.verified.load(Ordering::Acquire)
    }

    /// Records that every tag of the entry was found at its version at `generation` (read
    /// before the versions were); the latest such generation is kept.
    pub(crate) fn verify(&self, generation: u64) {
        self.verified.fetch_max(generation, Ordering::AcqRel);
    }

    /// The decoded copy of the value, if one was kept.
    pub(crate) fn decoded(&self) -> Option<&Decoded> {
        self.decoded.as_ref().and_then(OnceLock::get)
    }

    /// Keeps `make()` as the decoded copy when the entry has room for one and has none yet.
    pub(crate) fn keep_decoded(&self, make: impl FnOnce() -> Decoded) {
        if let Some(slot) = &self.decoded {
            let _ = slot.get_or_init(make);
        }
    }

    /// What the entry counts against the byte budget besides its key: its bytes, the
    /// bookkeeping, and, when it has room for a decoded copy, an estimate of that copy (the
    /// serialized size of the value again).
    pub(crate) fn weight(&self) -> usize {
        let decoded = match (&self.decoded, &self.header) {
            (Some(_), Ok(h)) => h.value.len().saturating_add(ENTRY_OVERHEAD),
            _ => 0,
        };
        self.bytes
            .len()
            .saturating_add(ENTRY_OVERHEAD)
            .saturating_add(decoded)
    }
}

/// An entry's tags, each with the version it was stored with: their text back to back in one
/// buffer, held in the entry itself when short (two short tags and their versions are), so
/// that a hit comparing them reads no allocation of its own.
pub(crate) struct EntryTags {
    text: KeyText,
    /// Where each tag's name, then its version, ends in `text`.
    ends: SmallVec<[(usize, usize); 2]>,
}

impl EntryTags {
    fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)> + Clone) -> EntryTags {
        let bytes = pairs.clone().into_iter().fold(0usize, |n, (t, v)| {
            n.saturating_add(t.len()).saturating_add(v.len())
        });
        let mut text = KeyText::with_capacity(bytes);
        let mut ends = SmallVec::new();
        for (tag, version) in pairs {
            text.push_str(tag);
            let name = text.as_str().len();
            text.push_str(version);
            ends.push((name, text.as_str().len()));
        }
        EntryTags { text, ends }
    }

    /// How many tags.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is none.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Whether the tags are `names`, in this order (compared as bytes: what a hit asks).
    #[inline]
    pub(crate) fn are<K: AsRef<str>>(&self, names: &[K]) -> bool {
        let text = self.text.as_str().as_bytes();
        self.ends.len() == names.len()
            && self
                .spans()
                .zip(names)
                .all(|((name, _), k)| text.get(name) == Some(k.as_ref().as_bytes()))
    }

    /// Each tag's version, in order, as bytes.
    #[inline]
    pub(crate) fn versions(&self) -> impl Iterator<Item = &[u8]> {
        let text = self.text.as_str().as_bytes();
        self.spans()
            .map(move |(_, version)| text.get(version).unwrap_or_default())
    }

    /// Each tag with its version, in order.
    #[inline]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        let text = self.text.as_str();
        self.spans().map(move |(name, version)| {
            (
                text.get(name).unwrap_or_default(),
                text.get(version).unwrap_or_default(),
            )
        })
    }

    /// Where each tag's name and its version lie in `text`, in order.
    #[inline]
    fn spans(&self) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + Clone + '_ {
        self.ends.iter().scan(0usize, |start, &(name, end)| {
            let spans = (*start..name, name..end);
            *start = end;
            Some(spans)
        })
    }
}

/// Bytes counted per entry besides its key and envelope: what an entry costs in the memory
/// store's map (its slot and index entry, the key's and the envelope's allocations, the parsed
/// header with its tags held inline, and the allocator's rounding) under churn, measured by
/// `tests/memory_entry_budget.rs`: a million small entries through a 64 MB store grew the
/// process by ~714 B per entry kept, ~110 B of it key and envelope (with 512 here, 79,387
/// entries counted at 50.3 MB grew it by 56.7 MB; the inline tags added ~96 B to the 620
/// measured before them).
const ENTRY_OVERHEAD: usize = 608;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(bytes: &[u8], keep_decoded: bool) -> ParsedEntry {
        ParsedEntry::new(
            bytes::Bytes::copy_from_slice(bytes),
            Duration::from_secs(60),
            keep_decoded,
        )
    }

    #[test]
    fn entry_tags_give_back_each_tag_and_version_in_order() {
        let long = "t".repeat(100);
        for pairs in [
            vec![],
            vec![("users", "1")],
            vec![("users", "12"), ("user:1", "345"), ("", ""), ("é", "v")],
            vec![("users", "1"), (long.as_str(), "2")],
        ] {
            let tags = EntryTags::new(pairs.iter().copied());
            assert_eq!(tags.len(), pairs.len());
            assert_eq!(tags.is_empty(), pairs.is_empty());
            assert_eq!(tags.iter().collect::<Vec<_>>(), pairs);
            let names: Vec<&str> = pairs.iter().map(|(t, _)| *t).collect();
            assert!(tags.are(&names));
            assert!(!tags.are(&names[..names.len().saturating_sub(1)]) || names.is_empty());
            let versions: Vec<&[u8]> = pairs.iter().map(|(_, v)| v.as_bytes()).collect();
            assert_eq!(tags.versions().collect::<Vec<_>>(), versions);
        }
    }

    #[test]
    fn the_header_is_parsed_once_when_stored() -> Result<(), String> {
        let bytes = br#"{"v":1,"tags":[["users","v7"]],"created_ms":5,"fresh_until_ms":9,"compute_us":3,"value":{"a":[1,2]}}"#;
        let e = entry(bytes, false);
        let h = e
            .header()
            .map_err(|err| format!("a readable envelope: {err}"))?;
        assert_eq!(h.meta.fresh_until_ms, 9);
        assert_eq!(h.meta.compute_us, 3);
        assert_eq!(h.tags.iter().collect::<Vec<_>>(), [("users", "v7")]);
        assert_eq!(e.value(), br#"{"a":[1,2]}"#);
        assert!(e.decoded().is_none());
        e.keep_decoded(|| Arc::new(1u8));
        assert!(e.decoded().is_none(), "no room for a copy");
        Ok(())
    }

    #[test]
    fn garbage_has_no_header_and_no_value() {
        for bytes in [&b"not json"[..], br#"{"v":2,"value":1}"#, b""] {
            let e = entry(bytes, true);
            assert!(e.header().is_err());
            assert!(e.value().is_empty());
            e.keep_decoded(|| Arc::new(1u8));
            assert!(e.decoded().is_none());
        }
    }

    #[test]
    fn room_for_a_decoded_copy_is_weighed_and_kept_once() {
        let bytes = br#"{"v":1,"value":"abcdefgh"}"#;
        let plain = entry(bytes, false);
        let roomy = entry(bytes, true);
        assert_eq!(roomy.weight(), plain.weight() + 10 + ENTRY_OVERHEAD);
        roomy.keep_decoded(|| Arc::new(String::from("abcdefgh")));
        roomy.keep_decoded(|| Arc::new(String::from("other")));
        let kept = roomy.decoded().and_then(|d| d.downcast_ref::<String>());
        assert_eq!(kept.map(String::as_str), Some("abcdefgh"));
    }
}
