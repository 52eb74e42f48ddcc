//! Stable 128-bit hashing of arguments (placeholder; being written).
