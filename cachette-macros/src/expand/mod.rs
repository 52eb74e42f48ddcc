//! Code generation. The generated code builds the key, the tags and the options, and calls one
//! function of `<crate>::__private0_1`; behaviour lives in the runtime.

use crate::args::{self, Args, Kind, TtlSpec};
mod cached;

use crate::fallback;
use crate::suggest::did_you_mean;
use crate::template::{self, Part, Template};
use crate::validate::{self, Func, Shape, has_impl_trait, mentions};
use darling::Error;
use darling::error::Accumulator;
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
    let mut errors = Error::accumulator();
    let args = args::parse(kind, attr, &mut errors);
    let func = match validate::parse_item(kind, item, &mut errors) {
        Ok(func) => func,
        Err(tokens) => return fallback::emit(tokens, errors),
    };
    let plan = check(kind, &args, &func, &mut errors);
    let errs = errors.into_inner();
    match plan {
        Some(plan) if errs.is_empty() => generate(kind, &args, &func, &plan),
        _ => fallback::emit_errors(func.item.to_token_stream(), errs),
    }
}

/// A template whose placeholders are resolved to expressions.
pub(super) struct Resolved {
    template: Template,
    /// One expression per placeholder, in order, and whether it is an argument of a primitive
    /// integer type.
    exprs: Vec<(TokenStream, bool)>,
}

/// Everything checked, ready to generate.
pub(super) struct Plan {
    shape: Shape,
    key: Option<Resolved>,
    tags: Vec<Resolved>,
    keys: Vec<Resolved>,
    patterns: Vec<Resolved>,
    /// Hash mode: the arguments hashed into the key.
    hashed: Vec<syn::Ident>,
}

fn check(kind: Kind, args: &Args, func: &Func, errors: &mut Accumulator) -> Option<Plan> {
    let mut shape = func.shape(args.returns.map(|(r, _)| r));
    if kind != Kind::Cached && shape == Shape::ResultOption {
        // A writer stores or invalidates after `Ok`, whatever the `Ok` value.
        shape = Shape::Result;
    }
    let mut ok = true;
    let mut resolve_all =
        |lits: &[syn::LitStr], what: &str, errors: &mut Accumulator| -> Vec<Resolved> {
            let mut out = Vec::new();
            for lit in lits {
                match resolve(lit, what, func, errors) {
                    Some(r) => out.push(r),
                    None => ok = false,
                }
            }
            out
        };
    let key = args
        .key
        .as_ref()
        .map(|lit| resolve_all(std::slice::from_ref(lit), "key", errors));
    let tags = resolve_all(&args.tags, "tags", errors);
    let keys = resolve_all(&args.keys, "keys", errors);
    let patterns = resolve_all(&args.patterns, "patterns", errors);
    let key = match key {
        Some(mut v) => v.pop(),
        None => None,
    };
    let mut hashed = Vec::new();

    match kind {
        Kind::Cached => {
            check_return(kind, func, errors);
            if args.key.is_some() {
                if let Some(span) = args.skip_span {
                    errors.push(
                        Error::custom(
                            "`skip` only applies to keys hashed from the arguments; with a `key` template only its placeholders are in the key, so remove `skip`",
                        )
                        .with_span(&span),
                    );
                }
                if let Some(key) = &key {
                    check_generics_in_key(func, key, errors);
                }
            } else {
                hashed = hashed_args(args, func, errors);
            }
            if let Some(span) = args.fresh.stale_if_error_span
                && !shape.is_result()
            {
                errors.push(
                    Error::custom(
                        "`stale_if_error` serves the stale value when the function returns `Err`; this function does not return a `Result` (use `returns = result` for an alias)",
                    )
                    .with_span(&span),
                );
            }
            if let Some(span) = args.fresh.background {
                check_background(args, func, span, errors);
            }
            if let Some(cn) = &args.cache_none
                && !shape.has_none()
            {
                errors.push(
                    Error::custom(
                        "`cache_none` applies to functions returning `Option<T>` or `Result<Option<T>, E>` (it stores `None` and `Ok(None)` results); this function returns neither (use `returns = option` or `returns = result` for an alias)",
                    )
                    .with_span(&cn.span),
                );
            }
        }
        Kind::Invalidates => {
            if args.tags.is_empty()
                && args.keys.is_empty()
                && args.patterns.is_empty()
                && args.calls.is_empty()
                && !args.had_errors
            {
                errors.push(
                    Error::custom(
                        "#[invalidates] needs something to invalidate: give `tags = [...]`, `keys = [...]`, `patterns = [...]` or `calls = [...]`",
                    )
                    .with_span(&Span::call_site()),
                );
            }
        }
        Kind::CachePut => {
            check_return(kind, func, errors);
            if let Some(call) = &args.call {
                crate::coupled::check_put_options(args, call, errors);
            } else if args.key.is_none() && !args.had_errors {
                errors.push(
                    Error::custom(
                        "#[cache_put] needs the cached call whose entry it writes, `#[cache_put(get_user(db, id))]` (its key, tags, TTL options and stored type), or `key = \"...\"`",
                    )
                    .with_span(&Span::call_site()),
                );
            }
        }
    }
    if let Some((_, span)) = args.returns
        && func.ret_type().is_none()
    {
        errors.push(Error::custom("`returns` needs a return type").with_span(&span));
    }
    ok.then_some(Plan {
        shape,
        key,
        tags,
        keys,
        patterns,
        hashed,
    })
}

