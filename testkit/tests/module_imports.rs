//! The queue crate's modules import one another in one direction only: no
//! module uses one that uses it back, however far round (`crate::x` paths
//! outside tests, between modules of the same parent).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of the crate (`a::b`, the root as "") and its source.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
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
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap().to_owned();
            found.insert(parts.join("::"), code);
        }
    }
    found
}

/// The module a `crate::` path names: its longest prefix that is one.
fn target<'a>(modules: &'a BTreeMap<String, String>, path: &str) -> Option<&'a str> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|k| parts[..k].join("::"))
        .find_map(|m| modules.get_key_value(&m).map(|(k, _)| k.as_str()))
}

/// Edges between sibling modules: `from` uses something inside `to`, both
/// children of the same parent (a module and its own children are one
/// unit here).
fn sibling_edges(modules: &BTreeMap<String, String>) -> BTreeSet<(String, String)> {
    let mut edges = BTreeSet::new();
    for (from, code) in modules.iter().filter(|(m, _)| !m.is_empty()) {
        for path in code.split("crate::").skip(1).map(|rest| {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches(':')
        }) {
            let Some(to) = target(modules, path) else {
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

/// A cycle through `start`, if there is one.
fn cycle_through(edges: &BTreeSet<(String, String)>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap().clone();
        for (_, to) in edges.iter().filter(|(f, _)| *f == last) {
            if to == start {
                return Some([path.clone(), vec![to.clone()]].concat());
            }
            if seen.insert(to.clone()) {
                stack.push([path.clone(), vec![to.clone()]].concat());
            }
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    assert!(modules.contains_key("consume") && modules.contains_key("sqs::receive"));
    let edges = sibling_edges(&modules);
    assert!(
        edges.contains(&("consume".into(), "receive".into())),
        "{edges:?}"
    );
    let cycles: Vec<String> = modules
        .keys()
        .filter_map(|m| cycle_through(&edges, m))
        .map(|c| c.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "import circles: {cycles:#?}");
}
