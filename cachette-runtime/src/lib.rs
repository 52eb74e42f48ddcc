//! cachette runtime (being written).
pub mod keys;
