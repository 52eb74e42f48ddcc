//! Acting on the entry a call of a `#[cached]` function reads and writes, without restating
//! its key template: the call is made (not awaited) and handed over.
//!
//! * [`key_of`]: the key body (without the namespace prefix) of the call's entry.
//! * [`evict`]: deletes the call's entry.
//! * [`refresh`]: runs the call, recomputing and storing its entry without a lookup.
//! * [`put`]: stores a value in the call's entry, as the call stores it (its key, tags, TTL
//!   options and stored type), without running the function's body.
//!
//! A future that is not a call of a `#[cached]` function is [`CallError::NotCached`] (or, for
//! `refresh`, simply run). The `cachette` facade re-exports these with examples.

pub use crate::macro_support::{CallError, Fills, evict, key_of, put, refresh};
