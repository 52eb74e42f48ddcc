//! The AST: reads the annotated item and checks that it is a function the attributes can wrap
//! (an `async fn` with a body, not `const`, `unsafe` or `extern`), and collects what the
//! expansion needs: the receiver, the bindings of the arguments, the generic parameters and
//! the return shape ([`Shape`], also what `returns = ...` gives). What is asked of types is in
//! `types.rs`.

mod types;

use types::{FindImpl, borrows, first_type_arg, is_int_type, last_segment};
pub(crate) use types::{cache_borrowable, has_impl_trait, mentions, probe_clone};

use crate::args::Kind;
use crate::ctxt::Ctxt;
use darling::Error;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, GenericParam, Ident, ItemFn, Pat, ReturnType, Safety, Type};

/// A name bound by the function's arguments.
#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub ident: Ident,
    /// The argument's type contains `impl Trait`.
    pub impl_trait: bool,
    /// The argument is a plain binding of a primitive integer type (or a reference to one):
    /// a placeholder naming it is written as digits, without the formatting machinery.
    pub int: bool,
    /// The argument's type borrows (a reference, or a lifetime other than `'static`): the
    /// span of the type.
    pub borrows: Option<Span>,
}

/// The return shape: which of the runtime's return policies applies. Read from the return
/// type's last path segment, or given by `returns = plain | result | option` (one type for
/// both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Plain,
    Result,
    Option,
    /// `Result<Option<T>, E>` (`#[cached]` only): `Ok(None)` is handled as `None` is for
    /// `Option<T>`.
    ResultOption,
}

impl Shape {
    /// `Err` is a failure (`stale_if_error`, invalidations after `Ok` only).
    pub(crate) fn is_result(self) -> bool {
        matches!(self, Shape::Result | Shape::ResultOption)
    }

    /// A `None` may be returned (`cache_none`).
    pub(crate) fn has_none(self) -> bool {
        matches!(self, Shape::Option | Shape::ResultOption)
    }
}

/// A function the attribute can wrap.
pub(crate) struct Func {
    pub item: ItemFn,
    pub has_self: bool,
    pub self_span: Span,
    pub params: Vec<Param>,
    /// The receiver is `&self` (shared, not `mut`, not typed).
    pub shared_self: bool,
    /// The receiver is a reference (`&self`, `&mut self`): the span of the receiver.
    pub ref_self: Option<Span>,
    pub type_params: Vec<Ident>,
    pub const_params: Vec<Ident>,
}

/// Parses the item. `Err` carries the tokens to emit unchanged (not a function we can wrap);
/// the reason was pushed to `errors`.
pub(crate) fn parse_item(
    kind: Kind,
    tokens: TokenStream,
    errors: &Ctxt,
) -> Result<Func, TokenStream> {
    let item = match syn::parse2::<ItemFn>(tokens.clone()) {
        Ok(item) => item,
        Err(_) => {
            if let Ok(decl) = syn::parse2::<syn::TraitItemFn>(tokens.clone()) {
                errors.push(
                    Error::custom(format!(
                        "{} needs the function's body; put it on the `async fn` of the `impl` block, not on the trait's declaration",
                        kind.attr()
                    ))
                    .with_span(&decl.sig.ident),
                );
            } else {
                let span = syn::parse2::<syn::Item>(tokens.clone())
                    .ok()
                    .and_then(|item| item_keyword_span(&item))
                    .unwrap_or_else(|| {
                        tokens
                            .clone()
                            .into_iter()
                            .next()
                            .map_or_else(Span::call_site, |t| t.span())
                    });
                errors.push(
                    Error::custom(format!(
                        "{} applies to `async fn` items (free functions and methods), not to this item",
                        kind.attr()
                    ))
                    .with_span(&span),
                );
            }
            return Err(tokens);
        }
    };
    let sig = &item.sig;
    let attr = kind.attr();
    if sig.asyncness.is_none() {
        errors.push(
            Error::custom(format!(
                "{attr} needs an `async fn`: the cache is asynchronous; write `async fn {}`",
                sig.ident
            ))
            .with_span(&sig.fn_token),
        );
    }
    if let Some(c) = &sig.constness {
        errors.push(
            Error::custom(format!("{attr} cannot wrap a `const fn`; remove `const`")).with_span(c),
        );
    }
    if let Safety::Unsafe(u) = &sig.safety {
        errors.push(
            Error::custom(format!(
                "{attr} does not wrap an `unsafe fn`: a cached result would skip the checks its callers promised; move the unsafe part into a safe `async fn`"
            ))
            .with_span(u),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push(
            Error::custom(format!(
                "{attr} does not wrap an `extern` function; remove the ABI"
            ))
            .with_span(abi),
        );
    }
    if let Some(v) = &sig.variadic {
        errors
            .push(Error::custom(format!("{attr} does not wrap a variadic function")).with_span(v));
    }

    let mut has_self = false;
    let mut shared_self = false;
    let mut ref_self = None;
    let mut self_span = Span::call_site();
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                has_self = true;
                self_span = r.self_token.span;
                shared_self = r.mutability.is_none()
                    && matches!(r.kind, syn::ReceiverKind::Reference(_, _, None));
                let borrowed = match &r.kind {
                    syn::ReceiverKind::Reference(..) => true,
                    syn::ReceiverKind::Typed(_, ty) => borrows(ty),
                    _ => false,
                };
                if borrowed {
                    ref_self = Some(r.span());
                }
            }
            FnArg::Typed(pt) => {
                let mut impl_trait = FindImpl(false);
                impl_trait.visit_type(&pt.ty);
                let mut bindings = Vec::new();
                collect_bindings(&pt.pat, &mut bindings);
                let int =
                    matches!(&*pt.pat, Pat::Ident(p) if p.subpat.is_none()) && is_int_type(&pt.ty);
                let borrows = borrows(&pt.ty).then(|| pt.ty.span());
                for ident in bindings {
                    params.push(Param {
                        ident,
                        impl_trait: impl_trait.0,
                        int,
                        borrows,
                    });
                }
            }
        }
    }
    let mut type_params = Vec::new();
    let mut const_params = Vec::new();
    for g in &sig.generics.params {
        match g {
            GenericParam::Type(t) => type_params.push(t.ident.clone()),
            GenericParam::Const(c) => const_params.push(c.ident.clone()),
            _ => {}
        }
    }
    Ok(Func {
        item,
        has_self,
        self_span,
        params,
        shared_self,
        ref_self,
        type_params,
        const_params,
    })
}

