//! The stored form of an entry: a small versioned JSON envelope around the serde value.
//!
//! ```text
//! {"v":1,"tags":[["users","5f0c…"],["user:42","9a1b…"]],"created_ms":1732190000000,"fresh_until_ms":1732190600000,"compute_us":12000,"value":{…}}
//! ```
//!
//! * `v`: the envelope format; an entry of another format is a miss (recomputed, overwritten).
//! * `tags`: each tag with the version its tag key held *before* the value's computation
//!   started. The entry is valid only while every tag key still holds that version.
//! * `created_ms`: when the entry was stored (cachette's clock, ms since the Unix epoch).
//! * `fresh_until_ms`: the end of its TTL. Past it the entry may still be stored (the backend
//!   keeps it for the stale-while-revalidate and stale-if-error windows) but is not fresh;
//!   `0` means "fresh until the backend expires it".
//! * `compute_us`: how long the computation took, for probabilistic early refresh.
//! * `value`: the value as `serde_json` writes it, readable from `redis-cli` and by services
//!   in other languages.
//!
//! Unknown fields are ignored, so a later release can add fields without a format bump.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The envelope format written by this release.
pub const ENVELOPE_VERSION: u32 = 1;

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    v: u32,
    tags: &'a [(String, String)],
    created_ms: u64,
    fresh_until_ms: u64,
    compute_us: u64,
    value: &'a RawValue,
}

/// Entry metadata written beside the value.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Meta {
    pub created_ms: u64,
    pub fresh_until_ms: u64,
    pub compute_us: u64,
}

/// A string of the envelope borrowed from the stored bytes, or owned when JSON escapes in it
/// had to be undone. (serde's own `Cow<str>` is always owned inside a `Vec` or a tuple: two
/// allocations per tag and hit.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }

        d.deserialize_str(TextVisitor)
    }
}

/// The header of a stored entry, borrowed from its bytes, its value left undecoded (the memory
/// store's parse at store time, the admin API, and telling decode failures apart).
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<'a> {
    pub v: u32,
    #[serde(borrow, default)]
    pub tags: Vec<(Text<'a>, Text<'a>)>,
    #[serde(default)]
    pub created_ms: u64,
    #[serde(default)]
    pub fresh_until_ms: u64,
    #[serde(default)]
    pub compute_us: u64,
    #[serde(borrow)]
    pub value: &'a RawValue,
}

/// Serializes a value on its own (what single-flight followers decode, and what goes into
/// the envelope).
pub(crate) fn encode_value<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Box<RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(value)
}

/// Wraps a serialized value with its tag versions and metadata.
pub(crate) fn encode_raw(
    value: &RawValue,
    tags: &[(String, String)],
    meta: Meta,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&EnvelopeOut {
        v: ENVELOPE_VERSION,
        tags,
        created_ms: meta.created_ms,
        fresh_until_ms: meta.fresh_until_ms,
        compute_us: meta.compute_us,
        value,
    })
}

/// Serializes `value` with its tag versions into the envelope.
/// A fresh, unique tag version (also a tombstone's random part): 128 random bits as 32 hex
/// digits. Unique across processes and restarts, so a re-created tag key can never revive an
/// entry made under an old one.
pub(crate) fn new_version() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    tags: &[(String, String)],
    meta: Meta,
) -> Result<Vec<u8>, serde_json::Error> {
    encode_raw(&encode_value(value)?, tags, meta)
}

/// What a tombstone starts with: the bytes a delete leaves under a key (see
/// [`tombstone`]). Not JSON, so no envelope is ever mistaken for one.
pub(crate) const TOMBSTONE_PREFIX: &[u8] = b"#tombstone:";

/// A fresh tombstone: the prefix and 128 random bits, unique, so that a fill that saw one
/// tombstone never mistakes another for it.
pub(crate) fn tombstone() -> Vec<u8> {
    let mut t = TOMBSTONE_PREFIX.to_vec();
    t.extend_from_slice(new_version().as_bytes());
    t
}

/// Whether stored bytes are a tombstone (a deleted key: a miss, not a decode failure).
pub(crate) fn is_tombstone(bytes: &[u8]) -> bool {
    bytes.starts_with(TOMBSTONE_PREFIX)
}

/// Why stored bytes could not be used.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Not an envelope at all (planted, corrupted, truncated).
    Malformed(serde_json::Error),
    /// An envelope of a format this release does not read.
    Version(u32),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(e) => write!(f, "not a cachette envelope: {e}"),
            DecodeError::Version(v) => write!(f, "envelope format {v} is not {ENVELOPE_VERSION}"),
        }
    }
}

/// Parses the envelope header without decoding the value.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let env: Envelope<'_> = serde_json::from_slice(bytes).map_err(DecodeError::Malformed)?;
    if env.v != ENVELOPE_VERSION {
        return Err(DecodeError::Version(env.v));
    }
    Ok(env)
}

impl Envelope<'_> {
    pub(crate) fn meta(&self) -> Meta {
        Meta {
            created_ms: self.created_ms,
            fresh_until_ms: self.fresh_until_ms,
            compute_us: self.compute_us,
        }
    }
}

