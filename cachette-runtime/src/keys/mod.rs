//! Keys.
pub mod hash;
