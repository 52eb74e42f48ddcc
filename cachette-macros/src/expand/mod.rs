//! Code generation. The generated code builds the key, the tags and the options, and calls one
//! function of `<crate>::__private0_1`; behaviour lives in the runtime.

use crate::args::{self, Args, Common, Kind, TtlSpec};
mod cache_put;
mod cached;
mod invalidates;

use crate::ast::{self, Func, Shape, has_impl_trait};
use crate::ctxt::Ctxt;
use crate::fallback;
use crate::plan::{Plan, Resolved};
use crate::template::Part;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

/// Names of the generated locals: mixed-site hygiene, so that they never collide with the
/// user's arguments (`key`, `cache`, `value`, `ttl`, `opts`...).
pub(crate) fn local(name: &str) -> syn::Ident {
    syn::Ident::new(name, Span::mixed_site())
}

/// Entry point of the three attributes.
pub(crate) fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let args = args::parse(kind, attr, &cx);
    let func = match ast::parse_item(kind, item, &cx) {
        Ok(func) => func,
        Err(tokens) => return fallback::emit(tokens, cx.check().err()),
    };
    let plan = crate::plan::check(&args, &func, &cx);
    match (plan, cx.check()) {
        (Some(plan), Ok(())) => generate(&args, &func, &plan),
        (_, checked) => fallback::emit(func.item.to_token_stream(), checked.err()),
    }
}

