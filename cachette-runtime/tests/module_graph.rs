//! The runtime's modules do not import each other (issue 14): no module imports a
//! module that imports it back, except `config::builder` ↔
//! `cache` (the builder builds a `Cache`, the `Cache` hands out a builder).
//!
//! A module is a file (`src/cache.rs` is `cache`, `src/call/mod.rs` is `call`,
//! `src/call/fill.rs` is `call::fill`). Module `A` imports `B` when `A`'s code (its tests
//! aside) names a path `crate::…` or `super::…` that resolves into `B`: the longest module
//! prefix of the path, following `pub use` re-exports (of the crate root and of every
//! module) to where the item is defined. A module and its ancestors are one family: a child
//! naming its parent's items (or the parent re-exporting its children) is how Rust modules
//! are built, not a cycle.

#![allow(
    clippy::arithmetic_side_effects,
    reason = "offsets into source text, each within its length"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Cycles allowed, as sorted pairs of modules.
const ALLOWED: &[(&str, &str)] = &[("cache", "config::builder")];

#[test]
fn no_module_imports_a_module_that_imports_it_back() -> Res<()> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = read_modules(&src, "")?;
    let graph = Graph::new(&modules);
    let unexpected: Vec<_> = graph
        .mutual()
        .into_iter()
        .filter(|(a, b)| !ALLOWED.contains(&(a.as_str(), b.as_str())))
        .collect();
    let mut report = String::new();
    for (a, b) in &unexpected {
        report.push_str(&format!(
            "\n  {a} ↔ {b}: {a} names {}, {b} names {}",
            graph.why[&(a.clone(), b.clone())],
            graph.why[&(b.clone(), a.clone())]
        ));
    }
    // Longer circles (a → b → c → a), for the reader of a failure.
    for c in graph.cycles() {
        report.push_str(&format!("\n  (circle: {})", c.join(", ")));
    }
    assert!(
        unexpected.is_empty(),
        "modules importing each other:{report}"
    );
    Ok(())
}

/// The checker itself finds a cycle, resolves re-exports and ignores families and tests.
#[test]
fn the_checker_sees_cycles_through_re_exports() {
    let m = |name: &str, code: &str| (name.to_owned(), code.to_owned());
    let modules = BTreeMap::from([
        m("", "pub use a::Alpha;\nmod a; mod b; mod c;"),
        m("a", "use crate::b::Beta;\npub struct Alpha;"),
        // `crate::Alpha` is `a::Alpha`, re-exported by the root: b imports a.
        m("b", "pub struct Beta(crate::Alpha);"),
        m(
            "c",
            "use super::b::Beta;\n#[cfg(test)]\nmod tests { use crate::a::Alpha; }",
        ),
        m("c::d", "use super::Gamma;"),
    ]);
    let graph = Graph::new(&modules);
    assert_eq!(graph.cycles(), vec![vec!["a".to_owned(), "b".to_owned()]]);
    assert_eq!(graph.mutual(), vec![("a".to_owned(), "b".to_owned())]);
    assert!(!graph.why.contains_key(&("c".to_owned(), "a".to_owned())));
    assert!(!graph.why.contains_key(&("c::d".to_owned(), "c".to_owned())));
}

/// Module path (`""` for the crate root) → its code, tests cut off, comments removed.
fn read_modules(dir: &Path, prefix: &str) -> Res<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or("file name")?
            .to_owned();
        let join = |n: &str| {
            if prefix.is_empty() {
                n.to_owned()
            } else {
                format!("{prefix}::{n}")
            }
        };
        if path.is_dir() {
            out.extend(read_modules(&path, &join(&name))?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = match name.as_str() {
                "lib" | "mod" => prefix.to_owned(),
                _ => join(&name),
            };
            out.insert(module, fs::read_to_string(&path)?);
        }
    }
    Ok(out)
}

struct Graph {
    /// Importer → imported, with one path that made the edge.
    why: BTreeMap<(String, String), String>,
}

impl Graph {
    fn new(modules: &BTreeMap<String, String>) -> Graph {
        let code: BTreeMap<&str, String> = modules
            .iter()
            .map(|(m, c)| (m.as_str(), without_tests(&strip_comments(c))))
            .collect();
        // Every path named by each module, absolute (`a::b::Item`, no `crate::`).
        let named: BTreeMap<&str, Vec<Vec<String>>> =
            code.iter().map(|(m, c)| (*m, paths(c, m))).collect();
        // `pub use` re-exports: (module, name) → the absolute path it stands for.
        let mut reexports: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (m, c) in &code {
            for stmt in c.split(';') {
                let s = stmt.trim();
                let Some(rest) = s
                    .strip_prefix("pub use ")
                    .or_else(|| s.strip_prefix("pub(crate) use "))
                    .or_else(|| s.strip_prefix("pub(super) use "))
                else {
                    continue;
                };
                for p in expand_use(rest.trim(), m) {
                    if let Some(last) = p.last()
                        && last != "*"
                        && last != "self"
                    {
                        // An item re-exported under its own path (an inline module's
                        // `pub use crate::X` of the root's `X`) says nothing new.
                        let own: Vec<String> = m
                            .split("::")
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .chain([last.clone()])
                            .collect();
                        if p != own {
                            reexports
                                .entry(((*m).to_owned(), last.clone()))
                                .or_insert(p);
                        }
                    }
                }
            }
        }
        let is_module = |p: &str| code.contains_key(p);
        let resolve = |path: &[String]| -> Option<String> {
            let mut path = path.to_vec();
            for _ in 0..8 {
                // The longest prefix that is a module; the next segment may be re-exported.
                let mut module = String::new();
                let mut used = 0;
                for (i, _) in path.iter().enumerate() {
                    let candidate = path[..=i].join("::");
                    if is_module(&candidate) {
                        module = candidate;
                        used = i + 1;
                    }
                }
                match path.get(used) {
                    Some(name) => match reexports.get(&(module.clone(), name.clone())) {
                        Some(target) if target.as_slice() != &path[..=used] => {
                            let mut next = target.clone();
                            next.extend_from_slice(&path[used + 1..]);
                            path = next;
                        }
                        _ => return Some(module),
                    },
                    None => return Some(module),
                }
            }
            None
        };
        let mut why = BTreeMap::new();
        for (m, paths) in &named {
            for p in paths {
                let Some(target) = resolve(p) else { continue };
                if family(m, &target) {
                    continue;
                }
                why.entry(((*m).to_owned(), target))
                    .or_insert_with(|| p.join("::"));
            }
        }
        Graph { why }
    }

