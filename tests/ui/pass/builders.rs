//! `key!`, `tag!` and `pattern!` in every form, warning-free; through a renamed dependency
//! too (the macros name the facade by `$crate`).
#![deny(warnings)]

mod deps {
    pub use ::cachette as engine;
}

use cachette::{Cache, Key, Options, Pattern, Tag};

struct Member {
    guild: String,
    id: u64,
}

struct Repo {
    tenant: String,
}

impl Repo {
    fn key(&self, id: u64) -> Key {
        cachette::key!("{self.tenant}:user:{id}")
    }
}

async fn manual(cache: &Cache, m: &Member, id: &str) -> cachette::Result<()> {
    let key: Key = cachette::key!("user:{}", id);
    let tag: Tag = cachette::tag!("guild:{m.guild}");
    let pattern: Pattern = cachette::pattern!("guild:{0.guild}:member:{1}:*", m, m.id);
    let named = cachette::key!("member:{guild}:{id}", guild = m.guild, id = m.id);
    let literal = crate::deps::engine::key!("users:{{all}}");
    cache
        .set(&key, &1, &Options::new().tags([tag.clone(), cachette::tag!("users")]))
        .await?;
    let _: Option<u8> = cache.get(&key).await?;
    let _ = cache.exists(key.clone()).await?;
    let _ = cache.delete(named).await?;
    let _ = cache.delete(literal).await?;
    cache.invalidate_tags([&tag]).await?;
    cache.invalidate_tags(vec![tag]).await?;
    let _ = cache.invalidate_pattern(&pattern).await?;
    let _ = cache.invalidate_pattern(pattern).await?;
    let _: u8 = cache.get_or_compute(key, &Options::new(), || async { 1 }).await;
    let _ = Repo { tenant: "acme".into() }.key(1);
    Ok(())
}

fn main() {
    let m = Member {
        guild: "a*".into(),
        id: 7,
    };
    let cache = Cache::disabled();
    drop(manual(&cache, &m, "1:*"));
}
