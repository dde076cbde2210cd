//! Every crate's modules import one another in one direction only: no
//! module uses one that uses it back, however far round.

use std::path::{Path, PathBuf};

use testkit::imports::{circles, sibling_edges};

const CRATES: [&str; 6] = ["common", "libwebp", "queue", "testkit", "web", "worker"];

fn src(krate: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src")
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let edges = sibling_edges(&src("queue"));
    assert!(
        edges.contains(&("consume".into(), "receive".into())),
        "the check sees the queue's imports: {edges:?}"
    );
    let web = sibling_edges(&src("web"));
    assert!(web.contains(&("http".into(), "auth".into())), "{web:?}");
    for krate in CRATES {
        let found = circles(&sibling_edges(&src(krate)));
        assert!(found.is_empty(), "import circles in {krate}: {found:#?}");
    }
}

#[test]
fn a_circle_through_a_grouped_or_super_import_is_found() {
    let dir = std::env::temp_dir().join(format!("imports-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("http")).unwrap();
    let files = [
        ("lib.rs", "mod auth;\nmod http;\n"),
        (
            "auth.rs",
            "// crate::nothing, a comment\nuse crate::{http::error::E, x};\n",
        ),
        ("http/mod.rs", "mod error;\nuse crate::auth::Access;\n"),
        (
            "http/error.rs",
            "use super::super::auth;\n#[cfg(test)]\nuse crate::lib;\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let edges = sibling_edges(&dir);
    assert_eq!(circles(&edges), ["auth → http → auth"], "{edges:?}");
    std::fs::write(dir.join("auth.rs"), "// use crate::http::error::E;\n").unwrap();
    assert!(circles(&sibling_edges(&dir)).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