fn item_keyword_span(item: &syn::Item) -> Option<Span> {
    Some(match item {
        syn::Item::Struct(i) => i.struct_token.span,
        syn::Item::Enum(i) => i.enum_token.span,
        syn::Item::Impl(i) => i.impl_token.span,
        syn::Item::Trait(i) => i.trait_token.span,
        syn::Item::Mod(i) => i.mod_token.span,
        syn::Item::Const(i) => i.const_token.span,
        syn::Item::Static(i) => i.static_token.span,
        syn::Item::Type(i) => i.type_token.span,
        syn::Item::Use(i) => i.use_token.span,
        syn::Item::Union(i) => i.union_token.span,
        _ => return None,
    })
}

fn collect_bindings(pat: &Pat, out: &mut Vec<Ident>) {
    struct Bindings<'a>(&'a mut Vec<Ident>);
    impl<'ast> Visit<'ast> for Bindings<'_> {
        fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
            self.0.push(p.ident.clone());
            syn::visit::visit_pat_ident(self, p);
        }
    }
    Bindings(out).visit_pat(pat);
}

impl Func {
    /// The declared return type; `()` when there is none.
    pub(crate) fn ret_type(&self) -> Option<&Type> {
        match &self.item.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some(ty),
        }
    }

    /// The return shape: the override, else the last path segment of the return type. A
    /// `Result` (found or overridden) whose first type argument is an `Option` is
    /// `ResultOption`.
    pub(crate) fn shape(&self, returns: Option<Shape>) -> Shape {
        let shape = match returns {
            Some(shape) => shape,
            None => match self.ret_type().map(|t| last_segment(t).map(|s| &s.ident)) {
                Some(Some(ident)) if ident == "Result" => Shape::Result,
                Some(Some(ident)) if ident == "Option" => Shape::Option,
                _ => Shape::Plain,
            },
        };
        let ok_is_option = || {
            self.ret_type()
                .and_then(first_type_arg)
                .and_then(last_segment)
                .is_some_and(|seg| seg.ident == "Option")
        };
        if shape == Shape::Result && ok_is_option() {
            Shape::ResultOption
        } else {
            shape
        }
    }

    /// The stored type as written: the whole return type, or the first type argument of
    /// `Result`/`Option` (when written with angle brackets); for `Result<Option<T>, E>`, `T`.
    pub(crate) fn stored_type(&self, shape: Shape) -> Option<&Type> {
        let ret = self.ret_type()?;
        match shape {
            Shape::Plain => Some(ret),
            Shape::Result | Shape::Option => first_type_arg(ret),
            Shape::ResultOption => first_type_arg(ret).and_then(first_type_arg),
        }
    }

    /// The return type's tokens, for the type-parameter check.
    pub(crate) fn ret_tokens(&self) -> TokenStream {
        self.ret_type()
            .map(ToTokens::to_token_stream)
            .unwrap_or_default()
    }

    /// Span of the return type, or of the signature when there is none.
    pub(crate) fn ret_span(&self) -> Span {
        match &self.item.sig.output {
            ReturnType::Default => self.item.sig.paren_token.span.join(),
            ReturnType::Type(_, ty) => ty.span(),
        }
    }

    pub(crate) fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.ident == name)
    }

    /// Every name a placeholder may start with, for "did you mean".
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.params.iter().map(|p| p.ident.to_string()).collect();
        if self.has_self {
            names.push("self".to_owned());
        }
        names.extend(self.type_params.iter().map(ToString::to_string));
        names.extend(self.const_params.iter().map(ToString::to_string));
        names
    }
}
