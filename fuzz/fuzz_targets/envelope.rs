//! Stored bytes from anyone (a foreign writer, a corrupted value) never panic the decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cachette_runtime::__private::fuzz::decode_envelope(data);
});
