//! [`KeyText`]: the text of a key being built, held inline while it is short. A call's full
//! key is built into one, so that a hit of a short key allocates nothing for it; it becomes a
//! `String` only where one is kept (a miss, a fill, a flight).

use arrayvec::ArrayString;
use std::fmt;

/// Bytes of text held inline.
const INLINE: usize = 46;

/// Text held inline up to 46 bytes, on the heap beyond (see the module's documentation).
#[derive(Clone, Default)]
pub struct KeyText(Repr);

#[derive(Clone)]
enum Repr {
    /// Short text (`ArrayString` hands it out as `&str` without checking it again).
    Inline(ArrayString<INLINE>),
    /// Longer text.
    Heap(String),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Inline(ArrayString::new())
    }
}

impl KeyText {
    /// Empty text for about `capacity` bytes: inline when that fits, on the heap otherwise.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        if capacity <= INLINE {
            KeyText(Repr::default())
        } else {
            KeyText(Repr::Heap(String::with_capacity(capacity)))
        }
    }

    /// Empty text on the heap, with room for `capacity` bytes (text that will be kept as a
    /// `String`).
    pub(crate) fn on_heap(capacity: usize) -> Self {
        KeyText(Repr::Heap(String::with_capacity(capacity)))
    }

    /// Appends `s`.
    #[inline]
    pub(crate) fn push_str(&mut self, s: &str) {
        match &mut self.0 {
            Repr::Inline(text) => {
                if text.try_push_str(s).is_err() {
                    let mut heap =
                        String::with_capacity(text.len().saturating_add(s.len()).saturating_mul(2));
                    heap.push_str(text);
                    heap.push_str(s);
                    self.0 = Repr::Heap(heap);
                }
            }
            Repr::Heap(text) => text.push_str(s),
        }
    }

    /// Appends `c`.
    #[inline]
    pub(crate) fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0u8; 4]));
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(text) => text,
            Repr::Heap(text) => text,
        }
    }

    /// The text as a `String` (allocated now when it was inline).
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Heap(text) => text,
            Repr::Inline(text) => text.as_str().to_owned(),
        }
    }
}

impl From<String> for KeyText {
    fn from(text: String) -> Self {
        KeyText(Repr::Heap(text))
    }
}

impl AsRef<str> for KeyText {
    #[inline]
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_stays_inline_and_long_text_moves_to_the_heap() {
        let mut t = KeyText::with_capacity(10);
        t.push_str("ns:");
        t.push('é');
        t.push_str("user:42");
        assert!(matches!(t.0, Repr::Inline(_)));
        assert_eq!(t.as_str(), "ns:éuser:42");
        let long = "x".repeat(INLINE);
        t.push_str(&long);
        assert!(matches!(t.0, Repr::Heap(_)));
        assert_eq!(t.as_str(), format!("ns:éuser:42{long}"));
        assert_eq!(t.clone().into_string(), t.as_str());

        let mut exact = KeyText(Repr::default());
        exact.push_str(&long);
        assert!(
            matches!(exact.0, Repr::Inline(_)),
            "exactly the inline room"
        );
        assert_eq!(exact.into_string(), long);
        assert!(matches!(
            KeyText::with_capacity(INLINE + 1).0,
            Repr::Heap(_)
        ));
    }
}
