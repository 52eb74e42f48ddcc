//! What the expansion asks of types and expressions: `impl Trait`, borrows, primitive
//! integers, whether a stored type can be probed for `Clone`, whether the cache expression can
//! be borrowed, whether tokens mention a name.

use super::Func;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit::Visit;
use syn::{Ident, Type};

pub(super) struct FindImpl(pub(super) bool);

impl<'ast> Visit<'ast> for FindImpl {
    fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
        self.0 = true;
    }
}

/// Whether a type borrows: a reference, or a lifetime other than `'static`.
pub(super) fn borrows(ty: &Type) -> bool {
    struct Borrows(bool);
    impl<'ast> Visit<'ast> for Borrows {
        fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
            match &r.lifetime {
                Some(l) if l.ident == "static" => self.visit_type(&r.elem),
                _ => self.0 = true,
            }
        }
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if l.ident != "static" {
                self.0 = true;
            }
        }
        // What a function's or a closure trait's signature borrows is not held: `fn(&str)`
        // and `impl Fn(&str) + 'static` own nothing borrowed.
        fn visit_type_fn_ptr(&mut self, _: &'ast syn::TypeFnPtr) {}
        fn visit_parenthesized_generic_arguments(
            &mut self,
            _: &'ast syn::ParenthesizedGenericArguments,
        ) {
        }
        fn visit_bound_lifetimes(&mut self, _: &'ast syn::BoundLifetimes) {}
    }
    let mut b = Borrows(false);
    b.visit_type(ty);
    b.0
}

/// Whether a type is written as a primitive integer type, or a shared reference to one.
pub(super) fn is_int_type(ty: &Type) -> bool {
    match strip_parens(ty) {
        Type::Reference(r) if r.mutability.is_none() => is_int_type(&r.elem),
        Type::Path(p) if p.qself.is_none() => {
            let segs = &p.path.segments;
            let last = match segs.last() {
                Some(seg) if seg.arguments.is_empty() => seg,
                _ => return false,
            };
            // `u64`, or `core::primitive::u64` / `std::primitive::u64`.
            let prefix_ok = match segs.len() {
                1 => p.path.leading_colon.is_none(),
                3 => {
                    (segs[0].ident == "core" || segs[0].ident == "std")
                        && segs[1].ident == "primitive"
                }
                _ => false,
            };
            prefix_ok
                && matches!(
                    last.ident.to_string().as_str(),
                    "u8" | "u16"
                        | "u32"
                        | "u64"
                        | "u128"
                        | "usize"
                        | "i8"
                        | "i16"
                        | "i32"
                        | "i64"
                        | "i128"
                        | "isize"
                )
        }
        _ => false,
    }
}

/// Whether a type mentions `impl Trait`.
pub(crate) fn has_impl_trait(ty: &Type) -> bool {
    let mut f = FindImpl(false);
    f.visit_type(ty);
    f.0
}

/// Whether a stored type can be probed for `Clone` (see `CloneProbe` in the runtime's
/// `macro_support/probes.rs`): the probe's method resolution ignores lifetimes, so a type that might
/// not be `'static` must not be probed (it would not compile). Rejected: lifetimes other than
/// `'static` and references, `Self`, `impl` and `dyn` types, `_`, macros, function pointers,
/// the function's type parameters, names that look like a type parameter of an enclosing
/// `impl` (one capital letter, then digits: `T`, `U`, `K2`), and a `Cow` without `'static`
/// (its lifetime may be elided). A type that is not probed is still cached; its memory hits
/// decode the stored bytes.
pub(crate) fn probe_clone(ty: &Type, func: &Func) -> bool {
    struct Probe<'a> {
        ok: bool,
        type_params: &'a [Ident],
    }
    impl<'ast> Visit<'ast> for Probe<'_> {
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if l.ident != "static" {
                self.ok = false;
            }
        }
        fn visit_type(&mut self, ty: &'ast Type) {
            match ty {
                Type::Reference(_)
                | Type::ImplTrait(_)
                | Type::TraitObject(_)
                | Type::Infer(_)
                | Type::Macro(_)
                | Type::FnPtr(_)
                | Type::Never(_)
                | Type::Verbatim(_)
                | Type::Ptr(_) => self.ok = false,
                _ => syn::visit::visit_type(self, ty),
            }
        }
        fn visit_path_segment(&mut self, seg: &'ast syn::PathSegment) {
            if seg.ident == "Cow" {
                let has_static = match &seg.arguments {
                    syn::PathArguments::AngleBracketed(a) => a.args.iter().any(|arg| {
                        matches!(arg, syn::GenericArgument::Lifetime(l) if l.ident == "static")
                    }),
                    _ => false,
                };
                if !has_static {
                    self.ok = false;
                }
            }
            syn::visit::visit_path_segment(self, seg);
        }
        fn visit_ident(&mut self, ident: &'ast Ident) {
            let name = ident.to_string();
            let mut chars = name.chars();
            let looks_generic = chars.next().is_some_and(|c| c.is_ascii_uppercase())
                && chars.all(|c| c.is_ascii_digit());
            if name == "Self" || looks_generic || self.type_params.iter().any(|t| t == ident) {
                self.ok = false;
            }
        }
    }
    let mut p = Probe {
        ok: true,
        type_params: &func.type_params,
    };
    p.visit_type(ty);
    p.ok
}