/// `background_refresh`: there must be a refresh to run, and the computation, moved into a
/// background task, must own what it uses.
fn check_background(args: &Args, func: &Func, span: Span, errors: &mut Accumulator) {
    if args.fresh.early_refresh == Some(None) && args.fresh.stale.is_none() {
        errors.push(
            Error::custom(
                "`background_refresh` runs early refreshes and stale-while-revalidate refreshes in a background task, but this function has neither (`early_refresh = false`, no `stale`); remove `background_refresh`, or turn one of them on",
            )
            .with_span(&span),
        );
    }
    const WHY: &str = "`background_refresh` moves the computation into a background task, which must own what it uses (`Send + 'static`)";
    if let Some(s) = func.ref_self {
        errors.push(
            Error::custom(format!(
                "{WHY}: it cannot borrow `self`; take `self: Arc<Self>` (or `self`), or remove `background_refresh`"
            ))
            .with_span(&s),
        );
    }
    let mut seen: Vec<String> = Vec::new();
    for p in &func.params {
        let Some(s) = p.borrows else { continue };
        // One error per argument, not per binding of a destructured argument.
        let at = format!("{s:?}");
        if seen.contains(&at) {
            continue;
        }
        seen.push(at);
        errors.push(
            Error::custom(format!(
                "{WHY}: argument `{}` borrows (its type holds a reference or a lifetime); pass an owned value (`String`, `Vec<T>`, `Arc<T>`), or remove `background_refresh`",
                p.ident
            ))
            .with_span(&s),
        );
    }
}

fn check_return(kind: Kind, func: &Func, errors: &mut Accumulator) {
    match func.ret_type() {
        None => errors.push(
            Error::custom(format!(
                "{} needs a return type: this function returns nothing to store",
                kind.attr()
            ))
            .with_span(&func.ret_span()),
        ),
        Some(ty) if has_impl_trait(ty) => errors.push(
            Error::custom(format!(
                "{} cannot store an `impl Trait` return value: name the type, so that it can be read back",
                kind.attr()
            ))
            .with_span(ty),
        ),
        Some(_) => {}
    }
}

/// Template mode: a type or const parameter the return type depends on must be in the key,
/// else two instantiations would read each other's entries.
fn check_generics_in_key(func: &Func, key: &Resolved, errors: &mut Accumulator) {
    let ret = func.ret_tokens();
    for g in func.type_params.iter().chain(&func.const_params) {
        let used = key.template.holes().any(|h| *g == h.root);
        if !used && mentions(ret.clone(), g) {
            errors.push(
                Error::custom(format!(
                    "the return type depends on `{g}`, so the key must tell its instantiations apart: add `{{{g}}}` to the key template"
                ))
                .with_span(g),
            );
        }
    }
}

