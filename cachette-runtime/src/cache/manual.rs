//! The manual API's reads and writes: `get`, `exists`, `set` and the write-through of
//! `#[cache_put]`. The checks and stores they make are the read-through engine's
//! (`read_through/manual.rs`).

use super::MANUAL;
use crate::Cache;
use crate::backend::Store;
use crate::codec;
use crate::config::{Options, Ttl};
use crate::error::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::time::Instant;

impl Cache {
    /// The value stored at `key`, if there is a valid one (not expired, not invalidated).
    ///
    /// One round trip, plus one when the entry carries tags (their versions are checked). A
    /// value that does not decode as `T` is `Ok(None)` (counted in
    /// [`StatsSnapshot::decode_failures`](crate::StatsSnapshot::decode_failures)); a backend failure is an error.
    ///
    /// `key`: a [`Key`](crate::Key), built with `cachette::key!("user:{}", id)` so that
    /// values are escaped as the attributes escape them, or a string (`&str`, `String`) taken
    /// as **already escaped** (see [`keys`](crate::keys#the-manual-api)).
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// cache.set("greeting", "hello", &Options::new()).await?;
    /// assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
    /// assert_eq!(cache.get::<String>("absent").await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, key: impl AsRef<str>) -> Result<Option<T>> {
        let started = Instant::now();
        let name = Cow::Borrowed(MANUAL);
        self.attributed(&name, self.get_timed(key.as_ref(), &name, started))
            .await
    }

    /// Whether a valid entry is stored at `key` (the value is not decoded). `key` as for
    /// [`get`](Self::get).
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// cache.set("k", &1u32, &Options::new()).await?;
    /// assert!(cache.exists("k").await?);
    /// cache.delete("k").await?;
    /// assert!(!cache.exists("k").await?);
    /// # Ok(()) }
    /// ```
    pub async fn exists(&self, key: impl AsRef<str>) -> Result<bool> {
        self.attributed(&Cow::Borrowed(MANUAL), self.exists_raw(key.as_ref()))
            .await
    }

    /// Stores `value` at `key` with the options' TTL and tags (what `#[cache_put]` calls). The
    /// tag versions are read before the write, so an invalidation that returns after this call
    /// started may or may not cover the value; one that starts after it returns always does.
    /// A computation of the key that began before this call cannot overwrite the value: fills
    /// store only if the key is still as their lookup saw it (the entry is kept at least the
    /// fence TTL for that, as a miss once past its TTL and windows). Two `set`s of one key
    /// racing each other are the caller's to order: the later to arrive wins.
    ///
    /// `key`: a [`Key`](crate::Key), built with `cachette::key!("user:{}", id)` so that
    /// values are escaped as the attributes escape them, or a string (`&str`, `String`) taken
    /// as **already escaped** (see [`keys`](crate::keys#the-manual-api)).
    ///
    /// ```
    /// # use cachette_runtime::{Cache, Options};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cachette_runtime::Error> {
    /// let cache = Cache::memory(1 << 20);
    /// let opts = Options::new().ttl(Duration::from_secs(600)).tags(["users"]);
    /// cache.set("user:1", "Ada", &opts).await?;
    /// assert_eq!(cache.get::<String>("user:1").await?.as_deref(), Some("Ada"));
    /// cache.invalidate_tags(["users"]).await?;
    /// assert_eq!(cache.get::<String>("user:1").await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<str>,
        value: &T,
        opts: &Options,
    ) -> Result<()> {
        if !self.inner.backend.stores() {
            return Ok(());
        }
        let raw = codec::encode_value(value)?;
        self.write_through(&self.full_key(key.as_ref()), &raw, opts, None, false)
            .await
    }

    /// The write of [`set`](Self::set), of an encoded value at a full key: also what a
    /// write-through coupled to a cached call (`#[cache_put(get_user(id))]`,
    /// `cachette::put`) does, from that call's generated code, with the call's options and
    /// `ttl` (the policy's TTL for this value, e.g. `cache_none`'s) instead of `opts.ttl`
    /// when given. Unconditional, so it fences fills that began before it (see `store_raw`).
    /// Its round trips are timed under the options' name.
    pub(crate) async fn write_through(
        &self,
        full_key: &str,
        raw: &serde_json::value::RawValue,
        opts: &Options,
        ttl: Option<&Ttl>,
        keep_decoded: bool,
    ) -> Result<()> {
        self.attributed(
            &opts.name,
            self.write_through_raw(full_key, raw, opts, ttl, keep_decoded),
        )
        .await
    }
}
