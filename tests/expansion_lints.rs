//! The expansions of the attributes are warning-free under the strictest lint levels a user
//! may set: rustc's `warnings` and clippy's `all` and `pedantic` (issue 13). This file is
//! compiled by `cargo test` (rustc's lints, denied) and by CI's
//! `cargo clippy --workspace --all-targets -- -D warnings` (clippy's), so a lint tripped by
//! generated code fails CI. Bodies are written the way users write them, one expression
//! included (`{ Ok(id) }`, which once tripped `unused_braces`). Every shape is also called
//! once, so that none is dead code and each is shown to work.
#![deny(warnings, clippy::all, clippy::pedantic)]

// One-line bodies are kept on one line: that is the shape under test.
#[rustfmt::skip]
mod shapes {
    use cachette::{Cache, CacheBuilder, cache_put, cached, invalidates};
    use serde::{Deserialize, Serialize};
    use serde::de::DeserializeOwned;
    use std::sync::Arc;
    use std::time::Duration;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct User {
        id: u64,
        name: String,
    }

    #[derive(Debug, Clone, PartialEq)]
    struct DbError;

    // ----- free functions, on the default cache ---------------------------------------------------

    #[cached]
    async fn hashed(a: u32, b: String) -> u64 { u64::from(a) + b.len() as u64 }

    #[cached(skip(log))]
    async fn hashed_skip(id: u64, log: impl Fn(&str) + Send) -> u64 {
        log("called");
        id
    }

    #[cached(key = "lints:plain:{id}", ttl = 600, tags = ["lints", "lints:{id}"], name = "lints.plain")]
    async fn plain(id: u64) -> User { User { id, name: String::new() } }

    #[cached(key = "lints:result:{id}", ttl = "10m")]
    async fn result(id: u64) -> Result<u64, DbError> { Ok(id) }

    #[cached(key = "lints:early-return:{id}")]
    async fn early_return(id: u64) -> Result<u64, DbError> {
        if id == 0 {
            return Err(DbError);
        }
        let n: u64 = "2".parse().map_err(|_| DbError)?;
        Ok(id * n)
    }

    #[cached(key = "lints:option:{id}")]
    async fn option(id: u64) -> Option<u64> { (id > 0).then_some(id) }

    #[cached(key = "lints:negative:{id}", cache_none(ttl = "30s"))]
    async fn negative(id: u64) -> Option<u64> { None.filter(|_: &u64| id > 0) }

    #[cached(key = "lints:found:{id}", cache_none(ttl = "30s"))]
    async fn result_option(id: u64) -> Result<Option<u64>, DbError> { Ok((id > 1).then_some(id)) }

    #[cached(key = "lints:ref:{name}:{user.id}")]
    async fn references(name: &str, user: &User) -> String { format!("{name}{}", user.id) }

    #[cached(key = "lints:fresh:{id}", stale = "30s", stale_if_error = "5m", jitter = 0.2, early_refresh = 2.0, lock(ttl = "10s", wait = "2s"))]
    async fn freshness(id: u64) -> Result<u64, DbError> { Ok(id) }

    #[cached(key = "lints:solo:{id}", single_flight = false, early_refresh = false, lock)]
    async fn solo(id: u64) -> u64 { id }

    #[cached(crate = "::cachette", key = "lints:crate:{id}")]
    async fn crate_path(id: u64) -> u64 { id }

    // ----- generic functions -------------------------------------------------------------------

    #[cached]
    async fn generic_hashed<T: Default + Serialize + DeserializeOwned + Send>() -> T { T::default() }

    #[cached(key = "lints:list:{T}:{n}")]
    async fn generic_templated<T>(n: usize) -> Vec<T>
    where
        T: Default + Clone + Serialize + DeserializeOwned,
    {
        vec![T::default(); n]
    }

    #[cached(key = "lints:arr:{N}")]
    async fn const_generic<const N: usize>() -> Vec<u8> { vec![0; N] }

    // ----- writers -----------------------------------------------------------------------------

    #[invalidates(tags = ["lints:{id}"])]
    async fn invalidate_plain(id: u64) {
        let _ = id;
    }

    #[invalidates(tags = ["lints"], keys = ["lints:plain:{id}"], patterns = ["lints:option:*"])]
    async fn invalidate_result(id: u64) -> Result<u64, DbError> { Ok(id) }

    #[cache_put(key = "lints:plain:{user.id}", tags = ["lints", "lints:{user.id}"])]
    async fn put_plain(user: User) -> User { user }

    #[cache_put(key = "lints:result:{id}")]
    async fn put_result(id: u64) -> Result<u64, DbError> { Ok(id) }

    #[cache_put(key = "lints:option:{id}")]
    async fn put_option(id: u64) -> Option<u64> { Some(id) }

    #[invalidates(tags = ["lints"])]
    #[cache_put(key = "lints:plain:{user.id}", tags = ["lints", "lints:{user.id}"])]
    async fn stacked(user: User) -> Result<User, DbError> { Ok(user) }

    // ----- methods -----------------------------------------------------------------------------

