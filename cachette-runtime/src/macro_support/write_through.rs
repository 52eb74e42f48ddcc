//! What `#[cache_put(key = ...)]` calls: the write-through of a returned value.

use super::*;

/// A write-through for values of type `T`. [`Put::checked`] is the one place where `T` must be
/// cacheable: the generated code names `T` through the marker argument spanned at the user's
/// return type, so that a value that cannot be cached is reported there.
#[derive(Debug)]
pub struct Put<T>(PhantomData<T>);

impl<T> Put<T> {
    /// The write-through of a `T`.
    pub fn checked(_stored: PhantomData<T>) -> Self
    where
        T: CacheValue,
    {
        Put(PhantomData)
    }

    /// `-> T`: the value is stored.
    pub async fn plain(self, cache: &Cache, key: &str, ret: &T, opts: &Options)
    where
        T: CacheValue,
    {
        put_key(cache, key, ret, opts).await;
    }

    /// `-> Result<T, E>`: the `Ok` value is stored.
    pub async fn fallible<E>(self, cache: &Cache, key: &str, ret: &Result<T, E>, opts: &Options)
    where
        T: CacheValue,
    {
        if let Ok(v) = ret {
            put_key(cache, key, v, opts).await;
        }
    }

    /// `-> Option<T>`: the `Some` value is stored.
    pub async fn optional(self, cache: &Cache, key: &str, ret: &Option<T>, opts: &Options)
    where
        T: CacheValue,
    {
        if let Some(v) = ret {
            put_key(cache, key, v, opts).await;
        }
    }
}

/// The options of a `#[cache_put(key = ...)]` write: the site's (its TTL and constant tags),
/// or with this call's tags when they interpolate arguments.
pub fn put_options<G: TagList>(site: &'static Site, tags: G) -> Cow<'static, Options> {
    match tags.tags() {
        None => Cow::Borrowed(site.options()),
        Some(tags) => Cow::Owned(site.build().tags(tags)),
    }
}

/// Stores `value` at `key` after a `#[cache_put]` function succeeded; when the store fails,
/// deletes the entry instead ([`coupled::put_failed`]). A value whose JSON would not read back
/// as it (`Some(NaN)`, `Some(None)`: see `lossless.rs`) is not stored: counted as lossy, and
/// the entry is deleted, so that readers keep neither it nor the value it replaces.
pub(super) async fn put_key<T: CacheValue>(cache: &Cache, key: &str, value: &T, opts: &Options) {
    let full_key = cache.full_key(key);
    let stored = match crate::codec::encode_value(value) {
        Ok(raw) if crate::lossless::reads_back(value, &raw) => {
            cache
                .write_through(&full_key, &raw, opts, None, false)
                .await
        }
        Ok(_) => {
            coupled::lossy(cache, opts);
            cache.delete(key).await.map(|_| ())
        }
        Err(e) => Err(Error::Encode(e)),
    };
    if let Err(e) = stored {
        coupled::put_failed(cache, &full_key, opts, &e).await;
    }
}
