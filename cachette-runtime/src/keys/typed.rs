//! [`Key`], [`Tag`] and [`Pattern`]: escaped strings for the manual API, what the facade's
//! `cachette::key!`, `cachette::tag!` and `cachette::pattern!` build (user-facing docs: the
//! `keys` module's *The manual API*). The three are the same string under three names, made
//! by a [`KeyBuilder`]; the types say what a string is for.

use super::KeyBuilder;
use std::borrow::Borrow;
use std::fmt;

macro_rules! escaped_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Takes `text` as it is, **already escaped**: interpolated values must have gone
            /// through [`escape`](super::escape) or a [`KeyBuilder`].
            pub fn from_escaped(text: impl Into<String>) -> Self {
                Self(text.into())
            }

            /// The escaped text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The escaped text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        /// Literal text as written, values escaped.
        impl From<KeyBuilder> for $name {
            fn from(built: KeyBuilder) -> Self {
                Self(built.finish())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl From<&$name> for String {
            fn from(v: &$name) -> String {
                v.0.clone()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

escaped_string!(
    /// An escaped key body (without the cache's `namespace[:version]:` prefix), for
    /// [`Cache::get`](crate::Cache::get), [`set`](crate::Cache::set),
    /// [`delete`](crate::Cache::delete), [`exists`](crate::Cache::exists),
    /// [`get_or_compute`](crate::Cache::get_or_compute) and the locks. Build it with
    /// `cachette::key!("user:{}", id)` (see [the manual API](crate::keys#the-manual-api)).
    Key
);

escaped_string!(
    /// An escaped tag, for [`Cache::invalidate_tags`](crate::Cache::invalidate_tags) and
    /// [`Options::tags`](crate::Options::tags). Build it with `cachette::tag!("user:{}", id)`
    /// (see [the manual API](crate::keys#the-manual-api)).
    Tag
);

escaped_string!(
    /// An escaped Redis glob over key bodies, for
    /// [`Cache::invalidate_pattern`](crate::Cache::invalidate_pattern): the template's `*`,
    /// `?` and `[...]` are globs, interpolated values match only themselves. Build it with
    /// `cachette::pattern!("guild:{}:*", id)` (see [the manual API](crate::keys#the-manual-api)).
    Pattern
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_values_are_escaped_and_compare_as_text() {
        let mut b = KeyBuilder::new();
        b.lit("user:").arg("1:*");
        let key = Key::from(b);
        assert_eq!(key, "user:1%3A%2A");
        assert_eq!(key.as_str(), "user:1%3A%2A");
        assert_eq!(key.to_string(), "user:1%3A%2A");
        assert_eq!(String::from(&key), "user:1%3A%2A");
        assert_eq!(Tag::from_escaped("user:1"), "user:1".to_owned());
        assert_eq!("guild:*", Pattern::from_escaped("guild:*"));
    }
}
