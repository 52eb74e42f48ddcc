//! Writers coupled to a cached call: `#[cache_put(get_user(db, id))]` and
//! `#[invalidates(calls = [get_user(db, id)])]`. Reading the call (a leading expression of
//! `#[cache_put]`, the `calls` list), checking it, and generating the code that hands it to
//! the runtime (`__private0_1::coupled::call_key`, `fill_*` + `put_filling`), whose
//! `macro_support/coupled.rs` documents the `Put` call mode and the `Fills` type relation.

use crate::args::{CachePutArgs, Kind, name_value, strip_group};
use crate::ast::Shape;
use crate::ctxt::Ctxt;
use crate::expand::{local, respan};
use darling::Error;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Meta, Path};

/// `#[cache_put(get_user(db, id), name = "...")]`: splits off a leading expression that is not
/// an option (not `name = value`, not a bare or called option name of any attribute) as the
/// cached call; the rest is read as options.
pub(crate) fn split_call(tokens: TokenStream) -> (Option<Expr>, TokenStream) {
    use proc_macro2::TokenTree;
    let mut first = TokenStream::new();
    let mut iter = tokens.clone().into_iter();
    for tt in iter.by_ref() {
        if let TokenTree::Punct(p) = &tt
            && p.as_char() == ','
        {
            break;
        }
        first.extend([tt]);
    }
    if first.is_empty() {
        return (None, tokens);
    }
    let Ok(expr) = syn::parse2::<Expr>(first) else {
        return (None, tokens);
    };
    let is_option_name = |path: &Path| {
        path.get_ident().is_some_and(|ident| {
            [Kind::Cached, Kind::Invalidates, Kind::CachePut]
                .iter()
                .any(|k| k.options().contains(&ident.to_string().as_str()))
        })
    };
    let option = match strip_group(&expr) {
        Expr::Assign(_) | Expr::Lit(_) => true,
        Expr::Path(p) => is_option_name(&p.path),
        Expr::Call(c) => matches!(strip_group(&c.func), Expr::Path(p) if is_option_name(&p.path)),
        _ => false,
    };
    if option {
        (None, tokens)
    } else {
        (Some(expr), iter.collect())
    }
}

/// A coupled call must be a call (of a function or a method), not awaited.
pub(crate) fn check_call(expr: &Expr) -> Result<(), Error> {
    match strip_group(expr) {
        Expr::Call(_) | Expr::MethodCall(_) => Ok(()),
        Expr::Await(a) => Err(Error::custom(
            "name the cached call without `.await` (`get_user(db, id)`): its future is polled by the write-through or the invalidation, and the function's body does not run",
        )
        .with_span(&a.await_token)),
        other => Err(Error::custom(
            "expected a call of a #[cached] function with the arguments of the entry, such as `get_user(db, id)` or `self.user(id)`",
        )
        .with_span(other)),
    }
}

/// `calls = [get_user(db, id), self.user(id)]`.
pub(crate) fn call_list(meta: &Meta) -> Result<Vec<Expr>, Error> {
    let example = "[get_user(db, id)]";
    let expr = name_value(meta, "calls", example)?;
    let Expr::Array(array) = expr else {
        return Err(Error::custom(format!(
            "`calls` takes a list of calls of #[cached] functions: `calls = {example}`"
        ))
        .with_span(expr));
    };
    let mut errors = Error::accumulator();
    let mut out = Vec::new();
    for elem in &array.elems {
        if errors.handle(check_call(elem)).is_some() {
            out.push(strip_group(elem).clone());
        }
    }
    errors.finish_with(out)
}

/// With a call, `key`, `ttl`, `tags` and `cache` are the call's: giving them is an error.
pub(crate) fn check_put_options(args: &CachePutArgs, call: &Expr, errors: &Ctxt) {
    for (option, span) in &args.common.given {
        if ["key", "ttl", "tags", "cache"].contains(&option.as_str()) {
            errors.push(
                Error::custom(format!(
                    "`{option}` comes from the cached call `{}`: the write-through stores under that call's key, tags, TTL options and cache; remove `{option}`",
                    call.to_token_stream()
                ))
                .with_span(span),
            );
        }
    }
}

