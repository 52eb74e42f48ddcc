//! Code generation of `#[invalidates]`: refuse the capture modes, evaluate the cache, the
//! calls (captured before the body) and the templates, run the body, then (after `Ok` for a
//! `Result`) invalidate tags, keys, calls and patterns through the runtime's `invalidate`.

use super::{cache_init, local, template_expr};
use crate::args::InvalidatesArgs;
use crate::plan::Plan;
use proc_macro2::TokenStream;
use quote::quote;

/// The body of an `#[invalidates]` function.
pub(super) fn body(
    args: &InvalidatesArgs,
    plan: &Plan,
    p: &TokenStream,
    name: &TokenStream,
    fake: &TokenStream,
    block: &TokenStream,
) -> TokenStream {
    let cache = local("__cachette_cache");
    let ret = local("__cachette_ret");
    let cache_init = cache_init(&args.common, p);
    let arrays = [
        (local("__cachette_tags"), &plan.tags),
        (local("__cachette_keys"), &plan.keys),
        (local("__cachette_patterns"), &plan.patterns),
    ];
    let lets = arrays.iter().map(|(ident, list)| {
        let n = list.len();
        let exprs = list.iter().map(|t| template_expr(t, p));
        quote!(let #ident: [::std::string::String; #n] = [#(#exprs),*];)
    });
    let [(tags, _), (keys, _), (patterns, _)] = &arrays;
    let calls = local("__cachette_calls");
    let calls_let = crate::coupled::capture_calls(&args.calls, &calls, p);
    let only_calls = plan.tags.is_empty() && plan.keys.is_empty() && plan.patterns.is_empty();
    let (cache_let, run) = if only_calls {
        // No template to apply: the calls name their own caches.
        (
            TokenStream::new(),
            quote!(#p::invalidate_calls(#name, &#calls).await;),
        )
    } else {
        (
            quote!(let #cache = #cache_init;),
            quote! {
                #p::invalidate(&#cache, #name, #p::Invalidation {
                    tags: &#tags,
                    keys: &#keys,
                    patterns: &#patterns,
                    calls: &#calls,
                })
                .await;
            },
        )
    };
    let after = if plan.shape.is_result() {
        quote!(if ::core::result::Result::is_ok(&#ret) { #run })
    } else {
        run
    };
    quote! {
        #p::refuse_capture(#name).await;
        #cache_let
        #calls_let
        #(#lets)*
        let #ret = async move {
            #fake
            #block
        }
        .await;
        #after
        #ret
    }
}
