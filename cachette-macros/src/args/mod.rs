//! The options of the three attributes, read with darling's `NestedMeta` and error type.
//!
//! One type per attribute ([`CachedArgs`], [`InvalidatesArgs`], [`CachePutArgs`]) holds only
//! the options that attribute takes, each embedding the options all take ([`Common`]); each
//! is read by its own parser over one shared loop ([`read_options`]), which refuses an option
//! the attribute does not take ([`Kind::options`]) and names the attribute it belongs to.
//! Errors are collected in the [`Ctxt`]: an unknown option, a duplicate and a bad TTL in the
//! same attribute give three errors, and the options that did parse are still checked against
//! the function.
//!
//! Hand parsing rather than darling's `FromMeta` derive: the messages name the attribute,
//! list its options in one order, tell which other attribute takes an option, and point at
//! the option's path (or the offending value) as they do here; a derive would give its own
//! "Unknown field" wording and would not see `#[cache_put]`'s leading call. darling is kept
//! for `NestedMeta` and its error type, which the value parsers (`values.rs`) return.

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

    /// The options the attribute takes, in the order its error messages list them; its
    /// parser (`CachedArgs::parse`, ...) reads exactly these.
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

/// The options every attribute takes: `name`, `cache`, `returns`, `crate`, and what the
/// reading of the options found.
#[derive(Default)]
pub(crate) struct Common {
    pub name: Option<LitStr>,
    pub cache: Option<Expr>,
    /// `returns = plain | result | option`: overrides the detection from the return type.
    pub returns: Option<(Shape, Span)>,
    pub krate: Option<Path>,
    /// The options given, with their spans (to report those a coupled call replaces).
    pub given: Vec<(String, Span)>,
    /// Some option was unknown or did not parse: checks that depend on the set of options
    /// given ("nothing to invalidate", "needs a key") stay quiet to avoid a cascade.
    pub had_errors: bool,
}

