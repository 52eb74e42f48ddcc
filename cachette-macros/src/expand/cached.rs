//! Code generation of `#[cached]`: one `static` site (what the attribute fixes) and one call
//! of the runtime's `cached` entry point with a `CachedCall`:
//!
//! ```text
//! use ::cachette::__private0_1::cached::{self as __cachette, probe::*};
//! static __CACHETTE_SITE: __cachette::Site = __cachette::Site::new("app::get_user").ttl(600, 0);
//! __cachette::cached(__cachette::CachedCall {
//!     cache: __cachette::cache_ref(&(self.cache)),
//!     key: (__cachette::arg(&self.tenant), ":user:", __cachette::int(id)),
//!     tags: ("users", ("user:", __cachette::int(id))),
//!     site: &__CACHETTE_SITE,
//!     stored: (&&__cachette::Probe::<User>::new()).stored(),
//! })
//! .run_result(move || async move { <fake return> <the body's statements> })
//! .await
//! ```
//!
//! `cached` builds the key and the tags (the placeholders borrow the arguments until then);
//! `run_result` (one `run_*` per return shape, bounding the stored type) takes the body,
//! which may move them.
//! ```text
//! ```

use super::{name_tokens, respan, template_parts};
use crate::args::{CacheNone, CachedArgs, Common, Freshness, TtlSpec};
use crate::ast::{self, Func, Shape};
use crate::plan::{Plan, Resolved};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// The body of a `#[cached]` function. `p` is the alias of `<crate>::__private0_1::cached` the body
/// imports (`private` the path itself); `compute` the closure running the body.
pub(super) fn body(
    args: &CachedArgs,
    func: &Func,
    plan: &Plan,
    private: &TokenStream,
    p: &TokenStream,
    compute: &TokenStream,
) -> TokenStream {
    let site_ident = syn::Ident::new("__CACHETTE_SITE", Span::call_site());
    let site = site(
        &args.common,
        args.ttl.as_ref(),
        &args.fresh,
        args.cache_none.as_ref(),
        func,
        plan,
        p,
    );
    let cache = cache(&args.common, func, p);
    let key = match &plan.key {
        Some(r) => template_parts(r, p),
        None => hash_key(func, &plan.hashed, p),
    };
    let tags = call_tags(&plan.tags, p);
    let span = stored_span(func, plan.shape);
    let (stored, probe) = stored(func, plan.shape, p);
    let import = if probe {
        quote!(use #private::{self as #p, probe::*};)
    } else {
        quote!(use #private as #p;)
    };
    let run = match plan.shape {
        Shape::Plain => "run_plain",
        Shape::Result => "run_result",
        Shape::Option => "run_option",
        Shape::ResultOption => "run_result_option",
    };
    let background = if args.fresh.background.is_some() {
        "_background"
    } else {
        ""
    };
    let run = syn::Ident::new(&format!("{run}{background}"), span);
    let ps = respan(p, span);
    // The call, spanned at the stored type: `run_*` bounds it (`T: CacheValue`).
    let call = quote_spanned! {span=>
        #ps::cached(#ps::CachedCall {
            cache: #cache,
            key: #key,
            tags: #tags,
            site: &#site_ident,
            stored: #stored,
        })
        .#run(#compute)
        .await
    };
    quote! {
        #import
        static #site_ident: #p::Site = #site;
        #call
    }
}

/// No tag interpolates anything: the tags belong to the site, and its options are built once.
fn constant(tags: &[Resolved]) -> bool {
    tags.iter().all(|t| t.template.holes().next().is_none())
}

/// The tags built per call (`()` when none interpolates anything: they are the site's).
pub(super) fn call_tags(tags: &[Resolved], p: &TokenStream) -> TokenStream {
    if constant(tags) {
        quote!(())
    } else {
        tag_list(tags, p)
    }
}

