//! The value of each option: TTLs and durations, the cache expression, `skip`, the freshness
//! options, `cache_none`, `returns`, `crate`, each read with a spanned error that says what
//! is accepted.

use super::*;

pub(super) const TTL_FORMS: &str =
    "expected `ttl = 600` (seconds), `ttl = \"10m\"` (a duration) or `ttl = profile(\"name\")`";

pub(super) fn ttl_option(meta: &Meta) -> Result<TtlSpec, Error> {
    match meta {
        Meta::NameValue(nv) => ttl_expr(&nv.value),
        _ => Err(Error::custom(TTL_FORMS).with_span(meta)),
    }
}

/// Validates a TTL expression at compile time.
pub(super) fn ttl_expr(expr: &Expr) -> Result<TtlSpec, Error> {
    let expr = strip_group(expr);
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            if int.base10_digits().starts_with('-') {
                return Err(Error::custom("a TTL cannot be negative; give a positive number of seconds").with_span(int));
            }
            if !int.suffix().is_empty() {
                return Err(Error::custom(
                    "write the TTL in seconds without a suffix (`ttl = 600`), or as a duration (`ttl = \"10m\"`)",
                )
                .with_span(int));
            }
            let secs: u64 = int.base10_parse().map_err(|e| Error::from(e).with_span(int))?;
            if secs == 0 {
                return Err(Error::custom(
                    "a TTL of zero would expire every entry at once; give a positive number of seconds, or leave `ttl` out for the cache's default",
                )
                .with_span(int));
            }
            Ok(TtlSpec::Fixed(Duration::from_secs(secs)))
        }
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) if f.base10_digits().starts_with('-') => {
            Err(Error::custom("a TTL cannot be negative; give a positive number of seconds").with_span(f))
        }
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => Err(Error::custom(
            "TTL seconds must be a whole number; write fractions as a duration string such as `ttl = \"1500ms\"`",
        )
        .with_span(f)),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            let text = s.value();
            match humantime::parse_duration(text.trim()) {
                Ok(d) if d.is_zero() => Err(Error::custom(format!(
                    "a TTL of `{text}` would expire every entry at once; give a positive duration, or leave `ttl` out for the cache's default"
                ))
                .with_span(s)),
                Ok(d) => Ok(TtlSpec::Fixed(d)),
                Err(e) => {
                    let hint = if text.trim_start().starts_with('-') {
                        "a TTL cannot be negative".to_owned()
                    } else {
                        format!("`{text}` is not a duration ({e})")
                    };
                    Err(Error::custom(format!(
                        "{hint}; write it like \"30s\", \"10m\", \"1h30m\" or \"250ms\""
                    ))
                    .with_span(s))
                }
            }
        }
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
            Err(Error::custom("a TTL cannot be negative; give a positive number of seconds").with_span(expr))
        }
        Expr::Call(call) => {
            let func = strip_group(&call.func);
            let fname = match func {
                Expr::Path(p) => p.path.get_ident().map(ToString::to_string),
                _ => None,
            };
            match fname.as_deref() {
                Some("profile") => {}
                Some(other) => {
                    return Err(Error::custom(format!(
                        "unknown TTL form `{other}(...)`; did you mean `profile(\"name\")`? {TTL_FORMS}"
                    ))
                    .with_span(func));
                }
                None => return Err(Error::custom(TTL_FORMS).with_span(expr)),
            }
            let mut args = call.args.iter();
            match (args.next().map(strip_group), args.next()) {
                (
                    Some(Expr::Lit(ExprLit {
                        lit: Lit::Str(name),
                        ..
                    })),
                    None,
                ) => {
                    let value = name.value();
                    if value.trim().is_empty() {
                        Err(Error::custom(
                            "the profile name is empty; name a TTL profile of the cache's configuration, such as `profile(\"user_profile\")`",
                        )
                        .with_span(name))
                    } else {
                        Ok(TtlSpec::Profile(value))
                    }
                }
                _ => Err(Error::custom(
                    "`profile` takes the profile's name as one string literal: `ttl = profile(\"user_profile\")`",
                )
                .with_span(&if call.args.is_empty() {
                    call.span()
                } else {
                    call.args.span()
                })),
            }
        }
        _ => Err(Error::custom(TTL_FORMS).with_span(expr)),
    }
}

/// Rejects `.await` in `cache = ...`: the expression is evaluated synchronously before the call
/// starts (the call drivers rely on it).
struct FindAwait(Option<Span>);

impl<'ast> Visit<'ast> for FindAwait {
    fn visit_expr_await(&mut self, e: &'ast syn::ExprAwait) {
        if self.0.is_none() {
            self.0 = Some(e.await_token.span);
        }
    }
    fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
}

