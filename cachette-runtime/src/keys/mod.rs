//! Cache keys: layout, escaping of interpolated values, glob patterns and argument hashing.
//!
//! # Layout
//!
//! Every entry lives at `namespace[:version]:body`. The namespace (default `cachette`) and the
//! optional version are configured on the [`Cache`](crate::Cache) and may only contain ASCII
//! letters, digits, `_`, `-` and `.`. Tag version keys live beside the entries at
//! `namespace#tag:tag` (never versioned, so that an invalidation reaches every deployed
//! version during a rolling deploy); no entry key can take that form, because entry keys
//! always continue the namespace with `:`.
//!
//! # Escaping
//!
//! A body built from a template (`"user:{id}"`) copies the template's literal text as it is
//! and interpolates each value through [`escape_into`], which percent-encodes (as `%XX`, upper
//! case hex, one per UTF-8 byte) every character that could change the meaning of a key:
//!
//! | character | why | becomes |
//! |---|---|---|
//! | `%` | the escape character itself, so escaping is injective | `%25` |
//! | `:` | the segment separator: `1:admin` must not read as two segments | `%3A` |
//! | `*` `?` `[` `]` `\` | Redis glob syntax: a value must not widen a pattern invalidation | `%2A` `%3F` `%5B` `%5D` `%5C` |
//! | `{` `}` | Redis Cluster hash tags: a value must not pick the key's slot | `%7B` `%7D` |
//! | space, control characters (C0, DEL, C1) | keep keys printable and safe in logs | `%20`, `%0A`, ... |
//!
//! Every other character, including non-ASCII Unicode, is kept as it is. Because `%` itself
//! is escaped, two different values always give two different escaped strings, and an
//! escaped value never contains a separator or a glob character: `user:{id}` with
//! `id = "1:admin"` is `user:1%3Aadmin`, and a pattern `guild:{id}:*` with `id = "*"` is
//! `guild:%2A:*`, which matches only keys of the guild literally named `*`.
//!
//! ```
//! use cachette_runtime::keys::{escape, KeyBuilder};
//!
//! assert_eq!(escape("1:admin"), "1%3Aadmin");
//! assert_eq!(escape("*"), "%2A");
//! assert_eq!(escape("plain-42"), "plain-42");
//!
//! let mut key = KeyBuilder::new();
//! key.lit("user:").arg(&"1:admin").lit(":profile");
//! assert_eq!(key.finish(), "user:1%3Aadmin:profile");
//! ```
//!
//! # The manual API
//!
//! [`Key`], [`Tag`] and [`Pattern`] are strings built this way: a template's literal text as
//! written, each interpolated value escaped by a [`KeyBuilder`] (the code `#[cached]` runs).
//! The facade's `cachette::key!`, `cachette::tag!` and `cachette::pattern!` build them from
//! `format!`-like templates, so that `cachette::key!("user:{}", id)` is the key of
//! `#[cached(key = "user:{id}")]` for that `id`, `cachette::tag!("user:{}", id)` its tag
//! `"user:{id}"`, and in `cachette::pattern!("guild:{}:*", id)` only the template's own `*` is
//! a glob. The manual API ([`Cache::get`](crate::Cache::get), [`set`](crate::Cache::set),
//! [`invalidate_tags`](crate::Cache::invalidate_tags),
//! [`invalidate_pattern`](crate::Cache::invalidate_pattern), ...) takes them, and still takes
//! plain strings (`&str`, `String`), which it uses **as already escaped**: a value interpolated
//! with `format!` is not escaped, so `format!("user:{id}")` misses the entry of user `1:*`
//! (tagged `user:1%3A%2A`) and `format!("guild:{id}:*")` with `id = "a*"` also removes the
//! keys of guilds `a` and `ab`.
//!
//! Without the facade's macros, build them from a [`KeyBuilder`]:
//!
//! ```
//! use cachette_runtime::keys::{KeyBuilder, Pattern, Tag};
//!
//! let id = "a*";
//! let mut b = KeyBuilder::new();
//! b.lit("guild:").arg(id).lit(":*");
//! assert_eq!(Pattern::from(b), "guild:a%2A:*");
//!
//! let mut b = KeyBuilder::new();
//! b.lit("user:").arg("1:*");
//! assert_eq!(Tag::from(b), "user:1%3A%2A");
//! ```

pub mod hash;
mod text;
mod typed;

#[doc(hidden)]
pub use text::KeyText;
pub use typed::{Key, Pattern, Tag};