    /// Pairs of modules that import each other, each pair sorted.
    fn mutual(&self) -> Vec<(String, String)> {
        self.why
            .keys()
            .filter(|(a, b)| a < b && self.why.contains_key(&(b.clone(), a.clone())))
            .cloned()
            .collect()
    }

    /// Strongly connected components of more than one module, each sorted.
    fn cycles(&self) -> Vec<Vec<String>> {
        let nodes: BTreeSet<&String> = self.why.keys().flat_map(|(a, b)| [a, b]).collect();
        let reach = |from: &String| {
            let mut seen = BTreeSet::from([from.clone()]);
            let mut todo = vec![from.clone()];
            while let Some(n) = todo.pop() {
                for (a, b) in self.why.keys() {
                    if *a == n && seen.insert(b.clone()) {
                        todo.push(b.clone());
                    }
                }
            }
            seen
        };
        let reaches: BTreeMap<&String, BTreeSet<String>> =
            nodes.iter().map(|n| (*n, reach(n))).collect();
        let mut out = BTreeSet::new();
        for n in &nodes {
            let scc: Vec<String> = nodes
                .iter()
                .filter(|o| reaches[*n].contains(**o) && reaches[*o].contains(*n))
                .map(|o| (*o).clone())
                .collect();
            if scc.len() > 1 {
                out.insert(scc);
            }
        }
        out.into_iter().collect()
    }
}

/// Whether one module is the other or an ancestor of it.
fn family(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| y.is_empty() || x == y || x.starts_with(&format!("{y}::"));
    under(a, b) || under(b, a)
}

/// The code before a `#[cfg(test)]` item (tests may import anything).
fn without_tests(code: &str) -> String {
    match code.find("#[cfg(test)]") {
        Some(i) => code[..i].to_owned(),
        None => code.to_owned(),
    }
}

/// Code without `//` and `/* */` comments and string literals.
fn strip_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if c == '"' && !escaped {
                        break;
                    }
                    escaped = c == '\\' && !escaped;
                }
                out.push_str("\"\"");
            }
            c => out.push(c),
        }
    }
    out
}

/// Every `crate::…` and `super::…` path in `code` (groups `{a, b::c}` expanded), absolute.
fn paths(code: &str, module: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            let boundary = at == 0 || !is_ident(bytes[at - 1] as char) && bytes[at - 1] != b':';
            if !boundary {
                continue;
            }
            let tail = take_path(&code[at..]);
            out.extend(expand_use(tail, module));
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The path starting `text`, its braces balanced (`crate::a::{b, c::d}`).
fn take_path(text: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if depth == 0 && !(is_ident(c) || c == ':' || c == '*') => return &text[..i],
            _ => {}
        }
    }
    text
}

/// `crate::a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (absolute, relative to
/// `module` for `super::` and `self::`).
fn expand_use(path: &str, module: &str) -> Vec<Vec<String>> {
    let path = path.split(" as ").next().unwrap_or(path).trim();
    let mut segs: Vec<String> = Vec::new();
    let mut rest = path;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.strip_suffix('}').unwrap_or(group);
            return split_top(inner)
                .into_iter()
                .flat_map(|part| {
                    let prefix = segs.join("::");
                    let joined = if prefix.is_empty() {
                        part.trim().to_owned()
                    } else {
                        format!("{prefix}::{}", part.trim())
                    };
                    expand_use(&joined, module)
                })
                .collect();
        }
        let (seg, tail) = match rest.find("::") {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        segs.push(seg.trim().to_owned());
        match tail {
            Some(t) => rest = t,
            None => break,
        }
    }
    let mut abs: Vec<String> = Vec::new();
    let mut iter = segs.into_iter().peekable();
    match iter.peek().map(String::as_str) {
        Some("crate") => {
            iter.next();
        }
        Some("super") | Some("self") => {
            abs = module
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            while let Some(s) = iter.peek() {
                match s.as_str() {
                    "super" => {
                        abs.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                iter.next();
            }
        }
        _ => {
            // A plain `use x::…` in a module: relative to it (child modules).
            abs = module
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
    }
    abs.extend(iter.filter(|s| !s.is_empty()));
    vec![abs]
}

/// Splits `a, b::{c, d}, e` at its top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}