pub(super) fn cache_expr(meta: &Meta) -> Result<Expr, Error> {
    let expr = name_value(meta, "cache", "self.cache")?;
    let mut find = FindAwait(None);
    find.visit_expr(expr);
    if let Some(span) = find.0 {
        return Err(Error::custom(
            "`cache = ...` cannot `.await`: it is evaluated before the call starts; keep the `Cache` in a field, a static or a function",
        )
        .with_span(&span));
    }
    Ok(expr.clone())
}

pub(super) fn skip_list(meta: &Meta) -> Result<Vec<Ident>, Error> {
    let Meta::List(list) = meta else {
        return Err(
            Error::custom("expected `skip(arg, ...)`: the arguments left out of the key")
                .with_span(meta),
        );
    };
    let items = NestedMeta::parse_meta_list(list.tokens.clone())?;
    let mut errors = Error::accumulator();
    let mut out = Vec::new();
    if items.is_empty() {
        errors.push(
            Error::custom(
                "`skip()` is empty; name the arguments to leave out of the key, or remove it",
            )
            .with_span(meta),
        );
    }
    for item in &items {
        match item {
            NestedMeta::Meta(Meta::Path(p)) if p.get_ident().is_some() => {
                if let Some(ident) = p.get_ident() {
                    out.push(ident.clone());
                }
            }
            other => errors.push(
                Error::custom("`skip` takes argument names: `skip(db, client)`").with_span(other),
            ),
        }
    }
    errors.finish_with(out)
}

/// A duration option (`stale = "30s"`, `stale = 30`): validated like a TTL, profiles excluded.
pub(super) fn duration_of(expr: &Expr, name: &str) -> Result<Duration, Error> {
    match ttl_expr(expr) {
        Ok(TtlSpec::Fixed(d)) => Ok(d),
        Ok(TtlSpec::Profile(_)) => Err(Error::custom(format!(
            "`{name}` takes a duration (`{name} = \"30s\"` or seconds), not a TTL profile"
        ))
        .with_span(expr)),
        Err(e) => Err(Error::custom(
            e.to_string()
                .replace("a TTL", &format!("`{name}`"))
                .replace("TTL", name),
        )
        .with_span(expr)),
    }
}

pub(super) fn window(meta: &Meta, name: &str) -> Result<Duration, Error> {
    duration_of(name_value(meta, name, "\"30s\"")?, name)
}

pub(super) fn float_of(expr: &Expr) -> Option<f64> {
    match strip_group(expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<u32>().ok().map(f64::from),
        _ => None,
    }
}

pub(super) fn jitter(meta: &Meta) -> Result<f64, Error> {
    let expr = name_value(meta, "jitter", "0.1")?;
    match float_of(expr) {
        Some(j) if (0.0..=1.0).contains(&j) => Ok(j),
        Some(j) => Err(Error::custom(format!(
            "`jitter = {j}` is out of range: give a fraction of the TTL between 0 and 1 (`jitter = 0.1` shortens TTLs by up to 10%)"
        ))
        .with_span(expr)),
        None => Err(Error::custom(
            "`jitter` takes a number between 0 and 1: `jitter = 0.1`",
        )
        .with_span(expr)),
    }
}

pub(super) fn bool_value(meta: &Meta, name: &str) -> Result<bool, Error> {
    let expr = name_value(meta, name, "false")?;
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        other => Err(Error::custom(format!("`{name}` takes `true` or `false`")).with_span(other)),
    }
}

/// `background_refresh` or `background_refresh = true | false`.
pub(super) fn background_refresh(meta: &Meta) -> Result<bool, Error> {
    match meta {
        Meta::Path(_) => Ok(true),
        Meta::NameValue(nv) => match strip_group(&nv.value) {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            }) => Ok(b.value),
            other => Err(Error::custom(
                "`background_refresh` takes no value (or `true` / `false`): write `background_refresh` to run early and stale refreshes in a background task",
            )
            .with_span(other)),
        },
        Meta::List(_) => Err(Error::custom(
            "write `background_refresh` (no arguments): early refreshes and stale-while-revalidate refreshes then run in a background task",
        )
        .with_span(meta)),
    }
}

pub(super) fn early_refresh(meta: &Meta) -> Result<Option<f64>, Error> {
    let expr = name_value(meta, "early_refresh", "false")?;
    if let Expr::Lit(ExprLit {
        lit: Lit::Bool(b), ..
    }) = expr
    {
        return Ok(b.value.then_some(1.0));
    }
    match float_of(expr) {
        Some(beta) if beta > 0.0 && beta.is_finite() => Ok(Some(beta)),
        _ => Err(Error::custom(
            "`early_refresh` takes `false` (off), `true` (β = 1) or a positive β such as `early_refresh = 2.0` (earlier refreshes)",
        )
        .with_span(expr)),
    }
}

