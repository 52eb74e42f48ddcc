//! Warning-free expansions (issue 13): free functions, generic functions, writers and stacked
//! attributes, with the one-line bodies users write (`{ Ok(id) }` once tripped rustc's
//! `unused_braces` at the user's braces), under `#![deny(warnings)]`.
#![deny(warnings)]

use cachette::{cache_put, cached, invalidates};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug)]
pub struct DbError;

#[derive(Clone, Serialize, Deserialize)]
pub struct User { pub id: u64 }

#[cached]
async fn hashed(id: u32) -> Result<u32, DbError> { Ok(id) }

#[cached(skip(log))]
async fn hashed_skip(id: u32, log: impl Fn(&str)) -> u32 { log("x"); id }

#[cached(key = "plain:{id}", ttl = 600, tags = ["users", "user:{id}"], name = "users.get")]
async fn plain(id: u64) -> u64 { id }

#[cached(key = "result:{id}", ttl = "10m")]
async fn result(id: u32) -> Result<u32, DbError> { Ok(id) }

#[cached(key = "option:{id}")]
async fn option(id: u32) -> Option<u32> { Some(id) }

#[cached(key = "negative:{id}", cache_none(ttl = "30s"))]
async fn negative(id: u32) -> Option<u32> { Some(id) }

#[cached(key = "found:{id}")]
async fn result_option(id: u32) -> Result<Option<u32>, DbError> { Ok(Some(id)) }

#[cached(key = "found-neg:{id}", cache_none(ttl = "30s"))]
async fn result_option_negative(id: u32) -> Result<Option<u32>, DbError> { Ok(Some(id)) }

#[cached(key = "profiled:{id}", ttl = profile("users"))]
async fn profiled(id: u32) -> u32 { id }

#[cached(key = "ref:{name}")]
async fn reference(name: &str) -> String { name.to_owned() }

#[cached(key = "fresh:{id}", stale = "30s", stale_if_error = "5m", jitter = 0.2, early_refresh = 2.0, lock)]
async fn freshness(id: u32) -> Result<u32, DbError> { Ok(id) }

#[cached(key = "inner:{id}")]
async fn inner_attribute(id: u32) -> u32 { #![allow(unused_mut)] let mut n = id; n }

#[cached]
async fn generic_hashed<T: Default + Serialize + DeserializeOwned + Send>() -> T { T::default() }

#[cached(key = "list:{T}:{n}")]
async fn generic_templated<T: Default + Clone + Serialize + DeserializeOwned>(n: usize) -> Vec<T> { vec![T::default(); n] }

#[cached(key = "arr:{N}")]
async fn const_generic<const N: usize>() -> Vec<u8> { vec![0; N] }

fn touch(_: u32) {}

#[invalidates(tags = ["user:{id}"])]
async fn invalidate_unit(id: u32) { touch(id) }

#[invalidates(tags = ["users"], keys = ["plain:{id}"], patterns = ["option:*"])]
async fn invalidate_result(id: u32) -> Result<u32, DbError> { Ok(id) }

#[cache_put(key = "plain:{id}")]
async fn put_plain(id: u64) -> u64 { id }

#[cache_put(key = "result:{id}")]
async fn put_result(id: u32) -> Result<u32, DbError> { Ok(id) }

#[cache_put(key = "option:{id}")]
async fn put_option(id: u32) -> Option<u32> { Some(id) }

#[invalidates(tags = ["users"])]
#[cache_put(key = "user:{user.id}", tags = ["users"])]
async fn stacked(user: User) -> Result<User, DbError> { Ok(user) }

fn main() {
    let _ = (hashed(1), hashed_skip(1, |_| {}), plain(1), result(1), option(1), negative(1));
    let _ = (profiled(1), reference("a"), freshness(1), inner_attribute(1));
    let _ = (generic_hashed::<u32>(), generic_templated::<u8>(1), const_generic::<2>());
    let _ = (invalidate_unit(1), invalidate_result(1), put_plain(1), put_result(1));
    let _ = (put_option(1), stacked(User { id: 1 }), result_option(1), result_option_negative(1));
}