/// A whole envelope, its value decoded in the same pass as its header (the Redis hit path:
/// one parse instead of a header scan and then a value parse).
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub(crate) struct Whole<'a, T> {
    v: u32,
    #[serde(borrow, default)]
    pub tags: Vec<(Text<'a>, Text<'a>)>,
    #[serde(default)]
    created_ms: u64,
    #[serde(default)]
    fresh_until_ms: u64,
    #[serde(default)]
    compute_us: u64,
    pub value: T,
}

impl<T> Whole<'_, T> {
    pub(crate) fn meta(&self) -> Meta {
        Meta {
            created_ms: self.created_ms,
            fresh_until_ms: self.fresh_until_ms,
            compute_us: self.compute_us,
        }
    }
}

/// Why stored bytes did not decode as an envelope of `T`.
#[derive(Debug)]
pub(crate) enum WholeError<'a> {
    /// Not an envelope of this format ([`decode_header`]'s error).
    Envelope(DecodeError),
    /// An envelope (its header, parsed) whose value is not a `T`.
    Value(Envelope<'a>, serde_json::Error),
}

/// Decodes an envelope and its value in one pass. Only when that fails are the bytes parsed
/// again, header first, to tell a foreign or corrupt entry from a value of another type.
pub(crate) fn decode_whole<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<Whole<'_, T>, WholeError<'_>> {
    match serde_json::from_slice::<Whole<'_, T>>(bytes) {
        Ok(whole) if whole.v == ENVELOPE_VERSION => Ok(whole),
        Ok(whole) => Err(WholeError::Envelope(DecodeError::Version(whole.v))),
        Err(one_pass) => match decode_header(bytes) {
            Err(e) => Err(WholeError::Envelope(e)),
            Ok(env) => {
                let e = decode_value::<T>(&env).err().unwrap_or(one_pass);
                Err(WholeError::Value(env, e))
            }
        },
    }
}

/// Decodes the value of a checked envelope.
pub(crate) fn decode_value<T: DeserializeOwned>(
    env: &Envelope<'_>,
) -> Result<T, serde_json::Error> {
    serde_json::from_str(env.value.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn round_trip_and_readable() -> TestResult {
        let tags = vec![("users".to_owned(), "v1".to_owned())];
        let meta = Meta {
            created_ms: 5,
            fresh_until_ms: 9,
            compute_us: 7,
        };
        let bytes = encode(&vec![1, 2, 3], &tags, meta)?;
        assert_eq!(
            std::str::from_utf8(&bytes)?,
            r#"{"v":1,"tags":[["users","v1"]],"created_ms":5,"fresh_until_ms":9,"compute_us":7,"value":[1,2,3]}"#
        );
        let env = decode_header(&bytes).map_err(|e| e.to_string())?;
        assert_eq!(&*env.tags[0].0, "users");
        assert_eq!(decode_value::<Vec<u32>>(&env)?, vec![1, 2, 3]);
        assert!(decode_value::<String>(&env).is_err());
        Ok(())
    }

    #[test]
    fn rejects_garbage_and_other_versions() -> TestResult {
        assert!(matches!(
            decode_header(b"\xff\x00"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_header(b"{\"v\":1}"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_header(br#"{"v":2,"value":1}"#),
            Err(DecodeError::Version(2))
        ));
        let env =
            decode_header(br#"{"v":1,"value":1,"future":true}"#).map_err(|e| e.to_string())?;
        assert!(env.tags.is_empty());
        Ok(())
    }

    #[test]
    fn one_pass_decode_tells_its_failures_apart() -> TestResult {
        let tags = vec![("users".to_owned(), "v1".to_owned())];
        let bytes = encode(&vec![1, 2, 3], &tags, Meta::default())?;
        let whole = decode_whole::<Vec<u32>>(&bytes).map_err(|e| format!("{e:?}"))?;
        assert_eq!(whole.value, vec![1, 2, 3]);
        assert_eq!(whole.tags.len(), 1);
        assert_eq!((&*whole.tags[0].0, &*whole.tags[0].1), ("users", "v1"));
        assert!(matches!(whole.tags[0].0, Text(Cow::Borrowed(_))));
        // A tag with a JSON escape in it is decoded (owned), not refused.
        let escaped = encode(
            &1u8,
            &[("a\"b".to_owned(), "v".to_owned())],
            Meta::default(),
        )?;
        let whole = decode_whole::<u8>(&escaped).map_err(|e| format!("{e:?}"))?;
        assert_eq!(&*whole.tags[0].0, "a\"b");
        assert!(matches!(whole.tags[0].0, Text(Cow::Owned(_))));
        assert!(matches!(
            decode_whole::<String>(&bytes),
            Err(WholeError::Value(..))
        ));
        assert!(matches!(
            decode_whole::<u32>(br#"{"v":2,"value":1}"#),
            Err(WholeError::Envelope(DecodeError::Version(2)))
        ));
        assert!(matches!(
            decode_whole::<String>(br#"{"v":2,"value":1}"#),
            Err(WholeError::Envelope(DecodeError::Version(2)))
        ));
        assert!(matches!(
            decode_whole::<u32>(b"{\"v\":1,"),
            Err(WholeError::Envelope(DecodeError::Malformed(_)))
        ));
        assert!(matches!(
            decode_whole::<u32>(br#"{"v":1,"value":7,"future":[1]}"#),
            Ok(Whole { value: 7, .. })
        ));
        Ok(())
    }
}
