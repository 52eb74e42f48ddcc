//! Each attribute's parser against the options its attribute lists.

use super::*;
use quote::quote;

const KINDS: [Kind; 3] = [Kind::Cached, Kind::Invalidates, Kind::CachePut];

fn messages(cx: Ctxt) -> Vec<String> {
    match cx.check() {
        Ok(()) => Vec::new(),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn every_attribute_takes_the_common_options() {
    for kind in KINDS {
        for option in Common::OPTIONS {
            assert!(
                kind.options().contains(&option),
                "{option} of {}",
                kind.attr()
            );
        }
    }
}

/// Every option an attribute lists reaches a value parser of that attribute's own parser or
/// of `Common` (each refuses `option(x, y)` with its own message, or takes it), never the
/// fallback for a name no parser reads.
#[test]
fn every_listed_option_is_read_by_its_attribute_s_parser() {
    for kind in KINDS {
        for option in kind.options() {
            let ident = syn::Ident::new(
                if *option == "crate" { "krate" } else { option },
                Span::call_site(),
            );
            let tokens = if *option == "crate" {
                quote!(crate(x, y))
            } else {
                quote!(#ident(x, y))
            };
            let cx = Ctxt::new();
            let _ = parse(kind, tokens, &cx);
            for m in messages(cx) {
                assert!(
                    !m.starts_with(&format!("Unknown field: `{option}`")),
                    "{option} of {}: {m}",
                    kind.attr()
                );
            }
        }
    }
}

#[test]
fn an_option_of_another_attribute_is_refused_by_the_parser_and_named() -> Result<(), String> {
    let cx = Ctxt::new();
    let args = parse(
        Kind::Invalidates,
        quote!(key = "user:{id}", tags = ["users"]),
        &cx,
    );
    let Args::Invalidates(args) = args else {
        return Err("not the arguments of #[invalidates]".into());
    };
    assert_eq!(args.tags.len(), 1);
    assert!(args.common.had_errors);
    assert_eq!(
        messages(cx),
        [
            "`key` is an option of #[cached], not of #[invalidates]; the options of #[invalidates] are: tags, keys, patterns, calls, name, cache, returns, crate"
        ]
    );
    Ok(())
}

#[test]
fn cache_put_reads_its_call_then_its_options() -> Result<(), String> {
    let cx = Ctxt::new();
    let args = parse(Kind::CachePut, quote!(get_user(db, id), name = "put"), &cx);
    assert!(messages(cx).is_empty());
    let Args::CachePut(args) = args else {
        return Err("not the arguments of #[cache_put]".into());
    };
    assert!(args.call.is_some());
    assert!(args.common.name.is_some());
    assert_eq!(args.common.given.len(), 1);
    Ok(())
}

#[test]
fn cached_keeps_its_freshness_options_and_every_error() -> Result<(), String> {
    let cx = Ctxt::new();
    let args = parse(
        Kind::Cached,
        quote!(stale = "1m", keys = ["x"], ttl = "soon", stale = "2m"),
        &cx,
    );
    let Args::Cached(args) = args else {
        return Err("not the arguments of #[cached]".into());
    };
    assert!(args.fresh.stale.is_some());
    assert!(args.ttl.is_none());
    let messages = messages(cx);
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].starts_with("`keys` is an option of #[invalidates]"));
    assert!(messages[2].starts_with("duplicate option `stale`"));
    Ok(())
}
