//! Key building for generated code: a template is a tuple of parts, written in order into a
//! [`KeyBuilder`]. `"{self.tenant}:user:{id}"` is generated as
//! `(arg(&self.tenant), ":user:", int(&id))`: a literal is a `&str` (written as is), a
//! placeholder an [`Arg`] (escaped) or, for an argument of a primitive integer type, an
//! [`Int`] (its digits). Tuples nest (the macro chunks templates of more than 12 parts), and
//! the builder's capacity is the literal bytes plus 16 per placeholder.

use super::*;

/// A template, or a part of one.
pub trait Template {
    /// Bytes to reserve: the literal text, plus 16 per placeholder.
    fn capacity(&self) -> usize;
    /// Appends the parts.
    fn write(&self, key: &mut KeyBuilder);

    /// The template as a per-call tag of a `#[cached]` call: rendered inline when short (a
    /// literal is kept as it is).
    #[inline]
    fn tag_text(self) -> TagText
    where
        Self: Sized,
    {
        let mut key = KeyBuilder::inline(self.capacity());
        self.write(&mut key);
        TagText::Rendered(key.finish_inline())
    }
}

/// A literal (every literal of generated code is `'static`).
impl Template for &'static str {
    #[inline]
    fn capacity(&self) -> usize {
        self.len()
    }

    #[inline]
    fn write(&self, key: &mut KeyBuilder) {
        key.lit(self);
    }

    #[inline]
    fn tag_text(self) -> TagText {
        TagText::Literal(self)
    }
}

/// A per-call tag of a `#[cached]` call ([`Template::tag_text`]): a constant tag as it is,
/// any other rendered inline when short. A hit reads it as it is; only a call that goes past
/// its first look copies it into a `String` (`CallTags::build`).
#[derive(Debug, Clone)]
pub enum TagText {
    /// A tag without placeholders.
    Literal(&'static str),
    /// A rendered tag.
    Rendered(KeyText),
}

impl AsRef<str> for TagText {
    #[inline]
    fn as_ref(&self) -> &str {
        match self {
            TagText::Literal(s) => s,
            TagText::Rendered(t) => t.as_str(),
        }
    }
}

/// A placeholder's value, escaped ([`arg`]).
pub struct Arg<'a, T: ?Sized> {
    value: &'a T,
    /// Writes the value: made where `T: KeyPart` is known to hold, so that `Arg` is a
    /// [`Template`] whatever `T` (a value that is not `Display` is reported once, at [`arg`]).
    write: fn(&T, &mut KeyBuilder),
}

impl<T: ?Sized> fmt::Debug for Arg<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Arg")
    }
}

/// A placeholder's value: escaped when written. The bound is checked here, at the
/// placeholder's span, with a readable message ([`KeyPart`]).
#[inline]
pub fn arg<T: KeyPart + ?Sized>(value: &T) -> Arg<'_, T> {
    Arg {
        value,
        write: |value, key| {
            key.arg(value);
        },
    }
}

impl<T: ?Sized> Template for Arg<'_, T> {
    #[inline]
    fn capacity(&self) -> usize {
        16
    }

    #[inline]
    fn write(&self, key: &mut KeyBuilder) {
        (self.write)(self.value, key);
    }
}

/// An integer placeholder ([`int`]).
#[derive(Debug)]
pub struct Int<T>(T);

/// An argument declared with a primitive integer type (or a shared reference to one, both
/// `Copy`): written as its digits by `itoa`, the same text as its `Display`, with nothing to
/// escape.
#[inline]
pub fn int<T: KeyInt>(value: T) -> Int<T> {
    Int(value)
}

impl<T: KeyInt> Template for Int<T> {
    #[inline]
    fn capacity(&self) -> usize {
        16
    }

    #[inline]
    fn write(&self, key: &mut KeyBuilder) {
        self.0.key_digits(key);
    }
}

macro_rules! count {
    () => { 0 };
    ($h:ident $($t:ident)*) => { 1 + count!($($t)*) };
}

macro_rules! tuples {
    ($(($($t:ident $i:tt),*))*) => {$(
        impl<$($t: Template),*> Template for ($($t,)*) {
            #[inline]
            fn capacity(&self) -> usize {
                0usize $(.saturating_add(self.$i.capacity()))*
            }

            #[inline]
            #[allow(unused_variables, reason = "the empty tuple writes nothing")]
            fn write(&self, key: &mut KeyBuilder) {
                $(self.$i.write(key);)*
            }
        }

        impl<$($t: Template),*> TagList for ($($t,)*) {
            type Tags = [String; count!($($t)*)];
            type Options = [TagText; count!($($t)*)];

            #[inline]
            fn tags(self) -> Option<Self::Tags> {
                Some([$(string(self.$i)),*])
            }

            #[inline]
            fn options(self) -> Self::Options {
                [$(self.$i.tag_text()),*]
            }
        }
    )*};
}

/// The tags of a call that interpolate arguments, built per call: a tuple of templates
/// ([`Template`]), or, past 12 tags, an array of strings built with [`string`]. `()`: no
/// per-call tags (the call site's constant tags, if any, are used).
pub trait TagList {
    /// The built tags.
    type Tags: IntoIterator<Item = String>;
    /// What the options of a `#[cached]` call with these tags are built from: nothing but the
    /// call site ([`SiteOptions`], its options built once), or the tags.
    type Options: CallTags;
    /// The tags, or `None` for `()`.
    fn tags(self) -> Option<Self::Tags>;
    /// What the options of a `#[cached]` call with these tags are built from.
    fn options(self) -> Self::Options;
}

impl<const N: usize> TagList for [String; N] {
    type Tags = Self;
    type Options = Self;

    #[inline]
    fn tags(self) -> Option<Self> {
        Some(self)
    }

    #[inline]
    fn options(self) -> Self {
        self
    }
}

tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
}

impl Template for () {
    #[inline]
    fn capacity(&self) -> usize {
        0
    }

    #[inline]
    fn write(&self, _key: &mut KeyBuilder) {}
}

impl TagList for () {
    type Tags = [String; 0];
    type Options = SiteOptions;

    #[inline]
    fn tags(self) -> Option<Self::Tags> {
        None
    }

    #[inline]
    fn options(self) -> SiteOptions {
        SiteOptions
    }
}

/// A template as a string (a tag, an invalidated key or pattern, a write-through key).
#[inline]
pub fn string<K: Template>(parts: K) -> String {
    let mut key = KeyBuilder::with_capacity(parts.capacity());
    parts.write(&mut key);
    key.finish()
}

/// The key of a `#[cached]` call: a template ([`Template`]) or the hash of its arguments
/// ([`HashKey`]).
pub trait KeySource {
    /// The full key in `cache` (its `namespace[:version]:` prefix, then the key), or why it
    /// could not be built.
    fn full_key(self, cache: &Cache) -> Result<KeyText, HashError>;
}

impl<K: Template> KeySource for K {
    #[inline]
    fn full_key(self, cache: &Cache) -> Result<KeyText, HashError> {
        let mut key = KeyBuilder::for_cache(cache, self.capacity());
        self.write(&mut key);
        Ok(key.finish_inline())
    }
}

impl KeySource for HashKey {
    #[inline]
    fn full_key(mut self, cache: &Cache) -> Result<KeyText, HashError> {
        self.finish_for(cache).map(KeyText::from)
    }
}