impl Common {
    #[cfg(test)]
    const OPTIONS: [&'static str; 4] = ["name", "cache", "returns", "crate"];

    /// Reads one of [`Common::OPTIONS`].
    fn read(&mut self, name: &str, meta: &Meta, errors: &Ctxt) {
        match name {
            "name" => {
                self.name = errors.handle(template_lit(meta, "name", "\"users::get\"").and_then(
                    |lit| {
                        if lit.value().trim().is_empty() {
                            Err(Error::custom("`name` cannot be empty").with_span(&lit))
                        } else {
                            Ok(lit)
                        }
                    },
                ))
            }
            "cache" => self.cache = errors.handle(cache_expr(meta)),
            "returns" => self.returns = errors.handle(returns(meta)),
            "crate" => self.krate = errors.handle(crate_path(meta)),
            // The attribute's parser only hands over the names it was given as common.
            _ => errors.push(Error::unknown_field(name).with_span(meta.path())),
        }
    }
}

/// The options of `#[cached]`.
#[derive(Default)]
pub(crate) struct CachedArgs {
    pub common: Common,
    pub key: Option<LitStr>,
    pub ttl: Option<TtlSpec>,
    pub tags: Vec<LitStr>,
    pub skip: Vec<Ident>,
    pub skip_span: Option<Span>,
    pub cache_none: Option<CacheNone>,
    /// Freshness and stampede options (issue 4).
    pub fresh: Freshness,
}

impl CachedArgs {
    fn parse(tokens: TokenStream, errors: &Ctxt) -> Self {
        let mut args = Self::default();
        read_options(
            Kind::Cached,
            tokens,
            &mut args.common,
            errors,
            |name, meta| {
                let f = &mut args.fresh;
                match name {
                    "key" => args.key = errors.handle(template_lit(meta, "key", "\"user:{id}\"")),
                    "ttl" => args.ttl = errors.handle(ttl_option(meta)),
                    "tags" => args.tags = errors.handle(lit_list(meta, "tags")).unwrap_or_default(),
                    "skip" => {
                        args.skip_span = Some(meta.span());
                        args.skip = errors.handle(skip_list(meta)).unwrap_or_default();
                    }
                    "cache_none" => args.cache_none = errors.handle(cache_none(meta)),
                    "stale" => f.stale = errors.handle(window(meta, "stale")),
                    "stale_if_error" => {
                        f.stale_if_error_span = Some(meta.path().span());
                        f.stale_if_error = errors.handle(window(meta, "stale_if_error"))
                    }
                    "jitter" => f.jitter = errors.handle(jitter(meta)),
                    "early_refresh" => f.early_refresh = errors.handle(early_refresh(meta)),
                    "lock" => f.lock = errors.handle(lock(meta)),
                    "single_flight" => {
                        f.single_flight = errors.handle(bool_value(meta, "single_flight"))
                    }
                    "background_refresh" => {
                        f.background = errors
                            .handle(background_refresh(meta))
                            .and_then(|on| on.then(|| meta.span()));
                    }
                    _ => return false,
                }
                true
            },
        );
        args
    }
}

/// The options of `#[invalidates]`.
#[derive(Default)]
pub(crate) struct InvalidatesArgs {
    pub common: Common,
    pub tags: Vec<LitStr>,
    pub keys: Vec<LitStr>,
    pub patterns: Vec<LitStr>,
    /// `calls = [get_user(db, id)]`: cached calls whose entries are evicted.
    pub calls: Vec<Expr>,
}

impl InvalidatesArgs {
    fn parse(tokens: TokenStream, errors: &Ctxt) -> Self {
        let mut args = Self::default();
        read_options(
            Kind::Invalidates,
            tokens,
            &mut args.common,
            errors,
            |name, meta| {
                let list = |what| errors.handle(lit_list(meta, what)).unwrap_or_default();
                match name {
                    "tags" => args.tags = list("tags"),
                    "keys" => args.keys = list("keys"),
                    "patterns" => args.patterns = list("patterns"),
                    "calls" => {
                        args.calls = errors
                            .handle(crate::coupled::call_list(meta))
                            .unwrap_or_default()
                    }
                    _ => return false,
                }
                true
            },
        );
        args
    }
}

/// The options of `#[cache_put]`.
#[derive(Default)]
pub(crate) struct CachePutArgs {
    pub common: Common,
    /// `#[cache_put(get_user(db, id))]`: the cached call whose entry the writer fills.
    pub call: Option<Expr>,
    pub key: Option<LitStr>,
    pub ttl: Option<TtlSpec>,
    pub tags: Vec<LitStr>,
}

impl CachePutArgs {
    fn parse(tokens: TokenStream, errors: &Ctxt) -> Self {
        let mut args = Self::default();
        let (call, tokens) = crate::coupled::split_call(tokens);
        if let Some(call) = call {
            match crate::coupled::check_call(&call) {
                Ok(()) => args.call = Some(call),
                Err(e) => {
                    errors.push(e);
                    args.common.had_errors = true;
                }
            }
        }
        read_options(
            Kind::CachePut,
            tokens,
            &mut args.common,
            errors,
            |name, meta| {
                match name {
                    "key" => args.key = errors.handle(template_lit(meta, "key", "\"user:{id}\"")),
                    "ttl" => args.ttl = errors.handle(ttl_option(meta)),
                    "tags" => args.tags = errors.handle(lit_list(meta, "tags")).unwrap_or_default(),
                    _ => return false,
                }
                true
            },
        );
        args
    }
}

/// An attribute's options, typed per attribute.
pub(crate) enum Args {
    Cached(CachedArgs),
    Invalidates(InvalidatesArgs),
    CachePut(CachePutArgs),
}

impl Args {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Args::Cached(_) => Kind::Cached,
            Args::Invalidates(_) => Kind::Invalidates,
            Args::CachePut(_) => Kind::CachePut,
        }
    }

    pub(crate) fn common(&self) -> &Common {
        match self {
            Args::Cached(a) => &a.common,
            Args::Invalidates(a) => &a.common,
            Args::CachePut(a) => &a.common,
        }
    }

    /// The TTLs the options name (`ttl`, `cache_none(ttl = ...)`).
    pub(crate) fn ttls(&self) -> Vec<&TtlSpec> {
        match self {
            Args::Cached(a) => a
                .ttl
                .iter()
                .chain(a.cache_none.as_ref().and_then(|c| c.ttl.as_ref()))
                .collect(),
            Args::Invalidates(_) => Vec::new(),
            Args::CachePut(a) => a.ttl.iter().collect(),
        }
    }
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

/// Reads the attribute's tokens with that attribute's parser. Errors go to `errors`; what
/// parsed is returned.
pub(crate) fn parse(kind: Kind, tokens: TokenStream, errors: &Ctxt) -> Args {
    match kind {
        Kind::Cached => Args::Cached(CachedArgs::parse(tokens, errors)),
        Kind::Invalidates => Args::Invalidates(InvalidatesArgs::parse(tokens, errors)),
        Kind::CachePut => Args::CachePut(CachePutArgs::parse(tokens, errors)),
    }
}

/// The loop every attribute's parser shares: splits the options, refuses literals, options
/// the attribute does not take (named as another attribute's when they are) and duplicates,
/// and hands each other option to `own` (the attribute's own options: `true` when it took
/// it), then to [`Common::read`].
fn read_options(
    kind: Kind,
    tokens: TokenStream,
    common: &mut Common,
    errors: &Ctxt,
    mut own: impl FnMut(&str, &Meta) -> bool,
) {
    let items = match NestedMeta::parse_meta_list(tokens) {
        Ok(items) => items,
        Err(e) => {
            errors.push(e);
            common.had_errors = true;
            return;
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
                common.had_errors = true;
                continue;
            }
            NestedMeta::NameValueInvalidExpr(invalid) => {
                errors.push(invalid.error.clone().with_span(&invalid.value));
                common.had_errors = true;
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
            common.had_errors = true;
            continue;
        }
        if seen.contains(&name) {
            errors.push(
                Error::custom(format!("duplicate option `{name}`: give it once")).with_span(path),
            );
            continue;
        }
        seen.push(name.clone());
        common.given.push((name.clone(), path.span()));
        let before = errors.len();
        if !own(&name, meta) {
            common.read(&name, meta, errors);
        }
        if errors.len() != before {
            common.had_errors = true;
        }
    }
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

#[cfg(test)]
mod tests;
