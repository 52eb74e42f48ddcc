//! `key!`, `tag!` and `pattern!`: a `format!`-like template whose interpolated values are
//! escaped by the runtime's `KeyBuilder`, the code `#[cached]` runs, so that the manual API
//! reaches exactly the entries the attributes made.
//!
//! The facade's `macro_rules!` wrappers call [`expand`] as `__escaped!($crate; Key; ...)`:
//! the path of the facade (so that a renamed dependency works), the type to build (`Key`,
//! `Tag` or `Pattern`), then what the user wrote: a string literal template, positional
//! arguments, then `name = value` arguments. Placeholders are `{}` (the next positional
//! argument), `{0}` (one by index), `{name}` (a named argument, else a variable in scope) and
//! field paths of those (`{user.id}`, `{0.id}`). Each argument is evaluated once, in the
//! order written, and must be used.

use crate::ctxt::Ctxt;
use crate::template::{self, Hole, Holes, Part};
use darling::Error;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Token};

/// What the user wrote after the template.
struct Call {
    template: LitStr,
    positional: Vec<Expr>,
    named: Vec<(Ident, Expr)>,
}

/// An argument as bound in the generated `match`: its binding and whether a placeholder used it.
struct Bound {
    binding: Ident,
    span: Span,
    used: bool,
}

/// Entry point: `<crate path> ; <Key|Tag|Pattern> ; <template>, <args>...`.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut tokens = input.into_iter();
    let mut krate = TokenStream::new();
    for t in tokens.by_ref() {
        match &t {
            TokenTree::Punct(p) if p.as_char() == ';' => break,
            _ => krate.extend([t]),
        }
    }
    let kind = match (tokens.next(), tokens.next()) {
        (Some(TokenTree::Ident(kind)), Some(TokenTree::Punct(p)))
            if p.as_char() == ';' && ["Key", "Tag", "Pattern"].contains(&&*kind.to_string()) =>
        {
            kind
        }
        _ => {
            return Error::custom("`__escaped!` is cachette's own: use `cachette::key!`, `cachette::tag!` or `cachette::pattern!`")
                .write_errors();
        }
    };
    let private = crate::expand::versioned_private(&krate.to_token_stream());
    let private = quote!(#private::keys);
    let what = format!("{}!", kind.to_string().to_lowercase());
    let rest: TokenStream = tokens.collect();
    let fallback = quote!(#private::#kind::from_escaped(::std::string::String::new()));
    let call = match (|input: ParseStream<'_>| parse_call(input, &what)).parse2(rest) {
        Ok(call) => call,
        Err(e) => {
            let e = e.to_compile_error();
            return quote!({ #e #fallback });
        }
    };
    let cx = Ctxt::new();
    let built = build(&call, &what, &private, &kind, &cx);
    match (built, cx.check()) {
        (Some(expr), Ok(())) => expr,
        (_, checked) => {
            let e = checked.err().map(syn::Error::into_compile_error);
            quote!({ #e #fallback })
        }
    }
}

fn parse_call(input: ParseStream<'_>, what: &str) -> syn::Result<Call> {
    if input.is_empty() {
        return Err(input.error(format!(
            "`{what}` needs a template: `{what}(\"user:{{}}\", id)` or `{what}(\"user:{{id}}\")`"
        )));
    }
    let template: LitStr = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "`{what}` takes a string literal template first, such as `{what}(\"user:{{}}\", id)`"
            ),
        )
    })?;
    let mut call = Call {
        template,
        positional: Vec::new(),
        named: Vec::new(),
    };
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            if call.named.iter().any(|(n, _)| *n == name) {
                return Err(syn::Error::new(
                    name.span(),
                    format!("named argument `{name}` is given twice"),
                ));
            }
            call.named.push((name, value));
        } else {
            let value: Expr = input.parse()?;
            if let Some((name, _)) = call.named.first() {
                return Err(syn::Error::new(
                    value.span(),
                    format!(
                        "positional arguments must come before named ones (`{name} = ...`), as in `format!`"
                    ),
                ));
            }
            call.positional.push(value);
        }
    }
    Ok(call)
}

