//! Every public method of `Cache` shows itself in use: its rustdoc has an example (a code
//! block, run as a doctest), wherever its `impl Cache` block lives (issue 14).

use std::fs;
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[test]
fn every_public_method_of_cache_has_an_example() -> Res<()> {
    let mut missing = Vec::new();
    let mut seen = 0usize;
    visit(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut |path, code| {
            for (name, doc) in public_methods_of_cache(code) {
                seen = seen.saturating_add(1);
                if !doc.contains("```") {
                    missing.push(format!("{}: Cache::{name}", path.display()));
                }
            }
        },
    )?;
    assert!(
        seen >= 20,
        "found only {seen} public methods of Cache: the scan is broken"
    );
    assert!(
        missing.is_empty(),
        "public methods of Cache without an example:\n  {}",
        missing.join("\n  ")
    );
    Ok(())
}

/// The scan finds methods, their docs, and only the public ones of `impl Cache` blocks.
#[test]
fn the_scan_reads_docs_of_public_methods_only() {
    let code = "impl Cache {\n    /// Has one.\n    ///\n    /// ```\n    /// x();\n    /// ```\n    pub fn a(&self) {}\n\n    /// None.\n    #[must_use]\n    pub async fn b(&self) {}\n\n    pub(crate) fn c(&self) {}\n}\n\nimpl Other {\n    pub fn d(&self) {}\n}\n";
    let found = public_methods_of_cache(code);
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(found[0].1.contains("```"));
    assert!(!found[1].1.contains("```"));
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path, &str)) -> Res<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            visit(&path, f)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            f(&path, &fs::read_to_string(&path)?);
        }
    }
    Ok(())
}

/// `(name, doc comment)` of each `pub fn`/`pub async fn` directly inside an `impl Cache {`.
fn public_methods_of_cache(code: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_impl = false;
    let mut doc = String::new();
    for line in code.lines() {
        if line.starts_with("impl ") {
            in_impl = line.starts_with("impl Cache {");
            doc.clear();
            continue;
        }
        if line.starts_with('}') {
            in_impl = false;
            continue;
        }
        if !in_impl {
            continue;
        }
        let t = line.trim_start();
        let indent = line.len().saturating_sub(t.len());
        if indent != 4 {
            continue;
        }
        if let Some(d) = t.strip_prefix("///") {
            doc.push_str(d);
            doc.push('\n');
        } else if t.starts_with("#[") {
            // Attributes between the doc and the item.
        } else {
            let sig = t
                .strip_prefix("pub async fn ")
                .or_else(|| t.strip_prefix("pub fn "))
                .or_else(|| t.strip_prefix("pub const fn "));
            if let Some(sig) = sig {
                let name: String = sig
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((name, std::mem::take(&mut doc)));
            } else {
                doc.clear();
            }
        }
    }
    out
}
