//! The error collector, in the manner of serde's `internals/ctxt.rs`: every stage (the
//! options in `args/`, the function in `ast/`, the checks in `plan.rs`, the templates, the
//! builders) pushes its `syn::Error`s into one [`Ctxt`] shared by reference, and the entry
//! point checks it once ([`Ctxt::check`]), so that a user with three mistakes sees three
//! errors. darling's errors (what its `NestedMeta` and the value parsers of `args/values.rs`
//! return) are converted as darling itself writes them, so a message and its span are the
//! same whichever way it arrives.
//!
//! Unlike serde's, dropping an unchecked `Ctxt` does not panic (this crate does not panic on
//! any path): [`Ctxt::check`] takes it by value and the type is `#[must_use]`.

use std::cell::RefCell;

/// The errors collected so far, in the order they were found.
#[must_use = "the errors are reported only by `Ctxt::check`"]
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds an error: a `syn::Error`, or a `darling::Error` (each of its errors, in order).
    pub(crate) fn push(&self, error: impl Into<syn::Error>) {
        self.errors.borrow_mut().push(error.into());
    }

    /// The value of `Ok`; an `Err` is collected and gives `None`.
    pub(crate) fn handle<T, E: Into<syn::Error>>(&self, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    /// How many errors were collected (to tell whether a step added one).
    pub(crate) fn len(&self) -> usize {
        self.errors.borrow().len()
    }

    /// Every error collected, combined into one (`syn::Error::combine`), or `Ok` if none.
    pub(crate) fn check(self) -> Result<(), syn::Error> {
        let mut errors = self.errors.into_inner().into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for e in errors {
            combined.combine(e);
        }
        Err(combined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    fn messages(result: Result<(), syn::Error>) -> Vec<String> {
        match result {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn nothing_collected_checks_ok() {
        let cx = Ctxt::new();
        assert_eq!(cx.len(), 0);
        assert!(cx.check().is_ok());
    }

    #[test]
    fn every_stage_s_errors_come_out_together_in_order() {
        let cx = Ctxt::new();
        cx.push(syn::Error::new(Span::call_site(), "from args"));
        cx.push(darling::Error::custom("from darling").with_span(&Span::call_site()));
        let parsed: Option<u8> = cx.handle(Err(syn::Error::new(Span::call_site(), "from ast")));
        assert!(parsed.is_none());
        assert_eq!(cx.handle(Ok::<u8, syn::Error>(7)), Some(7));
        assert_eq!(cx.len(), 3);
        assert_eq!(
            messages(cx.check()),
            ["from args", "from darling", "from ast"]
        );
    }

    #[test]
    fn a_darling_error_with_several_counts_as_one_push_and_keeps_them_all() {
        let cx = Ctxt::new();
        cx.push(darling::Error::multiple(vec![
            darling::Error::custom("first").with_span(&Span::call_site()),
            darling::Error::custom("second").with_span(&Span::call_site()),
        ]));
        assert_eq!(messages(cx.check()), ["first", "second"]);
    }
}
