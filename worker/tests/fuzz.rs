//! Inputs kept from fuzzing the engine (`scripts/fuzz`, target
//! `worker/fuzz/fuzz_targets/engine.rs`), run the way the fuzzer runs them.
//!
//! `fuzz-regressions/seed-*` are the small valid images the fuzzer starts
//! from, one per format and flavour (progressive and CMYK JPEG, 16-bit and
//! alpha PNG, JPEG and WebP with EXIF and a ProPhoto profile from the
//! `jxl-color` crate's test profiles, ...): they must process with either op,
//! alone and followed by a format op keeping all metadata and the profile.
//! Every other file there is an input the fuzzer found (a selector byte,
//! then the image, as the target reads it): it must come back as a result
//! or a clean error within the fuzzer's limits, never an abort nor a panic
//! (which `process` catches and reports as `EngineError::Panicked`).

use std::path::Path;

use worker::engine::{EngineError, process};

#[path = "../fuzz/recipe.rs"]
mod fuzz_recipe;
use fuzz_recipe::{limits, recipe};

#[test]
fn fuzz_regressions_process_or_fail_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds = files
        .iter()
        .filter(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
        })
        .count();
    assert!(seeds >= 8, "the seed images are missing from {dir:?}");
    let mut panicked = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            for selector in 0..4 {
                let ops = recipe(selector);
                let out = process(&data, &ops, &limits(), None)
                    .unwrap_or_else(|e| panic!("{file:?} with {ops:?}: {e}"));
                assert!(out.width > 0 && out.height > 0);
            }
        } else if let Some((&selector, image)) = data.split_first()
            && let Err(EngineError::Panicked(what)) =
                process(image, &recipe(selector), &limits(), None)
        {
            panicked.push(format!("{file:?}: {what}"));
        }
    }
    assert!(panicked.is_empty(), "the engine panicked: {panicked:#?}");
}