/// The module of `<crate>` that generated code calls: `__private{MAJOR}_{MINOR}`, the
/// runtime's version (the workspace's, which the macros share and pin with `=`), as thiserror
/// names its `__private` module, so that mismatched crates fail with a clear "not found".
pub(crate) fn versioned_private(krate: &TokenStream) -> TokenStream {
    let version = syn::Ident::new(
        &format!(
            "__private{}_{}",
            env!("CARGO_PKG_VERSION_MAJOR"),
            env!("CARGO_PKG_VERSION_MINOR")
        ),
        Span::call_site(),
    );
    quote!(#krate::#version)
}

/// `<crate>::__private{version}::<the attribute's module>`.
fn private(kind: Kind, common: &Common) -> TokenStream {
    let krate = common
        .krate
        .as_ref()
        .map_or_else(|| quote!(::cachette), ToTokens::to_token_stream);
    let base = versioned_private(&krate);
    let job = syn::Ident::new(
        match kind {
            Kind::Cached => "cached",
            Kind::Invalidates => "invalidates",
            Kind::CachePut => "cache_put",
        },
        Span::call_site(),
    );
    quote!(#base::#job)
}

/// An expression of type `String` building the template.
fn template_expr(r: &Resolved, p: &TokenStream) -> TokenStream {
    if r.template.holes().next().is_none() {
        let lit = r.template.literal();
        return quote!(::std::string::String::from(#lit));
    }
    let parts = template_parts(r, p);
    quote!(#p::string(#parts))
}

/// The template as the runtime's `Template`: a literal is a string, a placeholder
/// `arg(&value)` (escaped) or `int(&value)` (a primitive integer's digits), each spanned at
/// the placeholder; several parts are a tuple, nested past 12.
pub(super) fn template_parts(r: &Resolved, p: &TokenStream) -> TokenStream {
    let mut exprs = r.exprs.iter();
    let mut parts = Vec::new();
    for part in &r.template.parts {
        match part {
            Part::Lit(s) => parts.push(quote!(#s)),
            Part::Hole(h) => match exprs.next() {
                Some((e, true)) => parts.push(quote_spanned!(h.span=> #p::int(#e))),
                Some((e, false)) => {
                    // The whole argument at the placeholder, so that an error points there.
                    let e = respan(e, h.span);
                    parts.push(quote_spanned!(h.span=> #p::arg(&#e)));
                }
                None => {}
            },
        }
    }
    group(parts)
}

/// One part as itself, several as a tuple of at most 12 (the runtime's impls), nested.
pub(crate) fn group(mut parts: Vec<TokenStream>) -> TokenStream {
    while parts.len() > 12 {
        parts = parts
            .chunks(12)
            .map(|c| match c {
                [one] => one.clone(),
                _ => quote!((#(#c),*)),
            })
            .collect();
    }
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        // `()` (an empty template) or a tuple.
        quote!((#(#parts),*))
    }
}

fn name_tokens(common: &Common, func: &Func) -> TokenStream {
    match &common.name {
        Some(lit) => quote!(#lit),
        None => {
            let fn_name = func.item.sig.ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #fn_name))
        }
    }
}

fn cache_init(common: &Common, p: &TokenStream) -> TokenStream {
    match &common.cache {
        Some(expr) => quote_spanned!(expr.span()=> #p::cache_of(&(#expr))),
        None => quote!(#p::default_cache_ref()),
    }
}

/// `if false { return <fake value of the return type>; }`: fixes the type of the async block
/// the body is moved into (so that `?` and `return` type-check as in the original function).
fn fake_return(func: &Func, p: &TokenStream) -> TokenStream {
    match func.ret_type() {
        Some(ty) if !has_impl_trait(ty) => quote_spanned!(ty.span()=>
            if false {
                return #p::fake_return::<#ty>();
            }
        ),
        _ => TokenStream::new(),
    }
}

/// `PhantomData::<Stored>` spanned at the stored type: the helpers the generated code calls
/// bound the stored type through this marker argument, so that a type that is not cacheable is
/// reported at the user's return type.
fn stored_span(func: &Func, shape: Shape) -> Span {
    func.stored_type(shape)
        .map_or_else(|| func.ret_span(), Spanned::span)
}

/// `tokens` (a path) with every token at `span`.
pub(crate) fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect()
}

fn stored_marker(func: &Func, shape: Shape) -> TokenStream {
    match func.stored_type(shape) {
        Some(ty) => quote_spanned!(ty.span()=> ::core::marker::PhantomData::<#ty>),
        None => quote!(::core::marker::PhantomData),
    }
}

fn generate(args: &Args, func: &Func, plan: &Plan) -> TokenStream {
    let kind = args.kind();
    let p = private(kind, args.common());
    let syn::ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = &func.item;
    // The body's statements, not its block: a one-line body (`{ Ok(id) }`) moved whole into
    // the async block below would be a braced tail expression, which rustc's
    // `unused_braces` lint reports at the user's braces.
    let stmts = &block.stmts;
    let block = quote!(#(#stmts)*);
    // Inner attributes of the body (`#![allow(...)]` after the `{`) stay inside the body.
    let (outer, inner): (Vec<_>, Vec<_>) = attrs
        .iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
    let fake = fake_return(func, &p);
    let name = name_tokens(args.common(), func);
    let body = match args {
        Args::Cached(args) => {
            let alias = quote!(__cachette);
            let fake = fake_return(func, &alias);
            let compute = quote! {
                move || async move {
                    #fake
                    #block
                }
            };
            cached::body(args, func, plan, &p, &alias, &compute)
        }
        Args::Invalidates(args) => invalidates::body(args, plan, &p, &name, &fake, &block),
        Args::CachePut(args) if args.call.is_some() => {
            crate::coupled::put_body(args, plan.shape, &p, &name, &fake, &block)
        }
        Args::CachePut(args) => cache_put::body(args, func, plan, &p, &name, &fake, &block),
    };
    let profiles = profile_registrations(args, func, &p);
    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #profiles
            #body
        }
    }
}

/// The TTL profiles the attribute names (`ttl`, `cache_none(ttl = ...)`), registered at link
/// time so that building a cache reports those defined nowhere (the runtime's `profiles.rs`).
/// Items in the function's body: they are linked with the function.
fn profile_registrations(args: &Args, func: &Func, p: &TokenStream) -> TokenStream {
    let fn_name = func.item.sig.ident.to_string();
    let mut names: Vec<&str> = Vec::new();
    for ttl in args.ttls() {
        if let TtlSpec::Profile(name) = ttl
            && !names.contains(&name.as_str())
        {
            names.push(name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            quote! {
                #p::inventory::submit! {
                    #p::ProfileUse::new(
                        #name,
                        ::core::concat!(::core::module_path!(), "::", #fn_name),
                    )
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `#[cached]` method with a templated key, a TTL, constant and per-call tags, and a
    /// cache expression: the attribute's arguments and the item.
    fn user_fixture() -> (TokenStream, TokenStream) {
        let attr = quote!(
            key = "{self.tenant}:user:{id}",
            ttl = "10m",
            tags = ["users", "user:{id}"],
            cache = self.cache
        );
        let item = quote! {
            async fn user(&self, id: u64) -> Result<User, AppError> {
                Ok(User { id })
            }
        };
        (attr, item)
    }

    /// The generated code names nothing of cachette outside `__private0_1::cached`, and is printed for
    /// review with `cargo test -p cachette-macros expansion -- --nocapture`.
    #[test]
    fn expansion_calls_only_private() {
        let (attr, item) = user_fixture();
        let out = expand(Kind::Cached, attr, item).to_string();
        println!("{out}");
        assert!(!out.contains("compile_error"));
        let uses: Vec<&str> = out
            .match_indices(":: cachette ::")
            .map(|(i, _)| &out[i..])
            .collect();
        assert!(!uses.is_empty());
        assert!(
            uses.iter()
                .all(|u| u.starts_with(":: cachette :: __private0_1 :: cached"))
        );
    }

    /// The expansion is thin: an import, the site, one call of the runtime; the cache is
    /// derived once (by the runtime), and few runtime items are named.
    #[test]
    fn expansion_is_thin() -> syn::Result<()> {
        let (attr, item) = user_fixture();
        let func = syn::parse2::<syn::ItemFn>(expand(Kind::Cached, attr, item))?;
        // `use`, `static`, and the call.
        assert_eq!(func.block.stmts.len(), 3);
        let text = func.block.to_token_stream().to_string();
        assert!(!text.contains("as_cache"), "{text}");
        let mut named: Vec<&str> = text
            .match_indices("__cachette ::")
            .filter_map(|(i, _)| text[i + 14..].split_whitespace().next())
            .collect();
        named.sort_unstable();
        named.dedup();
        assert!(named.len() <= 9, "{named:?}");
        Ok(())
    }

    /// A profile is registered at link time through `__private0_1`'s `inventory`.
    #[test]
    fn profiles_are_registered_through_private() {
        let out = expand(
            Kind::Cached,
            quote!(
                key = "u:{id}",
                ttl = profile("session"),
                cache_none(ttl = profile("gone"))
            ),
            quote!(
                async fn f(id: u64) -> Option<u8> {
                    None
                }
            ),
        )
        .to_string();
        assert!(!out.contains("compile_error"));
        assert_eq!(
            out.matches(":: cachette :: __private0_1 :: cached :: inventory :: submit !")
                .count(),
            2
        );
        assert!(out.contains("ProfileUse :: new (\"session\""));
        assert!(out.contains("ProfileUse :: new (\"gone\""));
    }

    #[test]
    fn errors_keep_the_function() {
        let out = expand(
            Kind::Cached,
            quote!(tll = 5),
            quote!(
                async fn f() -> u8 {
                    1
                }
            ),
        )
        .to_string();
        assert!(out.contains("compile_error"));
        assert!(out.contains("async fn f () -> u8 { 1 }"));
    }
}
