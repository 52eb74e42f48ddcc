//! Reads the annotated item and checks that it is a function the attributes can wrap: an
//! `async fn` with a body, not `const`, `unsafe` or `extern`. Collects what the expansion needs:
//! the receiver, the bindings of the arguments, the generic parameters and the return shape.

use crate::args::{Kind, Returns};
use darling::Error;
use darling::error::Accumulator;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, GenericParam, Ident, ItemFn, Pat, ReturnType, Safety, Type};

/// A name bound by the function's arguments.
#[derive(Debug, Clone)]
pub struct Param {
    pub ident: Ident,
    /// The argument's type contains `impl Trait`.
    pub impl_trait: bool,
}

/// Which of the runtime's return policies applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Plain,
    Result,
    Option,
}

/// A function the attribute can wrap.
pub struct Func {
    pub item: ItemFn,
    pub has_self: bool,
    pub self_span: Span,
    pub params: Vec<Param>,
    pub type_params: Vec<Ident>,
    pub const_params: Vec<Ident>,
}

/// Parses the item. `Err` carries the tokens to emit unchanged (not a function we can wrap);
/// the reason was pushed to `errors`.
pub fn parse_item(
    kind: Kind,
    tokens: TokenStream,
    errors: &mut Accumulator,
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
    let mut self_span = Span::call_site();
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                has_self = true;
                self_span = r.self_token.span;
            }
            FnArg::Typed(pt) => {
                let mut impl_trait = FindImpl(false);
                impl_trait.visit_type(&pt.ty);
                let mut bindings = Vec::new();
                collect_bindings(&pt.pat, &mut bindings);
                for ident in bindings {
                    params.push(Param {
                        ident,
                        impl_trait: impl_trait.0,
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

struct FindImpl(bool);

impl<'ast> Visit<'ast> for FindImpl {
    fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
        self.0 = true;
    }
}

/// Whether a type mentions `impl Trait`.
pub fn has_impl_trait(ty: &Type) -> bool {
    let mut f = FindImpl(false);
    f.visit_type(ty);
    f.0
}

/// Whether `ident` occurs anywhere in `tokens`.
pub fn mentions(tokens: TokenStream, ident: &Ident) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == *ident,
        TokenTree::Group(g) => mentions(g.stream(), ident),
        _ => false,
    })
}

impl Func {
    /// The declared return type; `()` when there is none.
    pub fn ret_type(&self) -> Option<&Type> {
        match &self.item.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some(ty),
        }
    }

    /// The return shape: the override, else the last path segment of the return type.
    pub fn shape(&self, returns: Option<Returns>) -> Shape {
        match returns {
            Some(Returns::Plain) => return Shape::Plain,
            Some(Returns::Result) => return Shape::Result,
            Some(Returns::Option) => return Shape::Option,
            None => {}
        }
        match self.ret_type().map(strip_parens) {
            Some(Type::Path(p)) if p.qself.is_none() => match p.path.segments.last() {
                Some(seg) if seg.ident == "Result" => Shape::Result,
                Some(seg) if seg.ident == "Option" => Shape::Option,
                _ => Shape::Plain,
            },
            _ => Shape::Plain,
        }
    }

    /// The stored type as written: the whole return type, or the first type argument of
    /// `Result`/`Option` (when written with angle brackets).
    pub fn stored_type(&self, shape: Shape) -> Option<&Type> {
        let ret = self.ret_type()?;
        if shape == Shape::Plain {
            return Some(ret);
        }
        let Type::Path(p) = strip_parens(ret) else {
            return None;
        };
        let seg = p.path.segments.last()?;
        let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
            return None;
        };
        args.args.iter().find_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        })
    }

    /// The return type's tokens, for the type-parameter check.
    pub fn ret_tokens(&self) -> TokenStream {
        self.ret_type()
            .map(ToTokens::to_token_stream)
            .unwrap_or_default()
    }

    /// Span of the return type, or of the signature when there is none.
    pub fn ret_span(&self) -> Span {
        match &self.item.sig.output {
            ReturnType::Default => self.item.sig.paren_token.span.join(),
            ReturnType::Type(_, ty) => ty.span(),
        }
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.ident == name)
    }

    /// Every name a placeholder may start with, for "did you mean".
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.params.iter().map(|p| p.ident.to_string()).collect();
        if self.has_self {
            names.push("self".to_owned());
        }
        names.extend(self.type_params.iter().map(ToString::to_string));
        names.extend(self.const_params.iter().map(ToString::to_string));
        names
    }
}

fn strip_parens(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Paren(p) => ty = &p.elem,
            Type::Group(g) => ty = &g.elem,
            _ => return ty,
        }
    }
}
