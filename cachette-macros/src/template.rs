//! Templates such as `"user:{id}"`: literal text and placeholders, parsed with spanned errors.
//!
//! Grammar: literal text, `{{` and `}}` for literal braces, and placeholders `{root}` or
//! `{root.field.0}` where `root` is an argument, `self`, or a type or const parameter of the
//! function (in the builder macros: a named argument or a variable in scope, and also `{}` or
//! `{0}` for positional arguments, see [`Holes`]). No method calls, indexing or format specs:
//! a value is formatted with `Display` and escaped by the runtime.

use crate::ctxt::Ctxt;
use darling::Error;
use proc_macro2::Span;
use syn::LitStr;

/// One parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone)]
pub(crate) enum Part {
    Lit(String),
    Hole(Hole),
}

/// Which placeholders a template may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holes {
    /// `{name}` and `{name.field}` (the attributes: names are the function's parameters).
    Named,
    /// Also `{}` and `{0}`, `{0.field}`: positional arguments, as in `format!` (the builder
    /// macros `key!`, `tag!`, `pattern!`).
    Positional,
}

/// A placeholder: `{root.a.b}`.
#[derive(Debug, Clone)]
pub(crate) struct Hole {
    /// A name, or with [`Holes::Positional`] an index (`"0"`) or nothing (`{}`).
    pub root: String,
    pub fields: Vec<String>,
    /// The placeholder in the literal when the compiler can point inside literals, else the
    /// whole literal.
    pub span: Span,
}

impl Template {
    pub(crate) fn holes(&self) -> impl Iterator<Item = &Hole> {
        self.parts.iter().filter_map(|p| match p {
            Part::Hole(h) => Some(h),
            Part::Lit(_) => None,
        })
    }

    /// The literal text, placeholders left out (the whole template when it has none).
    pub(crate) fn literal(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Lit(s) => Some(s.as_str()),
                Part::Hole(_) => None,
            })
            .collect()
    }
}

/// The span of bytes `range` of the literal's value, when the value maps one to one onto the
/// source (a plain string without escapes) and the compiler supports sub-spans; else the whole
/// literal.
#[allow(
    clippy::arithmetic_side_effects,
    reason = "offsets into the literal, each at most its length"
)]
fn sub_span(lit: &LitStr, start: usize, end: usize) -> Span {
    let token = lit.token();
    let source = token.to_string();
    if source.starts_with('"') && !source.contains('\\') {
        token
            .subspan(start + 1..end + 1)
            .unwrap_or_else(|| lit.span())
    } else {
        lit.span()
    }
}

/// Parses `lit` (the value of option `what`); errors go to `errors`.
pub(crate) fn parse(lit: &LitStr, what: &str, errors: &Ctxt) -> Option<Template> {
    parse_with(lit, what, Holes::Named, errors)
}

/// [`parse`], with the placeholders `holes` allows.
#[allow(
    clippy::arithmetic_side_effects,
    reason = "offsets into the template, each at most its length"
)]
pub(crate) fn parse_with(
    lit: &LitStr,
    what: &str,
    holes: Holes,
    errors: &Ctxt,
) -> Option<Template> {
    let text = lit.value();
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut ok = true;
    let bytes = text.as_bytes();
    let mut i = 0;
    if text.is_empty() {
        errors.push(
            Error::custom(format!(
                "the `{what}` template is empty; write one such as \"user:{{id}}\""
            ))
            .with_span(lit),
        );
        return None;
    }
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                literal.push('{');
                i += 2;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                literal.push('}');
                i += 2;
            }
            b'}' => {
                errors.push(
                    Error::custom(format!(
                        "unmatched `}}` in the `{what}` template; write `}}}}` for a literal brace"
                    ))
                    .with_span(&sub_span(lit, i, i + 1)),
                );
                ok = false;
                i += 1;
            }
            b'{' => {
                let Some(close) = text[i + 1..].find('}').map(|c| c + i + 1) else {
                    errors.push(
                        Error::custom(format!(
                            "unclosed `{{` in the `{what}` template; close the placeholder with `}}`, or write `{{{{` for a literal brace"
                        ))
                        .with_span(&sub_span(lit, i, text.len())),
                    );
                    ok = false;
                    break;
                };
                let inner = &text[i + 1..close];
                let span = sub_span(lit, i, close + 1);
                match hole(inner, span, what, holes) {
                    Ok(h) => {
                        if !literal.is_empty() {
                            parts.push(Part::Lit(std::mem::take(&mut literal)));
                        }
                        parts.push(Part::Hole(h));
                    }
                    Err(e) => {
                        errors.push(e);
                        ok = false;
                    }
                }
                i = close + 1;
            }
            _ => {
                // Copy one whole UTF-8 character.
                let ch_len = text[i..].chars().next().map_or(1, char::len_utf8);
                literal.push_str(&text[i..i + ch_len]);
                i += ch_len;
            }
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Lit(literal));
    }
    ok.then_some(Template { parts })
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
        && s != "_"
}

