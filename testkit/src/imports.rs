//! Which modules of a crate use which, read from its source: enough to find
//! import circles between sibling modules. Paths are read as written
//! (`crate::a::b`, `super::b`, `use crate::{a, b::c}`), outside tests and
//! comments; a module and its own children count as one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of the crate under `src` (`a::b`, the root as ""), with its
/// code outside tests and comments.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    parts.pop();
                }
                if parts.first().is_some_and(|p| p == "bin") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                found.insert(parts.join("::"), code(&text));
            }
        }
    }
    found
}

/// `text` without its tests and comment lines (doc links are no imports).
fn code(text: &str) -> String {
    let before_tests = text.split("#[cfg(test)]").next().unwrap();
    before_tests
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths `code` (module `at`) names, from the crate root.
fn paths(code: &str, at: &str) -> Vec<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut found = Vec::new();
    for (i, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        if i > 0 && code[..i].ends_with(|c: char| ident(c)) {
            continue;
        }
        let rest = &code[i..];
        let end = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
        let written = rest[..end].trim_end_matches(':');
        let mut base: Vec<&str> = at.split("::").filter(|p| !p.is_empty()).collect();
        let mut segments: Vec<&str> = written.split("::").collect();
        if segments[0] == "crate" {
            base.clear();
            segments.remove(0);
        }
        while segments.first() == Some(&"super") {
            base.pop();
            segments.remove(0);
        }
        let prefix = [base, segments].concat().join("::");
        match rest[end..].strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',').map(|s| s.split_whitespace().next()) {
                    let item = item.unwrap_or("").trim_end_matches(':');
                    found.push(format!("{prefix}::{item}"));
                }
            }
            None => found.push(prefix),
        }
    }
    found
}

/// The module a path names: its longest prefix that is one.
fn target<'a>(modules: &'a BTreeMap<String, String>, path: &str) -> Option<&'a str> {
    let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    (1..=parts.len())
        .rev()
        .map(|k| parts[..k].join("::"))
        .find_map(|m| modules.get_key_value(&m).map(|(k, _)| k.as_str()))
}

/// Edges between sibling modules: `from` uses something inside `to`, both
/// children of the same parent.
pub fn sibling_edges(src: &Path) -> BTreeSet<(String, String)> {
    let modules = modules(src);
    let mut edges = BTreeSet::new();
    for (from, code) in modules.iter().filter(|(m, _)| !m.is_empty()) {
        for path in paths(code, from) {
            let Some(to) = target(&modules, &path) else {
                continue;
            };
            let (a, b): (Vec<&str>, Vec<&str>) =
                (from.split("::").collect(), to.split("::").collect());
            let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            if common < a.len() && common < b.len() {
                edges.insert((a[..=common].join("::"), b[..=common].join("::")));
            }
        }
    }
    edges
}

/// Every import circle among `edges`, each once, as `a → b → a`.
pub fn circles(edges: &BTreeSet<(String, String)>) -> Vec<String> {
    let starts: BTreeSet<&String> = edges.iter().map(|(from, _)| from).collect();
    let mut found = BTreeSet::new();
    for start in starts {
        if let Some(mut circle) = circle_through(edges, start) {
            circle.pop();
            let least = (0..circle.len()).min_by_key(|&i| &circle[i]).unwrap();
            circle.rotate_left(least);
            circle.push(circle[0].clone());
            found.insert(circle.join(" → "));
        }
    }
    found.into_iter().collect()
}

/// A circle through `start`, if there is one.
fn circle_through(edges: &BTreeSet<(String, String)>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap().clone();
        for (_, to) in edges.iter().filter(|(f, _)| *f == last) {
            let longer = [path.clone(), vec![to.clone()]].concat();
            if to == start {
                return Some(longer);
            }
            if seen.insert(to.clone()) {
                stack.push(longer);
            }
        }
    }
    None
}
