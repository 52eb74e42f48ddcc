//! cachette: declarative caching for async Rust.
pub use cachette_runtime::*;
