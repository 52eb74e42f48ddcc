//! The options of the three attributes, read with darling's `NestedMeta` and error type.
//!
//! One `Args` serves the three attributes; each accepts its own subset of the options
//! ([`Kind::options`]), so an option given to the wrong attribute is named as belonging to
//! another. Errors are accumulated: an unknown option, a duplicate and a bad TTL in the same
//! attribute give three errors, and the options that did parse are still checked against
//! the function.

mod values;

use values::*;

use crate::ast::Shape;
use crate::ctxt::Ctxt;
use darling::Error;
use darling::ast::NestedMeta;
use proc_macro2::{Span, TokenStream};
use std::time::Duration;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Meta, Path, UnOp};

/// Which attribute is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Cached,
    Invalidates,
    CachePut,
}

impl Kind {
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Cached => "#[cached]",
            Kind::Invalidates => "#[invalidates]",
            Kind::CachePut => "#[cache_put]",
        }
    }

    pub(crate) fn options(self) -> &'static [&'static str] {
        match self {
            Kind::Cached => &[
                "key",
                "ttl",
                "tags",
                "name",
                "cache",
                "skip",
                "cache_none",
                "returns",
                "crate",
                "stale",
                "stale_if_error",
                "jitter",
                "early_refresh",
                "lock",
                "single_flight",
                "background_refresh",
            ],
            Kind::Invalidates => &[
                "tags", "keys", "patterns", "calls", "name", "cache", "returns", "crate",
            ],
            Kind::CachePut => &["key", "ttl", "tags", "name", "cache", "returns", "crate"],
        }
    }
}

/// A TTL given in the attribute, validated.
#[derive(Debug, Clone)]
pub(crate) enum TtlSpec {
    /// `ttl = 600` or `ttl = "10m"`.
    Fixed(Duration),
    /// `ttl = profile("user_profile")`.
    Profile(String),
}

/// `cache_none` or `cache_none(ttl = ...)`.
#[derive(Debug, Clone)]
pub(crate) struct CacheNone {
    pub span: Span,
    pub ttl: Option<TtlSpec>,
}

/// Everything the attributes can say; which options are allowed depends on the [`Kind`].
#[derive(Default)]
pub(crate) struct Args {
    pub key: Option<LitStr>,
    pub ttl: Option<TtlSpec>,
    pub tags: Vec<LitStr>,
    pub keys: Vec<LitStr>,
    pub patterns: Vec<LitStr>,
    /// `#[cache_put(get_user(db, id))]`: the cached call whose entry the writer fills.
    pub call: Option<Expr>,
    /// `#[invalidates(calls = [get_user(db, id)])]`: cached calls whose entries are evicted.
    pub calls: Vec<Expr>,
    /// The options given, with their spans (to report those a coupled call replaces).
    pub given: Vec<(String, Span)>,
    pub name: Option<LitStr>,
    pub cache: Option<Expr>,
    pub skip: Vec<Ident>,
    pub skip_span: Option<Span>,
    pub cache_none: Option<CacheNone>,
    /// `returns = plain | result | option`: overrides the detection from the return type.
    pub returns: Option<(Shape, Span)>,
    pub krate: Option<Path>,
    /// Freshness and stampede options of `#[cached]` (issue 4).
    pub fresh: Freshness,
    /// Some option was unknown or did not parse: checks that depend on the set of options
    /// given ("nothing to invalidate", "needs a key") stay quiet to avoid a cascade.
    pub had_errors: bool,
}

/// `stale`, `stale_if_error`, `jitter`, `early_refresh`, `lock`, `single_flight`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Freshness {
    pub stale: Option<Duration>,
    pub stale_if_error: Option<Duration>,
    pub stale_if_error_span: Option<Span>,
    pub jitter: Option<f64>,
    /// `Some(None)`: off; `Some(Some(beta))`: on with β.
    pub early_refresh: Option<Option<f64>>,
    /// `(ttl, wait)` of the fill lock.
    pub lock: Option<(Duration, Duration)>,
    pub single_flight: Option<bool>,
    /// `background_refresh` (or `= true`): refreshes run in a background task; the span of
    /// the option, for the errors about it.
    pub background: Option<Span>,
}

