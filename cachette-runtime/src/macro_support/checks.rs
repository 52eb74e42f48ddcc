//! Compile-time checks with readable errors: what `cache = ...` accepts, what a key
//! placeholder and a hashed argument must be, and the key builders the generated code calls.

use super::*;

/// What `cache = ...` accepts.
#[diagnostic::on_unimplemented(
    message = "`cache = ...` must be a `cachette::Cache`, found `{Self}`",
    label = "not a `Cache`",
    note = "pass a `Cache`, a reference to one or an `Arc<Cache>` (for example `cache = self.cache`)"
)]
pub trait AsCache {
    /// The cache.
    fn as_cache(&self) -> &Cache;
}

impl AsCache for Cache {
    fn as_cache(&self) -> &Cache {
        self
    }
}

impl AsCache for Arc<Cache> {
    fn as_cache(&self) -> &Cache {
        self
    }
}

impl<T: AsCache + ?Sized> AsCache for &T {
    fn as_cache(&self) -> &Cache {
        (**self).as_cache()
    }
}

impl<T: AsCache + ?Sized> AsCache for &mut T {
    fn as_cache(&self) -> &Cache {
        (**self).as_cache()
    }
}

/// A handle on the cache named by `cache = ...` (an `Arc` clone, so that the function's body
/// may move what the expression borrows).
pub fn cache_of<C: AsCache + ?Sized>(cache: &C) -> Cache {
    cache.as_cache().clone()
}

/// The cache named by `cache = ...`, borrowed: what the generated code uses when the
/// expression borrows nothing the function's body may move (it names no argument, and `self`
/// only through `&self`), sparing a reference count update per call.
pub fn cache_ref<C: AsCache + ?Sized>(cache: &C) -> &Cache {
    cache.as_cache()
}

/// The process-wide default cache, borrowed.
pub fn default_cache_ref() -> &'static Cache {
    crate::default_cache()
}

/// A value interpolated into a key, tag or pattern template.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be interpolated into a cache key template",
    label = "a placeholder in this template does not implement `Display`",
    note = "implement `std::fmt::Display` for it, use one of its fields (`{{user.id}}`), or leave the placeholder out"
)]
pub trait KeyPart: Display {}

impl<T: Display + ?Sized> KeyPart for T {}

/// An argument hashed into a template-less key.
#[diagnostic::on_unimplemented(
    message = "argument of type `{Self}` cannot be hashed into the cache key: it does not implement `serde::Serialize`",
    label = "not serializable",
    note = "leave it out of the key with `skip(...)` (a database handle or a client is not part of the key), or give a `key = \"...\"` template"
)]
pub trait HashArg: Serialize {}

impl<T: Serialize + ?Sized> HashArg for T {}

/// Never called: the generated code puts a call in an `if false { return ...; }` branch at
/// the top of the async block holding the function's body, which fixes that block's output
/// type to the function's return type (so that `?` and `return` type-check as in the original
/// function).
pub fn fake_return<T>() -> T {
    loop {
        std::thread::park();
    }
}

/// A primitive integer interpolated into a template: written as its decimal digits (which
/// need no escaping) by `itoa`, without the formatting machinery; the same text as its
/// `Display`.
pub trait KeyInt {
    /// Appends the decimal digits.
    fn key_digits(&self, key: &mut KeyBuilder);
}

impl<T: KeyInt + ?Sized> KeyInt for &T {
    #[inline]
    fn key_digits(&self, key: &mut KeyBuilder) {
        (**self).key_digits(key);
    }
}

macro_rules! key_int {
    ($($t:ty),*) => {
        $(impl KeyInt for $t {
            #[inline]
            fn key_digits(&self, key: &mut KeyBuilder) {
                // Digits and `-` only: nothing to escape.
                key.lit(itoa::Buffer::new().format(*self));
            }
        })*
    };
}

key_int!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

/// The key of a call without a key template: `path:` and the stable hash of the arguments
/// (and of the type parameters and `Self`, so that instantiations do not share entries).
#[derive(Debug)]
pub struct HashKey {
    path: &'static str,
    hasher: ArgsHasher,
    error: Option<HashError>,
}

impl HashKey {
    /// Starts the key of the function at `path`.
    pub fn new(path: &'static str) -> Self {
        HashKey {
            path,
            hasher: ArgsHasher::new(),
            error: None,
        }
    }

    /// Hashes one argument.
    #[inline]
    pub fn arg<T: HashArg + ?Sized>(&mut self, value: &T) -> &mut Self {
        if self.error.is_none()
            && let Err(e) = self.hasher.arg(value)
        {
            self.error = Some(e);
        }
        self
    }

    /// Hashes the name of a type (a type parameter, or `Self` of a method).
    #[inline]
    pub fn ty<T: ?Sized>(&mut self) -> &mut Self {
        self.arg(std::any::type_name::<T>())
    }

    /// `path:hash`, or the first error.
    pub fn finish(&mut self) -> Result<String, HashError> {
        self.finish_after("")
    }

    /// The full key of a call of `cache`: its `namespace[:version]:` prefix, then
    /// `path:hash`; or the first error.
    pub fn finish_for(&mut self, cache: &Cache) -> Result<String, HashError> {
        self.finish_after(cache.key_prefix())
    }

    fn finish_after(&mut self, prefix: &str) -> Result<String, HashError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let hex = self.hasher.finish_hex();
        let mut key = String::with_capacity(
            prefix
                .len()
                .saturating_add(self.path.len())
                .saturating_add(hex.len())
                .saturating_add(1),
        );
        key.push_str(prefix);
        key.push_str(self.path);
        key.push(':');
        key.push_str(&hex);
        Ok(key)
    }
}