/// `let __cachette_calls = [call_key(call), ...];`: the entries of `calls`, captured before
/// the body runs (with the arguments as they were passed); each capture is spanned at its
/// call, so that an expression that is not a future is reported there.
pub(crate) fn capture_calls(calls: &[Expr], local: &syn::Ident, p: &TokenStream) -> TokenStream {
    let n = calls.len();
    let captures = calls.iter().map(|c| {
        let pc = respan(p, c.span());
        quote_spanned!(c.span()=> #pc::call_key(#c))
    });
    quote! {
        let #local: [::core::result::Result<#p::CallKey, #p::CallError>; #n] =
            [#(#captures),*];
    }
}

/// The body of a `#[cache_put(call)]` function: the call's arguments, the original body, the
/// call, and the typed write-through of the value (after `Ok`/`Some`).
pub(crate) fn put_body(
    args: &CachePutArgs,
    shape: Shape,
    p: &TokenStream,
    name: &TokenStream,
    fake: &TokenStream,
    block: &TokenStream,
) -> TokenStream {
    let ret = local("__cachette_ret");
    let (args_let, call) = args.call.as_ref().map(split_call_args).unwrap_or_default();
    // Spanned at the call: a value type the call does not store (the `Fills` bound) is
    // reported there.
    let span = args
        .call
        .as_ref()
        .map_or_else(Span::call_site, Spanned::span);
    let call_local = syn::Ident::new("__cachette_call", Span::mixed_site().located_at(span));
    let which = match shape {
        Shape::Plain => syn::Ident::new("fill_plain", span),
        // `Result<Option<T>, E>`: the `Ok` value, `Option<T>`, goes to the reader, whose
        // policy decides whether a `None` is stored.
        Shape::Result | Shape::ResultOption => syn::Ident::new("fill_fallible", span),
        Shape::Option => syn::Ident::new("fill_optional", span),
    };
    let ps = respan(p, span);
    // The check's whole expression in the call's context, its arguments too (bound in a block
    // of their own, where no user token is): rustc reports an expression whose tokens mix
    // contexts at the attribute.
    let (c, r) = (
        syn::Ident::new("__cachette_c", span),
        syn::Ident::new("__cachette_r", span),
    );
    let check = quote_spanned!(span=> #ps::#which(#c, #r));
    let fill = quote! {{
        let #c = #call_local;
        let #r = &#ret;
        #check
    }};
    // The body borrows what it does not move (no `move`), so that the call can be made after
    // it with the receiver (`self` of a `&mut self` writer included).
    quote! {
        #p::refuse_capture(#name).await;
        #args_let
        let #ret = async {
            #fake
            #block
        }
        .await;
        let #call_local = #call;
        #p::put_filling(#name, #fill).await;
        #ret
    }
}

/// A coupled call `f(a, b)` / `recv.m(a, b)`, split so that its arguments are evaluated
/// before the writer's body runs (the values it was called with, before the body moves them)
/// and the call itself made after it (its receiver may be what the body borrows mutably):
/// `let` statements for the arguments, and the call over those locals.
fn split_call_args(call: &syn::Expr) -> (TokenStream, TokenStream) {
    let mut call = call;
    while let syn::Expr::Group(g) = call {
        call = &g.expr;
    }
    let args = match call {
        syn::Expr::Call(c) => &c.args,
        syn::Expr::MethodCall(m) => &m.args,
        other => return (TokenStream::new(), other.to_token_stream()),
    };
    let locals: Vec<syn::Ident> = args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            // Located at the argument: a type error is reported there.
            syn::Ident::new(
                &format!("__cachette_arg{i}"),
                Span::mixed_site().located_at(a.span()),
            )
        })
        .collect();
    let lets = args.iter().zip(&locals).map(|(a, l)| quote!(let #l = #a;));
    // The parentheses at the call, so that errors about the call's future point there.
    let span = call.span();
    let made = match call {
        syn::Expr::MethodCall(m) => {
            let (receiver, method, turbofish) = (&m.receiver, &m.method, &m.turbofish);
            quote_spanned!(span=> #receiver.#method #turbofish (#(#locals),*))
        }
        syn::Expr::Call(c) => {
            let func = &c.func;
            quote_spanned!(span=> #func(#(#locals),*))
        }
        other => other.to_token_stream(),
    };
    (quote!(#(#lets)*), made)
}