/// Hash mode: checks `skip` and returns the arguments hashed into the key.
fn hashed_args(args: &Args, func: &Func, errors: &mut Accumulator) -> Vec<syn::Ident> {
    let names: Vec<String> = func.params.iter().map(|p| p.ident.to_string()).collect();
    let mut seen: Vec<&syn::Ident> = Vec::new();
    for s in &args.skip {
        if s == "self" {
            errors.push(
                Error::custom("the receiver is never hashed into the key (use `{self.field}` in a `key` template when it matters); remove `self` from `skip`")
                    .with_span(s),
            );
        } else if func.param(&s.to_string()).is_none() {
            let hint = did_you_mean(&s.to_string(), names.iter().map(String::as_str))
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            errors.push(
                Error::custom(format!(
                    "`skip({s})` names no argument of this function{hint} (the arguments are: {})",
                    list(&names)
                ))
                .with_span(s),
            );
        } else if seen.contains(&s) {
            errors.push(Error::custom(format!("`{s}` is skipped twice")).with_span(s));
        }
        seen.push(s);
    }
    let mut hashed = Vec::new();
    for p in &func.params {
        if args.skip.contains(&p.ident) {
            continue;
        }
        if p.impl_trait {
            errors.push(
                Error::custom(format!(
                    "argument `{}` is an `impl Trait`: each caller picks its type, and values of different types can hash alike; skip it (`skip({})`) or give a `key` template",
                    p.ident, p.ident
                ))
                .with_span(&p.ident),
            );
            continue;
        }
        hashed.push(p.ident.clone());
    }
    hashed
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Parses a template and resolves each placeholder against the function.
fn resolve(
    lit: &syn::LitStr,
    what: &str,
    func: &Func,
    errors: &mut Accumulator,
) -> Option<Resolved> {
    let template = template::parse(lit, what, errors)?;
    let mut exprs = Vec::new();
    let mut ok = true;
    for hole in template.holes() {
        let fields: Vec<TokenStream> = hole
            .fields
            .iter()
            .map(|f| match f.parse::<u32>() {
                Ok(i) => syn::Index {
                    index: i,
                    span: hole.span,
                }
                .to_token_stream(),
                Err(_) => syn::Ident::new(f, hole.span).to_token_stream(),
            })
            .collect();
        let is_generic = |list: &[syn::Ident]| list.iter().find(|g| **g == hole.root).cloned();
        if hole.root == "self" {
            if !func.has_self {
                errors.push(
                    Error::custom(format!(
                        "`{{self...}}` in the `{what}` template, but this function has no `self` receiver"
                    ))
                    .with_span(&hole.span),
                );
                ok = false;
                continue;
            }
            let this = syn::token::SelfValue {
                span: func.self_span,
            };
            exprs.push((quote!(#this #(.#fields)*), false));
        } else if let Some(p) = func.param(&hole.root) {
            if p.impl_trait {
                errors.push(
                    Error::custom(format!(
                        "`{{{}}}`: argument `{}` is an `impl Trait`, whose type each caller picks; it cannot be part of the {what}. Convert it to a concrete type first, or leave it out",
                        hole.root, p.ident
                    ))
                    .with_span(&hole.span),
                );
                ok = false;
                continue;
            }
            let ident = &p.ident;
            exprs.push((quote!(#ident #(.#fields)*), p.int && fields.is_empty()));
        } else if let Some(t) = is_generic(&func.type_params) {
            if !fields.is_empty() {
                errors.push(
                    Error::custom(format!(
                        "`{{{}}}` is a type parameter: it has no fields",
                        hole.root
                    ))
                    .with_span(&hole.span),
                );
                ok = false;
                continue;
            }
            exprs.push((quote!(::core::any::type_name::<#t>()), false));
        } else if let Some(c) = is_generic(&func.const_params) {
            if !fields.is_empty() {
                errors.push(
                    Error::custom(format!(
                        "`{{{}}}` is a const parameter: it has no fields",
                        hole.root
                    ))
                    .with_span(&hole.span),
                );
                ok = false;
                continue;
            }
            exprs.push((quote!(#c), false));
        } else {
            let names = func.names();
            let hint = did_you_mean(&hole.root, names.iter().map(String::as_str))
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            errors.push(
                Error::custom(format!(
                    "unknown placeholder `{{{}}}` in the `{what}` template: no argument is named `{}`{hint} (the arguments are: {})",
                    hole.root,
                    hole.root,
                    list(&names)
                ))
                .with_span(&hole.span),
            );
            ok = false;
        }
    }
    ok.then_some(Resolved { template, exprs })
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
fn private(kind: Kind, args: &Args) -> TokenStream {
    let krate = args
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

fn name_tokens(args: &Args, func: &Func) -> TokenStream {
    match &args.name {
        Some(lit) => quote!(#lit),
        None => {
            let fn_name = func.item.sig.ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #fn_name))
        }
    }
}

fn cache_init(args: &Args, p: &TokenStream) -> TokenStream {
    match &args.cache {
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

fn generate(kind: Kind, args: &Args, func: &Func, plan: &Plan) -> TokenStream {
    let p = private(kind, args);
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
    let cache = local("__cachette_cache");
    let ret = local("__cachette_ret");
    let cache_init = cache_init(args, &p);
    let fake = fake_return(func, &p);
    let name = name_tokens(args, func);
    let body = match kind {
        Kind::Cached => {
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
        Kind::Invalidates => {
            let arrays = [
                (local("__cachette_tags"), &plan.tags),
                (local("__cachette_keys"), &plan.keys),
                (local("__cachette_patterns"), &plan.patterns),
            ];
            let lets = arrays.iter().map(|(ident, list)| {
                let n = list.len();
                let exprs = list.iter().map(|t| template_expr(t, &p));
                quote!(let #ident: [::std::string::String; #n] = [#(#exprs),*];)
            });
            let [(tags, _), (keys, _), (patterns, _)] = &arrays;
            let calls = local("__cachette_calls");
            let calls_let = crate::coupled::capture_calls(&args.calls, &calls, &p);
            let only_calls =
                plan.tags.is_empty() && plan.keys.is_empty() && plan.patterns.is_empty();
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
        Kind::CachePut if args.call.is_some() => {
            crate::coupled::put_body(args, plan.shape, &p, &name, &fake, &block)
        }
        Kind::CachePut => {
            let key = local("__cachette_key");
            let opts = local("__cachette_opts");
            let key_expr = plan
                .key
                .as_ref()
                .map(|r| template_expr(r, &p))
                .unwrap_or_default();
            let site_ident = syn::Ident::new("__CACHETTE_SITE", Span::call_site());
            let site = cached::site(args, func, plan, &p);
            let tags = cached::call_tags(&plan.tags, &p);
            let marker = stored_marker(func, plan.shape);
            let span = stored_span(func, plan.shape);
            let which = match plan.shape {
                Shape::Plain => syn::Ident::new("plain", span),
                Shape::Result | Shape::ResultOption => syn::Ident::new("fallible", span),
                Shape::Option => syn::Ident::new("optional", span),
            };
            let ps = respan(&p, span);
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
    let cache_none_ttl = args.cache_none.as_ref().and_then(|c| c.ttl.as_ref());
    let fn_name = func.item.sig.ident.to_string();
    let mut names: Vec<&str> = Vec::new();
    for ttl in args.ttl.iter().chain(cache_none_ttl) {
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

    /// The generated code names nothing of cachette outside `__private0_1::cached`, and is printed for
    /// review with `cargo test -p cachette-macros expansion -- --nocapture`.
    #[test]
    fn expansion_calls_only_private() {
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
