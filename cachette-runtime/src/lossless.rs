//! Whether a value's JSON reads back as the value: what a fill checks before storing.
//!
//! JSON has one `null` for several values of serde's data model: `None`, `()`, a unit struct,
//! and (as `serde_json` writes them) `NaN` and the infinities. So `Some(f64::NAN)` and, in an
//! `Option<Option<T>>`, `Some(None)` are written as `null` and read back as `None`: a hit
//! would return another value than the computation did. Such a value is not stored.
//!
//! The check decodes the JSON back into the value's type and compares the two values by their
//! stable hash ([`stable_hash`](crate::keys::hash::stable_hash), the canonical encoding that
//! template-less keys use): `Some` is kept apart from `None` and `()`, map entries are sorted
//! (a `HashMap` serializes in no fixed order), NaNs are one value.
//!
//! It runs only when the JSON contains `null`: every collapse of the data model above ends in
//! a `null`, so a JSON text without one reads back as written. (Floats read back exactly too:
//! the runtime enables `serde_json`'s `float_roundtrip`.) The cost is then a substring search
//! of the encoded value, a few GB/s. What this does not catch: a type whose own
//! `Serialize`/`Deserialize` do not round-trip without a `null` (e.g. an untagged enum whose
//! variants overlap). A `HashSet` (serialized as a sequence, in no fixed order) holding a
//! `null` may be refused although it would read back equal: not stored, never wrong.

use crate::keys::hash::{HashError, stable_hash};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// What a value read back from `raw` must match: nothing when the JSON has no `null` (it
/// reads back as written), else the stable hash of `value`, the value `raw` encodes.
pub(crate) fn fingerprint<T: Serialize + ?Sized>(
    value: &T,
    raw: &RawValue,
) -> Option<Result<u128, HashError>> {
    raw.get().contains("null").then(|| stable_hash(value))
}

/// Whether `back`, read from JSON whose [`fingerprint`] is `given`, equals the value encoded.
pub(crate) fn matches<T: Serialize + ?Sized>(
    back: &T,
    given: Option<&Result<u128, HashError>>,
) -> bool {
    match given {
        None => true,
        Some(Ok(given)) => stable_hash(back).is_ok_and(|h| h == *given),
        Some(Err(_)) => false,
    }
}

/// Whether `raw`, the JSON of `value`, reads back as a value equal to it.
pub(crate) fn reads_back<T: Serialize + DeserializeOwned>(value: &T, raw: &RawValue) -> bool {
    let Some(given) = fingerprint(value, raw) else {
        return true;
    };
    serde_json::from_str::<T>(raw.get()).is_ok_and(|back| matches(&back, Some(&given)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn check<T: Serialize + DeserializeOwned>(v: &T) -> bool {
        match serde_json::value::to_raw_value(v) {
            Ok(raw) => reads_back(v, &raw),
            Err(_) => false,
        }
    }

    #[test]
    fn null_collapses_are_caught() {
        assert!(!check(&Some(f64::NAN)));
        assert!(!check(&Some(f64::INFINITY)));
        assert!(!check(&f64::NEG_INFINITY));
        assert!(!check(&Some(None::<u8>)));
        assert!(!check(&Some(())));
        assert!(!check(&vec![Some(Some(1)), Some(None)]));
        assert!(check(&None::<Option<u8>>));
        assert!(check(&Some(Some(1u8))));
        assert!(check(&()));
        assert!(check(&vec![None, Some(1.5f64)]));
        assert!(check(&-0.0f64));
    }

    #[test]
    fn map_order_does_not_matter() {
        let m: HashMap<i32, Option<u8>> = (0..64).map(|i| (i, (i % 2 == 0).then_some(1))).collect();
        assert!(check(&m));
    }
}
