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
use common::Limits;
use worker::engine::{EngineError, process};
use common::recipe::{Axis, Encoding, Metadata, Op, OutputFormat};

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
        // Small limits keep each run fast; a bomb must still be refused
        // before it allocates.
        let limits = Limits {
            max_pixels: 4_000_000,
            max_bytes: 4 * 1024 * 1024,
            max_dimension: 4096,
        ..Limits::default()
        };
        // Thumbnails take the shrink-on-load path for JPEGs; a flip needs
        // the full decode.
        let op = if selector & 1 == 0 {
            Op::Thumbnail { width: 64, height: 64 }
        } else {
            Op::Flip { axis: Axis::Horizontal }
        };
        // The EXIF and ICC readers and writers see the file only when asked.
        let mut ops = vec![op];
        if selector & 2 != 0 {
            ops.push(Op::Format(Encoding {
                metadata: Some(Metadata::All),
                keep_icc: true,
                ..Encoding::of(OutputFormat::Png)
            }));
        }
        if let Err(EngineError::Panicked(what)) = process(image, &ops, &limits, None) {
            eprintln!("the engine panicked: {what}");
            std::process::abort();
        }
    }
);