use std::borrow::Cow;
use std::fmt::{self, Display, Write as _};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '%' | ':' | '*' | '?' | '[' | ']' | '\\' | '{' | '}' | ' '
    ) || c.is_control()
}

/// Whether a byte may start something [`needs_escape`] accepts: every such character is
/// ASCII or a C1 control (`U+0080`–`U+009F`, encoded `0xC2 0x80`–`0xC2 0x9F`).
fn may_need_escape(b: u8) -> bool {
    matches!(
        b,
        b'%' | b':' | b'*' | b'?' | b'[' | b']' | b'\\' | b'{' | b'}' | b' ' | 0x7F | 0xC2
    ) || b < 0x20
}

/// Appends `value` to `out`, escaped as described in the [module docs](self).
pub fn escape_into(out: &mut String, value: &str) {
    escape_onto(out, value);
}

/// Text a value can be escaped onto.
trait Text {
    fn push_str(&mut self, s: &str);
    fn push(&mut self, c: char);
}

impl Text for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
    fn push(&mut self, c: char) {
        String::push(self, c);
    }
}

impl Text for KeyText {
    fn push_str(&mut self, s: &str) {
        KeyText::push_str(self, s);
    }
    fn push(&mut self, c: char) {
        KeyText::push(self, c);
    }
}

/// [`escape_into`] onto any [`Text`].
fn escape_onto(out: &mut impl Text, value: &str) {
    // Most values (numbers, ids, words) need no escaping: one pass over the bytes.
    if !value.bytes().any(may_need_escape) {
        out.push_str(value);
        return;
    }
    let mut rest = value;
    while let Some(pos) = rest.find(needs_escape) {
        out.push_str(&rest[..pos]);
        let c = rest[pos..].chars().next().unwrap_or('%');
        let mut utf8 = [0u8; 4];
        for b in c.encode_utf8(&mut utf8).bytes() {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xF)] as char);
        }
        rest = rest
            .get(pos.saturating_add(c.len_utf8())..)
            .unwrap_or_default();
    }
    out.push_str(rest);
}

/// Returns `value` escaped as described in the [module docs](self); borrows when nothing
/// needs escaping.
pub fn escape(value: &str) -> Cow<'_, str> {
    if value.contains(needs_escape) {
        let mut out = String::with_capacity(value.len().saturating_add(8));
        escape_into(&mut out, value);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(value)
    }
}

/// A `fmt::Write` adapter that escapes everything written through it.
struct EscapingWriter<'a>(&'a mut KeyText);

impl fmt::Write for EscapingWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_onto(self.0, s);
        Ok(())
    }
}

/// Builds a key body (or a pattern, or a tag) from literal text and escaped values.
///
/// Literal text is copied as it is; values go through [`escape_into`], formatted with their
/// `Display` implementation without an intermediate allocation.
///
/// ```
/// use cachette_runtime::keys::KeyBuilder;
///
/// let mut pattern = KeyBuilder::new();
/// pattern.lit("guild:").arg(&"*").lit(":*");
/// assert_eq!(pattern.finish(), "guild:%2A:*");
/// ```
#[derive(Debug, Default, Clone)]
pub struct KeyBuilder {
    /// Inline when short: a short full key costs a hit no allocation.
    buf: KeyText,
}

impl KeyBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: KeyText::on_heap(capacity),
        }
    }

    /// An empty builder for about `capacity` bytes, held inline when that fits
    /// ([`finish_inline`](Self::finish_inline)).
    pub(crate) fn inline(capacity: usize) -> Self {
        Self {
            buf: KeyText::with_capacity(capacity),
        }
    }

    /// A builder of the full key of a call of `cache`: it starts with the cache's
    /// `namespace[:version]:` prefix, with room for `capacity` more bytes (what `#[cached]`
    /// generates; [`finish`](Self::finish) then gives the full key, not a body).
    #[doc(hidden)]
    pub fn for_cache(cache: &crate::Cache, capacity: usize) -> Self {
        let prefix = cache.key_prefix();
        let mut buf = KeyText::with_capacity(prefix.len().saturating_add(capacity));
        buf.push_str(prefix);
        Self { buf }
    }

    /// Appends literal text, unescaped.
    pub fn lit(&mut self, text: &str) -> &mut Self {
        self.buf.push_str(text);
        self
    }

    /// Appends a value, escaped.
    pub fn arg<T: Display + ?Sized>(&mut self, value: &T) -> &mut Self {
        // Writing into a String cannot fail; a Display impl that returns Err leaves
        // whatever it wrote so far, which is still escaped.
        let _ = write!(EscapingWriter(&mut self.buf), "{value}");
        self
    }

    /// The finished body.
    pub fn finish(self) -> String {
        self.buf.into_string()
    }

    /// The finished body, inline when short.
    pub(crate) fn finish_inline(self) -> KeyText {
        self.buf
    }
}

