//! Property tests on hostile input: escaped values never collide and never widen a
//! pattern; envelopes of arbitrary bytes never panic; the argument encoding is prefix-free.
//! (The same properties run under libFuzzer in `fuzz/`.)

// A test binary, not the library: a failed property may panic here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cachette_runtime::__private::fuzz;
use cachette_runtime::keys::hash::ArgsHasher;
use cachette_runtime::keys::{KeyBuilder, escape, glob_match};
use proptest::prelude::*;

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        // Separators, glob and hash-tag characters, escapes, controls, Unicode.
        proptest::collection::vec(
            prop_oneof![
                Just(':'),
                Just('*'),
                Just('?'),
                Just('['),
                Just(']'),
                Just('\\'),
                Just('{'),
                Just('}'),
                Just('%'),
                Just(' '),
                Just('\n'),
                Just('\0'),
                Just('\u{85}'),
                Just('\u{2028}'),
                Just('é'),
                Just('世'),
                any::<char>(),
            ],
            0..24
        )
        .prop_map(|cs| cs.into_iter().collect()),
        any::<String>(),
        "[a-z0-9:%*]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn escaping_is_injective(a in hostile(), b in hostile()) {
        prop_assume!(a != b);
        prop_assert_ne!(escape(&a), escape(&b));
    }

    #[test]
    fn escaped_values_hold_no_separator_glob_brace_or_control(v in hostile()) {
        let e = escape(&v);
        prop_assert!(!e.chars().any(|c| matches!(c, ':' | '*' | '?' | '[' | ']' | '\\' | '{' | '}' | ' ') || c.is_control()), "{e:?}");
    }

    #[test]
    fn templates_with_different_values_never_collide(a in hostile(), b in hostile(), c in hostile(), d in hostile()) {
        prop_assume!((a.as_str(), b.as_str()) != (c.as_str(), d.as_str()));
        let key = |x: &str, y: &str| {
            let mut k = KeyBuilder::new();
            k.lit("user:").arg(x).lit(":").arg(y);
            k.finish()
        };
        prop_assert_ne!(key(&a, &b), key(&c, &d));
    }

    #[test]
    fn a_value_never_widens_a_pattern(v in hostile(), w in hostile(), tail in "[a-z]{0,6}") {
        let mut pattern = KeyBuilder::new();
        pattern.lit("guild:").arg(&v).lit(":*");
        let mut key = KeyBuilder::new();
        key.lit("guild:").arg(&w).lit(":").lit(&tail);
        let matched = glob_match(pattern.finish().as_bytes(), key.finish().as_bytes());
        prop_assert_eq!(matched, v == w);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_envelope_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz::decode_envelope(&bytes);
    }

    #[test]
    fn json_lookalikes_never_panic_the_envelope_decoder(s in r#"\{"v":[0-9]{1,3},("tags":\[(\["[a-z]*","[a-z0-9]*"\],?)*\],)?("fresh_until_ms":-?[0-9]{1,20},)?"value":.{0,20}\}"#) {
        fuzz::decode_envelope(s.as_bytes());
    }

    #[test]
    fn argument_encoding_is_prefix_free(a in any::<String>(), b in any::<String>(), c in any::<String>(), d in any::<String>()) {
        prop_assume!((&a, &b) != (&c, &d));
        let h = |x: &String, y: &String| {
            let mut h = ArgsHasher::new();
            h.arg(x).unwrap().arg(y).unwrap();
            h.finish()
        };
        prop_assert_ne!(h(&a, &b), h(&c, &d));
    }
}
