//! `crate = "..."` for a renamed dependency.
mod deps {
    pub use ::cachette as engine;
}

use cachette::{cache_put, cached, invalidates};

#[cached(key = "user:{id}", crate = "crate::deps::engine")]
async fn get_user(id: u64) -> String {
    format!("user {id}")
}

#[invalidates(tags = ["users"], crate = "crate::deps::engine")]
async fn reset() {}

#[cache_put(key = "user:{id}", crate = "crate::deps::engine")]
async fn put_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {
    let _ = get_user(1);
    let _ = reset();
    let _ = put_user(1);
}