/// The tags built per call: a tuple of templates, or past 12 an array of strings.
fn tag_list(tags: &[Resolved], p: &TokenStream) -> TokenStream {
    let parts = tags.iter().map(|t| template_parts(t, p));
    if tags.len() <= 12 {
        quote!((#(#parts,)*))
    } else {
        quote!([#(#p::string(#parts)),*])
    }
}

/// `Site::new(name)` and what the attribute fixes, as `const fn` builder calls (`#[cache_put]`
/// has no freshness options and no `cache_none`: it passes the defaults).
pub(super) fn site(
    common: &Common,
    ttl: Option<&TtlSpec>,
    f: &Freshness,
    cache_none: Option<&CacheNone>,
    func: &Func,
    plan: &Plan,
    p: &TokenStream,
) -> TokenStream {
    let name = name_tokens(common, func);
    let mut out = quote!(#p::Site::new(#name));
    match ttl {
        Some(TtlSpec::Fixed(d)) => {
            let (s, n) = (d.as_secs(), d.subsec_nanos());
            out.extend(quote!(.ttl(#s, #n)));
        }
        Some(TtlSpec::Profile(name)) => out.extend(quote!(.profile(#name))),
        None => {}
    }
    if !plan.tags.is_empty() && constant(&plan.tags) {
        let lits = plan.tags.iter().map(|t| t.template.literal());
        out.extend(quote!(.tags(&[#(#lits),*])));
    }
    let pair = |d: std::time::Duration| {
        let (s, n) = (d.as_secs(), d.subsec_nanos());
        quote!((#s, #n))
    };
    if let Some(d) = f.stale {
        let (s, n) = (d.as_secs(), d.subsec_nanos());
        out.extend(quote!(.stale(#s, #n)));
    }
    if let Some(d) = f.stale_if_error {
        let (s, n) = (d.as_secs(), d.subsec_nanos());
        out.extend(quote!(.stale_if_error(#s, #n)));
    }
    if let Some(j) = f.jitter {
        out.extend(quote!(.jitter(#j)));
    }
    match f.early_refresh {
        Some(None) => out.extend(quote!(.early_refresh(::core::option::Option::None))),
        Some(Some(beta)) => {
            out.extend(quote!(.early_refresh(::core::option::Option::Some(#beta))));
        }
        None => {}
    }
    if let Some((ttl, wait)) = f.lock {
        let (ttl, wait) = (pair(ttl), pair(wait));
        out.extend(quote!(.lock(#ttl, #wait)));
    }
    if let Some(on) = f.single_flight {
        out.extend(quote!(.single_flight(#on)));
    }
    if let Some(cn) = cache_none {
        match &cn.ttl {
            Some(TtlSpec::Fixed(d)) => {
                let d = pair(*d);
                out.extend(quote!(.cache_none(::core::option::Option::Some(#d))));
            }
            Some(TtlSpec::Profile(name)) => out.extend(quote!(.none_profile(#name))),
            None => out.extend(quote!(.cache_none(::core::option::Option::None))),
        }
    }
    out
}

/// The cache, as a `&Cache` when borrowing it cannot conflict with the body's moves
/// (`ast::cache_borrowable`; a temporary, such as the result of `current()`, lives until
/// the call's `.await` ends), an `Arc` clone otherwise. Spanned at the expression: a cache of
/// the wrong type is reported there.
fn cache(common: &Common, func: &Func, p: &TokenStream) -> TokenStream {
    match &common.cache {
        Some(expr) if ast::cache_borrowable(expr, func) => {
            quote_spanned!(expr.span()=> #p::cache_ref(&(#expr)))
        }
        Some(expr) => quote_spanned!(expr.span()=> #p::cache_of(&(#expr))),
        None => quote!(#p::default_cache_ref()),
    }
}

/// Hash mode: `path:hash(Self, type params, const params, arguments)`.
fn hash_key(func: &Func, hashed: &[syn::Ident], p: &TokenStream) -> TokenStream {
    let h = super::local("__cachette_h");
    let fn_name = func.item.sig.ident.to_string();
    let this = func.has_self.then(|| quote!(#h.ty::<Self>();));
    let types = func.type_params.iter().map(|t| quote!(#h.ty::<#t>();));
    let consts = func.const_params.iter().map(|c| quote!(#h.arg(&#c);));
    let args = hashed
        .iter()
        .map(|a| quote_spanned!(a.span()=> #p::HashKey::arg(&mut #h, &#a);));
    quote!({
        let mut #h = #p::HashKey::new(::core::concat!(::core::module_path!(), "::", #fn_name));
        #this
        #(#types)*
        #(#consts)*
        #(#args)*
        #h
    })
}

/// The stored type's span (the user's return type, or its `Ok`/`Some` type): the entry point
/// is spanned there, so that a type that is not cacheable is reported there.
pub(super) fn stored_span(func: &Func, shape: Shape) -> Span {
    func.stored_type(shape)
        .map_or_else(|| func.ret_span(), Spanned::span)
}

/// `stored`: the stored type, probed for `Clone` when it can be (`ast::probe_clone`);
/// and whether it is probed.
fn stored(func: &Func, shape: Shape, p: &TokenStream) -> (TokenStream, bool) {
    let new = match shape {
        Shape::Plain | Shape::Result => quote!(new),
        Shape::Option | Shape::ResultOption => quote!(option),
    };
    let Some(ty) = func.stored_type(shape) else {
        return (quote!(#p::Probe::#new().none()), false);
    };
    let probe = quote_spanned!(ty.span()=> #p::Probe::<#ty>::#new());
    if ast::probe_clone(ty, func) {
        (quote!((&&#probe).stored()), true)
    } else {
        (quote!(#probe.none()), false)
    }
}
