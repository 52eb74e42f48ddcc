//! What to emit when the attribute or the function is wrong: the user's item unchanged, plus
//! one `compile_error!` per mistake. Callers keep compiling against the function, so the user
//! sees the mistakes in the attribute and not a cascade of "cannot find function" errors.

use proc_macro2::TokenStream;
use quote::quote;

/// The item as it was, and the errors (`Ctxt::check`'s, combined) when there are any.
pub(crate) fn emit(item: TokenStream, errors: Option<syn::Error>) -> TokenStream {
    let errors = errors.map(syn::Error::into_compile_error);
    quote! {
        #item
        #errors
    }
}
