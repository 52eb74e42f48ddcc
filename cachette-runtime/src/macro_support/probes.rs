//! The stored type of a `#[cached]` call, and the probe that picks, at compile time, whether the memory store may keep a decoded copy of it.

use super::*;

/// The stored type `S` of a call, and whether its values are kept decoded.
#[derive(Debug)]
pub struct Stored<S> {
    pub(super) decoded: Option<DecodedCopy<S>>,
}

/// Finds out, where the stored type `S` is concrete, whether it is `Clone` (and `Send`,
/// `Sync`, `'static`), without requiring it: the generated code calls
/// `(&&Probe::<User>::new()).stored()` with [`ProbeClone`] and [`ProbeFallback`] in scope
/// (`use <private>::probe::*`). Method resolution picks `ProbeClone` (on `&Probe`, one autoref
/// less) when its bounds hold, and `ProbeFallback` otherwise, which keeps no decoded copy: a
/// memory hit then decodes the stored bytes. Generic code calls [`Probe::none`].
///
/// Method resolution does not look at lifetimes: for a type that is `Clone`, `Send` and `Sync`
/// but not `'static` (a type with a borrowed lifetime, a type parameter without a `'static`
/// bound) it would pick `ProbeClone` and fail to compile. The macro therefore probes only
/// stored types that name no lifetime, reference, `Self`, `impl` type or type parameter.
pub struct Probe<S>(PhantomData<fn() -> S>);

impl<S> fmt::Debug for Probe<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Probe")
    }
}

impl<T> Probe<T> {
    /// A call storing `T` (`-> T`, `-> Result<T, E>`).
    #[inline]
    pub fn new() -> Self {
        Probe(PhantomData)
    }

    /// A call storing `Option<T>` (`-> Option<T>`, `-> Result<Option<T>, E>`).
    #[inline]
    pub fn option() -> Probe<Option<T>> {
        Probe(PhantomData)
    }
}

impl<S> Probe<S> {
    /// No decoded copy (generic code, or a type that cannot be probed).
    #[inline]
    pub fn none(self) -> Stored<S> {
        Stored { decoded: None }
    }
}

impl<T> Default for Probe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// [`Probe`] of a `Clone` type: a decoded copy can be kept.
pub trait ProbeClone<S> {
    /// With a decoded copy.
    fn stored(&self) -> Stored<S>;
}

impl<S: Clone + Send + Sync + 'static> ProbeClone<S> for &Probe<S> {
    #[inline]
    fn stored(&self) -> Stored<S> {
        Stored {
            decoded: Some(DecodedCopy::new()),
        }
    }
}

/// [`Probe`] of any other type: no decoded copy.
pub trait ProbeFallback<S> {
    /// Without a decoded copy.
    fn stored(&self) -> Stored<S>;
}

impl<S> ProbeFallback<S> for Probe<S> {
    #[inline]
    fn stored(&self) -> Stored<S> {
        Stored { decoded: None }
    }
}

/// The probe's traits, for a glob import (`use <private>::probe::*`): anonymous, so that the
/// import brings no name into the function's scope, and a glob, so that whichever trait is
/// picked the import is used.
pub mod probe {
    pub use super::{ProbeClone as _, ProbeFallback as _};
}
