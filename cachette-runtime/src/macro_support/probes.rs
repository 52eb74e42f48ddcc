//! Decoded copies for `Clone` values: the probe that picks, at compile time, whether the
//! memory store may keep a decoded copy of a stored type.

use super::*;

/// Finds out, where the stored type `T` is concrete, whether it is `Clone` (and `Send`, `Sync`,
/// `'static`), without requiring it: the generated code calls
/// `(&&CloneProbe::<T>::new()).decoded_copy()` with both [`ProbeClone`] and [`ProbeFallback`]
/// in scope. Method resolution picks `ProbeClone` (on `&CloneProbe<T>`, one autoref less) when
/// its bounds hold, and `ProbeFallback` otherwise, which gives `None`: a memory hit then
/// decodes the stored bytes as before. In a generic context the bounds are not known to hold,
/// so the fallback is taken.
///
/// Method resolution does not look at lifetimes: for a type that is `Clone`, `Send` and `Sync`
/// but not `'static` (a type with a borrowed lifetime, a type parameter without a `'static`
/// bound) it would pick `ProbeClone` and fail to compile. The macro therefore probes only
/// stored types that name no lifetime, reference, `Self`, `impl` type or type parameter.
pub struct CloneProbe<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for CloneProbe<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CloneProbe")
    }
}

impl<T> CloneProbe<T> {
    /// A probe of `T`.
    pub fn new() -> Self {
        CloneProbe(PhantomData)
    }
}

impl<T> Default for CloneProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// [`CloneProbe`] of a `Clone` type: a decoded copy can be kept.
pub trait ProbeClone<T> {
    /// `Some`.
    fn decoded_copy(&self) -> Option<DecodedCopy<T>>;
}

impl<T: Clone + Send + Sync + 'static> ProbeClone<T> for &CloneProbe<T> {
    #[inline]
    fn decoded_copy(&self) -> Option<DecodedCopy<T>> {
        Some(DecodedCopy::new())
    }
}

/// [`CloneProbe`] of any other type: no decoded copy.
pub trait ProbeFallback<T> {
    /// `None`.
    fn decoded_copy(&self) -> Option<DecodedCopy<T>>;
}

impl<T> ProbeFallback<T> for CloneProbe<T> {
    #[inline]
    fn decoded_copy(&self) -> Option<DecodedCopy<T>> {
        None
    }
}
