//! Code generation of `#[cache_put(key = ...)]`: refuse the capture modes, build the key and
//! the options (a `static` site, as `#[cached]`'s), run the body, then write the value
//! through (after `Ok`/`Some`) with `Put`, whose bound reports a value that cannot be cached
//! at the return type. `#[cache_put(call)]` is `coupled.rs`'s.

use super::{cache_init, cached, local, respan, stored_marker, stored_span, template_expr};
use crate::args::{CachePutArgs, Freshness};
use crate::ast::{Func, Shape};
use crate::plan::Plan;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// The body of a `#[cache_put(key = ...)]` function.
pub(super) fn body(
    args: &CachePutArgs,
    func: &Func,
    plan: &Plan,
    p: &TokenStream,
    name: &TokenStream,
    fake: &TokenStream,
    block: &TokenStream,
) -> TokenStream {
    let cache = local("__cachette_cache");
    let ret = local("__cachette_ret");
    let cache_init = cache_init(&args.common, p);
    let key = local("__cachette_key");
    let opts = local("__cachette_opts");
    let key_expr = plan
        .key
        .as_ref()
        .map(|r| template_expr(r, p))
        .unwrap_or_default();
    let site_ident = syn::Ident::new("__CACHETTE_SITE", Span::call_site());
    let site = cached::site(
        &args.common,
        args.ttl.as_ref(),
        &Freshness::default(),
        None,
        func,
        plan,
        p,
    );
    let tags = cached::call_tags(&plan.tags, p);
    let marker = stored_marker(func, plan.shape);
    let span = stored_span(func, plan.shape);
    let which = match plan.shape {
        Shape::Plain => syn::Ident::new("plain", span),
        Shape::Result | Shape::ResultOption => syn::Ident::new("fallible", span),
        Shape::Option => syn::Ident::new("optional", span),
    };
    let ps = respan(p, span);
    let put = quote_spanned!(span=>
        #ps::Put::checked(#marker).#which(&#cache, &#key, &#ret, &#opts).await
    );
    quote! {
        static #site_ident: #p::Site = #site;
        #p::refuse_capture(#name).await;
        let #cache = #cache_init;
        let #key: ::std::string::String = #key_expr;
        let #opts = #p::put_options(&#site_ident, #tags);
        let #ret = async move {
            #fake
            #block
        }
        .await;
        #put;
        #ret
    }
}
