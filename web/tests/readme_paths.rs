//! Every file or folder of this repository the README cites exists: a
//! README that names a test as the proof of a promise must name a real one.

use std::path::{Path, PathBuf};

/// The folders of the repository a cited path starts with.
const ROOTS: [&str; 10] = [
    ".ci/",
    "common/",
    "docs/",
    "libwebp/",
    "migrations/",
    "queue/",
    "scripts/",
    "testdata/",
    "web/",
    "worker/",
];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The paths `text` cites: words starting with one of `ROOTS`, as far as a
/// glob (whose folder is what must exist) or a link's `#`, with `{a,b}`
/// written out.
fn cited_paths(text: &str) -> Vec<String> {
    let stops = |c: char| c.is_whitespace() || "`()[]<>\"';:|".contains(c);
    text.split(stops)
        .filter(|word| ROOTS.iter().any(|root| word.starts_with(root)))
        .map(|word| word.trim_end_matches(['.', ',', '!', '?']))
        .map(|word| word.split(['*', '#']).next().unwrap_or(word))
        .flat_map(expand_braces)
        .collect()
}

/// `web/tests/{a,b}.rs` as `web/tests/a.rs` and `web/tests/b.rs`.
fn expand_braces(path: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (path.find('{'), path.find('}')) else {
        return vec![path.to_owned()];
    };
    let (head, tail) = (&path[..open], &path[close + 1..]);
    path[open + 1..close]
        .split(',')
        .flat_map(|choice| expand_braces(&format!("{head}{choice}{tail}")))
        .collect()
}

#[test]
fn every_path_the_readme_cites_exists() {
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let cited = cited_paths(&readme);
    assert!(cited.len() > 30, "too few paths found: {cited:?}");
    let missing: Vec<&String> = cited
        .iter()
        .filter(|path| !repository().join(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "the README cites paths that do not exist: {missing:?}"
    );
}

#[test]
fn cited_paths_are_read_with_their_braces_written_out() {
    let text = "proof in `web/tests/{limits,rates}.rs`, see (docs/queue.md) and migrations/**.";
    assert_eq!(
        cited_paths(text),
        [
            "web/tests/limits.rs",
            "web/tests/rates.rs",
            "docs/queue.md",
            "migrations/"
        ]
    );
}
