//! The stored type of a `#[cached]` call: its shape (which `run` and return policy apply),
//! and the probe that picks, at compile time, whether the memory store may keep a decoded copy of it.

use super::*;

/// `-> T`: the value is stored.
#[derive(Debug)]
pub struct PlainShape;

/// `-> Result<T, E>`: only `Ok` is stored.
#[derive(Debug)]
pub struct ResultShape;

/// `-> Option<T>`: `Some` is stored, `None` only with `cache_none`.
#[derive(Debug)]
pub struct OptionShape;

/// `-> Result<Option<T>, E>`: `Ok(Some)` is stored, `Ok(None)` only with `cache_none`, `Err`
/// never.
#[derive(Debug)]
pub struct ResultOptionShape;

/// The stored type `S` of a call of shape `P`, and whether its values are kept decoded.
#[derive(Debug)]
pub struct Stored<S, P> {
    pub(super) decoded: Option<DecodedCopy<S>>,
    shape: PhantomData<P>,
}

/// Finds out, where the stored type `S` is concrete, whether it is `Clone` (and `Send`,
/// `Sync`, `'static`), without requiring it: the generated code calls
/// `(&&result::<User>()).stored()` with [`ProbeClone`] and [`ProbeFallback`] in scope
/// (`use <private>::probe::*`). Method resolution picks `ProbeClone` (on `&Probe`, one autoref
/// less) when its bounds hold, and `ProbeFallback` otherwise, which keeps no decoded copy: a
/// memory hit then decodes the stored bytes. Generic code calls [`Probe::none`].
///
/// Method resolution does not look at lifetimes: for a type that is `Clone`, `Send` and `Sync`
/// but not `'static` (a type with a borrowed lifetime, a type parameter without a `'static`
/// bound) it would pick `ProbeClone` and fail to compile. The macro therefore probes only
/// stored types that name no lifetime, reference, `Self`, `impl` type or type parameter.
pub struct Probe<S, P>(PhantomData<fn() -> (S, P)>);

impl<S, P> fmt::Debug for Probe<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Probe")
    }
}

impl<S, P> Probe<S, P> {
    /// No decoded copy (generic code, or a type that cannot be probed).
    #[inline]
    pub fn none(self) -> Stored<S, P> {
        Stored {
            decoded: None,
            shape: PhantomData,
        }
    }
}

/// A `-> T` call storing `T`.
#[inline]
pub fn plain<T>() -> Probe<T, PlainShape> {
    Probe(PhantomData)
}

/// A `-> Result<T, E>` call storing `T`.
#[inline]
pub fn result<T>() -> Probe<T, ResultShape> {
    Probe(PhantomData)
}

/// A `-> Option<T>` call storing `Option<T>`.
#[inline]
pub fn option<T>() -> Probe<Option<T>, OptionShape> {
    Probe(PhantomData)
}

/// A `-> Result<Option<T>, E>` call storing `Option<T>`.
#[inline]
pub fn result_option<T>() -> Probe<Option<T>, ResultOptionShape> {
    Probe(PhantomData)
}

/// [`Probe`] of a `Clone` type: a decoded copy can be kept.
pub trait ProbeClone<S, P> {
    /// With a decoded copy.
    fn stored(&self) -> Stored<S, P>;
}

impl<S: Clone + Send + Sync + 'static, P> ProbeClone<S, P> for &Probe<S, P> {
    #[inline]
    fn stored(&self) -> Stored<S, P> {
        Stored {
            decoded: Some(DecodedCopy::new()),
            shape: PhantomData,
        }
    }
}

/// [`Probe`] of any other type: no decoded copy.
pub trait ProbeFallback<S, P> {
    /// Without a decoded copy.
    fn stored(&self) -> Stored<S, P>;
}

impl<S, P> ProbeFallback<S, P> for Probe<S, P> {
    #[inline]
    fn stored(&self) -> Stored<S, P> {
        Stored {
            decoded: None,
            shape: PhantomData,
        }
    }
}

/// The probe's traits, for a glob import (`use <private>::probe::*`): anonymous, so that the
/// import brings no name into the function's scope, and a glob, so that whichever trait is
/// picked the import is used.
pub mod probe {
    pub use super::{ProbeClone as _, ProbeFallback as _};
}
