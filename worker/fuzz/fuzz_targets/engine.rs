//! Untrusted bytes through the whole engine: sniff, header probe, limits,
//! decode (shrink-on-load or full), an op, encode (keeping the file's EXIF
//! and profile when the selector's second bit asks). `process` catches panics,
//! as production needs, and reports them as `EngineError::Panicked`: this
//! target turns that back into a crash, so the fuzzer finds panics as well
//! as aborts, hangs and runaway memory.
//!
//! `scripts/fuzz [seconds]` runs it; findings become regression tests in
//! `worker/tests/fuzz.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use worker::engine::{EngineError, process};

#[path = "../recipe.rs"]
mod recipe;

fuzz_target!(
    init: {
        // libfuzzer-sys's hook aborts on every panic, before `process` can
        // catch it; the default hook only prints, and the target aborts
        // below on what `process` caught.
        let _ = std::panic::take_hook();
    },
    |data: &[u8]| {
        let Some((&selector, image)) = data.split_first() else {
            return;
        };
        let ops = recipe::recipe(selector);
        if let Err(EngineError::Panicked(what)) = process(image, &ops, &recipe::limits(), None) {
            eprintln!("the engine panicked: {what}");
            std::process::abort();
        }
    }
);
