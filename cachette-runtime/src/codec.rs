//! The stored form of an entry: a small versioned JSON envelope around the serde value.
//!
//! ```text
//! {"v":1,"tags":[["users","5f0c…"],["user:42","9a1b…"]],"created_ms":1732190000000,"compute_ms":12,"value":{…}}
//! ```
//!
//! * `v`: the envelope format; an entry of another format is a miss (recomputed, overwritten).
//! * `tags`: each tag with the version its tag key held *before* the value's computation
//!   started. The entry is valid only while every tag key still holds that version.
//! * `created_ms`, `compute_ms`: when the entry was stored and how long its computation took.
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
struct EnvelopeOut<'a, T: ?Sized> {
    v: u32,
    tags: &'a [(String, String)],
    created_ms: u64,
    compute_ms: u64,
    value: &'a T,
}

/// The header of a stored entry, borrowed from its bytes; the value is decoded only after the
/// tags have been checked.
#[derive(Deserialize)]
pub(crate) struct Envelope<'a> {
    pub v: u32,
    #[serde(borrow, default)]
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    #[serde(default)]
    #[allow(dead_code)] // read by freshness logic (early refresh) in a later release
    pub created_ms: u64,
    #[serde(default)]
    #[allow(dead_code)]
    pub compute_ms: u64,
    #[serde(borrow)]
    pub value: &'a RawValue,
}

/// Serializes `value` with its tag versions into the envelope.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    tags: &[(String, String)],
    created_ms: u64,
    compute_ms: u64,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&EnvelopeOut {
        v: ENVELOPE_VERSION,
        tags,
        created_ms,
        compute_ms,
        value,
    })
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

/// Decodes the value of a checked envelope.
pub(crate) fn decode_value<T: DeserializeOwned>(
    env: &Envelope<'_>,
) -> Result<T, serde_json::Error> {
    serde_json::from_str(env.value.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_readable() {
        let tags = vec![("users".to_owned(), "v1".to_owned())];
        let bytes = encode(&vec![1, 2, 3], &tags, 5, 7).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":1,"tags":[["users","v1"]],"created_ms":5,"compute_ms":7,"value":[1,2,3]}"#
        );
        let env = decode_header(&bytes).unwrap();
        assert_eq!(env.tags[0].0, "users");
        assert_eq!(decode_value::<Vec<u32>>(&env).unwrap(), vec![1, 2, 3]);
        assert!(decode_value::<String>(&env).is_err());
    }

    #[test]
    fn rejects_garbage_and_other_versions() {
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
        let env = decode_header(br#"{"v":1,"value":1,"future":true}"#).unwrap();
        assert!(env.tags.is_empty());
    }
}