fn build(
    call: &Call,
    what: &str,
    private: &TokenStream,
    kind: &Ident,
    errors: &Ctxt,
) -> Option<TokenStream> {
    let template = template::parse_with(&call.template, what, Holes::Positional, errors)?;
    // The binding carries the argument's span and context, so that a value that cannot be
    // interpolated is reported on the argument, not on the whole macro call.
    let bind = |i: usize, e: &Expr| Bound {
        binding: Ident::new(&format!("__cachette_arg{i}"), e.span()),
        span: e.span(),
        used: false,
    };
    let mut positional: Vec<Bound> = call
        .positional
        .iter()
        .enumerate()
        .map(|(i, e)| bind(i, e))
        .collect();
    let mut named: Vec<(String, Bound)> = call
        .named
        .iter()
        .enumerate()
        .map(|(i, (n, e))| {
            (
                n.to_string(),
                bind(i.saturating_add(call.positional.len()), e),
            )
        })
        .collect();

    let needed = positional_needed(&template.parts);
    let mut next = 0usize;
    let mut parts = Vec::new();
    for part in &template.parts {
        let hole = match part {
            Part::Lit(s) => {
                parts.push(quote!(#s));
                continue;
            }
            Part::Hole(h) => h,
        };
        let fields = match fields(hole) {
            Ok(f) => f,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let (value, span) = if hole.root.is_empty() || hole.root.bytes().all(|b| b.is_ascii_digit())
        {
            let index = if hole.root.is_empty() {
                let this = next;
                next = next.saturating_add(1);
                this
            } else {
                hole.root.parse::<usize>().unwrap_or(usize::MAX)
            };
            let Some(arg) = positional.get_mut(index) else {
                let n = call.positional.len();
                errors.push(
                    Error::custom(format!(
                        "placeholder `{{{}}}` has no argument: the template takes {needed} positional argument{}, `{what}` was given {n}",
                        shown(hole),
                        if needed == 1 { "" } else { "s" },
                    ))
                    .with_span(&hole.span),
                );
                continue;
            };
            arg.used = true;
            (reference(&arg.binding, &fields), arg.span)
        } else if let Some((_, arg)) = named.iter_mut().find(|(n, _)| *n == hole.root) {
            arg.used = true;
            (reference(&arg.binding, &fields), arg.span)
        } else {
            // A variable in scope, named with the literal's hygiene so that it resolves where
            // the user wrote the template (as `format!` does).
            let at = hole.span.resolved_at(call.template.span());
            let root = match variable(&hole.root, at) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            (quote!(&(#root #(.#fields)*)), hole.span)
        };
        parts.push(quote_spanned!(span=> #private::arg(#value)));
    }
    for arg in positional.iter().chain(named.iter().map(|(_, a)| a)) {
        if !arg.used {
            errors.push(
                Error::custom(format!(
                    "argument never used: the `{what}` template has no placeholder for it (`{{}}`, `{{0}}` or `{{name}}`)"
                ))
                .with_span(&arg.span),
            );
        }
    }
    let values = call
        .positional
        .iter()
        .chain(call.named.iter().map(|(_, e)| e));
    // Each argument evaluated once, in the order written; `let x = &temporary;` keeps a
    // temporary alive to the end of the block.
    let lets = values
        .zip(positional.iter().chain(named.iter().map(|(_, a)| a)))
        .map(|(e, a)| {
            let b = &a.binding;
            quote_spanned!(e.span()=> let #b = &(#e);)
        });
    let parts = crate::expand::group(parts);
    Some(quote!({
        #(#lets)*
        #private::#kind::from_escaped(#private::string(#parts))
    }))
}

/// A reference to an argument's binding (itself a reference) or to a field of it.
fn reference(binding: &Ident, fields: &[TokenStream]) -> TokenStream {
    if fields.is_empty() {
        binding.to_token_stream()
    } else {
        quote!(&(#binding #(.#fields)*))
    }
}

/// How many positional arguments the template's placeholders take (`{}` counted in order,
/// `{N}` as N + 1), as `format!` counts them.
fn positional_needed(parts: &[Part]) -> usize {
    let mut next = 0usize;
    let mut needed = 0usize;
    for part in parts {
        if let Part::Hole(h) = part {
            let index = if h.root.is_empty() {
                next = next.saturating_add(1);
                next
            } else if let Ok(i) = h.root.parse::<usize>() {
                i.saturating_add(1)
            } else {
                0
            };
            needed = needed.max(index);
        }
    }
    needed
}

/// `{root.a.b}` as written, for messages.
fn shown(hole: &Hole) -> String {
    let mut s = hole.root.clone();
    for f in &hole.fields {
        s.push('.');
        s.push_str(f);
    }
    s
}

/// The field path of a placeholder, as tokens (never panics on odd identifiers).
fn fields(hole: &Hole) -> Result<Vec<TokenStream>, Error> {
    hole.fields
        .iter()
        .map(|f| match f.parse::<u32>() {
            Ok(index) => Ok(syn::Index {
                index,
                span: hole.span,
            }
            .to_token_stream()),
            Err(_) => match syn::parse_str::<Ident>(f) {
                Ok(mut ident) => {
                    ident.set_span(hole.span);
                    Ok(ident.to_token_stream())
                }
                Err(_) => Err(Error::custom(format!(
                    "`{{{}}}`: `{f}` is not a field name",
                    shown(hole)
                ))
                .with_span(&hole.span)),
            },
        })
        .collect()
}

/// The variable a placeholder names (`self` included).
fn variable(name: &str, at: Span) -> Result<TokenStream, Error> {
    if name == "self" {
        return Ok(syn::token::SelfValue { span: at }.to_token_stream());
    }
    match syn::parse_str::<Ident>(name) {
        Ok(mut ident) => {
            ident.set_span(at);
            Ok(ident.to_token_stream())
        }
        Err(_) => Err(Error::custom(format!(
            "`{{{name}}}`: `{name}` is a keyword, not a variable; pass the value as an argument"
        ))
        .with_span(&at)),
    }
}
