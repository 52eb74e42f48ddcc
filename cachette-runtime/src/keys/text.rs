//! [`KeyText`]: the text of a key being built, held inline while it is short. A call's full
//! key is built into one, so that a hit of a short key allocates nothing for it; it becomes a
//! `String` only where one is kept (a miss, a fill, a flight).

use std::fmt;

/// Bytes of text held inline.
const INLINE: usize = 46;

/// Text held inline up to 46 bytes, on the heap beyond (see the module's documentation).
#[derive(Clone, Default)]
pub struct KeyText(Repr);

#[derive(Clone)]
enum Repr {
    /// Short text: its bytes (always UTF-8: only whole `&str`s are appended).
    Inline { len: u8, bytes: [u8; INLINE] },
    /// Longer text.
    Heap(String),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
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
            Repr::Inline { len, bytes } => {
                let at = usize::from(*len);
                let end = at.saturating_add(s.len());
                if let Some(to) = bytes.get_mut(at..end) {
                    to.copy_from_slice(s.as_bytes());
                    *len = u8::try_from(end).unwrap_or(u8::MAX);
                } else {
                    let mut text = String::with_capacity(end.saturating_mul(2));
                    text.push_str(self.as_str());
                    text.push_str(s);
                    self.0 = Repr::Heap(text);
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
            Repr::Inline { len, bytes } => {
                let text = bytes.get(..usize::from(*len)).unwrap_or_default();
                std::str::from_utf8(text).unwrap_or_default()
            }
            Repr::Heap(text) => text,
        }
    }

    /// The text as a `String` (allocated now when it was inline).
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Heap(text) => text,
            Repr::Inline { .. } => self.as_str().to_owned(),
        }
    }
}

impl From<String> for KeyText {
    fn from(text: String) -> Self {
        KeyText(Repr::Heap(text))
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
        assert!(matches!(t.0, Repr::Inline { .. }));
        assert_eq!(t.as_str(), "ns:éuser:42");
        let long = "x".repeat(INLINE);
        t.push_str(&long);
        assert!(matches!(t.0, Repr::Heap(_)));
        assert_eq!(t.as_str(), format!("ns:éuser:42{long}"));
        assert_eq!(t.clone().into_string(), t.as_str());

        let mut exact = KeyText(Repr::default());
        exact.push_str(&long);
        assert!(
            matches!(exact.0, Repr::Inline { .. }),
            "exactly the inline room"
        );
        assert_eq!(exact.into_string(), long);
        assert!(matches!(
            KeyText::with_capacity(INLINE + 1).0,
            Repr::Heap(_)
        ));
    }
}
