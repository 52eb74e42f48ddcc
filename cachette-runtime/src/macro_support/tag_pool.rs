//! The strings of per-call tags, reused: a `#[cached]` call whose tags interpolate arguments
//! renders them into strings taken from this thread's pool ([`take`]), and gives them back
//! when the call ends ([`give`]), so that a hit with such tags allocates nothing for them.
//! The pool is small and keeps only small strings: a string taken here and never given back
//! (one moved to another thread, a call cancelled) is simply freed.

use std::cell::RefCell;

/// Strings a thread keeps.
const KEPT: usize = 16;
/// The largest capacity kept.
const LARGEST: usize = 256;

thread_local! {
    static POOL: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// An empty string with room for `capacity` bytes: one from the pool when it has one.
#[inline]
pub(crate) fn take(capacity: usize) -> String {
    let pooled = POOL
        .try_with(|pool| pool.try_borrow_mut().ok().and_then(|mut p| p.pop()))
        .ok()
        .flatten();
    match pooled {
        Some(mut s) => {
            s.clear();
            s.reserve(capacity);
            s
        }
        None => String::with_capacity(capacity),
    }
}

/// Gives `s` back to the pool (dropped if the pool is full or `s` is large).
#[inline]
pub(crate) fn give(s: String) {
    if s.capacity() > LARGEST {
        return;
    }
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut()
            && pool.len() < KEPT
        {
            pool.push(s);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_given_back_is_taken_again_cleared() {
        let mut s = take(8);
        s.push_str("user:42");
        let at = s.as_ptr();
        give(s);
        let again = take(4);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), at, "the same buffer");
        give("x".repeat(LARGEST + 1));
        let fresh = take(1);
        assert_ne!(fresh.capacity(), LARGEST + 1, "large strings are not kept");
    }
}