    struct Repo {
        cache: Cache,
        shared: Arc<Cache>,
        tenant: String,
        hits: u64,
    }

    impl Repo {
        #[cached(key = "{self.tenant}:user:{id}", cache = self.cache)]
        async fn by_ref(&self, id: u64) -> Result<User, DbError> { Ok(User { id, name: self.tenant.clone() }) }

        #[cached(key = "count:{id}", cache = self.cache)]
        async fn by_mut(&mut self, id: u64) -> u64 {
            self.hits += 1;
            id + self.hits
        }

        #[cached(cache = self.shared)]
        async fn by_arc(self: Arc<Self>, id: u64) -> String { format!("{}{id}", self.tenant) }

        #[cached(key = "owned:{id}", cache = self.cache)]
        async fn by_value(self, id: u64) -> String { format!("{}{id}", self.tenant) }

        #[cached(key = "profiled:{id}", ttl = profile("lints"), cache = self.cache)]
        async fn profiled(&self, id: u64) -> Option<u64> { Some(id) }

        #[cached(key = "background:{id}", stale = "30s", background_refresh, cache = self.cache)]
        async fn background(self: Arc<Self>, id: u64) -> Result<Option<u64>, DbError> { Ok(Some(id)) }

        #[cached(key = "assoc:{id}")]
        async fn associated(id: u64) -> u64 { id }

        #[invalidates(tags = ["users"], cache = self.cache)]
        async fn rename(&self, id: u64) -> Result<(), DbError> {
            let _ = id;
            Ok(())
        }

        #[invalidates(tags = ["users"], cache = self.cache)]
        #[cache_put(key = "{self.tenant}:user:{user.id}", tags = ["users"], cache = self.cache)]
        async fn save(&self, user: User) -> Result<User, DbError> { Ok(user) }
    }

    trait Users {
        async fn age(&self, id: u64) -> Option<u8>;
    }

    impl Users for Repo {
        #[cached(key = "age:{id}", cache_none, cache = self.cache)]
        async fn age(&self, id: u64) -> Option<u8> { u8::try_from(id).ok() }
    }

    fn repo() -> Result<Repo, cachette::Error> {
        let cache = CacheBuilder::new()
            .memory(1 << 20)
            .ttl_profile("lints", Duration::from_mins(1))
            .build()?;
        Ok(Repo {
            shared: Arc::new(cache.clone()),
            cache,
            tenant: "t".to_owned(),
            hits: 0,
        })
    }

    #[tokio::test]
    async fn every_shape_compiles_without_warnings_and_runs() -> Result<(), cachette::Error> {
        assert_eq!(hashed(1, "ab".to_owned()).await, 3);
        assert_eq!(hashed_skip(4, |_| {}).await, 4);
        assert_eq!(plain(1).await.id, 1);
        assert_eq!(result(2).await, Ok(2));
        assert_eq!(early_return(0).await, Err(DbError));
        assert_eq!(early_return(3).await, Ok(6));
        assert_eq!(option(0).await, None);
        assert_eq!(negative(1).await, None);
        assert_eq!(result_option(1).await, Ok(None));
        assert_eq!(result_option(2).await, Ok(Some(2)));
        let user = User { id: 5, name: "n".to_owned() };
        assert_eq!(references("a", &user).await, "a5");
        assert_eq!(freshness(6).await, Ok(6));
        assert_eq!(solo(7).await, 7);
        assert_eq!(crate_path(8).await, 8);
        assert_eq!(generic_hashed::<u32>().await, 0);
        assert_eq!(generic_templated::<String>(2).await.len(), 2);
        assert_eq!(const_generic::<3>().await, vec![0; 3]);

        invalidate_plain(1).await;
        assert_eq!(invalidate_result(1).await, Ok(1));
        assert_eq!(put_plain(user.clone()).await, user);
        assert_eq!(put_result(9).await, Ok(9));
        assert_eq!(put_option(9).await, Some(9));
        assert_eq!(stacked(user.clone()).await, Ok(user.clone()));
        assert_eq!(plain(5).await, user, "the write-through's value, a hit");

        let mut repo = repo()?;
        assert_eq!(repo.by_ref(1).await, Ok(User { id: 1, name: "t".to_owned() }));
        assert_eq!(repo.by_mut(1).await, 2);
        assert_eq!(repo.by_mut(1).await, 2, "a hit");
        assert_eq!(repo.profiled(3).await, Some(3));
        assert_eq!(repo.age(300).await, None);
        assert_eq!(Repo::associated(4).await, 4);
        assert_eq!(repo.rename(1).await, Ok(()));
        assert_eq!(repo.save(user.clone()).await, Ok(user.clone()));
        assert_eq!(repo.by_ref(5).await, Ok(user), "the write-through's value, a hit");
        let repo = Arc::new(repo);
        assert_eq!(repo.clone().by_arc(2).await, "t2");
        assert_eq!(repo.clone().background(2).await, Ok(Some(2)));
        let owned = Repo { cache: repo.cache.clone(), shared: repo.shared.clone(), tenant: "o".to_owned(), hits: 0 };
        assert_eq!(owned.by_value(1).await, "o1");
        Ok(())
    }
}