/// Whether the `cache = ...` expression of a `#[cached]` function may be borrowed for the whole
/// call: the function's body is moved into a closure while the call runs, so the expression
/// must not borrow anything that closure may move: it names no argument, and names `self` only
/// when the receiver is `&self` (the closure then copies a shared reference).
pub(crate) fn cache_borrowable(expr: &syn::Expr, func: &Func) -> bool {
    let tokens = expr.to_token_stream();
    let self_ident = Ident::new("self", Span::call_site());
    !func
        .params
        .iter()
        .any(|p| mentions(tokens.clone(), &p.ident))
        && (func.shared_self || !mentions(tokens, &self_ident))
}

/// Whether `ident` occurs anywhere in `tokens`.
pub(crate) fn mentions(tokens: TokenStream, ident: &Ident) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == *ident,
        TokenTree::Group(g) => mentions(g.stream(), ident),
        _ => false,
    })
}

/// The last segment of a type written as a path.
pub(super) fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match strip_parens(ty) {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

/// The first type argument of a type written as a path with angle brackets.
pub(super) fn first_type_arg(ty: &Type) -> Option<&Type> {
    let syn::PathArguments::AngleBracketed(args) = &last_segment(ty)?.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

pub(super) fn strip_parens(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Paren(p) => ty = &p.elem,
            Type::Group(g) => ty = &g.elem,
            _ => return ty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Kind;
    use crate::ast::{Shape, parse_item};
    use crate::ctxt::Ctxt;

    fn func(tokens: TokenStream) -> Result<Func, String> {
        let cx = Ctxt::new();
        let func = parse_item(Kind::Cached, tokens, &cx);
        // Only the parsed function matters here; each test asserts on it.
        let _ = cx.check();
        func.map_err(|_| "not a function".to_owned())
    }

    fn ret(f: &Func) -> Result<&Type, String> {
        f.ret_type().ok_or_else(|| "no return type".to_owned())
    }

    #[test]
    fn probes_only_types_that_are_surely_static() -> Result<(), String> {
        let probed = |item: TokenStream| -> Result<bool, String> {
            let f = func(item)?;
            Ok(probe_clone(ret(&f)?, &f))
        };
        assert!(probed(quote::quote!(
            async fn f(id: u64) -> User {}
        ))?);
        assert!(probed(quote::quote!(
            async fn f() -> Vec<model::User> {}
        ))?);
        assert!(probed(quote::quote!(
            async fn f() -> Option<(u8, String)> {}
        ))?);
        assert!(probed(quote::quote!(
            async fn f() -> Cow<'static, str> {}
        ))?);
        assert!(probed(quote::quote!(
            async fn f() -> HashMap<String, Vec<u64>> {}
        ))?);
        // The function's own type parameters, names that look like an impl's, `Self`,
        // lifetimes, references, elided `Cow` lifetimes, `impl` and `dyn` types.
        assert!(!probed(quote::quote!(
            async fn f<Item>() -> Vec<Item> {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f() -> T {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f() -> Vec<K2> {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f() -> <T as Tr>::Out {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f(&self) -> Self {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f<'a>(x: &'a str) -> Cow<'a, str> {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f(x: &str) -> Cow<str> {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f() -> Wrapper<'_> {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f() -> &'static str {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f() -> impl Serialize {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f() -> Box<dyn Tr> {}
        ))?);
        assert!(!probed(quote::quote!(
            async fn f() -> my_type!() {}
        ))?);
        Ok(())
    }

    #[test]
    fn borrows_the_cache_only_when_the_body_cannot_move_what_it_borrows() -> Result<(), String> {
        let borrowable = |item: TokenStream, expr: TokenStream| -> Result<bool, String> {
            let f = func(item)?;
            let expr: syn::Expr = syn::parse2(expr).map_err(|e| e.to_string())?;
            Ok(cache_borrowable(&expr, &f))
        };
        let by_ref = quote::quote!(
            async fn f(&self, id: u64) -> u64 {}
        );
        assert!(borrowable(by_ref.clone(), quote::quote!(self.cache))?);
        assert!(borrowable(
            by_ref.clone(),
            quote::quote!(self.inner.cache())
        )?);
        assert!(borrowable(by_ref.clone(), quote::quote!(current()))?);
        assert!(borrowable(by_ref.clone(), quote::quote!(CACHE))?);
        // An argument may be moved into the body.
        assert!(!borrowable(by_ref, quote::quote!(pick(id)))?);
        let db = quote::quote!(
            async fn f(db: Db, id: u64) -> u64 {}
        );
        assert!(!borrowable(db, quote::quote!(db.cache))?);
        // `self` by value, `&mut self` or typed: the body may move or use it mutably.
        for item in [
            quote::quote!(
                async fn f(self) -> u64 {}
            ),
            quote::quote!(
                async fn f(&mut self) -> u64 {}
            ),
            quote::quote!(
                async fn f(self: Arc<Self>) -> u64 {}
            ),
        ] {
            assert!(!borrowable(item.clone(), quote::quote!(self.cache))?);
            assert!(borrowable(item, quote::quote!(current()))?);
        }
        Ok(())
    }

    #[test]
    fn result_of_option_is_its_own_shape() -> Result<(), String> {
        let shape =
            |item: TokenStream, returns: Option<Shape>| -> Result<(Shape, String), String> {
                let f = func(item)?;
                let shape = f.shape(returns);
                let stored = f
                    .stored_type(shape)
                    .map(|t| t.to_token_stream().to_string())
                    .unwrap_or_default();
                Ok((shape, stored))
            };
        let of = |s: Shape, t: &str| (s, t.to_owned());
        assert_eq!(
            shape(
                quote::quote!(
                    async fn f() -> Result<Option<User>, E> {}
                ),
                None
            )?,
            of(Shape::ResultOption, "User")
        );
        assert_eq!(
            shape(
                quote::quote!(
                    async fn f() -> std::io::Result<std::option::Option<u8>> {}
                ),
                None
            )?,
            of(Shape::ResultOption, "u8")
        );
        // An alias of `Result`, named by `returns = result`.
        assert_eq!(
            shape(
                quote::quote!(
                    async fn f() -> ApiResult<Option<u8>> {}
                ),
                Some(Shape::Result)
            )?,
            of(Shape::ResultOption, "u8")
        );
        assert_eq!(
            shape(
                quote::quote!(
                    async fn f() -> Result<Vec<Option<u8>>, E> {}
                ),
                None
            )?,
            of(Shape::Result, "Vec < Option < u8 > >")
        );
        assert_eq!(
            shape(
                quote::quote!(
                    async fn f() -> Option<Result<u8, E>> {}
                ),
                None
            )?,
            of(Shape::Option, "Result < u8 , E >")
        );
        assert_eq!(
            shape(
                quote::quote!(
                    async fn f() -> Result<Option<u8>, E> {}
                ),
                Some(Shape::Plain)
            )?,
            of(Shape::Plain, "Result < Option < u8 > , E >")
        );
        Ok(())
    }

    #[test]
    fn integer_arguments_are_recognised() -> Result<(), String> {
        let f = func(quote::quote!(
            async fn f(
                a: u64,
                b: &i32,
                c: core::primitive::usize,
                d: String,
                (e, g): (u8, u8),
                h: &mut u8,
            ) -> u64 {
            }
        ))?;
        let int = |name: &str| f.param(name).map(|p| p.int);
        assert_eq!(int("a"), Some(true));
        assert_eq!(int("b"), Some(true));
        assert_eq!(int("c"), Some(true));
        assert_eq!(int("d"), Some(false));
        assert_eq!(int("e"), Some(false));
        assert_eq!(int("g"), Some(false));
        assert_eq!(int("h"), Some(false));
        Ok(())
    }
}