/// Whether a namespace or version segment is acceptable: non-empty ASCII letters, digits,
/// `_`, `-` and `.`.
pub(crate) fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Redis glob matching (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`), byte for byte the
/// semantics of Redis's `stringmatchlen`, used by the in-memory backend for pattern
/// invalidation so that both backends match the same keys.
#[allow(
    clippy::arithmetic_side_effects,
    reason = "indices into the pattern and the string, each at most its length"
)]
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    // Backtracking point for the last `*`: (pattern index after the star, string index).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, i));
                    continue;
                }
                _ if i < s.len() => {
                    if let Some(next_p) = match_one(pattern, p, s[i]) {
                        p = next_p;
                        i += 1;
                        continue;
                    }
                }
                _ => {}
            }
        } else if i == s.len() {
            return true;
        }
        // Mismatch: retry the last star one byte further.
        match star {
            Some((sp, si)) if si < s.len() => {
                star = Some((sp, si + 1));
                p = sp;
                i = si + 1;
            }
            _ => return false,
        }
    }
}

/// Matches one pattern element at `p` against byte `c`; returns the index after it.
#[allow(
    clippy::arithmetic_side_effects,
    reason = "indices into the pattern and the string, each at most its length"
)]
fn match_one(pattern: &[u8], mut p: usize, c: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(p + 2),
        b'[' => {
            p += 1;
            let negate = p < pattern.len() && pattern[p] == b'^';
            if negate {
                p += 1;
            }
            let mut matched = false;
            loop {
                if p >= pattern.len() {
                    // Unterminated class: Redis treats the end as closing it.
                    break;
                }
                match pattern[p] {
                    b']' => {
                        p += 1;
                        break;
                    }
                    b'\\' if p + 1 < pattern.len() => {
                        if pattern[p + 1] == c {
                            matched = true;
                        }
                        p += 2;
                    }
                    lo if p + 2 < pattern.len() && pattern[p + 1] == b'-' => {
                        let hi = pattern[p + 2];
                        let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
                        if (lo..=hi).contains(&c) {
                            matched = true;
                        }
                        p += 3;
                    }
                    other => {
                        if other == c {
                            matched = true;
                        }
                        p += 1;
                    }
                }
            }
            (matched != negate).then_some(p)
        }
        other => (other == c).then_some(p + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_separators_globs_and_controls() {
        assert_eq!(escape("a:b"), "a%3Ab");
        assert_eq!(escape("%3A"), "%253A");
        assert_eq!(escape("*?[]\\{}"), "%2A%3F%5B%5D%5C%7B%7D");
        assert_eq!(escape("a b\n\u{7f}\u{85}"), "a%20b%0A%7F%C2%85");
        assert_eq!(escape("héllo-世界_1.2"), "héllo-世界_1.2");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn escaping_is_injective_on_tricky_pairs() {
        let values = [
            "1:admin",
            "1%3Aadmin",
            "1",
            "admin",
            "1:",
            ":admin",
            "*",
            "%2A",
            "",
        ];
        let escaped: Vec<_> = values.iter().map(|v| escape(v).into_owned()).collect();
        for (i, a) in escaped.iter().enumerate() {
            for b in &escaped[i + 1..] {
                assert_ne!(a, b);
            }
            assert!(!a.contains(':') && !a.contains('*'));
        }
    }

    #[test]
    fn builder_escapes_display_values() {
        let mut k = KeyBuilder::new();
        k.lit("user:").arg(&42u64).lit(":").arg(&"x:y");
        assert_eq!(k.finish(), "user:42:x%3Ay");
    }

    #[test]
    fn glob_matches_like_redis() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes());
        assert!(m("*", ""));
        assert!(m("user:*", "user:1"));
        assert!(!m("user:*", "users:1"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("[abc]x", "bx"));
        assert!(!m("[^abc]x", "bx"));
        assert!(m("[a-c]x", "cx"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("guild:%2A:*", "guild:%2A:roles"));
        assert!(!m("guild:%2A:*", "guild:7:roles"));
        assert!(m("*:end", "a:b:end"));
    }

    #[test]
    fn segments() {
        assert!(valid_segment("cachette"));
        assert!(valid_segment("v2.1-x_y"));
        assert!(!valid_segment(""));
        assert!(!valid_segment("a:b"));
        assert!(!valid_segment("a*"));
        assert!(!valid_segment("a#b"));
    }
}
