//! Free functions: hashed and templated keys, reference and `impl Trait` arguments, the three
//! return shapes and every TTL form.
use cachette::cached;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
}

pub struct Db;

#[cached]
async fn hashed(a: u32, b: String, c: Vec<u8>) -> u64 {
    u64::from(a) + b.len() as u64 + c.len() as u64
}

#[cached(key = "user:{id}", ttl = 600, tags = ["users", "user:{id}"], name = "users.get")]
async fn plain(id: u64) -> User {
    User { id, name: String::new() }
}

#[cached(key = "user:{id}", ttl = "10m")]
async fn fallible(id: u64) -> Result<User, std::io::Error> {
    let n: u64 = "1".parse().map_err(std::io::Error::other)?;
    Ok(User { id: id * n, name: String::new() })
}

#[cached(key = "user:{id}", ttl = "1h30m")]
async fn io_result(id: u64) -> std::io::Result<u64> {
    Ok(id)
}

#[cached(key = "user:{id}", ttl = profile("user_profile"))]
async fn optional(id: u64) -> Option<User> {
    (id > 0).then(|| User { id, name: String::new() })
}

#[cached(key = "user:{id}", cache_none(ttl = "30s"))]
async fn negative(id: u64) -> Option<User> {
    (id > 0).then(|| User { id, name: String::new() })
}

#[cached(key = "user:{id}", cache_none)]
async fn negative_default_ttl(id: u64) -> Option<u64> {
    Some(id)
}

#[cached(key = "greet:{name}:{user.id}:{pair.1}")]
async fn references(name: &str, user: &User, pair: &(u8, u16), bytes: &[u8]) -> String {
    format!("{name}{}{}{}", user.id, pair.0, bytes.len())
}

#[cached]
async fn hashed_references(name: &str, bytes: &[u8], user: &User) -> usize {
    name.len() + bytes.len() + user.name.len()
}

#[cached(skip(db, log))]
async fn skipped(db: &Db, id: u64, log: impl Fn(&str)) -> u64 {
    let _ = db;
    log("called");
    id
}

#[cached(key = "n:{id}")]
async fn impl_trait_not_in_key(id: u64, log: impl Fn(&str) + Send) -> u64 {
    log("called");
    id
}

#[cached(key = "{{literal}}:{id}")]
async fn literal_braces(id: u64) -> u64 {
    id
}

#[cached(key = "pair:{a}:{b}")]
async fn destructured((a, b): (u32, u32), _unused: bool) -> u32 {
    a + b
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    assert_send(hashed(1, String::new(), vec![]));
    assert_send(plain(1));
    assert_send(fallible(1));
    assert_send(io_result(1));
    assert_send(optional(1));
    assert_send(negative(1));
    assert_send(negative_default_ttl(1));
    assert_send(references("a", &User { id: 1, name: String::new() }, &(1, 2), b"x"));
    assert_send(hashed_references("a", b"x", &User { id: 1, name: String::new() }));
    assert_send(impl_trait_not_in_key(1, |_| {}));
    assert_send(literal_braces(1));
    assert_send(destructured((1, 2), true));
    let _ = skipped(&Db, 1, |_| {});
}