fn hole(inner: &str, span: Span, what: &str, holes: Holes) -> Result<Hole, Error> {
    let err = |msg: String| Error::custom(msg).with_span(&span);
    let positional = holes == Holes::Positional;
    if positional && inner.is_empty() {
        return Ok(Hole {
            root: String::new(),
            fields: Vec::new(),
            span,
        });
    }
    if inner.trim().is_empty() {
        return Err(err(format!(
            "empty placeholder `{{}}` in the `{what}` template; name an argument, such as `{{id}}`"
        )));
    }
    if inner.contains('(') {
        return Err(err(format!(
            "`{{{inner}}}`: placeholders cannot call methods; pass the value as an argument, or use a field such as `{{user.id}}`"
        )));
    }
    if inner.contains('[') {
        return Err(err(format!(
            "`{{{inner}}}`: placeholders cannot index; pass the element as an argument"
        )));
    }
    if let Some((name, _)) = inner.split_once(':') {
        return Err(err(format!(
            "`{{{inner}}}`: placeholders take no format spec; values are formatted with `Display` and escaped, write `{{{name}}}`"
        )));
    }
    let mut segments = inner.split('.');
    let root = segments.next().unwrap_or_default();
    let fields: Vec<String> = segments.map(str::to_owned).collect();
    let is_index = |f: &str| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit());
    let field_ok = |f: &String| is_ident(f) || is_index(f);
    let root_ok = is_ident(root) || (positional && is_index(root));
    if !root_ok || !fields.iter().all(field_ok) {
        return Err(err(format!(
            "`{{{inner}}}` is not a placeholder: write an argument name or a field path such as `{{id}}` or `{{user.id}}`"
        )));
    }
    Ok(Hole {
        root: root.to_owned(),
        fields,
        span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> Result<Vec<String>, usize> {
        parts_with(s, Holes::Named)
    }

    fn parts_with(s: &str, holes: Holes) -> Result<Vec<String>, usize> {
        let lit = LitStr::new(s, Span::call_site());
        let cx = Ctxt::new();
        let t = parse_with(&lit, "key", holes, &cx);
        let n = cx.len();
        let _ = cx.check();
        match t {
            Some(t) if n == 0 => Ok(t
                .parts
                .iter()
                .map(|p| match p {
                    Part::Lit(s) => format!("lit:{s}"),
                    Part::Hole(h) => format!("hole:{}.{}", h.root, h.fields.join(".")),
                })
                .collect()),
            _ => Err(n),
        }
    }

    #[test]
    fn parses_holes_fields_and_escapes() {
        assert_eq!(
            parts("user:{id}:{self.tenant}:{p.0}"),
            Ok(vec![
                "lit:user:".into(),
                "hole:id.".into(),
                "lit::".into(),
                "hole:self.tenant".into(),
                "lit::".into(),
                "hole:p.0".into(),
            ])
        );
        assert_eq!(
            parts("{{tag}}:{id}"),
            Ok(vec!["lit:{tag}:".into(), "hole:id.".into()])
        );
        assert_eq!(parts("héllo:{id}").map(|p| p.len()), Ok(2));
    }

    #[test]
    fn rejects_malformed_templates() {
        assert_eq!(parts("user:{id"), Err(1));
        assert_eq!(parts("user:id}"), Err(1));
        assert_eq!(parts("user:{}"), Err(1));
        assert_eq!(parts("user:{id:?}"), Err(1));
        assert_eq!(parts("user:{u.name()}"), Err(1));
        assert_eq!(parts("user:{ids[0]}"), Err(1));
        assert_eq!(parts("user:{a b}"), Err(1));
        assert_eq!(parts("{}:{}"), Err(2));
        assert_eq!(parts(""), Err(1));
    }

    #[test]
    fn positional_holes_only_for_the_builders() {
        let p = Holes::Positional;
        assert_eq!(
            parts_with("user:{}:{1}:{id}:{0.name}", p),
            Ok(vec![
                "lit:user:".into(),
                "hole:.".into(),
                "lit::".into(),
                "hole:1.".into(),
                "lit::".into(),
                "hole:id.".into(),
                "lit::".into(),
                "hole:0.name".into(),
            ])
        );
        assert_eq!(parts_with("user:{ }", p), Err(1));
        assert_eq!(parts_with("user:{:?}", p), Err(1));
        assert_eq!(parts_with("user:{.id}", p), Err(1));
        assert_eq!(parts("user:{0}"), Err(1));
    }
}