/// `lock`, `lock = "10s"` (lifetime and wait), or `lock(ttl = "10s", wait = "5s")`.
pub(super) fn lock(meta: &Meta) -> Result<(Duration, Duration), Error> {
    const DEFAULT: Duration = Duration::from_secs(10);
    match meta {
        Meta::Path(_) => Ok((DEFAULT, DEFAULT)),
        Meta::NameValue(nv) => {
            let d = duration_of(&nv.value, "lock")?;
            Ok((d, d))
        }
        Meta::List(list) => {
            let items = NestedMeta::parse_meta_list(list.tokens.clone())?;
            let mut errors = Error::accumulator();
            let (mut ttl, mut wait) = (None, None);
            for item in &items {
                match item {
                    NestedMeta::Meta(Meta::NameValue(nv)) if nv.path.is_ident("ttl") => {
                        ttl = errors.handle(duration_of(&nv.value, "ttl"));
                    }
                    NestedMeta::Meta(Meta::NameValue(nv)) if nv.path.is_ident("wait") => {
                        wait = errors.handle(duration_of(&nv.value, "wait"));
                    }
                    NestedMeta::Meta(m) => errors.push(
                        Error::unknown_field_with_alts(&path_text(m.path()), &["ttl", "wait"])
                            .with_span(m.path()),
                    ),
                    other => errors.push(
                        Error::custom("expected `lock(ttl = \"10s\", wait = \"5s\")`")
                            .with_span(other),
                    ),
                }
            }
            let ttl = ttl.unwrap_or(DEFAULT);
            errors.finish_with((ttl, wait.unwrap_or(ttl)))
        }
    }
}

pub(super) fn cache_none(meta: &Meta) -> Result<CacheNone, Error> {
    let span = meta.span();
    match meta {
        Meta::Path(_) => Ok(CacheNone { span, ttl: None }),
        Meta::List(list) => {
            let items = NestedMeta::parse_meta_list(list.tokens.clone())?;
            let mut errors = Error::accumulator();
            let mut ttl = None;
            for item in &items {
                match item {
                    NestedMeta::Meta(m @ Meta::NameValue(nv)) if nv.path.is_ident("ttl") => {
                        if ttl.is_some() {
                            errors.push(Error::custom("duplicate option `ttl`: give it once").with_span(&nv.path));
                        } else {
                            ttl = errors.handle(ttl_option(m));
                        }
                    }
                    NestedMeta::Meta(m) => {
                        errors.push(Error::unknown_field_with_alts(&path_text(m.path()), &["ttl"]).with_span(m.path()))
                    }
                    other => errors.push(Error::custom("expected `cache_none(ttl = ...)`").with_span(other)),
                }
            }
            errors.finish_with(CacheNone { span, ttl })
        }
        Meta::NameValue(_) => Err(Error::custom(
            "write `cache_none` to store `None` results, or `cache_none(ttl = \"30s\")` to store them for a shorter time",
        )
        .with_span(meta)),
    }
}

pub(super) fn returns(meta: &Meta) -> Result<(Shape, Span), Error> {
    let expr = name_value(meta, "returns", "result")?;
    let ident = match expr {
        Expr::Path(p) => p.path.get_ident().map(ToString::to_string),
        _ => None,
    };
    let forms = ["plain", "result", "option"];
    match ident.as_deref() {
        Some("plain") => Ok((Shape::Plain, expr.span())),
        Some("result") => Ok((Shape::Result, expr.span())),
        Some("option") => Ok((Shape::Option, expr.span())),
        Some(other) => Err(Error::custom(format!(
            "unknown return shape `{other}`{}; expected `returns = plain`, `returns = result` or `returns = option`",
            crate::suggest::did_you_mean(other, forms.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default()
        ))
        .with_span(expr)),
        None => Err(Error::custom(
            "expected `returns = plain`, `returns = result` or `returns = option`",
        )
        .with_span(expr)),
    }
}

pub(super) fn crate_path(meta: &Meta) -> Result<Path, Error> {
    let lit = template_lit(meta, "crate", "\"::cachette\"")?;
    lit.parse::<Path>().map_err(|_| {
        Error::custom(format!(
            "`crate = {:?}` is not a path; write the path of the renamed dependency, such as `crate = \"::my_cachette\"`",
            lit.value()
        ))
        .with_span(&lit)
    })
}

pub(super) fn template_lit(meta: &Meta, name: &str, example: &str) -> Result<LitStr, Error> {
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

pub(super) fn lit_list(meta: &Meta, name: &str) -> Result<Vec<LitStr>, Error> {
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