/// Reads the attribute's tokens. Errors go to `errors`; what parsed is returned.
pub(crate) fn parse(kind: Kind, tokens: TokenStream, errors: &Ctxt) -> Args {
    let mut args = Args::default();
    let tokens = if kind == Kind::CachePut {
        let (call, rest) = crate::coupled::split_call(tokens);
        if let Some(call) = call {
            match crate::coupled::check_call(&call) {
                Ok(()) => args.call = Some(call),
                Err(e) => {
                    errors.push(e);
                    args.had_errors = true;
                }
            }
        }
        rest
    } else {
        tokens
    };
    let items = match NestedMeta::parse_meta_list(tokens) {
        Ok(items) => items,
        Err(e) => {
            errors.push(e);
            args.had_errors = true;
            return args;
        }
    };
    let allowed = kind.options();
    let mut seen: Vec<String> = Vec::new();
    for item in &items {
        let meta = match item {
            NestedMeta::Meta(meta) => meta,
            NestedMeta::Lit(lit) => {
                let call_form = if kind == Kind::CachePut {
                    " (or first the cached call whose entry it writes: `#[cache_put(get_user(db, id))]`)"
                } else {
                    ""
                };
                errors.push(
                    Error::custom(format!(
                        "expected an option such as `key = \"...\"`, found a literal{call_form}; the options of {} are: {}",
                        kind.attr(),
                        allowed.join(", ")
                    ))
                    .with_span(lit),
                );
                args.had_errors = true;
                continue;
            }
            NestedMeta::NameValueInvalidExpr(invalid) => {
                errors.push(invalid.error.clone().with_span(&invalid.value));
                args.had_errors = true;
                continue;
            }
        };
        let path = meta.path();
        let name = match path.get_ident() {
            Some(ident) => ident.to_string(),
            None => path_text(path),
        };
        if !allowed.contains(&name.as_str()) {
            let msg = match other_attr_option(kind, &name) {
                Some(other) => format!(
                    "`{name}` is an option of {other}, not of {}; the options of {} are: {}",
                    kind.attr(),
                    kind.attr(),
                    allowed.join(", ")
                ),
                None => format!(
                    "unknown option `{name}` of {}{}; the options are: {}",
                    kind.attr(),
                    crate::suggest::did_you_mean(&name, allowed.iter().copied())
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default(),
                    allowed.join(", ")
                ),
            };
            errors.push(Error::custom(msg).with_span(path));
            args.had_errors = true;
            continue;
        }
        if seen.contains(&name) {
            errors.push(
                Error::custom(format!("duplicate option `{name}`: give it once")).with_span(path),
            );
            continue;
        }
        seen.push(name.clone());
        args.given.push((name.clone(), path.span()));
        let before = errors.len();
        match name.as_str() {
            "key" => args.key = errors.handle(template_lit(meta, "key", "\"user:{id}\"")),
            "name" => {
                args.name = errors.handle(template_lit(meta, "name", "\"users::get\"").and_then(
                    |lit| {
                        if lit.value().trim().is_empty() {
                            Err(Error::custom("`name` cannot be empty").with_span(&lit))
                        } else {
                            Ok(lit)
                        }
                    },
                ))
            }
            "ttl" => args.ttl = errors.handle(ttl_option(meta)),
            "tags" => args.tags = errors.handle(lit_list(meta, "tags")).unwrap_or_default(),
            "keys" => args.keys = errors.handle(lit_list(meta, "keys")).unwrap_or_default(),
            "patterns" => {
                args.patterns = errors
                    .handle(lit_list(meta, "patterns"))
                    .unwrap_or_default()
            }
            "calls" => {
                args.calls = errors
                    .handle(crate::coupled::call_list(meta))
                    .unwrap_or_default()
            }
            "cache" => args.cache = errors.handle(cache_expr(meta)),
            "skip" => {
                args.skip_span = Some(meta.span());
                args.skip = errors.handle(skip_list(meta)).unwrap_or_default();
            }
            "cache_none" => args.cache_none = errors.handle(cache_none(meta)),
            "returns" => args.returns = errors.handle(returns(meta)),
            "crate" => args.krate = errors.handle(crate_path(meta)),
            "stale" => args.fresh.stale = errors.handle(window(meta, "stale")),
            "stale_if_error" => {
                args.fresh.stale_if_error_span = Some(path.span());
                args.fresh.stale_if_error = errors.handle(window(meta, "stale_if_error"))
            }
            "jitter" => args.fresh.jitter = errors.handle(jitter(meta)),
            "early_refresh" => args.fresh.early_refresh = errors.handle(early_refresh(meta)),
            "lock" => args.fresh.lock = errors.handle(lock(meta)),
            "single_flight" => {
                args.fresh.single_flight = errors.handle(bool_value(meta, "single_flight"))
            }
            "background_refresh" => {
                args.fresh.background = errors
                    .handle(background_refresh(meta))
                    .and_then(|on| on.then(|| meta.span()));
            }
            _ => {
                // `allowed` only lists the names matched above.
                errors.push(Error::unknown_field(&name).with_span(path));
            }
        }
        if errors.len() != before {
            args.had_errors = true;
        }
    }
    args
}

fn path_text(path: &Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// Names the attribute an option belongs to, when it belongs to another one.
fn other_attr_option(kind: Kind, name: &str) -> Option<&'static str> {
    [Kind::Cached, Kind::Invalidates, Kind::CachePut]
        .into_iter()
        .filter(|k| *k != kind)
        .find(|k| k.options().contains(&name))
        .map(Kind::attr)
}

pub(crate) fn name_value<'a>(meta: &'a Meta, name: &str, example: &str) -> Result<&'a Expr, Error> {
    match meta {
        Meta::NameValue(nv) => Ok(strip_group(&nv.value)),
        _ => Err(Error::custom(format!("expected `{name} = {example}`")).with_span(meta)),
    }
}

pub(crate) fn strip_group(mut e: &Expr) -> &Expr {
    while let Expr::Group(g) = e {
        e = &g.expr;
    }
    e
}

fn template_lit(meta: &Meta, name: &str, example: &str) -> Result<LitStr, Error> {
    match name_value(meta, name, example)? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(Error::custom(format!(
            "`{name}` takes a string literal: `{name} = {example}`"
        ))
        .with_span(other)),
    }
}

fn lit_list(meta: &Meta, name: &str) -> Result<Vec<LitStr>, Error> {
    let example = "[\"users\", \"user:{id}\"]";
    let expr = name_value(meta, name, example)?;
    let Expr::Array(array) = expr else {
        return Err(Error::custom(format!(
            "`{name}` takes a list of string literals: `{name} = {example}`"
        ))
        .with_span(expr));
    };
    let mut errors = Error::accumulator();
    let mut out = Vec::new();
    for elem in &array.elems {
        match strip_group(elem) {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => out.push(s.clone()),
            other => errors.push(
                Error::custom(format!(
                    "`{name}` takes string literals (templates such as \"user:{{id}}\")"
                ))
                .with_span(other),
            ),
        }
    }
    errors.finish_with(out)
}
