//! What to emit when the attribute or the function is wrong: the user's item unchanged, plus
//! one `compile_error!` per mistake. Callers keep compiling against the function, so the user
//! sees the mistakes in the attribute and not a cascade of "cannot find function" errors.

use darling::Error;
use darling::error::Accumulator;
use proc_macro2::TokenStream;
use quote::quote;

/// The item as it was, and the accumulated errors.
pub(crate) fn emit(item: TokenStream, errors: Accumulator) -> TokenStream {
    emit_errors(item, errors.into_inner())
}

/// The item as it was, and `errors`.
pub(crate) fn emit_errors(item: TokenStream, errors: Vec<Error>) -> TokenStream {
    let errors = if errors.is_empty() {
        TokenStream::new()
    } else {
        Error::multiple(errors).write_errors()
    };
    quote! {
        #item
        #errors
    }
}
