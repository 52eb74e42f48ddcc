//! Two different values never escape to the same text, and no escaped value holds a
//! separator, a glob character, a hash-tag brace or a control character.
#![no_main]

use cachette_runtime::keys::{escape, glob_match};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (String, String)| {
    let (a, b) = data;
    let (ea, eb) = (escape(&a), escape(&b));
    if a != b {
        assert_ne!(ea, eb);
    }
    assert!(
        !ea.chars()
            .any(|c| matches!(c, ':' | '*' | '?' | '[' | ']' | '\\' | '{' | '}') || c.is_control())
    );
    let pattern = format!("k:{ea}:*");
    assert_eq!(
        glob_match(pattern.as_bytes(), format!("k:{eb}:x").as_bytes()),
        a == b
    );
});
