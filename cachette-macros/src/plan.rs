//! The validation step between the AST (`ast/`: the function, its parameters, its
//! return shape) and code generation (`expand/`): the options checked against the function,
//! every error collected, and the templates' placeholders resolved to expressions, as a
//! [`Plan`].

use crate::args::{Args, CachedArgs, Kind};
use crate::ast::{Func, Shape, has_impl_trait, mentions};
use crate::ctxt::Ctxt;
use crate::suggest::did_you_mean;
use crate::template::{self, Template};
use darling::Error;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};

/// A template whose placeholders are resolved to expressions.
pub(crate) struct Resolved {
    pub(crate) template: Template,
    /// One expression per placeholder, in order, and whether it is an argument of a primitive
    /// integer type.
    pub(crate) exprs: Vec<(TokenStream, bool)>,
}

/// Everything checked, ready to generate.
pub(crate) struct Plan {
    pub(crate) shape: Shape,
    pub(crate) key: Option<Resolved>,
    pub(crate) tags: Vec<Resolved>,
    pub(crate) keys: Vec<Resolved>,
    pub(crate) patterns: Vec<Resolved>,
    /// Hash mode: the arguments hashed into the key.
    pub(crate) hashed: Vec<syn::Ident>,
}

/// The validation step: checks the options against the function (all errors collected in
/// `errors`) and resolves every template's placeholders; `None` when a template did not resolve.
pub(crate) fn check(args: &Args, func: &Func, errors: &Ctxt) -> Option<Plan> {
    let kind = args.kind();
    let common = args.common();
    let mut shape = func.shape(common.returns.map(|(r, _)| r));
    if kind != Kind::Cached && shape == Shape::ResultOption {
        // A writer stores or invalidates after `Ok`, whatever the `Ok` value.
        shape = Shape::Result;
    }
    let mut ok = true;
    let mut resolve_all = |lits: &[syn::LitStr], what: &str, errors: &Ctxt| -> Vec<Resolved> {
        let mut out = Vec::new();
        for lit in lits {
            match resolve(lit, what, func, errors) {
                Some(r) => out.push(r),
                None => ok = false,
            }
        }
        out
    };
    let (key, tags, keys, patterns): (Option<&syn::LitStr>, &[_], &[_], &[_]) = match args {
        Args::Cached(a) => (a.key.as_ref(), &a.tags, &[], &[]),
        Args::Invalidates(a) => (None, &a.tags, &a.keys, &a.patterns),
        Args::CachePut(a) => (a.key.as_ref(), &a.tags, &[], &[]),
    };
    let key = key.map(|lit| resolve_all(std::slice::from_ref(lit), "key", errors));
    let tags = resolve_all(tags, "tags", errors);
    let keys = resolve_all(keys, "keys", errors);
    let patterns = resolve_all(patterns, "patterns", errors);
    let key = match key {
        Some(mut v) => v.pop(),
        None => None,
    };
    let mut hashed = Vec::new();

    match args {
        Args::Cached(args) => {
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
        Args::Invalidates(args) => {
            if args.tags.is_empty()
                && args.keys.is_empty()
                && args.patterns.is_empty()
                && args.calls.is_empty()
                && !args.common.had_errors
            {
                errors.push(
                    Error::custom(
                        "#[invalidates] needs something to invalidate: give `tags = [...]`, `keys = [...]`, `patterns = [...]` or `calls = [...]`",
                    )
                    .with_span(&Span::call_site()),
                );
            }
        }
        Args::CachePut(args) => {
            check_return(kind, func, errors);
            if let Some(call) = &args.call {
                crate::coupled::check_put_options(args, call, errors);
            } else if args.key.is_none() && !args.common.had_errors {
                errors.push(
                    Error::custom(
                        "#[cache_put] needs the cached call whose entry it writes, `#[cache_put(get_user(db, id))]` (its key, tags, TTL options and stored type), or `key = \"...\"`",
                    )
                    .with_span(&Span::call_site()),
                );
            }
        }
    }
    if let Some((_, span)) = common.returns
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
fn check_background(args: &CachedArgs, func: &Func, span: Span, errors: &Ctxt) {
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

fn check_return(kind: Kind, func: &Func, errors: &Ctxt) {
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
fn check_generics_in_key(func: &Func, key: &Resolved, errors: &Ctxt) {
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
fn hashed_args(args: &CachedArgs, func: &Func, errors: &Ctxt) -> Vec<syn::Ident> {
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
fn resolve(lit: &syn::LitStr, what: &str, func: &Func, errors: &Ctxt) -> Option<Resolved> {
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
