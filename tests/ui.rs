//! Compile-time checks of the attributes and of the key, tag and pattern builders, with
//! trybuild: one misuse per file in `tests/ui/*/` (each `.stderr` is the message a user sees),
//! and every supported shape in `tests/ui/pass/`.
//! Snapshots are made with the pinned toolchain (rust-toolchain.toml); regenerate them with
//! `TRYBUILD=overwrite cargo test -p cachette --test ui` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/cached/*.rs");
    t.compile_fail("tests/ui/invalidates/*.rs");
    t.compile_fail("tests/ui/cache_put/*.rs");
    t.compile_fail("tests/ui/builders/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
