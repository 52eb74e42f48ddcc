//! Arguments named like the generated code's locals do not collide with them.
use cachette::{Cache, cached, cache_put, invalidates};

#[cached(key = "r:{key}:{cache}:{value}:{ttl}:{opts}:{policy}:{compute}")]
async fn reserved(key: u32, cache: u32, value: u32, ttl: u32, opts: u32, policy: u32, compute: u32) -> u32 {
    key + cache + value + ttl + opts + policy + compute
}

#[cached(key = "h:{__cachette_key}:{__cachette_cache}:{__cachette_opts}:{__cachette_k}")]
async fn prefixed(__cachette_key: u8, __cachette_cache: u8, __cachette_opts: u8, __cachette_k: u8) -> u8 {
    __cachette_key + __cachette_cache + __cachette_opts + __cachette_k
}

#[cached]
async fn hashed(key: String, cache: String, __cachette_h: u8) -> usize {
    key.len() + cache.len() + usize::from(__cachette_h)
}

#[invalidates(tags = ["t:{key}"], keys = ["k:{cache}"], patterns = ["p:{value}:*"])]
async fn invalidate(key: u32, cache: u32, value: u32, __cachette_ret: u32) -> u32 {
    key + cache + value + __cachette_ret
}

#[cache_put(key = "k:{key}", tags = ["{cache}"])]
async fn put(key: u32, cache: u32, value: u32) -> u32 {
    key + cache + value
}

/// An argument named `cache` beside `cache = ...`.
#[cached(key = "c:{cache}", cache = Cache::disabled())]
async fn cache_arg(cache: u32) -> u32 {
    cache
}

fn main() {
    let _ = reserved(1, 2, 3, 4, 5, 6, 7);
    let _ = prefixed(1, 2, 3, 4);
    let _ = hashed(String::new(), String::new(), 1);
    let _ = invalidate(1, 2, 3, 4);
    let _ = put(1, 2, 3);
    let _ = cache_arg(1);
}
